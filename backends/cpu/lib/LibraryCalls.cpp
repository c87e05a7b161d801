//===- LibraryCalls.cpp - library_call generics to func.call ---------------===//

#include "attnedit/CPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/SmallBitVector.h"

namespace mlir::attnedit::cpu {
#define GEN_PASS_DEF_LIBRARYCALLSPASS
#include "attnedit/CPU/Passes.h.inc"
} // namespace mlir::attnedit::cpu

using namespace mlir;

namespace {

/// `type` with dynamic sizes and a fully dynamic strided layout: one
/// signature per shim whatever the shapes.
MemRefType dynamicLayout(MemRefType type) {
  int64_t d = ShapedType::kDynamic;
  SmallVector<int64_t> dynamic(type.getRank(), d);
  auto layout = StridedLayoutAttr::get(type.getContext(), d, dynamic);
  return MemRefType::get(dynamic, type.getElementType(), layout, type.getMemorySpace());
}

/// The zero fill of `out` that `op` accumulates into, when no other op
/// touches `out` between them (then `op` may overwrite `out` instead).
linalg::FillOp zeroFillInto(linalg::GenericOp op, Value out) {
  Block *block = op->getBlock();
  Operation *last = nullptr;
  for (Operation *user : out.getUsers()) {
    if (user == op)
      continue;
    Operation *inBlock = block->findAncestorOpInBlock(*user);
    if (!inBlock)
      return nullptr;
    if (inBlock->isBeforeInBlock(op) && (!last || last->isBeforeInBlock(inBlock)))
      last = inBlock;
  }
  auto fill = dyn_cast_or_null<linalg::FillOp>(last);
  if (!fill || fill.getOutputs().front() != out)
    return nullptr;
  auto zero = fill.getInputs().front().getDefiningOp<arith::ConstantOp>();
  auto value = zero ? dyn_cast<FloatAttr>(zero.getValue()) : FloatAttr();
  return value && value.getValue().isZero() ? fill : nullptr;
}

/// Whether each loop of `op` indexes one operand only: a call built by
/// libraryCall (a GEMM's loops are shared between its operands).
bool hasOwnLoops(linalg::GenericOp op) {
  llvm::SmallBitVector seen(op.getNumLoops());
  for (AffineMap map : op.getIndexingMapsArray())
    for (AffineExpr e : map.getResults()) {
      auto dim = dyn_cast<AffineDimExpr>(e);
      if (!dim || seen.test(dim.getPosition()))
        return false;
      seen.set(dim.getPosition());
    }
  return true;
}

/// For an operand whose loops run in another order than its axes (an init
/// libraryCall gave axes), the permutation memref.transpose takes to show
/// the operand in loop order; null when they run in axis order.
AffineMap libraryAxes(AffineMap map) {
  SmallVector<unsigned> axes = llvm::to_vector(llvm::seq<unsigned>(0, map.getNumResults()));
  auto loop = [&](unsigned axis) { return map.getDimPosition(axis); };
  if (llvm::is_sorted(axes, [&](unsigned a, unsigned b) { return loop(a) < loop(b); }))
    return {};
  llvm::sort(axes, [&](unsigned a, unsigned b) { return loop(a) < loop(b); });
  return AffineMap::getPermutationMap(axes, map.getContext());
}

struct LibraryCallsPass : attnedit::cpu::impl::LibraryCallsPassBase<LibraryCallsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SymbolTable symbols(module);
    SmallVector<linalg::GenericOp> calls;
    module.walk([&](linalg::GenericOp op) {
      if (op.getLibraryCallAttr())
        calls.push_back(op);
    });
    for (linalg::GenericOp op : calls) {
      if (!op.hasPureBufferSemantics()) {
        op.emitError() << "attnedit-cpu-library-calls: run after bufferization";
        return signalPassFailure();
      }
      std::string name = op.getLibraryCallAttr().getValue().str();
      // A GEMM into zeros passes BLAS beta = 0 rather than accumulating
      // into a buffer a fill loop zeroed first: the library zeroes C within
      // the call, one loop and one parallel region fewer per GEMM.
      if (StringRef(name).starts_with("attnedit_cpu_gemm_") ||
          StringRef(name).starts_with("attnedit_cpu_bgemm_"))
        if (linalg::FillOp fill = zeroFillInto(op, op.getDpsInits().front())) {
          fill.erase();
          name += "_overwrite";
        }
      OpBuilder b(op);
      SmallVector<Value> operands;
      SmallVector<Type> types;
      bool ownLoops = hasOwnLoops(op);
      for (OpOperand &operand : op->getOpOperands()) {
        Value v = operand.get();
        if (ownLoops)
          if (AffineMap axes = libraryAxes(op.getMatchingIndexingMap(&operand)))
            v = b.create<memref::TransposeOp>(op.getLoc(), v, AffineMapAttr::get(axes));
        auto type = dynamicLayout(cast<MemRefType>(v.getType()));
        operands.push_back(type == v.getType() ? v
                                               : b.create<memref::CastOp>(op.getLoc(), type, v));
        types.push_back(type);
      }
      auto fnType = b.getFunctionType(types, {});
      auto callee = symbols.lookup<func::FuncOp>(name);
      if (!callee) {
        OpBuilder mb = OpBuilder::atBlockEnd(module.getBody());
        callee = mb.create<func::FuncOp>(op.getLoc(), name, fnType);
        callee.setPrivate();
        callee->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(), mb.getUnitAttr());
        symbols.insert(callee);
      } else if (callee.getFunctionType() != fnType) {
        op.emitError() << "attnedit-cpu-library-calls: @" << name
                       << " called with two different signatures";
        return signalPassFailure();
      }
      b.create<func::CallOp>(op.getLoc(), callee, operands);
      op.erase();
    }
  }
};

} // namespace
