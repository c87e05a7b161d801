//===- MoveKernel.cpp - row moves through UB -------------------------------===//

#include "attnedit/Ascend/MoveKernel.h"
#include "TileLoop.h"
#include "attnedit/Ascend/TileLayout.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::attnedit::ascend;

int64_t mlir::attnedit::ascend::moveRowsPerTile(const MoveProblem &p, const TargetDescription &t) {
  int64_t row = tileBytes(Layout::ND, 1, p.cols, 4, false);
  int64_t budget = (t.buffer(Space::UB).bytes - t.ubReserveBytes) / (2 * row);
  // Enough tiles for every vector core, at most 64 rows (one DMA each).
  int64_t cores = vectorCores(t);
  int64_t want = std::min<int64_t>({budget, 64, std::max<int64_t>(1, p.outRows() / cores)});
  for (int64_t r = want; r >= 1; --r)
    if (p.outRows() % r == 0)
      return r;
  return 0;
}

KernelOp mlir::attnedit::ascend::buildMoveKernel(OpBuilder &builder, Location loc,
                                                 llvm::StringRef name, const MoveProblem &p,
                                                 int64_t r, const TargetDescription &t) {
  MLIRContext *ctx = builder.getContext();
  Builder b(ctx);
  Type f32 = builder.getF32Type();
  int64_t tiles = p.outRows() / r;
  CoreKind core = vectorCoreKind(t);
  int64_t cores = vectorCores(t);
  int64_t blockDim = std::min(tiles, cores);
  bool transpose = p.kind == MoveProblem::Kind::Transpose;

  auto kernel = builder.create<KernelOp>(loc, name, t.name, blockDim, core, DictionaryAttr(),
                                         DenseI64ArrayAttr());
  kernel->setAttr("ascend.move", b.getStringAttr(transpose ? "transpose" : "repeat_kv"));
  kernel->setAttr("ascend.tile_rows", b.getI64IntegerAttr(r));
  Block *entry = new Block();
  kernel.getBody().push_back(entry);
  Value blk = entry->addArgument(builder.getIndexType(), loc);
  Value input = entry->addArgument(BufType::get(ctx, Space::GM, {p.inRows(), p.cols}, f32, Layout::ND), loc);
  Value output = entry->addArgument(BufType::get(ctx, Space::GM, {p.outRows(), p.cols}, f32, Layout::ND), loc);

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  auto cst = [&](int64_t v) -> Value { return builder.create<arith::ConstantIndexOp>(loc, v); };
  Value buf = builder.create<AllocOp>(loc, BufType::get(ctx, Space::UB, {r, p.cols}, f32, Layout::ND),
                                      0, 2);
  Value c0 = cst(0), c1 = cst(1), c2 = cst(2);
  auto set = [&](Pipe s, Pipe d, Value ev) { builder.create<SetFlagOp>(loc, s, d, ev); };
  auto wait = [&](Pipe s, Pipe d, Value ev) { builder.create<WaitFlagOp>(loc, s, d, ev); };
  for (Value s : {c0, c1})
    set(Pipe::MTE3, Pipe::MTE2, s);

  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  scf::ForOp loop = dealt.loop;
  Value tile = dealt.tile, iter = dealt.iter;
  Value s = builder.create<arith::RemUIOp>(loc, iter, c2);
  Value slot = builder.create<SlotOp>(loc, buf.getType(), buf, s);
  Value o0 = builder.create<arith::MulIOp>(loc, tile, cst(r));
  wait(Pipe::MTE3, Pipe::MTE2, s);
  {
    OpBuilder::InsertionGuard rows(builder);
    auto each = builder.create<scf::ForOp>(loc, c0, cst(r), c1);
    builder.setInsertionPointToStart(each.getBody());
    Value k = each.getInductionVar();
    Value o = builder.create<arith::AddIOp>(loc, o0, k);
    Value src;
    if (transpose) {
      // out row (j, i) of [b, a] = in row (i, j) of [a, b].
      Value j = builder.create<arith::DivUIOp>(loc, o, cst(p.a));
      Value i = builder.create<arith::RemUIOp>(loc, o, cst(p.a));
      src = builder.create<arith::AddIOp>(loc, builder.create<arith::MulIOp>(loc, i, cst(p.b)), j);
    } else {
      // out head h reads KV head h / repeats (kernels::repeatKv).
      Value h = builder.create<arith::DivUIOp>(loc, o, cst(p.b));
      Value tok = builder.create<arith::RemUIOp>(loc, o, cst(p.b));
      Value kv = builder.create<arith::DivUIOp>(loc, h, cst(p.repeats));
      src = builder.create<arith::AddIOp>(loc, builder.create<arith::MulIOp>(loc, kv, cst(p.b)), tok);
    }
    builder.create<CopyOp>(loc, Pipe::MTE2, input, ValueRange{src, c0}, slot, ValueRange{k, c0},
                           ArrayRef<int64_t>{1, p.cols}, false);
  }
  set(Pipe::MTE2, Pipe::MTE3, s);
  wait(Pipe::MTE2, Pipe::MTE3, s);
  builder.create<CopyOp>(loc, Pipe::MTE3, slot, ValueRange{c0, c0}, output, ValueRange{o0, c0},
                         ArrayRef<int64_t>{r, p.cols}, false);
  set(Pipe::MTE3, Pipe::MTE2, s);

  builder.setInsertionPointAfter(loop);
  for (Value s : {c0, c1})
    wait(Pipe::MTE3, Pipe::MTE2, s);
  return kernel;
}

