//===- RopeFrequencies.h - RoPE's inverse frequencies ----------*- C++ -*-===//
//
// One definition of what attnedit.rope (and the attention composites) rotate
// by, shared by the reference kernels and every backend's lowering.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_IR_ROPEFREQUENCIES_H
#define ATTNEDIT_IR_ROPEFREQUENCIES_H

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace mlir::attnedit {

/// theta^(-2i/rotaryDim) for i < rotaryDim / 2, with Llama 3.1 scaling
/// (factor, low_freq_factor, high_freq_factor, original context) applied
/// when given.
std::vector<double>
ropeInverseFrequencies(double theta, int64_t rotaryDim,
                       const std::optional<std::array<double, 4>> &llama3Scaling);

} // namespace mlir::attnedit

#endif // ATTNEDIT_IR_ROPEFREQUENCIES_H
