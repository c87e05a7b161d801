//===- MatmulKernel.cpp - tiled multi-core Cube matmul schedule -----------===//
//
// The schedule of research/ascend.md §9.1 (catlass's basic matmul, S33):
// C tiles dealt round-robin to cube cores; per tile a K loop over L1 blocks
// (MTE2, two slots per operand) split into L0 slices (MTE1, two slots),
// mmad accumulating in L0C, FixPipe out. Flags are pre-armed at kernel start
// and drained at the end, as catlass kernels do (S31), so every set is
// waited exactly once and no wait can block forever.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/MatmulKernel.h"
#include "KernelEmitter.h"
#include "attnedit/Ascend/ScheduleBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"

#include <functional>

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {

/// Where the result leaves L0C: FixPipe to GM (separated cores), or through
/// UB when the target has no L0C -> GM path (coupled 910A, S4).
struct Egress {
  bool viaUb = false;
  Pipe l0cPipe = Pipe::FIX; // the pipe that reads L0C
};

Egress egressOf(const TargetDescription &t) {
  Egress e;
  if (const PathSpec *p = t.findPath(Space::L0C, Space::GM)) {
    e.l0cPipe = p->pipe;
  } else if (const PathSpec *p = t.findPath(Space::L0C, Space::UB)) {
    e.viaUb = true;
    e.l0cPipe = p->pipe;
  }
  return e;
}

struct Sizes {
  int64_t aL1, bL1, aL0, bL0, cL0, cUb;
};

Sizes sizesOf(const MatmulProblem &p, const MatmulTiling &tl) {
  int64_t eb = dtypeBytes(p.dtype);
  Sizes s;
  s.aL1 = tileBytes(Layout::NZ, tl.baseM, tl.l1K(), eb, false);
  s.bL1 = p.transposedB ? tileBytes(Layout::NZ, tl.baseN, tl.l1K(), eb, false)
                        : tileBytes(Layout::NZ, tl.l1K(), tl.baseN, eb, false);
  s.aL0 = tileBytes(Layout::ZZ, tl.baseM, tl.baseK, eb, false);
  s.bL0 = tileBytes(Layout::ZN, tl.baseK, tl.baseN, eb, false);
  s.cL0 = tileBytes(Layout::NZ, tl.baseM, tl.baseN, 4, false);
  s.cUb = tileBytes(Layout::ND, tl.baseM, tl.baseN, eb, false);
  return s;
}

} // namespace

std::string mlir::attnedit::ascend::tilingShapeError(const MatmulTiling &tl) {
  // The Cube works on 16 x 16 fractals (S20).
  for (auto [field, v] : {std::pair<const char *, int64_t>{"baseM", tl.baseM},
                          {"baseN", tl.baseN},
                          {"baseK", tl.baseK}})
    if (v < 16 || v % 16)
      return (llvm::Twine(field) + " must be a positive multiple of 16 (S20), got " +
              llvm::Twine(v))
          .str();
  if (tl.stepK < 1)
    return ("stepK must be at least 1, got " + llvm::Twine(tl.stepK)).str();
  return "";
}

bool mlir::attnedit::ascend::tilingFits(const MatmulProblem &p, const MatmulTiling &tl,
                                        const TargetDescription &t, std::string *why) {
  Sizes s = sizesOf(p, tl);
  auto over = [&](Space space, int64_t bytes) {
    int64_t cap = t.usableBytes(space);
    if (bytes <= cap)
      return false;
    if (why)
      *why = (stringifySpace(space) + " needs " + llvm::Twine(bytes) + " bytes of " +
              llvm::Twine(cap))
                 .str();
    return true;
  };
  // Two slots of each operand in L1 and L0 (S7: L1 4 x 128 KB, L0A/B 2 x 32 KB).
  if (std::string bad = tilingShapeError(tl); !bad.empty()) {
    if (why)
      *why = bad;
    return false;
  }
  // A fused part's columns start a tile: each tile reads one weight and
  // writes one output.
  std::vector<int64_t> parts = p.parts();
  for (size_t i = 0; i + 1 < parts.size(); ++i)
    if (parts[i] % tl.baseN) {
      if (why)
        *why = ("baseN " + llvm::Twine(tl.baseN) + " does not divide fused part " + llvm::Twine(i) +
                " of " + llvm::Twine(parts[i]) + " columns")
                   .str();
      return false;
    }
  return !over(Space::L1, 2 * (s.aL1 + s.bL1)) && !over(Space::L0A, 2 * s.aL0) &&
         !over(Space::L0B, 2 * s.bL0) && !over(Space::L0C, s.cL0) &&
         !(egressOf(t).viaUb && over(Space::UB, s.cUb));
}

