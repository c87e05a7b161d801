//===- AscendLowerMatmul.cpp - --attnedit-ascend-lower-matmul -------------===//
//
// Replaces statically shaped attnedit.linear / attnedit.matmul by launches of
// tiled Cube kernels. Ops the Cube path cannot take yet (dynamic shapes,
// bias) stay as they are, so the rest of the module still runs elsewhere.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/MatmulKernel.h"
#include "LoweringSupport.h"
#include "attnedit/Ascend/Passes.h"
#include "attnedit/IR/AttnEditOps.h"

#include "mlir/IR/Dominance.h"
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
    std::optional<DType> parsed = parseDTypeOption(module, "attnedit-ascend-lower-matmul", dtype);
    if (!parsed)
      return failure();
    proto.dtype = *parsed;
    // bf16 is the default, so picking the 910A alone lands here.
    if (!t.cubeMacsPerCycle(proto.dtype)) {
      DType other = proto.dtype == DType::BF16 ? DType::F16 : DType::BF16;
      InFlightDiagnostic diag = module.emitError()
                                << "attnedit-ascend-lower-matmul: the " << t.label()
                                << " Cube has no " << dtype << " mode";
      if (t.cubeMacsPerCycle(other))
        diag << "; pass dtype=" << dtypeName(other);
      return diag;
    }
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
      if (std::string bad = tilingShapeError(*forced); !bad.empty())
        return module.emitError() << "attnedit-ascend-lower-matmul: tiling '" << tiling
                                  << "': " << bad;
    }
    return success();
  }

  /// The problem of one linear / matmul, or none when the Cube path cannot
  /// take it (dynamic shapes, a bias, an empty dimension).
  static std::optional<MatmulProblem> problemOf(Operation *op, const MatmulProblem &proto) {
    auto lhsType = cast<RankedTensorType>(op->getOperand(0).getType());
    auto rhsType = cast<RankedTensorType>(op->getOperand(1).getType());
    if (!lhsType.hasStaticShape() || !rhsType.hasStaticShape())
      return std::nullopt;
    MatmulProblem p = proto;
    if (auto linear = dyn_cast<LinearOp>(op)) {
      if (linear.getBias())
        return std::nullopt;
      p.transposedB = true;
      p.k = lhsType.getShape().back();
      p.m = p.k ? lhsType.getNumElements() / p.k : 0;
      p.n = rhsType.getShape()[0];
    } else {
      ArrayRef<int64_t> a = lhsType.getShape(), b = rhsType.getShape();
      p.m = a[a.size() - 2];
      p.k = a.back();
      p.n = b.back();
      p.batch = p.m * p.k ? lhsType.getNumElements() / (p.m * p.k) : 0;
    }
    if (p.m == 0 || p.n == 0 || p.k == 0)
      return std::nullopt;
    return p;
  }

  /// Linears to lower as one kernel each group, in program order: with
  /// fuse-shared-input, a linear joins the group of an earlier one of its
  /// block reading the same input when its weight is already defined there
  /// (the fused launch takes the first one's place).
  SmallVector<SmallVector<Operation *>> groups(const MatmulProblem &proto) {
    SmallVector<SmallVector<Operation *>> out;
    llvm::DenseMap<Value, size_t> open; // input -> its group of linears
    DominanceInfo dominance(getOperation());
    getOperation().walk([&](Operation *op) {
      if (!isa<LinearOp, MatmulOp>(op) || !problemOf(op, proto))
        return;
      if (fuseSharedInput && isa<LinearOp>(op)) {
        auto it = open.find(op->getOperand(0));
        if (it != open.end()) {
          Operation *first = out[it->second].front();
          if (first->getBlock() == op->getBlock() &&
              dominance.properlyDominates(op->getOperand(1), first)) {
            out[it->second].push_back(op);
            return;
          }
        }
        open[op->getOperand(0)] = out.size();
      }
      out.push_back({op});
    });
    return out;
  }

  /// Lowers `ops` (one op, or linears sharing their input) as one kernel
  /// launched where the first one was. Fails with an error emitted, or
  /// returns false when a fused group has no tiling of its own.
  FailureOr<bool> lower(ArrayRef<Operation *> ops, const MatmulProblem &proto,
                        const std::optional<MatmulTiling> &forced, const TargetDescription &t,
                        SymbolTable &symbols, int64_t &counter) {
    ModuleOp module = getOperation();
    Operation *op = ops.front();
    MatmulProblem p = *problemOf(op, proto);
    if (ops.size() > 1) {
      p.n = 0;
      for (Operation *member : ops) {
        p.nParts.push_back(problemOf(member, proto)->n);
        p.n += p.nParts.back();
      }
    }
    MatmulTiling tl;
    std::string why;
    if (forced) {
      tl = *forced;
      if (!tilingFits(p, tl, t, &why)) {
        if (ops.size() > 1)
          return false;
        op->emitError() << "tiling " << tiling << " does not fit the " << t.name << ": " << why;
        return failure();
      }
    } else {
      llvm::Expected<TilingChoice> choice = searchMatmulTiling(&getContext(), p, t);
      if (!choice) {
        if (ops.size() > 1) {
          llvm::consumeError(choice.takeError());
          return false;
        }
        op->emitError() << llvm::toString(choice.takeError());
        return failure();
      }
      tl = choice->tiling;
    }

    OpBuilder builder(module.getBodyRegion());
    builder.setInsertionPointToEnd(module.getBody());
    bool linear = isa<LinearOp>(op);
    std::string name = freshKernelName(symbols, linear ? "linear_" : "matmul_", counter);
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
      return builder.create<ReshapeOp>(loc,
                                       RankedTensorType::get(gmShape(b), type.getElementType()), v);
    };
    size_t g = ops.size();
    SmallVector<Value> inputs{asKernel(op->getOperand(0), cast<BufType>(args[0].getType()))};
    SmallVector<Type> launchTypes;
    for (size_t i = 0; i < g; ++i) {
      inputs.push_back(asKernel(ops[i]->getOperand(1), cast<BufType>(args[1 + i].getType())));
      auto resultType = cast<RankedTensorType>(ops[i]->getResult(0).getType());
      launchTypes.push_back(RankedTensorType::get(gmShape(cast<BufType>(args[1 + g + i].getType())),
                                                  resultType.getElementType()));
    }
    auto launch = builder.create<LaunchOp>(loc, launchTypes, kernel.getSymName(), inputs);
    for (size_t i = 0; i < g; ++i) {
      Value c = launch.getResult(i);
      Type resultType = ops[i]->getResult(0).getType();
      if (launchTypes[i] != resultType)
        c = builder.create<ReshapeOp>(loc, resultType, c);
      ops[i]->getResult(0).replaceAllUsesWith(c);
    }
    for (Operation *member : ops)
      member->erase();
    return true;
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::shared_ptr<const TargetDescription> loaded =
        loadTargetOption(module, "attnedit-ascend-lower-matmul", target);
    if (!loaded)
      return signalPassFailure();
    const TargetDescription &t = *loaded;
    MatmulProblem proto;
    std::optional<MatmulTiling> forced;
    if (failed(parseOptions(t, proto, forced)))
      return signalPassFailure();

    SymbolTable symbols(module);
    int64_t counter = 0;
    for (const SmallVector<Operation *> &group : groups(proto)) {
      FailureOr<bool> done = lower(group, proto, forced, t, symbols, counter);
      if (failed(done))
        return signalPassFailure();
      // A fused group without a tiling of its own: each linear alone.
      if (!*done)
        for (Operation *op : group)
          if (failed(lower({op}, proto, forced, t, symbols, counter)))
            return signalPassFailure();
    }
  }
};

} // namespace
