//===- Tensor.h - host tensors for the reference runtime ------*- C++ -*-===//
//
// A shaped, row-major buffer of f32 (activations, parameters) or i32 (token
// ids, positions). Buffers are shared and immutable once built, so reshape is
// free and parameters can point straight into a memory-mapped checkpoint.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_EXECUTION_TENSOR_H
#define ATTNEDIT_RUNTIME_EXECUTION_TENSOR_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mlir::attnedit {

class Tensor {
public:
  Tensor() = default;

  /// A new zero-filled f32 tensor.
  static Tensor zeros(llvm::ArrayRef<int64_t> shape);
  /// A rank-1 i32 tensor holding `values`.
  static Tensor ints(std::vector<int32_t> values);
  /// An f32 tensor over memory kept alive by `owner`.
  static Tensor view(llvm::ArrayRef<int64_t> shape, const float *data,
                     std::shared_ptr<const void> owner);

  llvm::ArrayRef<int64_t> shape() const { return dims; }
  int64_t rank() const { return dims.size(); }
  int64_t dim(int64_t i) const { return dims[i < 0 ? i + rank() : i]; }
  int64_t numel() const;
  bool isInt() const { return intData != nullptr; }

  const float *data() const { return floatData; }
  const int32_t *intValues() const { return intData; }
  /// Writable data; only for tensors made by zeros() and not yet shared.
  float *mutableData() { return const_cast<float *>(floatData); }

  /// The same buffer under another shape with the same element count.
  Tensor reshaped(llvm::ArrayRef<int64_t> shape) const;

  std::string shapeString() const;

private:
  llvm::SmallVector<int64_t, 4> dims;
  std::shared_ptr<const void> owner;
  const float *floatData = nullptr;
  const int32_t *intData = nullptr;
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_EXECUTION_TENSOR_H
