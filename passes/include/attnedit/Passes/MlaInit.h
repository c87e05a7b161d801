//===- MlaInit.h - initial weights of an MLA student ----------*- C++ -*-===//
//
// The numerics behind --attnedit-edit-attention=target=mla: a cold start and a
// data-free warm start from the teacher's GQA/MHA weights. All matrices are
// f32, row-major, in Hugging Face [out, in] layout.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_PASSES_MLAINIT_H
#define ATTNEDIT_PASSES_MLAINIT_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <vector>

namespace mlir::attnedit {

/// One teacher attention layer. RoPE rotates the whole head.
struct TeacherAttention {
  int64_t hidden, numHeads, numKvHeads, headDim;
  bool interleavedRope;             // pairs (2i, 2i+1); else rotate_half (i, i + D/2)
  llvm::ArrayRef<float> q, k, v, o; // [Hq·D, h], [Hkv·D, h], [Hkv·D, h], [h, Hq·D]
  llvm::ArrayRef<float> qNorm, kNorm; // [D] each (Qwen3), or empty
  llvm::ArrayRef<float> inputNorm;    // [h] RMSNorm weight feeding attention, or empty
  /// [h, h] E[x·xᵀ] of the attention's input x on calibration data, or empty
  /// (data-free). Given, the joint NoPE-key/value factorisation minimises the
  /// error on those inputs, |(W - W_r)·C^1/2|, instead of |W - W_r|
  /// (activation-aware SVD: whiten by C^1/2, factor, un-whiten the down-projection).
  llvm::ArrayRef<float> inputCovariance;
};

struct MlaShape {
  int64_t qLoraRank; // 0: full-rank q_proj
  int64_t kvLoraRank, qkNopeHeadDim, qkRopeHeadDim, vHeadDim;
  /// MLA's RoPE pair j takes the teacher's pair j·ropeStride; 0 means
  /// D / qkRopeHeadDim (the kept frequencies spread over the teacher's range).
  int64_t ropeStride = 0;
};

/// The stride `shape` keeps the teacher's RoPE pairs at, for head_dim `d`.
inline int64_t ropeStrideOf(const MlaShape &shape, int64_t d) {
  return shape.ropeStride ? shape.ropeStride : d / shape.qkRopeHeadDim;
}

/// The student's rope_theta that makes its frequency j (theta_s^(-2j/r))
/// the teacher's frequency j·K (theta^(-2jK/D)): theta^(K·r/D).
double studentRopeTheta(double teacherTheta, const MlaShape &shape, int64_t d);

/// How svdInitMla maps the teacher (see there).
enum class MlaStart {
  /// From the weights alone, or with `inputCovariance` an activation-aware
  /// factorisation of the NoPE keys and values.
  Svd,
  /// TransMLA's calibrated start (RoRoPE and BKV-PCA, arXiv 2502.07864 §4) with
  /// a latent the RMSNorm passes unchanged; needs `inputCovariance`.
  RoRoPE,
};

/// DeepSeek-V2/V3 tensors; the q_proj / q_lora ones not in use are empty.
struct MlaWeights {
  std::vector<float> qProj, qAProj, qANorm, qBProj, kvAProj, kvANorm, kvBProj, oProj;
};

/// Warm start, for the teacher's softmax scale 1/sqrt(D):
///  - RoPE: MLA's r-dim RoPE frequency j equals the teacher's frequency
///    j·K (K = ropeStride; by default D/r, which needs D % r == 0, with the
///    teacher's rope_theta; else the student's rope_theta is
///    studentRopeTheta), so those pairs are kept (r even, (r/2-1)·K < D/2).
///    Pairs not kept lose their rotation: low frequencies, which turn little
///    over a context, lose least, so K = 1 (the r/2 highest) usually
///    starts closest. The one
///    shared k_pe takes, per pair, the principal combination of the teacher's
///    KV heads (top eigenvector u of their Gram matrix); query head j keeps
///    u[g(j)] times its own pair. Exact for one KV head.
///  - What that leaves of each key (all other pairs, and the kept pairs'
///    residual (I - u·uᵀ) across heads) becomes position-free NoPE keys.
///  - NoPE keys and values: joint truncated SVD of [α·K_nope; V] (α balances
///    their norms) gives the latent down-projection and per-head
///    up-projections; per-head bilinear forms are re-factored by SVD when
///    qk_nope_head_dim or v_head_dim is below the teacher's head_dim.
///  - Latent RMSNorms cannot be undone by a linear map; their weights are set
///    to the latent's expected RMS for a unit-variance input scaled by
///    `inputNorm`, so a typical token passes at about unit gain.
///  - Qwen3's q/k norm weights are folded into the rows; their per-token
///    1/rms is dropped (distillation absorbs it).
///
/// MlaStart::RoRoPE measures all three choices on the calibration inputs
/// (covariance C of x = g ⊙ z, g = `inputNorm`, z the unit-RMS input):
///  - RoRoPE: the per-pair principal combination u is that of the keys the
///    data produces (the Gram matrix of the heads' pair rows under C), not of
///    the weights. The same g×g rotation acts on both halves of a pair, so it
///    commutes with RoPE, and q·k is unchanged until the residual leaves RoPE.
///  - BKV: α balances the NoPE keys' and the values' output energy under C.
///  - The latent spans the activation-aware factorisation's subspace, but its
///    rows are re-orthonormalised in z and the up-projections refitted by
///    least squares under C. The whitened rows make the latent's RMS swing
///    per token (the norm cannot follow); orthonormal rows in z keep it at
///    rms(z) = 1 when the rank is the hidden size, so the latent norm is then
///    exact, and nearly so when the latent holds most of z.
/// FreqFold (sharing one RoPE key across adjacent frequencies) is not done:
/// it pays when neighbouring frequencies nearly agree (64 pairs), while a
/// small head's neighbours differ by theta^(2/D) (10x for D = 8), where
/// position-free is the nearer frequency for the lower one.
llvm::Expected<MlaWeights> svdInitMla(const TeacherAttention &teacher, const MlaShape &shape,
                                      MlaStart start = MlaStart::Svd);

/// Cold start: N(0, 1/fan_in) weights from `seed`, norm weights 1.
MlaWeights randomInitMla(int64_t hidden, int64_t numHeads, const MlaShape &shape,
                         uint64_t seed);

} // namespace mlir::attnedit

#endif // ATTNEDIT_PASSES_MLAINIT_H
