//===- MoveKernel.cpp - row moves through UB -------------------------------===//

#include "attnedit/Ascend/MoveKernel.h"
#include "TileLoop.h"
#include "attnedit/Ascend/TileLayout.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {

/// The largest divisor of `n` at most `limit` that `fits` (when given), 0
/// if none: the kernels have no tail tiles.
int64_t largestDivisor(int64_t n, int64_t limit,
                       llvm::function_ref<bool(int64_t)> fits = nullptr) {
  for (int64_t r = limit; r >= 1; --r)
    if (n % r == 0 && (!fits || fits(r)))
      return r;
  return 0;
}

/// Rows per tile of `rows` rows dealt to the vector cores, `perRow` UB bytes
/// each: enough tiles for every vector core, at most 64 rows (one DMA each).
int64_t dealtRowsPerTile(int64_t rows, int64_t perRow, const TargetDescription &t) {
  int64_t budget = t.usableBytes(Space::UB) / perRow;
  return largestDivisor(
      rows, std::min<int64_t>({budget, 64, std::max<int64_t>(1, rows / vectorCores(t))}));
}

/// A move kernel of `blockDim` blocks, tagged with what it moves and its
/// tile rows.
VectorKernelStart startMoveKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                                  const TargetDescription &t, int64_t blockDim,
                                  llvm::StringRef move, int64_t tileRows) {
  VectorKernelStart k = startVectorKernel(builder, loc, name, t, blockDim);
  k.kernel->setAttr("ascend.move", builder.getStringAttr(move));
  k.kernel->setAttr("ascend.tile_rows", builder.getI64IntegerAttr(tileRows));
  return k;
}

/// The two UB slots' MTE3 -> MTE2 flags (the store out of the slot is done):
/// set before the tile loop so both start free, waited for after it so none
/// is pending at the end (S31).
void slotsFree(KernelEmitter &e, bool isSet, Value c0, Value c1) {
  for (Value s : {c0, c1})
    e.flag(isSet, Pipe::MTE3, Pipe::MTE2, s);
}

} // namespace

int64_t mlir::attnedit::ascend::moveRowsPerTile(const MoveProblem &p, const TargetDescription &t) {
  return dealtRowsPerTile(p.outRows(), 2 * tileBytes(Layout::ND, 1, p.cols, 4, false), t);
}

KernelOp mlir::attnedit::ascend::buildMoveKernel(OpBuilder &builder, Location loc,
                                                 llvm::StringRef name, const MoveProblem &p,
                                                 int64_t r, const TargetDescription &t) {
  int64_t tiles = p.outRows() / r;
  int64_t blockDim = std::min(tiles, vectorCores(t));
  bool transpose = p.kind == MoveProblem::Kind::Transpose;

  auto [kernel, entry, blk] = startMoveKernel(builder, loc, name, t, blockDim,
                                              transpose ? "transpose" : "repeat_kv", r);
  Value input = gmArgument(entry, {p.inRows(), p.cols}, loc);
  Value output = gmArgument(entry, {p.outRows(), p.cols}, loc);

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  KernelEmitter e(builder, loc, t);
  Value buf = e.alloc(r, p.cols, 2);
  Value c0 = e.cst(0), c1 = e.cst(1), c2 = e.cst(2);
  slotsFree(e, true, c0, c1);

  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  Value s = e.rem(dealt.iter, c2);
  Value slot = e.slot(buf, s);
  Value o0 = e.mul(dealt.tile, e.cst(r));
  e.wait(Pipe::MTE3, Pipe::MTE2, s);
  {
    OpBuilder::InsertionGuard rows(builder);
    auto each = builder.create<scf::ForOp>(loc, c0, e.cst(r), c1);
    builder.setInsertionPointToStart(each.getBody());
    Value k = each.getInductionVar();
    Value o = e.add(o0, k);
    Value src;
    if (transpose) {
      // out row (j, i) of [b, a] = in row (i, j) of [a, b].
      Value j = e.div(o, e.cst(p.a));
      Value i = e.rem(o, e.cst(p.a));
      src = e.add(e.mul(i, e.cst(p.b)), j);
    } else {
      // out head h reads KV head h / repeats (kernels::repeatKv).
      Value h = e.div(o, e.cst(p.b));
      Value tok = e.rem(o, e.cst(p.b));
      Value kv = e.div(h, e.cst(p.repeats));
      src = e.add(e.mul(kv, e.cst(p.b)), tok);
    }
    e.copy(Pipe::MTE2, input, {src, c0}, slot, {k, c0}, 1, p.cols);
  }
  e.set(Pipe::MTE2, Pipe::MTE3, s);
  e.wait(Pipe::MTE2, Pipe::MTE3, s);
  e.copy(Pipe::MTE3, slot, {c0, c0}, output, {o0, c0}, r, p.cols);
  e.set(Pipe::MTE3, Pipe::MTE2, s);

  builder.setInsertionPointAfter(dealt.loop);
  slotsFree(e, false, c0, c1);
  return kernel;
}