KernelOp mlir::attnedit::ascend::buildMatmulKernel(OpBuilder &builder, Location loc,
                                                   llvm::StringRef name, const MatmulProblem &p,
                                                   const MatmulTiling &tl,
                                                   const TargetDescription &t) {
  MLIRContext *ctx = builder.getContext();
  Type elem = cubeElementType(ctx, p.dtype), f32 = builder.getF32Type();
  Egress egress = egressOf(t);
  Sizes sizes = sizesOf(p, tl);
  int64_t tilesM = ceilDiv(p.m, tl.baseM), tilesN = ceilDiv(p.n, tl.baseN);
  int64_t tasks = p.batch * tilesM * tilesN;
  int64_t blockDim = std::min(tasks, t.cubeCores);
  int64_t kBlocks = ceilDiv(p.k, tl.l1K());
  bool batched = p.batch > 1;

  auto gm = [&](std::initializer_list<int64_t> dims) {
    SmallVector<int64_t> shape;
    if (batched)
      shape.push_back(p.batch);
    shape.append(dims.begin(), dims.end());
    return BufType::get(ctx, Space::GM, shape, elem, Layout::ND);
  };
  // Fused linears: part i's columns [starts[i], starts[i] + parts[i]) of C
  // are x·W_iᵀ, with a weight and an output tensor of their own.
  std::vector<int64_t> parts = p.parts(), starts;
  int64_t start = 0;
  for (int64_t w : parts) {
    starts.push_back(start);
    start += w;
  }
  BufType aType = gm({p.m, p.k});

  // TCubeTiling field names (S20); iterateOrder 1 = N varies fastest.
  Builder b(ctx);
  SmallVector<NamedAttribute> tiling;
  auto field = [&](StringRef key, int64_t v) { tiling.push_back(b.getNamedAttr(key, b.getI64IntegerAttr(v))); };
  field("usedCoreNum", blockDim);
  field("M", p.m);
  field("N", p.n); // all fused parts
  field("Ka", p.k);
  field("Kb", p.k);
  field("batch", p.batch);
  field("singleCoreM", tl.baseM);
  field("singleCoreN", tl.baseN);
  field("singleCoreK", p.k);
  field("baseM", tl.baseM);
  field("baseN", tl.baseN);
  field("baseK", tl.baseK);
  field("depthA1", 2 * tl.stepK);
  field("depthB1", 2 * tl.stepK);
  field("stepM", 1);
  field("stepN", 1);
  field("stepKa", tl.stepK);
  field("stepKb", tl.stepK);
  field("iterateOrder", 1);
  field("dbL0A", 2);
  field("dbL0B", 2);
  field("dbL0C", 1);
  field("isBias", 0);

  CoreKind core = t.separated ? CoreKind::AIC : CoreKind::Coupled;
  auto kernel = builder.create<KernelOp>(loc, name, t.reference(), blockDim, core,
                                         b.getDictionaryAttr(tiling), DenseI64ArrayAttr());
  if (p.transposedB)
    kernel->setAttr("ascend.transposed_b", b.getUnitAttr());
  if (parts.size() > 1)
    kernel->setAttr("ascend.n_parts", b.getDenseI64ArrayAttr(parts));
  Block *entry = new Block();
  kernel.getBody().push_back(entry);
  Value blk = entry->addArgument(builder.getIndexType(), loc);
  Value A = entry->addArgument(aType, loc);
  SmallVector<Value> Bs, Cs;
  for (int64_t n : parts)
    Bs.push_back(entry->addArgument(
        p.transposedB ? BufType::get(ctx, Space::GM, {n, p.k}, elem, Layout::ND) : gm({p.k, n}),
        loc));
  for (int64_t n : parts)
    Cs.push_back(entry->addArgument(gm({p.m, n}), loc));

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  auto cst = [&](int64_t v) -> Value { return builder.create<arith::ConstantIndexOp>(loc, v); };
  auto add = [&](Value x, Value y) -> Value { return builder.create<arith::AddIOp>(loc, x, y); };
  auto mul = [&](Value x, int64_t y) -> Value { return builder.create<arith::MulIOp>(loc, x, cst(y)); };
  auto div = [&](Value x, int64_t y) -> Value { return builder.create<arith::DivUIOp>(loc, x, cst(y)); };
  auto rem = [&](Value x, int64_t y) -> Value { return builder.create<arith::RemUIOp>(loc, x, cst(y)); };
  auto set = [&](Pipe s, Pipe d, Value ev) { builder.create<SetFlagOp>(loc, s, d, ev); };
  auto wait = [&](Pipe s, Pipe d, Value ev) { builder.create<WaitFlagOp>(loc, s, d, ev); };
  auto copy = [&](Pipe pipe, Value src, ValueRange so, Value dst, ValueRange dof, int64_t rows,
                  int64_t cols, bool transpose = false) {
    builder.create<CopyOp>(loc, pipe, src, so, dst, dof, ArrayRef<int64_t>{rows, cols}, transpose);
  };
  // Emits body(B, C, column in the part) for the part holding global
  // column `col`: an if / else chain over the parts (a tile never straddles
  // two, tilingFits).
  auto inPart = [&](Value col, llvm::function_ref<void(Value, Value, Value)> body) {
    std::function<void(size_t)> emit = [&](size_t i) {
      Value local = builder.create<arith::SubIOp>(loc, col, cst(starts[i]));
      if (i + 1 == parts.size())
        return body(Bs[i], Cs[i], local);
      Value here =
          builder.create<arith::CmpIOp>(loc, arith::CmpIPredicate::ult, col, cst(starts[i + 1]));
      auto branch = builder.create<scf::IfOp>(loc, here, /*withElseRegion=*/true);
      OpBuilder::InsertionGuard inner(builder);
      builder.setInsertionPointToStart(branch.thenBlock());
      body(Bs[i], Cs[i], local);
      builder.setInsertionPointToStart(branch.elseBlock());
      emit(i + 1);
    };
    if (parts.size() == 1)
      return body(Bs[0], Cs[0], col);
    emit(0);
  };
  auto alloc = [&](Space space, int64_t offset, int64_t slots, int64_t rows, int64_t cols, Type e,
                   Layout layout) -> Value {
    return builder.create<AllocOp>(loc, BufType::get(ctx, space, {rows, cols}, e, layout), offset,
                                   slots);
  };

  Value c0 = cst(0), c1 = cst(1);
  Value aL1 = alloc(Space::L1, 0, 2, tl.baseM, tl.l1K(), elem, Layout::NZ);
  Value bL1 = p.transposedB
                  ? alloc(Space::L1, 2 * sizes.aL1, 2, tl.baseN, tl.l1K(), elem, Layout::NZ)
                  : alloc(Space::L1, 2 * sizes.aL1, 2, tl.l1K(), tl.baseN, elem, Layout::NZ);
  Value aL0 = alloc(Space::L0A, 0, 2, tl.baseM, tl.baseK, elem, Layout::ZZ);
  Value bL0 = alloc(Space::L0B, 0, 2, tl.baseK, tl.baseN, elem, Layout::ZN);
  Value cL0 = alloc(Space::L0C, 0, 1, tl.baseM, tl.baseN, f32, Layout::NZ);
  Value cUb = egress.viaUb ? alloc(Space::UB, 0, 1, tl.baseM, tl.baseN, elem, Layout::ND) : Value();

  // The consumer-to-producer flags of the L1 and L0 slots and L0C (and UB):
  // pre-armed (isSet) so every buffer starts free, drained after the task
  // loop so the kernel ends with none outstanding. One list for both, so
  // every set is waited exactly once.
  auto freeFlags = [&](bool isSet) {
    auto flag = [&](Pipe s, Pipe d, Value ev) { isSet ? set(s, d, ev) : wait(s, d, ev); };
    for (Value s : {c0, c1}) {
      flag(Pipe::MTE1, Pipe::MTE2, s);
      flag(Pipe::M, Pipe::MTE1, s);
    }
    flag(egress.l0cPipe, Pipe::M, c0);
    if (egress.viaUb)
      flag(Pipe::MTE3, egress.l0cPipe, c0);
  };
  freeFlags(/*isSet=*/true);

  auto tasksLoop = builder.create<scf::ForOp>(loc, blk, cst(tasks), cst(blockDim));
  builder.setInsertionPointToStart(tasksLoop.getBody());
  Value task = tasksLoop.getInductionVar();
  Value iter = div(builder.create<arith::SubIOp>(loc, task, blk), blockDim);
  Value bi = div(task, tilesM * tilesN), r = rem(task, tilesM * tilesN);
  Value row0 = mul(div(r, tilesN), tl.baseM), col0 = mul(rem(r, tilesN), tl.baseN);
  auto gmIndex = [&](std::initializer_list<Value> xy) {
    SmallVector<Value> idx;
    if (batched)
      idx.push_back(bi);
    idx.append(xy.begin(), xy.end());
    return idx;
  };
  wait(egress.l0cPipe, Pipe::M, c0);

  auto kLoop = builder.create<scf::ForOp>(loc, c0, cst(kBlocks), c1);
  builder.setInsertionPointToStart(kLoop.getBody());
  Value kb = kLoop.getInductionVar();
  Value g1 = add(mul(iter, kBlocks), kb), s1 = rem(g1, 2);
  Value aS = builder.create<SlotOp>(loc, aL1.getType(), aL1, s1);
  Value bS = builder.create<SlotOp>(loc, bL1.getType(), bL1, s1);
  Value k0 = mul(kb, tl.l1K());
  wait(Pipe::MTE1, Pipe::MTE2, s1);
  copy(Pipe::MTE2, A, gmIndex({row0, k0}), aS, {c0, c0}, tl.baseM, tl.l1K());
  inPart(col0, [&](Value B, Value, Value col) {
    if (p.transposedB)
      copy(Pipe::MTE2, B, {col, k0}, bS, {c0, c0}, tl.baseN, tl.l1K());
    else
      copy(Pipe::MTE2, B, gmIndex({k0, col}), bS, {c0, c0}, tl.l1K(), tl.baseN);
  });
  set(Pipe::MTE2, Pipe::MTE1, s1);
  wait(Pipe::MTE2, Pipe::MTE1, s1);

  auto sliceLoop = builder.create<scf::ForOp>(loc, c0, cst(tl.stepK), c1);
  builder.setInsertionPointToStart(sliceLoop.getBody());
  Value kk = sliceLoop.getInductionVar();
  Value g0 = add(mul(g1, tl.stepK), kk), s0 = rem(g0, 2);
  Value a0 = builder.create<SlotOp>(loc, aL0.getType(), aL0, s0);
  Value b0 = builder.create<SlotOp>(loc, bL0.getType(), bL0, s0);
  Value kOff = mul(kk, tl.baseK);
  wait(Pipe::M, Pipe::MTE1, s0);
  copy(Pipe::MTE1, aS, {c0, kOff}, a0, {c0, c0}, tl.baseM, tl.baseK);
  if (p.transposedB)
    copy(Pipe::MTE1, bS, {c0, kOff}, b0, {c0, c0}, tl.baseK, tl.baseN, /*transpose=*/true);
  else
    copy(Pipe::MTE1, bS, {kOff, c0}, b0, {c0, c0}, tl.baseK, tl.baseN);
  set(Pipe::MTE1, Pipe::M, s0);
  wait(Pipe::MTE1, Pipe::M, s0);
  Value first = builder.create<arith::CmpIOp>(loc, arith::CmpIPredicate::eq,
                                              add(mul(kb, tl.stepK), kk), c0);
  builder.create<MmadOp>(loc, a0, b0, cL0, first);
  // S55: the next mmad accumulates into the same L0C on the same pipe.
  builder.create<BarrierOp>(loc, Pipe::M);
  set(Pipe::M, Pipe::MTE1, s0);

  builder.setInsertionPointAfter(sliceLoop);
  set(Pipe::MTE1, Pipe::MTE2, s1);

  builder.setInsertionPointAfter(kLoop);
  set(Pipe::M, egress.l0cPipe, c0);
  wait(Pipe::M, egress.l0cPipe, c0);
  if (!egress.viaUb) {
    inPart(col0, [&](Value, Value C, Value col) {
      copy(egress.l0cPipe, cL0, {c0, c0}, C, gmIndex({row0, col}), tl.baseM, tl.baseN);
    });
    set(egress.l0cPipe, Pipe::M, c0);
  } else {
    wait(Pipe::MTE3, egress.l0cPipe, c0);
    copy(egress.l0cPipe, cL0, {c0, c0}, cUb, {c0, c0}, tl.baseM, tl.baseN);
    set(egress.l0cPipe, Pipe::M, c0);
    set(egress.l0cPipe, Pipe::MTE3, c0);
    wait(egress.l0cPipe, Pipe::MTE3, c0);
    inPart(col0, [&](Value, Value C, Value col) {
      copy(Pipe::MTE3, cUb, {c0, c0}, C, gmIndex({row0, col}), tl.baseM, tl.baseN);
    });
    set(Pipe::MTE3, egress.l0cPipe, c0);
  }

  builder.setInsertionPointAfter(tasksLoop);
  freeFlags(/*isSet=*/false);
  return kernel;
}

