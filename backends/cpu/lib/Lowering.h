//===- Lowering.h - shared pieces of attnedit-cpu-convert-to-linalg -*- C++ -*-===//
//
// Private to backends/cpu/lib: the builders every lowering uses (elementwise
// and reduction generics, GEMM contractions) and the Lowering class, one
// lower() per attnedit op, defined in LowerPrimitives.cpp (forward ops) and
// LowerTraining.cpp (losses and backward ops).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_CPU_LIB_LOWERING_H
#define ATTNEDIT_CPU_LIB_LOWERING_H

#include "attnedit/IR/AttnEditOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineExpr.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/StringSwitch.h"

#include <cmath>
#include <limits>

namespace mlir::attnedit::cpu::detail {

using utils::IteratorType;
using BodyFn = function_ref<Value(OpBuilder &, Location, ValueRange)>;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

inline RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }

inline Value f32Const(OpBuilder &b, Location loc, double v) {
  return b.create<arith::ConstantOp>(loc, b.getF32FloatAttr((float)v));
}
inline Value f64Const(OpBuilder &b, Location loc, double v) {
  return b.create<arith::ConstantOp>(loc, b.getF64FloatAttr(v));
}
inline Value indexConst(OpBuilder &b, Location loc, int64_t v) {
  return b.create<arith::ConstantIndexOp>(loc, v);
}
inline Value toF64(OpBuilder &b, Location loc, Value v) {
  return b.create<arith::ExtFOp>(loc, b.getF64Type(), v);
}
inline Value toF32(OpBuilder &b, Location loc, Value v) {
  return b.create<arith::TruncFOp>(loc, b.getF32Type(), v);
}

/// The size of dimension `i` of `v` as an index value.
inline Value dimOf(OpBuilder &b, Location loc, Value v, int64_t i) {
  return b.create<tensor::DimOp>(loc, v, i);
}

/// tensor.empty of `type`, its dynamic sizes given in order.
inline Value empty(OpBuilder &b, Location loc, RankedTensorType type, ValueRange dynamicSizes) {
  return b.create<tensor::EmptyOp>(loc, type.getShape(), type.getElementType(), dynamicSizes);
}

/// tensor.empty of `type` whose dynamic sizes are those of `like` at the
/// same positions (elementwise results).
inline Value emptyLike(OpBuilder &b, Location loc, RankedTensorType type, Value like) {
  SmallVector<Value> sizes;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      sizes.push_back(dimOf(b, loc, like, i));
  return empty(b, loc, type, sizes);
}

/// A 1-D f32 constant: the scalar parameters a library call reads.
inline Value paramsConstant(OpBuilder &b, Location loc, ArrayRef<float> values) {
  auto type = RankedTensorType::get({(int64_t)values.size()}, b.getF32Type());
  return b.create<arith::ConstantOp>(loc, DenseElementsAttr::get(type, values));
}

inline Value fill(OpBuilder &b, Location loc, Value init, Value value) {
  return b.create<linalg::FillOp>(loc, value, init).getResult(0);
}

/// An all-parallel linalg.generic over `init`'s shape; each input comes
/// with its own map (identity when none is given).
inline Value generic(OpBuilder &b, Location loc, Value init, ValueRange inputs,
              ArrayRef<AffineMap> inputMaps, BodyFn body) {
  int64_t rank = tensorType(init).getRank();
  SmallVector<AffineMap> maps(inputMaps);
  while (maps.size() < inputs.size())
    maps.push_back(b.getMultiDimIdentityMap(rank));
  maps.push_back(b.getMultiDimIdentityMap(rank));
  SmallVector<IteratorType> iterators(rank, IteratorType::parallel);
  return b
      .create<linalg::GenericOp>(loc, init.getType(), inputs, init, maps, iterators,
                                 [&](OpBuilder &nb, Location nloc, ValueRange args) {
                                   nb.create<linalg::YieldOp>(nloc, body(nb, nloc, args));
                                 })
      .getResult(0);
}

/// An elementwise map of same-shaped `inputs` into a tensor of `type`.
inline Value elementwise(OpBuilder &b, Location loc, RankedTensorType type, ValueRange inputs,
                  BodyFn body) {
  return generic(b, loc, emptyLike(b, loc, type, inputs.front()), inputs, {}, body);
}

