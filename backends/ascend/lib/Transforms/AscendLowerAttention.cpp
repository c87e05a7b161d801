//===- AscendLowerAttention.cpp - --attnedit-ascend-lower-attention -------===//
//
// Replaces statically shaped decomposed attention chains (AttentionChain.h)
// by launches of the flash-attention mix kernel. A trained layer's chain in
// a training step goes together with its backward: the forward kernel also
// returns each row's log-sum-exp, and one launch of the backward mix kernel
// (AttentionGradKernel.h) replaces the backward's ops. Chains with dynamic
// sequence lengths stay as they are (the runtime fuses them at run time,
// OpSimulator::runAttention / runAttentionGrad).
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AttentionChain.h"
#include "LoweringSupport.h"
#include "attnedit/Ascend/AttentionGradKernel.h"
#include "attnedit/Ascend/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/SymbolTable.h"

namespace mlir::attnedit::ascend {
#define GEN_PASS_DEF_ASCENDLOWERATTENTIONPASS
#include "attnedit/Ascend/Passes.h.inc"
} // namespace mlir::attnedit::ascend

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;

namespace {

RankedTensorType f32Tensor(MLIRContext *ctx, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, Float32Type::get(ctx));
}

struct AscendLowerAttentionPass
    : mlir::attnedit::ascend::impl::AscendLowerAttentionPassBase<AscendLowerAttentionPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    constexpr llvm::StringLiteral flag = "attnedit-ascend-lower-attention";
    std::shared_ptr<const TargetDescription> loaded = loadTargetOption(module, flag, target);
    if (!loaded)
      return signalPassFailure();
    const TargetDescription &t = *loaded;
    // Coupled cores (910A) have no cube/vector split to pipeline across.
    if (!t.separated)
      return;
    std::optional<DType> parsed = parseDTypeOption(module, flag, dtype);
    if (!parsed)
      return signalPassFailure();
    DType dt = *parsed;
    SymbolTable symbols(module);
    int64_t counter = 0;
    for (AttentionChain &c : findAttentionChains(module, /*training=*/true)) {
      auto qShape = cast<RankedTensorType>(c.q.getType()).getShape();
      auto kShape = cast<RankedTensorType>(c.k.getType()).getShape();
      if (ShapedType::isDynamic(qShape[1]) || ShapedType::isDynamic(kShape[1]) ||
          qShape[1] > kShape[1] || qShape[1] == 0)
        continue;
      AttentionProblem p = attentionProblem(c, qShape[1], kShape[1], dt);
      p.saveLse = static_cast<bool>(c.grad);
      std::string why;
      if (!attentionFits(p, {16, 16, 2, 16, 16}, t, &why) ||
          (c.grad && !attentionGradFits(p, {16, 16}, t, &why))) {
        c.ops.back()->emitRemark() << "attention stays unfused: " << why;
        continue;
      }
      llvm::Expected<AttentionChoice> choice = searchAttentionTiling(&getContext(), p, t);
      if (!choice) {
        c.ops.back()->emitError() << llvm::toString(choice.takeError());
        return signalPassFailure();
      }
      const AttentionTiling &tl = choice->tiling;

      OpBuilder builder(module.getBodyRegion());
      builder.setInsertionPointToEnd(module.getBody());
      std::string name = freshKernelName(symbols, "attention_", counter);
      Operation *out = c.ops.back();
      Location loc = out->getLoc();
      KernelOp kernel = buildAttentionKernel(builder, loc, name, p, tl, t);
      symbols.insert(kernel);

      builder.setInsertionPoint(out);
      MLIRContext *ctx = &getContext();
      SmallVector<Value> args;
      args.push_back(builder.create<ReshapeOp>(
          loc, f32Tensor(ctx, {p.groups, p.rows(), p.dk}), c.q));
      args.push_back(c.k);
      if (!p.valueFromKey)
        args.push_back(c.v);
      std::vector<float> mask = attentionMaskRows(p, tl);
      auto maskType = f32Tensor(ctx, {(int64_t)mask.size() / tl.bk, tl.bk});
      args.push_back(builder.create<arith::ConstantOp>(
          loc, DenseElementsAttr::get(maskType, llvm::ArrayRef<float>(mask))));
      Value sinkRows;
      if (p.sinks) {
        // [H] -> one sink per query row, [H·Tq, 1] = [groups·rows, 1].
        Value s = builder.create<ReshapeOp>(loc, f32Tensor(ctx, {p.heads(), 1}), c.sinks);
        s = builder.create<BroadcastOp>(loc, f32Tensor(ctx, {p.heads(), p.tq}), s);
        sinkRows = builder.create<ReshapeOp>(loc, f32Tensor(ctx, {p.heads() * p.tq, 1}), s);
        args.push_back(sinkRows);
      }
      SmallVector<Type> results;
      if (p.saveLse)
        results.push_back(f32Tensor(ctx, {p.groups, p.rows(), 1}));
      results.push_back(f32Tensor(ctx, {p.tq, p.heads() * p.dv}));
      auto launch = builder.create<LaunchOp>(loc, results, kernel.getSymName(), args);
      Value y = launch.getResults().back();
      out->getResult(0).replaceAllUsesWith(
          builder.create<ReshapeOp>(loc, out->getResult(0).getType(), y).getResult());
      if (c.grad && failed(lowerBackward(c, p, args[0], sinkRows, launch, t, name, symbols)))
        return signalPassFailure();
      for (Operation *op : llvm::reverse(c.ops))
        op->erase();
    }
  }

  /// One launch of the backward kernel in place of `c.grad`'s ops: q (as
  /// the forward's [groups, rows, dk]), k, v, dO, the forward's output and
  /// log-sum-exp, its mask rows and sinks; d sinks summed per head.
  LogicalResult lowerBackward(const AttentionChain &c, AttentionProblem p, Value q, Value sinkRows,
                              LaunchOp forward, const TargetDescription &t,
                              const std::string &forwardName, SymbolTable &symbols) {
    Value lse = forward.getResult(0), y = forward.getResults().back();
    const AttentionGradChain &g = *c.grad;
    MLIRContext *ctx = &getContext();
    p.saveLse = false;
    llvm::Expected<AttentionGradChoice> choice = searchAttentionGradTiling(ctx, p, t);
    if (!choice) {
      g.ops.front()->emitError() << llvm::toString(choice.takeError());
      return failure();
    }
    OpBuilder builder(ctx);
    builder.setInsertionPointToEnd(getOperation().getBody());
    Location loc = g.ops.front()->getLoc();
    KernelOp kernel =
        buildAttentionGradKernel(builder, loc, forwardName + "_grad", p, choice->tiling, t);
    symbols.insert(kernel);

    // At the backward's first op, or just after dO if that comes later:
    // before every use of a gradient, after the forward it reads.
    Operation *at = g.ops.front();
    if (Operation *def = g.dO.getDefiningOp();
        def && def->getBlock() == at->getBlock() && at->isBeforeInBlock(def))
      at = def->getNextNode();
    if (at->isBeforeInBlock(forward))
      return at->emitError("attention backward: starts before its forward"), failure();
    builder.setInsertionPoint(at);
    SmallVector<Value> args{q, c.k, c.v};
    args.push_back(builder.create<ReshapeOp>(loc, f32Tensor(ctx, {p.groups, p.rows(), p.dv}), g.dO));
    args.append({y, lse});
    AttentionTiling mt;
    mt.bk = choice->tiling.bk;
    std::vector<float> mask = attentionMaskRows(p, mt);
    auto maskType = f32Tensor(ctx, {(int64_t)mask.size() / mt.bk, mt.bk});
    args.push_back(builder.create<arith::ConstantOp>(
        loc, DenseElementsAttr::get(maskType, llvm::ArrayRef<float>(mask))));
    if (p.sinks)
      args.push_back(sinkRows);
    SmallVector<Type> results{f32Tensor(ctx, {p.groups, p.rows(), p.dk}),
                              f32Tensor(ctx, {p.groups, p.tk, p.dk}),
                              f32Tensor(ctx, {p.groups, p.tk, p.dv})};
    if (p.sinks)
      results.push_back(f32Tensor(ctx, {p.groups, p.rows(), 1}));
    auto launch = builder.create<LaunchOp>(loc, results, kernel.getSymName(), args);
    auto replace = [&](Operation *op, Value v) {
      op->getResult(0).replaceAllUsesWith(
          builder.create<ReshapeOp>(loc, op->getResult(0).getType(), v).getResult());
    };
    replace(g.dq, launch.getResult(0));
    replace(g.dk, launch.getResult(1));
    replace(g.dv, launch.getResult(2));
    if (p.sinks) {
      // Rows [groups, headsPerGroup·tq] are [H, tq]: d sink_h sums head h's.
      Value rows = builder.create<ReshapeOp>(loc, f32Tensor(ctx, {p.heads(), p.tq}),
                                             launch.getResult(3));
      g.dsinks->getResult(0).replaceAllUsesWith(
          builder
              .create<ReduceSumOp>(loc, g.dsinks->getResult(0).getType(), rows,
                                   builder.getI64IntegerAttr(1), UnitAttr())
              .getResult());
    }
    // Users first; the views between an op and its group's reduce_sum go
    // with it.
    for (Operation *op : llvm::reverse(g.ops)) {
      for (Operation *user : llvm::make_early_inc_range(op->getUsers()))
        if (isa<ReshapeOp>(user) && user->use_empty())
          user->erase();
      op->erase();
    }
    return success();
  }
};

} // namespace
