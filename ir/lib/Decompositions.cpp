//===- Decompositions.cpp - composite ops as primitive subgraphs -----------===//
//
// The expansion of each composite op is its definition. The importer emits
// attention through this same expansion, so what --attnedit-raise-attention
// must recognise is exactly what this file builds.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/PrimitiveBuilder.h"

using namespace mlir;
using namespace mlir::attnedit;

/// The attention core shared by attention and gate_swa, up to the per-head
/// output [T, H, D] before o_proj.
template <typename AttentionLike>
static Value buildHeads(AttentionLike op, PrimitiveBuilder &pb, Value sinks) {
  OpBuilder &b = pb.b;
  int64_t hq = op.getNumHeads(), hkv = op.getNumKvHeads(), d = op.getHeadDim();
  int64_t t = PrimitiveBuilder::shape(op.getInput())[0];
  auto bias = op.getQkvBias();
  auto biasAt = [&](unsigned i) { return bias.empty() ? Value() : bias[i]; };

  Value x = op.getInput();
  Value q = pb.reshape(pb.linear(x, op.getQWeight(), biasAt(0)), {t, hq, d});
  Value k = pb.reshape(pb.linear(x, op.getKWeight(), biasAt(1)), {t, hkv, d});
  Value v = pb.reshape(pb.linear(x, op.getVWeight(), biasAt(2)), {t, hkv, d});
  if (!op.getQkNorm().empty()) {
    q = pb.rmsNorm(q, op.getQkNorm()[0], op.getNormEpsAttr());
    k = pb.rmsNorm(k, op.getQkNorm()[1], op.getNormEpsAttr());
  }
  auto rope = [&](Value y) -> Value {
    return b.create<RopeOp>(pb.loc, y.getType(), y, op.getPositions(), op.getRopeThetaAttr(),
                            op.getRotaryDimAttr(), op.getRopeStyleAttr(),
                            op.getLlama3ScalingAttr(), /*inverse=*/nullptr);
  };
  q = pb.transpose(rope(q), {1, 0, 2});
  k = pb.transpose(rope(k), {1, 0, 2});
  v = pb.transpose(v, {1, 0, 2});
  if (hkv != hq) {
    auto repeated = pb.f32({hq, t, d});
    k = b.create<RepeatKvOp>(pb.loc, repeated, k, hq / hkv);
    v = b.create<RepeatKvOp>(pb.loc, repeated, v, hq / hkv);
  }
  return pb.attend(q, k, v, op.getScaleAttr(), op.getWindowAttr(), sinks);
}

FailureOr<SmallVector<Value>> AttentionOp::decompose(OpBuilder &builder) {
  PrimitiveBuilder pb(builder, getLoc());
  Value heads = buildHeads(*this, pb, Value());
  int64_t t = PrimitiveBuilder::shape(getInput())[0];
  int64_t width = getNumHeads() * getHeadDim();
  return SmallVector<Value>{pb.linear(pb.reshape(heads, {t, width}), getOWeight(), Value())};
}

FailureOr<SmallVector<Value>> GateSwaOp::decompose(OpBuilder &builder) {
  PrimitiveBuilder pb(builder, getLoc());
  Value heads = buildHeads(*this, pb, getSinks());
  int64_t t = PrimitiveBuilder::shape(getInput())[0];
  int64_t h = getNumHeads(), d = getHeadDim();
  if (getGate() != GateKind::None) {
    Value logits = pb.linear(getInput(), getGateWeight(), Value());
    Value gate = builder.create<SigmoidOp>(getLoc(), logits);
    gate = getGate() == GateKind::Headwise
               ? pb.broadcast(pb.reshape(gate, {t, h, 1}), {t, h, d})
               : pb.reshape(gate, {t, h, d});
    heads = builder.create<MulOp>(getLoc(), heads, gate);
  }
  return SmallVector<Value>{pb.linear(pb.reshape(heads, {t, h * d}), getOWeight(), Value())};
}

FailureOr<SmallVector<Value>> MlaOp::decompose(OpBuilder &builder) {
  PrimitiveBuilder pb(builder, getLoc());
  OpBuilder &b = builder;
  int64_t t = PrimitiveBuilder::shape(getInput())[0];
  int64_t h = getNumHeads(), kvRank = getKvLoraRank();
  int64_t n = getQkNopeHeadDim(), r = getQkRopeHeadDim(), dv = getVHeadDim();
  Value x = getInput();

  Value q = getQProj() ? pb.linear(x, getQProj(), Value())
                       : pb.linear(pb.rmsNorm(pb.linear(x, getQAProj(), Value()),
                                              getQALayernorm(), getNormEpsAttr()),
                                   getQBProj(), Value());
  q = pb.reshape(q, {t, h, n + r});
  Value latent = pb.linear(x, getKvAProj(), Value());
  Value c = pb.rmsNorm(pb.slice(latent, 1, 0, kvRank), getKvALayernorm(), getNormEpsAttr());
  Value kv = pb.reshape(pb.linear(c, getKvBProj(), Value()), {t, h, n + dv});

  auto rope = [&](Value y) -> Value {
    return b.create<RopeOp>(getLoc(), y.getType(), y, getPositions(), getRopeThetaAttr(),
                            b.getI64IntegerAttr(r), getRopeStyleAttr(),
                            getLlama3ScalingAttr(), /*inverse=*/nullptr);
  };
  Value qPe = rope(pb.slice(q, 2, n, r));
  Value kPe = rope(pb.reshape(pb.slice(latent, 1, kvRank, r), {t, 1, r}));
  kPe = pb.broadcast(kPe, {t, h, r});
  Value qFull = qPe, kFull = kPe;
  if (n > 0) {
    qFull = pb.concat({pb.slice(q, 2, 0, n), qPe}, 2);
    kFull = pb.concat({pb.slice(kv, 2, 0, n), kPe}, 2);
  }
  Value v = pb.slice(kv, 2, n, dv);
  Value heads = pb.attend(pb.transpose(qFull, {1, 0, 2}), pb.transpose(kFull, {1, 0, 2}),
                          pb.transpose(v, {1, 0, 2}), getScaleAttr(),
                          b.getI64IntegerAttr(0), Value());
  return SmallVector<Value>{pb.linear(pb.reshape(heads, {t, h * dv}), getOProj(), Value())};
}
