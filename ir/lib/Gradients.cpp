//===- Gradients.cpp - reverse-mode rules of the primitives ----------------===//
//
// Each rule builds the operand cotangents from the result cotangent `g` as
// attnedit IR, so the gradient graph runs on every backend the forward does.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/PrimitiveBuilder.h"

using namespace mlir;
using namespace mlir::attnedit;

using Grads = FailureOr<SmallVector<Value>>;

static Grads grads(std::initializer_list<Value> values) {
  return SmallVector<Value>(values);
}

/// Swaps the last two axes.
static SmallVector<int64_t> swapLastTwo(int64_t rank) {
  SmallVector<int64_t> perm;
  for (int64_t i = 0; i < rank; ++i)
    perm.push_back(i);
  std::swap(perm[rank - 1], perm[rank - 2]);
  return perm;
}

Grads ConvertOp::buildVjp(OpBuilder &b, Value g) {
  // Only f32 values carry gradients: stored bf16/f16 parameters are frozen.
  if (!getInput().getType().getElementType().isF32())
    return grads({Value()});
  return grads({g});
}

Grads EmbeddingOp::buildVjp(OpBuilder &b, Value g) {
  auto tableType = getTable().getType();
  Value dTable = b.create<EmbeddingGradOp>(getLoc(), tableType, g, getIds());
  return grads({dTable, Value()});
}

Grads LinearOp::buildVjp(OpBuilder &b, Value g) {
  PrimitiveBuilder pb(b, getLoc());
  auto w = PrimitiveBuilder::shape(getWeight());
  int64_t n = w[0], k = w[1];
  Value dx = pb.linear(g, pb.transpose(getWeight(), {1, 0}), Value());
  Value rows = pb.reshape(g, {ShapedType::kDynamic, n});
  Value inputs = pb.reshape(getInput(), {ShapedType::kDynamic, k});
  Value dw = pb.matmul(pb.transpose(rows, {1, 0}), inputs);
  Value db;
  if (getBias())
    db = b.create<ReduceSumOp>(getLoc(), pb.f32({n}), rows, 0, false);
  return grads({dx, dw, db});
}

Grads RmsNormOp::buildVjp(OpBuilder &b, Value g) {
  Value dx = b.create<RmsNormGradOp>(getLoc(), getType(), getInput(), getWeight(), g,
                                     getEpsAttr());
  Value dw = b.create<RmsNormWeightGradOp>(getLoc(), getWeight().getType(), getInput(), g,
                                           getEpsAttr());
  return grads({dx, dw});
}

Grads RopeOp::buildVjp(OpBuilder &b, Value g) {
  Value dx = b.create<RopeOp>(getLoc(), getType(), g, getPositions(), getThetaAttr(),
                              getRotaryDimAttr(), getStyleAttr(), getLlama3ScalingAttr(),
                              getInverse() ? UnitAttr() : b.getUnitAttr());
  return grads({dx, Value()});
}

Grads MatmulOp::buildVjp(OpBuilder &b, Value g) {
  PrimitiveBuilder pb(b, getLoc());
  auto perm = swapLastTwo(getType().getRank());
  Value da = pb.matmul(g, pb.transpose(getRhs(), perm));
  Value db = pb.matmul(pb.transpose(getLhs(), perm), g);
  return grads({da, db});
}

Grads SoftmaxOp::buildVjp(OpBuilder &b, Value g) {
  Value dx = b.create<SoftmaxGradOp>(getLoc(), getResult(), g, getAxisAttr());
  Value dSinks;
  if (getSinks())
    dSinks = b.create<SinkGradOp>(getLoc(), getSinks().getType(), getResult(), g);
  return grads({dx, dSinks});
}

Grads CausalMaskOp::buildVjp(OpBuilder &b, Value g) {
  return grads({b.create<CausalMaskOp>(getLoc(), g, getWindowAttr(), b.getUnitAttr(),
                                       getSegmentsAttr())});
}

Grads RepeatKvOp::buildVjp(OpBuilder &b, Value g) {
  // [Hkv·r, T, D] -> [Hkv, r, T·D], summed over the r copies of each head.
  PrimitiveBuilder pb(b, getLoc());
  auto in = PrimitiveBuilder::shape(getInput());
  int64_t hkv = in[0], r = getRepeats();
  int64_t flat = ShapedType::isDynamic(in[1]) ? ShapedType::kDynamic : in[1] * in[2];
  Value grouped = pb.reshape(g, {hkv, r, flat});
  Value summed = b.create<ReduceSumOp>(getLoc(), pb.f32({hkv, flat}), grouped, 1, false);
  return grads({pb.reshape(summed, in)});
}

Grads SiluOp::buildVjp(OpBuilder &b, Value g) {
  return grads({b.create<SiluGradOp>(getLoc(), getInput(), g)});
}

