//===- Trainer.h - data and the training loop -----------------*- C++ -*-===//
//
// One training loop serves every stage (`stage=lm` pretraining, layer-wise
// and model-level distillation): AdamW with decoupled weight decay, global
// gradient-norm clipping, linear warm-up then cosine decay. Every sequence a
// step sees is a pure function of (seed, step, index in batch), and the
// optimiser state is checkpointed with the parameters, so a run resumed
// after a kill reaches bit for bit the weights of an uninterrupted one.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_TRAINER_H
#define ATTNEDIT_RUNTIME_TRAINING_TRAINER_H

#include "attnedit/Runtime/Execution/ParameterStore.h"
#include "attnedit/Runtime/Training/Checkpoint.h"
#include "attnedit/Runtime/Training/Recipe.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace mlir::attnedit {

class Tokenizer;

/// Training sequences, indexed so that any one can be recomputed.
class TokenSource {
public:
  virtual ~TokenSource() = default;
  /// The `index`-th training sequence: seqLen + 1 tokens (inputs, then one
  /// more so that targets are the inputs shifted by one).
  virtual std::vector<int32_t> sequence(uint64_t index) = 0;
  /// The next-token targets of sequence `index` (whose tokens are `tokens`)
  /// for stage=lm: the inputs shifted by one, or -1 where a position is not
  /// supervised.
  virtual std::vector<int32_t> targets(uint64_t index, const std::vector<int32_t> &tokens) {
    return std::vector<int32_t>(tokens.begin() + 1, tokens.end());
  }
  /// What the data is (a content hash, or a generator's parameters): a
  /// checkpoint records it, and a resume on other data is refused.
  virtual llvm::json::Value identity() const = 0;
};

/// Sequence packing: a token stream cut into consecutive chunks of seqLen + 1
/// tokens, visited in a fresh seeded order every epoch.
class PackedTokens : public TokenSource {
public:
  /// Loads `path`: a pre-tokenized file (`.bin`: little-endian uint16 ids, as
  /// llama2.c's and nanoGPT's pretokenizers write) or text, encoded with
  /// `tokenizer` after `bos` (when given; `.jsonl` documents are apart as
  /// readTokens says). Only the part before `until` (a fraction of the
  /// file) is used, leaving the tail held out.
  static llvm::Expected<std::unique_ptr<PackedTokens>>
  load(llvm::StringRef path, const Tokenizer *tokenizer, std::optional<int32_t> bos,
       llvm::ArrayRef<int32_t> stopTokens, int64_t vocabSize, int64_t seqLen, uint64_t seed,
       double until);

  std::vector<int32_t> sequence(uint64_t index) override;
  /// {"tokens": count, "xxh3": hash of the ids}.
  llvm::json::Value identity() const override;
  int64_t numTokens() const { return stream.size(); }

private:
  std::vector<int32_t> stream;
  int64_t seqLen = 0;
  uint64_t seed = 0;
  int64_t cachedEpoch = -1;
  std::vector<int64_t> order;
};

/// Reads a token file as PackedTokens::load does, whole: a `.bin` is uint16
/// ids, a `.jsonl` lines of {"text": ...} (one document each, each after
/// documentStartToken of `bos` and `stopTokens`), anything else text for
/// `tokenizer`; the last two start with `bos` if `bosFirst` (callers that
/// cut the tokens put it first themselves). Every command that takes --data
/// reads it through here, and says which format it used.
llvm::Expected<std::vector<int32_t>> readTokens(llvm::StringRef path,
                                                const Tokenizer *tokenizer,
                                                std::optional<int32_t> bos,
                                                llvm::ArrayRef<int32_t> stopTokens,
                                                int64_t vocabSize, bool bosFirst = true);

/// Where a run keeps its checkpoint, log and plot.
struct TrainingRun {
  std::string workDir;   // checkpoint.json + checkpoint-*.safetensors
  std::string logPath;   // JSON loss curves
  std::string plotPath;  // SVG of the loss curves
  bool resume = false;
  /// What the job trains and on what (teacher, edit, data, ...): recorded in
  /// the checkpoint with the recipe; a resume that differs in any field is
  /// refused, naming the fields.
  llvm::json::Object job;
  /// Threads computing a batch; 0 = this machine's cores shared among the
  /// job's ranks on it.
  unsigned threads = 0;
};

