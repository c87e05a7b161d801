//===- Passes.h - attnedit passes -----------------------------*- C++ -*-===//
#ifndef ATTNEDIT_PASSES_PASSES_H
#define ATTNEDIT_PASSES_PASSES_H

#include "attnedit/IR/AttnEditDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::attnedit {

#define GEN_PASS_DECL
#include "attnedit/Passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "attnedit/Passes/Passes.h.inc"

/// Why `func` is not what every attnedit pass and executor walks: one block
/// ending in func.return. A declaration or a body split by cf branches
/// (attnedit-opt loads cf) had crashed them; std::nullopt when it is.
std::optional<std::string> whyNotOneBlock(func::FuncOp func);

} // namespace mlir::attnedit

#endif // ATTNEDIT_PASSES_PASSES_H
