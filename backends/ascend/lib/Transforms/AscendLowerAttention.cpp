//===- AscendLowerAttention.cpp - --attnedit-ascend-lower-attention -------===//
//
// Replaces statically shaped decomposed attention chains (AttentionChain.h)
// by launches of the flash-attention mix kernel. Chains with dynamic
// sequence lengths stay as they are (the runtime fuses them at run time,
// OpSimulator::runAttention).
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AttentionChain.h"
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
    llvm::Expected<std::shared_ptr<const TargetDescription>> loaded =
        TargetDescription::load(target);
    if (!loaded) {
      module.emitError() << "attnedit-ascend-lower-attention: "
                         << llvm::toString(loaded.takeError());
      return signalPassFailure();
    }
    const TargetDescription &t = **loaded;
    // Coupled cores (910A) have no cube/vector split to pipeline across.
    if (!t.separated)
      return;
    DType dt;
    if (dtype == "bf16")
      dt = DType::BF16;
    else if (dtype == "f16")
      dt = DType::F16;
    else {
      module.emitError() << "attnedit-ascend-lower-attention: dtype must be f16 or bf16, got '"
                         << dtype << "'";
      return signalPassFailure();
    }
    SymbolTable symbols(module);
    int64_t counter = 0;
    for (AttentionChain &c : findAttentionChains(module)) {
      auto qShape = cast<RankedTensorType>(c.q.getType()).getShape();
      auto kShape = cast<RankedTensorType>(c.k.getType()).getShape();
      if (ShapedType::isDynamic(qShape[1]) || ShapedType::isDynamic(kShape[1]) ||
          qShape[1] > kShape[1] || qShape[1] == 0)
        continue;
      AttentionProblem p = attentionProblem(c, qShape[1], kShape[1], dt);
      std::string why;
      if (!attentionFits(p, {16, 16, 2, 16, 16}, t, &why)) {
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
      std::string name;
      do
        name = "attention_" + std::to_string(counter++);
      while (symbols.lookup(name));
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
      if (p.sinks) {
        // [H] -> one sink per query row, [H·Tq, 1] = [groups·rows, 1].
        Value s = builder.create<ReshapeOp>(loc, f32Tensor(ctx, {p.heads(), 1}), c.sinks);
        s = builder.create<BroadcastOp>(loc, f32Tensor(ctx, {p.heads(), p.tq}), s);
        args.push_back(builder.create<ReshapeOp>(loc, f32Tensor(ctx, {p.heads() * p.tq, 1}), s));
      }
      Value y = builder.create<LaunchOp>(loc, TypeRange{f32Tensor(ctx, {p.tq, p.heads() * p.dv})},
                                         kernel.getSymName(), args)
                    .getResult(0);
      y = builder.create<ReshapeOp>(loc, out->getResult(0).getType(), y);
      out->getResult(0).replaceAllUsesWith(y);
      for (Operation *op : llvm::reverse(c.ops))
        op->erase();
    }
  }
};

} // namespace
