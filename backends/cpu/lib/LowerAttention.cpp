//===- LowerAttention.cpp - attention chains to one fused library call -----===//
//
// The decomposition of every attention kind (attnedit/IR/PrimitiveBuilder.h,
// attend) ends in
//   matmul(q, transpose(k)) → scale → causal_mask → softmax(+sinks) → matmul(·, v)
// Lowered op by op this materialises H·Tq·Tk scores three times and runs
// one exp per entry through libm. Where the probabilities feed nothing but
// the value product, in functions that compute no gradient (inference),
// the chain becomes one call of the flash-attention kernel of
// AttentionLibrary.cpp. In a training step, the chain and the backward ops
// autodiff wrote for it become a forward call that keeps each row's
// log-sum-exp and a backward call that recomputes the probabilities tile by
// tile: activation memory O(T·d) per head, not O(T²). A chain of a
// training step that nothing differentiates (a distillation teacher's)
// becomes the inference call.
//
// The call is a linalg.generic carrying library_call, like the GEMMs, so it
// bufferizes like any linalg op and attnedit-cpu-library-calls turns it into
// the call. Its indexing maps give every operand dimension a loop of its
// own and its payload reads them all: the op is opaque (never fused, never
// lowered to loops), bufferization sees every operand read, and each operand
// stays needed to define the loop bounds, so canonicalization keeps them all.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::cpu::detail;

namespace {

/// The ops of one chain and what the kernel needs from them.
struct Chain {
  attnedit::MatmulOp scores, values;
  attnedit::SoftmaxOp softmax;
  SmallVector<Operation *> between; // scales and masks, in program order reversed
  double scale = 1.0;
  bool causal = false;
  int64_t window = 0, segments = 1;
  Value k, v;                 // [H, Tk, D], [H, Tk, Dv] before repeat_kv peeling
  Value kBase, vBase;         // [Hk, Tk, ·]: repeat_kv's input, or k / v
};

bool singleUse(Value v) { return v.hasOneUse(); }

/// The input of a repeat_kv producing `v`, or `v`.
Value beforeRepeat(Value v) {
  if (auto repeat = v.getDefiningOp<attnedit::RepeatKvOp>())
    return repeat.getInput();
  return v;
}

/// The chain ending in the value product `values`; with `training`, its
/// probabilities may also feed their own backward ops (matchBackward).
std::optional<Chain> match(attnedit::MatmulOp values, bool training) {
  Chain c;
  c.values = values;
  c.softmax = values.getLhs().getDefiningOp<attnedit::SoftmaxOp>();
  if (!c.softmax || (!training && !singleUse(c.softmax.getResult())) ||
      tensorType(values.getLhs()).getRank() != 3 || c.softmax.getAxis() != 2)
    return std::nullopt;
  Value x = c.softmax.getInput();
  while (singleUse(x)) {
    if (auto mask = x.getDefiningOp<attnedit::CausalMaskOp>()) {
      if (mask.getZeroFill() || c.causal)
        return std::nullopt;
      c.causal = true;
      c.window = mask.getWindow();
      c.segments = mask.getSegments();
      c.between.push_back(mask);
      x = mask.getInput();
    } else if (auto scale = x.getDefiningOp<attnedit::ScaleOp>()) {
      double f = scale.getFactor().convertToDouble();
      if (!(f > 0.0)) // A negative factor would not commute with the mask.
        return std::nullopt;
      c.scale *= f;
      c.between.push_back(scale);
      x = scale.getInput();
    } else {
      break;
    }
  }
  c.scores = x.getDefiningOp<attnedit::MatmulOp>();
  if (!c.scores || !singleUse(x) || tensorType(c.scores.getLhs()).getRank() != 3)
    return std::nullopt;
  auto kT = c.scores.getRhs().getDefiningOp<attnedit::TransposeOp>();
  if (!kT || kT.getPermutation() != ArrayRef<int64_t>{0, 2, 1})
    return std::nullopt;
  c.k = kT.getInput();
  c.v = values.getRhs();
  c.kBase = beforeRepeat(c.k);
  c.vBase = beforeRepeat(c.v);
  int64_t heads = tensorType(c.scores.getLhs()).getDimSize(0);
  int64_t kvHeads = tensorType(c.kBase).getDimSize(0);
  if (ShapedType::isDynamic(heads) || ShapedType::isDynamic(kvHeads) ||
      kvHeads != tensorType(c.vBase).getDimSize(0) || kvHeads == 0 || heads % kvHeads)
    return std::nullopt;
  return c;
}

/// `v` as a permutation of the value under its transposes: v's axis i is
/// axis perm[i] of base.
std::pair<Value, SmallVector<int64_t>> peelTransposes(Value v) {
  SmallVector<int64_t> perm;
  for (int64_t i = 0, rank = tensorType(v).getRank(); i < rank; ++i)
    perm.push_back(i);
  while (auto t = v.getDefiningOp<attnedit::TransposeOp>()) {
    ArrayRef<int64_t> inner = t.getPermutation();
    for (int64_t &axis : perm)
      axis = inner[axis];
    v = t.getInput();
  }
  return {v, perm};
}

/// `v` with its axes permuted (result axis i is axis perm[i] of `v`),
/// looking through transposes so that undoing one costs nothing.
Value permuted(OpBuilder &b, Location loc, Value v, ArrayRef<int64_t> perm) {
  auto [base, inner] = peelTransposes(v);
  SmallVector<int64_t> p;
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) {
    p.push_back(inner[perm[i]]);
    identity &= p[i] == (int64_t)i;
  }
  if (identity)
    return base;
  SmallVector<int64_t> shape;
  for (int64_t axis : p)
    shape.push_back(tensorType(base).getDimSize(axis));
  return b.create<attnedit::TransposeOp>(loc, RankedTensorType::get(shape, b.getF32Type()), base,
                                         p);
}

