//===- VectorKernel.cpp - double-buffered row kernels on the Vector unit ---===//
//
// Rows are dealt round-robin in tiles of `tileRows` to the vector cores.
// Per tile: CopyIn (MTE2, GM -> UB slot), Compute (V, whole-tile ops with a
// barrier between dependent ones, S55), CopyOut (MTE3, UB slot -> GM). Slot
// i % 2 of each stream is guarded by a flag pair, pre-armed at kernel start
// and drained at its end, so tile i+1 loads while tile i computes and tile
// i-1 stores.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/VectorKernel.h"
#include "TileLoop.h"
#include "attnedit/Ascend/TileLayout.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::attnedit::ascend;

llvm::StringRef mlir::attnedit::ascend::rowOpName(RowOp op) {
  switch (op) {
  case RowOp::Add:
    return "add";
  case RowOp::Mul:
    return "mul";
  case RowOp::Silu:
    return "silu";
  case RowOp::SiluMul:
    return "silu_mul";
  case RowOp::RmsNorm:
    return "rms_norm";
  case RowOp::Softmax:
    return "softmax";
  case RowOp::Rope:
    return "rope";
  case RowOp::Scale:
    return "scale";
  case RowOp::BiasAdd:
    return "bias_add";
  case RowOp::Sigmoid:
    return "sigmoid";
  }
  return "?";
}

int64_t mlir::attnedit::ascend::rowInputs(RowOp op) {
  return op == RowOp::Add || op == RowOp::Mul || op == RowOp::SiluMul ? 2 : 1;
}

namespace {
/// Full-width [r, cols] scratch tiles and [r, 1] column tiles of each op.
void scratchOf(RowOp op, int64_t &tiles, int64_t &columns) {
  tiles = columns = 0;
  switch (op) {
  case RowOp::Silu:
  case RowOp::SiluMul:
  case RowOp::Sigmoid:
    tiles = 1;
    return;
  case RowOp::RmsNorm:
    tiles = 2; // x², then the broadcast 1/rms; plus the replicated weight
    columns = 1;
    return;
  case RowOp::Softmax:
    tiles = 1;
    columns = 1;
    return;
  default:
    return;
  }
}
} // namespace

int64_t mlir::attnedit::ascend::rowsPerTile(const RowProblem &p, const TargetDescription &t) {
  int64_t tiles, columns;
  scratchOf(p.op, tiles, columns);
  if (p.chunk)
    columns = 3; // running max, running sum, the chunk's statistic
  if (p.op == RowOp::Rope && p.interleaved) {
    // Per row: the position and 10 head-wide tiles (frequencies, angle, cos,
    // sin, product, swapped; 2 slots each of input and output); the index
    // row once.
    int64_t head = tileBytes(Layout::ND, 1, p.cols / p.heads, 4, false);
    int64_t perRow = tileBytes(Layout::ND, 1, 1, 4, false) + 10 * head;
    int64_t cores = vectorCores(t);
    int64_t spread = std::max<int64_t>(1, (p.rows + cores - 1) / cores);
    return std::min<int64_t>(
        {(t.buffer(Space::UB).bytes - t.ubReserveBytes - head) / perRow, 64, spread});
  }
  if (p.op == RowOp::Rope) {
    // Per row: the position, 5 half-head tiles (frequencies, angle, cos,
    // sin, scratch) and 2 slots each of the two input and output halves.
    int64_t half = tileBytes(Layout::ND, 1, p.cols / p.heads / 2, 4, false);
    int64_t perRow = tileBytes(Layout::ND, 1, 1, 4, false) + 13 * half;
    int64_t cores = vectorCores(t);
    int64_t spread = std::max<int64_t>(1, (p.rows + cores - 1) / cores);
    return std::min<int64_t>({(t.buffer(Space::UB).bytes - t.ubReserveBytes) / perRow, 64, spread});
  }
  int64_t row = tileBytes(Layout::ND, 1, p.chunk ? p.chunk : p.cols, 4, false);
  int64_t col = tileBytes(Layout::ND, 1, 1, 4, false);
  int64_t weight = p.op == RowOp::RmsNorm || p.op == RowOp::BiasAdd ? 1 : 0;
  int64_t perRow = 2 * (rowInputs(p.op) + 1) * row + (tiles + weight) * row + columns * col;
  int64_t budget = t.buffer(Space::UB).bytes - t.ubReserveBytes;
  // Enough tiles for every vector core; beyond 64 rows a tile only
  // lengthens the pipeline's fill and drain.
  int64_t cores = vectorCores(t);
  int64_t spread = std::max<int64_t>(1, (p.rows + cores - 1) / cores);
  return std::min<int64_t>({budget / perRow, 64, spread});
}