int64_t mlir::attnedit::ascend::maskRowsPerTile(const MaskProblem &p, const TargetDescription &t) {
  int64_t row = tileBytes(Layout::ND, 1, p.tk, 4, false);
  int64_t budget = (t.buffer(Space::UB).bytes - t.ubReserveBytes) / row - 1;
  for (int64_t r = std::min<int64_t>({budget / 2, 64, p.tq}); r >= 1; --r)
    if (p.tq % r == 0)
      return r;
  return 0;
}

KernelOp mlir::attnedit::ascend::buildMaskKernel(OpBuilder &builder, Location loc,
                                                 llvm::StringRef name, const MaskProblem &p,
                                                 int64_t r, const TargetDescription &t) {
  MLIRContext *ctx = builder.getContext();
  Builder b(ctx);
  Type f32 = builder.getF32Type();
  int64_t sub = p.tq / r;
  CoreKind core = vectorCoreKind(t);
  int64_t cores = vectorCores(t);
  int64_t blockDim = std::min(p.batch, cores);

  auto kernel = builder.create<KernelOp>(loc, name, t.name, blockDim, core, DictionaryAttr(),
                                         DenseI64ArrayAttr());
  kernel->setAttr("ascend.move", b.getStringAttr("causal_mask"));
  kernel->setAttr("ascend.tile_rows", b.getI64IntegerAttr(r));
  Block *entry = new Block();
  kernel.getBody().push_back(entry);
  Value blk = entry->addArgument(builder.getIndexType(), loc);
  auto gmType = BufType::get(ctx, Space::GM, {p.batch * p.tq, p.tk}, f32, Layout::ND);
  Value input = entry->addArgument(gmType, loc), output = entry->addArgument(gmType, loc);

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  auto cst = [&](int64_t v) -> Value { return builder.create<arith::ConstantIndexOp>(loc, v); };
  auto rowType = BufType::get(ctx, Space::UB, {1, p.tk}, f32, Layout::ND);
  Value fill = builder.create<AllocOp>(loc, rowType, 0, 1);
  Value buf = builder.create<AllocOp>(loc, BufType::get(ctx, Space::UB, {r, p.tk}, f32, Layout::ND),
                                      roundUp(rowType.getBytes(), t.buffer(Space::UB).align), 2);
  Value c0 = cst(0), c1 = cst(1), c2 = cst(2);
  auto set = [&](Pipe s, Pipe d, Value ev) { builder.create<SetFlagOp>(loc, s, d, ev); };
  auto wait = [&](Pipe s, Pipe d, Value ev) { builder.create<WaitFlagOp>(loc, s, d, ev); };
  builder.create<VDupOp>(loc, b.getF64FloatAttr(p.zeroFill ? 0.0 : -3.0e38), fill);
  set(Pipe::V, Pipe::MTE3, c2);
  wait(Pipe::V, Pipe::MTE3, c2);
  for (Value s : {c0, c1})
    set(Pipe::MTE3, Pipe::MTE2, s);

  TileLoop dealt = enterTileLoop(builder, loc, blk, p.batch, blockDim);
  scf::ForOp loop = dealt.loop;
  Value item = dealt.tile, iter = dealt.iter;
  Value base = builder.create<arith::MulIOp>(loc, item, cst(p.tq));
  for (int64_t q = 0; q < sub; ++q) {
    Value g = builder.create<arith::AddIOp>(loc, builder.create<arith::MulIOp>(loc, iter, cst(sub)),
                                            cst(q));
    Value s = builder.create<arith::RemUIOp>(loc, g, c2);
    Value slot = builder.create<SlotOp>(loc, buf.getType(), buf, s);
    Value row0 = builder.create<arith::AddIOp>(loc, base, cst(q * r));
    wait(Pipe::MTE3, Pipe::MTE2, s);
    builder.create<CopyOp>(loc, Pipe::MTE2, input, ValueRange{row0, c0}, slot, ValueRange{c0, c0},
                           ArrayRef<int64_t>{r, p.tk}, false);
    set(Pipe::MTE2, Pipe::MTE3, s);
    wait(Pipe::MTE2, Pipe::MTE3, s);
    builder.create<CopyOp>(loc, Pipe::MTE3, slot, ValueRange{c0, c0}, output, ValueRange{row0, c0},
                           ArrayRef<int64_t>{r, p.tk}, false);
    // The masked runs overwrite what the row copy wrote: same pipe (S55).
    builder.create<BarrierOp>(loc, Pipe::MTE3);
    for (int64_t k = 0; k < r; ++k) {
      int64_t pos = p.tk - p.tq + q * r + k;
      Value row = builder.create<arith::AddIOp>(loc, row0, cst(k));
      if (int64_t tail = p.tk - pos - 1; tail > 0)
        builder.create<CopyOp>(loc, Pipe::MTE3, fill, ValueRange{c0, c0}, output,
                               ValueRange{row, cst(pos + 1)}, ArrayRef<int64_t>{1, tail}, false);
      if (int64_t head = p.window > 0 ? pos - p.window + 1 : 0; head > 0)
        builder.create<CopyOp>(loc, Pipe::MTE3, fill, ValueRange{c0, c0}, output,
                               ValueRange{row, c0}, ArrayRef<int64_t>{1, head}, false);
    }
    set(Pipe::MTE3, Pipe::MTE2, s);
  }
  builder.setInsertionPointAfter(loop);
  for (Value s : {c0, c1})
    wait(Pipe::MTE3, Pipe::MTE2, s);
  return kernel;
}

