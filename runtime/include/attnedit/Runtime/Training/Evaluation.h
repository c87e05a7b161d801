//===- Evaluation.h - how close a student model is to its teacher -*- C++ -*-===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_EVALUATION_H
#define ATTNEDIT_RUNTIME_TRAINING_EVALUATION_H

#include "attnedit/Runtime/Execution/Model.h"

#include "llvm/Support/JSON.h"

namespace mlir::attnedit {

/// Next-token agreement of a student with its teacher over some text.
struct NextTokenComparison {
  int64_t positions = 0;
  double kl = 0;          // mean KL(teacher ‖ student) per position, nats
  double top1 = 0;        // fraction of positions where both argmaxes agree
  double teacherNll = 0;  // mean -log p(next token), nats
  double studentNll = 0;
  int64_t teacherKvBytesPerToken = 0; // bf16 cache, all layers
  int64_t studentKvBytesPerToken = 0;
  int64_t kvContext = 0; // the cache sizes below hold this many tokens
  int64_t teacherKvBytesAtContext = 0;
  int64_t studentKvBytesAtContext = 0;

  llvm::json::Value toJson() const;
};

/// KV-cache bytes per token of a bf16 cache over all layers, from the
/// module's attention ops (raised first on a copy when they are primitives).
int64_t kvBytesPerToken(mlir::ModuleOp module);
/// Bytes of that cache holding `context` tokens: sliding-window layers keep
/// only their last `window` tokens.
int64_t kvCacheBytes(mlir::ModuleOp module, int64_t context);

/// Runs both models on `tokens` cut into windows of at most `window` tokens
/// (each window starts at position 0) and compares their next-token
/// distributions at every position that has a next token. Logs progress.
llvm::Expected<NextTokenComparison> compareNextToken(Model &teacher, Model &student,
                                                     llvm::ArrayRef<int32_t> tokens,
                                                     int64_t window);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_EVALUATION_H