/// Reduces `inputs` (same shape) along `axis` into an f64 tensor of the
/// remaining dimensions, starting from `init` (a scalar f64, or a tensor of
/// the reduced shape). `body(args..., acc)` returns the new accumulator.
inline Value reduceAxis(OpBuilder &b, Location loc, ValueRange inputs, int64_t axis, Value init,
                 BodyFn body) {
  RankedTensorType in = tensorType(inputs.front());
  int64_t rank = in.getRank();
  SmallVector<int64_t> shape;
  SmallVector<Value> sizes;
  SmallVector<AffineExpr> outExprs;
  for (int64_t i = 0; i < rank; ++i) {
    if (i == axis)
      continue;
    shape.push_back(in.getDimSize(i));
    if (in.isDynamicDim(i))
      sizes.push_back(dimOf(b, loc, inputs.front(), i));
    outExprs.push_back(b.getAffineDimExpr(i));
  }
  auto outType = RankedTensorType::get(shape, b.getF64Type());
  Value acc = init;
  if (!isa<RankedTensorType>(init.getType()))
    acc = fill(b, loc, empty(b, loc, outType, sizes), init);
  SmallVector<AffineMap> maps(inputs.size(), b.getMultiDimIdentityMap(rank));
  maps.push_back(AffineMap::get(rank, 0, outExprs, b.getContext()));
  SmallVector<IteratorType> iterators(rank, IteratorType::parallel);
  iterators[axis] = IteratorType::reduction;
  return b
      .create<linalg::GenericOp>(loc, outType, inputs, acc, maps, iterators,
                                 [&](OpBuilder &nb, Location nloc, ValueRange args) {
                                   nb.create<linalg::YieldOp>(nloc, body(nb, nloc, args));
                                 })
      .getResult(0);
}

/// The map from a rank-`rank` iteration space to the same dims minus `axis`.
inline AffineMap dropAxisMap(OpBuilder &b, int64_t rank, int64_t axis) {
  SmallVector<AffineExpr> exprs;
  for (int64_t i = 0; i < rank; ++i)
    if (i != axis)
      exprs.push_back(b.getAffineDimExpr(i));
  return AffineMap::get(rank, 0, exprs, b.getContext());
}

inline Value exp64(OpBuilder &b, Location loc, Value x) { return b.create<math::ExpOp>(loc, x); }

/// exp of an f64 value computed in f32, back in f64: for the losses' softmax
/// over the vocabulary, where an exp per logit and pass dominates the loss and
/// f32's relative error (~1e-7) is far inside the loss and gradient
/// tolerances, at half the vector width's cost of libmvec's f64 exp.
inline Value expInF32(OpBuilder &b, Location loc, Value x) {
  return toF64(b, loc, b.create<math::ExpOp>(loc, toF32(b, loc, x)));
}

/// 1 + exp(-x) of an f32 x, in f32: the denominator of sigmoid and SiLU.
/// The reference kernels compute these in double. In f32 they differ from
/// it by a few ulp of the tensor's scale, far inside the checks, which
/// scale errors by a tensor's largest entry: relatively more only where
/// values vanish (SiLU's gradient cancels near x = -1.28; below x = -88.7
/// exp overflows, and sigmoid and SiLU give 0 where double gives < 1e-37).
/// It costs a quarter as much: libmvec's f64 exp has half the lanes and
/// vdivpd a third of vdivps's throughput, which had made SwiGLU's loops ~7%
/// of distillation stage 2's step.
inline Value onePlusExpNeg(OpBuilder &b, Location loc, Value x) {
  return b.create<arith::AddFOp>(loc, f32Const(b, loc, 1.0),
                                 b.create<math::ExpOp>(loc, b.create<arith::NegFOp>(loc, x)));
}

//===----------------------------------------------------------------------===//
// GEMM
//===----------------------------------------------------------------------===//

/// C (+)= op(A) · op(B) over rank-2 or rank-3 (batched) operands, as a
/// linalg.generic contraction named for the BLAS shim that implements it.
/// `acc` is the initial C (zeros, or a broadcast bias).
inline Value gemm(OpBuilder &b, Location loc, Value lhs, Value rhs, Value acc, bool transA,
           bool transB, bool blas) {
  int64_t rank = tensorType(acc).getRank();
  bool batched = rank == 3;
  MLIRContext *ctx = b.getContext();
  // Iteration space (batch?, m, n, k).
  int64_t nd = batched ? 4 : 3;
  auto d = [&](int64_t i) { return getAffineDimExpr(i + (batched ? 1 : 0), ctx); };
  SmallVector<AffineExpr> batch;
  if (batched)
    batch.push_back(getAffineDimExpr(0, ctx));
  auto with = [&](AffineExpr x, AffineExpr y) {
    SmallVector<AffineExpr> e(batch);
    e.push_back(x);
    e.push_back(y);
    return AffineMap::get(nd, 0, e, ctx);
  };
  AffineMap aMap = transA ? with(d(2), d(0)) : with(d(0), d(2));
  AffineMap bMap = transB ? with(d(1), d(2)) : with(d(2), d(1));
  AffineMap cMap = with(d(0), d(1));
  SmallVector<IteratorType> iterators(nd, IteratorType::parallel);
  iterators.back() = IteratorType::reduction;
  std::string name = std::string("attnedit_cpu_") + (batched ? "bgemm_" : "gemm_") +
                     (transA ? "t" : "n") + (transB ? "t" : "n");
  auto op = b.create<linalg::GenericOp>(
      loc, acc.getType(), ValueRange{lhs, rhs}, acc,
      ArrayRef<AffineMap>{aMap, bMap, cMap}, iterators,
      [&](OpBuilder &nb, Location nloc, ValueRange args) {
        Value p = nb.create<arith::MulFOp>(nloc, args[0], args[1]);
        nb.create<linalg::YieldOp>(nloc, ValueRange{nb.create<arith::AddFOp>(nloc, args[2], p)});
      });
  if (blas)
    op.setLibraryCallAttr(b.getStringAttr(name));
  return op.getResult(0);
}