/// Whether `a` is `b` with its axes permuted by `perm`, through transposes.
bool isPermutationOf(Value a, Value b, ArrayRef<int64_t> perm) {
  auto [baseA, permA] = peelTransposes(a);
  auto [baseB, permB] = peelTransposes(b);
  if (baseA != baseB || permA.size() != perm.size())
    return false;
  for (size_t i = 0; i < perm.size(); ++i)
    if (permA[i] != permB[perm[i]])
      return false;
  return true;
}

/// The backward ops --attnedit-autodiff wrote for one chain (the VJPs of its
/// matmuls, softmax, mask and scales).
struct Backward {
  Value dout;                                 // [H, Tq, Dv]: the chain result's cotangent
  attnedit::TransposeOp probsT;               // Pᵀ
  attnedit::MatmulOp dvalues, dprobs;         // Pᵀ·dO, dO·Vᵀ
  attnedit::SoftmaxGradOp softmaxGrad;
  attnedit::SinkGradOp sinkGrad;              // with sinks
  SmallVector<Operation *> between;           // zero-filling mask and scales, to dS
  attnedit::MatmulOp dqueries, dkeysT;        // dS·K, Qᵀ·dS
};

std::optional<Backward> matchBackward(Chain &c) {
  Backward bw;
  for (OpOperand &use : c.softmax.getResult().getUses()) {
    Operation *user = use.getOwner();
    if (user == c.values.getOperation() && use.getOperandNumber() == 0)
      continue;
    auto t = dyn_cast<attnedit::TransposeOp>(user);
    if (t && !bw.probsT && t.getPermutation() == ArrayRef<int64_t>{0, 2, 1} &&
        singleUse(t.getResult())) {
      bw.probsT = t;
      continue;
    }
    auto g = dyn_cast<attnedit::SoftmaxGradOp>(user);
    if (g && !bw.softmaxGrad && use.getOperandNumber() == 0 && g.getAxis() == 2) {
      bw.softmaxGrad = g;
      continue;
    }
    auto sg = dyn_cast<attnedit::SinkGradOp>(user);
    if (sg && !bw.sinkGrad && use.getOperandNumber() == 0) {
      bw.sinkGrad = sg;
      continue;
    }
    return std::nullopt;
  }
  if (!bw.probsT || !bw.softmaxGrad || !bw.sinkGrad != !c.softmax.getSinks())
    return std::nullopt;
  bw.dvalues = dyn_cast<attnedit::MatmulOp>(*bw.probsT.getResult().getUsers().begin());
  if (!bw.dvalues || bw.dvalues.getLhs() != bw.probsT.getResult())
    return std::nullopt;
  bw.dout = bw.dvalues.getRhs();
  bw.dprobs = bw.softmaxGrad.getGrad().getDefiningOp<attnedit::MatmulOp>();
  if (!bw.dprobs || bw.dprobs.getLhs() != bw.dout ||
      !isPermutationOf(bw.dprobs.getRhs(), c.v, {0, 2, 1}))
    return std::nullopt;
  for (Operation *user : bw.dprobs.getResult().getUsers())
    if (user != bw.softmaxGrad && user != bw.sinkGrad)
      return std::nullopt;
  if (bw.sinkGrad && bw.sinkGrad.getGrad() != bw.dprobs.getResult())
    return std::nullopt;
  // The mask's and the scales' VJPs: the same mask, the same total factor.
  Value ds = bw.softmaxGrad.getResult();
  double scale = 1.0;
  bool masked = false;
  while (singleUse(ds)) {
    Operation *user = *ds.getUsers().begin();
    if (auto mask = dyn_cast<attnedit::CausalMaskOp>(user)) {
      if (!mask.getZeroFill() || masked || (int64_t)mask.getWindow() != c.window ||
          (int64_t)mask.getSegments() != c.segments)
        return std::nullopt;
      masked = true;
    } else if (auto s = dyn_cast<attnedit::ScaleOp>(user)) {
      scale *= s.getFactor().convertToDouble();
    } else {
      break;
    }
    bw.between.push_back(user);
    ds = user->getResult(0);
  }
  if (masked != c.causal || std::abs(scale - c.scale) > 1e-12 * c.scale)
    return std::nullopt;
  for (Operation *user : ds.getUsers()) {
    auto m = dyn_cast<attnedit::MatmulOp>(user);
    if (m && !bw.dqueries && m.getLhs() == ds && isPermutationOf(m.getRhs(), c.k, {0, 1, 2}))
      bw.dqueries = m;
    else if (m && !bw.dkeysT && m.getRhs() == ds &&
             isPermutationOf(m.getLhs(), c.scores.getLhs(), {0, 2, 1}))
      bw.dkeysT = m;
    else
      return std::nullopt;
  }
  if (!bw.dqueries || !bw.dkeysT)
    return std::nullopt;
  return bw;
}

