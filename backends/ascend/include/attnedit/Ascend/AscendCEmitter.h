//===- AscendCEmitter.h - kernels as Ascend C-like source -----*- C++ -*-===//
//
// Renders an ascend.kernel as an Ascend C kernel a CANN user can read: an
// extern "C" __global__ __aicore__ entry over GM_ADDR arguments, static
// tensors at the planned offsets (research §2.1: static tensor programming,
// S59, since the schedule already fixes addresses and flags), DataCopy /
// LoadData / Mmad / Fixpipe and vector intrinsics with their pipes, and the
// explicit SetFlag / WaitFlag / PipeBarrier of the schedule. It is a
// faithful rendering for reading and review, not compiled in CI.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_ASCENDCEMITTER_H
#define ATTNEDIT_ASCEND_ASCENDCEMITTER_H

#include "attnedit/Ascend/AscendOps.h"

#include "llvm/Support/raw_ostream.h"

namespace mlir::attnedit::ascend {

LogicalResult emitAscendC(KernelOp kernel, llvm::raw_ostream &os);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_ASCENDCEMITTER_H