/// Collapses all leading dims of `v` into one: [a, b, ..., x, y] -> [a·b·..., x, y]
/// keeping the last `keep` dims.
inline Value collapseLeading(OpBuilder &b, Location loc, Value v, int64_t keep) {
  int64_t rank = tensorType(v).getRank();
  if (rank <= keep + 1)
    return v;
  SmallVector<ReassociationIndices> groups(1);
  for (int64_t i = 0; i < rank - keep; ++i)
    groups[0].push_back(i);
  for (int64_t i = rank - keep; i < rank; ++i)
    groups.push_back({i});
  return b.create<tensor::CollapseShapeOp>(loc, v, groups);
}

/// Expands `v`'s first dim back into the leading dims of `type`, whose
/// dynamic sizes are those of `like`.
inline Value expandLeading(OpBuilder &b, Location loc, Value v, RankedTensorType type, Value like) {
  int64_t rank = type.getRank(), vRank = tensorType(v).getRank();
  if (rank == vRank)
    return v;
  int64_t lead = rank - vRank + 1;
  SmallVector<ReassociationIndices> groups(1);
  for (int64_t i = 0; i < lead; ++i)
    groups[0].push_back(i);
  for (int64_t i = lead; i < rank; ++i)
    groups.push_back({i});
  SmallVector<OpFoldResult> shape;
  for (int64_t i = 0; i < rank; ++i)
    shape.push_back(type.isDynamicDim(i) ? OpFoldResult(dimOf(b, loc, like, i))
                                         : OpFoldResult(b.getIndexAttr(type.getDimSize(i))));
  return b.create<tensor::ExpandShapeOp>(loc, type, v, groups, shape);
}

/// `v` when it is not produced by a transpose swapping its last two axes,
/// else that transpose's input (the GEMM then reads it transposed).
inline std::pair<Value, bool> looksThroughTranspose(Value v) {
  auto t = v.getDefiningOp<attnedit::TransposeOp>();
  if (!t)
    return {v, false};
  ArrayRef<int64_t> perm = t.getPermutation();
  int64_t r = perm.size();
  if (r < 2 || perm[r - 1] != r - 2 || perm[r - 2] != r - 1)
    return {v, false};
  for (int64_t i = 0; i + 2 < r; ++i)
    if (perm[i] != i)
      return {v, false};
  return {t.getInput(), true};
}

//===----------------------------------------------------------------------===//
// Per-op lowerings
//===----------------------------------------------------------------------===//

/// Builds the linalg form of one attnedit op at `loc`; failure leaves the op
/// for the "no CPU lowering" diagnostic.
/// The opaque library-call generic outs(inits...) = name(inputs...)
/// (LowerAttention.cpp): one loop per operand dimension, a payload that
/// reads every operand (i32 ones too), `library_call = name`, so
/// bufferization sees every operand read and nothing fuses or lowers it.
/// Init i with non-empty `initAxes[i]` reaches the library with its axes
/// permuted, as memref.transpose would (the library's axis j is the
/// tensor's axis initAxes[i][j]): a kernel writes a layout other than its
/// own without a transposing copy.
SmallVector<Value> libraryCall(OpBuilder &b, Location loc, StringRef name, ValueRange inputs,
                               ValueRange inits,
                               ArrayRef<SmallVector<int64_t, 3>> initAxes = {});

/// Marks each function argument that a `cache_write` updates writable, and
/// drops the results that are such a pool after its writes, recording in
/// `attnedit.donated_results` the argument each original result is
/// (-1: computed) (LowerCache.cpp).
void donateCachePools(func::FuncOp func);

/// Replaces each attention chain of `func` whose probabilities feed only
/// the value product by one fused attention call, and in a training step
/// each chain with its backward ops by a forward and a backward call
/// (LowerAttention.cpp).
void fuseAttention(func::FuncOp func);

struct Lowering {
  OpBuilder &b;
  Location loc;
  bool blas;

