//===- Decompositions.cpp - composite ops as primitive subgraphs -----------===//
//
// The expansion of each composite op is its definition. The importer emits
// attention through this same expansion, so what --attnedit-raise-attention
// must recognise is exactly what this file builds.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditOps.h"

using namespace mlir;
using namespace mlir::attnedit;

namespace {

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

  Value linear(Value x, Value w, Value bias) {
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

  OpBuilder &b;
  Location loc;
};

} // namespace

FailureOr<SmallVector<Value>> AttentionOp::decompose(OpBuilder &builder) {
  PrimitiveBuilder pb(builder, getLoc());
  OpBuilder &b = builder;
  int64_t hq = getNumHeads(), hkv = getNumKvHeads(), d = getHeadDim();
  int64_t t = cast<RankedTensorType>(getInput().getType()).getDimSize(0);
  auto bias = getQkvBias();
  auto biasAt = [&](unsigned i) { return bias.empty() ? Value() : bias[i]; };

  Value q = pb.reshape(pb.linear(getInput(), getQWeight(), biasAt(0)), {t, hq, d});
  Value k = pb.reshape(pb.linear(getInput(), getKWeight(), biasAt(1)), {t, hkv, d});
  Value v = pb.reshape(pb.linear(getInput(), getVWeight(), biasAt(2)), {t, hkv, d});
  if (!getQkNorm().empty()) {
    q = b.create<RmsNormOp>(getLoc(), q.getType(), q, getQkNorm()[0], getNormEpsAttr());
    k = b.create<RmsNormOp>(getLoc(), k.getType(), k, getQkNorm()[1], getNormEpsAttr());
  }
  auto rope = [&](Value x) -> Value {
    return b.create<RopeOp>(getLoc(), x.getType(), x, getPositions(),
                            getRopeThetaAttr(), getRotaryDimAttr(),
                            getRopeStyleAttr(), getLlama3ScalingAttr());
  };
  q = pb.transpose(rope(q), {1, 0, 2});
  k = pb.transpose(rope(k), {1, 0, 2});
  v = pb.transpose(v, {1, 0, 2});
  if (hkv != hq) {
    auto repeated = pb.f32({hq, t, d});
    k = b.create<RepeatKvOp>(getLoc(), repeated, k, hq / hkv);
    v = b.create<RepeatKvOp>(getLoc(), repeated, v, hq / hkv);
  }
  Value scores = pb.matmul(q, pb.transpose(k, {0, 2, 1}));
  scores = b.create<ScaleOp>(getLoc(), scores, getScaleAttr());
  scores = b.create<CausalMaskOp>(getLoc(), scores, getWindowAttr());
  Value probs = b.create<SoftmaxOp>(getLoc(), scores, b.getI64IntegerAttr(2));
  Value heads = pb.transpose(pb.matmul(probs, v), {1, 0, 2});
  Value out = pb.linear(pb.reshape(heads, {t, hq * d}), getOWeight(), Value());
  return SmallVector<Value>{out};
}
