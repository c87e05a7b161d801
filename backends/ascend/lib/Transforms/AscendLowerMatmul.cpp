//===- AscendLowerMatmul.cpp - --attnedit-ascend-lower-matmul -------------===//
//
// Replaces statically shaped attnedit.linear / attnedit.matmul by launches of
// tiled Cube kernels. Ops the Cube path cannot take yet (dynamic shapes,
// bias) stay as they are, so the rest of the module still runs elsewhere.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/MatmulKernel.h"
#include "attnedit/Ascend/Passes.h"
#include "attnedit/IR/AttnEditOps.h"

#include "mlir/IR/SymbolTable.h"

#include "llvm/ADT/StringExtras.h"

namespace mlir::attnedit::ascend {
#define GEN_PASS_DEF_ASCENDLOWERMATMULPASS
#include "attnedit/Ascend/Passes.h.inc"
} // namespace mlir::attnedit::ascend

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;

namespace {

struct AscendLowerMatmulPass
    : mlir::attnedit::ascend::impl::AscendLowerMatmulPassBase<AscendLowerMatmulPass> {
  using Base::Base;

  LogicalResult parseOptions(const TargetDescription &t, MatmulProblem &proto,
                             std::optional<MatmulTiling> &forced) {
    ModuleOp module = getOperation();
    if (dtype == "bf16")
      proto.dtype = DType::BF16;
    else if (dtype == "f16")
      proto.dtype = DType::F16;
    else
      return module.emitError() << "attnedit-ascend-lower-matmul: dtype must be f16 or bf16, got '"
                                << dtype << "'";
    if (!t.cubeMacsPerCycle(proto.dtype))
      return module.emitError() << "attnedit-ascend-lower-matmul: the " << t.name
                                << " Cube has no " << dtype << " mode";
    proto.target = target;
    if (!tiling.empty()) {
      SmallVector<StringRef> parts;
      StringRef(tiling).split(parts, ',');
      SmallVector<int64_t> v;
      for (StringRef s : parts) {
        int64_t x;
        if (s.trim().getAsInteger(10, x))
          break;
        v.push_back(x);
      }
      if (v.size() != 4)
        return module.emitError() << "attnedit-ascend-lower-matmul: tiling must be "
                                     "baseM,baseN,baseK,stepK, got '"
                                  << tiling << "'";
      forced = MatmulTiling{v[0], v[1], v[2], v[3]};
    }
    return success();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    llvm::Expected<std::shared_ptr<const TargetDescription>> loaded =
        TargetDescription::load(target);
    if (!loaded) {
      module.emitError() << "attnedit-ascend-lower-matmul: " << llvm::toString(loaded.takeError());
      return signalPassFailure();
    }
    const TargetDescription &t = **loaded;
    MatmulProblem proto;
    std::optional<MatmulTiling> forced;
    if (failed(parseOptions(t, proto, forced)))
      return signalPassFailure();

    SmallVector<Operation *> work;
    module.walk([&](Operation *op) {
      if (isa<LinearOp, MatmulOp>(op))
        work.push_back(op);
    });
    SymbolTable symbols(module);
    int64_t counter = 0;
    for (Operation *op : work) {
      auto lhsType = cast<RankedTensorType>(op->getOperand(0).getType());
      auto rhsType = cast<RankedTensorType>(op->getOperand(1).getType());
      auto resultType = cast<RankedTensorType>(op->getResult(0).getType());
      if (!lhsType.hasStaticShape() || !rhsType.hasStaticShape())
        continue;
      MatmulProblem p = proto;
      bool linear = isa<LinearOp>(op);
      if (linear) {
        if (cast<LinearOp>(op).getBias())
          continue;
        p.transposedB = true;
        p.k = lhsType.getShape().back();
        p.m = lhsType.getNumElements() / p.k;
        p.n = rhsType.getShape()[0];
      } else {
        ArrayRef<int64_t> a = lhsType.getShape(), b = rhsType.getShape();
        p.m = a[a.size() - 2];
        p.k = a.back();
        p.n = b.back();
        p.batch = lhsType.getNumElements() / (p.m * p.k);
      }
      if (p.m == 0 || p.n == 0 || p.k == 0)
        continue;

      MatmulTiling tl;
      std::string why;
      if (forced) {
        tl = *forced;
        if (!tilingFits(p, tl, t, &why)) {
          op->emitError() << "tiling " << tiling << " does not fit the " << t.name << ": " << why;
          return signalPassFailure();
        }
      } else {
        llvm::Expected<TilingChoice> choice = searchMatmulTiling(&getContext(), p, t);
        if (!choice) {
          op->emitError() << llvm::toString(choice.takeError());
          return signalPassFailure();
        }
        tl = choice->tiling;
      }

      OpBuilder builder(module.getBodyRegion());
      builder.setInsertionPointToEnd(module.getBody());
      std::string name;
      do
        name = (linear ? "linear_" : "matmul_") + std::to_string(counter++);
      while (symbols.lookup(name));
      KernelOp kernel = buildMatmulKernel(builder, op->getLoc(), name, p, tl, t);
      symbols.insert(kernel);

      // The kernel sees [batch?, M, K]; reshape around it when the graph's
      // tensors have more (or folded) leading dimensions.
      builder.setInsertionPoint(op);
      Location loc = op->getLoc();
      auto gmShape = [](BufType b) { return SmallVector<int64_t>(b.getShape()); };
      auto args = kernel.getTensorArgs();
      auto asKernel = [&](Value v, BufType b) -> Value {
        auto type = cast<RankedTensorType>(v.getType());
        if (type.getShape() == b.getShape())
          return v;
        return builder.create<ReshapeOp>(loc, RankedTensorType::get(gmShape(b), type.getElementType()),
                                         v);
      };
      Value a = asKernel(op->getOperand(0), cast<BufType>(args[0].getType()));
      Value bm = asKernel(op->getOperand(1), cast<BufType>(args[1].getType()));
      auto cBuf = cast<BufType>(args[2].getType());
      auto launchType = RankedTensorType::get(gmShape(cBuf), resultType.getElementType());
      Value c = builder.create<LaunchOp>(loc, TypeRange{launchType}, kernel.getSymName(),
                                         ValueRange{a, bm})
                    .getResult(0);
      if (launchType != resultType)
        c = builder.create<ReshapeOp>(loc, resultType, c);
      op->getResult(0).replaceAllUsesWith(c);
      op->erase();
    }
  }
};

} // namespace
