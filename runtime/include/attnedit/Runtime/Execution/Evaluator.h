//===- Evaluator.h - reference interpreter for attnedit IR ----*- C++ -*-===//
#ifndef ATTNEDIT_RUNTIME_EXECUTION_EVALUATOR_H
#define ATTNEDIT_RUNTIME_EXECUTION_EVALUATOR_H

#include "attnedit/Runtime/Execution/ParameterStore.h"
#include "attnedit/Runtime/Execution/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Error.h"

#include <functional>
#include <optional>

namespace mlir::attnedit {

struct EvaluatorOptions {
  /// Runs attnedit.mla in its absorbed form (scores against the latent).
  bool absorbMla = false;
  /// Runs an op another way before its reference kernel would (the
  /// ascend-sim backend's simulated kernels): a result, an error, or
  /// std::nullopt to let the reference kernel run it.
  std::function<std::optional<llvm::Expected<Tensor>>(Operation *,
                                                      llvm::ArrayRef<const Tensor *>)>
      runOp;
};

/// Runs `func` on `args` op by op with the reference kernels. Dynamic
/// dimensions are taken from the actual tensors; any mismatch between the
/// values and the IR's types is an error naming the op.
llvm::Expected<std::vector<Tensor>> evaluate(mlir::func::FuncOp func,
                                             llvm::ArrayRef<Tensor> args,
                                             ParameterStore &parameters,
                                             EvaluatorOptions options = {});

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_EXECUTION_EVALUATOR_H
