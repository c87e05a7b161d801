//===- FusedAttention.h - attention chains as one kernel at run time -*- C++ -*-===//
//
// `--backend=ascend-sim` runs a function op by op through the reference
// evaluator's hook. The attention chains in it (AttentionChain.h) run as
// one flash-attention mix kernel instead: as the evaluator reaches the
// chain's ops, their inputs (q, k and v before repeat_kv, the sinks) are
// kept, the intermediates (kᵀ, scores, probabilities: one use each, inside
// the chain) get placeholders nothing reads, and the chain's last op gets
// the kernel's result.
//
// In a training step a trained layer's chain matches together with its
// backward (AttentionGradChain): the forward kernel also saves each row's
// log-sum-exp, and when the backward's first op that reads dO is reached
// the backward mix kernel runs once; its ops then get placeholders, and
// the ops whose results leave it (dQ, dK, dV, d sinks) the kernel's
// gradients.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_FUSEDATTENTION_H
#define ATTNEDIT_ASCEND_FUSEDATTENTION_H

#include "attnedit/Ascend/AttentionChain.h"
#include "attnedit/Ascend/OpSimulator.h"

#include "llvm/ADT/DenseMap.h"

#include <map>

namespace mlir::attnedit::ascend {

class FusedAttention {
public:
  /// The chains of `function` whose smallest tiling fits `target`, with
  /// their backward where one matches and its smallest tiling fits.
  FusedAttention(Operation *function, const TargetDescription &target);

  size_t size() const { return chains.size(); }

  /// One evaluation of the function: the chains' inputs seen so far.
  class Run {
  public:
    explicit Run(const FusedAttention &fused) : fused(fused) {}
    /// For an op of a chain: a placeholder for an intermediate (no kernel),
    /// or, at the chain's last op, the fused kernel's result. std::nullopt
    /// for other ops.
    std::optional<llvm::Expected<SimulatedOp>> run(OpSimulator &sim, Operation *op,
                                                   llvm::ArrayRef<HostTensor> operands);

  private:
    struct Input {
      llvm::SmallVector<int64_t, 4> shape;
      std::vector<float> values;
    };
    /// What a chain's backward needs of its forward, then its results.
    struct Saved {
      AttentionProblem problem;
      std::vector<float> o, lse, dO;
      bool haveDO = false;
      std::optional<OpSimulator::AttentionGrads> grads;
    };
    std::optional<llvm::Expected<SimulatedOp>> runGrad(OpSimulator &sim, size_t chain,
                                                       Operation *op,
                                                       llvm::ArrayRef<HostTensor> operands);

    const FusedAttention &fused;
    std::map<size_t, llvm::DenseMap<Value, Input>> inputs; // per chain
    std::map<size_t, Saved> saved;                         // per chain with a backward
  };

private:
  std::vector<AttentionChain> chains;
  llvm::DenseMap<Operation *, size_t> chainOf, gradOf;
};

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_FUSEDATTENTION_H
