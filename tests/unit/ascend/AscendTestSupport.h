//===- AscendTestSupport.h - shared helpers of the Ascend unit tests -*- C++ -*-===//
#ifndef ATTNEDIT_TESTS_UNIT_ASCEND_ASCENDTESTSUPPORT_H
#define ATTNEDIT_TESTS_UNIT_ASCEND_ASCENDTESTSUPPORT_H

#include "attnedit/Runtime/Execution/Tensor.h"

#include <random>
#include <vector>

namespace mlir::attnedit::ascend::test {

/// A tensor of `shape` with values uniform in [lo, hi).
inline Tensor randomTensor(std::vector<int64_t> shape, std::mt19937 &rng, float lo = -1,
                           float hi = 1) {
  Tensor t = Tensor::zeros(shape);
  std::uniform_real_distribution<float> d(lo, hi);
  for (int64_t k = 0; k < t.numel(); ++k)
    t.mutableData()[k] = d(rng);
  return t;
}

} // namespace mlir::attnedit::ascend::test

#endif // ATTNEDIT_TESTS_UNIT_ASCEND_ASCENDTESTSUPPORT_H