  /// Stops the call with `what` unless `got` equals `want` (sizes the
  /// verifier saw as dynamic): JitModule::call then fails with the message
  /// and both sizes. The work after it is never reached with sizes that
  /// would read or write outside its buffers.
  void requireEqual(Operation *op, Value got, Value want, StringRef what);
  /// The same unless `got` <= `limit`.
  void requireAtMost(Operation *op, Value got, Value limit, StringRef what);
  /// The same unless `divisor` divides `got` ("{0}" in `what` is the
  /// remainder); nothing to check for a divisor of 1 or less.
  void requireMultiple(Operation *op, Value got, int64_t divisor, StringRef what);
  /// requireEqual for each dimension that `operands` (of one shape) hold
  /// dynamic somewhere.
  void requireSameShape(Operation *op, ValueRange operands);

  FailureOr<Value> lower(attnedit::ConvertOp op);
  FailureOr<Value> lower(attnedit::EmbeddingOp op);
  FailureOr<Value> lower(attnedit::LinearOp op);
  FailureOr<Value> lower(attnedit::MatmulOp op);
  FailureOr<Value> lower(attnedit::RmsNormOp op);
  FailureOr<Value> lower(attnedit::RopeOp op);
  FailureOr<Value> lower(attnedit::SoftmaxOp op);
  FailureOr<Value> lower(attnedit::CausalMaskOp op);
  FailureOr<Value> lower(attnedit::RepeatKvOp op);
  FailureOr<Value> lower(attnedit::SiluOp op);
  FailureOr<Value> lower(attnedit::SigmoidOp op);
  FailureOr<Value> lower(attnedit::AddOp op);
  FailureOr<Value> lower(attnedit::MulOp op);
  FailureOr<Value> lower(attnedit::ScaleOp op);
  FailureOr<Value> lower(attnedit::ReshapeOp op);
  FailureOr<Value> lower(attnedit::BroadcastOp op);
  FailureOr<Value> lower(attnedit::TransposeOp op);
  FailureOr<Value> lower(attnedit::SliceOp op);
  /// Inserts `parts` one after another along `axis` into `dest`, from `start`.
  Value insertAlong(Value dest, ValueRange parts, int64_t axis, Value start);
  FailureOr<Value> lower(attnedit::ConcatOp op);
  FailureOr<Value> lower(attnedit::PadOp op);
  FailureOr<Value> lower(attnedit::ReduceSumOp op);
  FailureOr<Value> lower(attnedit::CacheWriteOp op);
  FailureOr<Value> lower(attnedit::PagedAttentionOp op);
  /// `v` as [rows, width]: leading dims collapsed, a vector made one row.
  Value asRows(Value v);
  /// Sums `body(args...)` (f64) over every element of same-shaped inputs
  /// into a rank-0 f64 tensor.
  Value sumAll(ValueRange inputs, ArrayRef<AffineMap> inputMaps, BodyFn body);
  /// Row maps for a [rows, width] iteration space.
  AffineMap rowOf2() { return AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, b.getContext()); }
  /// Per-row log-sum-exp of x/τ in f64, [rows].
  Value logSumExp(Value x, double temperature);
  /// The count of rows with a target (cross entropy), else the row count, f64 scalar.
  Value countedRows(Value rows2, Value targets);
  /// total / counted (0 when nothing counts) as tensor<f32>.
  Value meanScalar(Value total, Value counted);
  /// Per-row cosine parts of x and y: (dot, |x|², |y|²), each [rows] f64.
  std::array<Value, 3> cosineParts(Value x, Value y);
  FailureOr<Value> lossValue(LossKind kind, Value lhs, Value rhs, double temperature);
  FailureOr<Value> lower(attnedit::MseLossOp op);
  FailureOr<Value> lower(attnedit::KlLossOp op);
  FailureOr<Value> lower(attnedit::CrossEntropyLossOp op);
  FailureOr<Value> lower(attnedit::CosineLossOp op);
  FailureOr<Value> lower(attnedit::LossGradOp op);
  FailureOr<Value> lower(attnedit::EmbeddingGradOp op);
  /// 1 / sqrt(Σx²/d + eps) per row of `x` (rank ≥ 1, last axis), f64.
  Value inverseRms(Value x, double eps);
  FailureOr<Value> lower(attnedit::RmsNormGradOp op);
  FailureOr<Value> lower(attnedit::RmsNormWeightGradOp op);
  FailureOr<Value> lower(attnedit::SoftmaxGradOp op);
  FailureOr<Value> lower(attnedit::SinkGradOp op);
  FailureOr<Value> lower(attnedit::SiluGradOp op);
  FailureOr<Value> lower(attnedit::SigmoidGradOp op);
};

} // namespace mlir::attnedit::cpu::detail

#endif // ATTNEDIT_CPU_LIB_LOWERING_H
