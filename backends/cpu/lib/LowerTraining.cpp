//===- LowerTraining.cpp - losses and backward ops to linalg on tensors ---===//
//
// Mirrors runtime/lib/execution/LossKernels.cpp and the backward kernels of
// Kernels.cpp: every loss is a mean over rows accumulated in double.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::cpu::detail;

/// `v` as [rows, width]: leading dims collapsed, a vector made one row.
Value Lowering::asRows(Value v) {
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
Value Lowering::sumAll(ValueRange inputs, ArrayRef<AffineMap> inputMaps, BodyFn body) {
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

/// Per-row log-sum-exp of x/τ in f64, [rows].
Value Lowering::logSumExp(Value x, double temperature) {
  Value tau = f64Const(b, loc, temperature);
  // x/τ, without the division (a long-latency op on every logit) at τ = 1.
  auto scaled = [&](OpBuilder &nb, Location l, Value v) -> Value {
    v = toF64(nb, l, v);
    return temperature == 1.0 ? v : nb.create<arith::DivFOp>(l, v, tau).getResult();
  };
  Value maxv = reduceAxis(b, loc, x, 1, f64Const(b, loc, -INFINITY),
                          [&](OpBuilder &nb, Location l, ValueRange a) {
                            return nb.create<arith::MaximumFOp>(l, a[1], scaled(nb, l, a[0]))
                                .getResult();
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
                     Value x = nb.create<arith::SubFOp>(l, scaled(nb, l, a[0]), a[1]);
                     Value e = expInF32(nb, l, x);
                     nb.create<linalg::YieldOp>(l, ValueRange{nb.create<arith::AddFOp>(l, a[2], e)});
                   })
                  .getResult(0);
  return elementwise(b, loc, mt, ValueRange{maxv, sum}, [](OpBuilder &nb, Location l, ValueRange a) {
    return nb.create<arith::AddFOp>(l, a[0], nb.create<math::LogOp>(l, a[1])).getResult();
  });
}

/// The count of rows with a target (cross entropy), else the row count, f64 scalar.
Value Lowering::countedRows(Value rows2, Value targets) {
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
Value Lowering::meanScalar(Value total, Value counted) {
  Value t = b.create<tensor::ExtractOp>(loc, total, ValueRange{});
  Value zero = f64Const(b, loc, 0.0);
  Value none = b.create<arith::CmpFOp>(loc, arith::CmpFPredicate::OEQ, counted, zero);
  Value safe = b.create<arith::SelectOp>(loc, none, f64Const(b, loc, 1.0), counted);
  Value mean = b.create<arith::SelectOp>(loc, none, zero, b.create<arith::DivFOp>(loc, t, safe));
  return b.create<tensor::FromElementsOp>(loc, RankedTensorType::get({}, b.getF32Type()),
                                          ValueRange{toF32(b, loc, mean)});
}

/// Per-row cosine parts of x and y: (dot, |x|², |y|²), each [rows] f64.
std::array<Value, 3> Lowering::cosineParts(Value x, Value y) {
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

FailureOr<Value> Lowering::lossValue(LossKind kind, Value lhs, Value rhs, double temperature) {
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
                     return nb.create<arith::MulFOp>(l, expInF32(nb, l, p),
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

FailureOr<Value> Lowering::lower(attnedit::MseLossOp op) {
  return lossValue(LossKind::Mse, op.getInput(), op.getTarget(), 1.0);
}

FailureOr<Value> Lowering::lower(attnedit::KlLossOp op) {
  return lossValue(LossKind::Kl, op.getTeacher(), op.getStudent(),
                   op.getTemperature().convertToDouble());
}

FailureOr<Value> Lowering::lower(attnedit::CrossEntropyLossOp op) {
  return lossValue(LossKind::CrossEntropy, op.getLogits(), op.getTargets(), 1.0);
}

FailureOr<Value> Lowering::lower(attnedit::CosineLossOp op) {
  return lossValue(LossKind::Cosine, op.getLhs(), op.getRhs(), 1.0);
}

FailureOr<Value> Lowering::lower(attnedit::LossGradOp op) {
  LossKind kind = op.getKind();
  double temperature = op.getTemperature().convertToDouble();
  int64_t index = op.getOperand();
  RankedTensorType type = tensorType(op.getResult());
  Value a = asRows(op.getLhs());
  Value r = kind == LossKind::CrossEntropy ? op.getRhs() : asRows(op.getRhs());
  RankedTensorType at = tensorType(a);
  if (at.isDynamicDim(1))
    return failure();
  double width = (double)at.getDimSize(1);
  // g = grad / counted rows.
  Value counted = countedRows(a, kind == LossKind::CrossEntropy ? r : Value());
  Value gradScalar = toF64(b, loc, b.create<tensor::ExtractOp>(loc, op.getGrad(), ValueRange{}));
  Value g = b.create<arith::DivFOp>(loc, gradScalar,
                                    b.create<arith::MaximumFOp>(loc, counted, f64Const(b, loc, 1.0)));
  Value out2;
  Value shapeSource = index == 0 || kind == LossKind::CrossEntropy ? a : r;
  auto outType2 = RankedTensorType::get(tensorType(shapeSource).getShape(), b.getF32Type());
  Value init = emptyLike(b, loc, outType2, shapeSource);
  AffineMap id2 = b.getMultiDimIdentityMap(2);
  switch (kind) {
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
                     Value d = nb.create<arith::SubFOp>(l, expInF32(nb, l, q), expInF32(nb, l, p));
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
                     Value lp = nb.create<arith::SubFOp>(l, toF64(nb, l, v[0]), v[2]);
                     Value p = expInF32(nb, l, lp);
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
  Value like = index == 0 || kind == LossKind::CrossEntropy ? op.getLhs() : op.getRhs();
  return expandLeading(b, loc, out2, type, like);
}

FailureOr<Value> Lowering::lower(attnedit::EmbeddingGradOp op) {
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
Value Lowering::inverseRms(Value x, double eps) {
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

FailureOr<Value> Lowering::lower(attnedit::RmsNormGradOp op) {
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

FailureOr<Value> Lowering::lower(attnedit::RmsNormWeightGradOp op) {
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

FailureOr<Value> Lowering::lower(attnedit::SoftmaxGradOp op) {
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

FailureOr<Value> Lowering::lower(attnedit::SinkGradOp op) {
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

FailureOr<Value> Lowering::lower(attnedit::SiluGradOp op) {
  return elementwise(b, loc, tensorType(op.getResult()), ValueRange{op.getInput(), op.getGrad()},
                     [](OpBuilder &nb, Location l, ValueRange a) -> Value {
                       Value v = a[0];
                       Value s = nb.create<arith::DivFOp>(l, f32Const(nb, l, 1.0),
                                                          onePlusExpNeg(nb, l, v));
                       Value oneMinus = nb.create<arith::SubFOp>(l, f32Const(nb, l, 1.0), s);
                       Value inner = nb.create<arith::AddFOp>(
                           l, s, nb.create<arith::MulFOp>(l, nb.create<arith::MulFOp>(l, v, s), oneMinus));
                       return nb.create<arith::MulFOp>(l, a[1], inner);
                     });
}

FailureOr<Value> Lowering::lower(attnedit::SigmoidGradOp op) {
  return elementwise(b, loc, tensorType(op.getResult()), ValueRange{op.getOutput(), op.getGrad()},
                     [](OpBuilder &nb, Location l, ValueRange a) {
                       Value y = toF64(nb, l, a[0]);
                       Value oneMinus = nb.create<arith::SubFOp>(l, f64Const(nb, l, 1.0), y);
                       Value p = nb.create<arith::MulFOp>(l, nb.create<arith::MulFOp>(l, toF64(nb, l, a[1]), y),
                                                          oneMinus);
                       return toF32(nb, l, p);
                     });
}
