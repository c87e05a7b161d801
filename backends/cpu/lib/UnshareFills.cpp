//===- UnshareFills.cpp - a fill per destination before bufferization ------===//

#include "attnedit/CPU/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"

namespace mlir::attnedit::cpu {
#define GEN_PASS_DEF_UNSHAREFILLSPASS
#include "attnedit/CPU/Passes.h.inc"
} // namespace mlir::attnedit::cpu

using namespace mlir;

namespace {

struct UnshareFillsPass : attnedit::cpu::impl::UnshareFillsPassBase<UnshareFillsPass> {
  void runOnOperation() override {
    SmallVector<linalg::FillOp> fills;
    getOperation()->walk([&](linalg::FillOp fill) {
      if (fill.hasPureTensorSemantics() && !fill->hasOneUse())
        fills.push_back(fill);
    });
    for (linalg::FillOp fill : fills) {
      Value filled = fill.getResult(0);
      SmallVector<OpOperand *> inits;
      for (OpOperand &use : filled.getUses())
        if (auto dps = dyn_cast<DestinationStyleOpInterface>(use.getOwner()))
          if (dps.isDpsInit(&use))
            inits.push_back(&use);
      for (OpOperand *use : inits) {
        OpBuilder builder(use->getOwner());
        IRMapping map;
        if (auto empty = fill.getOutputs()[0].getDefiningOp<tensor::EmptyOp>())
          builder.clone(*empty, map);
        use->set(builder.clone(*fill, map)->getResult(0));
      }
      if (fill->use_empty()) {
        Operation *empty = fill.getOutputs()[0].getDefiningOp<tensor::EmptyOp>();
        fill.erase();
        if (empty && empty->use_empty())
          empty->erase();
      }
    }
  }
};

} // namespace