int64_t mlir::attnedit::ascend::columnRowsPerTile(const ColumnProblem &p,
                                                  const TargetDescription &t) {
  int64_t perRow = 0;
  for (const ColumnPiece &c : p.pieces)
    perRow += 2 * tileBytes(Layout::ND, 1, c.width, 4, false);
  int64_t budget = (t.buffer(Space::UB).bytes - t.ubReserveBytes) / std::max<int64_t>(1, perRow);
  int64_t cores = vectorCores(t);
  int64_t want = std::min<int64_t>({budget, 64, std::max<int64_t>(1, p.rows / cores)});
  for (int64_t r = want; r >= 1; --r)
    if (p.rows % r == 0)
      return r;
  return 0;
}

KernelOp mlir::attnedit::ascend::buildColumnKernel(OpBuilder &builder, Location loc,
                                                   llvm::StringRef name, const ColumnProblem &p,
                                                   int64_t r, const TargetDescription &t) {
  MLIRContext *ctx = builder.getContext();
  Builder b(ctx);
  Type f32 = builder.getF32Type();
  int64_t tiles = p.rows / r;
  CoreKind core = vectorCoreKind(t);
  int64_t cores = vectorCores(t);
  int64_t blockDim = std::min(tiles, cores);

  auto kernel = builder.create<KernelOp>(loc, name, t.name, blockDim, core, DictionaryAttr(),
                                         DenseI64ArrayAttr());
  kernel->setAttr("ascend.move", b.getStringAttr(p.pieces.size() == 1 ? "slice" : "concat"));
  kernel->setAttr("ascend.tile_rows", b.getI64IntegerAttr(r));
  Block *entry = new Block();
  kernel.getBody().push_back(entry);
  Value blk = entry->addArgument(builder.getIndexType(), loc);
  SmallVector<Value> inputs;
  for (const ColumnPiece &c : p.pieces)
    inputs.push_back(entry->addArgument(
        BufType::get(ctx, Space::GM, {p.rows, c.inCols}, f32, Layout::ND), loc));
  Value output = entry->addArgument(BufType::get(ctx, Space::GM, {p.rows, p.outCols}, f32, Layout::ND), loc);

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  auto cst = [&](int64_t v) -> Value { return builder.create<arith::ConstantIndexOp>(loc, v); };
  SmallVector<Value> bufs;
  int64_t offset = 0;
  for (const ColumnPiece &c : p.pieces) {
    auto type = BufType::get(ctx, Space::UB, {r, c.width}, f32, Layout::ND);
    bufs.push_back(builder.create<AllocOp>(loc, type, offset, 2));
    offset += roundUp(type.getBytes() * 2, t.buffer(Space::UB).align);
  }
  Value c0 = cst(0), c2 = cst(2);
  auto set = [&](Pipe s, Pipe d, Value ev) { builder.create<SetFlagOp>(loc, s, d, ev); };
  auto wait = [&](Pipe s, Pipe d, Value ev) { builder.create<WaitFlagOp>(loc, s, d, ev); };
  Value c1 = cst(1);
  for (Value s : {c0, c1})
    set(Pipe::MTE3, Pipe::MTE2, s);
  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  scf::ForOp loop = dealt.loop;
  Value tile = dealt.tile, iter = dealt.iter;
  Value s = builder.create<arith::RemUIOp>(loc, iter, c2);
  Value row0 = builder.create<arith::MulIOp>(loc, tile, cst(r));
  SmallVector<Value> slots;
  for (Value buf : bufs)
    slots.push_back(builder.create<SlotOp>(loc, buf.getType(), buf, s));
  wait(Pipe::MTE3, Pipe::MTE2, s);
  for (auto [k, c] : llvm::enumerate(p.pieces))
    builder.create<CopyOp>(loc, Pipe::MTE2, inputs[k], ValueRange{row0, cst(c.srcCol)}, slots[k],
                           ValueRange{c0, c0}, ArrayRef<int64_t>{r, c.width}, false);
  set(Pipe::MTE2, Pipe::MTE3, s);
  wait(Pipe::MTE2, Pipe::MTE3, s);
  for (auto [k, c] : llvm::enumerate(p.pieces))
    builder.create<CopyOp>(loc, Pipe::MTE3, slots[k], ValueRange{c0, c0}, output,
                           ValueRange{row0, cst(c.dstCol)}, ArrayRef<int64_t>{r, c.width}, false);
  set(Pipe::MTE3, Pipe::MTE2, s);
  builder.setInsertionPointAfter(loop);
  for (Value s : {c0, c1})
    wait(Pipe::MTE3, Pipe::MTE2, s);
  return kernel;
}
