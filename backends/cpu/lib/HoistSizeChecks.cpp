//===- HoistSizeChecks.cpp - run-time size checks as early as possible -----===//

#include "attnedit/CPU/Passes.h"

#include "mlir/Analysis/SliceAnalysis.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::attnedit::cpu {
#define GEN_PASS_DEF_HOISTSIZECHECKSPASS
#include "attnedit/CPU/Passes.h.inc"
} // namespace mlir::attnedit::cpu

using namespace mlir;

namespace {

/// An `scf.if` of LowerPrimitives.cpp's refuseUnless: no results, and a
/// then-region that calls the refusal.
bool isSizeCheck(Operation *op) {
  auto check = dyn_cast<scf::IfOp>(op);
  if (!check || check.getNumResults() != 0)
    return false;
  bool refuses = false;
  check.getThenRegion().walk([&](func::CallOp call) {
    refuses |= call.getCallee() == "attnedit_cpu_refuse_call";
  });
  return refuses;
}

struct HoistSizeChecksPass
    : attnedit::cpu::impl::HoistSizeChecksPassBase<HoistSizeChecksPass> {
  void runOnOperation() override {
    for (Block &block : getOperation().getBody()) {
      SmallVector<Operation *> checks;
      for (Operation &op : block)
        if (isSizeCheck(&op))
          checks.push_back(&op);
      Operation *previous = nullptr;
      for (Operation *check : checks) {
        // The pure ops of this block that compute what the check reads (its
        // condition, and the sizes its region reports) move with it; any
        // other op it reads from pins it below that op.
        SetVector<Operation *> slice;
        BackwardSliceOptions options;
        options.inclusive = true;
        options.filter = [&](Operation *op) {
          return op->getBlock() == &block && isPure(op) && op->getNumRegions() == 0;
        };
        Operation *after = previous;
        auto pin = [&](Operation *def) {
          if (def && def->getBlock() == &block && (!after || after->isBeforeInBlock(def)))
            after = def;
        };
        check->walk([&](Operation *inner) {
          for (Value v : inner->getOperands())
            if (Operation *def = v.getDefiningOp(); def && def->getBlock() == &block) {
              if (options.filter(def))
                getBackwardSlice(def, &slice, options);
              else
                pin(def);
            }
        });
        for (Operation *op : slice)
          for (Value v : op->getOperands())
            if (Operation *def = v.getDefiningOp(); def && !slice.contains(def))
              pin(def);
        SmallVector<Operation *> ordered(slice.begin(), slice.end());
        llvm::sort(ordered, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
        ordered.push_back(check);
        // In block order, each op moved right after the one before keeps its
        // operands above it.
        Operation *cursor = after;
        for (Operation *op : ordered) {
          if (cursor && !cursor->isBeforeInBlock(op))
            continue;
          if (cursor)
            op->moveAfter(cursor);
          else if (op != &block.front())
            op->moveBefore(&block.front());
          cursor = op;
        }
        previous = check;
      }
    }
  }
};

} // namespace
