//===- AttentionChain.cpp - decomposed attention the mix kernel takes -----===//

#include "attnedit/Ascend/AttentionChain.h"

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;

namespace {

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

/// The op defining `v` if it is an `Op` whose result has no other use.
template <typename Op> Op soleProducer(Value v) {
  auto op = v.getDefiningOp<Op>();
  return op && v.hasOneUse() ? op : Op();
}

} // namespace

std::optional<AttentionChain> mlir::attnedit::ascend::matchAttentionChain(TransposeOp out) {
  if (out.getPermutation() != ArrayRef<int64_t>{1, 0, 2})
    return std::nullopt;
  AttentionChain c;
  SmallVector<Operation *, 10> reversed{out};
  auto values = soleProducer<MatmulOp>(out.getInput());
  auto softmax = values ? soleProducer<SoftmaxOp>(values.getLhs()) : SoftmaxOp();
  if (!softmax || softmax.getAxis() != 2)
    return std::nullopt;
  reversed.append({values, softmax});
  auto mask = soleProducer<CausalMaskOp>(softmax.getInput());
  if (!mask || mask.getZeroFill())
    return std::nullopt;
  reversed.push_back(mask);
  c.window = mask.getWindow();
  Value x = mask.getInput();
  // The decomposition scales before masking; a positive factor commutes.
  if (auto scale = soleProducer<ScaleOp>(x)) {
    c.scale = scale.getFactor().convertToDouble();
    if (!(c.scale > 0))
      return std::nullopt;
    reversed.push_back(scale);
    x = scale.getInput();
  }
  auto scores = soleProducer<MatmulOp>(x);
  auto keyT = scores ? soleProducer<TransposeOp>(scores.getRhs()) : TransposeOp();
  if (!keyT || keyT.getPermutation() != ArrayRef<int64_t>{0, 2, 1})
    return std::nullopt;
  reversed.append({scores, keyT});
  c.q = scores.getLhs();
  c.sinks = softmax.getSinks();
  c.k = keyT.getInput();
  c.v = values.getRhs();
  int64_t repeats = 1;
  auto kRep = soleProducer<RepeatKvOp>(c.k), vRep = soleProducer<RepeatKvOp>(c.v);
  if (kRep && vRep && kRep.getRepeats() == vRep.getRepeats()) {
    repeats = kRep.getRepeats();
    c.k = kRep.getInput();
    c.v = vRep.getInput();
    reversed.append({kRep, vRep});
  }
  if (shapeOf(c.q).size() != 3 || shapeOf(c.k).size() != 3 || shapeOf(c.v).size() != 3)
    return std::nullopt;
  c.heads = shapeOf(c.q)[0];
  c.kvHeads = shapeOf(c.k)[0];
  c.dk = shapeOf(c.q)[2];
  c.dv = shapeOf(c.v)[2];
  if (ShapedType::isDynamic(c.heads) || ShapedType::isDynamic(c.kvHeads) ||
      ShapedType::isDynamic(c.dk) || ShapedType::isDynamic(c.dv) || shapeOf(c.k)[2] != c.dk ||
      shapeOf(c.v)[0] != c.kvHeads || c.kvHeads * repeats != c.heads)
    return std::nullopt;
  if (auto slice = c.v.getDefiningOp<SliceOp>())
    c.valueFromKey = slice.getInput() == c.k && slice.getAxis() == 2 && slice.getOffset() == 0;
  if (llvm::any_of(reversed, [&](Operation *op) { return op->getBlock() != out->getBlock(); }))
    return std::nullopt;
  c.ops.assign(reversed.rbegin(), reversed.rend());
  // Program order: the repeat_kvs (if any) come first.
  llvm::sort(c.ops, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return c;
}

std::vector<AttentionChain> mlir::attnedit::ascend::findAttentionChains(Operation *root) {
  std::vector<AttentionChain> out;
  root->walk([&](TransposeOp t) {
    if (std::optional<AttentionChain> c = matchAttentionChain(t))
      out.push_back(std::move(*c));
  });
  return out;
}

AttentionProblem mlir::attnedit::ascend::attentionProblem(const AttentionChain &c, int64_t tq,
                                                          int64_t tk, DType dtype) {
  AttentionProblem p;
  p.groups = c.kvHeads;
  p.headsPerGroup = c.heads / c.kvHeads;
  p.tq = tq;
  p.tk = tk;
  p.dk = c.dk;
  p.dv = c.dv;
  p.scale = c.scale;
  p.window = c.window;
  p.sinks = static_cast<bool>(c.sinks);
  p.valueFromKey = c.valueFromKey;
  p.dtype = dtype;
  return p;
}