namespace {
/// Softmax over rows longer than UB holds (research §9.3's vector tile is
/// 8 x 1024 for the same reason): per tile of rows, three passes over
/// column chunks - running row max, running sum of exp(x - max), then
/// exp(x - max) / sum written out - each chunk double-buffered in UB.
void buildChunkedSoftmax(OpBuilder &builder, Location loc, const RowProblem &p, int64_t r,
                         const TargetDescription &t, Value blk, Value input, Value output,
                         int64_t blockDim) {
  MLIRContext *ctx = builder.getContext();
  Builder b(ctx);
  Type f32 = builder.getF32Type();
  int64_t w = p.chunk, chunks = p.cols / w, tiles = (p.rows + r - 1) / r;
  auto cst = [&](int64_t v) -> Value { return builder.create<arith::ConstantIndexOp>(loc, v); };
  auto tileType = BufType::get(ctx, Space::UB, {r, w}, f32, Layout::ND);
  auto colType = BufType::get(ctx, Space::UB, {r, 1}, f32, Layout::ND);
  int64_t offset = 0;
  auto alloc = [&](BufType type, int64_t slots) -> Value {
    Value v = builder.create<AllocOp>(loc, type, offset, slots);
    offset += roundUp(type.getBytes() * slots, t.buffer(Space::UB).align);
    return v;
  };
  Value inBuf = alloc(tileType, 2), outBuf = alloc(tileType, 2), e = alloc(tileType, 1);
  Value m = alloc(colType, 1), sum = alloc(colType, 1), stat = alloc(colType, 1);
  Value c0 = cst(0), c1 = cst(1), c2 = cst(2);
  auto set = [&](Pipe s, Pipe d, Value ev) { builder.create<SetFlagOp>(loc, s, d, ev); };
  auto wait = [&](Pipe s, Pipe d, Value ev) { builder.create<WaitFlagOp>(loc, s, d, ev); };
  auto barrier = [&] { builder.create<BarrierOp>(loc, Pipe::V); };
  for (Value s : {c0, c1}) {
    set(Pipe::V, Pipe::MTE2, s);
    set(Pipe::MTE3, Pipe::V, s);
  }
  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  scf::ForOp loop = dealt.loop;
  Value tile = dealt.tile, iter = dealt.iter;
  Value row0 = builder.create<arith::MulIOp>(loc, tile, cst(r));
  // A finite stand-in for -inf keeps the IR's float attributes plain.
  builder.create<VDupOp>(loc, b.getF64FloatAttr(-3.0e38), m);
  builder.create<VDupOp>(loc, b.getF64FloatAttr(0.0), sum);
  barrier();
  for (int pass = 0; pass < 3; ++pass) {
    OpBuilder::InsertionGuard guard(builder);
    auto chunkLoop = builder.create<scf::ForOp>(loc, c0, cst(chunks), c1);
    builder.setInsertionPointToStart(chunkLoop.getBody());
    Value j = chunkLoop.getInductionVar();
    // The chunk counter over passes and tiles picks the slot.
    Value g = builder.create<arith::AddIOp>(
        loc, builder.create<arith::MulIOp>(loc, iter, cst(3 * chunks)),
        builder.create<arith::AddIOp>(loc, cst(pass * chunks), j));
    Value s = builder.create<arith::RemUIOp>(loc, g, c2);
    Value in = builder.create<SlotOp>(loc, inBuf.getType(), inBuf, s);
    Value col0 = builder.create<arith::MulIOp>(loc, j, cst(w));
    wait(Pipe::V, Pipe::MTE2, s);
    builder.create<CopyOp>(loc, Pipe::MTE2, input, ValueRange{row0, col0}, in, ValueRange{c0, c0},
                           ArrayRef<int64_t>{r, w}, false);
    set(Pipe::MTE2, Pipe::V, s);
    wait(Pipe::MTE2, Pipe::V, s);
    if (pass == 0) {
      builder.create<VReduceOp>(loc, ReduceKind::Max, in, stat);
      barrier();
      builder.create<VMaxOp>(loc, m, stat, m);
    } else {
      builder.create<VBrcbOp>(loc, m, e);
      barrier();
      builder.create<VSubOp>(loc, in, e, e);
      barrier();
      builder.create<VExpOp>(loc, e, e);
      barrier();
      if (pass == 1) {
        builder.create<VReduceOp>(loc, ReduceKind::Sum, e, stat);
        barrier();
        builder.create<VAddOp>(loc, sum, stat, sum);
      } else {
        Value out = builder.create<SlotOp>(loc, outBuf.getType(), outBuf, s);
        wait(Pipe::MTE3, Pipe::V, s);
        builder.create<VBrcbOp>(loc, sum, out);
        barrier();
        builder.create<VDivOp>(loc, e, out, out);
        barrier();
        set(Pipe::V, Pipe::MTE2, s);
        set(Pipe::V, Pipe::MTE3, s);
        wait(Pipe::V, Pipe::MTE3, s);
        builder.create<CopyOp>(loc, Pipe::MTE3, out, ValueRange{c0, c0}, output,
                               ValueRange{row0, col0}, ArrayRef<int64_t>{r, w}, false);
        set(Pipe::MTE3, Pipe::V, s);
        continue;
      }
    }
    barrier();
    set(Pipe::V, Pipe::MTE2, s);
  }
  builder.setInsertionPointAfter(loop);
  for (Value s : {c0, c1}) {
    wait(Pipe::V, Pipe::MTE2, s);
    wait(Pipe::MTE3, Pipe::V, s);
  }
}
} // namespace

