//===- ParameterStore.h - named parameters to memory ----------*- C++ -*-===//
//
// Resolves the names in `attnedit.param` ops to f32 tensors. f32 tensors are
// used in place from the memory-mapped file when aligned; f16/bf16 ones are
// widened once and cached.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_EXECUTION_PARAMETERSTORE_H
#define ATTNEDIT_RUNTIME_EXECUTION_PARAMETERSTORE_H

#include "attnedit/Frontend/WeightFile.h"
#include "attnedit/Runtime/Execution/Tensor.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <memory>
#include <mutex>
#include <vector>

namespace mlir::attnedit {

class ParameterStore {
public:
  /// Opens a .safetensors file or a llama2.c .bin and adds its tensors to
  /// `scope` ("" is the default scope of unscoped parameter names).
  llvm::Error open(llvm::StringRef path, llvm::StringRef scope = "");
  void add(std::unique_ptr<WeightFile> file, llvm::StringRef scope = "");
  /// Opens the files a module's `attnedit.parameter_files` and
  /// `attnedit.parameter_scopes` name (resolveModulePath).
  llvm::Error openModuleFiles(mlir::ModuleOp module);

  /// The parameter `name` of `scope` as f32, checked against the shape the
  /// IR expects. Safe to call from several threads.
  llvm::Expected<Tensor> get(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                             llvm::StringRef scope = "");

  /// What get() checks, without reading the tensor (a non-f32 one would be
  /// converted and kept).
  llvm::Error check(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                    llvm::StringRef scope = "");

  /// Whether `name` of `scope` has a value (set, or in one of the scope's
  /// files), whatever its shape.
  bool contains(llvm::StringRef name, llvm::StringRef scope = "");

  /// Makes `name` of `scope` resolve to `value` from now on (a trainer's
  /// own buffer, updated in place between steps).
  void set(llvm::StringRef name, Tensor value, llvm::StringRef scope = "");

private:
  llvm::StringMap<std::vector<std::shared_ptr<WeightFile>>> files;
  llvm::StringMap<Tensor> cache;
  // get() fills the cache on first use, and a trainer evaluates sequences
  // on several threads at once.
  std::mutex cacheMutex;
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_EXECUTION_PARAMETERSTORE_H
