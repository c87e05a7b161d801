//===- AttentionGradKernel.h - flash-attention backward mix kernel -*- C++ -*-===//
//
// The backward of softmax(scale·q·kᵀ + mask [, sinks])·v as one MIX kernel,
// FlashAttention-2 style (Dao 2023, Alg. 2; CANN's FlashAttentionScoreGrad
// runs the same recompute on the 910B, research §9.3): S and P are never
// stored; each (query tile, KV tile) pair recomputes S = Q·Kᵀ on the Cube
// and P = exp(scale·S + mask - LSE) on the Vector unit from the forward's
// saved log-sum-exp, with
//   dP = dO·Vᵀ (Cube), D = rowsum(dO ∘ O) (Vector, once per query row),
//   dS = scale · P ∘ (dP - D) (Vector),
//   dV = Σ Pᵀ·dO, dK = Σ dSᵀ·Q, dQ = Σ dS·K (Cube, accumulated in L0C).
// Tiles go between the cores through a GM ring with cross-core flags, as in
// the forward (AttentionKernel.h). The Cube has no atomic add here, so the
// kernel runs two passes over the pairs: query tiles outer (dQ, and D and
// the sink gradient rows), sync_all, then KV tiles outer (dK, dV; a GQA
// group's query heads all accumulate into their KV head's tile).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_ATTENTIONGRADKERNEL_H
#define ATTNEDIT_ASCEND_ATTENTIONGRADKERNEL_H

#include "attnedit/Ascend/AttentionKernel.h"

namespace mlir::attnedit::ascend {

/// bq query rows (each AIV takes bq / 2) by bk keys per pair of tiles; the
/// cube core computes the scores of `ring - 1` pairs ahead of their
/// products (a ring of `ring` slots); the Cube contracts in chunks of
/// kChunk (0: the largest of 128, 64, 32, 16 dividing bq, bk and the padded
/// head dims).
struct AttentionGradTiling {
  int64_t bq = 0, bk = 0, ring = 2, kChunk = 0;
  /// Columns of dO and O the query pass's D = rowsum(dO ∘ O) takes at a
  /// time (a multiple of 16 dividing the padded dv); 0: all of dv when the
  /// vector cores' tiles fit UB so, else the largest that fits.
  int64_t dChunk = 0;
};

/// Whether the backward kernel takes `p` at all (training: tq == tk, no
/// value-from-key) and `tiling` fits the target's buffers; otherwise why.
bool attentionGradFits(const AttentionProblem &p, const AttentionGradTiling &tiling,
                       const TargetDescription &t, std::string *why = nullptr);

/// GM arguments, in order: q [groups, rows, dk], k [groups, tk, dk], v
/// [groups, tk, dv], dO [groups, rows, dv] (the Cube's dtype), O [tq,
/// heads·dv] f32 (the forward's output layout), the forward's log-sum-exp
/// [groups, rows, 1], the mask rows (attentionMaskRows with bk), the sinks
/// [groups, rows, 1] (with sinks); workspace: the rings S, dP (f32), P, dS
/// (the Cube's dtype) [blockDim·ring, bq, bk] and D [groups, rows, 1]; outputs
/// f32: dQ [groups, rows, dk], dK [groups, tk, dk], dV [groups, tk, dv],
/// with sinks the per-row sink gradient -exp(sink - lse)·D [groups, rows, 1]
/// (a head's sum over its rows is d sink).
KernelOp buildAttentionGradKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                                  const AttentionProblem &p, const AttentionGradTiling &tiling,
                                  const TargetDescription &t);

using AttentionGradChoice = TilingSearchResult<AttentionGradTiling>;

/// Times the first six fitting tilings (bq, bk in 16..128, ring 2 to 4,
/// largest tiles first) on the sampled blocks and returns the fastest.
llvm::Expected<AttentionGradChoice> searchAttentionGradTiling(MLIRContext *context,
                                                              const AttentionProblem &p,
                                                              const TargetDescription &t);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_ATTENTIONGRADKERNEL_H
