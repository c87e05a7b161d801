//===- Passes.h - Ascend backend passes -----------------------*- C++ -*-===//
#ifndef ATTNEDIT_ASCEND_PASSES_H
#define ATTNEDIT_ASCEND_PASSES_H

#include "attnedit/Ascend/AscendDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::attnedit::ascend {

#define GEN_PASS_DECL
#include "attnedit/Ascend/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "attnedit/Ascend/Passes.h.inc"

/// Registers the passes and `attnedit-ascend-pipeline`.
void registerAscendPassesAndPipelines();

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_PASSES_H