namespace {
/// RoPE, rotate_half (HF): for each head, with x1, x2 its two halves and
/// a = position · inv_freq, out1 = x1·cos a - x2·sin a and out2 =
/// x2·cos a + x1·sin a. cos/sin are computed once per row tile on the
/// Vector unit and shared by the heads, whose halves stream through two UB
/// slots each.
void buildRope(OpBuilder &builder, Location loc, const RowProblem &p, int64_t r,
               const TargetDescription &t, Value blk, Value x, Value positions, Value invFreq,
               Value output, int64_t blockDim) {
  MLIRContext *ctx = builder.getContext();
  Builder b(ctx);
  Type f32 = builder.getF32Type();
  int64_t d = p.cols / p.heads, half = d / 2, tiles = (p.rows + r - 1) / r;
  auto cst = [&](int64_t v) -> Value { return builder.create<arith::ConstantIndexOp>(loc, v); };
  auto halfType = BufType::get(ctx, Space::UB, {r, half}, f32, Layout::ND);
  auto colType = BufType::get(ctx, Space::UB, {r, 1}, f32, Layout::ND);
  int64_t offset = 0;
  auto alloc = [&](BufType type, int64_t slots) -> Value {
    Value v = builder.create<AllocOp>(loc, type, offset, slots);
    offset += roundUp(type.getBytes() * slots, t.buffer(Space::UB).align);
    return v;
  };
  Value pos = alloc(colType, 1), freq = alloc(halfType, 1), angle = alloc(halfType, 1),
        cosT = alloc(halfType, 1), sinT = alloc(halfType, 1), tmp = alloc(halfType, 1);
  Value x1Buf = alloc(halfType, 2), x2Buf = alloc(halfType, 2), o1Buf = alloc(halfType, 2),
        o2Buf = alloc(halfType, 2);
  Value c0 = cst(0), c1 = cst(1), c2 = cst(2), c3 = cst(3);
  auto set = [&](Pipe s, Pipe dp, Value ev) { builder.create<SetFlagOp>(loc, s, dp, ev); };
  auto wait = [&](Pipe s, Pipe dp, Value ev) { builder.create<WaitFlagOp>(loc, s, dp, ev); };
  auto barrier = [&] { builder.create<BarrierOp>(loc, Pipe::V); };
  auto copy = [&](Pipe pipe, Value src, ValueRange so, Value dst, ValueRange dof, int64_t rows,
                  int64_t cols) {
    builder.create<CopyOp>(loc, pipe, src, so, dst, dof, ArrayRef<int64_t>{rows, cols}, false);
  };
  // The frequencies, replicated into every row once (event 2).
  for (int64_t row = 0; row < r; ++row)
    copy(Pipe::MTE2, invFreq, {c0, c0}, freq, {cst(row), c0}, 1, half);
  set(Pipe::MTE2, Pipe::V, c2);
  wait(Pipe::MTE2, Pipe::V, c2);
  // Events 0/1: the head slots; 3: the position column.
  for (Value s : {c0, c1, c3})
    set(Pipe::V, Pipe::MTE2, s);
  for (Value s : {c0, c1})
    set(Pipe::MTE3, Pipe::V, s);

  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  scf::ForOp loop = dealt.loop;
  Value tile = dealt.tile, iter = dealt.iter;
  Value row0 = builder.create<arith::MulIOp>(loc, tile, cst(r));
  wait(Pipe::V, Pipe::MTE2, c3);
  copy(Pipe::MTE2, positions, {row0, c0}, pos, {c0, c0}, r, 1);
  set(Pipe::MTE2, Pipe::V, c3);
  wait(Pipe::MTE2, Pipe::V, c3);
  builder.create<VBrcbOp>(loc, pos, angle);
  barrier();
  set(Pipe::V, Pipe::MTE2, c3);
  builder.create<VMulOp>(loc, angle, freq, angle);
  barrier();
  builder.create<VCosOp>(loc, angle, cosT);
  builder.create<VSinOp>(loc, angle, sinT);
  barrier();
  if (p.inverse) {
    builder.create<VMulsOp>(loc, sinT, b.getF64FloatAttr(-1.0), sinT);
    barrier();
  }

  auto heads = builder.create<scf::ForOp>(loc, c0, cst(p.heads), c1);
  builder.setInsertionPointToStart(heads.getBody());
  Value h = heads.getInductionVar();
  Value g = builder.create<arith::AddIOp>(loc, builder.create<arith::MulIOp>(loc, iter, cst(p.heads)), h);
  Value s = builder.create<arith::RemUIOp>(loc, g, c2);
  Value col1 = builder.create<arith::MulIOp>(loc, h, cst(d));
  Value col2 = builder.create<arith::AddIOp>(loc, col1, cst(half));
  Value x1 = builder.create<SlotOp>(loc, x1Buf.getType(), x1Buf, s);
  Value x2 = builder.create<SlotOp>(loc, x2Buf.getType(), x2Buf, s);
  Value o1 = builder.create<SlotOp>(loc, o1Buf.getType(), o1Buf, s);
  Value o2 = builder.create<SlotOp>(loc, o2Buf.getType(), o2Buf, s);
  wait(Pipe::V, Pipe::MTE2, s);
  copy(Pipe::MTE2, x, {row0, col1}, x1, {c0, c0}, r, half);
  copy(Pipe::MTE2, x, {row0, col2}, x2, {c0, c0}, r, half);
  set(Pipe::MTE2, Pipe::V, s);
  wait(Pipe::MTE2, Pipe::V, s);
  wait(Pipe::MTE3, Pipe::V, s);
  builder.create<VMulOp>(loc, x1, cosT, o1);
  builder.create<VMulOp>(loc, x2, sinT, tmp);
  barrier();
  builder.create<VSubOp>(loc, o1, tmp, o1);
  barrier();
  builder.create<VMulOp>(loc, x2, cosT, o2);
  builder.create<VMulOp>(loc, x1, sinT, tmp);
  barrier();
  builder.create<VAddOp>(loc, o2, tmp, o2);
  barrier();
  set(Pipe::V, Pipe::MTE2, s);
  set(Pipe::V, Pipe::MTE3, s);
  wait(Pipe::V, Pipe::MTE3, s);
  copy(Pipe::MTE3, o1, {c0, c0}, output, {row0, col1}, r, half);
  copy(Pipe::MTE3, o2, {c0, c0}, output, {row0, col2}, r, half);
  set(Pipe::MTE3, Pipe::V, s);

  builder.setInsertionPointAfter(loop);
  for (Value s : {c0, c1, c3})
    wait(Pipe::V, Pipe::MTE2, s);
  for (Value s : {c0, c1})
    wait(Pipe::MTE3, Pipe::V, s);
}
} // namespace