llvm::Expected<TilingChoice>
mlir::attnedit::ascend::searchMatmulTiling(MLIRContext *context, const MatmulProblem &p,
                                           const TargetDescription &t) {
  OpBuilder builder(context);
  Location loc = builder.getUnknownLoc();
  OwningOpRef<ModuleOp> scratch = ModuleOp::create(loc);
  std::optional<TilingChoice> best;
  int64_t candidates = 0;
  const SmallVector<int64_t> sizes{16, 32, 64, 128, 256};
  // Besides powers of two, M and N sizes that cut the dimension into about
  // c·cores tiles (c = 1..4): 64 tiles of 4096 / 64 for 24 cores leave the
  // last wave 2/3 full, 24 tiles of 4096 / 176 none (a decode GEMM, streamed
  // weights: 38.6 -> 33.7 us for Qwen3-8B's o_proj). The cost model, which
  // charges the busiest core's tasks, weighs them against the larger tiles'
  // fewer bytes per flop.
  auto withWaveSizes = [&](int64_t dim) {
    SmallVector<int64_t> out = sizes;
    for (int64_t c = 1; c <= 4; ++c) {
      int64_t size = roundUp(ceilDiv(dim, c * t.cubeCores), 16);
      if (size >= 48 && size <= 256 && !llvm::is_contained(out, size))
        out.push_back(size);
    }
    return out;
  };
  for (int64_t m0 : withWaveSizes(p.m))
    for (int64_t n0 : withWaveSizes(p.n))
      for (int64_t k0 : sizes)
        for (int64_t stepK : {1, 2, 4, 8}) {
          // A tile larger than the padded problem only adds padding; 16-wide
          // tiles of a dimension of 128 or more only add instructions.
          auto useful = [](int64_t size, int64_t dim) {
            return size <= roundUp(dim, 16) && (size >= 32 || roundUp(dim, 16) < 128);
          };
          if (!useful(m0, p.m) || !useful(n0, p.n) || !useful(k0, p.k) ||
              k0 * stepK > roundUp(p.k, k0))
            continue;
          MatmulTiling tl{m0, n0, k0, stepK};
          if (!tilingFits(p, tl, t))
            continue;
          // Time a sample: the same tiling on a problem cut to at most two
          // tasks per core, scaled to the full count; the L2 hit ratios are
          // those of the full problem (A is read once per N tile, B once per
          // M tile).
          int64_t tilesM = ceilDiv(p.m, m0), tilesN = ceilDiv(p.n, n0);
          int64_t tasks = p.batch * tilesM * tilesN;
          int64_t blockDim = std::min(tasks, t.cubeCores);
          int64_t perBlock = ceilDiv(tasks, blockDim);
          int64_t sampled = std::min<int64_t>(perBlock, 2);
          MatmulProblem sample = p;
          sample.batch = 1;
          sample.m = std::min(p.m, std::max<int64_t>(1, ceilDiv(sampled * blockDim, tilesN)) * m0);
          int64_t eb = dtypeBytes(p.dtype);
          double a = double(p.batch) * p.m * p.k * eb,
                 b = double(p.n) * p.k * (p.transposedB ? 1 : p.batch) * eb;
          auto hit = [&](double size, int64_t reads) {
            return size <= t.l2ReuseFraction * t.l2Bytes && reads > 1 ? 1.0 - 1.0 / reads : 0.0;
          };
          EstimateOptions options;
          options.representative = true;
          options.l2HitRatio = {hit(a, tilesN), hit(b, tilesM), 0.0};
          builder.setInsertionPointToEnd(scratch->getBody());
          KernelOp kernel = buildMatmulKernel(builder, loc, "candidate", sample, tl, t);
          // Block 0 holds the most tasks when they are dealt round-robin.
          llvm::Expected<Schedule> s = buildSchedule(kernel, {0});
          if (!s)
            return s.takeError();
          int64_t sampleTasks = 0;
          {
            int64_t st = ceilDiv(sample.m, m0) * tilesN;
            int64_t sbd = std::min(st, t.cubeCores);
            sampleTasks = ceilDiv(st, sbd);
            s->blockDim = blockDim; // cores sharing GM bandwidth in the full problem
          }
          options.timeScale = double(perBlock) / sampleTasks;
          llvm::Expected<KernelEstimate> e = estimate(*s, options);
          kernel.erase();
          if (!e)
            return e.takeError();
          ++candidates;
          if (!best || e->seconds < best->estimate.seconds)
            best = TilingChoice{tl, std::move(*e), 0};
        }
  if (!best)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "no matmul tiling fits the buffers of %s", t.name.c_str());
  best->candidates = candidates;
  return *best;
}
