//===- Evaluation.h - how close a student model is to its teacher -*- C++ -*-===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_EVALUATION_H
#define ATTNEDIT_RUNTIME_TRAINING_EVALUATION_H

#include "attnedit/Runtime/Execution/Model.h"

#include "llvm/Support/JSON.h"

namespace mlir::attnedit {

/// Next-token agreement of a student with its teacher over some text.
struct NextTokenComparison {
  int64_t positions = 0;
  int64_t window = 0;     // tokens per forward pass (each from position 0)
  double kl = 0;          // mean KL(teacher ‖ student) per position, nats
  double top1 = 0;        // fraction of positions where both argmaxes agree
  double teacherNll = 0;  // mean -log p(next token), nats
  double studentNll = 0;
  int64_t kvContext = 0; // the cache sizes below hold this many tokens
  int64_t teacherKvBytesAtContext = 0; // bf16 cache, all layers
  int64_t studentKvBytesAtContext = 0;

  llvm::json::Value toJson() const;
};

/// Bytes of a bf16 KV cache over all layers holding `context` tokens, from
/// the module's attention ops (raised first on a copy when they are
/// primitives): sliding-window layers keep only their last `window` tokens.
/// Per-token figures divide it by the context, as plan-edits and the README
/// do: a window layer's bytes at one token would overstate it.
int64_t kvCacheBytes(mlir::ModuleOp module, int64_t context);

/// Runs both models on `tokens` cut into windows of at most `window` tokens
/// (each window starts at position 0) and compares their next-token
/// distributions at every position that has a next token (a model scored
/// alone is passed as both, and runs once). Logs progress; logits holding
/// NaN or an infinity are an error.
llvm::Expected<NextTokenComparison> compareNextToken(Model &teacher, Model &student,
                                                     llvm::ArrayRef<int32_t> tokens,
                                                     int64_t window);

/// Multiple-choice accuracy as lm-evaluation-harness scores ARC-style tasks:
/// each choice's log-likelihood as a continuation of the question; `acc`
/// takes the likeliest choice, `acc_norm` the likeliest per character of choice.
struct MultipleChoiceResult {
  int64_t questions = 0;
  double accuracy = 0, normalizedAccuracy = 0;
  /// Per question: {"answer", "predicted", "predicted_norm", "loglikelihoods"}.
  llvm::json::Array items;

  llvm::json::Value toJson() const;
};

/// Scores `path`, a JSONL file of {"question": str, "choices": [str, ...],
/// "answer": index}; errors name the file, line and field. A choice is
/// scored as the text after the question (a space between them unless the
/// question ends in whitespace), after BOS when the model has one.
llvm::Expected<MultipleChoiceResult> evaluateMultipleChoice(Model &model,
                                                            llvm::StringRef path);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_EVALUATION_H
