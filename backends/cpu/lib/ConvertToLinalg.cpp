//===- ConvertToLinalg.cpp - attnedit primitives to linalg on tensors ------===//
//
// One rewrite per primitive, each producing linalg on tensors (generic where
// no named op fits) so upstream fusion, bufferization and loop lowering do
// the rest. The arithmetic mirrors the reference kernels
// (runtime/lib/execution/Kernels.cpp) operation for operation, down to which
// sums run in double, because compiled code is checked against them at 1e-5.
//
//===----------------------------------------------------------------------===//

#include "attnedit/CPU/Passes.h"
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

namespace mlir::attnedit::cpu {
#define GEN_PASS_DEF_CONVERTTOLINALGPASS
#include "attnedit/CPU/Passes.h.inc"
} // namespace mlir::attnedit::cpu

using namespace mlir;
using namespace mlir::attnedit;

namespace {

using utils::IteratorType;
using BodyFn = function_ref<Value(OpBuilder &, Location, ValueRange)>;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }

Value f32Const(OpBuilder &b, Location loc, double v) {
  return b.create<arith::ConstantOp>(loc, b.getF32FloatAttr((float)v));
}
Value f64Const(OpBuilder &b, Location loc, double v) {
  return b.create<arith::ConstantOp>(loc, b.getF64FloatAttr(v));
}
Value indexConst(OpBuilder &b, Location loc, int64_t v) {
  return b.create<arith::ConstantIndexOp>(loc, v);
}
Value toF64(OpBuilder &b, Location loc, Value v) {
  return b.create<arith::ExtFOp>(loc, b.getF64Type(), v);
}
Value toF32(OpBuilder &b, Location loc, Value v) {
  return b.create<arith::TruncFOp>(loc, b.getF32Type(), v);
}

/// The size of dimension `i` of `v` as an index value.
Value dimOf(OpBuilder &b, Location loc, Value v, int64_t i) {
  return b.create<tensor::DimOp>(loc, v, i);
}

/// tensor.empty of `type`, its dynamic sizes given in order.
Value empty(OpBuilder &b, Location loc, RankedTensorType type, ValueRange dynamicSizes) {
  return b.create<tensor::EmptyOp>(loc, type.getShape(), type.getElementType(), dynamicSizes);
}

