//===- LowerPrimitives.cpp - forward attnedit ops to linalg on tensors ----===//
//
// The arithmetic mirrors the reference kernels (runtime/lib/execution/
// Kernels.cpp) operation for operation, down to which sums run in double,
// because compiled code is checked against them at 1e-5. Sigmoid and SiLU
// are the exception: computed in f32 (onePlusExpNeg says why).
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"
#include "attnedit/IR/RopeFrequencies.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Utils/ReshapeOpsUtils.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::cpu::detail;

FailureOr<Value> Lowering::lower(attnedit::ConvertOp op) {
  // Parameters arrive as f32 (the store widens f16/bf16 once), so the
  // conversion has nothing left to do on the CPU.
  if (!tensorType(op.getInput()).getElementType().isF32())
    return failure();
  return op.getInput();
}

FailureOr<Value> Lowering::lower(attnedit::EmbeddingOp op) {
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

FailureOr<Value> Lowering::lower(attnedit::LinearOp op) {
  RankedTensorType type = tensorType(op.getResult());
  Value x = collapseLeading(b, loc, op.getInput(), 1);
  // The VJP's `linear(dy, transpose(W))`: the GEMM reads W as stored.
  auto [w, weightTransposed] = looksThroughTranspose(op.getWeight());
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
  Value y = gemm(b, loc, x, w, init, /*transA=*/false, /*transB=*/!weightTransposed, blas);
  return expandLeading(b, loc, y, type, op.getInput());
}

FailureOr<Value> Lowering::lower(attnedit::MatmulOp op) {
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
  // The verifier compares only the sizes it knows: a GEMM over operands
  // that do not multiply would read past one's end.
  auto requireSame = [&](int64_t lhsDim, int64_t rhsDim, StringRef what) {
    if (l.isDynamicDim(lhsDim) || tensorType(rhs).isDynamicDim(rhsDim))
      requireEqual(op, dimOf(b, loc, rhs, rhsDim), dimOf(b, loc, lhs, lhsDim), what);
  };
  requireSame(transA ? r - 2 : r - 1, transB ? r - 1 : r - 2,
              "operands do not multiply: the right one has {0} rows, the left {1} columns");
  if (r == 3) {
    requireSame(0, 0, "operands differ in their batch: {0} against {1}");
    addDim(lhs, 0);
  }
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

FailureOr<Value> Lowering::lower(attnedit::RmsNormOp op) {
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

FailureOr<Value> Lowering::lower(attnedit::RopeOp op) {
  Value x = op.getInput(), positions = op.getPositions();
  RankedTensorType type = tensorType(x);
  int64_t rotary = op.getRotaryDim(), half = rotary / 2;
  bool interleaved = op.getStyle() == RopeStyle::Interleaved;
  std::optional<std::array<double, 4>> llama3;
  if (auto scaling = op.getLlama3Scaling()) {
    ArrayRef<double> s = *scaling;
    llama3 = std::array<double, 4>{s[0], s[1], s[2], s[3]};
  }
  std::vector<double> inv =
      ropeInverseFrequencies(op.getTheta().convertToDouble(), rotary, llama3);
  if (op.getInverse())
    for (double &f : inv)
      f = -f;
  auto invType = RankedTensorType::get({std::max<int64_t>(half, 1)}, b.getF64Type());
  if (inv.empty())
    inv.push_back(0.0);
  Value invTable = b.create<arith::ConstantOp>(
      loc, DenseElementsAttr::get(invType, ArrayRef<double>(inv)));
  // cos and sin of every (position, pair) once, [T, half] each: the same
  // generic for every rope of the function, so CSE leaves one table for
  // all layers, queries and keys alike (libm's sincos per element was a
  // tenth of a compiled prefill).
  int64_t pairs = invType.getDimSize(0);
  auto tableType = RankedTensorType::get({type.getDimSize(0), pairs}, b.getF32Type());
  SmallVector<Value> rows;
  if (tableType.isDynamicDim(0))
    rows.push_back(dimOf(b, loc, positions, 0));
  Value tableInit = empty(b, loc, tableType, rows);
  AffineMap byRow = AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, b.getContext());
  AffineMap byPair = AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, b.getContext());
  auto table = b.create<linalg::GenericOp>(
      loc, TypeRange{tableType, tableType}, ValueRange{positions, invTable},
      ValueRange{tableInit, tableInit},
      ArrayRef<AffineMap>{byRow, byPair, b.getMultiDimIdentityMap(2), b.getMultiDimIdentityMap(2)},
      ArrayRef<IteratorType>{IteratorType::parallel, IteratorType::parallel},
      [&](OpBuilder &nb, Location l, ValueRange a) {
        Value angle = nb.create<arith::MulFOp>(
            l, nb.create<arith::SIToFPOp>(l, nb.getF64Type(), a[0]), a[1]);
        nb.create<linalg::YieldOp>(
            l, ValueRange{toF32(nb, l, nb.create<math::CosOp>(l, angle)),
                          toF32(nb, l, nb.create<math::SinOp>(l, angle))});
      });
  Value cosTable = table.getResult(0), sinTable = table.getResult(1);
  return generic(
      b, loc, emptyLike(b, loc, type, x), ValueRange{x}, {b.getMultiDimIdentityMap(3)},
      [&](OpBuilder &nb, Location l, ValueRange a) {
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
        Value cosv = nb.create<tensor::ExtractOp>(l, cosTable, ValueRange{t, iSafe});
        Value sinv = nb.create<tensor::ExtractOp>(l, sinTable, ValueRange{t, iSafe});
        Value other = nb.create<tensor::ExtractOp>(l, x, ValueRange{t, h, pSafe});
        // first: x·cos − other·sin; second: x·cos + other·sin.
        Value xc = nb.create<arith::MulFOp>(l, a[0], cosv);
        Value os = nb.create<arith::MulFOp>(l, other, sinv);
        Value res = nb.create<arith::SelectOp>(l, first, nb.create<arith::SubFOp>(l, xc, os),
                                               nb.create<arith::AddFOp>(l, xc, os));
        return nb.create<arith::SelectOp>(l, rotated, res, a[0]).getResult();
      });
}

FailureOr<Value> Lowering::lower(attnedit::SoftmaxOp op) {
  Value x = op.getInput(), sinks = op.getSinks();
  RankedTensorType type = tensorType(x);
  int64_t rank = type.getRank(), axis = op.getAxis();
  float ninfF = -std::numeric_limits<float>::infinity();
  AffineMap rowMap = dropAxisMap(b, rank, axis);
  // Row maximum (f32, as the reference), starting from the sink logit.
  Value maxInit;
  if (sinks) {
    int64_t rowAxis = axis == 0 ? 1 : 0;
    if (tensorType(sinks).isDynamicDim(0) || type.isDynamicDim(rowAxis))
      requireEqual(op, dimOf(b, loc, sinks, 0), dimOf(b, loc, x, rowAxis),
                   "{0} sinks for {1} rows (the rows' first dimension)");
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

/// Calls host function `name` (bound by JitModule) with index `args`,
/// declaring it in `op`'s module the first time.
static void callHost(OpBuilder &b, Location loc, Operation *op, StringRef name,
                     ValueRange args) {
  auto module = op->getParentOfType<ModuleOp>();
  if (!module.lookupSymbol(name)) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(module.getBody());
    SmallVector<Type> types(args.size(), b.getIndexType());
    b.create<func::FuncOp>(loc, name, b.getFunctionType(types, {})).setPrivate();
  }
  b.create<func::CallOp>(loc, name, TypeRange{}, args);
}

/// Calls attnedit_cpu_refuse_call (cpu::JitModule's) when `holds` is
/// false, with `what` (a string constant of the module: the op's name and a
/// format of the two sizes) and the two sizes it compared.
static void refuseUnless(OpBuilder &b, Location loc, Operation *op, Value holds, Value got,
                         Value want, StringRef what) {
  auto module = op->getParentOfType<ModuleOp>();
  std::string text = (op->getName().getStringRef() + ": " + what).str();
  std::string global = llvm::formatv("attnedit_cpu_refusal_{0:x}", llvm::hash_value(text)).str();
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(module.getBody());
    if (!module.lookupSymbol(global)) {
      std::vector<int8_t> bytes(text.begin(), text.end());
      bytes.push_back(0);
      auto type = MemRefType::get({(int64_t)bytes.size()}, b.getI8Type());
      b.create<memref::GlobalOp>(
          loc, global, b.getStringAttr("private"), type,
          DenseElementsAttr::get(RankedTensorType::get(type.getShape(), b.getI8Type()),
                                 llvm::ArrayRef<int8_t>(bytes)),
          /*constant=*/true, /*alignment=*/nullptr);
    }
  }
  auto broken = b.create<arith::XOrIOp>(
      loc, holds, b.create<arith::ConstantIntOp>(loc, 1, b.getI1Type()));
  b.create<scf::IfOp>(loc, broken, [&](OpBuilder &nb, Location l) {
    auto type = cast<memref::GlobalOp>(module.lookupSymbol(global)).getType();
    Value text = nb.create<memref::GetGlobalOp>(l, type, global);
    Value address = nb.create<memref::ExtractAlignedPointerAsIndexOp>(l, text);
    callHost(nb, l, op, "attnedit_cpu_refuse_call", {address, got, want});
    nb.create<scf::YieldOp>(l);
  });
}

void Lowering::requireEqual(Operation *op, Value got, Value want, StringRef what) {
  Value holds = b.create<arith::CmpIOp>(loc, arith::CmpIPredicate::eq, got, want);
  refuseUnless(b, loc, op, holds, got, want, what);
}

void Lowering::requireAtMost(Operation *op, Value got, Value limit, StringRef what) {
  Value holds = b.create<arith::CmpIOp>(loc, arith::CmpIPredicate::sle, got, limit);
  refuseUnless(b, loc, op, holds, got, limit, what);
}

void Lowering::requireMultiple(Operation *op, Value got, int64_t divisor, StringRef what) {
  if (divisor > 1)
    requireEqual(op, b.create<arith::RemUIOp>(loc, got, indexConst(b, loc, divisor)),
                 indexConst(b, loc, 0), what);
}

void Lowering::requireSameShape(Operation *op, ValueRange operands) {
  int64_t rank = tensorType(operands.front()).getRank();
  for (int64_t i = 0; i < rank; ++i) {
    if (llvm::none_of(operands, [&](Value v) { return tensorType(v).isDynamicDim(i); }))
      continue;
    for (Value other : operands.drop_front())
      requireEqual(op, dimOf(b, loc, other, i), dimOf(b, loc, operands.front(), i),
                   llvm::formatv("operands differ in dimension {0}: {{0} against {{1}", i).str());
  }
}

/// Calls the host's check of a causal mask's packed segments
/// (cpu::checkSegments, bound by JitModule: the call fails once it
/// returns, as the attention kernels' calls do), which the verifier made
/// only where the sizes were static.
static void checkSegmentsAtRuntime(OpBuilder &b, Location loc, Operation *op, Value tq,
                                   Value tk, int64_t segments) {
  callHost(b, loc, op, "attnedit_cpu_check_segments",
           {tq, tk, indexConst(b, loc, segments)});
}

FailureOr<Value> Lowering::lower(attnedit::CausalMaskOp op) {
  Value x = op.getInput();
  RankedTensorType type = tensorType(x);
  int64_t rank = type.getRank(), window = op.getWindow(), segments = op.getSegments();
  Value tq = dimOf(b, loc, x, rank - 2), tk = dimOf(b, loc, x, rank - 1);
  if (type.isDynamicDim(rank - 2) || type.isDynamicDim(rank - 1))
    requireAtMost(op, tq, tk, "more queries than keys: {0} against {1}");
  Value offset = b.create<arith::SubIOp>(loc, tk, tq);
  Value length;
  if (segments > 1) {
    if (type.isDynamicDim(rank - 2) || type.isDynamicDim(rank - 1))
      checkSegmentsAtRuntime(b, loc, op, tq, tk, segments);
    // At least 1: a refused call still runs to its end, and must not divide by 0.
    length = b.create<arith::MaxSIOp>(
        loc, b.create<arith::DivSIOp>(loc, tk, indexConst(b, loc, segments)),
        indexConst(b, loc, 1));
  }
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
    if (length) {
      Value start = nb.create<arith::SubIOp>(l, pos, nb.create<arith::RemSIOp>(l, pos, length));
      Value before = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::slt, j, start);
      masked = nb.create<arith::OrIOp>(l, masked, before);
    }
    return nb.create<arith::SelectOp>(l, masked, f32Const(nb, l, fillValue), a[0]).getResult();
  });
}

