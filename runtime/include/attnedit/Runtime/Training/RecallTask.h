//===- RecallTask.h - synthetic multi-query associative recall -*- C++ -*-===//
//
// The embedded demo's task (as in Zoology's MQAR): key-value pairs early in
// a sequence, and later the keys again, each of which must be answered with
// its value. Solving it needs attention that reaches back past any window
// shorter than the distance between a pair and its query, which is what
// GateSWA's full layers and MLA's full-length latent cache must keep.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_RECALLTASK_H
#define ATTNEDIT_RUNTIME_TRAINING_RECALLTASK_H

#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Runtime/Training/Trainer.h"

#include "llvm/Support/Error.h"

#include <cstdint>
#include <random>
#include <vector>

namespace mlir::attnedit {

struct RecallTask {
  int64_t numKeys = 32;   // distinct key tokens
  int64_t numValues = 32; // distinct value tokens
  int64_t pairs = 8;      // key-value pairs per sequence
  int64_t gap = 24;       // filler tokens between the pairs and the queries

  /// Token layout: 0 = BOS, 1 = filler, then keys, then values.
  int64_t vocabSize() const { return 2 + numKeys + numValues; }
  /// BOS, pairs (k v)..., gap fillers, queries (k v)... in another order.
  int64_t sequenceLength() const { return 1 + 2 * pairs + gap + 2 * pairs; }
  llvm::Error validate() const;

  struct Sample {
    std::vector<int32_t> tokens;
    /// Positions whose next token is a recalled value (a queried key).
    std::vector<int64_t> queryPositions;
  };
  Sample sample(std::mt19937_64 &rng) const;
  /// Writes the task's vocabulary as a llama2.c tokenizer.bin ("<s>", " .",
  /// " K0".., " V0"..), so that its models print readable tokens.
  llvm::Error writeTokenizer(llvm::StringRef path) const;
};

/// Recall samples as training sequences (seqLen + 1 = sequenceLength()).
class RecallSequences : public TokenSource {
public:
  RecallSequences(RecallTask task, uint64_t seed) : task(task), seed(seed) {}
  std::vector<int32_t> sequence(uint64_t index) override;
  /// Only the recalled values are supervised: every other token is random
  /// or filler, and training on them only adds noise to the gradient.
  std::vector<int32_t> targets(uint64_t index, const std::vector<int32_t> &tokens) override;
  llvm::json::Value identity() const override;

private:
  RecallTask::Sample sample(uint64_t index) const;
  RecallTask task;
  uint64_t seed;
};

/// Held-out recall sequences come from another seed than any training
/// sequence of `RecallSequences(task, seed)`.
inline uint64_t recallHeldOutSeed(uint64_t seed) { return seed + (1ull << 48); }

/// Recall accuracy (argmax at each query equals its value) of `model` on
/// `samples` held-out sequences (seeds heldOutSeed, heldOutSeed + 1, ...)
/// and its mean next-token KL to `teacher` over every position (0 when
/// `model` is `teacher`).
struct RecallScore {
  double recall = 0, kl = 0;
  int64_t queries = 0;
};
llvm::Expected<RecallScore> scoreRecall(Model &teacher, Model &model, const RecallTask &task,
                                        uint64_t heldOutSeed, int64_t samples);

/// The README's main job: trains a small GQA teacher on the recall task from
/// scratch, converts it to MLA and to GateSWA (a window shorter than the
/// distance between pairs and queries in all but the first layer), distils
/// both, and prints recall accuracy, KL, KV bytes and time of the three as
/// a table and as outDir/demo_report.json.
struct RecallDemoOptions {
  std::string outDir;
  uint64_t seed = 0;
  bool resume = false;
  double scale = 1.0; // multiplies every stage's steps (a quick run: 0.1)
};
llvm::Error runRecallDemo(const RecallDemoOptions &options);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_RECALLTASK_H
