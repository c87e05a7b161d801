//===- TileLoop.h - what the vector-core kernel builders share -*- C++ -*-===//
//
// The row, move and mask kernels (VectorKernel.cpp, MoveKernel.cpp) deal
// their tiles to the vector cores the same way; this is that one way.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_TRANSFORMS_TILELOOP_H
#define ATTNEDIT_ASCEND_TRANSFORMS_TILELOOP_H

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/TargetDescription.h"

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

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_TRANSFORMS_TILELOOP_H
