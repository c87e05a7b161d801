//===- FunctionBody.cpp - the one-block functions attnedit walks ----------===//

#include "attnedit/Passes/Passes.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;

std::optional<std::string> mlir::attnedit::whyNotOneBlock(func::FuncOp func) {
  if (func.isExternal())
    return llvm::formatv("@{0} is a declaration: it has no body to run or transform",
                         func.getSymName())
        .str();
  if (!llvm::hasSingleElement(func.getBody()) ||
      !isa<func::ReturnOp>(func.getBody().front().getTerminator()))
    return llvm::formatv("@{0} must be one block ending in func.return (it has {1} blocks)",
                         func.getSymName(), func.getBody().getBlocks().size())
        .str();
  // Each function is run, compiled and transformed on its own: a callee
  // was not found by the compiled code, and not looked into by the edit.
  std::optional<std::string> calls;
  func.walk([&](func::CallOp call) {
    calls = llvm::formatv("@{0} calls @{1}: calls between functions are not supported; the "
                          "function must hold its whole computation",
                          func.getSymName(), call.getCallee())
                .str();
    return WalkResult::interrupt();
  });
  return calls;
}

bool mlir::attnedit::isKvCacheStep(func::FuncOp func) {
  return llvm::any_of(llvm::seq(func.getNumArguments()),
                      [&](unsigned i) { return func.getArgAttr(i, "attnedit.block_table"); });
}

Operation *mlir::attnedit::layersOf(ModuleOp module) {
  if (auto forward = module.lookupSymbol<func::FuncOp>("forward"); forward && !forward.isExternal())
    return forward;
  return module;
}
