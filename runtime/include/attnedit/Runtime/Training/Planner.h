//===- Planner.h - per-layer attention edits under a KV budget -*- C++ -*-===//
//
// The job behind `attnedit-run plan-edits`: measures, on calibration tokens,
// what editing each layer alone costs (next-token KL to the teacher, teacher
// forced), then chooses per layer among keeping its attention, a sliding
// window and MLA so that the KV cache at `context` fits the budget. The
// result is an EditPlan that --attnedit-edit-attention=plan=FILE (and
// therefore `distill --edit "plan=FILE"`) applies.
//
// A pass cannot run the model (passes/ sits below runtime/), so planning is a
// runtime job that writes the plan and the edit pass applies it.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_PLANNER_H
#define ATTNEDIT_RUNTIME_TRAINING_PLANNER_H

#include "attnedit/Passes/EditPlan.h"
#include "attnedit/Runtime/Execution/Model.h"

namespace mlir::attnedit {

struct PlanOptions {
  /// > 1: bf16 KV bytes per token (amortised over `context` tokens);
  /// in (0, 1]: that fraction of the teacher's.
  double budget = 0.25;
  int64_t context = 512;
  /// The candidates: a sliding window of `window` tokens, MLA of
  /// `kvLoraRank` + `qkRopeHeadDim`.
  int64_t window = 32;
  int64_t kvLoraRank = 16;
  int64_t qkRopeHeadDim = 4;
  /// Other options of the edit (init=, gate=, sinks=, ...), for every candidate.
  std::string editOptions = "init=svd";
  /// Scratch directory for the candidates' modules and weights.
  std::string workDir;
  /// Tokens per forward pass of the measurement.
  int64_t evalWindow = 256;
};

/// Chooses the plan. `calibration` are token ids (BOS first when the model
/// has one). The plan's extra fields hold the budget, every candidate's
/// measured damage and bytes, and the chosen plan's estimated and measured KL.
llvm::Expected<EditPlan> planEdits(Model &teacher, llvm::ArrayRef<int32_t> calibration,
                                   const PlanOptions &options);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_PLANNER_H
