//===- RopeFrequencies.cpp - RoPE's inverse frequencies --------------------===//

#include "attnedit/IR/RopeFrequencies.h"

#include <cmath>

std::vector<double>
mlir::attnedit::ropeInverseFrequencies(double theta, int64_t rotaryDim,
                                       const std::optional<std::array<double, 4>> &llama3Scaling) {
  int64_t half = rotaryDim / 2;
  std::vector<double> inv(half);
  for (int64_t i = 0; i < half; ++i)
    inv[i] = std::pow(theta, -2.0 * i / rotaryDim);
  if (!llama3Scaling)
    return inv;
  // Llama 3.1: keep high frequencies, divide low ones by `factor`, and blend
  // the band between (transformers' _compute_llama3_parameters).
  auto [factor, lowFactor, highFactor, original] = *llama3Scaling;
  double lowWavelen = original / lowFactor, highWavelen = original / highFactor;
  for (double &f : inv) {
    double wavelen = 2 * M_PI / f;
    if (wavelen > lowWavelen) {
      f /= factor;
    } else if (wavelen >= highWavelen) {
      double smooth = (original / wavelen - lowFactor) / (highFactor - lowFactor);
      f = (1 - smooth) * f / factor + smooth * f;
    }
  }
  return inv;
}
