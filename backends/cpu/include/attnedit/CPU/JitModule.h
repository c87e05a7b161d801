//===- JitModule.h - LLVM-dialect modules compiled for this host -*- C++ -*-===//
//
// A module lowered by attnedit-cpu-pipeline, JIT-compiled through MLIR's
// ExecutionEngine for the host CPU (name and features from detectHost(), as
// cpu-codegen.md §2 recommends: the engine's own jitCodeGenOptLevel is
// ignored in MLIR 19), with the GEMM shims bound as host symbols.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_CPU_JITMODULE_H
#define ATTNEDIT_CPU_JITMODULE_H

#include "mlir/ExecutionEngine/ExecutionEngine.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <memory>

namespace mlir::attnedit::cpu {

class JitModule {
public:
  /// Compiles `module` (LLVM dialect) at -O2 for the host.
  static llvm::Expected<std::unique_ptr<JitModule>> create(ModuleOp module);

  /// Calls `_mlir_ciface_<name>`: `args` are its pointer arguments (for a
  /// function with results, first the pointer to the results' descriptors).
  llvm::Error call(llvm::StringRef name, llvm::ArrayRef<void *> args);

private:
  std::unique_ptr<ExecutionEngine> engine;
};

/// The names and addresses of the GEMM shims (GemmLibrary.cpp) that
/// `attnedit-cpu-library-calls` calls, as `_mlir_ciface_attnedit_cpu_*`.
llvm::ArrayRef<std::pair<const char *, void *>> gemmSymbols();

} // namespace mlir::attnedit::cpu

#endif // ATTNEDIT_CPU_JITMODULE_H
