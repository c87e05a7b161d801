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
  case RowOp::SiluGrad:
    return "silu_grad";
  case RowOp::SigmoidGrad:
    return "sigmoid_grad";
  case RowOp::SoftmaxGrad:
    return "softmax_grad";
  case RowOp::RmsNormGrad:
    return "rms_norm_grad";
  case RowOp::RmsNormWeightRows:
    return "rms_norm_weight_rows";
  case RowOp::SoftmaxSinks:
    return "softmax_sinks";
  case RowOp::SinkRows:
    return "sink_grad_rows";
  case RowOp::KlRows:
    return "kl_rows";
  case RowOp::KlGrad:
    return "kl_grad";
  case RowOp::RowSum:
    return "row_sum";
  case RowOp::BroadcastCol:
    return "broadcast";
  }
  return "?";
}

int64_t mlir::attnedit::ascend::rowInputs(RowOp op) {
  switch (op) {
  case RowOp::Add:
  case RowOp::Mul:
  case RowOp::SiluMul:
  case RowOp::SiluGrad:
  case RowOp::SigmoidGrad:
  case RowOp::SoftmaxGrad:
  case RowOp::RmsNormGrad:
  case RowOp::RmsNormWeightRows:
  case RowOp::SoftmaxSinks:
  case RowOp::SinkRows:
  case RowOp::KlRows:
  case RowOp::KlGrad:
    return 2;
  default:
    return 1;
  }
}

int64_t mlir::attnedit::ascend::rowInputCols(const RowProblem &p, int64_t k) {
  bool column = (p.op == RowOp::SoftmaxSinks && k == 1) || p.op == RowOp::BroadcastCol;
  return column ? 1 : p.cols;
}

int64_t mlir::attnedit::ascend::rowOutputCols(const RowProblem &p) {
  return p.op == RowOp::SinkRows || p.op == RowOp::KlRows || p.op == RowOp::RowSum ? 1 : p.cols;
}

RowSide mlir::attnedit::ascend::rowSide(RowOp op) {
  switch (op) {
  case RowOp::RmsNorm:
  case RowOp::RmsNormGrad:
  case RowOp::BiasAdd:
    return RowSide::Row;
  case RowOp::KlGrad:
    return RowSide::Scalar;
  default:
    return RowSide::None;
  }
}