/// tensor.empty of `type` whose dynamic sizes are those of `like` at the
/// same positions (elementwise results).
Value emptyLike(OpBuilder &b, Location loc, RankedTensorType type, Value like) {
  SmallVector<Value> sizes;
  for (int64_t i = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      sizes.push_back(dimOf(b, loc, like, i));
  return empty(b, loc, type, sizes);
}

Value fill(OpBuilder &b, Location loc, Value init, Value value) {
  return b.create<linalg::FillOp>(loc, value, init).getResult(0);
}

/// An all-parallel linalg.generic over `init`'s shape; each input comes
/// with its own map (identity when none is given).
Value generic(OpBuilder &b, Location loc, Value init, ValueRange inputs,
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
Value elementwise(OpBuilder &b, Location loc, RankedTensorType type, ValueRange inputs,
                  BodyFn body) {
  return generic(b, loc, emptyLike(b, loc, type, inputs.front()), inputs, {}, body);
}

/// Reduces `inputs` (same shape) along `axis` into an f64 tensor of the
/// remaining dimensions, starting from `init` (a scalar f64, or a tensor of
/// the reduced shape). `body(args..., acc)` returns the new accumulator.
Value reduceAxis(OpBuilder &b, Location loc, ValueRange inputs, int64_t axis, Value init,
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
AffineMap dropAxisMap(OpBuilder &b, int64_t rank, int64_t axis) {
  SmallVector<AffineExpr> exprs;
  for (int64_t i = 0; i < rank; ++i)
    if (i != axis)
      exprs.push_back(b.getAffineDimExpr(i));
  return AffineMap::get(rank, 0, exprs, b.getContext());
}

Value exp64(OpBuilder &b, Location loc, Value x) { return b.create<math::ExpOp>(loc, x); }

//===----------------------------------------------------------------------===//
// GEMM
//===----------------------------------------------------------------------===//

/// C (+)= op(A) · op(B) over rank-2 or rank-3 (batched) operands, as a
/// linalg.generic contraction named for the BLAS shim that implements it.
/// `acc` is the initial C (zeros, or a broadcast bias).
Value gemm(OpBuilder &b, Location loc, Value lhs, Value rhs, Value acc, bool transA,
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
Value collapseLeading(OpBuilder &b, Location loc, Value v, int64_t keep) {
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
Value expandLeading(OpBuilder &b, Location loc, Value v, RankedTensorType type, Value like) {
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
std::pair<Value, bool> looksThroughTranspose(Value v) {
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

struct Lowering {
  OpBuilder &b;
  Location loc;
  bool blas;

  FailureOr<Value> lower(attnedit::ConvertOp op) {
    // Parameters arrive as f32 (the store widens f16/bf16 once), so the
    // conversion has nothing left to do on the CPU.
    if (!tensorType(op.getInput()).getElementType().isF32())
      return failure();
    return op.getInput();
  }

  FailureOr<Value> lower(attnedit::EmbeddingOp op) {
    Value table = op.getTable(), ids = op.getIds();
    RankedTensorType type = tensorType(op.getResult());
    Value init = emptyLike(b, loc, type, ids);
    AffineMap idsMap = AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, b.getContext());
    return generic(b, loc, init, ids, {idsMap}, [&](OpBuilder &nb, Location l, ValueRange a) {
      // Clamped: the executor checks ids before the call, the clamp keeps a
      // bad id from ever reading outside the table.
      Value id = nb.create<arith::IndexCastOp>(l, nb.getIndexType(), a[0]);
      Value last = nb.create<arith::SubIOp>(l, dimOf(nb, l, table, 0), indexConst(nb, l, 1));
      id = nb.create<arith::MaxSIOp>(l, id, indexConst(nb, l, 0));
      id = nb.create<arith::MinSIOp>(l, id, last);
      Value col = nb.create<linalg::IndexOp>(l, 1);
      return nb.create<tensor::ExtractOp>(l, table, ValueRange{id, col}).getResult();
    });
  }

  FailureOr<Value> lower(attnedit::LinearOp op) {
    RankedTensorType type = tensorType(op.getResult());
    Value x = collapseLeading(b, loc, op.getInput(), 1);
    Value w = op.getWeight();
    auto flatType = RankedTensorType::get(
        {tensorType(x).getDimSize(0), type.getShape().back()}, b.getF32Type());
    Value init = emptyLike(b, loc, flatType, x);
    if (Value bias = op.getBias()) {
      AffineMap biasMap = AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, b.getContext());
      init = generic(b, loc, init, bias, {biasMap},
                     [](OpBuilder &, Location, ValueRange a) { return a[0]; });
    } else {
      init = fill(b, loc, init, f32Const(b, loc, 0.0));
    }
    Value y = gemm(b, loc, x, w, init, /*transA=*/false, /*transB=*/true, blas);
    return expandLeading(b, loc, y, type, op.getInput());
  }

  FailureOr<Value> lower(attnedit::MatmulOp op) {
    RankedTensorType type = tensorType(op.getResult());
    auto [lhs, transA] = looksThroughTranspose(op.getLhs());
    auto [rhs, transB] = looksThroughTranspose(op.getRhs());
    lhs = collapseLeading(b, loc, lhs, 2);
    rhs = collapseLeading(b, loc, rhs, 2);
    RankedTensorType l = tensorType(lhs);
    SmallVector<int64_t> shape;
    SmallVector<Value> sizes;
    auto addDim = [&](Value v, int64_t i) {
      shape.push_back(tensorType(v).getDimSize(i));
      if (tensorType(v).isDynamicDim(i))
        sizes.push_back(dimOf(b, loc, v, i));
    };
    int64_t r = l.getRank();
    if (r == 3)
      addDim(lhs, 0);
    addDim(lhs, transA ? r - 1 : r - 2);
    addDim(rhs, transB ? r - 2 : r - 1);
    auto flatType = RankedTensorType::get(shape, b.getF32Type());
    Value init = fill(b, loc, empty(b, loc, flatType, sizes), f32Const(b, loc, 0.0));
    Value y = gemm(b, loc, lhs, rhs, init, transA, transB, blas);
    if (flatType == type)
      return y;
    // Leading batch dims come back from the result's own operands.
    SmallVector<ReassociationIndices> groups(1);
    int64_t rank = type.getRank();
    for (int64_t i = 0; i < rank - 2; ++i)
      groups[0].push_back(i);
    groups.push_back({rank - 2});
    groups.push_back({rank - 1});
    SmallVector<OpFoldResult> outShape;
    for (int64_t i = 0; i < rank; ++i) {
      if (!type.isDynamicDim(i)) {
        outShape.push_back(b.getIndexAttr(type.getDimSize(i)));
        continue;
      }
      Value src = i < rank - 2 ? op.getLhs() : i == rank - 2 ? op.getLhs() : op.getRhs();
      outShape.push_back(dimOf(b, loc, src, i));
    }
    return b.create<tensor::ExpandShapeOp>(loc, type, y, groups, outShape).getResult();
  }

  FailureOr<Value> lower(attnedit::RmsNormOp op) {
    Value x = op.getInput(), w = op.getWeight();
    RankedTensorType type = tensorType(x);
    int64_t rank = type.getRank(), axis = rank - 1;
    Value sum = reduceAxis(b, loc, x, axis, f64Const(b, loc, 0.0),
                           [](OpBuilder &nb, Location l, ValueRange a) {
                             Value v = toF64(nb, l, a[0]);
                             return nb.create<arith::AddFOp>(l, a[1], nb.create<arith::MulFOp>(l, v, v))
                                 .getResult();
                           });
    Value d = f64Const(b, loc, (double)type.getDimSize(axis));
    double eps = op.getEps().convertToDouble();
    AffineMap rowMap = dropAxisMap(b, rank, axis);
    AffineMap wMap = AffineMap::get(rank, 0, {b.getAffineDimExpr(axis)}, b.getContext());
    return generic(b, loc, emptyLike(b, loc, type, x), ValueRange{x, sum, w},
                   {b.getMultiDimIdentityMap(rank), rowMap, wMap},
                   [&](OpBuilder &nb, Location l, ValueRange a) {
                     // inv = 1 / sqrt(sum / d + eps); out = x · inv · w in double.
                     Value mean = nb.create<arith::DivFOp>(l, a[1], d);
                     Value root = nb.create<math::SqrtOp>(
                         l, nb.create<arith::AddFOp>(l, mean, f64Const(nb, l, eps)));
                     Value inv = nb.create<arith::DivFOp>(l, f64Const(nb, l, 1.0), root);
                     Value v = nb.create<arith::MulFOp>(l, toF64(nb, l, a[0]), inv);
                     return toF32(nb, l, nb.create<arith::MulFOp>(l, v, toF64(nb, l, a[2])));
                   });
  }

  FailureOr<Value> lower(attnedit::RopeOp op) {
    Value x = op.getInput(), positions = op.getPositions();
    RankedTensorType type = tensorType(x);
    int64_t rotary = op.getRotaryDim(), half = rotary / 2;
    bool interleaved = op.getStyle() == RopeStyle::Interleaved;
    // Inverse frequencies as the reference computes them (ropeInverseFrequencies).
    std::vector<double> inv(half);
    for (int64_t i = 0; i < half; ++i)
      inv[i] = std::pow(op.getTheta().convertToDouble(), -2.0 * i / rotary);
    if (auto scaling = op.getLlama3Scaling()) {
      ArrayRef<double> s = *scaling;
      double factor = s[0], lowFactor = s[1], highFactor = s[2], original = s[3];
      double lowWavelen = original / lowFactor, highWavelen = original / highFactor;
      for (double &f : inv) {
        double wavelen = 2 * M_PI / f;
        if (wavelen > lowWavelen) {
          f /= factor;
        } else if (wavelen >= highWavelen) {
          double smooth = (original / wavelen - lowFactor) / (highFactor - lowFactor);
          f = (1 - smooth) * f / factor + smooth * f;
        }
      }
    }
    if (op.getInverse())
      for (double &f : inv)
        f = -f;
    auto invType = RankedTensorType::get({std::max<int64_t>(half, 1)}, b.getF64Type());
    if (inv.empty())
      inv.push_back(0.0);
    Value invTable = b.create<arith::ConstantOp>(
        loc, DenseElementsAttr::get(invType, ArrayRef<double>(inv)));
    AffineMap posMap = AffineMap::get(3, 0, {b.getAffineDimExpr(0)}, b.getContext());
    return generic(
        b, loc, emptyLike(b, loc, type, x), ValueRange{x, positions},
        {b.getMultiDimIdentityMap(3), posMap}, [&](OpBuilder &nb, Location l, ValueRange a) {
          Value t = nb.create<linalg::IndexOp>(l, 0), h = nb.create<linalg::IndexOp>(l, 1);
          Value dd = nb.create<linalg::IndexOp>(l, 2);
          Value c1 = indexConst(nb, l, 1), c2 = indexConst(nb, l, 2);
          Value cHalf = indexConst(nb, l, half);
          // Pair index i, partner feature and whether this is the pair's first.
          Value i, partner, first;
          if (interleaved) {
            i = nb.create<arith::DivUIOp>(l, dd, c2);
            Value rem = nb.create<arith::RemUIOp>(l, dd, c2);
            first = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::eq, rem,
                                             indexConst(nb, l, 0));
            partner = nb.create<arith::SelectOp>(l, first, nb.create<arith::AddIOp>(l, dd, c1),
                                                 nb.create<arith::SubIOp>(l, dd, c1));
          } else {
            first = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::ult, dd, cHalf);
            i = nb.create<arith::SelectOp>(l, first, dd, nb.create<arith::SubIOp>(l, dd, cHalf));
            partner = nb.create<arith::SelectOp>(l, first, nb.create<arith::AddIOp>(l, dd, cHalf),
                                                 nb.create<arith::SubIOp>(l, dd, cHalf));
          }
          Value rotated = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::ult, dd,
                                                   indexConst(nb, l, rotary));
          // Out-of-range i/partner (features past rotary_dim) are clamped for
          // the loads and their results discarded by the final select.
          Value iSafe = nb.create<arith::SelectOp>(l, rotated, i, indexConst(nb, l, 0));
          Value pSafe = nb.create<arith::SelectOp>(l, rotated, partner, dd);
          Value freq = nb.create<tensor::ExtractOp>(l, invTable, ValueRange{iSafe});
          Value pos = nb.create<arith::SIToFPOp>(l, nb.getF64Type(), a[1]);
          Value angle = nb.create<arith::MulFOp>(l, pos, freq);
          Value cosv = toF32(nb, l, nb.create<math::CosOp>(l, angle));
          Value sinv = toF32(nb, l, nb.create<math::SinOp>(l, angle));
          Value other = nb.create<tensor::ExtractOp>(l, x, ValueRange{t, h, pSafe});
          // first: x·cos − other·sin; second: x·cos + other·sin.
          Value xc = nb.create<arith::MulFOp>(l, a[0], cosv);
          Value os = nb.create<arith::MulFOp>(l, other, sinv);
          Value res = nb.create<arith::SelectOp>(l, first, nb.create<arith::SubFOp>(l, xc, os),
                                                 nb.create<arith::AddFOp>(l, xc, os));
          return nb.create<arith::SelectOp>(l, rotated, res, a[0]).getResult();
        });
  }

  FailureOr<Value> lower(attnedit::SoftmaxOp op) {
    Value x = op.getInput(), sinks = op.getSinks();
    RankedTensorType type = tensorType(x);
    int64_t rank = type.getRank(), axis = op.getAxis();
    float ninfF = -std::numeric_limits<float>::infinity();
    AffineMap rowMap = dropAxisMap(b, rank, axis);
    // Row maximum (f32, as the reference), starting from the sink logit.
    Value maxInit;
    if (sinks) {
      SmallVector<int64_t> shape;
      for (int64_t i = 0; i < rank; ++i)
        if (i != axis)
          shape.push_back(type.getDimSize(i));
      auto rowType = RankedTensorType::get(shape, b.getF32Type());
      SmallVector<Value> sizes;
      for (int64_t i = 0; i < rank; ++i)
        if (i != axis && type.isDynamicDim(i))
          sizes.push_back(dimOf(b, loc, x, i));
      AffineMap sinkMap = AffineMap::get(rank - 1, 0, {b.getAffineDimExpr(0)}, b.getContext());
      maxInit = generic(b, loc, empty(b, loc, rowType, sizes), sinks, {sinkMap},
                        [](OpBuilder &, Location, ValueRange a) { return a[0]; });
    }
    Value rowMax;
    {
      SmallVector<int64_t> shape;
      SmallVector<Value> sizes;
      for (int64_t i = 0; i < rank; ++i)
        if (i != axis) {
          shape.push_back(type.getDimSize(i));
          if (type.isDynamicDim(i))
            sizes.push_back(dimOf(b, loc, x, i));
        }
      auto rowType = RankedTensorType::get(shape, b.getF32Type());
      Value init = maxInit ? maxInit
                           : fill(b, loc, empty(b, loc, rowType, sizes), f32Const(b, loc, ninfF));
      SmallVector<IteratorType> it(rank, IteratorType::parallel);
      it[axis] = IteratorType::reduction;
      rowMax = b.create<linalg::GenericOp>(
                    loc, rowType, x, init,
                    ArrayRef<AffineMap>{b.getMultiDimIdentityMap(rank), rowMap}, it,
                    [&](OpBuilder &nb, Location l, ValueRange a) {
                      nb.create<linalg::YieldOp>(
                          l, ValueRange{nb.create<arith::MaxNumFOp>(l, a[0], a[1])});
                    })
                   .getResult(0);
    }
    // e = exp(x - max) in float, once per entry and none for masked ones
    // (exactly -inf: half of a causal row), as the reference kernel does;
    // the sum and the normalisation both read this one tensor.
    Value e = generic(
        b, loc, emptyLike(b, loc, type, x), ValueRange{x, rowMax},
        {b.getMultiDimIdentityMap(rank), rowMap}, [&](OpBuilder &nb, Location l, ValueRange a) {
          Value isMasked = nb.create<arith::CmpFOp>(l, arith::CmpFPredicate::OEQ, a[0],
                                                    f32Const(nb, l, ninfF));
          return nb
              .create<scf::IfOp>(
                  l, isMasked,
                  [&](OpBuilder &tb, Location tl) {
                    tb.create<scf::YieldOp>(tl, f32Const(tb, tl, 0.0));
                  },
                  [&](OpBuilder &eb, Location el) {
                    Value d = eb.create<arith::SubFOp>(el, a[0], a[1]);
                    eb.create<scf::YieldOp>(el, eb.create<math::ExpOp>(el, d).getResult());
                  })
              .getResult(0);
        });
    // Sum in double; with sinks it starts at exp(sink - max).
    Value sumInit;
    {
      SmallVector<Value> rowInputs{rowMax};
      RankedTensorType rowType = tensorType(rowMax);
      SmallVector<Value> sizes;
      for (int64_t i = 0; i < rowType.getRank(); ++i)
        if (rowType.isDynamicDim(i))
          sizes.push_back(dimOf(b, loc, rowMax, i));
      auto f64Row = RankedTensorType::get(rowType.getShape(), b.getF64Type());
      Value init = empty(b, loc, f64Row, sizes);
      if (sinks) {
        AffineMap sinkMap =
            AffineMap::get(rank - 1, 0, {b.getAffineDimExpr(0)}, b.getContext());
        sumInit = generic(b, loc, init, ValueRange{sinks, rowMax},
                          {sinkMap, b.getMultiDimIdentityMap(rank - 1)},
                          [](OpBuilder &nb, Location l, ValueRange a) {
                            return exp64(nb, l,
                                         nb.create<arith::SubFOp>(l, toF64(nb, l, a[0]),
                                                                  toF64(nb, l, a[1])));
                          });
      } else {
        sumInit = fill(b, loc, init, f64Const(b, loc, 0.0));
      }
    }
    Value sum;
    {
      SmallVector<IteratorType> it(rank, IteratorType::parallel);
      it[axis] = IteratorType::reduction;
      sum = b.create<linalg::GenericOp>(
                 loc, sumInit.getType(), ValueRange{e}, sumInit,
                 ArrayRef<AffineMap>{b.getMultiDimIdentityMap(rank), rowMap}, it,
                 [&](OpBuilder &nb, Location l, ValueRange a) {
                   nb.create<linalg::YieldOp>(
                       l, ValueRange{nb.create<arith::AddFOp>(l, a[1], toF64(nb, l, a[0]))});
                 })
                .getResult(0);
    }
    return generic(b, loc, emptyLike(b, loc, type, x), ValueRange{e, rowMax, sum},
                   {b.getMultiDimIdentityMap(rank), rowMap, rowMap},
                   [&](OpBuilder &nb, Location l, ValueRange a) {
                     Value e = a[0];
                     Value scale = toF32(nb, l, nb.create<arith::DivFOp>(l, f64Const(nb, l, 1.0), a[2]));
                     Value allMasked = nb.create<arith::CmpFOp>(l, arith::CmpFPredicate::OEQ, a[1],
                                                                f32Const(nb, l, ninfF));
                     return nb
                         .create<arith::SelectOp>(l, allMasked, f32Const(nb, l, 0.0),
                                                  nb.create<arith::MulFOp>(l, e, scale))
                         .getResult();
                   });
  }

  FailureOr<Value> lower(attnedit::CausalMaskOp op) {
    Value x = op.getInput();
    RankedTensorType type = tensorType(x);
    int64_t rank = type.getRank(), window = op.getWindow();
    Value tq = dimOf(b, loc, x, rank - 2), tk = dimOf(b, loc, x, rank - 1);
    Value offset = b.create<arith::SubIOp>(loc, tk, tq);
    float fillValue = op.getZeroFill() ? 0.0f : -std::numeric_limits<float>::infinity();
    return elementwise(b, loc, type, x, [&](OpBuilder &nb, Location l, ValueRange a) {
      Value i = nb.create<linalg::IndexOp>(l, rank - 2), j = nb.create<linalg::IndexOp>(l, rank - 1);
      Value pos = nb.create<arith::AddIOp>(l, offset, i);
      Value masked = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::sgt, j, pos);
      if (window > 0) {
        Value dist = nb.create<arith::SubIOp>(l, pos, j);
        Value far = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::sge, dist,
                                             indexConst(nb, l, window));
        masked = nb.create<arith::OrIOp>(l, masked, far);
      }
      return nb.create<arith::SelectOp>(l, masked, f32Const(nb, l, fillValue), a[0]).getResult();
    });
  }

  FailureOr<Value> lower(attnedit::RepeatKvOp op) {
    // [H, T, D] -> broadcast [H, r, T, D] -> collapse [H·r, T, D].
    Value x = op.getInput();
    RankedTensorType in = tensorType(x), type = tensorType(op.getResult());
    int64_t r = op.getRepeats();
    auto wide = RankedTensorType::get({in.getDimSize(0), r, in.getDimSize(1), in.getDimSize(2)},
                                      b.getF32Type());
    SmallVector<Value> sizes;
    for (int64_t i = 0; i < 3; ++i)
      if (in.isDynamicDim(i))
        sizes.push_back(dimOf(b, loc, x, i));
    MLIRContext *ctx = b.getContext();
    AffineMap map = AffineMap::get(
        4, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(2, ctx), getAffineDimExpr(3, ctx)}, ctx);
    Value w = generic(b, loc, empty(b, loc, wide, sizes), x, {map},
                      [](OpBuilder &, Location, ValueRange a) { return a[0]; });
    return b.create<tensor::CollapseShapeOp>(loc, type, w,
                                             ArrayRef<ReassociationIndices>{{0, 1}, {2}, {3}})
        .getResult();
  }

  FailureOr<Value> lower(attnedit::SiluOp op) {
    return elementwise(b, loc, tensorType(op.getResult()), op.getInput(),
                       [](OpBuilder &nb, Location l, ValueRange a) {
                         Value v = toF64(nb, l, a[0]);
                         Value e = exp64(nb, l, nb.create<arith::NegFOp>(l, v));
                         Value den = nb.create<arith::AddFOp>(l, f64Const(nb, l, 1.0), e);
                         return toF32(nb, l, nb.create<arith::DivFOp>(l, v, den));
                       });
  }

  FailureOr<Value> lower(attnedit::SigmoidOp op) {
    return elementwise(b, loc, tensorType(op.getResult()), op.getInput(),
                       [](OpBuilder &nb, Location l, ValueRange a) {
                         Value v = toF64(nb, l, a[0]);
                         Value e = exp64(nb, l, nb.create<arith::NegFOp>(l, v));
                         Value den = nb.create<arith::AddFOp>(l, f64Const(nb, l, 1.0), e);
                         return toF32(nb, l, nb.create<arith::DivFOp>(l, f64Const(nb, l, 1.0), den));
                       });
  }

  FailureOr<Value> lower(attnedit::AddOp op) {
    return elementwise(b, loc, tensorType(op.getResult()), ValueRange{op.getLhs(), op.getRhs()},
                       [](OpBuilder &nb, Location l, ValueRange a) {
                         return nb.create<arith::AddFOp>(l, a[0], a[1]).getResult();
                       });
  }

  FailureOr<Value> lower(attnedit::MulOp op) {
    return elementwise(b, loc, tensorType(op.getResult()), ValueRange{op.getLhs(), op.getRhs()},
                       [](OpBuilder &nb, Location l, ValueRange a) {
                         return nb.create<arith::MulFOp>(l, a[0], a[1]).getResult();
                       });
  }

  FailureOr<Value> lower(attnedit::ScaleOp op) {
    double factor = op.getFactor().convertToDouble();
    return elementwise(b, loc, tensorType(op.getResult()), op.getInput(),
                       [factor](OpBuilder &nb, Location l, ValueRange a) {
                         Value v = nb.create<arith::MulFOp>(l, toF64(nb, l, a[0]),
                                                            f64Const(nb, l, factor));
                         return toF32(nb, l, v);
                       });
  }

  FailureOr<Value> lower(attnedit::ReshapeOp op) {
    Value x = op.getInput();
    RankedTensorType in = tensorType(x), type = tensorType(op.getResult());
    // The one dynamic result dim is the element count over the static ones.
    Value total = indexConst(b, loc, 1);
    for (int64_t i = 0; i < in.getRank(); ++i)
      total = b.create<arith::MulIOp>(loc, total, dimOf(b, loc, x, i));
    int64_t known = 1;
    for (int64_t s : type.getShape())
      if (!ShapedType::isDynamic(s))
        known *= s;
    SmallVector<Value> dims;
    for (int64_t s : type.getShape())
      dims.push_back(ShapedType::isDynamic(s)
                         ? b.create<arith::DivUIOp>(loc, total, indexConst(b, loc, known)).getResult()
                         : indexConst(b, loc, s));
    Value shape = b.create<tensor::FromElementsOp>(loc, dims);
    return b.create<tensor::ReshapeOp>(loc, type, x, shape).getResult();
  }

  FailureOr<Value> lower(attnedit::BroadcastOp op) {
    Value x = op.getInput();
    RankedTensorType in = tensorType(x), type = tensorType(op.getResult());
    int64_t rank = type.getRank();
    SmallVector<AffineExpr> exprs;
    SmallVector<Value> sizes;
    for (int64_t i = 0; i < rank; ++i) {
      bool stretched = in.getDimSize(i) == 1 && type.getDimSize(i) != 1;
      exprs.push_back(stretched ? b.getAffineConstantExpr(0) : b.getAffineDimExpr(i));
      if (type.isDynamicDim(i))
        sizes.push_back(dimOf(b, loc, x, i));
    }
    if (llvm::any_of(llvm::seq<int64_t>(0, rank), [&](int64_t i) {
          return type.isDynamicDim(i) && in.getDimSize(i) == 1;
        }))
      return failure();
    return generic(b, loc, empty(b, loc, type, sizes), x,
                   {AffineMap::get(rank, 0, exprs, b.getContext())},
                   [](OpBuilder &, Location, ValueRange a) { return a[0]; });
  }

  FailureOr<Value> lower(attnedit::TransposeOp op) {
    Value x = op.getInput();
    RankedTensorType type = tensorType(op.getResult());
    ArrayRef<int64_t> perm = op.getPermutation();
    SmallVector<Value> sizes;
    for (int64_t i = 0; i < type.getRank(); ++i)
      if (type.isDynamicDim(i))
        sizes.push_back(dimOf(b, loc, x, perm[i]));
    return b.create<linalg::TransposeOp>(loc, x, empty(b, loc, type, sizes), perm)
        .getResult()
        .front();
  }

  FailureOr<Value> lower(attnedit::SliceOp op) {
    Value x = op.getInput();
    RankedTensorType in = tensorType(x), type = tensorType(op.getResult());
    int64_t rank = in.getRank(), axis = op.getAxis();
    SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0)), sizes, strides(rank, b.getIndexAttr(1));
    for (int64_t i = 0; i < rank; ++i)
      sizes.push_back(i == axis ? OpFoldResult(b.getIndexAttr(op.getSize()))
                      : in.isDynamicDim(i) ? OpFoldResult(dimOf(b, loc, x, i))
                                           : OpFoldResult(b.getIndexAttr(in.getDimSize(i))));
    offsets[axis] = b.getIndexAttr(op.getOffset());
    return b.create<tensor::ExtractSliceOp>(loc, type, x, offsets, sizes, strides).getResult();
  }

  /// Inserts `parts` one after another along `axis` into `dest`, from `start`.
  Value insertAlong(Value dest, ValueRange parts, int64_t axis, Value start) {
    Value at = start;
    for (Value part : parts) {
      RankedTensorType t = tensorType(part);
      int64_t rank = t.getRank();
      SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0)), sizes,
          strides(rank, b.getIndexAttr(1));
      for (int64_t i = 0; i < rank; ++i)
        sizes.push_back(t.isDynamicDim(i) ? OpFoldResult(dimOf(b, loc, part, i))
                                          : OpFoldResult(b.getIndexAttr(t.getDimSize(i))));
      offsets[axis] = at;
      dest = b.create<tensor::InsertSliceOp>(loc, part, dest, offsets, sizes, strides);
      at = b.create<arith::AddIOp>(loc, at, dimOf(b, loc, part, axis));
    }
    return dest;
  }

  FailureOr<Value> lower(attnedit::ConcatOp op) {
    RankedTensorType type = tensorType(op.getResult());
    int64_t axis = op.getAxis();
    SmallVector<Value> sizes;
    for (int64_t i = 0; i < type.getRank(); ++i) {
      if (!type.isDynamicDim(i))
        continue;
      if (i != axis) {
        sizes.push_back(dimOf(b, loc, op.getInputs().front(), i));
        continue;
      }
      Value total = indexConst(b, loc, 0);
      for (Value in : op.getInputs())
        total = b.create<arith::AddIOp>(loc, total, dimOf(b, loc, in, axis));
      sizes.push_back(total);
    }
    return insertAlong(empty(b, loc, type, sizes), op.getInputs(), axis, indexConst(b, loc, 0));
  }

  FailureOr<Value> lower(attnedit::PadOp op) {
    Value x = op.getInput();
    RankedTensorType type = tensorType(op.getResult());
    int64_t axis = op.getAxis();
    SmallVector<Value> sizes;
    for (int64_t i = 0; i < type.getRank(); ++i)
      if (type.isDynamicDim(i)) {
        Value s = dimOf(b, loc, x, i);
        if (i == axis)
          s = b.create<arith::AddIOp>(loc, s, indexConst(b, loc, op.getBefore() + op.getAfter()));
        sizes.push_back(s);
      }
    Value zeros = fill(b, loc, empty(b, loc, type, sizes), f32Const(b, loc, 0.0));
    return insertAlong(zeros, x, axis, indexConst(b, loc, op.getBefore()));
  }

  FailureOr<Value> lower(attnedit::ReduceSumOp op) {
    Value x = op.getInput();
    int64_t axis = op.getAxis();
    RankedTensorType type = tensorType(op.getResult());
    Value sum = reduceAxis(b, loc, x, axis, f64Const(b, loc, 0.0),
                           [](OpBuilder &nb, Location l, ValueRange a) {
                             return nb.create<arith::AddFOp>(l, a[1], toF64(nb, l, a[0])).getResult();
                           });
    RankedTensorType s = tensorType(sum);
    auto f32Type = RankedTensorType::get(s.getShape(), b.getF32Type());
    Value narrow = elementwise(b, loc, f32Type, sum, [](OpBuilder &nb, Location l, ValueRange a) {
      return toF32(nb, l, a[0]);
    });
    if (!op.getKeepDims())
      return narrow;
    SmallVector<ReassociationIndices> groups;
    int64_t rank = type.getRank();
    for (int64_t i = 0, j = 0; i < rank; ++i) {
      if (i == axis)
        continue;
      groups.push_back({i});
      (void)j;
    }
    // The kept unit axis joins its neighbour's group.
    if (groups.empty())
      return failure();
    if (axis == 0)
      groups.front().insert(groups.front().begin(), 0);
    else
      for (auto &g : groups)
        if (g.back() == axis - 1)
          g.push_back(axis);
    SmallVector<OpFoldResult> shape;
    for (int64_t i = 0; i < rank; ++i)
      shape.push_back(type.isDynamicDim(i) ? OpFoldResult(dimOf(b, loc, x, i))
                                           : OpFoldResult(b.getIndexAttr(type.getDimSize(i))));
    return b.create<tensor::ExpandShapeOp>(loc, type, narrow, groups, shape).getResult();
  }

  //===--------------------------------------------------------------------===//
  // Training: losses, their gradients, and the backward ops of autodiff
  // (reference: runtime/lib/execution/LossKernels.cpp and Kernels.cpp).
  //===--------------------------------------------------------------------===//

  /// `v` as [rows, width]: leading dims collapsed, a vector made one row.
  Value asRows(Value v) {
    RankedTensorType t = tensorType(v);
    if (t.getRank() == 1) {
      auto type = RankedTensorType::get({1, t.getDimSize(0)}, t.getElementType());
      SmallVector<OpFoldResult> shape{b.getIndexAttr(1),
                                      t.isDynamicDim(0) ? OpFoldResult(dimOf(b, loc, v, 0))
                                                        : OpFoldResult(b.getIndexAttr(t.getDimSize(0)))};
      return b.create<tensor::ExpandShapeOp>(loc, type, v, ArrayRef<ReassociationIndices>{{0, 1}},
                                             shape);
    }
    return collapseLeading(b, loc, v, 1);
  }

  /// Sums `body(args...)` (f64) over every element of same-shaped inputs
  /// into a rank-0 f64 tensor.
  Value sumAll(ValueRange inputs, ArrayRef<AffineMap> inputMaps, BodyFn body) {
    int64_t rank = tensorType(inputs.front()).getRank();
    auto outType = RankedTensorType::get({}, b.getF64Type());
    Value acc = fill(b, loc, empty(b, loc, outType, {}), f64Const(b, loc, 0.0));
    SmallVector<AffineMap> maps(inputMaps);
    while (maps.size() < inputs.size())
      maps.push_back(b.getMultiDimIdentityMap(rank));
    maps.push_back(AffineMap::get(rank, 0, {}, b.getContext()));
    SmallVector<IteratorType> it(rank, IteratorType::reduction);
    return b
        .create<linalg::GenericOp>(loc, outType, inputs, acc, maps, it,
                                   [&](OpBuilder &nb, Location l, ValueRange a) {
                                     Value term = body(nb, l, a.drop_back());
                                     nb.create<linalg::YieldOp>(
                                         l, ValueRange{nb.create<arith::AddFOp>(l, a.back(), term)});
                                   })
        .getResult(0);
  }

  /// Row maps for a [rows, width] iteration space.
  AffineMap rowOf2() { return AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, b.getContext()); }

  /// Per-row log-sum-exp of x/τ in f64, [rows].
  Value logSumExp(Value x, double temperature) {
    Value tau = f64Const(b, loc, temperature);
    Value maxv = reduceAxis(b, loc, x, 1, f64Const(b, loc, -INFINITY),
                            [&](OpBuilder &nb, Location l, ValueRange a) {
                              Value v = nb.create<arith::DivFOp>(l, toF64(nb, l, a[0]), tau);
                              return nb.create<arith::MaximumFOp>(l, a[1], v).getResult();
                            });
    RankedTensorType mt = tensorType(maxv);
    SmallVector<Value> sizes;
    if (mt.isDynamicDim(0))
      sizes.push_back(dimOf(b, loc, maxv, 0));
    Value sumInit = fill(b, loc, empty(b, loc, mt, sizes), f64Const(b, loc, 0.0));
    SmallVector<IteratorType> it{IteratorType::parallel, IteratorType::reduction};
    Value sum = b.create<linalg::GenericOp>(
                     loc, mt, ValueRange{x, maxv}, sumInit,
                     ArrayRef<AffineMap>{b.getMultiDimIdentityMap(2), rowOf2(), rowOf2()}, it,
                     [&](OpBuilder &nb, Location l, ValueRange a) {
                       Value v = nb.create<arith::DivFOp>(l, toF64(nb, l, a[0]), tau);
                       Value e = exp64(nb, l, nb.create<arith::SubFOp>(l, v, a[1]));
                       nb.create<linalg::YieldOp>(l, ValueRange{nb.create<arith::AddFOp>(l, a[2], e)});
                     })
                    .getResult(0);
    return elementwise(b, loc, mt, ValueRange{maxv, sum}, [](OpBuilder &nb, Location l, ValueRange a) {
      return nb.create<arith::AddFOp>(l, a[0], nb.create<math::LogOp>(l, a[1])).getResult();
    });
  }

  /// The count of rows with a target (cross entropy), else the row count, f64 scalar.
  Value countedRows(Value rows2, Value targets) {
    if (!targets)
      return b.create<arith::UIToFPOp>(
          loc, b.getF64Type(),
          b.create<arith::IndexCastOp>(loc, b.getI64Type(), dimOf(b, loc, rows2, 0)));
    Value n = sumAll(targets, {}, [](OpBuilder &nb, Location l, ValueRange a) {
      Value ignored = nb.create<arith::CmpIOp>(
          l, arith::CmpIPredicate::eq, a[0],
          nb.create<arith::ConstantOp>(l, nb.getI32IntegerAttr(-1)));
      return nb.create<arith::SelectOp>(l, ignored, f64Const(nb, l, 0.0), f64Const(nb, l, 1.0))
          .getResult();
    });
    return b.create<tensor::ExtractOp>(loc, n, ValueRange{});
  }

  /// total / counted (0 when nothing counts) as tensor<f32>.
  Value meanScalar(Value total, Value counted) {
    Value t = b.create<tensor::ExtractOp>(loc, total, ValueRange{});
    Value zero = f64Const(b, loc, 0.0);
    Value none = b.create<arith::CmpFOp>(loc, arith::CmpFPredicate::OEQ, counted, zero);
    Value safe = b.create<arith::SelectOp>(loc, none, f64Const(b, loc, 1.0), counted);
    Value mean = b.create<arith::SelectOp>(loc, none, zero, b.create<arith::DivFOp>(loc, t, safe));
    return b.create<tensor::FromElementsOp>(loc, RankedTensorType::get({}, b.getF32Type()),
                                            ValueRange{toF32(b, loc, mean)});
  }

  enum class LossKind { Mse, Kl, CrossEntropy, Cosine };

  /// Per-row cosine parts of x and y: (dot, |x|², |y|²), each [rows] f64.
  std::array<Value, 3> cosineParts(Value x, Value y) {
    auto reduce = [&](auto f) {
      return reduceAxis(b, loc, ValueRange{x, y}, 1, f64Const(b, loc, 0.0),
                        [&](OpBuilder &nb, Location l, ValueRange a) {
                          Value p = f(nb, l, toF64(nb, l, a[0]), toF64(nb, l, a[1]));
                          return nb.create<arith::AddFOp>(l, a[2], p).getResult();
                        });
    };
    auto mul = [](OpBuilder &nb, Location l, Value u, Value v) {
      return nb.create<arith::MulFOp>(l, u, v).getResult();
    };
    return {reduce([&](OpBuilder &nb, Location l, Value u, Value v) { return mul(nb, l, u, v); }),
            reduce([&](OpBuilder &nb, Location l, Value u, Value) { return mul(nb, l, u, u); }),
            reduce([&](OpBuilder &nb, Location l, Value, Value v) { return mul(nb, l, v, v); })};
  }

  FailureOr<Value> lossValue(LossKind kind, Value lhs, Value rhs, double temperature) {
    Value a = asRows(lhs);
    Value r = kind == LossKind::CrossEntropy ? rhs : asRows(rhs);
    RankedTensorType at = tensorType(a);
    if (at.isDynamicDim(1))
      return failure();
    double width = (double)at.getDimSize(1);
    Value total;
    switch (kind) {
    case LossKind::Mse:
      total = sumAll(ValueRange{a, r}, {}, [&](OpBuilder &nb, Location l, ValueRange v) {
        Value d = nb.create<arith::SubFOp>(l, toF64(nb, l, v[0]), toF64(nb, l, v[1]));
        return nb.create<arith::DivFOp>(l, nb.create<arith::MulFOp>(l, d, d), f64Const(nb, l, width))
            .getResult();
      });
      break;
    case LossKind::Kl: {
      Value lp = logSumExp(a, temperature), lq = logSumExp(r, temperature);
      Value tau = f64Const(b, loc, temperature);
      total = sumAll(ValueRange{a, r, lp, lq},
                     {b.getMultiDimIdentityMap(2), b.getMultiDimIdentityMap(2), rowOf2(), rowOf2()},
                     [&](OpBuilder &nb, Location l, ValueRange v) {
                       Value p = nb.create<arith::SubFOp>(
                           l, nb.create<arith::DivFOp>(l, toF64(nb, l, v[0]), tau), v[2]);
                       Value q = nb.create<arith::SubFOp>(
                           l, nb.create<arith::DivFOp>(l, toF64(nb, l, v[1]), tau), v[3]);
                       return nb.create<arith::MulFOp>(l, exp64(nb, l, p),
                                                       nb.create<arith::SubFOp>(l, p, q))
                           .getResult();
                     });
      break;
    }
    case LossKind::CrossEntropy: {
      Value lse = logSumExp(a, 1.0);
      // −(x[t] − lse) per counted row, summed.
      total = sumAll(ValueRange{r, lse}, {}, [&](OpBuilder &nb, Location l, ValueRange v) {
        Value ignored = nb.create<arith::CmpIOp>(
            l, arith::CmpIPredicate::eq, v[0], nb.create<arith::ConstantOp>(l, nb.getI32IntegerAttr(-1)));
        Value row = nb.create<linalg::IndexOp>(l, 0);
        Value t = nb.create<arith::IndexCastOp>(l, nb.getIndexType(), v[0]);
        Value last = indexConst(nb, l, (int64_t)width - 1);
        t = nb.create<arith::MinSIOp>(l, nb.create<arith::MaxSIOp>(l, t, indexConst(nb, l, 0)), last);
        Value x = nb.create<tensor::ExtractOp>(l, a, ValueRange{row, t});
        Value term = nb.create<arith::SubFOp>(l, v[1], toF64(nb, l, x));
        return nb.create<arith::SelectOp>(l, ignored, f64Const(nb, l, 0.0), term).getResult();
      });
      break;
    }
    case LossKind::Cosine: {
      auto [dot, na, nb2] = cosineParts(a, r);
      total = sumAll(ValueRange{dot, na, nb2}, {}, [](OpBuilder &nb, Location l, ValueRange v) {
        Value norms = nb.create<math::SqrtOp>(l, nb.create<arith::MulFOp>(l, v[1], v[2]));
        norms = nb.create<arith::MaximumFOp>(l, norms, f64Const(nb, l, 1e-12));
        return nb.create<arith::SubFOp>(l, f64Const(nb, l, 1.0),
                                        nb.create<arith::DivFOp>(l, v[0], norms))
            .getResult();
      });
      break;
    }
    }
    return meanScalar(total, countedRows(a, kind == LossKind::CrossEntropy ? r : Value()));
  }

  FailureOr<Value> lower(attnedit::MseLossOp op) {
    return lossValue(LossKind::Mse, op.getInput(), op.getTarget(), 1.0);
  }
  FailureOr<Value> lower(attnedit::KlLossOp op) {
    return lossValue(LossKind::Kl, op.getTeacher(), op.getStudent(),
                     op.getTemperature().convertToDouble());
  }
  FailureOr<Value> lower(attnedit::CrossEntropyLossOp op) {
    return lossValue(LossKind::CrossEntropy, op.getLogits(), op.getTargets(), 1.0);
  }
  FailureOr<Value> lower(attnedit::CosineLossOp op) {
    return lossValue(LossKind::Cosine, op.getLhs(), op.getRhs(), 1.0);
  }

  FailureOr<Value> lower(attnedit::LossGradOp op) {
    std::optional<LossKind> kind = llvm::StringSwitch<std::optional<LossKind>>(op.getKind())
                                       .Case("mse", LossKind::Mse)
                                       .Case("kl", LossKind::Kl)
                                       .Case("cross_entropy", LossKind::CrossEntropy)
                                       .Case("cosine", LossKind::Cosine)
                                       .Default(std::nullopt);
    if (!kind)
      return failure();
    double temperature = op.getTemperature().convertToDouble();
    int64_t index = op.getOperand();
    RankedTensorType type = tensorType(op.getResult());
    Value a = asRows(op.getLhs());
    Value r = *kind == LossKind::CrossEntropy ? op.getRhs() : asRows(op.getRhs());
    RankedTensorType at = tensorType(a);
    if (at.isDynamicDim(1))
      return failure();
    double width = (double)at.getDimSize(1);
    // g = grad / counted rows.
    Value counted = countedRows(a, *kind == LossKind::CrossEntropy ? r : Value());
    Value gradScalar = toF64(b, loc, b.create<tensor::ExtractOp>(loc, op.getGrad(), ValueRange{}));
    Value g = b.create<arith::DivFOp>(loc, gradScalar,
                                      b.create<arith::MaximumFOp>(loc, counted, f64Const(b, loc, 1.0)));
    Value out2;
    Value shapeSource = index == 0 || *kind == LossKind::CrossEntropy ? a : r;
    auto outType2 = RankedTensorType::get(tensorType(shapeSource).getShape(), b.getF32Type());
    Value init = emptyLike(b, loc, outType2, shapeSource);
    AffineMap id2 = b.getMultiDimIdentityMap(2);
    switch (*kind) {
    case LossKind::Mse: {
      double sign = index == 0 ? 1 : -1;
      out2 = generic(b, loc, init, ValueRange{a, r}, {}, [&](OpBuilder &nb, Location l, ValueRange v) {
        Value d = nb.create<arith::SubFOp>(l, toF64(nb, l, v[0]), toF64(nb, l, v[1]));
        Value k = nb.create<arith::MulFOp>(l, g, f64Const(nb, l, sign * 2));
        return toF32(nb, l, nb.create<arith::DivFOp>(l, nb.create<arith::MulFOp>(l, k, d),
                                                     f64Const(nb, l, width)));
      });
      break;
    }
    case LossKind::Kl: {
      Value lp = logSumExp(a, temperature), lq = logSumExp(r, temperature);
      Value tau = f64Const(b, loc, temperature);
      out2 = generic(b, loc, init, ValueRange{a, r, lp, lq}, {id2, id2, rowOf2(), rowOf2()},
                     [&](OpBuilder &nb, Location l, ValueRange v) {
                       Value p = nb.create<arith::SubFOp>(
                           l, nb.create<arith::DivFOp>(l, toF64(nb, l, v[0]), tau), v[2]);
                       Value q = nb.create<arith::SubFOp>(
                           l, nb.create<arith::DivFOp>(l, toF64(nb, l, v[1]), tau), v[3]);
                       Value d = nb.create<arith::SubFOp>(l, exp64(nb, l, q), exp64(nb, l, p));
                       return toF32(nb, l, nb.create<arith::DivFOp>(
                                               l, nb.create<arith::MulFOp>(l, g, d), tau));
                     });
      break;
    }
    case LossKind::CrossEntropy: {
      Value lse = logSumExp(a, 1.0);
      out2 = generic(b, loc, init, ValueRange{a, r, lse}, {id2, rowOf2(), rowOf2()},
                     [&](OpBuilder &nb, Location l, ValueRange v) {
                       Value ignored = nb.create<arith::CmpIOp>(
                           l, arith::CmpIPredicate::eq, v[1],
                           nb.create<arith::ConstantOp>(l, nb.getI32IntegerAttr(-1)));
                       Value col = nb.create<arith::IndexCastOp>(l, nb.getI32Type(),
                                                                 nb.create<linalg::IndexOp>(l, 1));
                       Value hit = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::eq, col, v[1]);
                       Value p = exp64(nb, l, nb.create<arith::SubFOp>(l, toF64(nb, l, v[0]), v[2]));
                       Value d = nb.create<arith::SubFOp>(
                           l, p, nb.create<arith::SelectOp>(l, hit, f64Const(nb, l, 1.0), f64Const(nb, l, 0.0)));
                       Value o = toF32(nb, l, nb.create<arith::MulFOp>(l, g, d));
                       return nb.create<arith::SelectOp>(l, ignored, f32Const(nb, l, 0.0), o).getResult();
                     });
      break;
    }
    case LossKind::Cosine: {
      Value x = index == 0 ? a : r, y = index == 0 ? r : a;
      auto [dot, nx, ny] = cosineParts(x, y);
      out2 = generic(b, loc, init, ValueRange{x, y, dot, nx, ny},
                     {id2, id2, rowOf2(), rowOf2(), rowOf2()},
                     [&](OpBuilder &nb, Location l, ValueRange v) {
                       Value norms = nb.create<math::SqrtOp>(l, nb.create<arith::MulFOp>(l, v[3], v[4]));
                       norms = nb.create<arith::MaximumFOp>(l, norms, f64Const(nb, l, 1e-12));
                       Value cos = nb.create<arith::DivFOp>(l, v[2], norms);
                       Value t1 = nb.create<arith::DivFOp>(l, toF64(nb, l, v[1]), norms);
                       Value t2 = nb.create<arith::DivFOp>(
                           l, nb.create<arith::MulFOp>(l, cos, toF64(nb, l, v[0])),
                           nb.create<arith::MaximumFOp>(l, v[3], f64Const(nb, l, 1e-24)));
                       Value d = nb.create<arith::SubFOp>(l, t1, t2);
                       return toF32(nb, l, nb.create<arith::NegFOp>(l, nb.create<arith::MulFOp>(l, g, d)));
                     });
      break;
    }
    }
    if (tensorType(out2) == type)
      return out2;
    if (type.getRank() == 1)
      return b.create<tensor::CollapseShapeOp>(loc, type, out2, ArrayRef<ReassociationIndices>{{0, 1}})
          .getResult();
    Value like = index == 0 || *kind == LossKind::CrossEntropy ? op.getLhs() : op.getRhs();
    return expandLeading(b, loc, out2, type, like);
  }

  FailureOr<Value> lower(attnedit::EmbeddingGradOp op) {
    // out[v, d] = Σ_t (ids[t] == v) · grad[t, d]: the generic states the
    // semantics; its library call scatters in O(T·D).
    RankedTensorType type = tensorType(op.getResult());
    if (type.isDynamicDim(0) || type.isDynamicDim(1))
      return failure();
    MLIRContext *ctx = b.getContext();
    Value init = fill(b, loc, empty(b, loc, type, {}), f32Const(b, loc, 0.0));
    AffineMap ids = AffineMap::get(3, 0, {getAffineDimExpr(1, ctx)}, ctx);
    AffineMap grad = AffineMap::get(3, 0, {getAffineDimExpr(1, ctx), getAffineDimExpr(2, ctx)}, ctx);
    AffineMap out = AffineMap::get(3, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(2, ctx)}, ctx);
    SmallVector<IteratorType> it{IteratorType::parallel, IteratorType::reduction, IteratorType::parallel};
    auto generic = b.create<linalg::GenericOp>(
        loc, type, ValueRange{op.getIds(), op.getGrad()}, init, ArrayRef<AffineMap>{ids, grad, out}, it,
        [&](OpBuilder &nb, Location l, ValueRange a) {
          Value v = nb.create<arith::IndexCastOp>(l, nb.getI32Type(), nb.create<linalg::IndexOp>(l, 0));
          Value hit = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::eq, a[0], v);
          Value add = nb.create<arith::AddFOp>(l, a[2], a[1]);
          nb.create<linalg::YieldOp>(l, ValueRange{nb.create<arith::SelectOp>(l, hit, add, a[2])});
        });
    generic.setLibraryCallAttr(b.getStringAttr("attnedit_cpu_embedding_grad"));
    return generic.getResult(0);
  }

  /// 1 / sqrt(Σx²/d + eps) per row of `x` (rank ≥ 1, last axis), f64.
  Value inverseRms(Value x, double eps) {
    int64_t rank = tensorType(x).getRank();
    double d = (double)tensorType(x).getDimSize(rank - 1);
    Value sum = reduceAxis(b, loc, x, rank - 1, f64Const(b, loc, 0.0),
                           [](OpBuilder &nb, Location l, ValueRange a) {
                             Value v = toF64(nb, l, a[0]);
                             return nb.create<arith::AddFOp>(l, a[1], nb.create<arith::MulFOp>(l, v, v))
                                 .getResult();
                           });
    return elementwise(b, loc, tensorType(sum), sum, [&](OpBuilder &nb, Location l, ValueRange a) {
      Value mean = nb.create<arith::DivFOp>(l, a[0], f64Const(nb, l, d));
      Value root = nb.create<math::SqrtOp>(l, nb.create<arith::AddFOp>(l, mean, f64Const(nb, l, eps)));
      return nb.create<arith::DivFOp>(l, f64Const(nb, l, 1.0), root).getResult();
    });
  }

  FailureOr<Value> lower(attnedit::RmsNormGradOp op) {
    Value x = op.getInput(), w = op.getWeight(), g = op.getGrad();
    RankedTensorType type = tensorType(x);
    int64_t rank = type.getRank(), axis = rank - 1;
    if (type.isDynamicDim(axis))
      return failure();
    double d = (double)type.getDimSize(axis);
    Value inv = inverseRms(x, op.getEps().convertToDouble());
    AffineMap id = b.getMultiDimIdentityMap(rank), rowMap = dropAxisMap(b, rank, axis);
    AffineMap wMap = AffineMap::get(rank, 0, {b.getAffineDimExpr(axis)}, b.getContext());
    Value dot = b.create<linalg::GenericOp>(
                     loc, inv.getType(), ValueRange{g, w, x},
                     fill(b, loc, emptyLike(b, loc, tensorType(inv), inv), f64Const(b, loc, 0.0)),
                     ArrayRef<AffineMap>{id, wMap, id, rowMap},
                     [&] {
                       SmallVector<IteratorType> it(rank, IteratorType::parallel);
                       it[axis] = IteratorType::reduction;
                       return it;
                     }(),
                     [&](OpBuilder &nb, Location l, ValueRange a) {
                       Value p = nb.create<arith::MulFOp>(
                           l, nb.create<arith::MulFOp>(l, toF64(nb, l, a[0]), toF64(nb, l, a[1])),
                           toF64(nb, l, a[2]));
                       nb.create<linalg::YieldOp>(l, ValueRange{nb.create<arith::AddFOp>(l, a[3], p)});
                     })
                    .getResult(0);
    return generic(b, loc, emptyLike(b, loc, type, x), ValueRange{x, w, g, inv, dot},
                   {id, wMap, id, rowMap, rowMap}, [&](OpBuilder &nb, Location l, ValueRange a) {
                     // r·w·g − x·r³·dot/d
                     Value r = a[3];
                     Value k = nb.create<arith::DivFOp>(
                         l, nb.create<arith::MulFOp>(
                                l, nb.create<arith::MulFOp>(l, nb.create<arith::MulFOp>(l, r, r), r), a[4]),
                         f64Const(nb, l, d));
                     Value first = nb.create<arith::MulFOp>(
                         l, nb.create<arith::MulFOp>(l, r, toF64(nb, l, a[1])), toF64(nb, l, a[2]));
                     Value second = nb.create<arith::MulFOp>(l, toF64(nb, l, a[0]), k);
                     return toF32(nb, l, nb.create<arith::SubFOp>(l, first, second));
                   });
  }

  FailureOr<Value> lower(attnedit::RmsNormWeightGradOp op) {
    Value x = asRows(op.getInput()), g = asRows(op.getGrad());
    Value inv = inverseRms(x, op.getEps().convertToDouble());
    RankedTensorType type = tensorType(op.getResult());
    // Σ_rows g·x·inv: a reduction over rows with the row's inverse rms.
    auto f64Type = RankedTensorType::get(type.getShape(), b.getF64Type());
    Value acc = fill(b, loc, empty(b, loc, f64Type, {}), f64Const(b, loc, 0.0));
    MLIRContext *ctx = b.getContext();
    AffineMap id = b.getMultiDimIdentityMap(2);
    AffineMap row = AffineMap::get(2, 0, {getAffineDimExpr(0, ctx)}, ctx);
    AffineMap col = AffineMap::get(2, 0, {getAffineDimExpr(1, ctx)}, ctx);
    SmallVector<IteratorType> it{IteratorType::reduction, IteratorType::parallel};
    Value total = b.create<linalg::GenericOp>(
                       loc, f64Type, ValueRange{g, x, inv}, acc, ArrayRef<AffineMap>{id, id, row, col}, it,
                       [&](OpBuilder &nb, Location l, ValueRange a) {
                         Value p = nb.create<arith::MulFOp>(
                             l, nb.create<arith::MulFOp>(l, toF64(nb, l, a[0]), toF64(nb, l, a[1])), a[2]);
                         nb.create<linalg::YieldOp>(l, ValueRange{nb.create<arith::AddFOp>(l, a[3], p)});
                       })
                      .getResult(0);
    return elementwise(b, loc, type, total, [](OpBuilder &nb, Location l, ValueRange a) {
      return toF32(nb, l, a[0]);
    });
  }

  FailureOr<Value> lower(attnedit::SoftmaxGradOp op) {
    Value y = op.getOutput(), g = op.getGrad();
    RankedTensorType type = tensorType(y);
    int64_t rank = type.getRank(), axis = op.getAxis();
    Value dot = reduceAxis(b, loc, ValueRange{g, y}, axis, f64Const(b, loc, 0.0),
                           [](OpBuilder &nb, Location l, ValueRange a) {
                             Value p = nb.create<arith::MulFOp>(l, toF64(nb, l, a[0]), toF64(nb, l, a[1]));
                             return nb.create<arith::AddFOp>(l, a[2], p).getResult();
                           });
    AffineMap id = b.getMultiDimIdentityMap(rank);
    return generic(b, loc, emptyLike(b, loc, type, y), ValueRange{y, g, dot},
                   {id, id, dropAxisMap(b, rank, axis)}, [](OpBuilder &nb, Location l, ValueRange a) {
                     Value d = nb.create<arith::SubFOp>(l, toF64(nb, l, a[1]), a[2]);
                     return toF32(nb, l, nb.create<arith::MulFOp>(l, toF64(nb, l, a[0]), d));
                   });
  }

  FailureOr<Value> lower(attnedit::SinkGradOp op) {
    Value y = op.getOutput(), g = op.getGrad();
    RankedTensorType type = tensorType(op.getResult());
    auto sum2 = [&](auto f) {
      return reduceAxis(b, loc, ValueRange{y, g}, 2, f64Const(b, loc, 0.0),
                        [&](OpBuilder &nb, Location l, ValueRange a) {
                          return nb.create<arith::AddFOp>(l, a[2], f(nb, l, toF64(nb, l, a[0]), toF64(nb, l, a[1])))
                              .getResult();
                        });
    };
    Value mass = sum2([](OpBuilder &, Location, Value p, Value) { return p; });
    Value dot = sum2([](OpBuilder &nb, Location l, Value p, Value gg) {
      return nb.create<arith::MulFOp>(l, gg, p).getResult();
    });
    // −Σ_rows (1 − mass)·dot per head.
    Value total = reduceAxis(b, loc, ValueRange{mass, dot}, 1, f64Const(b, loc, 0.0),
                             [](OpBuilder &nb, Location l, ValueRange a) {
                               Value s = nb.create<arith::SubFOp>(l, f64Const(nb, l, 1.0), a[0]);
                               return nb.create<arith::SubFOp>(l, a[2], nb.create<arith::MulFOp>(l, s, a[1]))
                                   .getResult();
                             });
    return elementwise(b, loc, type, total, [](OpBuilder &nb, Location l, ValueRange a) {
      return toF32(nb, l, a[0]);
    });
  }

  FailureOr<Value> lower(attnedit::SiluGradOp op) {
    return elementwise(b, loc, tensorType(op.getResult()), ValueRange{op.getInput(), op.getGrad()},
                       [](OpBuilder &nb, Location l, ValueRange a) {
                         Value v = toF64(nb, l, a[0]);
                         Value e = exp64(nb, l, nb.create<arith::NegFOp>(l, v));
                         Value s = nb.create<arith::DivFOp>(
                             l, f64Const(nb, l, 1.0), nb.create<arith::AddFOp>(l, f64Const(nb, l, 1.0), e));
                         Value oneMinus = nb.create<arith::SubFOp>(l, f64Const(nb, l, 1.0), s);
                         Value inner = nb.create<arith::AddFOp>(
                             l, s, nb.create<arith::MulFOp>(l, nb.create<arith::MulFOp>(l, v, s), oneMinus));
                         return toF32(nb, l, nb.create<arith::MulFOp>(l, toF64(nb, l, a[1]), inner));
                       });
  }

  FailureOr<Value> lower(attnedit::SigmoidGradOp op) {
    return elementwise(b, loc, tensorType(op.getResult()), ValueRange{op.getOutput(), op.getGrad()},
                       [](OpBuilder &nb, Location l, ValueRange a) {
                         Value y = toF64(nb, l, a[0]);
                         Value oneMinus = nb.create<arith::SubFOp>(l, f64Const(nb, l, 1.0), y);
                         Value p = nb.create<arith::MulFOp>(l, nb.create<arith::MulFOp>(l, toF64(nb, l, a[1]), y),
                                                            oneMinus);
                         return toF32(nb, l, p);
                       });
  }
};