int64_t mlir::attnedit::ascend::indexedMoveRowsPerTile(const IndexedMoveProblem &p,
                                                       const TargetDescription &t) {
  int64_t align = t.buffer(Space::UB).align;
  int64_t row = tileBytes(Layout::ND, 1, p.cols, 4, false);
  return largestDivisor(
      p.rows, std::min<int64_t>({64, p.rows, std::max<int64_t>(1, p.rows / vectorCores(t))}),
      [&](int64_t r) {
        // Two slots of r rows and two of r ids.
        int64_t bytes = 2 * roundUp(r * row, align) +
                        2 * roundUp(tileBytes(Layout::ND, r, 1, 4, false), align);
        return bytes <= t.usableBytes(Space::UB);
      });
}

KernelOp mlir::attnedit::ascend::buildIndexedMoveKernel(OpBuilder &builder, Location loc,
                                                        llvm::StringRef name,
                                                        const IndexedMoveProblem &p, int64_t r,
                                                        const TargetDescription &t) {
  int64_t tiles = p.rows / r;
  int64_t blockDim = std::min(tiles, vectorCores(t));
  bool gather = p.kind == IndexedMoveProblem::Kind::Gather;

  auto [kernel, entry, blk] =
      startMoveKernel(builder, loc, name, t, blockDim, gather ? "gather" : "scatter", r);
  Value ids = gmArgument(entry, {p.rows, 1}, loc);
  Value input = gmArgument(entry, {gather ? p.tableRows : p.rows, p.cols}, loc);
  Value output = gmArgument(entry, {gather ? p.rows : p.tableRows, p.cols}, loc);

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  KernelEmitter e(builder, loc, t);
  Value buf = e.alloc(r, p.cols, 2), idBuf = e.alloc(r, 1, 2);
  Value c0 = e.cst(0), c1 = e.cst(1), c2 = e.cst(2);
  slotsFree(e, true, c0, c1);

  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  Value s = e.rem(dealt.iter, c2);
  Value slot = e.slot(buf, s), idSlot = e.slot(idBuf, s);
  Value o0 = e.mul(dealt.tile, e.cst(r));
  // One row copy per id, its GM row offset moved by the id.
  auto eachRow = [&](Pipe pipe, Value src, Value dst) {
    OpBuilder::InsertionGuard rows(builder);
    auto each = builder.create<scf::ForOp>(loc, c0, e.cst(r), c1);
    builder.setInsertionPointToStart(each.getBody());
    Value k = each.getInductionVar();
    bool srcGm = pipe == Pipe::MTE2;
    builder.create<CopyOp>(loc, pipe, src, ValueRange{srcGm ? c0 : k, c0}, dst,
                           ValueRange{srcGm ? k : c0, c0}, ArrayRef<int64_t>{1, p.cols},
                           /*transpose=*/false, idSlot, ValueRange{k, c0},
                           builder.getI64IntegerAttr(0));
  };
  e.wait(Pipe::MTE3, Pipe::MTE2, s);
  e.copy(Pipe::MTE2, ids, {o0, c0}, idSlot, {c0, c0}, r, 1);
  if (gather) {
    // S55: the row copies read the ids MTE2 just wrote (the scalar unit's
    // GetValue after its MTE2 -> S flag on the device).
    e.barrier(Pipe::MTE2);
    eachRow(Pipe::MTE2, input, slot);
    e.set(Pipe::MTE2, Pipe::MTE3, s);
    e.wait(Pipe::MTE2, Pipe::MTE3, s);
    e.copy(Pipe::MTE3, slot, {c0, c0}, output, {o0, c0}, r, p.cols);
  } else {
    e.copy(Pipe::MTE2, input, {o0, c0}, slot, {c0, c0}, r, p.cols);
    e.set(Pipe::MTE2, Pipe::MTE3, s);
    e.wait(Pipe::MTE2, Pipe::MTE3, s);
    eachRow(Pipe::MTE3, slot, output);
  }
  e.set(Pipe::MTE3, Pipe::MTE2, s);

  builder.setInsertionPointAfter(dealt.loop);
  slotsFree(e, false, c0, c1);
  return kernel;
}

int64_t mlir::attnedit::ascend::maskRowsPerTile(const MaskProblem &p, const TargetDescription &t) {
  int64_t row = tileBytes(Layout::ND, 1, p.tk, 4, false);
  int64_t budget = t.usableBytes(Space::UB) / row - 1;
  return largestDivisor(p.tq, std::min<int64_t>({budget / 2, 64, p.tq}));
}