/// Uses of `old`, which is `replacement` with its axes permuted by the
/// self-inverse `perm`, read `replacement` instead: a transpose of `old` by
/// `perm` becomes `replacement` itself.
void replaceTransposed(OpBuilder &b, Location loc, Value old, Value replacement,
                       ArrayRef<int64_t> perm) {
  Value permutedBack;
  for (OpOperand &use : llvm::make_early_inc_range(old.getUses())) {
    auto t = dyn_cast<attnedit::TransposeOp>(use.getOwner());
    if (t && t.getPermutation() == perm) {
      t.getResult().replaceAllUsesWith(replacement);
      continue;
    }
    if (!permutedBack)
      permutedBack = permuted(b, loc, replacement, perm);
    use.set(permutedBack);
  }
}

void eraseDead(ArrayRef<Operation *> consumersFirst) {
  for (Operation *op : consumersFirst)
    if (op->use_empty())
      op->erase();
}

/// A tensor.empty whose i-th size is dimension dims[i].second of
/// dims[i].first.
Value emptyWithDims(OpBuilder &b, Location loc, ArrayRef<std::pair<Value, int64_t>> dims) {
  SmallVector<int64_t> shape;
  SmallVector<Value> sizes;
  for (auto [v, axis] : dims) {
    shape.push_back(tensorType(v).getDimSize(axis));
    if (ShapedType::isDynamic(shape.back()))
      sizes.push_back(dimOf(b, loc, v, axis));
  }
  return empty(b, loc, RankedTensorType::get(shape, b.getF32Type()), sizes);
}

/// The forward call that replaces a chain's value product.
struct FusedForward {
  /// In the kernel's layouts: q [Tq, H, D], k [Tk, Hk, D], v [Tk, Hk, Dv],
  /// then the sinks if any.
  SmallVector<Value> operands;
  Value params; // [scale, causal, window]
  /// out [Tq, H, Dv], then (`keepLse`) each row's log-sum-exp [H, Tq].
  SmallVector<Value> results;
};

/// Calls the flash-attention kernel in place of `c`'s value product, whose
/// users then read its output.
FusedForward fuseForward(Chain &c, bool keepLse) {
  OpBuilder b(c.values);
  Location loc = c.values.getLoc();
  Value q = permuted(b, loc, c.scores.getLhs(), {1, 0, 2});
  Value k = permuted(b, loc, c.kBase, {1, 0, 2});
  Value v = permuted(b, loc, c.vBase, {1, 0, 2});
  FusedForward f;
  f.operands = {q, k, v};
  Value sinks = c.softmax.getSinks();
  if (sinks)
    f.operands.push_back(sinks);
  f.params = paramsConstant(
      b, loc, {(float)c.scale, c.causal ? 1.0f : 0.0f, (float)c.window, (float)c.segments});
  SmallVector<Value> inits{emptyWithDims(b, loc, {{q, 0}, {q, 1}, {v, 2}})};
  if (keepLse)
    inits.push_back(emptyWithDims(b, loc, {{q, 1}, {q, 0}}));
  SmallVector<Value> inputs(f.operands);
  inputs.push_back(f.params);
  std::string name = std::string("attnedit_cpu_attention") + (keepLse ? "_train" : "") +
                     (sinks ? "_sinks" : "");
  f.results = libraryCall(b, loc, name, inputs, inits);
  // The chain's result is [H, Tq, Dv]; its users mostly transpose it back.
  replaceTransposed(b, loc, c.values.getResult(), f.results[0], {1, 0, 2});
  return f;
}