namespace {
/// Full-width [r, cols] scratch tiles and [r, 1] column tiles of each op.
void scratchOf(RowOp op, int64_t &tiles, int64_t &columns) {
  tiles = columns = 0;
  switch (op) {
  case RowOp::Silu:
  case RowOp::SiluMul:
  case RowOp::Sigmoid:
  case RowOp::SigmoidGrad:
    tiles = 1;
    return;
  case RowOp::SiluGrad:
    tiles = 2;
    return;
  case RowOp::RmsNorm:
  case RowOp::RmsNormWeightRows:
    tiles = 2; // x², then the broadcast 1/rms; plus the replicated weight
    columns = 1;
    return;
  case RowOp::RmsNormGrad:
    tiles = 2;
    columns = 2;
    return;
  case RowOp::Softmax:
  case RowOp::SoftmaxGrad:
  case RowOp::SinkRows:
    tiles = 1;
    columns = 1;
    return;
  case RowOp::SoftmaxSinks:
    tiles = 1;
    columns = 2;
    return;
  case RowOp::KlRows:
  case RowOp::KlGrad:
    tiles = 3;
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
    int64_t spread = std::max<int64_t>(1, ceilDiv(p.rows, cores));
    return std::min<int64_t>(
        {(t.usableBytes(Space::UB) - head) / perRow, 64, spread});
  }
  if (p.op == RowOp::Rope) {
    // Per row: the position, 5 half-head tiles (frequencies, angle, cos,
    // sin, scratch) and 2 slots each of the two input and output halves.
    int64_t half = tileBytes(Layout::ND, 1, p.cols / p.heads / 2, 4, false);
    int64_t perRow = tileBytes(Layout::ND, 1, 1, 4, false) + 13 * half;
    int64_t cores = vectorCores(t);
    int64_t spread = std::max<int64_t>(1, ceilDiv(p.rows, cores));
    return std::min<int64_t>({t.usableBytes(Space::UB) / perRow, 64, spread});
  }
  int64_t row = tileBytes(Layout::ND, 1, p.chunk ? p.chunk : p.cols, 4, false);
  int64_t col = tileBytes(Layout::ND, 1, 1, 4, false);
  auto width = [&](int64_t cols) { return cols == 1 ? col : row; };
  RowSide side = rowSide(p.op);
  int64_t streams = width(rowOutputCols(p));
  for (int64_t k = 0; k < rowInputs(p.op); ++k)
    streams += width(rowInputCols(p, k));
  int64_t perRow = 2 * streams + (tiles + (side != RowSide::None)) * row +
                   (columns + (side == RowSide::Scalar)) * col;
  int64_t budget = t.usableBytes(Space::UB);
  // Enough tiles for every vector core; beyond 64 rows a tile only
  // lengthens the pipeline's fill and drain.
  int64_t cores = vectorCores(t);
  int64_t spread = std::max<int64_t>(1, ceilDiv(p.rows, cores));
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
  Builder b(builder.getContext());
  int64_t w = p.chunk, chunks = p.cols / w, tiles = ceilDiv(p.rows, r);
  KernelEmitter e(builder, loc, t);
  Value inBuf = e.alloc(r, w, 2), outBuf = e.alloc(r, w, 2), ex = e.alloc(r, w);
  Value m = e.alloc(r, 1), sum = e.alloc(r, 1), stat = e.alloc(r, 1);
  Value c0 = e.cst(0), c1 = e.cst(1), c2 = e.cst(2);
  for (Value s : {c0, c1}) {
    e.set(Pipe::V, Pipe::MTE2, s);
    e.set(Pipe::MTE3, Pipe::V, s);
  }
  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  Value row0 = e.mul(dealt.tile, e.cst(r));
  // A finite stand-in for -inf keeps the IR's float attributes plain.
  builder.create<VDupOp>(loc, b.getF64FloatAttr(-3.0e38), m);
  builder.create<VDupOp>(loc, b.getF64FloatAttr(0.0), sum);
  e.barrier();
  for (int pass = 0; pass < 3; ++pass) {
    OpBuilder::InsertionGuard guard(builder);
    auto chunkLoop = builder.create<scf::ForOp>(loc, c0, e.cst(chunks), c1);
    builder.setInsertionPointToStart(chunkLoop.getBody());
    Value j = chunkLoop.getInductionVar();
    // The chunk counter over passes and tiles picks the slot.
    Value g = e.add(e.mul(dealt.iter, e.cst(3 * chunks)), e.add(e.cst(pass * chunks), j));
    Value s = e.rem(g, c2);
    Value in = e.slot(inBuf, s);
    Value col0 = e.mul(j, e.cst(w));
    e.wait(Pipe::V, Pipe::MTE2, s);
    e.copy(Pipe::MTE2, input, {row0, col0}, in, {c0, c0}, r, w);
    e.set(Pipe::MTE2, Pipe::V, s);
    e.wait(Pipe::MTE2, Pipe::V, s);
    if (pass == 0) {
      builder.create<VReduceOp>(loc, ReduceKind::Max, in, stat);
      e.barrier();
      builder.create<VMaxOp>(loc, m, stat, m);
    } else {
      builder.create<VBrcbOp>(loc, m, ex);
      e.barrier();
      builder.create<VSubOp>(loc, in, ex, ex);
      e.barrier();
      builder.create<VExpOp>(loc, ex, ex);
      e.barrier();
      if (pass == 1) {
        builder.create<VReduceOp>(loc, ReduceKind::Sum, ex, stat);
        e.barrier();
        builder.create<VAddOp>(loc, sum, stat, sum);
      } else {
        Value out = e.slot(outBuf, s);
        e.wait(Pipe::MTE3, Pipe::V, s);
        builder.create<VBrcbOp>(loc, sum, out);
        e.barrier();
        builder.create<VDivOp>(loc, ex, out, out);
        e.barrier();
        e.set(Pipe::V, Pipe::MTE2, s);
        e.set(Pipe::V, Pipe::MTE3, s);
        e.wait(Pipe::V, Pipe::MTE3, s);
        e.copy(Pipe::MTE3, out, {c0, c0}, output, {row0, col0}, r, w);
        e.set(Pipe::MTE3, Pipe::V, s);
        continue;
      }
    }
    e.barrier();
    e.set(Pipe::V, Pipe::MTE2, s);
  }
  builder.setInsertionPointAfter(dealt.loop);
  for (Value s : {c0, c1}) {
    e.wait(Pipe::V, Pipe::MTE2, s);
    e.wait(Pipe::MTE3, Pipe::V, s);
  }
}
} // namespace

