//===- StaticTokens.cpp - --attnedit-static-tokens -------------------------===//
//
// Every dynamic size an importer writes is the token count, so the types are
// rewritten in place rather than re-inferred per op (the dialect's ops do not
// infer result types); the verifier then proves the guess. A reshape's and a
// sum's sizes are computed, since they may fold the token count with another
// dimension.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/IR/Verifier.h"

namespace mlir::attnedit {
#define GEN_PASS_DEF_STATICTOKENSPASS
#include "attnedit/Passes/Passes.h.inc"
} // namespace mlir::attnedit

using namespace mlir;
using namespace mlir::attnedit;

namespace {

/// `type` with each dynamic size set to `tokens`; other types unchanged.
Type withTokens(Type type, int64_t tokens) {
  auto ranked = dyn_cast<RankedTensorType>(type);
  if (!ranked || ranked.hasStaticShape())
    return type;
  SmallVector<int64_t> shape(ranked.getShape());
  for (int64_t &size : shape)
    if (ShapedType::isDynamic(size))
      size = tokens;
  return ranked.clone(shape);
}

/// A reshape's one dynamic size, from its (now static) input's element count.
Type reshapedType(ReshapeOp op, int64_t tokens) {
  auto in = cast<RankedTensorType>(op.getInput().getType());
  auto out = cast<RankedTensorType>(op.getType());
  if (!in.hasStaticShape() || out.getNumDynamicDims() != 1)
    return withTokens(out, tokens);
  int64_t known = 1;
  for (int64_t size : out.getShape())
    if (!ShapedType::isDynamic(size))
      known *= size;
  if (known == 0 || in.getNumElements() % known)
    return withTokens(out, tokens);
  SmallVector<int64_t> shape(out.getShape());
  for (int64_t &size : shape)
    if (ShapedType::isDynamic(size))
      size = in.getNumElements() / known;
  return out.clone(shape);
}

/// A sum's type from its (now static) input: the axis it sums may hold the
/// token count folded with another size (repeat_kv's VJP sums [H, r, T·D]).
Type summedType(ReduceSumOp op, int64_t tokens) {
  auto in = cast<RankedTensorType>(op.getInput().getType());
  auto out = cast<RankedTensorType>(op.getType());
  int64_t axis = op.getAxis();
  if (!in.hasStaticShape() || axis < 0 || axis >= in.getRank())
    return withTokens(out, tokens);
  SmallVector<int64_t> shape(in.getShape());
  if (op.getKeepDims())
    shape[axis] = 1;
  else
    shape.erase(shape.begin() + axis);
  return out.clone(shape);
}

struct StaticTokensPass : attnedit::impl::StaticTokensPassBase<StaticTokensPass> {
  using Base::Base;

  void runOnOperation() override {
    if (tokens < 1 || tokens > (int64_t(1) << 32)) {
      getOperation().emitError() << "attnedit-static-tokens: tokens must be in [1, 2^32], got "
                                 << (int64_t)tokens;
      return signalPassFailure();
    }
    ModuleOp module = getOperation();
    if (auto context = module->getAttrOfType<IntegerAttr>(attrs::kMaxPositions))
      if (tokens > context.getInt())
        module.emitWarning() << "attnedit-static-tokens: tokens=" << (int64_t)tokens
                             << " is past the model's context (" << context.getInt()
                             << " positions): shapes for positions it was never trained at";
    for (auto func : module.getOps<func::FuncOp>()) {
      if (func.isExternal())
        continue;
      // --attnedit-build-decode's steps: their sizes are sequences, cache
      // blocks and slots, which one token count would misstate.
      if (isKvCacheStep(func)) {
        func.emitWarning() << "attnedit-static-tokens: @" << func.getSymName()
                           << " reads a paged KV cache, whose sizes are not the token count; "
                              "left as it is";
        continue;
      }
      for (BlockArgument arg : func.getArguments())
        arg.setType(withTokens(arg.getType(), tokens));
      func.walk([&](Operation *op) {
        if (auto reshape = dyn_cast<ReshapeOp>(op))
          return op->getResult(0).setType(reshapedType(reshape, tokens));
        if (auto sum = dyn_cast<ReduceSumOp>(op))
          return op->getResult(0).setType(summedType(sum, tokens));
        for (OpResult result : op->getResults())
          result.setType(withTokens(result.getType(), tokens));
      });
      // What the body returns, a reshape's computed sizes included.
      SmallVector<Type> results;
      if (auto ret = dyn_cast<func::ReturnOp>(func.front().getTerminator()))
        results.assign(ret.getOperandTypes().begin(), ret.getOperandTypes().end());
      else
        for (Type type : func.getResultTypes())
          results.push_back(withTokens(type, tokens));
      func.setType(FunctionType::get(&getContext(), func.front().getArgumentTypes(), results));
      if (failed(verify(func))) {
        func.emitError() << "attnedit-static-tokens: @" << func.getSymName()
                         << " has dynamic sizes that are not the token count (" << (int64_t)tokens
                         << "); the error above names the first op they do not fit";
        return signalPassFailure();
      }
    }
  }
};

} // namespace