KernelOp mlir::attnedit::ascend::buildMaskKernel(OpBuilder &builder, Location loc,
                                                 llvm::StringRef name, const MaskProblem &p,
                                                 int64_t r, const TargetDescription &t) {
  int64_t sub = p.tq / r;
  int64_t blockDim = std::min(p.batch, vectorCores(t));

  auto [kernel, entry, blk] = startMoveKernel(builder, loc, name, t, blockDim, "causal_mask", r);
  Value input = gmArgument(entry, {p.batch * p.tq, p.tk}, loc);
  Value output = gmArgument(entry, {p.batch * p.tq, p.tk}, loc);

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  KernelEmitter e(builder, loc, t);
  Value fill = e.alloc(1, p.tk), buf = e.alloc(r, p.tk, 2);
  Value c0 = e.cst(0), c1 = e.cst(1), c2 = e.cst(2);
  builder.create<VDupOp>(loc, builder.getF64FloatAttr(p.zeroFill ? 0.0 : -3.0e38), fill);
  e.set(Pipe::V, Pipe::MTE3, c2);
  e.wait(Pipe::V, Pipe::MTE3, c2);
  slotsFree(e, true, c0, c1);

  TileLoop dealt = enterTileLoop(builder, loc, blk, p.batch, blockDim);
  Value base = e.mul(dealt.tile, e.cst(p.tq));
  for (int64_t q = 0; q < sub; ++q) {
    Value s = e.rem(e.add(e.mul(dealt.iter, e.cst(sub)), e.cst(q)), c2);
    Value slot = e.slot(buf, s);
    Value row0 = e.add(base, e.cst(q * r));
    e.wait(Pipe::MTE3, Pipe::MTE2, s);
    e.copy(Pipe::MTE2, input, {row0, c0}, slot, {c0, c0}, r, p.tk);
    e.set(Pipe::MTE2, Pipe::MTE3, s);
    e.wait(Pipe::MTE2, Pipe::MTE3, s);
    e.copy(Pipe::MTE3, slot, {c0, c0}, output, {row0, c0}, r, p.tk);
    // The masked runs overwrite what the row copy wrote: same pipe (S55).
    e.barrier(Pipe::MTE3);
    for (int64_t k = 0; k < r; ++k) {
      int64_t pos = p.tk - p.tq + q * r + k;
      Value row = e.add(row0, e.cst(k));
      if (int64_t tail = p.tk - pos - 1; tail > 0)
        e.copy(Pipe::MTE3, fill, {c0, c0}, output, {row, e.cst(pos + 1)}, 1, tail);
      if (int64_t head = p.window > 0 ? pos - p.window + 1 : 0; head > 0)
        e.copy(Pipe::MTE3, fill, {c0, c0}, output, {row, c0}, 1, head);
    }
    e.set(Pipe::MTE3, Pipe::MTE2, s);
  }
  builder.setInsertionPointAfter(dealt.loop);
  slotsFree(e, false, c0, c1);
  return kernel;
}

int64_t mlir::attnedit::ascend::columnRowsPerTile(const ColumnProblem &p,
                                                  const TargetDescription &t) {
  int64_t perRow = 0;
  for (const ColumnPiece &c : p.pieces)
    perRow += 2 * tileBytes(Layout::ND, 1, c.width, 4, false);
  return dealtRowsPerTile(p.rows, std::max<int64_t>(1, perRow), t);
}

KernelOp mlir::attnedit::ascend::buildColumnKernel(OpBuilder &builder, Location loc,
                                                   llvm::StringRef name, const ColumnProblem &p,
                                                   int64_t r, const TargetDescription &t) {
  int64_t tiles = p.rows / r;
  int64_t blockDim = std::min(tiles, vectorCores(t));

  auto [kernel, entry, blk] = startMoveKernel(builder, loc, name, t, blockDim,
                                              p.pieces.size() == 1 ? "slice" : "concat", r);
  SmallVector<Value> inputs;
  for (const ColumnPiece &c : p.pieces)
    inputs.push_back(gmArgument(entry, {p.rows, c.inCols}, loc));
  Value output = gmArgument(entry, {p.rows, p.outCols}, loc);

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  KernelEmitter e(builder, loc, t);
  SmallVector<Value> bufs;
  for (const ColumnPiece &c : p.pieces)
    bufs.push_back(e.alloc(r, c.width, 2));
  Value c0 = e.cst(0), c1 = e.cst(1), c2 = e.cst(2);
  slotsFree(e, true, c0, c1);
  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  Value s = e.rem(dealt.iter, c2);
  Value row0 = e.mul(dealt.tile, e.cst(r));
  SmallVector<Value> slots;
  for (Value buf : bufs)
    slots.push_back(e.slot(buf, s));
  e.wait(Pipe::MTE3, Pipe::MTE2, s);
  for (auto [k, c] : llvm::enumerate(p.pieces))
    e.copy(Pipe::MTE2, inputs[k], {row0, e.cst(c.srcCol)}, slots[k], {c0, c0}, r, c.width);
  e.set(Pipe::MTE2, Pipe::MTE3, s);
  e.wait(Pipe::MTE2, Pipe::MTE3, s);
  for (auto [k, c] : llvm::enumerate(p.pieces))
    e.copy(Pipe::MTE3, slots[k], {c0, c0}, output, {row0, e.cst(c.dstCol)}, r, c.width);
  e.set(Pipe::MTE3, Pipe::MTE2, s);
  builder.setInsertionPointAfter(dealt.loop);
  slotsFree(e, false, c0, c1);
  return kernel;
}