/// Rewrites one attnedit op with Lowering::lower.
template <typename OpT>
struct LowerOp : OpRewritePattern<OpT> {
  LowerOp(MLIRContext *ctx, bool blas) : OpRewritePattern<OpT>(ctx), blas(blas) {}
  LogicalResult matchAndRewrite(OpT op, PatternRewriter &rewriter) const override {
    Lowering lowering{rewriter, op.getLoc(), blas};
    FailureOr<Value> result = lowering.lower(op);
    if (failed(result))
      return rewriter.notifyMatchFailure(op, "no lowering for this form");
    rewriter.replaceOp(op, *result);
    return success();
  }
  bool blas;
};

/// Turns each attnedit.param of `func` into a trailing read-only argument.
void parametersToArguments(func::FuncOp func) {
  llvm::MapVector<std::pair<StringRef, StringRef>, BlockArgument> bound;
  Block &entry = func.getBody().front();
  SmallVector<attnedit::ParamOp> params;
  func.walk([&](attnedit::ParamOp p) { params.push_back(p); });
  MLIRContext *ctx = func.getContext();
  for (attnedit::ParamOp p : params) {
    StringRef scope = p.getScope() ? *p.getScope() : StringRef();
    auto key = std::make_pair(p.getName(), scope);
    auto it = bound.find(key);
    if (it == bound.end()) {
      auto type = RankedTensorType::get(tensorType(p.getResult()).getShape(), Float32Type::get(ctx));
      unsigned index = func.getNumArguments();
      func.insertArgument(index, type, {}, p.getLoc());
      func.setArgAttr(index, "attnedit.param", StringAttr::get(ctx, p.getName()));
      if (!scope.empty())
        func.setArgAttr(index, "attnedit.scope", StringAttr::get(ctx, scope));
      it = bound.insert({key, entry.getArgument(index)}).first;
    }
    p.getResult().replaceAllUsesWith(it->second);
    p.erase();
  }
  // Inputs and parameters alike are the caller's memory: never written.
  for (unsigned i = 0; i < func.getNumArguments(); ++i)
    func.setArgAttr(i, bufferization::BufferizationDialect::kWritableAttrName,
                    BoolAttr::get(ctx, false));
}

