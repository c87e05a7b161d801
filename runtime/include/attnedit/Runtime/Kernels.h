//===- Kernels.h - reference kernels of the attnedit primitives -*- C++ -*-===//
//
// Simple, obviously correct f32 kernels: the oracle every compiled path is
// checked against. GEMMs go through OpenBLAS (cblas_sgemm), which uses all
// cores. Shapes are validated by the caller (the evaluator) except where a
// value, not a shape, can be wrong (token ids).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_KERNELS_H
#define ATTNEDIT_RUNTIME_KERNELS_H

#include "attnedit/Runtime/Tensor.h"

#include "llvm/Support/Error.h"

#include <array>
#include <optional>

namespace mlir::attnedit::kernels {

llvm::Expected<Tensor> embedding(const Tensor &table, const Tensor &ids);
Tensor linear(const Tensor &x, const Tensor &w, const Tensor *bias);
Tensor rmsNorm(const Tensor &x, const Tensor &w, double eps);

struct RopeConfig {
  double theta;
  int64_t rotaryDim;
  bool interleaved;
  std::optional<std::array<double, 4>> llama3Scaling;
};
/// Inverse frequencies, rotaryDim / 2 of them, with any Llama 3 scaling applied.
std::vector<double> ropeInverseFrequencies(const RopeConfig &config);
Tensor rope(const Tensor &x, const Tensor &positions, const RopeConfig &config);

Tensor matmul(const Tensor &a, const Tensor &b);
Tensor softmax(const Tensor &x, int64_t axis);
Tensor causalMask(const Tensor &x, int64_t window);
Tensor repeatKv(const Tensor &x, int64_t repeats);
Tensor silu(const Tensor &x);
Tensor add(const Tensor &a, const Tensor &b);
Tensor mul(const Tensor &a, const Tensor &b);
Tensor scale(const Tensor &x, double factor);
Tensor transpose(const Tensor &x, llvm::ArrayRef<int64_t> permutation);
Tensor slice(const Tensor &x, int64_t axis, int64_t offset, int64_t size);
Tensor concat(llvm::ArrayRef<Tensor> xs, int64_t axis);

} // namespace mlir::attnedit::kernels

#endif // ATTNEDIT_RUNTIME_KERNELS_H
