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
  /// The chains of `function` whose smallest tiling fits `target`.
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
    const FusedAttention &fused;
    std::map<size_t, llvm::DenseMap<Value, Input>> inputs; // per chain
  };

private:
  std::vector<AttentionChain> chains;
  llvm::DenseMap<Operation *, size_t> chainOf;
};

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_FUSEDATTENTION_H
