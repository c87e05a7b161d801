//===- Tensor.cpp - host tensors -------------------------------------------===//

#include "attnedit/Runtime/Execution/Tensor.h"
#include "attnedit/IR/AttnEditDialect.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cassert>

using namespace mlir;
using namespace mlir::attnedit;

static int64_t product(llvm::ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

Tensor Tensor::zeros(llvm::ArrayRef<int64_t> shape) {
  auto buffer = std::make_shared<std::vector<float>>(product(shape), 0.0f);
  Tensor t;
  t.dims.assign(shape.begin(), shape.end());
  t.floatData = buffer->data();
  t.owner = std::move(buffer);
  return t;
}

Tensor Tensor::ints(std::vector<int32_t> values) {
  auto buffer = std::make_shared<std::vector<int32_t>>(std::move(values));
  Tensor t;
  t.dims = {(int64_t)buffer->size()};
  t.intData = buffer->data();
  t.owner = std::move(buffer);
  return t;
}

Tensor Tensor::view(llvm::ArrayRef<int64_t> shape, const float *data,
                    std::shared_ptr<const void> owner) {
  Tensor t;
  t.dims.assign(shape.begin(), shape.end());
  t.floatData = data;
  t.owner = std::move(owner);
  return t;
}

int64_t Tensor::numel() const { return product(dims); }

Tensor Tensor::reshaped(llvm::ArrayRef<int64_t> shape) const {
  assert(product(shape) == numel() && "reshape must keep the element count");
  Tensor t = *this;
  t.dims.assign(shape.begin(), shape.end());
  return t;
}

std::string Tensor::shapeString() const { return formatShape(dims); }
