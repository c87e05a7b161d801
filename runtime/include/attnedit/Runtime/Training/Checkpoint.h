//===- Checkpoint.h - a job's claim on its directory and its state -*- C++ -*-===//
//
// A job owns its output directory through a lock, and records in
// checkpoint.json where it is (stage, step, weights file), what it is (the
// job's identity and its recipe) and its loss curves so far. A resume reads
// that state back and refuses one that belongs to another job.
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

/// An exclusive lock on a job's output directory for the job's lifetime:
/// a second job writing into the same directory is refused, naming the
/// holder. flock(2) locks die with their process, so a killed job never
/// leaves a stale lock.
class JobLock {
public:
  /// Locks `dir`/job.lock (creating `dir`), then removes the temporaries a
  /// killed or failed job left in `dir` (`*.tmp` files, `*.tmp-*` and
  /// `*.old-*` directories): nobody else can be writing them.
  static llvm::Expected<JobLock> acquire(llvm::StringRef dir);
  JobLock(JobLock &&other) : fd(other.fd) { other.fd = -1; }
  JobLock &operator=(JobLock &&) = delete;
  ~JobLock();

private:
  explicit JobLock(int fd) : fd(fd) {}
  int fd;
};

/// One line "field: was -> now" per leaf where `was` and `now` differ
/// (nested fields joined by '.', prefixed by `path`).
std::vector<std::string> jsonChanges(const llvm::json::Value &was, const llvm::json::Value &now,
                                     const std::string &path = "");

/// checkpoint.json.
struct CheckpointState {
  int64_t stage = 0, step = 0;
  std::string file; // the weights, a file name beside checkpoint.json
  llvm::json::Value recipe = nullptr, job = nullptr;
  std::vector<llvm::json::Value> log;

  /// Reads and checks `path`; errors name it.
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
