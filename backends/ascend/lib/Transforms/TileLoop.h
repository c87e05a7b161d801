//===- TileLoop.h - what the vector-core kernel builders share -*- C++ -*-===//
//
// The row, move and mask kernels (VectorKernel.cpp, MoveKernel.cpp) deal
// their tiles to the vector cores the same way; this is that one way.
// KernelEmitter.h has the statements all kernel builders write.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_TRANSFORMS_TILELOOP_H
#define ATTNEDIT_ASCEND_TRANSFORMS_TILELOOP_H

#include "KernelEmitter.h"

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/TargetDescription.h"
#include "attnedit/Ascend/TileLayout.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

namespace mlir::attnedit::ascend {

/// The cores a vector kernel runs on: the AIVs of a separated target (48 on
/// the 910B, S5), the AI cores of a coupled one.
inline CoreKind vectorCoreKind(const TargetDescription &t) {
  return t.separated ? CoreKind::AIV : CoreKind::Coupled;
}
inline int64_t vectorCores(const TargetDescription &t) {
  return t.cubeCores * (t.separated ? t.vectorCoresPerCube : 1);
}

/// `for (tile = block; tile < count; tile += blockDim)`, tiles dealt
/// round-robin to the blocks; the builder is left at the start of its body.
/// `iter` counts this block's tiles (its parity picks a ping-pong slot).
struct TileLoop {
  scf::ForOp loop;
  Value tile, iter;
};
inline TileLoop enterTileLoop(OpBuilder &b, Location loc, Value block, int64_t count,
                              int64_t blockDim) {
  auto cst = [&](int64_t v) -> Value { return b.create<arith::ConstantIndexOp>(loc, v); };
  TileLoop l;
  l.loop = b.create<scf::ForOp>(loc, block, cst(count), cst(blockDim));
  b.setInsertionPointToStart(l.loop.getBody());
  l.tile = l.loop.getInductionVar();
  l.iter = b.create<arith::DivUIOp>(loc, b.create<arith::SubIOp>(loc, l.tile, block), cst(blockDim));
  return l;
}

/// A vector-core kernel of `blockDim` blocks, its entry block taking the
/// block index; the caller adds the GM arguments (gmArgument) and builds
/// the body at the end of `entry`.
struct VectorKernelStart {
  KernelOp kernel;
  Block *entry;
  Value block;
};
inline VectorKernelStart startVectorKernel(OpBuilder &b, Location loc, llvm::StringRef name,
                                           const TargetDescription &t, int64_t blockDim) {
  auto kernel = b.create<KernelOp>(loc, name, t.reference(), blockDim, vectorCoreKind(t),
                                   DictionaryAttr(), DenseI64ArrayAttr());
  Block *entry = new Block();
  kernel.getBody().push_back(entry);
  Value block = entry->addArgument(b.getIndexType(), loc);
  return {kernel, entry, block};
}
/// An f32 GM tensor argument of `shape`, appended to `entry`.
inline Value gmArgument(Block *entry, llvm::ArrayRef<int64_t> shape, Location loc) {
  MLIRContext *ctx = loc.getContext();
  return entry->addArgument(
      BufType::get(ctx, Space::GM, shape, Float32Type::get(ctx), Layout::ND), loc);
}

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_TRANSFORMS_TILELOOP_H
