//===- FusedAttention.cpp - attention chains as one kernel at run time ----===//

#include "attnedit/Ascend/FusedAttention.h"
#include "attnedit/Ascend/AttentionGradKernel.h"

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;

namespace {

/// A result nothing reads, of `op`'s shape for these operands.
SimulatedOp placeholder(Operation *op, llvm::ArrayRef<HostTensor> operands) {
  llvm::SmallVector<int64_t, 4> shape = operands[0].shape;
  if (auto rep = dyn_cast<RepeatKvOp>(op))
    shape[0] *= rep.getRepeats();
  else if (auto t = dyn_cast<TransposeOp>(op))
    for (auto [i, p] : llvm::enumerate(t.getPermutation()))
      shape[i] = operands[0].shape[p];
  else if (isa<MatmulOp>(op))
    shape.back() = operands[1].shape.back();
  SimulatedOp out;
  out.shape = shape;
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  out.values.assign(n, 0.0f);
  return out;
}

llvm::Error error(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "ascend-sim: " + msg.str());
}

} // namespace

FusedAttention::FusedAttention(Operation *function, const TargetDescription &target) {
  for (AttentionChain &c : findAttentionChains(function, /*training=*/true)) {
    // Buffers do not depend on the sequence lengths: if the smallest tiles
    // fit, every length runs (the tiling search then picks larger ones).
    AttentionProblem p = attentionProblem(c, 1, 1, DType::BF16);
    if (!attentionFits(p, {16, 16, 2, 16, 16}, target) ||
        (c.grad && !attentionGradFits(p, {16, 16}, target)))
      continue;
    for (Operation *op : c.ops)
      chainOf[op] = chains.size();
    if (c.grad)
      for (Operation *op : c.grad->ops)
        gradOf[op] = chains.size();
    chains.push_back(std::move(c));
  }
}

std::optional<llvm::Expected<SimulatedOp>>
FusedAttention::Run::runGrad(OpSimulator &sim, size_t chain, Operation *op,
                             llvm::ArrayRef<HostTensor> operands) {
  using Result = std::optional<llvm::Expected<SimulatedOp>>;
  const AttentionGradChain &g = *fused.chains[chain].grad;
  auto it = saved.find(chain);
  if (it == saved.end())
    return Result(error("an attention backward op ran before its forward chain"));
  Saved &sv = it->second;
  for (auto [operand, value] : llvm::zip(op->getOperands(), operands))
    if (operand == g.dO && !sv.haveDO && value.data) {
      sv.dO.assign(value.data, value.data + value.numel());
      sv.haveDO = true;
    }
  SimulatedOp out;
  if (!sv.grads && sv.haveDO) {
    const AttentionChain &c = fused.chains[chain];
    llvm::DenseMap<Value, Input> &seen = inputs[chain];
    llvm::ArrayRef<float> sinks;
    if (c.sinks)
      sinks = seen[c.sinks].values;
    auto grads = sim.runAttentionGrad(sv.problem, seen[c.q].values, seen[c.k].values,
                                      seen[c.v].values, sinks, sv.o, sv.lse, sv.dO);
    if (!grads)
      return Result(grads.takeError());
    sv.grads = std::move(*grads);
    // The op that launched it carries the kernels and their time.
    out.kernels = sv.grads->kernels;
    out.modelledSeconds = sv.grads->modelledSeconds;
  }
  const AttentionProblem &p = sv.problem;
  auto result = [&](std::vector<float> &values, llvm::SmallVector<int64_t, 4> shape) -> Result {
    if (!sv.grads)
      return Result(error("an attention gradient was needed before dO"));
    out.shape = shape;
    out.values = std::move(values);
    return Result(std::move(out));
  };
  auto perKvHead = [&](Operation *o, int64_t d) -> llvm::SmallVector<int64_t, 4> {
    if (isa<ReduceSumOp>(o))
      return {p.groups, p.tk * d};
    return {p.groups, p.tk, d};
  };
  if (op == g.dq)
    return result(sv.grads->dq, {p.heads(), p.tq, p.dk});
  if (op == g.dk)
    return result(sv.grads->dk, perKvHead(op, p.dk));
  if (op == g.dv)
    return result(sv.grads->dv, perKvHead(op, p.dv));
  if (op == g.dsinks)
    return result(sv.grads->dsinks, {p.heads()});
  SimulatedOp filler = placeholder(op, operands);
  filler.kernels = std::move(out.kernels);
  filler.modelledSeconds = out.modelledSeconds;
  if (op == g.ops.back()) { // nothing of this chain runs after its last op
    saved.erase(chain);
    inputs.erase(chain);
  }
  return Result(std::move(filler));
}

std::optional<llvm::Expected<SimulatedOp>>
FusedAttention::Run::run(OpSimulator &sim, Operation *op, llvm::ArrayRef<HostTensor> operands) {
  auto found = fused.chainOf.find(op);
  if (found == fused.chainOf.end()) {
    auto backward = fused.gradOf.find(op);
    if (backward == fused.gradOf.end())
      return std::nullopt;
    return runGrad(sim, backward->second, op, operands);
  }
  const AttentionChain &c = fused.chains[found->second];
  llvm::DenseMap<Value, Input> &seen = inputs[found->second];
  // Keep the chain's inputs as they go by: the evaluator may free them
  // before the chain's last op.
  for (auto [operand, value] : llvm::zip(op->getOperands(), operands))
    if ((operand == c.q || operand == c.k || operand == c.v || operand == c.sinks) &&
        !seen.count(operand) && value.data)
      seen[operand] = {value.shape, std::vector<float>(value.data, value.data + value.numel())};

  // An intermediate: its uses are in the chain (or its backward).
  if (op != c.ops.back())
    return placeholder(op, operands);

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
  if (!c.grad) {
    auto result = sim.runAttention(p, q.values, k.values, v.values, sinks);
    inputs.erase(found->second);
    return result;
  }
  // Training: the backward recomputes P from each row's log-sum-exp, and
  // reads q, k, v, the sinks and O again.
  std::string why;
  if (!attentionGradFits(p, {16, 16}, sim.target(), &why))
    return llvm::Expected<SimulatedOp>(error("attention backward: " + why));
  p.saveLse = true;
  Saved &sv = saved[found->second];
  sv = Saved();
  auto result = sim.runAttention(p, q.values, k.values, v.values, sinks, &sv.lse);
  if (result) {
    sv.o = result->values;
    sv.problem = p;
    sv.problem.saveLse = false;
  }
  return result;
}
