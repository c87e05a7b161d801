//===- OutlineLoops.cpp - each linalg op into its own function -------------===//

#include "attnedit/CPU/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/RegionUtils.h"

namespace mlir::attnedit::cpu {
#define GEN_PASS_DEF_OUTLINELOOPSPASS
#include "attnedit/CPU/Passes.h.inc"
} // namespace mlir::attnedit::cpu

using namespace mlir;

namespace {

struct OutlineLoopsPass : attnedit::cpu::impl::OutlineLoopsPassBase<OutlineLoopsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<linalg::LinalgOp> loops;
    module.walk([&](linalg::LinalgOp op) { loops.push_back(op); });
    llvm::StringMap<func::FuncOp> byText;
    for (linalg::LinalgOp op : loops) {
      if (!op.hasPureBufferSemantics()) {
        op.emitError() << "attnedit-cpu-outline-loops: run after bufferization";
        return signalPassFailure();
      }
      auto caller = op->getParentOfType<func::FuncOp>();
      SmallVector<Value> operands(op->getOperands());
      // Captured constants are cloned (they fold into the loops); anything
      // else computed outside the body is passed in.
      SetVector<Value> captured;
      getUsedValuesDefinedAbove(op->getRegions(), captured);
      SmallVector<Operation *> constants;
      for (Value v : captured) {
        Operation *def = v.getDefiningOp();
        if (def && def->hasTrait<OpTrait::ConstantLike>())
          constants.push_back(def);
        else
          operands.push_back(v);
      }
      OpBuilder mb = OpBuilder::atBlockEnd(module.getBody());
      auto callee = mb.create<func::FuncOp>(op.getLoc(), "outlined",
                                            mb.getFunctionType(ValueRange(operands).getTypes(), {}));
      Block *body = callee.addEntryBlock();
      OpBuilder fb = OpBuilder::atBlockEnd(body);
      IRMapping map;
      map.map(operands, body->getArguments());
      for (Operation *c : constants)
        fb.clone(*c, map);
      fb.clone(*op, map);
      fb.create<func::ReturnOp>(op.getLoc());
      // Every layer repeats the same loops on the same shapes: one function
      // each, so a 12-layer model compiles its loops once, not 12 times.
      std::string text;
      llvm::raw_string_ostream os(text);
      // Local scope: printing a nested op otherwise numbers the whole
      // module first, once per op (77% of a training step's lowering).
      callee.print(os, OpPrintingFlags().useLocalScope());
      func::FuncOp &same = byText[text];
      if (same) {
        callee.erase();
        callee = same;
      } else {
        callee.setSymName((caller.getSymName() + "__loop" + llvm::Twine(byText.size() - 1)).str());
        callee.setPrivate();
        callee->setAttr("passthrough", mb.getArrayAttr({mb.getStringAttr("noinline")}));
        symbols.insert(callee);
        same = callee;
      }
      OpBuilder b(op);
      b.create<func::CallOp>(op.getLoc(), callee, operands);
      op->erase();
    }
  }
};

} // namespace