namespace {
/// What both RoPE builders share: per row tile of r tokens the angles
/// position · frequency over `width` columns (the frequency row replicated
/// into every row once, with any `once` copies, event 2), their cosine and
/// sine (sine negated for the inverse rotation), computed once per tile on
/// the Vector unit and shared by the heads; then per head its CopyIn
/// (`load`), Compute (`rotate`, a barrier after each dependent op) and
/// CopyOut (`store`) with the head's slot (heads stream through two UB
/// slots each; events 0/1 guard them, event 3 the position column).
struct RopeTile {
  Value cosT, sinT, tmp, row0, head, slot;
};
void buildRopeFrame(KernelEmitter &e, const RowProblem &p, int64_t r, int64_t width, Value blk,
                    Value positions, Value freqRow, int64_t blockDim,
                    llvm::function_ref<void()> once, llvm::function_ref<void(const RopeTile &)> load,
                    llvm::function_ref<void(const RopeTile &)> rotate,
                    llvm::function_ref<void(const RopeTile &)> store) {
  OpBuilder &builder = e.b;
  Location loc = e.loc;
  int64_t tiles = ceilDiv(p.rows, r);
  Value pos = e.alloc(r, 1), freq = e.alloc(r, width), angle = e.alloc(r, width);
  RopeTile tile;
  tile.cosT = e.alloc(r, width);
  tile.sinT = e.alloc(r, width);
  tile.tmp = e.alloc(r, width);
  Value c0 = e.cst(0), c1 = e.cst(1), c2 = e.cst(2), c3 = e.cst(3);
  for (int64_t row = 0; row < r; ++row)
    e.copy(Pipe::MTE2, freqRow, {c0, c0}, freq, {e.cst(row), c0}, 1, width);
  once();
  e.set(Pipe::MTE2, Pipe::V, c2);
  e.wait(Pipe::MTE2, Pipe::V, c2);
  for (Value s : {c0, c1, c3})
    e.set(Pipe::V, Pipe::MTE2, s);
  for (Value s : {c0, c1})
    e.set(Pipe::MTE3, Pipe::V, s);

  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  tile.row0 = e.mul(dealt.tile, e.cst(r));
  e.wait(Pipe::V, Pipe::MTE2, c3);
  e.copy(Pipe::MTE2, positions, {tile.row0, c0}, pos, {c0, c0}, r, 1);
  e.set(Pipe::MTE2, Pipe::V, c3);
  e.wait(Pipe::MTE2, Pipe::V, c3);
  builder.create<VBrcbOp>(loc, pos, angle);
  e.barrier();
  e.set(Pipe::V, Pipe::MTE2, c3);
  builder.create<VMulOp>(loc, angle, freq, angle);
  e.barrier();
  builder.create<VCosOp>(loc, angle, tile.cosT);
  builder.create<VSinOp>(loc, angle, tile.sinT);
  e.barrier();
  if (p.inverse) {
    builder.create<VMulsOp>(loc, tile.sinT, builder.getF64FloatAttr(-1.0), tile.sinT);
    e.barrier();
  }
  auto heads = builder.create<scf::ForOp>(loc, c0, e.cst(p.heads), c1);
  {
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToStart(heads.getBody());
    tile.head = heads.getInductionVar();
    Value s = tile.slot = e.rem(e.add(e.mul(dealt.iter, e.cst(p.heads)), tile.head), c2);
    e.wait(Pipe::V, Pipe::MTE2, s);
    load(tile);
    e.set(Pipe::MTE2, Pipe::V, s);
    e.wait(Pipe::MTE2, Pipe::V, s);
    e.wait(Pipe::MTE3, Pipe::V, s);
    rotate(tile);
    e.set(Pipe::V, Pipe::MTE2, s);
    e.set(Pipe::V, Pipe::MTE3, s);
    e.wait(Pipe::V, Pipe::MTE3, s);
    store(tile);
    e.set(Pipe::MTE3, Pipe::V, s);
  }
  builder.setInsertionPointAfter(dealt.loop);
  for (Value s : {c0, c1, c3})
    e.wait(Pipe::V, Pipe::MTE2, s);
  for (Value s : {c0, c1})
    e.wait(Pipe::MTE3, Pipe::V, s);
}

/// RoPE, rotate_half (HF): for each head, with x1, x2 its two halves and
/// a = position · inv_freq, out1 = x1·cos a - x2·sin a and out2 =
/// x2·cos a + x1·sin a.
void buildRope(OpBuilder &builder, Location loc, const RowProblem &p, int64_t r,
               const TargetDescription &t, Value blk, Value x, Value positions, Value invFreq,
               Value output, int64_t blockDim) {
  int64_t d = p.cols / p.heads, half = d / 2;
  KernelEmitter e(builder, loc, t);
  Value x1Buf = e.alloc(r, half, 2), x2Buf = e.alloc(r, half, 2), o1Buf = e.alloc(r, half, 2),
        o2Buf = e.alloc(r, half, 2);
  Value c0 = e.cst(0);
  auto cols = [&](const RopeTile &k) {
    Value col1 = e.mul(k.head, e.cst(d));
    return std::make_pair(col1, e.add(col1, e.cst(half)));
  };
  auto load = [&](const RopeTile &k) {
    auto [col1, col2] = cols(k);
    e.copy(Pipe::MTE2, x, {k.row0, col1}, e.slot(x1Buf, k.slot), {c0, c0}, r, half);
    e.copy(Pipe::MTE2, x, {k.row0, col2}, e.slot(x2Buf, k.slot), {c0, c0}, r, half);
  };
  auto rotate = [&](const RopeTile &k) {
    Value x1 = e.slot(x1Buf, k.slot), x2 = e.slot(x2Buf, k.slot), o1 = e.slot(o1Buf, k.slot),
          o2 = e.slot(o2Buf, k.slot);
    builder.create<VMulOp>(loc, x1, k.cosT, o1);
    builder.create<VMulOp>(loc, x2, k.sinT, k.tmp);
    e.barrier();
    builder.create<VSubOp>(loc, o1, k.tmp, o1);
    e.barrier();
    builder.create<VMulOp>(loc, x2, k.cosT, o2);
    builder.create<VMulOp>(loc, x1, k.sinT, k.tmp);
    e.barrier();
    builder.create<VAddOp>(loc, o2, k.tmp, o2);
    e.barrier();
  };
  auto store = [&](const RopeTile &k) {
    auto [col1, col2] = cols(k);
    e.copy(Pipe::MTE3, e.slot(o1Buf, k.slot), {c0, c0}, output, {k.row0, col1}, r, half);
    e.copy(Pipe::MTE3, e.slot(o2Buf, k.slot), {c0, c0}, output, {k.row0, col2}, r, half);
  };
  buildRopeFrame(e, p, r, half, blk, positions, invFreq, blockDim, [] {}, load, rotate, store);
}

/// RoPE over interleaved pairs: out = x·cos(a) + swap(x)·sin(a') with
/// swap exchanging the two elements of each pair (Gather by the index row)
/// and a' = position · [-f0, f0, -f1, f1, ...], whose sine carries the sign
/// of each half of the rotation (cos is even, so cos(a') = cos(a)).
void buildRopeInterleaved(OpBuilder &builder, Location loc, const RowProblem &p, int64_t r,
                          const TargetDescription &t, Value blk, Value x, Value positions,
                          Value freqRow, Value indexRow, Value output, int64_t blockDim) {
  int64_t d = p.cols / p.heads;
  KernelEmitter e(builder, loc, t);
  Value index = e.alloc(1, d), swapped = e.alloc(r, d);
  Value xBuf = e.alloc(r, d, 2), oBuf = e.alloc(r, d, 2);
  Value c0 = e.cst(0);
  auto loadIndex = [&] { e.copy(Pipe::MTE2, indexRow, {c0, c0}, index, {c0, c0}, 1, d); };
  auto load = [&](const RopeTile &k) {
    e.copy(Pipe::MTE2, x, {k.row0, e.mul(k.head, e.cst(d))}, e.slot(xBuf, k.slot), {c0, c0}, r, d);
  };
  auto rotate = [&](const RopeTile &k) {
    Value xs = e.slot(xBuf, k.slot), os = e.slot(oBuf, k.slot);
    builder.create<VGatherOp>(loc, xs, index, swapped);
    builder.create<VMulOp>(loc, xs, k.cosT, os);
    e.barrier();
    builder.create<VMulOp>(loc, swapped, k.sinT, k.tmp);
    e.barrier();
    builder.create<VAddOp>(loc, os, k.tmp, os);
    e.barrier();
  };
  auto store = [&](const RopeTile &k) {
    e.copy(Pipe::MTE3, e.slot(oBuf, k.slot), {c0, c0}, output, {k.row0, e.mul(k.head, e.cst(d))},
           r, d);
  };
  buildRopeFrame(e, p, r, d, blk, positions, freqRow, blockDim, loadIndex, load, rotate, store);
}
} // namespace

