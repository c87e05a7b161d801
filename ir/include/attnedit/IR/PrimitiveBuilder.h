//===- PrimitiveBuilder.h - building attnedit primitives ------*- C++ -*-===//
//
// Shape-inferring helpers shared by the decompositions, the VJP rules and
// the passes that expand composites themselves (--attnedit-build-decode).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_IR_PRIMITIVEBUILDER_H
#define ATTNEDIT_IR_PRIMITIVEBUILDER_H

#include "attnedit/IR/AttnEditOps.h"

namespace mlir::attnedit {

/// Builds primitives with f32 ranked-tensor results of the given shapes.
class PrimitiveBuilder {
public:
  PrimitiveBuilder(OpBuilder &b, Location loc) : b(b), loc(loc) {}

  RankedTensorType f32(ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, b.getF32Type());
  }
  static ArrayRef<int64_t> shape(Value v) {
    return cast<RankedTensorType>(v.getType()).getShape();
  }

  Value linear(Value x, Value w, Value bias = {}) {
    SmallVector<int64_t> s(shape(x));
    s.back() = shape(w)[0];
    return b.create<LinearOp>(loc, f32(s), x, w, bias);
  }
  Value reshape(Value x, ArrayRef<int64_t> s) {
    return b.create<ReshapeOp>(loc, f32(s), x);
  }
  Value transpose(Value x, ArrayRef<int64_t> perm) {
    SmallVector<int64_t> s;
    for (int64_t p : perm)
      s.push_back(shape(x)[p]);
    return b.create<TransposeOp>(loc, f32(s), x, perm);
  }
  Value matmul(Value x, Value y) {
    SmallVector<int64_t> s(shape(x));
    s.back() = shape(y).back();
    return b.create<MatmulOp>(loc, f32(s), x, y);
  }

  Value slice(Value x, int64_t axis, int64_t offset, int64_t size) {
    SmallVector<int64_t> s(shape(x));
    s[axis] = size;
    return b.create<SliceOp>(loc, f32(s), x, axis, offset, size);
  }
  Value concat(ValueRange xs, int64_t axis) {
    SmallVector<int64_t> s(shape(xs.front()));
    s[axis] = 0;
    for (Value x : xs)
      s[axis] += shape(x)[axis];
    return b.create<ConcatOp>(loc, f32(s), xs, axis);
  }
  Value broadcast(Value x, ArrayRef<int64_t> s) {
    return b.create<BroadcastOp>(loc, f32(s), x);
  }
  Value rmsNorm(Value x, Value w, FloatAttr eps) {
    return b.create<RmsNormOp>(loc, x.getType(), x, w, eps);
  }

  /// softmax(scale·q·kᵀ + mask [+ sinks])·v for q [H, T, Dqk], k [H, T, Dqk],
  /// v [H, T, Dv]; returns [T, H, Dv].
  Value attend(Value q, Value k, Value v, FloatAttr scale, IntegerAttr window,
               Value sinks) {
    Value scores = matmul(q, transpose(k, {0, 2, 1}));
    scores = b.create<ScaleOp>(loc, scores, scale);
    scores = b.create<CausalMaskOp>(loc, scores, window, /*zero_fill=*/nullptr,
                                    /*segments=*/nullptr);
    Value probs = b.create<SoftmaxOp>(loc, scores.getType(), scores, sinks,
                                      b.getI64IntegerAttr(2));
    return transpose(matmul(probs, v), {1, 0, 2});
  }

  OpBuilder &b;
  Location loc;
};


} // namespace mlir::attnedit

#endif // ATTNEDIT_IR_PRIMITIVEBUILDER_H
