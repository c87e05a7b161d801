//===- Evidence.h - per-layer, per-stage conversion error -----*- C++ -*-===//
//
// What each distillation stage did to each layer: the relative L2 error of
// every student attention's output against the teacher's, both fed the
// teacher's own input for that layer (teacher forced); the next-token KL of
// the teacher with that one layer replaced by the student's (teacher
// forced); and the next-token KL / top-1 of the whole student, teacher
// forced and in free-running generation (each model continues the same
// prompts greedily; the KL is measured on the student's own continuation,
// where its errors compound). `distill` measures it for the edited student
// and after every stage, and writes DIR/evidence.json and DIR/evidence.svg.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_EVIDENCE_H
#define ATTNEDIT_RUNTIME_TRAINING_EVIDENCE_H

#include "attnedit/Runtime/Execution/ParameterStore.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/JSON.h"

#include <string>
#include <vector>

namespace mlir::attnedit {

struct StageEvidence {
  std::string stage;                  // "edited", "stage 1 (layerwise)", ...
  std::vector<std::string> layerKind; // per attention layer: gqa, swa, mla, ...
  std::vector<double> relativeError;  // per layer: |student - teacher| / |teacher|
  std::vector<double> layerKl;        // per layer: KL of the teacher with only it edited
  double kl = 0, top1 = 0;            // next-token, teacher forced
  int64_t positions = 0;
  /// Free running: each model continues the first half of every sequence
  /// greedily (at most kFreeRunTokens tokens). KL(teacher || student) and
  /// top-1 at the positions that produced the student's continuation (both
  /// models reading the student's tokens), and the share of continuation
  /// tokens equal to the teacher's own continuation at the same position.
  double freeKl = 0, freeTop1 = 0, continuationMatch = 0;
  int64_t freePositions = 0;
  static constexpr int64_t kFreeRunTokens = 32;

  llvm::json::Value toJson() const;
};

/// Measures `student` against the raised `teacher` on `sequences` (each run
/// from position 0); both modules' parameters resolve in `store`. With
/// `attentionErrorOnly`, only the per-layer attention-output errors (the
/// cheap part; the rest stays 0).
llvm::Expected<StageEvidence> measureStage(ModuleOp teacher, ModuleOp student,
                                           ParameterStore &store,
                                           const std::vector<std::vector<int32_t>> &sequences,
                                           llvm::StringRef stage,
                                           bool attentionErrorOnly = false);

/// The stages writeEvidence wrote to `jsonPath`: a resumed job measures
/// only the stages it runs, and keeps the earlier ones from here.
llvm::Expected<std::vector<StageEvidence>> readEvidence(llvm::StringRef jsonPath);

/// Writes the stages as JSON and as an SVG (per-layer error and per-layer
/// KL, one line per stage).
llvm::Error writeEvidence(llvm::ArrayRef<StageEvidence> stages, llvm::StringRef jsonPath,
                          llvm::StringRef svgPath);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_EVIDENCE_H
