//===- FusedAttention.cpp - attention chains as one kernel at run time ----===//

#include "attnedit/Ascend/FusedAttention.h"

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;

FusedAttention::FusedAttention(Operation *function, const TargetDescription &target) {
  for (AttentionChain &c : findAttentionChains(function)) {
    // Buffers do not depend on the sequence lengths: if the smallest tiles
    // fit, every length runs (the tiling search then picks larger ones).
    AttentionProblem p = attentionProblem(c, 1, 1, DType::BF16);
    if (!attentionFits(p, {16, 16, 2, 16, 16}, target))
      continue;
    for (Operation *op : c.ops)
      chainOf[op] = chains.size();
    chains.push_back(std::move(c));
  }
}

std::optional<llvm::Expected<SimulatedOp>>
FusedAttention::Run::run(OpSimulator &sim, Operation *op, llvm::ArrayRef<HostTensor> operands) {
  auto found = fused.chainOf.find(op);
  if (found == fused.chainOf.end())
    return std::nullopt;
  const AttentionChain &c = fused.chains[found->second];
  llvm::DenseMap<Value, Input> &seen = inputs[found->second];
  // Keep the chain's inputs as they go by: the evaluator may free them
  // before the chain's last op.
  for (auto [operand, value] : llvm::zip(op->getOperands(), operands))
    if ((operand == c.q || operand == c.k || operand == c.v || operand == c.sinks) &&
        !seen.count(operand) && value.data)
      seen[operand] = {value.shape, std::vector<float>(value.data, value.data + value.numel())};

  if (op != c.ops.back()) {
    // A placeholder of the intermediate's shape: its one use is in the chain.
    llvm::SmallVector<int64_t, 4> shape = operands[0].shape;
    if (auto rep = dyn_cast<RepeatKvOp>(op))
      shape[0] *= rep.getRepeats();
    else if (auto t = dyn_cast<TransposeOp>(op))
      for (auto [i, p] : llvm::enumerate(t.getPermutation()))
        shape[i] = operands[0].shape[p];
    else if (isa<MatmulOp>(op))
      shape.back() = operands[1].shape.back();
    SimulatedOp placeholder;
    placeholder.shape = shape;
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    placeholder.values.assign(n, 0.0f);
    return placeholder;
  }

  for (Value v : {c.q, c.k, c.v})
    if (!seen.count(v))
      return llvm::Expected<SimulatedOp>(llvm::createStringError(
          llvm::inconvertibleErrorCode(), "ascend-sim: an attention chain's input was not seen"));
  const Input &q = seen[c.q], &k = seen[c.k], &v = seen[c.v];
  int64_t tq = q.shape[1], tk = k.shape[1];
  if (tq > tk)
    return llvm::Expected<SimulatedOp>(llvm::createStringError(
        llvm::inconvertibleErrorCode(), "ascend-sim: attention with more queries (%lld) than keys "
                                        "(%lld)",
        (long long)tq, (long long)tk));
  AttentionProblem p = attentionProblem(c, tq, tk, sim.options().dtype);
  llvm::ArrayRef<float> sinks;
  if (c.sinks)
    sinks = seen[c.sinks].values;
  auto result = sim.runAttention(p, q.values, k.values, v.values, sinks);
  inputs.erase(found->second);
  return result;
}
