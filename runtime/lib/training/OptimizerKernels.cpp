//===- OptimizerKernels.cpp - AdamW and the gradient norm's sums -----------===//
//
// Compiled with -fno-math-errno (runtime/lib/CMakeLists.txt): sqrtf of the
// second moment (never negative) may then be a vector square root. And with
// -ffp-contract=off: vsqrtps and vdivps round as sqrtss and divss do, and
// without fused multiply-adds every clone gives the scalar loop's bits.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Runtime/Training/OptimizerKernels.h"

#include <cmath>

using namespace mlir;

__attribute__((target_clones("avx512f", "avx2", "default"))) void
attnedit::adamwUpdate(float *p, const float *g, float *m, float *v, int64_t n,
                      const AdamWStep &s) {
  const float gradScale = s.gradScale, b1 = s.beta1, b2 = s.beta2, a1 = s.oneMinusBeta1,
              a2 = s.oneMinusBeta2, decay = s.decay, stepSize = s.stepSize,
              rootC2 = s.rootBiasCorrection2, eps = s.eps;
  for (int64_t j = 0; j < n; ++j) {
    float gj = g[j] * gradScale;
    m[j] = b1 * m[j] + a1 * gj;
    v[j] = b2 * v[j] + a2 * gj * gj;
    p[j] = p[j] * decay - stepSize * m[j] / (std::sqrt(v[j]) / rootC2 + eps);
  }
}

__attribute__((target_clones("avx512f", "avx2", "default"))) double
attnedit::sumOfSquares(const float *x, int64_t n) {
  // 32 partial sums: four independent chains of 8-wide adds, so the loop
  // waits on memory, not on the adds' latency (8 sums, one chain, ran at a
  // third of the bandwidth).
  constexpr int kSums = 32;
  double s[kSums] = {};
  int64_t i = 0;
  for (; i + kSums <= n; i += kSums)
    for (int k = 0; k < kSums; ++k)
      s[k] += (double)x[i + k] * x[i + k];
  for (; i < n; ++i)
    s[0] += (double)x[i] * x[i];
  for (int width = kSums / 2; width > 0; width /= 2)
    for (int k = 0; k < width; ++k)
      s[k] += s[k + width];
  return s[0];
}
