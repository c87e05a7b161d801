//===- OptimizerKernels.h - AdamW and the gradient norm's sums -*- C++ -*-===//
//
// The optimizer's elementwise passes over every parameter, compiled per ISA
// (GCC function multiversioning, as the CPU backend's attention kernels):
// built for baseline x86-64 with errno-setting sqrtf, AdamW's loop had stayed
// scalar (sqrtss, divss), and it was compute-bound: ~13% of a medium
// training step, at 14–16 GB/s where the same loop without sqrt and divide
// streams at 44 GB/s here.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_TRAINING_OPTIMIZERKERNELS_H
#define ATTNEDIT_RUNTIME_TRAINING_OPTIMIZERKERNELS_H

#include <cstdint>

namespace mlir::attnedit {

/// One AdamW step's constants (torch.optim.AdamW's, folded in double and
/// rounded to float as it does for f32 parameters).
struct AdamWStep {
  float gradScale;            ///< clipping factor applied to every gradient
  float beta1, beta2;         ///< moment decay rates
  float oneMinusBeta1, oneMinusBeta2;
  float decay;                ///< 1 - lr · weight decay (1 where not decayed)
  float stepSize;             ///< lr / (1 - beta1^t)
  float rootBiasCorrection2;  ///< sqrt(1 - beta2^t)
  float eps;
};

/// AdamW on `n` elements: updates the moments `m`, `v` and the parameter
/// `p` from the gradient `g`. Elementwise, so any split of a tensor into
/// calls gives the same bits.
void adamwUpdate(float *p, const float *g, float *m, float *v, int64_t n, const AdamWStep &s);

/// Σ x² in double over `n` floats, as eight running sums in a fixed order:
/// the result depends only on the data.
double sumOfSquares(const float *x, int64_t n);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_TRAINING_OPTIMIZERKERNELS_H
