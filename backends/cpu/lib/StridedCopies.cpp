//===- StridedCopies.cpp - copies between layouts as loops -----------------===//

#include "attnedit/CPU/Passes.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Utils/MemRefUtils.h"
#include "mlir/IR/Builders.h"

namespace mlir::attnedit::cpu {
#define GEN_PASS_DEF_STRIDEDCOPIESPASS
#include "attnedit/CPU/Passes.h.inc"
} // namespace mlir::attnedit::cpu

using namespace mlir;

namespace {

/// What finalize-memref-to-llvm copies with a memcpy (its own test).
bool copiedByMemcpy(Type type) {
  auto memref = dyn_cast<MemRefType>(type);
  return memref &&
         (memref.getLayout().isIdentity() || memref::isStaticShapeAndContiguousRowMajor(memref));
}

struct StridedCopiesPass : attnedit::cpu::impl::StridedCopiesPassBase<StridedCopiesPass> {
  void runOnOperation() override {
    getOperation()->walk([](memref::CopyOp copy) {
      if (copiedByMemcpy(copy.getSource().getType()) &&
          copiedByMemcpy(copy.getTarget().getType()))
        return;
      OpBuilder builder(copy);
      builder.create<linalg::CopyOp>(copy.getLoc(), copy.getSource(), copy.getTarget());
      copy.erase();
    });
  }
};

} // namespace
