//===- Checkpoint.h - a job's claim on its output and its state -*- C++ -*-===//
//
// A job owns its output (a directory, or one file) through a lock. A
// training job records in checkpoint.json where it is (stage, step, weights
// file), what it is (the job's identity and its recipe), how much of its
// step log (steps.jsonl beside it, appended to) its loss curves hold, and
// its time so far; a resume reads that state back and refuses one that
// belongs to another job.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_CHECKPOINT_H
#define ATTNEDIT_RUNTIME_TRAINING_CHECKPOINT_H

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::attnedit {

/// An exclusive lock on a job's output for the job's lifetime: a second job
/// writing the same output is refused, naming the holder. flock(2) locks
/// die with their process, so a killed job never leaves a lock that holds.
class JobLock {
public:
  /// Locks `dir`/job.lock (creating `dir`), then removes the temporaries a
  /// killed or failed job left in `dir` (`*.tmp` files, `*.tmp-*` and
  /// `*.old-*` directories): nobody else can be writing them.
  static llvm::Expected<JobLock> acquire(llvm::StringRef dir);
  /// Locks `file`.lock, for a job whose output is the one file `file`; the
  /// lock file goes when the lock does (one a killed job left is taken over).
  static llvm::Expected<JobLock> acquireFile(llvm::StringRef file);
  JobLock(JobLock &&other) : fd(other.fd), removeOnRelease(std::move(other.removeOnRelease)) {
    other.fd = -1;
  }
  JobLock &operator=(JobLock &&) = delete;
  ~JobLock();

private:
  JobLock(int fd, std::string removeOnRelease)
      : fd(fd), removeOnRelease(std::move(removeOnRelease)) {}
  static llvm::Expected<JobLock> lock(const std::string &path, llvm::StringRef output,
                                      llvm::StringRef kind, bool removeOnRelease);
  int fd;
  std::string removeOnRelease; // the lock file, when it goes with the lock
};

/// One line "field: was -> now" per leaf where `was` and `now` differ
/// (nested fields joined by '.', prefixed by `path`).
std::vector<std::string> jsonChanges(const llvm::json::Value &was, const llvm::json::Value &now,
                                     const std::string &path = "");

/// checkpoint.json.
struct CheckpointState {
  int64_t stage = 0, step = 0;
  std::string file; // the weights, a file name beside checkpoint.json
  /// xxh3 of `file`'s bytes; empty in checkpoints from before it was kept.
  std::string xxh3;
  double seconds = 0; // the job's training time up to this checkpoint
  /// The backend that computed it (defaultBackendName); empty in checkpoints
  /// from before it was kept.
  std::string backend;
  llvm::json::Value recipe = nullptr, job = nullptr;
  /// The loss curves up to the checkpoint, one JSON object per stage:
  /// {"stage", "steps": [{step, loss, lr, ...}]}.
  std::vector<llvm::json::Value> log;
  /// The bytes of steps.jsonl that hold `log`'s first `logPoints` steps, one
  /// line each ({"stage_index", step, loss, ...}); lines after them are of
  /// steps past the checkpoint. (Checkpoints from before the file held their
  /// log inline: 0 of both.)
  uint64_t logBytes = 0;
  int64_t logPoints = 0;

  /// steps.jsonl.
  static constexpr llvm::StringLiteral kStepLog = "steps.jsonl";
  /// One line of steps.jsonl: step `point` of stage `stageIndex`.
  static std::string stepLine(size_t stageIndex, const llvm::json::Object &point);

  /// The weights' file name of the checkpoint after `step` steps of `stage`.
  static std::string fileName(int64_t stage, int64_t step);
  /// Reads and checks `path` and the step log beside it; errors name them.
  static llvm::Expected<CheckpointState> read(llvm::StringRef path);
  llvm::json::Value toJson() const;
  /// One line "field: was -> now" per difference between this state's job
  /// and recipe and `job` and `recipe` (the fields of the recipe prefixed
  /// "recipe.").
  std::vector<std::string> changes(const llvm::json::Value &job,
                                   const llvm::json::Value &recipe) const;
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_CHECKPOINT_H