FailureOr<Value> Lowering::lower(attnedit::RepeatKvOp op) {
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

FailureOr<Value> Lowering::lower(attnedit::SiluOp op) {
  return elementwise(b, loc, tensorType(op.getResult()), op.getInput(),
                     [](OpBuilder &nb, Location l, ValueRange a) -> Value {
                       return nb.create<arith::DivFOp>(l, a[0], onePlusExpNeg(nb, l, a[0]));
                     });
}

FailureOr<Value> Lowering::lower(attnedit::SigmoidOp op) {
  return elementwise(b, loc, tensorType(op.getResult()), op.getInput(),
                     [](OpBuilder &nb, Location l, ValueRange a) -> Value {
                       return nb.create<arith::DivFOp>(l, f32Const(nb, l, 1.0),
                                                       onePlusExpNeg(nb, l, a[0]));
                     });
}

FailureOr<Value> Lowering::lower(attnedit::AddOp op) {
  requireSameShape(op, {op.getLhs(), op.getRhs()});
  return elementwise(b, loc, tensorType(op.getResult()), ValueRange{op.getLhs(), op.getRhs()},
                     [](OpBuilder &nb, Location l, ValueRange a) {
                       return nb.create<arith::AddFOp>(l, a[0], a[1]).getResult();
                     });
}

FailureOr<Value> Lowering::lower(attnedit::MulOp op) {
  requireSameShape(op, {op.getLhs(), op.getRhs()});
  return elementwise(b, loc, tensorType(op.getResult()), ValueRange{op.getLhs(), op.getRhs()},
                     [](OpBuilder &nb, Location l, ValueRange a) {
                       return nb.create<arith::MulFOp>(l, a[0], a[1]).getResult();
                     });
}

FailureOr<Value> Lowering::lower(attnedit::ScaleOp op) {
  double factor = op.getFactor().convertToDouble();
  return elementwise(b, loc, tensorType(op.getResult()), op.getInput(),
                     [factor](OpBuilder &nb, Location l, ValueRange a) {
                       Value v = nb.create<arith::MulFOp>(l, toF64(nb, l, a[0]),
                                                          f64Const(nb, l, factor));
                       return toF32(nb, l, v);
                     });
}

FailureOr<Value> Lowering::lower(attnedit::ReshapeOp op) {
  Value x = op.getInput();
  RankedTensorType in = tensorType(x), type = tensorType(op.getResult());
  // The same shape with at most one unknown dim (the batch's rows) is the
  // input itself. As a tensor.reshape, whose shape operand is a constant
  // every such reshape shares, it put every buffer reshaped so in one
  // bufferization alias set, and buffers were copied to keep them apart.
  if (in.getShape() == type.getShape() && in.getNumDynamicDims() <= 1)
    return x;
  // Splitting or merging dims is a view of the same buffer. A general
  // tensor.reshape is not: bufferization copied the buffer it views into a
  // fresh one (every head split of a forward, after each projection).
  auto groups = type.getRank() != in.getRank() ? getReassociationIndicesForReshape(in, type)
                                                : std::nullopt;
  if (groups) {
    if (type.getRank() < in.getRank())
      return b.create<tensor::CollapseShapeOp>(loc, type, x, *groups).getResult();
    SmallVector<OpFoldResult> outShape;
    // A scalar's reassociation is empty, so the loop below gave no sizes and
    // an invalid expand_shape (reduce_sum's VJP reshapes tensor<f32> to
    // tensor<1xf32>): every result dim of one element is 1.
    if (in.getRank() == 0)
      for (int64_t d = 0; d < type.getRank(); ++d)
        outShape.push_back(type.isDynamicDim(d) ? OpFoldResult(indexConst(b, loc, 1))
                                                : OpFoldResult(b.getIndexAttr(1)));
    for (auto [inDim, group] : llvm::enumerate(*groups)) {
      int64_t product = 1;
      for (int64_t d : group)
        product *= type.isDynamicDim(d) ? 1 : type.getDimSize(d);
      if (in.isDynamicDim(inDim) && llvm::none_of(group, [&](int64_t d) {
            return type.isDynamicDim(d);
          }))
        requireEqual(op, dimOf(b, loc, x, inDim), indexConst(b, loc, product),
                     "a dimension of {0} split into {1} elements");
      for (int64_t d : group) {
        if (!type.isDynamicDim(d)) {
          outShape.push_back(b.getIndexAttr(type.getDimSize(d)));
          continue;
        }
        // The group's one dynamic dim: the input dim over the static ones.
        int64_t known = 1;
        for (int64_t e : group)
          if (e != d)
            known *= type.getDimSize(e);
        Value size = dimOf(b, loc, x, inDim);
        requireMultiple(
            op, size, known,
            llvm::formatv("{{0} elements left over splitting a dimension into rows of {0}", known)
                .str());
        outShape.push_back(known == 1 ? size
                                      : b.create<arith::DivUIOp>(loc, size, indexConst(b, loc, known))
                                            .getResult());
      }
    }
    return b.create<tensor::ExpandShapeOp>(loc, type, x, *groups, outShape).getResult();
  }
  // The one dynamic result dim is the element count over the static ones.
  Value total = indexConst(b, loc, 1);
  for (int64_t i = 0; i < in.getRank(); ++i)
    total = b.create<arith::MulIOp>(loc, total, dimOf(b, loc, x, i));
  int64_t known = 1;
  for (int64_t s : type.getShape())
    if (!ShapedType::isDynamic(s))
      known *= s;
  // The input's static dims may already make whole rows of the result's.
  int64_t staticIn = 1;
  for (int64_t s : in.getShape())
    staticIn *= ShapedType::isDynamic(s) ? 1 : s;
  if (type.hasStaticShape())
    requireEqual(op, total, indexConst(b, loc, known), "{0} elements into a result of {1}");
  else if (known > 0 && staticIn % known)
    requireMultiple(op, total, known,
                    llvm::formatv("{{0} elements left over in rows of {0} elements", known).str());
  SmallVector<Value> dims;
  for (int64_t s : type.getShape())
    dims.push_back(ShapedType::isDynamic(s)
                       ? b.create<arith::DivUIOp>(loc, total, indexConst(b, loc, known)).getResult()
                       : indexConst(b, loc, s));
  Value shape = b.create<tensor::FromElementsOp>(loc, dims);
  return b.create<tensor::ReshapeOp>(loc, type, x, shape).getResult();
}

FailureOr<Value> Lowering::lower(attnedit::BroadcastOp op) {
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

FailureOr<Value> Lowering::lower(attnedit::TransposeOp op) {
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

FailureOr<Value> Lowering::lower(attnedit::SliceOp op) {
  Value x = op.getInput();
  RankedTensorType in = tensorType(x), type = tensorType(op.getResult());
  int64_t rank = in.getRank(), axis = op.getAxis();
  SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0)), sizes, strides(rank, b.getIndexAttr(1));
  for (int64_t i = 0; i < rank; ++i)
    sizes.push_back(i == axis ? OpFoldResult(b.getIndexAttr(op.getSize()))
                    : in.isDynamicDim(i) ? OpFoldResult(dimOf(b, loc, x, i))
                                         : OpFoldResult(b.getIndexAttr(in.getDimSize(i))));
  offsets[axis] = b.getIndexAttr(op.getOffset());
  if (in.isDynamicDim(axis))
    requireAtMost(op, indexConst(b, loc, op.getOffset() + op.getSize()), dimOf(b, loc, x, axis),
                  "slice past the end of its input: it ends at {0}, the input has {1}");
  return b.create<tensor::ExtractSliceOp>(loc, type, x, offsets, sizes, strides).getResult();
}

/// Inserts `parts` one after another along `axis` into `dest`, from `start`.
Value Lowering::insertAlong(Value dest, ValueRange parts, int64_t axis, Value start) {
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

FailureOr<Value> Lowering::lower(attnedit::ConcatOp op) {
  RankedTensorType type = tensorType(op.getResult());
  int64_t axis = op.getAxis();
  for (int64_t i = 0; i < type.getRank(); ++i)
    for (Value in : op.getInputs().drop_front())
      if (i != axis && (tensorType(in).isDynamicDim(i) ||
                        tensorType(op.getInputs().front()).isDynamicDim(i)))
        requireEqual(op, dimOf(b, loc, in, i), dimOf(b, loc, op.getInputs().front(), i),
                     llvm::formatv("inputs differ in dimension {0}: {{0} against {{1}", i).str());
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

FailureOr<Value> Lowering::lower(attnedit::PadOp op) {
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

FailureOr<Value> Lowering::lower(attnedit::ReduceSumOp op) {
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