/// The chain's own ops, consumers first.
void appendChainOps(SmallVector<Operation *> &ops, Chain &c) {
  ops.append({c.values, c.softmax});
  ops.append(c.between.begin(), c.between.end());
  ops.push_back(c.scores);
}

/// The chain and its backward ops become two calls: the forward, which keeps
/// each row's log-sum-exp instead of the probabilities, and FlashAttention-2's
/// backward, which recomputes them tile by tile.
void rewriteTraining(Chain &c, Backward &bw) {
  FusedForward f = fuseForward(c, /*keepLse=*/true);
  Operation *first = bw.dvalues->isBeforeInBlock(bw.dprobs) ? bw.dvalues : bw.dprobs;
  OpBuilder b(first);
  Location loc = first->getLoc();
  Value q = f.operands[0], k = f.operands[1], v = f.operands[2];
  Value sinks = c.softmax.getSinks();
  // The kernel writes dQ, dK, dV per query head ([H, T, ·]). One whose
  // every user transposes it back to tokens first ([T, H, ·], the layout of
  // the projection it flows back to; not where GQA sums it over the group)
  // is computed into a token-major tensor instead, which they then read
  // without a transpose.
  // dK reaches its users through the transposes of dKᵀ back to [H, T, D].
  SmallVector<Operation *> dkUsers;
  for (Operation *user : bw.dkeysT->getUsers()) {
    auto t = dyn_cast<attnedit::TransposeOp>(user);
    if (!t || t.getPermutation() != ArrayRef<int64_t>{0, 2, 1})
      dkUsers.push_back(user);
    else
      dkUsers.append(t->user_begin(), t->user_end());
  }
  auto transposedBack = [](Operation *user) {
    auto t = dyn_cast<attnedit::TransposeOp>(user);
    return t && t.getPermutation() == ArrayRef<int64_t>{1, 0, 2};
  };
  std::array<bool, 3> tokenMajor{llvm::all_of(bw.dqueries->getUsers(), transposedBack),
                                 llvm::all_of(dkUsers, transposedBack),
                                 llvm::all_of(bw.dvalues->getUsers(), transposedBack)};
  SmallVector<Value> inits;
  SmallVector<SmallVector<int64_t, 3>> axes;
  for (auto [i, x] : llvm::enumerate(std::array<Value, 3>{q, k, v})) {
    inits.push_back(tokenMajor[i] ? emptyWithDims(b, loc, {{x, 0}, {q, 1}, {x, 2}})
                                  : emptyWithDims(b, loc, {{q, 1}, {x, 0}, {x, 2}}));
    axes.push_back(tokenMajor[i] ? SmallVector<int64_t, 3>{1, 0, 2} : SmallVector<int64_t, 3>{});
  }
  if (sinks)
    inits.push_back(emptyWithDims(b, loc, {{q, 1}}));
  SmallVector<Value> inputs(f.operands);
  inputs.append({f.results[0], f.results[1], permuted(b, loc, bw.dout, {1, 0, 2}), f.params});
  SmallVector<Value> grads = libraryCall(
      b, loc, sinks ? "attnedit_cpu_attention_backward_sinks" : "attnedit_cpu_attention_backward",
      inputs, inits, axes);
  // A token-major gradient stands in for the old one transposed to [H, T, ·],
  // and the transposes back then read it itself.
  std::array<Value, 3> heads;
  for (int i = 0; i < 3; ++i)
    heads[i] = tokenMajor[i] ? permuted(b, loc, grads[i], {1, 0, 2}) : grads[i];
  bw.dqueries.getResult().replaceAllUsesWith(heads[0]);
  replaceTransposed(b, loc, bw.dkeysT.getResult(), heads[1], {0, 2, 1});
  bw.dvalues.getResult().replaceAllUsesWith(heads[2]);
  for (int i = 0; i < 3; ++i) {
    if (!tokenMajor[i])
      continue;
    replaceTransposed(b, loc, heads[i], grads[i], {1, 0, 2});
    if (heads[i].use_empty())
      heads[i].getDefiningOp()->erase();
  }
  if (sinks)
    bw.sinkGrad.getResult().replaceAllUsesWith(grads[3]);
  SmallVector<Operation *> dead{bw.dkeysT, bw.dqueries};
  dead.append(bw.between.rbegin(), bw.between.rend());
  dead.push_back(bw.softmaxGrad);
  if (sinks)
    dead.push_back(bw.sinkGrad);
  dead.append({bw.dprobs, bw.dvalues, bw.probsT});
  appendChainOps(dead, c);
  eraseDead(dead);
}

