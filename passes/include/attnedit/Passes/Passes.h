//===- Passes.h - attnedit passes -----------------------------*- C++ -*-===//
#ifndef ATTNEDIT_PASSES_PASSES_H
#define ATTNEDIT_PASSES_PASSES_H

#include "attnedit/IR/AttnEditDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::attnedit {

#define GEN_PASS_DECL
#include "attnedit/Passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "attnedit/Passes/Passes.h.inc"

} // namespace mlir::attnedit

#endif // ATTNEDIT_PASSES_PASSES_H