namespace {
/// RoPE over interleaved pairs: out = x·cos(a) + swap(x)·sin(a') with
/// swap exchanging the two elements of each pair (Gather by the index row)
/// and a' = position · [-f0, f0, -f1, f1, ...], whose sine carries the sign
/// of each half of the rotation (cos is even, so cos(a') = cos(a)). One
/// head per step through two UB slots, as buildRope does.
void buildRopeInterleaved(OpBuilder &builder, Location loc, const RowProblem &p, int64_t r,
                          const TargetDescription &t, Value blk, Value x, Value positions,
                          Value freqRow, Value indexRow, Value output, int64_t blockDim) {
  MLIRContext *ctx = builder.getContext();
  Builder b(ctx);
  Type f32 = builder.getF32Type();
  int64_t d = p.cols / p.heads, tiles = (p.rows + r - 1) / r;
  auto cst = [&](int64_t v) -> Value { return builder.create<arith::ConstantIndexOp>(loc, v); };
  auto headType = BufType::get(ctx, Space::UB, {r, d}, f32, Layout::ND);
  auto colType = BufType::get(ctx, Space::UB, {r, 1}, f32, Layout::ND);
  auto rowType = BufType::get(ctx, Space::UB, {1, d}, f32, Layout::ND);
  int64_t offset = 0;
  auto alloc = [&](BufType type, int64_t slots) -> Value {
    Value v = builder.create<AllocOp>(loc, type, offset, slots);
    offset += roundUp(type.getBytes() * slots, t.buffer(Space::UB).align);
    return v;
  };
  Value pos = alloc(colType, 1), index = alloc(rowType, 1), freq = alloc(headType, 1),
        angle = alloc(headType, 1), cosT = alloc(headType, 1), sinT = alloc(headType, 1),
        tmp = alloc(headType, 1), swapped = alloc(headType, 1);
  Value xBuf = alloc(headType, 2), oBuf = alloc(headType, 2);
  Value c0 = cst(0), c1 = cst(1), c2 = cst(2), c3 = cst(3);
  auto set = [&](Pipe s, Pipe dp, Value ev) { builder.create<SetFlagOp>(loc, s, dp, ev); };
  auto wait = [&](Pipe s, Pipe dp, Value ev) { builder.create<WaitFlagOp>(loc, s, dp, ev); };
  auto barrier = [&] { builder.create<BarrierOp>(loc, Pipe::V); };
  auto copy = [&](Pipe pipe, Value src, ValueRange so, Value dst, ValueRange dof, int64_t rows,
                  int64_t cols) {
    builder.create<CopyOp>(loc, pipe, src, so, dst, dof, ArrayRef<int64_t>{rows, cols}, false);
  };
  // The frequencies replicated into every row, and the index row (event 2).
  for (int64_t row = 0; row < r; ++row)
    copy(Pipe::MTE2, freqRow, {c0, c0}, freq, {cst(row), c0}, 1, d);
  copy(Pipe::MTE2, indexRow, {c0, c0}, index, {c0, c0}, 1, d);
  set(Pipe::MTE2, Pipe::V, c2);
  wait(Pipe::MTE2, Pipe::V, c2);
  for (Value s : {c0, c1, c3})
    set(Pipe::V, Pipe::MTE2, s);
  for (Value s : {c0, c1})
    set(Pipe::MTE3, Pipe::V, s);

  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  scf::ForOp loop = dealt.loop;
  Value tile = dealt.tile, iter = dealt.iter;
  Value row0 = builder.create<arith::MulIOp>(loc, tile, cst(r));
  wait(Pipe::V, Pipe::MTE2, c3);
  copy(Pipe::MTE2, positions, {row0, c0}, pos, {c0, c0}, r, 1);
  set(Pipe::MTE2, Pipe::V, c3);
  wait(Pipe::MTE2, Pipe::V, c3);
  builder.create<VBrcbOp>(loc, pos, angle);
  barrier();
  set(Pipe::V, Pipe::MTE2, c3);
  builder.create<VMulOp>(loc, angle, freq, angle);
  barrier();
  builder.create<VCosOp>(loc, angle, cosT);
  builder.create<VSinOp>(loc, angle, sinT);
  barrier();
  if (p.inverse) {
    builder.create<VMulsOp>(loc, sinT, b.getF64FloatAttr(-1.0), sinT);
    barrier();
  }

  auto heads = builder.create<scf::ForOp>(loc, c0, cst(p.heads), c1);
  builder.setInsertionPointToStart(heads.getBody());
  Value h = heads.getInductionVar();
  Value g = builder.create<arith::AddIOp>(loc, builder.create<arith::MulIOp>(loc, iter, cst(p.heads)), h);
  Value s = builder.create<arith::RemUIOp>(loc, g, c2);
  Value col = builder.create<arith::MulIOp>(loc, h, cst(d));
  Value xs = builder.create<SlotOp>(loc, xBuf.getType(), xBuf, s);
  Value os = builder.create<SlotOp>(loc, oBuf.getType(), oBuf, s);
  wait(Pipe::V, Pipe::MTE2, s);
  copy(Pipe::MTE2, x, {row0, col}, xs, {c0, c0}, r, d);
  set(Pipe::MTE2, Pipe::V, s);
  wait(Pipe::MTE2, Pipe::V, s);
  wait(Pipe::MTE3, Pipe::V, s);
  builder.create<VGatherOp>(loc, xs, index, swapped);
  builder.create<VMulOp>(loc, xs, cosT, os);
  barrier();
  builder.create<VMulOp>(loc, swapped, sinT, tmp);
  barrier();
  builder.create<VAddOp>(loc, os, tmp, os);
  barrier();
  set(Pipe::V, Pipe::MTE2, s);
  set(Pipe::V, Pipe::MTE3, s);
  wait(Pipe::V, Pipe::MTE3, s);
  copy(Pipe::MTE3, os, {c0, c0}, output, {row0, col}, r, d);
  set(Pipe::MTE3, Pipe::V, s);

  builder.setInsertionPointAfter(loop);
  for (Value s : {c0, c1, c3})
    wait(Pipe::V, Pipe::MTE2, s);
  for (Value s : {c0, c1})
    wait(Pipe::MTE3, Pipe::V, s);
}
} // namespace