void rewrite(Chain &c) {
  fuseForward(c, /*keepLse=*/false);
  SmallVector<Operation *> dead;
  appendChainOps(dead, c);
  eraseDead(dead);
}

} // namespace

SmallVector<Value> cpu::detail::libraryCall(OpBuilder &b, Location loc, StringRef name,
                                            ValueRange inputs, ValueRange inits,
                                            ArrayRef<SmallVector<int64_t, 3>> initAxes) {
  SmallVector<AffineMap> maps;
  SmallVector<IteratorType> iterators;
  unsigned total = 0;
  for (ValueRange operands : {inputs, inits})
    for (Value v : operands)
      total += tensorType(v).getRank();
  unsigned next = 0;
  auto nextMap = [&](unsigned rank) {
    SmallVector<AffineExpr> exprs;
    for (unsigned i = 0; i < rank; ++i)
      exprs.push_back(b.getAffineDimExpr(next++));
    return AffineMap::get(total, 0, exprs, b.getContext());
  };
  for (Value v : inputs) {
    maps.push_back(nextMap(tensorType(v).getRank()));
    iterators.append(tensorType(v).getRank(), IteratorType::reduction);
  }
  for (auto [i, v] : llvm::enumerate(inits)) {
    unsigned rank = tensorType(v).getRank();
    AffineMap map = nextMap(rank);
    // The loops run over the library's axes; tensor axis axes[j] is loop j.
    if (i < initAxes.size() && !initAxes[i].empty()) {
      SmallVector<AffineExpr> exprs(rank);
      for (auto [j, axis] : llvm::enumerate(initAxes[i]))
        exprs[axis] = map.getResult(j);
      map = AffineMap::get(total, 0, exprs, b.getContext());
    }
    maps.push_back(map);
    iterators.append(rank, IteratorType::parallel);
  }
  auto op = b.create<linalg::GenericOp>(
      loc, TypeRange(inits), inputs, inits, maps, iterators,
      [&](OpBuilder &nb, Location nl, ValueRange args) {
        // The payload is never run; it reads every operand so that
        // bufferization knows the call reads them (an unread input's buffer
        // could be reused in place before the call).
        Value sum = args.back();
        for (Value in : args.drop_back()) {
          if (in.getType().isInteger(32))
            in = nb.create<arith::SIToFPOp>(nl, nb.getF32Type(), in);
          sum = nb.create<arith::AddFOp>(nl, sum, in);
        }
        SmallVector<Value> yields(inits.size(), sum);
        nb.create<linalg::YieldOp>(nl, yields);
      });
  op.setLibraryCallAttr(b.getStringAttr(name));
  return op.getResults();
}

void cpu::detail::fuseAttention(func::FuncOp func) {
  bool training = func.walk([](attnedit::LossGradOp) { return WalkResult::interrupt(); })
                      .wasInterrupted();
  // All chains are matched before any is rewritten: a rewrite erases
  // matmuls (a training chain's backward ones) that come later in the walk.
  std::vector<std::pair<Chain, std::optional<Backward>>> chains;
  func.walk([&](attnedit::MatmulOp op) {
    std::optional<Chain> chain = match(op, training);
    if (!chain)
      return;
    // A frozen chain (no backward ops) qualifies like an inference one: its
    // probabilities must feed the value product alone. Decomposed, it would
    // hold T×T scores per head and, on a packed lane, compute the scores
    // between sequences only to mask them.
    std::optional<Backward> bw = training ? matchBackward(*chain) : std::nullopt;
    if (bw || singleUse(chain->softmax.getResult()))
      chains.push_back({*chain, bw});
  });
  for (auto &[chain, bw] : chains) {
    if (bw)
      rewriteTraining(chain, *bw);
    else
      rewrite(chain);
  }
}
