//===- RaiseAttention.cpp - --attnedit-raise-attention ---------------------===//
//
// Recognises the primitive subgraph of causal attention and replaces it with
// one attnedit.attention. The reference spelling is AttentionOp::decompose
// (ir/lib/Decompositions.cpp), which is what the importer emits; the matcher
// also accepts the equivalent spellings of other frontends:
//
//   scale   attnedit.scale on the scores or on q [H, T, D], or a mul by a
//           (broadcast) splat constant; no scale at all is scale = 1
//   mask    causal_mask on the scores, or an add of causal_mask(splat 0)
//   GQA     repeat_kv of k and v, or the grouped matmul: q [Hq, T, D] is
//           reshaped to [Hkv, G·T, D] (row-major, so the G query heads of a
//           group are contiguous, head h = kv·G + g), multiplied by
//           kᵀ [Hkv, D, T], and the scores [Hkv, G·T, T] reshaped back to
//           [Hq, T, T] for mask and softmax; the probabilities take the same
//           route through the product with v [Hkv, T, D].
//
// Matching walks backwards from the output projection and insists on exact
// shapes (a dynamic T must be dynamic everywhere), axes, permutations and a
// single use of every intermediate: a value seen outside the subgraph cannot
// disappear into the composite op.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/SetVector.h"

#include <optional>

namespace mlir::attnedit {
#define GEN_PASS_DEF_RAISEATTENTIONPASS
#include "attnedit/Passes/Passes.h.inc"
} // namespace mlir::attnedit

namespace mlir::attnedit {
namespace {

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

bool hasShape(Value v, ArrayRef<int64_t> expected) { return shapeOf(v) == expected; }

int64_t mulDims(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) ? ShapedType::kDynamic : a * b;
}

/// The value of a splat f32 constant, seen through a broadcast; a broadcast
/// of a non-splat constant (a per-head scale, say) is not one number. A
/// broadcast to a dynamic dimension keeps the input's size (the evaluator's
/// reading), so it does not fill the scores' shape and is rejected.
std::optional<double> splatConstant(Value v) {
  if (auto broadcast = v.getDefiningOp<BroadcastOp>()) {
    if (!broadcast.getType().hasStaticShape())
      return std::nullopt;
    v = broadcast.getInput();
  }
  DenseFPElementsAttr value;
  if (!matchPattern(v, m_Constant(&value)) || !value.isSplat() || !value.getElementType().isF32())
    return std::nullopt;
  return value.getSplatValue<APFloat>().convertToDouble();
}

/// One projected, head-split stream: linear -> reshape [T, H, D] ->
/// [rms_norm] -> [rope] -> transpose [H, T, D].
struct Projection {
  LinearOp linear;
  RmsNormOp norm;
  RopeOp rope;
};

/// A product out [Hq, T, N] where query head h reads KV head h / G of `rhs`:
/// a plain matmul (`rhs` [Hq, K, N], kvHeads = 0: the caller looks for
/// repeat_kv) or the grouped reshape-matmul-reshape (`rhs` [kvHeads, K, N]).
struct HeadProduct {
  Value lhs, rhs;
  int64_t kvHeads;
};

/// Walks one attention subgraph backwards from its output projection.
class AttentionMatcher {
public:
  explicit AttentionMatcher(LinearOp oProj) : oProj(oProj), block(oProj->getBlock()) {}

  /// Builds the attention op in place of `oProj` if the subgraph matches.
  LogicalResult raise(RewriterBase &rewriter);

private:
  LogicalResult match();

  /// The defining op of `v` if it is an OpTy in the subgraph's block whose
  /// only user is the subgraph; it is recorded for erasure.
  template <typename OpTy> OpTy inner(Value v) {
    auto op = v.getDefiningOp<OpTy>();
    if (!op || op->getBlock() != block || !v.hasOneUse())
      return nullptr;
    body.push_back(op);
    return op;
  }

  void addLeaves(Value v);
  std::optional<double> peelScale(Value &v);
  std::optional<int64_t> peelMask(Value &v);
  std::optional<HeadProduct> matchProduct(Value out, int64_t k, int64_t n);
  std::optional<Value> peelRepeat(Value v, int64_t &kvHeads);
  std::optional<Projection> matchProjection(Value heads, int64_t numHeads, bool roped);

