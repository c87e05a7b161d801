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

/// Where a module's layers are: its @forward, the model, when it has one
/// (a distillation step or a copy of the model beside it holds attention
/// too, which layer numbers and totals would count again), else the module.
Operation *layersOf(ModuleOp module);

} // namespace mlir::attnedit

#endif // ATTNEDIT_PASSES_PASSES_H
