//===- AttentionChain.cpp - decomposed attention the mix kernel takes -----===//

#include "attnedit/Ascend/AttentionChain.h"

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;

namespace {

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

/// The op defining `v` if it is an `Op` whose result has no other use
/// (any number of uses when `shared`).
template <typename Op> Op soleProducer(Value v, bool shared = false) {
  auto op = v.getDefiningOp<Op>();
  return op && (shared || v.hasOneUse()) ? op : Op();
}

/// The one user of `v` if it is an `Op` and `v` has no other use.
template <typename Op> Op soleUser(Value v) {
  if (!v.hasOneUse())
    return Op();
  return dyn_cast<Op>(*v.getUsers().begin());
}

bool isTranspose(Operation *op, ArrayRef<int64_t> perm) {
  auto t = dyn_cast_or_null<TransposeOp>(op);
  return t && t.getPermutation() == perm;
}

/// The users of `v` other than `known`, each once.
SmallVector<Operation *> otherUsers(Value v, ArrayRef<Operation *> known) {
  SmallVector<Operation *> out;
  for (Operation *u : v.getUsers())
    if (!llvm::is_contained(known, u) && !llvm::is_contained(out, u))
      out.push_back(u);
  return out;
}

/// The backward of chain `c` (see AttentionGradChain), given the forward's
/// probabilities' op, the PV and scores matmuls, kᵀ and the v the PV
/// matmul reads (repeated or not).
std::optional<AttentionGradChain> matchGrad(const AttentionChain &c, SoftmaxOp softmax,
                                            MatmulOp pv, MatmulOp scores, TransposeOp keyT,
                                            int64_t repeats) {
  using Perm = ArrayRef<int64_t>;
  const SmallVector<int64_t> swapLast{0, 2, 1};
  AttentionGradChain g;
  // P: transpose (for dV) and softmax_grad [and sink_grad].
  TransposeOp pT;
  SoftmaxGradOp sg;
  SinkGradOp sk;
  for (Operation *u : otherUsers(softmax.getResult(), {pv})) {
    if (isTranspose(u, swapLast) && !pT)
      pT = cast<TransposeOp>(u);
    else if (auto x = dyn_cast<SoftmaxGradOp>(u); x && !sg && x.getOutput() == softmax.getResult())
      sg = x;
    else if (auto y = dyn_cast<SinkGradOp>(u); y && !sk && y.getOutput() == softmax.getResult())
      sk = y;
    else
      return std::nullopt;
  }
  if (!pT || !sg || sg.getAxis() != 2 || static_cast<bool>(sk) != static_cast<bool>(c.sinks))
    return std::nullopt;
  auto dvr = soleUser<MatmulOp>(pT.getResult());
  if (!dvr || dvr.getLhs() != pT.getResult())
    return std::nullopt;
  g.dO = dvr.getRhs();
  auto dP = sg.getGrad().getDefiningOp<MatmulOp>();
  if (!dP || dP.getLhs() != g.dO || (sk && sk.getGrad() != dP.getResult()))
    return std::nullopt;
  SmallVector<Operation *> dPUsers{sg};
  if (sk)
    dPUsers.push_back(sk);
  if (!otherUsers(dP.getResult(), dPUsers).empty())
    return std::nullopt;
  auto vT = soleProducer<TransposeOp>(dP.getRhs());
  if (!vT || vT.getPermutation() != Perm(swapLast) || vT.getInput() != pv.getRhs())
    return std::nullopt;
  if (pv.getRhs() != c.v && !otherUsers(pv.getRhs(), {pv, vT}).empty())
    return std::nullopt;
  // dS = scale · mask(softmax_grad).
  auto mask = soleUser<CausalMaskOp>(sg.getResult());
  if (!mask || !mask.getZeroFill() || mask.getWindow() != c.window)
    return std::nullopt;
  Value dS = mask.getResult();
  SmallVector<Operation *> ops{pT, dvr, vT, dP, sg, mask};
  if (sk)
    ops.push_back(sk);
  if (auto scale = soleUser<ScaleOp>(dS)) {
    if (scale.getFactor().convertToDouble() != c.scale)
      return std::nullopt;
    ops.push_back(scale);
    dS = scale.getResult();
  } else if (c.scale != 1) {
    return std::nullopt;
  }
  // dQ = dS·(kᵀ)ᵀ and dKr = (qᵀ·dS)ᵀ: dS's only uses.
  MatmulOp dq, dkT;
  for (Operation *u : dS.getUsers()) {
    auto m = dyn_cast<MatmulOp>(u);
    if (m && m.getLhs() == dS && !dq)
      dq = m;
    else if (m && m.getRhs() == dS && !dkT)
      dkT = m;
    else
      return std::nullopt;
  }
  if (!dq || !dkT)
    return std::nullopt;
  auto kk = soleProducer<TransposeOp>(dq.getRhs());
  auto qT = soleProducer<TransposeOp>(dkT.getLhs());
  auto dkr = soleUser<TransposeOp>(dkT.getResult());
  if (!kk || kk.getPermutation() != Perm(swapLast) || kk.getInput() != keyT.getResult() || !qT ||
      qT.getPermutation() != Perm(swapLast) || qT.getInput() != c.q || !dkr ||
      dkr.getPermutation() != Perm(swapLast))
    return std::nullopt;
  if (!otherUsers(keyT.getResult(), {scores, kk}).empty())
    return std::nullopt;
  ops.append({kk, dq, qT, dkT, dkr});
  g.dq = dq;
  g.dk = dkr;
  g.dv = dvr;
  g.dsinks = sk;
  if (repeats > 1) {
    // repeat_kv's VJP: [H, T, D] viewed as [Hkv, repeats, T·D], summed over
    // the group's heads.
    auto groupSum = [&](Operation *perHead) -> ReduceSumOp {
      auto view = soleUser<ReshapeOp>(perHead->getResult(0));
      auto sum = view ? soleUser<ReduceSumOp>(view.getResult()) : ReduceSumOp();
      if (!sum || sum.getAxis() != 1 || sum.getKeepDims())
        return ReduceSumOp();
      ArrayRef<int64_t> shape = shapeOf(view.getResult());
      if (shape.size() != 3 || shape[0] != c.kvHeads || shape[1] != repeats)
        return ReduceSumOp();
      return sum;
    };
    ReduceSumOp dk = groupSum(dkr), dv = groupSum(dvr);
    if (!dk || !dv)
      return std::nullopt;
    ops.append({dk, dv});
    g.dk = dk;
    g.dv = dv;
  }
  g.ops.assign(ops.begin(), ops.end());
  if (llvm::any_of(g.ops, [&](Operation *op) { return op->getBlock() != pv->getBlock(); }))
    return std::nullopt;
  llvm::sort(g.ops, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
  return g;
}

/// The forward chain ending in `out`; with `shared`, its probabilities, kᵀ
/// and repeated v may have other uses, which `training` requires to be
/// exactly its backward.
std::optional<AttentionChain> matchChain(TransposeOp out, bool training, bool shared) {
  if (out.getPermutation() != ArrayRef<int64_t>{1, 0, 2})
    return std::nullopt;
  AttentionChain c;
  SmallVector<Operation *, 10> reversed{out};
  auto values = soleProducer<MatmulOp>(out.getInput());
  auto softmax = values ? soleProducer<SoftmaxOp>(values.getLhs(), shared) : SoftmaxOp();
  if (!softmax || softmax.getAxis() != 2)
    return std::nullopt;
  reversed.append({values, softmax});
  auto mask = soleProducer<CausalMaskOp>(softmax.getInput());
  // Packed sequences (segments > 1) have no kernel here: the chain runs op by op.
  if (!mask || mask.getZeroFill() || mask.getSegments() != 1)
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
  auto keyT = scores ? soleProducer<TransposeOp>(scores.getRhs(), shared) : TransposeOp();
  if (!keyT || keyT.getPermutation() != ArrayRef<int64_t>{0, 2, 1})
    return std::nullopt;
  reversed.append({scores, keyT});
  c.q = scores.getLhs();
  c.sinks = softmax.getSinks();
  c.k = keyT.getInput();
  c.v = values.getRhs();
  int64_t repeats = 1;
  auto kRep = soleProducer<RepeatKvOp>(c.k), vRep = soleProducer<RepeatKvOp>(c.v, shared);
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
  if (training) {
    c.grad = matchGrad(c, softmax, values, scores, keyT, repeats);
    if (!c.grad)
      return std::nullopt;
  }
  return c;
}

} // namespace

std::optional<AttentionChain> mlir::attnedit::ascend::matchAttentionChain(TransposeOp out,
                                                                         bool training) {
  if (std::optional<AttentionChain> c = matchChain(out, false, false))
    return c;
  return training ? matchChain(out, true, true) : std::nullopt;
}

std::vector<AttentionChain> mlir::attnedit::ascend::findAttentionChains(Operation *root,
                                                                        bool training) {
  std::vector<AttentionChain> out;
  root->walk([&](TransposeOp t) {
    if (std::optional<AttentionChain> c = matchAttentionChain(t, training))
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
