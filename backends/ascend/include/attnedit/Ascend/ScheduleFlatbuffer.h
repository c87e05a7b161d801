//===- ScheduleFlatbuffer.h - schedules as flatbuffers ---------*- C++ -*-===//
//
// Writes and reads runtime/schema/ascend_schedule.fbs: the expanded
// schedules of a module, for the runtime's simulator and outside tools.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_SCHEDULEFLATBUFFER_H
#define ATTNEDIT_ASCEND_SCHEDULEFLATBUFFER_H

#include "attnedit/Ascend/Schedule.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mlir::attnedit::ascend {

std::vector<uint8_t> serializeSchedules(llvm::ArrayRef<const Schedule *> schedules);

/// Verifies the buffer and rebuilds the schedules; their targets are loaded
/// by the names stored in them.
llvm::Expected<std::vector<Schedule>> deserializeSchedules(llvm::ArrayRef<uint8_t> bytes);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_SCHEDULEFLATBUFFER_H