KernelOp mlir::attnedit::ascend::buildRowKernel(OpBuilder &builder, Location loc,
                                                llvm::StringRef name, const RowProblem &p,
                                                int64_t r, const TargetDescription &t) {
  MLIRContext *ctx = builder.getContext();
  Type f32 = builder.getF32Type();
  int64_t tiles = (p.rows + r - 1) / r;
  CoreKind core = vectorCoreKind(t);
  int64_t cores = vectorCores(t);
  int64_t blockDim = std::min(tiles, cores);
  int64_t nIn = rowInputs(p.op);
  bool weighted = p.op == RowOp::RmsNorm || p.op == RowOp::BiasAdd;

  Builder b(ctx);
  auto kernel = builder.create<KernelOp>(loc, name, t.name, blockDim, core, DictionaryAttr(),
                                         DenseI64ArrayAttr());
  kernel->setAttr("ascend.row_op", b.getStringAttr(rowOpName(p.op)));
  kernel->setAttr("ascend.tile_rows", b.getI64IntegerAttr(r));
  Block *entry = new Block();
  kernel.getBody().push_back(entry);
  Value blk = entry->addArgument(builder.getIndexType(), loc);
  auto gmType = BufType::get(ctx, Space::GM, {p.rows, p.cols}, f32, Layout::ND);
  SmallVector<Value> inputs;
  for (int64_t k = 0; k < nIn; ++k)
    inputs.push_back(entry->addArgument(gmType, loc));
  if (p.op == RowOp::Rope && p.interleaved) {
    int64_t d = p.cols / p.heads;
    auto rowType = BufType::get(ctx, Space::GM, {1, d}, f32, Layout::ND);
    Value positions = entry->addArgument(BufType::get(ctx, Space::GM, {p.rows, 1}, f32, Layout::ND), loc);
    Value freq = entry->addArgument(rowType, loc), index = entry->addArgument(rowType, loc);
    Value output = entry->addArgument(gmType, loc);
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToEnd(entry);
    kernel->setAttr("ascend.interleaved", b.getUnitAttr());
    buildRopeInterleaved(builder, loc, p, r, t, blk, inputs[0], positions, freq, index, output,
                         blockDim);
    return kernel;
  }
  if (p.op == RowOp::Rope) {
    Value positions = entry->addArgument(BufType::get(ctx, Space::GM, {p.rows, 1}, f32, Layout::ND), loc);
    Value freq = entry->addArgument(
        BufType::get(ctx, Space::GM, {1, p.cols / p.heads / 2}, f32, Layout::ND), loc);
    Value output = entry->addArgument(gmType, loc);
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToEnd(entry);
    buildRope(builder, loc, p, r, t, blk, inputs[0], positions, freq, output, blockDim);
    return kernel;
  }
  Value weight = weighted ? entry->addArgument(BufType::get(ctx, Space::GM, {1, p.cols}, f32, Layout::ND), loc)
                          : Value();
  Value output = entry->addArgument(gmType, loc);

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  if (p.chunk) {
    kernel->setAttr("ascend.chunk_cols", b.getI64IntegerAttr(p.chunk));
    buildChunkedSoftmax(builder, loc, p, r, t, blk, inputs[0], output, blockDim);
    return kernel;
  }
  auto cst = [&](int64_t v) -> Value { return builder.create<arith::ConstantIndexOp>(loc, v); };
  auto tileType = BufType::get(ctx, Space::UB, {r, p.cols}, f32, Layout::ND);
  auto colType = BufType::get(ctx, Space::UB, {r, 1}, f32, Layout::ND);
  int64_t offset = 0;
  auto alloc = [&](BufType type, int64_t slots) -> Value {
    Value v = builder.create<AllocOp>(loc, type, offset, slots);
    offset += roundUp(type.getBytes() * slots, t.buffer(Space::UB).align);
    return v;
  };
  SmallVector<Value> inBufs;
  for (int64_t k = 0; k < nIn; ++k)
    inBufs.push_back(alloc(tileType, 2));
  Value outBuf = alloc(tileType, 2);
  int64_t nTiles, nCols;
  scratchOf(p.op, nTiles, nCols);
  SmallVector<Value> scratch, columns;
  for (int64_t k = 0; k < nTiles; ++k)
    scratch.push_back(alloc(tileType, 1));
  for (int64_t k = 0; k < nCols; ++k)
    columns.push_back(alloc(colType, 1));
  Value wUb = weighted ? alloc(tileType, 1) : Value();

  Value c0 = cst(0), c1 = cst(1), c2 = cst(2);
  auto set = [&](Pipe s, Pipe d, Value ev) { builder.create<SetFlagOp>(loc, s, d, ev); };
  auto wait = [&](Pipe s, Pipe d, Value ev) { builder.create<WaitFlagOp>(loc, s, d, ev); };
  auto copy = [&](Pipe pipe, Value src, ValueRange so, Value dst, ValueRange dof, int64_t rows) {
    builder.create<CopyOp>(loc, pipe, src, so, dst, dof, ArrayRef<int64_t>{rows, p.cols}, false);
  };
  auto barrier = [&] { builder.create<BarrierOp>(loc, Pipe::V); };

  // The weight row, replicated into every row of a UB tile once (MTE2).
  if (weighted) {
    for (int64_t row = 0; row < r; ++row)
      copy(Pipe::MTE2, weight, {c0, c0}, wUb, {cst(row), c0}, 1);
    set(Pipe::MTE2, Pipe::V, c2);
    wait(Pipe::MTE2, Pipe::V, c2);
  }
  for (Value s : {c0, c1}) {
    set(Pipe::V, Pipe::MTE2, s);
    set(Pipe::MTE3, Pipe::V, s);
  }

  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  scf::ForOp loop = dealt.loop;
  Value tile = dealt.tile, iter = dealt.iter;
  Value s = builder.create<arith::RemUIOp>(loc, iter, c2);
  Value row0 = builder.create<arith::MulIOp>(loc, tile, cst(r));
  SmallVector<Value> in;
  for (Value buf : inBufs)
    in.push_back(builder.create<SlotOp>(loc, buf.getType(), buf, s));
  Value out = builder.create<SlotOp>(loc, outBuf.getType(), outBuf, s);

  // CopyIn.
  wait(Pipe::V, Pipe::MTE2, s);
  for (int64_t k = 0; k < nIn; ++k)
    copy(Pipe::MTE2, inputs[k], {row0, c0}, in[k], {c0, c0}, r);
  set(Pipe::MTE2, Pipe::V, s);

  // Compute.
  wait(Pipe::MTE2, Pipe::V, s);
  wait(Pipe::MTE3, Pipe::V, s);
  // Creates a vector op, then the barrier its same-pipe consumer needs (S55).
  auto step = [&](Operation *) { barrier(); };
  switch (p.op) {
  case RowOp::Add:
    builder.create<VAddOp>(loc, in[0], in[1], out);
    break;
  case RowOp::Mul:
    builder.create<VMulOp>(loc, in[0], in[1], out);
    break;
  case RowOp::Scale:
    builder.create<VMulsOp>(loc, in[0], b.getF64FloatAttr(p.factor), out);
    break;
  case RowOp::BiasAdd:
    builder.create<VAddOp>(loc, in[0], wUb, out);
    break;
  case RowOp::Sigmoid: {
    // 1 / (1 + exp(-x)).
    Value e = scratch[0];
    step(builder.create<VMulsOp>(loc, in[0], b.getF64FloatAttr(-1.0), e));
    step(builder.create<VExpOp>(loc, e, e));
    step(builder.create<VAddsOp>(loc, e, b.getF64FloatAttr(1.0), e));
    builder.create<VRecOp>(loc, e, out);
    break;
  }
  case RowOp::Silu:
  case RowOp::SiluMul: {
    // silu(x) = x / (1 + exp(-x)).
    Value e = scratch[0];
    step(builder.create<VMulsOp>(loc, in[0], b.getF64FloatAttr(-1.0), e));
    step(builder.create<VExpOp>(loc, e, e));
    step(builder.create<VAddsOp>(loc, e, b.getF64FloatAttr(1.0), e));
    if (p.op == RowOp::Silu) {
      builder.create<VDivOp>(loc, in[0], e, out);
    } else {
      step(builder.create<VDivOp>(loc, in[0], e, e));
      builder.create<VMulOp>(loc, e, in[1], out);
    }
    break;
  }
  case RowOp::RmsNorm: {
    // x · w / sqrt(mean(x²) + eps).
    Value sq = scratch[0], inv = scratch[1], col = columns[0];
    step(builder.create<VMulOp>(loc, in[0], in[0], sq));
    step(builder.create<VReduceOp>(loc, ReduceKind::Sum, sq, col));
    step(builder.create<VMulsOp>(loc, col, b.getF64FloatAttr(1.0 / p.cols), col));
    step(builder.create<VAddsOp>(loc, col, b.getF64FloatAttr(p.eps), col));
    step(builder.create<VSqrtOp>(loc, col, col));
    step(builder.create<VRecOp>(loc, col, col));
    step(builder.create<VBrcbOp>(loc, col, inv));
    step(builder.create<VMulOp>(loc, in[0], inv, sq));
    builder.create<VMulOp>(loc, sq, wUb, out);
    break;
  }
  case RowOp::Softmax: {
    // exp(x - max) / sum, row by row.
    Value e = scratch[0], col = columns[0];
    step(builder.create<VReduceOp>(loc, ReduceKind::Max, in[0], col));
    step(builder.create<VBrcbOp>(loc, col, e));
    step(builder.create<VSubOp>(loc, in[0], e, e));
    step(builder.create<VExpOp>(loc, e, e));
    step(builder.create<VReduceOp>(loc, ReduceKind::Sum, e, col));
    step(builder.create<VBrcbOp>(loc, col, out));
    builder.create<VDivOp>(loc, e, out, out);
    break;
  }
  case RowOp::Rope: // built by buildRope above
    break;
  }
  // The next tile's compute rewrites the scratch tiles on this same pipe.
  barrier();
  set(Pipe::V, Pipe::MTE2, s);
  set(Pipe::V, Pipe::MTE3, s);

  // CopyOut.
  wait(Pipe::V, Pipe::MTE3, s);
  copy(Pipe::MTE3, out, {c0, c0}, output, {row0, c0}, r);
  set(Pipe::MTE3, Pipe::V, s);

  builder.setInsertionPointAfter(loop);
  for (Value s : {c0, c1}) {
    wait(Pipe::V, Pipe::MTE2, s);
    wait(Pipe::MTE3, Pipe::V, s);
  }
  return kernel;
}
