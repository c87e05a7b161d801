//===- ProcessGroup.h - the processes of one data-parallel job -*- C++ -*-===//
//
// A training job launched by `mpirun -np N` runs as N processes (ranks), each
// computing part of every batch; this is what the trainer needs of them: who
// this process is, and the few collectives that keep every rank's weights
// identical to the bit (README "Training on many processes"). MPI (OpenMPI)
// implements it when the build found it and mpirun started the process;
// otherwise there is no group and training runs exactly as it always did.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_PROCESSGROUP_H
#define ATTNEDIT_RUNTIME_TRAINING_PROCESSGROUP_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstddef>
#include <vector>

namespace mlir::attnedit {

class ProcessGroup {
public:
  virtual ~ProcessGroup() = default;
  int rank() const { return myRank; }
  int size() const { return numRanks; }
  /// Ranks on this machine (they share its cores).
  int localSize() const { return numLocal; }

  /// out[j] = (((0 + lane_0[j]) + lane_1[j]) + ...) + lane_{lanes-1}[j], in
  /// f32, on every rank: the sum a single process makes of its lanes, added
  /// in the same order, so the result does not depend on the number of
  /// ranks. Lane l lives on rank l % size(); `owned` holds this rank's lanes
  /// (l = rank(), rank() + size(), ...), each of `n` floats. Implemented as
  /// a reduce-scatter (each rank sums one slice of the vector, all lanes in
  /// order) then an all-gather: 2n floats through each rank, as a ring
  /// all-reduce moves, when every rank owns one lane.
  virtual llvm::Error sumLanes(llvm::ArrayRef<const float *> owned, size_t lanes, size_t n,
                               float *out) = 0;
  /// values[i] = the largest values[i] over the ranks: exact whatever the
  /// order, so a rank fills what it computed and leaves -inf elsewhere.
  virtual llvm::Error maxInPlace(llvm::MutableArrayRef<double> values) = 0;
  /// data[0, n) of rank `root` on every rank.
  virtual llvm::Error broadcast(float *data, size_t n, int root) = 0;
  /// Returns when every rank has called it.
  virtual llvm::Error barrier() = 0;
  /// Every rank's `mine` (all of the same length), rank 0's first; `what`
  /// names the values in errors and in the watchdog's message.
  virtual llvm::Expected<std::vector<double>> gather(llvm::ArrayRef<double> mine,
                                                     const char *what) = 0;
  /// Ends every rank of the job with `code` (after an error on this one, so
  /// that the others do not wait for it forever).
  [[noreturn]] virtual void abort(int code) = 0;

protected:
  int myRank = 0, numRanks = 1, numLocal = 1;
};

/// Joins the job when mpirun started this process (OpenMPI's environment
/// says so) and MPI was found at build time; a process started by mpirun
/// from a build without MPI is an error, since N copies would each train
/// alone. Without mpirun, a no-op. Call once, first thing in main().
llvm::Error initProcessGroup(int &argc, char **&argv);
/// The job's group, or null when this process trains alone.
ProcessGroup *processGroup();
/// Leaves the job (MPI_Finalize); call at the end of main().
void finalizeProcessGroup();

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_PROCESSGROUP_H
