//===- ScheduleBuilder.h - ascend.kernel -> Schedule ----------*- C++ -*-===//
//
// Expands a kernel's body for each block index: scf.for/scf.if and arith
// index math are evaluated, ascend ops become instructions with concrete
// windows, and multi-buffer slots resolve to byte offsets.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_SCHEDULEBUILDER_H
#define ATTNEDIT_ASCEND_SCHEDULEBUILDER_H

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/Schedule.h"

#include "llvm/Support/Error.h"

namespace mlir::attnedit::ascend {

/// Expands `blocks` (all block indices when empty).
llvm::Expected<Schedule> buildSchedule(KernelOp kernel, llvm::ArrayRef<int64_t> blocks = {});

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_SCHEDULEBUILDER_H
