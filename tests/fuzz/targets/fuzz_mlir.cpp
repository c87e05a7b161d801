//===- fuzz_mlir.cpp - .mlir text through the attnedit dialect's verifiers ===//
// Parses the input as a module of attnedit, func and arith ops; parsing runs
// every op's verifier and shape checks.
#include "attnedit/IR/AttnEditDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"

#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  mlir::MLIRContext context(mlir::MLIRContext::Threading::DISABLED);
  context.loadDialect<mlir::attnedit::AttnEditDialect, mlir::arith::ArithDialect,
                      mlir::func::FuncDialect>();
  mlir::ScopedDiagnosticHandler quiet(&context, [](mlir::Diagnostic &) { return mlir::success(); });
  // MLIR's lexer reads up to a terminating NUL, as files read through
  // MemoryBuffer have; libFuzzer's bytes have none.
  std::string text(reinterpret_cast<const char *>(data), size);
  (void)mlir::parseSourceString<mlir::ModuleOp>(text, &context);
  return 0;
}
