//===- Simulator.h - functional simulation of a schedule ------*- C++ -*-===//
//
// Executes a Schedule on the CPU with the hardware's numerics (16-bit
// operands into the Cube, f32 accumulation in L0C, rounding on every
// store) and checks every access (research/ascend.md §12):
//  - capacity and alignment of every buffer and window, legal paths and
//    pipes, event-id range;
//  - races: each pipe keeps a vector clock over the core's pipes; a
//    set_flag carries its pipe's clock (every earlier instruction of that
//    pipe), wait_flag joins it, barrier makes a pipe's earlier instructions
//    precede its later ones (S22, S55). A read of bytes whose last write is
//    not ordered before it, or a write over bytes whose last reads or write
//    are not, is an error naming both instructions. Different cores order
//    GM accesses only through sync_all;
//  - the flag protocol: a second set before its wait, a set never waited,
//    and deadlock (waits no remaining set can satisfy).
// The interleaving explored is one legal execution, but the verdict does
// not depend on it: happens-before, not program order, decides.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_SIMULATOR_H
#define ATTNEDIT_ASCEND_SIMULATOR_H

#include "attnedit/Ascend/Schedule.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <map>
#include <memory>
#include <string>

namespace mlir::attnedit::ascend {

class Simulator {
public:
  explicit Simulator(const Schedule &schedule);
  ~Simulator();

  /// Sets GM tensor `arg` from f32 values, rounded to its element type.
  void setTensor(size_t arg, llvm::ArrayRef<float> values);
  /// GM tensor `arg` widened to f32.
  std::vector<float> tensor(size_t arg) const;

  /// Runs every core to completion; the first violation is the error.
  llvm::Error run();
  /// The instruction the error is about, if any.
  const Instr *failedInstr() const;
  int64_t executedInstructions() const;
  /// Bytes moved per path ("gm->l1", ...), counting only elements inside
  /// the GM tensors (research §12.8's counters).
  std::map<std::string, int64_t> bytesPerPath() const;

private:
  struct Impl;
  std::unique_ptr<Impl> impl;
};

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_SIMULATOR_H
