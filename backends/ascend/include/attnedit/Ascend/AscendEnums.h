//===- AscendEnums.h - spaces, pipes, layouts -----------------*- C++ -*-===//
//
// The ODS enums, usable without the rest of the dialect (the simulator and
// cost model take them in plain structs).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_ASCENDENUMS_H
#define ATTNEDIT_ASCEND_ASCENDENUMS_H

#include "mlir/IR/BuiltinAttributes.h"

#include "attnedit/Ascend/AscendEnums.h.inc"

namespace mlir::attnedit::ascend {
constexpr int kNumSpaces = 6;
constexpr int kNumPipes = 7;
} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_ASCENDENUMS_H
