//===- Kernels.h - reference kernels of the attnedit primitives -*- C++ -*-===//
//
// Simple, obviously correct f32 kernels: the oracle every compiled path is
// checked against. GEMMs go through OpenBLAS (cblas_sgemm), which uses all
// cores. Shapes are validated by the caller (the evaluator) except where a
// value, not a shape, can be wrong (token ids).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_EXECUTION_KERNELS_H
#define ATTNEDIT_RUNTIME_EXECUTION_KERNELS_H

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/Tensor.h"

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
  bool inverse = false; // rotate by -angle: the transpose, rope's VJP
};
/// Inverse frequencies, rotaryDim / 2 of them, with any Llama 3 scaling applied.
std::vector<double> ropeInverseFrequencies(const RopeConfig &config);
Tensor rope(const Tensor &x, const Tensor &positions, const RopeConfig &config);

Tensor matmul(const Tensor &a, const Tensor &b);
/// With `sinks` [H], x is [H, Tq, Tk] normalised along the last axis and
/// exp(sinks[h]) joins each denominator.
Tensor softmax(const Tensor &x, int64_t axis, const Tensor *sinks = nullptr);
/// Masked entries become -inf, or 0 with `zeroFill` (the mask's VJP);
/// `segments` > 1 also masks across packed sequences (causal_mask's attribute).
Tensor causalMask(const Tensor &x, int64_t window, bool zeroFill = false, int64_t segments = 1);
Tensor repeatKv(const Tensor &x, int64_t repeats);
Tensor silu(const Tensor &x);
Tensor sigmoid(const Tensor &x);
/// Repeats size-1 dimensions of `x` up to `shape` (same rank).
Tensor broadcast(const Tensor &x, llvm::ArrayRef<int64_t> shape);
Tensor add(const Tensor &a, const Tensor &b);
Tensor mul(const Tensor &a, const Tensor &b);
Tensor scale(const Tensor &x, double factor);
Tensor transpose(const Tensor &x, llvm::ArrayRef<int64_t> permutation);
Tensor slice(const Tensor &x, int64_t axis, int64_t offset, int64_t size);
Tensor concat(llvm::ArrayRef<Tensor> xs, int64_t axis);

//===----------------------------------------------------------------------===//
// Reductions and gradients
//===----------------------------------------------------------------------===//

Tensor reduceSum(const Tensor &x, int64_t axis, bool keepDims);
Tensor pad(const Tensor &x, int64_t axis, int64_t before, int64_t after);
/// Row v of the [vocab, D] result sums grad[t] over the t with ids[t] = v.
Tensor embeddingGrad(const Tensor &grad, const Tensor &ids, int64_t vocab);
Tensor rmsNormGrad(const Tensor &x, const Tensor &w, const Tensor &grad, double eps);
Tensor rmsNormWeightGrad(const Tensor &x, const Tensor &grad, double eps);
Tensor softmaxGrad(const Tensor &y, const Tensor &grad, int64_t axis);
/// Gradient of the sink logits of a softmax over [H, Tq, Tk] with output y.
Tensor sinkGrad(const Tensor &y, const Tensor &grad);
Tensor siluGrad(const Tensor &x, const Tensor &grad);
Tensor sigmoidGrad(const Tensor &y, const Tensor &grad);

//===----------------------------------------------------------------------===//
// Losses (LossKernels.cpp): scalars averaged over rows; `kind` names the op.
//===----------------------------------------------------------------------===//

/// `rhs` is the target tensor (mse), student logits (kl), target ids
/// (cross entropy) or the second feature tensor (cosine).
llvm::Expected<Tensor> loss(LossKind kind, const Tensor &lhs, const Tensor &rhs,
                            double temperature = 1.0);
/// d loss / d operand `index`, scaled by the scalar cotangent `grad`.
llvm::Expected<Tensor> lossGrad(LossKind kind, const Tensor &lhs, const Tensor &rhs,
                                const Tensor &grad, int64_t index, double temperature = 1.0);
/// log-softmax of one row of `n` logits divided by `temperature`, in double:
/// the losses' and every evaluation's (perplexity, KL, top-1, choices).
void logSoftmax(const float *logits, int64_t n, double temperature, std::vector<double> &out);
/// KL(p || q) of two rows of log-probabilities.
double klDivergence(llvm::ArrayRef<double> logP, llvm::ArrayRef<double> logQ);

//===----------------------------------------------------------------------===//
// Composite attention (AttentionKernels.cpp)
//===----------------------------------------------------------------------===//

/// softmax(scale·q·kᵀ + causal/window mask [+ sinks])·v with q [Tq, H, Dqk],
/// k [Tk, Hkv, Dqk], v [Tk, Hkv, Dv]; query head h reads KV head
/// h / (H / Hkv); the queries are the last Tq of the Tk positions. Result
/// [Tq, H, Dv].
Tensor attend(const Tensor &q, const Tensor &k, const Tensor &v, double scale,
              int64_t window, const Tensor *sinks);

/// attnedit.attention and attnedit.gate_swa; absent operands are null.
struct AttentionWeights {
  const Tensor *q, *k, *v, *o;
  const Tensor *qBias = nullptr, *kBias = nullptr, *vBias = nullptr;
  const Tensor *qNorm = nullptr, *kNorm = nullptr;
  const Tensor *gate = nullptr, *sinks = nullptr;
};
struct AttentionConfig {
  int64_t heads, kvHeads, headDim;
  double scale;
  RopeConfig rope;
  double normEps;
  int64_t window = 0;
  GateKind gate = GateKind::None;
};
Tensor attention(const Tensor &x, const Tensor &positions, const AttentionWeights &w,
                 const AttentionConfig &config);

/// attnedit.mla; qProj or (qA, qANorm, qB) is given.
struct MlaWeights {
  const Tensor *qProj = nullptr, *qA = nullptr, *qANorm = nullptr, *qB = nullptr;
  const Tensor *kvA, *kvANorm, *kvB, *o;
};
struct MlaConfig {
  int64_t heads, kvLoraRank, nopeDim, ropeDim, vDim;
  double scale;
  RopeConfig rope; // rotaryDim == ropeDim
  double normEps;
};
/// `absorbed` computes scores against the latent itself (kv_b_proj folded
/// into the query and output sides, as decoding from a latent cache does)
/// instead of expanding per-head keys and values; both give the same result.
Tensor mla(const Tensor &x, const Tensor &positions, const MlaWeights &w,
           const MlaConfig &config, bool absorbed);

} // namespace mlir::attnedit::kernels

#endif // ATTNEDIT_RUNTIME_EXECUTION_KERNELS_H