KernelOp mlir::attnedit::ascend::buildRowKernel(OpBuilder &builder, Location loc,
                                                llvm::StringRef name, const RowProblem &p,
                                                int64_t r, const TargetDescription &t) {
  int64_t tiles = ceilDiv(p.rows, r);
  int64_t blockDim = std::min(tiles, vectorCores(t));
  int64_t nIn = rowInputs(p.op);

  Builder b(builder.getContext());
  auto [kernel, entry, blk] = startVectorKernel(builder, loc, name, t, blockDim);
  kernel->setAttr("ascend.row_op", b.getStringAttr(rowOpName(p.op)));
  kernel->setAttr("ascend.tile_rows", b.getI64IntegerAttr(r));
  SmallVector<Value> inputs;
  for (int64_t k = 0; k < nIn; ++k)
    inputs.push_back(gmArgument(entry, {p.rows, rowInputCols(p, k)}, loc));
  if (p.op == RowOp::Rope) {
    int64_t d = p.cols / p.heads;
    Value positions = gmArgument(entry, {p.rows, 1}, loc);
    Value freq = gmArgument(entry, {1, p.interleaved ? d : d / 2}, loc);
    Value index = p.interleaved ? gmArgument(entry, {1, d}, loc) : Value();
    Value output = gmArgument(entry, {p.rows, p.cols}, loc);
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPointToEnd(entry);
    if (p.interleaved) {
      kernel->setAttr("ascend.interleaved", b.getUnitAttr());
      buildRopeInterleaved(builder, loc, p, r, t, blk, inputs[0], positions, freq, index, output,
                           blockDim);
    } else {
      buildRope(builder, loc, p, r, t, blk, inputs[0], positions, freq, output, blockDim);
    }
    return kernel;
  }
  RowSide side = rowSide(p.op);
  Value weight;
  if (side != RowSide::None)
    weight = gmArgument(entry, {1, side == RowSide::Row ? p.cols : 1}, loc);
  int64_t outCols = rowOutputCols(p);
  Value output = gmArgument(entry, {p.rows, outCols}, loc);

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  if (p.chunk) {
    kernel->setAttr("ascend.chunk_cols", b.getI64IntegerAttr(p.chunk));
    buildChunkedSoftmax(builder, loc, p, r, t, blk, inputs[0], output, blockDim);
    return kernel;
  }
  KernelEmitter e(builder, loc, t);
  SmallVector<Value> inBufs;
  for (int64_t k = 0; k < nIn; ++k)
    inBufs.push_back(e.alloc(r, rowInputCols(p, k), 2));
  Value outBuf = e.alloc(r, outCols, 2);
  int64_t nTiles, nCols;
  scratchOf(p.op, nTiles, nCols);
  SmallVector<Value> scratch, columns;
  for (int64_t k = 0; k < nTiles; ++k)
    scratch.push_back(e.alloc(r, p.cols));
  for (int64_t k = 0; k < nCols; ++k)
    columns.push_back(e.alloc(r, 1));
  Value wUb = side != RowSide::None ? e.alloc(r, p.cols) : Value();

  Value c0 = e.cst(0), c1 = e.cst(1), c2 = e.cst(2);
  auto barrier = [&] { e.barrier(); };

  // The side operand, replicated into every row of a UB tile once (MTE2):
  // the weight row, or the scalar broadcast along a column.
  if (side == RowSide::Row) {
    for (int64_t row = 0; row < r; ++row)
      e.copy(Pipe::MTE2, weight, {c0, c0}, wUb, {e.cst(row), c0}, 1, p.cols);
    e.set(Pipe::MTE2, Pipe::V, c2);
    e.wait(Pipe::MTE2, Pipe::V, c2);
  } else if (side == RowSide::Scalar) {
    Value g = e.alloc(r, 1);
    for (int64_t row = 0; row < r; ++row)
      e.copy(Pipe::MTE2, weight, {c0, c0}, g, {e.cst(row), c0}, 1, 1);
    e.set(Pipe::MTE2, Pipe::V, c2);
    e.wait(Pipe::MTE2, Pipe::V, c2);
    builder.create<VBrcbOp>(loc, g, wUb);
    barrier();
    builder.create<VMulsOp>(loc, wUb, b.getF64FloatAttr(p.factor), wUb);
    barrier();
  }
  for (Value s : {c0, c1}) {
    e.set(Pipe::V, Pipe::MTE2, s);
    e.set(Pipe::MTE3, Pipe::V, s);
  }

  TileLoop dealt = enterTileLoop(builder, loc, blk, tiles, blockDim);
  scf::ForOp loop = dealt.loop;
  Value s = e.rem(dealt.iter, c2);
  Value row0 = e.mul(dealt.tile, e.cst(r));
  SmallVector<Value> in;
  for (Value buf : inBufs)
    in.push_back(e.slot(buf, s));
  Value out = e.slot(outBuf, s);

  // CopyIn.
  e.wait(Pipe::V, Pipe::MTE2, s);
  for (int64_t k = 0; k < nIn; ++k)
    e.copy(Pipe::MTE2, inputs[k], {row0, c0}, in[k], {c0, c0}, r, rowInputCols(p, k));
  e.set(Pipe::MTE2, Pipe::V, s);

  // Compute.
  e.wait(Pipe::MTE2, Pipe::V, s);
  e.wait(Pipe::MTE3, Pipe::V, s);
  // Creates a vector op, then the barrier its same-pipe consumer needs (S55).
  auto step = [&](Operation *) { barrier(); };
  auto f = [&](double v) { return b.getF64FloatAttr(v); };
  // 1 / rms of each row of x into `col` (x² through `sq`).
  auto inverseRms = [&](Value x, Value sq, Value col) {
    step(builder.create<VMulOp>(loc, x, x, sq));
    step(builder.create<VReduceOp>(loc, ReduceKind::Sum, sq, col));
    step(builder.create<VMulsOp>(loc, col, f(1.0 / p.cols), col));
    step(builder.create<VAddsOp>(loc, col, f(p.eps), col));
    step(builder.create<VSqrtOp>(loc, col, col));
    step(builder.create<VRecOp>(loc, col, col));
  };
  // x / temperature - max into `z`, exp of it into `ex`, Σ exp into `col`.
  auto shiftedExp = [&](Value x, Value z, Value ex, Value col) {
    step(builder.create<VMulsOp>(loc, x, f(1.0 / p.temperature), z));
    step(builder.create<VReduceOp>(loc, ReduceKind::Max, z, col));
    step(builder.create<VBrcbOp>(loc, col, ex));
    step(builder.create<VSubOp>(loc, z, ex, z));
    step(builder.create<VExpOp>(loc, z, ex));
    step(builder.create<VReduceOp>(loc, ReduceKind::Sum, ex, col));
  };
  switch (p.op) {
  case RowOp::Add:
    builder.create<VAddOp>(loc, in[0], in[1], out);
    break;
  case RowOp::Mul:
    builder.create<VMulOp>(loc, in[0], in[1], out);
    break;
  case RowOp::Scale:
    builder.create<VMulsOp>(loc, in[0], f(p.factor), out);
    break;
  case RowOp::BiasAdd:
    builder.create<VAddOp>(loc, in[0], wUb, out);
    break;
  case RowOp::Sigmoid: {
    // 1 / (1 + exp(-x)).
    Value ex = scratch[0];
    step(builder.create<VMulsOp>(loc, in[0], f(-1.0), ex));
    step(builder.create<VExpOp>(loc, ex, ex));
    step(builder.create<VAddsOp>(loc, ex, f(1.0), ex));
    builder.create<VRecOp>(loc, ex, out);
    break;
  }
  case RowOp::Silu:
  case RowOp::SiluMul: {
    // silu(x) = x / (1 + exp(-x)).
    Value ex = scratch[0];
    step(builder.create<VMulsOp>(loc, in[0], f(-1.0), ex));
    step(builder.create<VExpOp>(loc, ex, ex));
    step(builder.create<VAddsOp>(loc, ex, f(1.0), ex));
    if (p.op == RowOp::Silu) {
      builder.create<VDivOp>(loc, in[0], ex, out);
    } else {
      step(builder.create<VDivOp>(loc, in[0], ex, ex));
      builder.create<VMulOp>(loc, ex, in[1], out);
    }
    break;
  }
  case RowOp::RmsNorm: {
    // x · w / sqrt(mean(x²) + eps).
    Value sq = scratch[0], inv = scratch[1], col = columns[0];
    inverseRms(in[0], sq, col);
    step(builder.create<VBrcbOp>(loc, col, inv));
    step(builder.create<VMulOp>(loc, in[0], inv, sq));
    builder.create<VMulOp>(loc, sq, wUb, out);
    break;
  }
  case RowOp::Softmax: {
    // exp(x - max) / sum, row by row.
    Value ex = scratch[0], col = columns[0];
    step(builder.create<VReduceOp>(loc, ReduceKind::Max, in[0], col));
    step(builder.create<VBrcbOp>(loc, col, ex));
    step(builder.create<VSubOp>(loc, in[0], ex, ex));
    step(builder.create<VExpOp>(loc, ex, ex));
    step(builder.create<VReduceOp>(loc, ReduceKind::Sum, ex, col));
    step(builder.create<VBrcbOp>(loc, col, out));
    builder.create<VDivOp>(loc, ex, out, out);
    break;
  }
  case RowOp::SoftmaxSinks: {
    // The sink joins the row max and the sum but gets no output column.
    Value ex = scratch[0], m = columns[0], sk = columns[1];
    step(builder.create<VReduceOp>(loc, ReduceKind::Max, in[0], m));
    step(builder.create<VMaxOp>(loc, m, in[1], m));
    step(builder.create<VBrcbOp>(loc, m, ex));
    builder.create<VSubOp>(loc, in[1], m, sk);
    step(builder.create<VSubOp>(loc, in[0], ex, ex));
    builder.create<VExpOp>(loc, sk, sk);
    step(builder.create<VExpOp>(loc, ex, ex));
    step(builder.create<VReduceOp>(loc, ReduceKind::Sum, ex, m));
    step(builder.create<VAddOp>(loc, m, sk, m));
    step(builder.create<VBrcbOp>(loc, m, out));
    builder.create<VDivOp>(loc, ex, out, out);
    break;
  }
  case RowOp::SiluGrad: {
    // dy · s · (1 + x · (1 - s)).
    Value sg = scratch[0], u = scratch[1];
    step(builder.create<VMulsOp>(loc, in[0], f(-1.0), sg));
    step(builder.create<VExpOp>(loc, sg, sg));
    step(builder.create<VAddsOp>(loc, sg, f(1.0), sg));
    step(builder.create<VRecOp>(loc, sg, sg));
    step(builder.create<VMulsOp>(loc, sg, f(-1.0), u));
    step(builder.create<VAddsOp>(loc, u, f(1.0), u));
    step(builder.create<VMulOp>(loc, in[0], u, u));
    step(builder.create<VAddsOp>(loc, u, f(1.0), u));
    step(builder.create<VMulOp>(loc, u, sg, u));
    builder.create<VMulOp>(loc, u, in[1], out);
    break;
  }
  case RowOp::SigmoidGrad: {
    // dy · y · (1 - y).
    Value u = scratch[0];
    step(builder.create<VMulsOp>(loc, in[0], f(-1.0), u));
    step(builder.create<VAddsOp>(loc, u, f(1.0), u));
    step(builder.create<VMulOp>(loc, u, in[0], u));
    builder.create<VMulOp>(loc, u, in[1], out);
    break;
  }
  case RowOp::SoftmaxGrad: {
    // y · (dy - Σ y·dy).
    Value u = scratch[0], dot = columns[0];
    step(builder.create<VMulOp>(loc, in[0], in[1], u));
    step(builder.create<VReduceOp>(loc, ReduceKind::Sum, u, dot));
    step(builder.create<VBrcbOp>(loc, dot, u));
    step(builder.create<VSubOp>(loc, in[1], u, u));
    builder.create<VMulOp>(loc, in[0], u, out);
    break;
  }
  case RowOp::RmsNormGrad: {
    // r·w·dy - x · r³/d · Σ dy·w·x.
    Value u = scratch[0], v = scratch[1], inv = columns[0], k = columns[1];
    inverseRms(in[0], u, inv);
    step(builder.create<VMulOp>(loc, in[1], wUb, u));
    step(builder.create<VMulOp>(loc, u, in[0], v));
    step(builder.create<VReduceOp>(loc, ReduceKind::Sum, v, k));
    for (int i = 0; i < 3; ++i)
      step(builder.create<VMulOp>(loc, k, inv, k));
    step(builder.create<VMulsOp>(loc, k, f(1.0 / p.cols), k));
    step(builder.create<VBrcbOp>(loc, inv, v));
    step(builder.create<VMulOp>(loc, u, v, u));
    step(builder.create<VBrcbOp>(loc, k, v));
    step(builder.create<VMulOp>(loc, v, in[0], v));
    builder.create<VSubOp>(loc, u, v, out);
    break;
  }
  case RowOp::RmsNormWeightRows: {
    Value u = scratch[0], v = scratch[1], inv = columns[0];
    inverseRms(in[0], u, inv);
    step(builder.create<VBrcbOp>(loc, inv, v));
    step(builder.create<VMulOp>(loc, v, in[0], v));
    builder.create<VMulOp>(loc, v, in[1], out);
    break;
  }
  case RowOp::SinkRows: {
    // -(1 - Σ p) · Σ dy·p per row.
    Value u = scratch[0], mass = columns[0];
    builder.create<VReduceOp>(loc, ReduceKind::Sum, in[0], mass);
    step(builder.create<VMulOp>(loc, in[0], in[1], u));
    step(builder.create<VReduceOp>(loc, ReduceKind::Sum, u, out));
    step(builder.create<VAddsOp>(loc, mass, f(-1.0), mass));
    builder.create<VMulOp>(loc, out, mass, out); // (Σ p - 1) · dot
    break;
  }
  case RowOp::KlRows: {
    // Σ p · (log p - log q), log p = z - log Σ exp z, z = x/τ - max.
    Value zp = scratch[0], zq = scratch[1], ex = scratch[2], col = columns[0];
    shiftedExp(in[0], zp, ex, col);
    step(builder.create<VLnOp>(loc, col, col));
    step(builder.create<VBrcbOp>(loc, col, ex));
    step(builder.create<VSubOp>(loc, zp, ex, zp));
    shiftedExp(in[1], zq, ex, col);
    step(builder.create<VLnOp>(loc, col, col));
    step(builder.create<VBrcbOp>(loc, col, ex));
    step(builder.create<VSubOp>(loc, zq, ex, zq));
    step(builder.create<VSubOp>(loc, zp, zq, zq));
    step(builder.create<VExpOp>(loc, zp, ex));
    step(builder.create<VMulOp>(loc, ex, zq, ex));
    builder.create<VReduceOp>(loc, ReduceKind::Sum, ex, out);
    break;
  }
  case RowOp::KlGrad: {
    // g / (rows·τ) · (softmax(s/τ) - softmax(t/τ)); wUb holds g·factor.
    Value z = scratch[0], pt = scratch[1], ex = scratch[2], col = columns[0];
    shiftedExp(in[0], z, pt, col);
    step(builder.create<VBrcbOp>(loc, col, z));
    step(builder.create<VDivOp>(loc, pt, z, pt));
    shiftedExp(in[1], z, ex, col);
    step(builder.create<VBrcbOp>(loc, col, z));
    step(builder.create<VDivOp>(loc, ex, z, ex));
    step(builder.create<VSubOp>(loc, ex, pt, ex));
    builder.create<VMulOp>(loc, ex, wUb, out);
    break;
  }
  case RowOp::RowSum:
    builder.create<VReduceOp>(loc, ReduceKind::Sum, in[0], out);
    break;
  case RowOp::BroadcastCol:
    builder.create<VBrcbOp>(loc, in[0], out);
    break;
  case RowOp::Rope: // built by buildRope above
    break;
  }
  // The next tile's compute rewrites the scratch tiles on this same pipe.
  barrier();
  e.set(Pipe::V, Pipe::MTE2, s);
  e.set(Pipe::V, Pipe::MTE3, s);

  // CopyOut.
  e.wait(Pipe::V, Pipe::MTE3, s);
  e.copy(Pipe::MTE3, out, {c0, c0}, output, {row0, c0}, r, outCols);
  e.set(Pipe::MTE3, Pipe::V, s);

  builder.setInsertionPointAfter(loop);
  for (Value s : {c0, c1}) {
    e.wait(Pipe::V, Pipe::MTE2, s);
    e.wait(Pipe::MTE3, Pipe::V, s);
  }
  return kernel;
}