Grads SigmoidOp::buildVjp(OpBuilder &b, Value g) {
  return grads({b.create<SigmoidGradOp>(getLoc(), getResult(), g)});
}

Grads AddOp::buildVjp(OpBuilder &b, Value g) { return grads({g, g}); }

Grads MulOp::buildVjp(OpBuilder &b, Value g) {
  return grads({b.create<MulOp>(getLoc(), g, getRhs()), b.create<MulOp>(getLoc(), g, getLhs())});
}

Grads ScaleOp::buildVjp(OpBuilder &b, Value g) {
  return grads({b.create<ScaleOp>(getLoc(), g, getFactorAttr())});
}

Grads ReshapeOp::buildVjp(OpBuilder &b, Value g) {
  return grads({b.create<ReshapeOp>(getLoc(), getInput().getType(), g)});
}

Grads TransposeOp::buildVjp(OpBuilder &b, Value g) {
  PrimitiveBuilder pb(b, getLoc());
  ArrayRef<int64_t> perm = getPermutation();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = i;
  return grads({pb.transpose(g, inverse)});
}

Grads SliceOp::buildVjp(OpBuilder &b, Value g) {
  int64_t axis = getAxis(), full = getInput().getType().getDimSize(axis);
  if (ShapedType::isDynamic(full))
    return emitOpError("has no VJP along a dynamic axis"), failure();
  int64_t after = full - (int64_t)getOffset() - (int64_t)getSize();
  return grads({b.create<PadOp>(getLoc(), getInput().getType(), g, getAxis(), getOffset(),
                                after)});
}

Grads ConcatOp::buildVjp(OpBuilder &b, Value g) {
  PrimitiveBuilder pb(b, getLoc());
  int64_t axis = getAxis(), offset = 0;
  SmallVector<Value> out;
  for (Value input : getInputs()) {
    int64_t size = PrimitiveBuilder::shape(input)[axis];
    if (ShapedType::isDynamic(size))
      return emitOpError("has no VJP along a dynamic axis"), failure();
    out.push_back(pb.slice(g, axis, offset, size));
    offset += size;
  }
  return out;
}

Grads BroadcastOp::buildVjp(OpBuilder &b, Value g) {
  PrimitiveBuilder pb(b, getLoc());
  auto in = PrimitiveBuilder::shape(getInput());
  auto out = getType().getShape();
  Value summed = g;
  SmallVector<int64_t> shape(out);
  for (int64_t axis = 0; axis < (int64_t)in.size(); ++axis) {
    if (in[axis] != 1 || out[axis] == 1)
      continue;
    shape[axis] = 1;
    summed = b.create<ReduceSumOp>(getLoc(), pb.f32(shape), summed, axis, true);
  }
  return grads({summed});
}

Grads ReduceSumOp::buildVjp(OpBuilder &b, Value g) {
  PrimitiveBuilder pb(b, getLoc());
  auto in = PrimitiveBuilder::shape(getInput());
  // The gradient repeats g along the axis, which broadcast can do only to a
  // size the IR states.
  if (ShapedType::isDynamic(in[getAxis()]))
    return emitOpError() << "has no gradient over its dynamic axis " << getAxis()
                         << " (the token count): sum a static axis, or use a loss op, "
                            "which averages over tokens itself";
  SmallVector<int64_t> kept(in);
  kept[getAxis()] = 1;
  Value shaped = getKeepDims() ? g : pb.reshape(g, kept);
  return grads({pb.broadcast(shaped, in)});
}

/// The gradient of a loss op's operand `index`, computed by loss_grad.
static Value lossGrad(OpBuilder &b, Operation *loss, LossKind kind, int64_t index, Value g,
                      double temperature = 1.0) {
  Value input = loss->getOperand(index);
  return b.create<LossGradOp>(loss->getLoc(), input.getType(), loss->getOperand(0),
                              loss->getOperand(1), g, LossKindAttr::get(b.getContext(), kind),
                              b.getI64IntegerAttr(index), b.getF64FloatAttr(temperature));
}

Grads MseLossOp::buildVjp(OpBuilder &b, Value g) {
  return grads(
      {lossGrad(b, *this, LossKind::Mse, 0, g), lossGrad(b, *this, LossKind::Mse, 1, g)});
}

Grads KlLossOp::buildVjp(OpBuilder &b, Value g) {
  double t = getTemperature().convertToDouble();
  return grads({Value(), lossGrad(b, *this, LossKind::Kl, 1, g, t)});
}

Grads CrossEntropyLossOp::buildVjp(OpBuilder &b, Value g) {
  return grads({lossGrad(b, *this, LossKind::CrossEntropy, 0, g), Value()});
}

Grads CosineLossOp::buildVjp(OpBuilder &b, Value g) {
  return grads(
      {lossGrad(b, *this, LossKind::Cosine, 0, g), lossGrad(b, *this, LossKind::Cosine, 1, g)});
}
