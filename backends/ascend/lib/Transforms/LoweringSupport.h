//===- LoweringSupport.h - what the lowering passes share -----*- C++ -*-===//
//
// The lower-attention, lower-matmul and lower-vector passes read the same
// `target` and `dtype` options and name the kernels they add the same way.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_TRANSFORMS_LOWERINGSUPPORT_H
#define ATTNEDIT_ASCEND_TRANSFORMS_LOWERINGSUPPORT_H

#include "attnedit/Ascend/TargetDescription.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/SymbolTable.h"

#include <optional>

namespace mlir::attnedit::ascend {

/// The description the `target` option names, or null after an error at
/// `module` that starts with the pass's `flag`.
inline std::shared_ptr<const TargetDescription> loadTargetOption(ModuleOp module,
                                                                 llvm::StringRef flag,
                                                                 llvm::StringRef target) {
  llvm::Expected<std::shared_ptr<const TargetDescription>> loaded =
      TargetDescription::load(target);
  if (!loaded) {
    module.emitError() << flag << ": " << llvm::toString(loaded.takeError());
    return nullptr;
  }
  return *loaded;
}

/// The GM element type the `dtype` option names, or nullopt after an error
/// at `module` (the Cube kernels take only the 16-bit types).
inline std::optional<DType> parseDTypeOption(ModuleOp module, llvm::StringRef flag,
                                             llvm::StringRef dtype) {
  if (dtype == "bf16")
    return DType::BF16;
  if (dtype == "f16")
    return DType::F16;
  module.emitError() << flag << ": dtype must be f16 or bf16, got '" << dtype << "'";
  return std::nullopt;
}

/// `prefix` followed by the first value of `counter` that makes a name no
/// symbol of `symbols` has yet; `counter` moves past it.
inline std::string freshKernelName(const SymbolTable &symbols, llvm::StringRef prefix,
                                   int64_t &counter) {
  std::string name;
  do
    name = (prefix + llvm::Twine(counter++)).str();
  while (symbols.lookup(name));
  return name;
}

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_TRANSFORMS_LOWERINGSUPPORT_H
