//===- TransposeKernel.cpp - tile transposes and column sums ---------------===//
//
// GM windows past a tensor's end read as zeros and are not written
// (DataCopyPad, S62), so tails need no special tiles.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/TransposeKernel.h"
#include "TileLoop.h"

using namespace mlir;
using namespace mlir::attnedit::ascend;

int64_t mlir::attnedit::ascend::transposeTileEdge(int64_t n) {
  return std::min<int64_t>(roundUp(std::max<int64_t>(n, 1), 8), 64);
}

KernelOp mlir::attnedit::ascend::buildTransposeKernel(OpBuilder &builder, Location loc,
                                                      llvm::StringRef name,
                                                      const TransposeProblem &p,
                                                      const TargetDescription &t) {
  OpBuilder::InsertionGuard guard(builder);
  int64_t tr = transposeTileEdge(p.rows), tc = transposeTileEdge(p.cols);
  int64_t rowTiles = ceilDiv(p.rows, tr), colTiles = ceilDiv(p.cols, tc);
  int64_t tasks = p.batch * rowTiles * colTiles;
  auto [kernel, entry, blk] =
      startVectorKernel(builder, loc, name, t, std::min(tasks, vectorCores(t)));
  kernel->setAttr("ascend.transpose_tile", builder.getDenseI64ArrayAttr({tr, tc}));
  Value input = gmArgument(entry, {p.batch, p.rows, p.cols}, loc);
  Value output = gmArgument(entry, {p.batch, p.cols, p.rows}, loc);
  builder.setInsertionPointToEnd(entry);
  KernelEmitter e(builder, loc, t);
  Value inBuf = e.alloc(tr, tc, 2), outBuf = e.alloc(tc, tr, 2);
  Value c0 = e.cst(0), c1 = e.cst(1), c2 = e.cst(2);
  for (Value s : {c0, c1}) {
    e.set(Pipe::V, Pipe::MTE2, s);
    e.set(Pipe::MTE3, Pipe::V, s);
  }
  TileLoop dealt = enterTileLoop(builder, loc, blk, tasks, kernel.getBlockDim());
  Value s = e.rem(dealt.iter, c2);
  // Task -> (batch, row tile, column tile), column tiles fastest.
  Value batch = e.div(dealt.tile, e.cst(rowTiles * colTiles));
  Value within = e.rem(dealt.tile, e.cst(rowTiles * colTiles));
  Value r0 = e.mul(e.div(within, e.cst(colTiles)), e.cst(tr));
  Value k0 = e.mul(e.rem(within, e.cst(colTiles)), e.cst(tc));
  Value in = e.slot(inBuf, s), out = e.slot(outBuf, s);
  e.wait(Pipe::V, Pipe::MTE2, s);
  e.copy(Pipe::MTE2, input, {batch, r0, k0}, in, {c0, c0}, tr, tc);
  e.set(Pipe::MTE2, Pipe::V, s);
  e.wait(Pipe::MTE2, Pipe::V, s);
  e.wait(Pipe::MTE3, Pipe::V, s);
  builder.create<VTransposeOp>(loc, in, out);
  e.barrier();
  e.set(Pipe::V, Pipe::MTE2, s);
  e.set(Pipe::V, Pipe::MTE3, s);
  e.wait(Pipe::V, Pipe::MTE3, s);
  e.copy(Pipe::MTE3, out, {c0, c0}, output, {batch, k0, r0}, tc, tr);
  e.set(Pipe::MTE3, Pipe::V, s);
  builder.setInsertionPointAfter(dealt.loop);
  for (Value s : {c0, c1}) {
    e.wait(Pipe::V, Pipe::MTE2, s);
    e.wait(Pipe::MTE3, Pipe::V, s);
  }
  return kernel;
}

KernelOp mlir::attnedit::ascend::buildColumnSumKernel(OpBuilder &builder, Location loc,
                                                      llvm::StringRef name,
                                                      const ColumnSumProblem &p,
                                                      const TargetDescription &t) {
  OpBuilder::InsertionGuard guard(builder);
  int64_t rc = transposeTileEdge(p.rows), w = transposeTileEdge(p.cols);
  int64_t chunks = ceilDiv(p.rows, rc), colTiles = ceilDiv(p.cols, w);
  int64_t tasks = p.batch * colTiles;
  auto [kernel, entry, blk] =
      startVectorKernel(builder, loc, name, t, std::min(tasks, vectorCores(t)));
  kernel->setAttr("ascend.transpose_tile", builder.getDenseI64ArrayAttr({rc, w}));
  Value input = gmArgument(entry, {p.batch, p.rows, p.cols}, loc);
  Value output = gmArgument(entry, {p.batch, p.cols}, loc);
  builder.setInsertionPointToEnd(entry);
  KernelEmitter e(builder, loc, t);
  Value inBuf = e.alloc(rc, w, 2), flipped = e.alloc(w, rc), part = e.alloc(w, 1),
        acc = e.alloc(w, 1), row = e.alloc(1, w);
  Value c0 = e.cst(0), c1 = e.cst(1), c2 = e.cst(2);
  for (Value s : {c0, c1})
    e.set(Pipe::V, Pipe::MTE2, s);
  e.set(Pipe::MTE3, Pipe::V, c2);
  TileLoop dealt = enterTileLoop(builder, loc, blk, tasks, kernel.getBlockDim());
  Value batch = e.div(dealt.tile, e.cst(colTiles));
  Value k0 = e.mul(e.rem(dealt.tile, e.cst(colTiles)), e.cst(w));
  builder.create<VDupOp>(loc, builder.getF64FloatAttr(0.0), acc);
  {
    OpBuilder::InsertionGuard inner(builder);
    auto each = builder.create<scf::ForOp>(loc, c0, e.cst(chunks), c1);
    builder.setInsertionPointToStart(each.getBody());
    Value j = each.getInductionVar();
    // The chunk counter over this block's tasks picks the slot.
    Value s = e.rem(e.add(e.mul(dealt.iter, e.cst(chunks)), j), c2);
    Value in = e.slot(inBuf, s);
    e.wait(Pipe::V, Pipe::MTE2, s);
    e.copy(Pipe::MTE2, input, {batch, e.mul(j, e.cst(rc)), k0}, in, {c0, c0}, rc, w);
    e.set(Pipe::MTE2, Pipe::V, s);
    e.wait(Pipe::MTE2, Pipe::V, s);
    builder.create<VTransposeOp>(loc, in, flipped);
    e.barrier();
    e.set(Pipe::V, Pipe::MTE2, s);
    builder.create<VReduceOp>(loc, ReduceKind::Sum, flipped, part);
    e.barrier();
    builder.create<VAddOp>(loc, acc, part, acc);
    e.barrier();
  }
  if (p.factor != 1) {
    builder.create<VMulsOp>(loc, acc, builder.getF64FloatAttr(p.factor), acc);
    e.barrier();
  }
  e.wait(Pipe::MTE3, Pipe::V, c2);
  builder.create<VTransposeOp>(loc, acc, row);
  e.barrier();
  e.set(Pipe::V, Pipe::MTE3, c2);
  e.wait(Pipe::V, Pipe::MTE3, c2);
  e.copy(Pipe::MTE3, row, {c0, c0}, output, {batch, k0}, 1, w);
  e.set(Pipe::MTE3, Pipe::V, c2);
  builder.setInsertionPointAfter(dealt.loop);
  for (Value s : {c0, c1})
    e.wait(Pipe::V, Pipe::MTE2, s);
  e.wait(Pipe::MTE3, Pipe::V, c2);
  return kernel;
}