  LinearOp oProj;
  Block *block;
  int64_t t = 0, hq = 0, hkv = 0, d = 0, window = 0;
  std::optional<double> scale;
  Projection q, k, v;
  /// Single-use intermediates, each recorded after its user.
  SmallVector<Operation *> body;
  /// Constant operands (scale factor, mask bias) that other code may share:
  /// erased only once nothing uses them.
  llvm::SetVector<Operation *> leaves;
};

/// Records the constant chain defining `v` (mask, broadcast, constant), user
/// first, for erasure once the raise leaves it unused.
void AttentionMatcher::addLeaves(Value v) {
  while (Operation *op = v.getDefiningOp()) {
    leaves.insert(op);
    if (op->getNumOperands() != 1)
      break;
    v = op->getOperand(0);
  }
}

/// Peels attnedit.scale or a multiply by a splat constant off `v`.
std::optional<double> AttentionMatcher::peelScale(Value &v) {
  if (auto op = inner<ScaleOp>(v)) {
    v = op.getInput();
    return op.getFactor().convertToDouble();
  }
  auto mul = v.getDefiningOp<MulOp>();
  if (!mul || mul->getBlock() != block || !v.hasOneUse())
    return std::nullopt;
  for (auto [x, c] : {std::pair{mul.getLhs(), mul.getRhs()}, {mul.getRhs(), mul.getLhs()}})
    if (std::optional<double> factor = splatConstant(c)) {
      body.push_back(mul);
      addLeaves(c);
      v = x;
      return factor;
    }
  return std::nullopt;
}

/// Peels the causal (or windowed) mask off `v`, applied or added as a
/// 0/-inf bias, and returns its window.
std::optional<int64_t> AttentionMatcher::peelMask(Value &v) {
  if (auto op = inner<CausalMaskOp>(v)) {
    // The composites hold one sequence: packed ones stay primitives.
    if (op.getZeroFill() || op.getSegments() != 1)
      return std::nullopt;
    v = op.getInput();
    return (int64_t)op.getWindow();
  }
  auto add = v.getDefiningOp<AddOp>();
  if (!add || add->getBlock() != block || !v.hasOneUse())
    return std::nullopt;
  for (auto [x, bias] : {std::pair{add.getLhs(), add.getRhs()}, {add.getRhs(), add.getLhs()}}) {
    auto mask = bias.getDefiningOp<CausalMaskOp>();
    std::optional<double> zero =
        mask && !mask.getZeroFill() && mask.getSegments() == 1 ? splatConstant(mask.getInput())
                                                                 : std::nullopt;
    if (zero && *zero == 0.0) {
      body.push_back(add);
      addLeaves(bias);
      v = x;
      return (int64_t)mask.getWindow();
    }
  }
  return std::nullopt;
}

std::optional<HeadProduct> AttentionMatcher::matchProduct(Value out, int64_t k, int64_t n) {
  if (!hasShape(out, {hq, t, n}))
    return std::nullopt;
  if (auto merge = inner<ReshapeOp>(out)) {
    auto mm = inner<MatmulOp>(merge.getInput());
    auto split = mm ? inner<ReshapeOp>(mm.getLhs()) : nullptr;
    if (!split)
      return std::nullopt;
    int64_t kvHeads = shapeOf(mm.getRhs())[0];
    if (kvHeads < 1 || hq % kvHeads)
      return std::nullopt;
    int64_t rows = mulDims(hq / kvHeads, t);
    if (!hasShape(split.getInput(), {hq, t, k}) || !hasShape(split, {kvHeads, rows, k}) ||
        !hasShape(mm.getRhs(), {kvHeads, k, n}) || !hasShape(mm, {kvHeads, rows, n}))
      return std::nullopt;
    return HeadProduct{split.getInput(), mm.getRhs(), kvHeads};
  }
  auto mm = inner<MatmulOp>(out);
  if (!mm || !hasShape(mm.getLhs(), {hq, t, k}) || !hasShape(mm.getRhs(), {hq, k, n}))
    return std::nullopt;
  return HeadProduct{mm.getLhs(), mm.getRhs(), 0};
}

/// Sees through repeat_kv of `v` [Hq, T, D] and sets `kvHeads`.
std::optional<Value> AttentionMatcher::peelRepeat(Value v, int64_t &kvHeads) {
  auto repeat = inner<RepeatKvOp>(v);
  if (!repeat) {
    kvHeads = hq;
    return v;
  }
  kvHeads = shapeOf(repeat.getInput())[0];
  if (kvHeads < 1 || kvHeads * (int64_t)repeat.getRepeats() != hq ||
      !hasShape(repeat.getInput(), {kvHeads, t, d}) || !hasShape(repeat, {hq, t, d}))
    return std::nullopt;
  return repeat.getInput();
}

std::optional<Projection> AttentionMatcher::matchProjection(Value heads, int64_t numHeads,
                                                            bool roped) {
  Projection p;
  SmallVector<int64_t, 3> tokenMajor = {t, numHeads, d};
  auto toHeadMajor = inner<TransposeOp>(heads);
  if (!toHeadMajor || toHeadMajor.getPermutation() != ArrayRef<int64_t>{1, 0, 2} ||
      !hasShape(toHeadMajor, {numHeads, t, d}))
    return std::nullopt;
  Value y = toHeadMajor.getInput();
  if (roped) {
    if (!(p.rope = inner<RopeOp>(y)) || p.rope.getInverse() || !hasShape(y, tokenMajor))
      return std::nullopt;
    y = p.rope.getInput();
    if ((p.norm = inner<RmsNormOp>(y))) {
      if (!hasShape(y, tokenMajor) || !hasShape(p.norm.getWeight(), {d}))
        return std::nullopt;
      y = p.norm.getInput();
    }
  }
  auto split = inner<ReshapeOp>(y);
  if (!split || !hasShape(split, tokenMajor) || !(p.linear = inner<LinearOp>(split.getInput())))
    return std::nullopt;
  int64_t rows = numHeads * d, hidden = shapeOf(p.linear.getInput()).back();
  Value bias = p.linear.getBias();
  if (!hasShape(p.linear, {t, rows}) || !hasShape(p.linear.getWeight(), {rows, hidden}) ||
      (bias && !hasShape(bias, {rows})))
    return std::nullopt;
  return p;
}

LogicalResult AttentionMatcher::match() {
  // Output: linear(reshape(transpose(o [Hq, T, D], [1, 0, 2])) [T, Hq·D]).
  auto merge = oProj.getBias() ? nullptr : inner<ReshapeOp>(oProj.getInput());
  auto toTokenMajor = merge ? inner<TransposeOp>(merge.getInput()) : nullptr;
  if (!toTokenMajor || toTokenMajor.getPermutation() != ArrayRef<int64_t>{1, 0, 2} ||
      shapeOf(toTokenMajor).size() != 3)
    return failure();
  t = shapeOf(toTokenMajor)[0], hq = shapeOf(toTokenMajor)[1], d = shapeOf(toTokenMajor)[2];
  // Dynamic sizes are negative: this also requires static head sizes.
  if (hq < 1 || d < 1 || !hasShape(merge, {t, hq * d}))
    return failure();

  // Weighted sum of the values: o = probs [Hq, T, T] · v.
  std::optional<HeadProduct> weighted = matchProduct(toTokenMajor.getInput(), t, d);
  if (!weighted)
    return failure();
  int64_t vHeads = weighted->kvHeads;
  std::optional<Value> vHeadMajor =
      weighted->kvHeads ? std::optional<Value>(weighted->rhs) : peelRepeat(weighted->rhs, vHeads);

  // probs = softmax over keys of mask(scale · q·kᵀ).
  auto softmax = vHeadMajor ? inner<SoftmaxOp>(weighted->lhs) : nullptr;
  if (!softmax || softmax.getAxis() != 2 || softmax.getSinks())
    return failure();
  Value scores = softmax.getInput();
  std::optional<int64_t> maskWindow = peelMask(scores);
  if (!maskWindow)
    return failure();
  window = *maskWindow;
  scale = peelScale(scores);

  std::optional<HeadProduct> qk = matchProduct(scores, d, t);
  if (!qk)
    return failure();
  auto kT = inner<TransposeOp>(qk->rhs);
  if (!kT || kT.getPermutation() != ArrayRef<int64_t>{0, 2, 1})
    return failure();
  hkv = qk->kvHeads;
  std::optional<Value> kHeadMajor =
      qk->kvHeads ? std::optional<Value>(kT.getInput()) : peelRepeat(kT.getInput(), hkv);
  if (!kHeadMajor || hkv != vHeads)
    return failure();
  Value qHeadMajor = qk->lhs;
  if (!scale)
    scale = peelScale(qHeadMajor);

  // The three projections of one input, with the same RoPE on q and k.
  std::optional<Projection> qp = matchProjection(qHeadMajor, hq, /*roped=*/true);
  std::optional<Projection> kp = matchProjection(*kHeadMajor, hkv, /*roped=*/true);
  std::optional<Projection> vp = matchProjection(*vHeadMajor, hkv, /*roped=*/false);
  if (!qp || !kp || !vp)
    return failure();
  q = *qp, k = *kp, v = *vp;
  Value x = q.linear.getInput();
  int64_t hidden = shapeOf(oProj)[1];
  if (k.linear.getInput() != x || v.linear.getInput() != x || oProj.getType() != x.getType() ||
      !hasShape(x, {t, hidden}) || !hasShape(oProj.getWeight(), {hidden, hq * d}))
    return failure();
  if ((bool)q.linear.getBias() != (bool)k.linear.getBias() ||
      (bool)q.linear.getBias() != (bool)v.linear.getBias())
    return failure();
  if ((bool)q.norm != (bool)k.norm || (q.norm && q.norm.getEpsAttr() != k.norm.getEpsAttr()))
    return failure();
  RopeOp qr = q.rope, kr = k.rope;
  return success(qr.getPositions() == kr.getPositions() && qr.getThetaAttr() == kr.getThetaAttr() &&
                 qr.getRotaryDim() == kr.getRotaryDim() && qr.getStyle() == kr.getStyle() &&
                 qr.getLlama3ScalingAttr() == kr.getLlama3ScalingAttr());
}

LogicalResult AttentionMatcher::raise(RewriterBase &rewriter) {
  if (failed(match()))
    return failure();
  SmallVector<Value, 3> bias;
  if (q.linear.getBias())
    bias = {q.linear.getBias(), k.linear.getBias(), v.linear.getBias()};
  SmallVector<Value, 2> norms;
  FloatAttr normEps;
  if (q.norm) {
    norms = {q.norm.getWeight(), k.norm.getWeight()};
    normEps = q.norm.getEpsAttr();
  }
  rewriter.setInsertionPoint(oProj);
  auto attention = rewriter.create<AttentionOp>(
      oProj.getLoc(), oProj.getType(), q.linear.getInput(), q.rope.getPositions(),
      q.linear.getWeight(), k.linear.getWeight(), v.linear.getWeight(), oProj.getWeight(), bias,
      norms, rewriter.getI64IntegerAttr(hq), rewriter.getI64IntegerAttr(hkv),
      rewriter.getI64IntegerAttr(d), rewriter.getF64FloatAttr(scale.value_or(1.0)),
      q.rope.getThetaAttr(), q.rope.getRotaryDimAttr(), q.rope.getStyleAttr(),
      q.rope.getLlama3ScalingAttr(), normEps,
      window ? rewriter.getI64IntegerAttr(window) : IntegerAttr());
  rewriter.replaceOp(oProj, attention);
  // Each body op follows its only user in `body`, so it is dead when reached.
  for (Operation *op : body)
    rewriter.eraseOp(op);
  for (Operation *op : leaves)
    if (op->use_empty())
      rewriter.eraseOp(op);
  return success();
}

struct RaiseAttentionPass : impl::RaiseAttentionPassBase<RaiseAttentionPass> {
  // A walk rather than the greedy pattern driver: the driver also folds and
  // erases dead ops everywhere, and a near miss must be left exactly as it is.
  void runOnOperation() override {
    // Candidates are collected first. A raise erases only ops of its own
    // block that precede its o_proj, i.e. candidates already visited.
    SmallVector<LinearOp> candidates;
    getOperation().walk([&](LinearOp op) { candidates.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (LinearOp oProj : candidates)
      (void)AttentionMatcher(oProj).raise(rewriter);
  }
};

} // namespace
} // namespace mlir::attnedit
