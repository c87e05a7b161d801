//===- Decompose.cpp - --attnedit-decompose --------------------------------===//

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::attnedit {
#define GEN_PASS_DEF_DECOMPOSEPASS
#include "attnedit/Passes/Passes.h.inc"
} // namespace mlir::attnedit

namespace mlir::attnedit {
namespace {

struct DecomposePass : impl::DecomposePassBase<DecomposePass> {
  void runOnOperation() override {
    SmallVector<DecomposableOpInterface> composites;
    getOperation().walk([&](DecomposableOpInterface op) { composites.push_back(op); });
    IRRewriter rewriter(&getContext());
    for (DecomposableOpInterface op : composites) {
      rewriter.setInsertionPoint(op);
      FailureOr<SmallVector<Value>> expansion = op.decompose(rewriter);
      if (failed(expansion)) {
        op->emitOpError("has no primitive expansion");
        return signalPassFailure();
      }
      rewriter.replaceOp(op, *expansion);
    }
  }
};

} // namespace
} // namespace mlir::attnedit