/// Runs the stages of a recipe one after another over one parameter store.
/// Under mpirun (processGroup()), every rank runs its share of each batch and
/// applies the same update; only rank 0 writes the checkpoint, log and plot.
class Trainer {
public:
  /// With `run.resume`, reads the last checkpoint of `run.workDir` (if any):
  /// every parameter it holds is put in `store`, and stages it finished are
  /// skipped; a checkpoint of another job or recipe is refused, naming what
  /// changed. Without it, a checkpoint already there is an error, so that a
  /// run never silently overwrites another.
  static llvm::Expected<Trainer> create(const Recipe &recipe, TrainingRun run,
                                        ParameterStore &store);

  /// True if stage `index` is already complete (resumed past it).
  bool finished(size_t index) const;
  /// True if a checkpoint was resumed: the parameters are trained ones.
  bool resumed() const { return resumeStage >= 0; }
  /// True if the checkpoint resumed is stage `index`'s last.
  bool resumedAtEndOf(size_t index) const {
    return (int64_t)index == resumeStage && resumeStep == recipe.stages[index].steps;
  }

  /// Trains stage `index` of the recipe: `gradFunc` is its @train_step_grad;
  /// with `targets`, each sequence is passed as (tokens, positions, targets)
  /// (stage=lm), otherwise as (tokens, positions). Parameters are updated in
  /// `store` in place.
  ///
  /// With `shareFunc` (layer-parallel stage 1 under mpirun), this rank runs
  /// the whole batch through `shareFunc`, the gradient of its share of the
  /// layers, and updates only those; `gradFunc` still names every tensor
  /// of the step, in its order, for the clipping norm and the checkpoint
  /// (which rank 0 writes after each tensor is broadcast from its owner).
  llvm::Error runStage(size_t index, func::FuncOp gradFunc, TokenSource &data,
                       func::FuncOp shareFunc = {});

  /// The loss curves so far: [{"stage", "steps": [{step, loss, lr, ...}]}].
  llvm::json::Value log() const { return llvm::json::Array(curves); }

private:
  Trainer(const Recipe &recipe, TrainingRun run, ParameterStore &store)
      : recipe(recipe), run(std::move(run)), store(&store) {}
  /// create() on this rank alone: where `statePath` says the job left off.
  static llvm::Expected<Trainer> resumed(const Recipe &recipe, TrainingRun run,
                                         ParameterStore &store, llvm::StringRef statePath);
  /// `final`: the stage's last step, or a stop: the log is written too.
  llvm::Error writeCheckpoint(size_t stage, int64_t step, bool final,
                              llvm::ArrayRef<std::string> names,
                              llvm::ArrayRef<Tensor> params, llvm::ArrayRef<Tensor> m,
                              llvm::ArrayRef<Tensor> v);
  /// training_log.json and the plot, with `seconds` of training.
  llvm::Error writeLog(double seconds) const;
  /// Wall seconds this job has trained, over its runs so far.
  double trainSeconds() const;

  Recipe recipe;
  TrainingRun run;
  ParameterStore *store;
  // Where the last checkpoint left off; stage = -1 when starting fresh.
  int64_t resumeStage = -1, resumeStep = 0;
  std::string checkpointFile;
  // The runs before this one, as their last checkpoint counted them.
  double earlierSeconds = 0;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // One JSON object per stage: {"stage", "steps": [{step, loss, lr, ...}]}.
  std::vector<llvm::json::Value> curves;
  // What of `curves` the step log holds (CheckpointState).
  uint64_t logBytes = 0;
  int64_t logPoints = 0;
  // When training_log.json was last written, and how long that took.
  std::chrono::steady_clock::time_point lastLogWrite;
  double lastLogCost = 0;
};

/// Writes `curves` (Trainer::log()) as an SVG line plot of loss per step,
/// one panel per stage, log-scaled losses.
llvm::Error writeLossPlot(const llvm::json::Value &curves, llvm::StringRef path);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_TRAINER_H
