//===- AttentionChain.h - decomposed attention the mix kernel takes -*- C++ -*-===//
//
// Every attention kind decomposes (attnedit/IR/PrimitiveBuilder.h, attend)
// into
//   [repeat_kv] → transpose(k, 0 2 1) → matmul(q, ·) → scale → causal_mask
//     → softmax(+sinks) → matmul(·, [repeat_kv] v) → transpose(·, 1 0 2)
// which the flash-attention mix kernel (AttentionKernel.h) computes in one
// launch, reading K and V per KV head in place. A chain qualifies when each
// intermediate has that one use and the head counts and head dims are
// static; the sequence lengths may be dynamic.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_ATTENTIONCHAIN_H
#define ATTNEDIT_ASCEND_ATTENTIONCHAIN_H

#include "attnedit/Ascend/AttentionKernel.h"
#include "attnedit/IR/AttnEditOps.h"

#include "llvm/ADT/SmallVector.h"

#include <optional>

namespace mlir::attnedit::ascend {

/// The backward of a trained layer's chain as autodiff writes it (VJPs of
/// the chain's ops, attnedit/Transforms/Autodiff):
///   dVr = transpose(P)·dO, dP = dO·transpose(Vr), softmax_grad(P, dP)
///   [, sink_grad(P, dP)] → causal_mask(zero_fill) → scale → dS,
///   dQ = dS·transpose(kᵀ), dKr = transpose(transpose(q)·dS),
///   with repeat_kv: reduce_sum over each group's heads of dKr and dVr,
/// which the backward mix kernel (AttentionGradKernel.h) computes in one
/// launch. Every intermediate is used inside it only.
struct AttentionGradChain {
  /// Program order; none is a reshape (views run as they are).
  llvm::SmallVector<Operation *, 16> ops;
  Value dO; // [H, Tq, Dv]
  /// The ops whose results leave: dQ [H, Tq, Dk]; dK and dV per KV head
  /// ([Hkv, Tk·D] after the group's reduce_sum, or [Hkv, Tk, D]); d sinks.
  Operation *dq = nullptr, *dk = nullptr, *dv = nullptr, *dsinks = nullptr;
};

struct AttentionChain {
  /// The chain's ops in program order; the last is the output transpose.
  llvm::SmallVector<Operation *, 10> ops;
  Value q;            // [H, Tq, Dk]
  Value k, v;         // [Hkv, Tk, Dk], [Hkv, Tk, Dv]: repeat_kv's inputs, or k / v
  Value sinks;        // [H] or null
  int64_t heads = 0, kvHeads = 0, dk = 0, dv = 0, window = 0;
  double scale = 1;
  /// v is the first dv columns of k (a slice of k before repeat_kv): MLA's
  /// absorbed form, V read from the latent K tile.
  bool valueFromKey = false;
  /// In a training step (findAttentionChains with `training`): the backward
  /// that alone uses the forward's probabilities, kᵀ and repeated v.
  std::optional<AttentionGradChain> grad;
};

/// The chain ending in the output transpose `out`, if it is one. With
/// `training`, a chain whose probabilities, kᵀ and repeated v are also used
/// by exactly its backward (AttentionGradChain) matches with `grad` set.
std::optional<AttentionChain> matchAttentionChain(TransposeOp out, bool training = false);

/// Every chain under `root`. Without `training`, a trained layer's chain
/// (its probabilities feed the backward pass, a second use) does not match
/// and stays op by op; with it, it matches together with its backward.
std::vector<AttentionChain> findAttentionChains(Operation *root, bool training = false);

/// The kernel's problem for the chain at run time: q [H, Tq, Dk] and k
/// [Hkv, Tk, Dk] give the sequence lengths.
AttentionProblem attentionProblem(const AttentionChain &c, int64_t tq, int64_t tk, DType dtype);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_ATTENTIONCHAIN_H
