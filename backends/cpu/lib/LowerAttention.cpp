//===- LowerAttention.cpp - attention chains to one fused library call -----===//
//
// The decomposition of every attention kind (attnedit/IR/PrimitiveBuilder.h,
// attend) ends in
//   matmul(q, transpose(k)) → scale → causal_mask → softmax(+sinks) → matmul(·, v)
// Lowered op by op this materialises H·Tq·Tk scores three times and runs
// one exp per entry through libm. Where the probabilities feed nothing but
// the value product, in functions that compute no gradient (inference),
// the chain becomes one call of the flash-attention kernel of
// AttentionLibrary.cpp.
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
  int64_t window = 0;
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

std::optional<Chain> match(attnedit::MatmulOp values) {
  Chain c;
  c.values = values;
  c.softmax = values.getLhs().getDefiningOp<attnedit::SoftmaxOp>();
  if (!c.softmax || !singleUse(c.softmax.getResult()) || tensorType(values.getLhs()).getRank() != 3 ||
      c.softmax.getAxis() != 2)
    return std::nullopt;
  Value x = c.softmax.getInput();
  while (singleUse(x)) {
    if (auto mask = x.getDefiningOp<attnedit::CausalMaskOp>()) {
      if (mask.getZeroFill() || c.causal)
        return std::nullopt;
      c.causal = true;
      c.window = mask.getWindow();
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

/// `v` with its axes permuted (result axis i is axis perm[i] of `v`),
/// looking through transposes so that undoing one costs nothing.
Value permuted(OpBuilder &b, Location loc, Value v, ArrayRef<int64_t> perm) {
  SmallVector<int64_t> p(perm);
  while (auto t = v.getDefiningOp<attnedit::TransposeOp>()) {
    ArrayRef<int64_t> inner = t.getPermutation();
    for (int64_t &axis : p)
      axis = inner[axis];
    v = t.getInput();
  }
  bool identity = true;
  for (size_t i = 0; i < p.size(); ++i)
    identity &= p[i] == (int64_t)i;
  if (identity)
    return v;
  SmallVector<int64_t> shape;
  for (int64_t axis : p)
    shape.push_back(tensorType(v).getDimSize(axis));
  return b.create<attnedit::TransposeOp>(loc, RankedTensorType::get(shape, b.getF32Type()), v,
                                         p);
}

void rewrite(Chain &c) {
  OpBuilder b(c.values);
  Location loc = c.values.getLoc();
  // Kernel layouts: q [Tq, H, D], k [Tk, Hk, D], v [Tk, Hk, Dv].
  Value q = permuted(b, loc, c.scores.getLhs(), {1, 0, 2});
  Value k = permuted(b, loc, c.kBase, {1, 0, 2});
  Value v = permuted(b, loc, c.vBase, {1, 0, 2});
  RankedTensorType qType = tensorType(q), vType = tensorType(v);
  auto outType = RankedTensorType::get(
      {qType.getDimSize(0), qType.getDimSize(1), vType.getDimSize(2)}, b.getF32Type());
  SmallVector<Value> sizes;
  if (outType.isDynamicDim(0))
    sizes.push_back(dimOf(b, loc, q, 0));
  if (outType.isDynamicDim(2))
    sizes.push_back(dimOf(b, loc, v, 2));
  Value init = empty(b, loc, outType, sizes);
  auto paramsType = RankedTensorType::get({3}, b.getF32Type());
  Value params = b.create<arith::ConstantOp>(
      loc, DenseElementsAttr::get(paramsType, ArrayRef<float>{(float)c.scale,
                                                               c.causal ? 1.0f : 0.0f,
                                                               (float)c.window}));
  SmallVector<Value> inputs{q, k, v};
  Value sinks = c.softmax.getSinks();
  if (sinks)
    inputs.push_back(sinks);
  inputs.push_back(params);
  Value out = libraryCall(b, loc, sinks ? "attnedit_cpu_attention_sinks" : "attnedit_cpu_attention",
                          inputs, init);
  // The chain's result is [H, Tq, Dv]; its users mostly transpose it back.
  Value heads;
  for (OpOperand &use : llvm::make_early_inc_range(c.values.getResult().getUses())) {
    auto t = dyn_cast<attnedit::TransposeOp>(use.getOwner());
    if (t && t.getPermutation() == ArrayRef<int64_t>{1, 0, 2}) {
      t.getResult().replaceAllUsesWith(out);
      continue;
    }
    if (!heads)
      heads = permuted(b, loc, out, {1, 0, 2});
    use.set(heads);
  }
  // Users of the old chain are gone; erase it consumer first.
  SmallVector<Operation *> dead{c.values, c.softmax};
  dead.append(c.between.begin(), c.between.end());
  dead.push_back(c.scores);
  for (Operation *op : dead)
    if (op->use_empty())
      op->erase();
}

} // namespace

Value cpu::detail::libraryCall(OpBuilder &b, Location loc, StringRef name, ValueRange inputs, Value init) {
  SmallVector<AffineMap> maps;
  SmallVector<IteratorType> iterators;
  unsigned total = 0;
  for (Value v : inputs)
    total += tensorType(v).getRank();
  unsigned outRank = tensorType(init).getRank();
  total += outRank;
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
  maps.push_back(nextMap(outRank));
  iterators.append(outRank, IteratorType::parallel);
  auto op = b.create<linalg::GenericOp>(
      loc, init.getType(), inputs, init, maps, iterators,
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
        nb.create<linalg::YieldOp>(nl, sum);
      });
  op.setLibraryCallAttr(b.getStringAttr(name));
  return op.getResult(0);
}

void cpu::detail::fuseAttention(func::FuncOp func) {
  // Training steps keep the op-by-op chain: a stage-1 gradient is the
  // difference of the student's and the teacher's nearly equal attention
  // outputs, which would amplify the fused kernel's different order of
  // sums (1e-7) far past the 1e-4 parity with the reference.
  bool training = func.walk([](attnedit::LossGradOp) { return WalkResult::interrupt(); })
                      .wasInterrupted();
  if (training)
    return;
  SmallVector<attnedit::MatmulOp> candidates;
  func.walk([&](attnedit::MatmulOp op) { candidates.push_back(op); });
  for (attnedit::MatmulOp op : candidates)
    if (std::optional<Chain> chain = match(op))
      rewrite(*chain);
}
