// Parses an attnedit op with the dialect linked from the installed package.
#include "attnedit/IR/AttnEditDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"

#include <cstdio>

int main() {
  mlir::MLIRContext context;
  context.loadDialect<mlir::attnedit::AttnEditDialect, mlir::func::FuncDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(
      "func.func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {\n"
      "  %0 = attnedit.silu %x : tensor<2x3xf32>\n"
      "  return %0 : tensor<2x3xf32>\n}\n",
      &context);
  if (!module)
    return 1;
  module->print(llvm::outs());
  return 0;
}
