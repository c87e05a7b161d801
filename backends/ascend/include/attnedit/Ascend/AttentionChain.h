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
};

/// The chain ending in the output transpose `out`, if it is one.
std::optional<AttentionChain> matchAttentionChain(TransposeOp out);

/// Every chain under `root`. In a training step that is the frozen
/// teacher's attention: a trained layer's probabilities feed the backward
/// pass (a second use), so its chain does not match and stays op by op.
std::vector<AttentionChain> findAttentionChains(Operation *root);

/// The kernel's problem for the chain at run time: q [H, Tq, Dk] and k
/// [Hkv, Tk, Dk] give the sequence lengths.
AttentionProblem attentionProblem(const AttentionChain &c, int64_t tq, int64_t tk, DType dtype);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_ATTENTIONCHAIN_H