struct ConvertToLinalgPass
    : cpu::impl::ConvertToLinalgPassBase<ConvertToLinalgPass> {
  using ConvertToLinalgPassBase::ConvertToLinalgPassBase;

  void runOnOperation() override {
    if (gemm != "blas" && gemm != "loops") {
      getOperation().emitError() << "attnedit-cpu-convert-to-linalg: gemm must be blas or loops, not '"
                                 << gemm << "'";
      return signalPassFailure();
    }
    for (auto func : getOperation().getOps<func::FuncOp>())
      if (!func.isExternal())
        parametersToArguments(func);

    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    bool blas = gemm == "blas";
    patterns.add<LowerOp<attnedit::ConvertOp>, LowerOp<attnedit::EmbeddingOp>,
                 LowerOp<attnedit::LinearOp>, LowerOp<attnedit::MatmulOp>,
                 LowerOp<attnedit::RmsNormOp>, LowerOp<attnedit::RopeOp>,
                 LowerOp<attnedit::SoftmaxOp>, LowerOp<attnedit::CausalMaskOp>,
                 LowerOp<attnedit::RepeatKvOp>, LowerOp<attnedit::SiluOp>,
                 LowerOp<attnedit::SigmoidOp>, LowerOp<attnedit::AddOp>,
                 LowerOp<attnedit::MulOp>, LowerOp<attnedit::ScaleOp>,
                 LowerOp<attnedit::ReshapeOp>, LowerOp<attnedit::BroadcastOp>,
                 LowerOp<attnedit::SliceOp>, LowerOp<attnedit::ConcatOp>,
                 LowerOp<attnedit::PadOp>, LowerOp<attnedit::ReduceSumOp>,
                 // training
                 LowerOp<attnedit::MseLossOp>, LowerOp<attnedit::KlLossOp>,
                 LowerOp<attnedit::CrossEntropyLossOp>, LowerOp<attnedit::CosineLossOp>,
                 LowerOp<attnedit::LossGradOp>, LowerOp<attnedit::EmbeddingGradOp>,
                 LowerOp<attnedit::RmsNormGradOp>, LowerOp<attnedit::RmsNormWeightGradOp>,
                 LowerOp<attnedit::SoftmaxGradOp>, LowerOp<attnedit::SinkGradOp>,
                 LowerOp<attnedit::SiluGradOp>, LowerOp<attnedit::SigmoidGradOp>>(ctx, blas);
    // Transposes last: a matmul reads a last-two-axes transpose in place.
    RewritePatternSet late(ctx);
    late.add<LowerOp<attnedit::TransposeOp>>(ctx, blas);
    GreedyRewriteConfig config;
    config.useTopDownTraversal = true;
    if (failed(applyPatternsAndFoldGreedily(getOperation(), std::move(patterns), config)) ||
        failed(applyPatternsAndFoldGreedily(getOperation(), std::move(late), config)))
      return signalPassFailure();

    WalkResult left = getOperation().walk([](Operation *op) {
      if (isa<attnedit::AttnEditDialect>(op->getDialect())) {
        op->emitError() << "attnedit-cpu: no CPU lowering for '" << op->getName()
                        << "' (composites need --attnedit-decompose first)";
        return WalkResult::interrupt();
      }
      return WalkResult::advance();
    });
    if (left.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
