//===- AttentionKernel.cpp - flash attention as a mix kernel ---------------===//
//
// The schedule of research/ascend.md §9.3 on catlass FlashAttentionInfer's
// plan (S30): per task (a KV head's group of query rows, bq at a time) the
// AIC loads Q once, then for each KV tile j of the causal / window range
//   QK(j):  K tile -> L1, K chunks -> L0B (transposed), Q chunks -> L0A,
//           mmad into L0C, FixPipe S -> ring slot, cross_set(FIX, QK)
//   PV(j):  cross_wait(P), P and V -> L1 -> L0, mmad per N chunk,
//           FixPipe O_tmp -> ring slot, cross_set(FIX, PV)
// with QK running ring - 1 tiles ahead of PV; each AIV, for its half of
// the rows,
//   SOFTMAX(j): cross_wait(QK), S -> UB, scale (+ mask), running max m,
//               p = exp(s - m), running sum l, P -> ring, cross_set(MTE3, P)
//   RESCALE(j): cross_wait(PV), O_tmp -> UB, O = O·exp(m_old - m_new) + O_tmp
// and at the end O / l -> GM. Intra-core flags are pre-armed at kernel start
// and drained at the end, as catlass kernels do (S31); the cross-core flags
// balance per task, so the kernel ends with none pending.
//
// With KV splits (decode), a task is one part of a query tile's KV tiles;
// its AIVs end with O / l and m + ln l into workspace, every core meets at
// sync_all, and the AIVs then combine the parts of each row tile:
// O = Σ exp(lse_i - max) O_i / Σ exp(lse_i - max) (flash decoding, S27).
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AttentionKernel.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/TileLayout.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {

// Cross-core flag ids (S23 allows 0-10; catlass keeps 8-10 for barriers).
constexpr int64_t kQkReady = 0, kPReady = 1, kPvReady = 2;
// The finite stand-in for -inf of the mask (softmax gives exactly 0).
constexpr double kMasked = -3e38;

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

Type elementType(MLIRContext *ctx, DType d) {
  Builder b(ctx);
  return d == DType::F32 ? b.getF32Type() : d == DType::F16 ? b.getF16Type() : b.getBF16Type();
}

struct Dims {
  int64_t dk, dv, r; // padded head dims, rows per AIV
  Dims(const AttentionProblem &p, const AttentionTiling &tl)
      : dk(roundUp(p.dk, 16)), dv(roundUp(p.dv, 16)), r(tl.bq / 2) {}
};

/// Bytes per space the kernel allocates, in allocation order.
struct Footprint {
  std::array<int64_t, kNumSpaces> bytes{};
};

Footprint footprint(const AttentionProblem &p, const AttentionTiling &tl) {
  Dims d(p, tl);
  int64_t eb = dtypeBytes(p.dtype);
  Footprint f;
  auto add = [&](Space s, Layout l, int64_t rows, int64_t cols, int64_t e, int64_t slots) {
    f.bytes[(int)s] += slots * tileBytes(l, rows, cols, e, false);
  };
  add(Space::L1, Layout::NZ, tl.bq, d.dk, eb, 1);
  add(Space::L1, Layout::NZ, tl.bk, d.dk, eb, tl.ring);
  add(Space::L1, Layout::NZ, tl.bq, tl.bk, eb, 1);
  if (!p.valueFromKey)
    add(Space::L1, Layout::NZ, tl.bk, d.dv, eb, 1);
  add(Space::L0A, Layout::ZZ, tl.bq, tl.kChunk, eb, 2);
  add(Space::L0A, Layout::ZZ, tl.bq, tl.bk, eb, 1);
  add(Space::L0B, Layout::ZN, tl.kChunk, tl.bk, eb, 2);
  add(Space::L0B, Layout::ZN, tl.bk, tl.nChunk, eb, 2);
  add(Space::L0C, Layout::NZ, tl.bq, tl.bk, 4, 1);
  add(Space::L0C, Layout::NZ, tl.bq, tl.nChunk, 4, 1);
  add(Space::UB, Layout::ND, d.r, tl.bk, 4, 3);
  add(Space::UB, Layout::ND, d.r, tl.bk, eb, 1);
  add(Space::UB, Layout::ND, d.r, 1, 4, 6 + tl.ring + (p.sinks ? 1 : 0));
  add(Space::UB, Layout::ND, d.r, d.dv, 4, 3);
  return f;
}

} // namespace

bool mlir::attnedit::ascend::attentionFits(const AttentionProblem &p, const AttentionTiling &tl,
                                           const TargetDescription &t, std::string *why) {
  auto fail = [&](const llvm::Twine &msg) {
    if (why)
      *why = msg.str();
    return false;
  };
  if (!t.separated)
    return fail(t.name + " has coupled AI cores: no cube/vector mix kernel");
  if (t.vectorCoresPerCube != 2)
    return fail("the kernel splits rows between exactly two vector cores per cube core");
  Dims d(p, tl);
  if (tl.bq % 32 && tl.bq != 16)
    return fail("bq must be 16 or a multiple of 32 (two AIVs of 16-row fractals)");
  if (tl.bq % 16 || tl.bk % 16 || tl.kChunk % 16 || tl.nChunk % 16 || tl.kChunk < 16 ||
      tl.nChunk < 16 || d.dk % tl.kChunk || d.dv % tl.nChunk || tl.ring < 2)
    return fail("tiles must be multiples of 16 dividing the padded head dims, ring >= 2");
  Footprint f = footprint(p, tl);
  for (int s = 1; s < kNumSpaces; ++s) {
    int64_t cap = t.buffers[s].bytes - (s == (int)Space::UB ? t.ubReserveBytes : 0);
    if (f.bytes[s] > cap)
      return fail(stringifySpace(static_cast<Space>(s)) + " needs " + llvm::Twine(f.bytes[s]) +
                  " bytes of " + llvm::Twine(cap));
  }
  return true;
}

std::vector<AttentionTiling>
mlir::attnedit::ascend::attentionTilings(const AttentionProblem &p, const TargetDescription &t) {
  std::vector<AttentionTiling> out;
  int64_t rows = roundUp(p.rows(), 16), keys = roundUp(p.tk, 16);
  int64_t dk = roundUp(p.dk, 16), dv = roundUp(p.dv, 16);
  for (int64_t bq : {128, 64, 32, 16})
    for (int64_t bk : {256, 128, 64, 32, 16})
      for (int64_t ring : {2, 3}) {
        if ((bq > rows && bq > 16) || (bk > keys && bk > 16))
          continue;
        // The largest Cube chunks that fit.
        for (int64_t kc : {128, 64, 32, 16}) {
          if (dk % kc)
            continue;
          bool found = false;
          for (int64_t nc : {128, 64, 32, 16}) {
            if (dv % nc)
              continue;
            AttentionTiling tl{bq, bk, ring, kc, nc};
            if (attentionFits(p, tl, t)) {
              out.push_back(tl);
              found = true;
              break;
            }
          }
          if (found)
            break;
        }
      }
  // Smaller tiles than these only add instructions and flag round trips.
  if (out.size() > 8)
    out.resize(8);
  // A part's log-sum-exp is not the row's: no splits when it is saved.
  size_t base = p.saveLse ? 0 : std::min<size_t>(out.size(), 2);
  for (size_t i = 0; i < base; ++i)
    for (int64_t splits : {2, 3, 4, 6})
      if (splits <= decodeKvTiles(p, out[i].bk)) {
        AttentionTiling tl = out[i];
        tl.splits = splits;
        out.push_back(tl);
      }
  return out;
}

int64_t mlir::attnedit::ascend::decodeKvTiles(const AttentionProblem &p, int64_t bk) {
  if (p.tq != 1)
    return 0;
  int64_t pos = p.tk - 1, lo = p.window ? std::max<int64_t>(0, pos - p.window + 1) : 0;
  return pos / bk - lo / bk + 1;
}

llvm::SmallVector<int64_t> mlir::attnedit::ascend::sampleBlocks(int64_t blockDim) {
  llvm::SmallVector<int64_t> blocks;
  if (blockDim <= 4) {
    for (int64_t b = 0; b < blockDim; ++b)
      blocks.push_back(b);
    return blocks;
  }
  return {0, blockDim / 2, blockDim - 1};
}

llvm::Expected<AttentionChoice>
mlir::attnedit::ascend::searchAttentionTiling(MLIRContext *context, const AttentionProblem &p,
                                              const TargetDescription &t) {
  std::vector<AttentionTiling> candidates = attentionTilings(p, t);
  if (candidates.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "no flash-attention tiling fits the buffers of %s",
                                   t.name.c_str());
  OpBuilder builder(context);
  Location loc = builder.getUnknownLoc();
  OwningOpRef<ModuleOp> scratch = ModuleOp::create(loc);
  std::optional<AttentionChoice> best;
  for (const AttentionTiling &tl : candidates) {
    llvm::Expected<KernelEstimate> e = estimateCandidate(
        builder, *scratch,
        [&](OpBuilder &b) { return buildAttentionKernel(b, loc, "candidate", p, tl, t); }, {0});
    if (!e)
      return e.takeError();
    if (!best || e->seconds < best->estimate.seconds)
      best = AttentionChoice{tl, std::move(*e), 0};
  }
  best->candidates = candidates.size();
  return *best;
}

llvm::Expected<KernelEstimate>
mlir::attnedit::ascend::estimateCandidate(OpBuilder &builder, ModuleOp scratch,
                                          llvm::function_ref<KernelOp(OpBuilder &)> build,
                                          llvm::ArrayRef<int64_t> blocks) {
  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(scratch.getBody());
  KernelOp kernel = build(builder);
  llvm::Expected<Schedule> s = buildSchedule(kernel, blocks);
  if (!s) {
    kernel.erase();
    return s.takeError();
  }
  EstimateOptions options;
  options.representative = true;
  llvm::Expected<KernelEstimate> e = estimate(*s, options);
  kernel.erase();
  return e;
}

std::vector<float> mlir::attnedit::ascend::attentionMaskRows(const AttentionProblem &p,
                                                             const AttentionTiling &tl) {
  int64_t rows = p.window + 2 * tl.bk - 1;
  std::vector<float> m(rows * tl.bk);
  for (int64_t a = 0; a < rows; ++a)
    for (int64_t c = 0; c < tl.bk; ++c) {
      int64_t dist = a - (tl.bk - 1) - c; // query position - key position
      bool visible = dist >= 0 && (p.window == 0 || dist < p.window);
      m[a * tl.bk + c] = visible ? 0.0f : static_cast<float>(kMasked);
    }
  return m;
}

std::vector<float> mlir::attnedit::ascend::attentionSinkRows(const AttentionProblem &p,
                                                             llvm::ArrayRef<float> sinks) {
  std::vector<float> out(p.groups * p.rows());
  for (int64_t g = 0; g < p.groups; ++g)
    for (int64_t row = 0; row < p.rows(); ++row)
      out[g * p.rows() + row] = sinks[g * p.headsPerGroup + row / p.tq];
  return out;
}

KernelOp mlir::attnedit::ascend::buildAttentionKernel(OpBuilder &builder, Location loc,
                                                      llvm::StringRef name,
                                                      const AttentionProblem &p,
                                                      const AttentionTiling &tl,
                                                      const TargetDescription &t) {
  MLIRContext *ctx = builder.getContext();
  Builder b(ctx);
  Type elem = elementType(ctx, p.dtype), f32 = b.getF32Type();
  Dims d(p, tl);
  const int64_t M = p.rows(), R = tl.ring, L = tl.ring - 1, r = d.r;
  // KV splits: `per` tiles each, every part non-empty.
  const int64_t kvTiles = tl.splits > 1 ? decodeKvTiles(p, tl.bk) : 0;
  const int64_t per = tl.splits > 1 ? ceilDiv(kvTiles, std::min(tl.splits, kvTiles)) : 0;
  const int64_t splits = tl.splits > 1 ? ceilDiv(kvTiles, per) : 1;
  const int64_t qTiles = ceilDiv(M, tl.bq), tasks = p.groups * qTiles * splits;
  const int64_t blockDim = std::min(tasks, t.cubeCores);
  const int64_t maskRows = p.window + 2 * tl.bk - 1;
  const int64_t kChunks = d.dk / tl.kChunk, nChunks = d.dv / tl.nChunk;

  // TCubeTiling-style record with FlashAttentionScore's vocabulary (S20, S29).
  SmallVector<NamedAttribute> tiling;
  auto field = [&](StringRef key, int64_t v) {
    tiling.push_back(b.getNamedAttr(key, b.getI64IntegerAttr(v)));
  };
  field("usedCoreNum", blockDim);
  field("qTile", tl.bq);
  field("kvTile", tl.bk);
  field("preLaunch", L);
  field("baseK", tl.kChunk);
  field("baseN", tl.nChunk);
  field("sparseMode", p.window ? 4 : 3); // band / rightDownCausal (S29)
  field("preTokens", p.window ? p.window - 1 : p.tk);
  field("nextTokens", 0);
  field("numSinks", p.sinks ? 1 : 0);
  field("splitKV", splits);

  auto gm = [&](std::initializer_list<int64_t> shape, Type e) {
    return BufType::get(ctx, Space::GM, shape, e, Layout::ND);
  };
  auto kernel = builder.create<KernelOp>(loc, name, t.name, blockDim, CoreKind::Mix,
                                         b.getDictionaryAttr(tiling), DenseI64ArrayAttr());
  Block *entry = new Block();
  kernel.getBody().push_back(entry);
  Value blk = entry->addArgument(builder.getIndexType(), loc);
  Value coreIdx = entry->addArgument(builder.getIndexType(), loc);
  Value Q = entry->addArgument(gm({p.groups, M, p.dk}, elem), loc);
  Value K = entry->addArgument(gm({p.groups, p.tk, p.dk}, elem), loc);
  Value V = p.valueFromKey ? K : entry->addArgument(gm({p.groups, p.tk, p.dv}, elem), loc);
  Value maskGm = entry->addArgument(gm({maskRows, tl.bk}, f32), loc);
  Value sinkGm = p.sinks ? entry->addArgument(gm({p.groups * M, 1}, f32), loc) : Value();
  int64_t firstWs = entry->getNumArguments() - 2;
  Value wsS = entry->addArgument(gm({blockDim * R, tl.bq, tl.bk}, f32), loc);
  Value wsP = entry->addArgument(gm({blockDim * R, tl.bq, tl.bk}, elem), loc);
  Value wsO = entry->addArgument(gm({blockDim * R, tl.bq, d.dv}, f32), loc);
  SmallVector<int64_t> workspace{firstWs, firstWs + 1, firstWs + 2};
  Value wsPart, wsLse;
  if (splits > 1) {
    wsPart = entry->addArgument(gm({splits * p.groups * M, d.dv}, f32), loc);
    wsLse = entry->addArgument(gm({splits * p.groups * M, 1}, f32), loc);
    workspace.append({firstWs + 3, firstWs + 4});
  }
  Value lseOut = p.saveLse ? entry->addArgument(gm({p.groups, M, 1}, f32), loc) : Value();
  Value out = entry->addArgument(gm({p.tq, p.heads() * p.dv}, f32), loc);
  kernel.setWorkspaceAttr(b.getDenseI64ArrayAttr(workspace));

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  auto cst = [&](int64_t v) -> Value { return builder.create<arith::ConstantIndexOp>(loc, v); };
  auto add = [&](Value x, Value y) -> Value { return builder.create<arith::AddIOp>(loc, x, y); };
  auto sub = [&](Value x, Value y) -> Value { return builder.create<arith::SubIOp>(loc, x, y); };
  auto mul = [&](Value x, int64_t y) -> Value { return builder.create<arith::MulIOp>(loc, x, cst(y)); };
  auto div = [&](Value x, int64_t y) -> Value { return builder.create<arith::DivUIOp>(loc, x, cst(y)); };
  auto rem = [&](Value x, int64_t y) -> Value { return builder.create<arith::RemUIOp>(loc, x, cst(y)); };
  auto cmp = [&](arith::CmpIPredicate pred, Value x, Value y) -> Value {
    return builder.create<arith::CmpIOp>(loc, pred, x, y);
  };
  auto select = [&](Value c, Value x, Value y) -> Value {
    return builder.create<arith::SelectOp>(loc, c, x, y);
  };
  auto smax = [&](Value x, Value y) -> Value { return builder.create<arith::MaxSIOp>(loc, x, y); };
  auto smin = [&](Value x, Value y) -> Value { return builder.create<arith::MinSIOp>(loc, x, y); };
  auto set = [&](Pipe s, Pipe dd, int64_t ev) { builder.create<SetFlagOp>(loc, s, dd, cst(ev)); };
  auto wait = [&](Pipe s, Pipe dd, int64_t ev) { builder.create<WaitFlagOp>(loc, s, dd, cst(ev)); };
  auto setV = [&](Pipe s, Pipe dd, Value ev) { builder.create<SetFlagOp>(loc, s, dd, ev); };
  auto waitV = [&](Pipe s, Pipe dd, Value ev) { builder.create<WaitFlagOp>(loc, s, dd, ev); };
  auto xset = [&](Pipe pipe, int64_t flag) { builder.create<CrossSetOp>(loc, pipe, cst(flag)); };
  auto xwait = [&](int64_t flag) { builder.create<CrossWaitOp>(loc, cst(flag)); };
  auto copy = [&](Pipe pipe, Value src, ValueRange so, Value dst, ValueRange dof, int64_t rows,
                  int64_t cols, bool transpose = false) {
    builder.create<CopyOp>(loc, pipe, src, so, dst, dof, ArrayRef<int64_t>{rows, cols}, transpose);
  };
  std::array<int64_t, kNumSpaces> offset{};
  auto alloc = [&](Space space, Layout layout, int64_t rows, int64_t cols, Type e,
                   int64_t slots = 1) -> Value {
    auto type = BufType::get(ctx, space, {rows, cols}, e, layout);
    Value v = builder.create<AllocOp>(loc, type, offset[(int)space], slots);
    offset[(int)space] += roundUp(type.getBytes() * slots, t.buffer(space).align);
    return v;
  };
  auto slot = [&](Value buf, Value i) -> Value {
    return builder.create<SlotOp>(loc, buf.getType(), buf, i);
  };
  /// scf.if without results; `then` builds the body.
  auto when = [&](Value cond, llvm::function_ref<void()> then) {
    auto op = builder.create<scf::IfOp>(loc, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard g(builder);
    builder.setInsertionPointToStart(&op.getThenRegion().front());
    then();
  };
  /// scf.for from lo to hi; `body` gets the induction variable.
  auto loop = [&](Value lo, Value hi, int64_t step, llvm::function_ref<void(Value)> body) {
    auto op = builder.create<scf::ForOp>(loc, lo, hi, cst(step));
    OpBuilder::InsertionGuard g(builder);
    builder.setInsertionPointToStart(op.getBody());
    body(op.getInductionVar());
  };

  Value c0 = cst(0);
  using P = arith::CmpIPredicate;

  /// Per task: its KV group, first query row, and the range of KV tiles its
  /// rows see (research §9.6: a window visits only the tiles it overlaps).
  struct Task {
    Value group, row0, jLo, n, pMin, pMax, split;
  };
  auto taskOf = [&](Value task) {
    Task k;
    k.split = rem(task, splits);
    task = div(task, splits);
    k.group = div(task, qTiles);
    k.row0 = mul(rem(task, qTiles), tl.bq);
    Value last = sub(smin(add(k.row0, cst(tl.bq)), cst(M)), cst(1));
    Value same = cmp(P::eq, div(k.row0, p.tq), div(last, p.tq));
    Value tMin = select(same, rem(k.row0, p.tq), c0);
    Value tMax = select(same, rem(last, p.tq), cst(p.tq - 1));
    k.pMin = add(tMin, cst(p.tk - p.tq));
    k.pMax = add(tMax, cst(p.tk - p.tq));
    Value lo = p.window ? smax(c0, sub(k.pMin, cst(p.window - 1))) : c0;
    k.jLo = div(lo, tl.bk);
    k.n = add(sub(div(k.pMax, tl.bk), k.jLo), cst(1));
    if (splits > 1) {
      Value skip = mul(k.split, per);
      k.jLo = add(k.jLo, skip);
      k.n = smin(cst(per), sub(k.n, skip));
    }
    return k;
  };
  auto ringSlot = [&](Value s) { return add(mul(blk, R), s); };

  Value isCube = cmp(P::eq, coreIdx, c0);
  //===------------------------------------------------------------------===//
  // The cube core.
  //===------------------------------------------------------------------===//
  when(isCube, [&] {
    Value qL1 = alloc(Space::L1, Layout::NZ, tl.bq, d.dk, elem);
    Value kL1 = alloc(Space::L1, Layout::NZ, tl.bk, d.dk, elem, R);
    Value pL1 = alloc(Space::L1, Layout::NZ, tl.bq, tl.bk, elem);
    Value vL1 = p.valueFromKey ? Value() : alloc(Space::L1, Layout::NZ, tl.bk, d.dv, elem);
    Value qa = alloc(Space::L0A, Layout::ZZ, tl.bq, tl.kChunk, elem, 2);
    Value pa = alloc(Space::L0A, Layout::ZZ, tl.bq, tl.bk, elem);
    Value kb = alloc(Space::L0B, Layout::ZN, tl.kChunk, tl.bk, elem, 2);
    Value vb = alloc(Space::L0B, Layout::ZN, tl.bk, tl.nChunk, elem, 2);
    Value sC = alloc(Space::L0C, Layout::NZ, tl.bq, tl.bk, f32);
    Value oC = alloc(Space::L0C, Layout::NZ, tl.bq, tl.nChunk, f32);
    // Events: MTE1->MTE2 / MTE2->MTE1: 0 qL1, 1+s kL1 slot s, 5 pL1, 6 vL1;
    // MTE1<->M: 0/1 QK chunk slots, 2 pa, 3/4 PV chunk slots; M<->FIX: 0 sC, 1 oC.
    const int64_t evP = 5, evV = 6;
    // Every buffer starts free: the consumer-to-producer flags are set
    // before the loop (pre-armed) and waited after it (drained).
    auto freeFlags = [&](llvm::function_ref<void(Pipe, Pipe, int64_t)> flag) {
      for (int64_t e : {int64_t(0), evP, evV})
        flag(Pipe::MTE1, Pipe::MTE2, e);
      for (int64_t s = 0; s < R; ++s)
        flag(Pipe::MTE1, Pipe::MTE2, 1 + s);
      for (int64_t e = 0; e < 5; ++e)
        flag(Pipe::M, Pipe::MTE1, e);
      flag(Pipe::FIX, Pipe::M, 0);
      flag(Pipe::FIX, Pipe::M, 1);
    };
    freeFlags(set);

    loop(blk, cst(tasks), blockDim, [&](Value task) {
      Task k = taskOf(task);
      wait(Pipe::MTE1, Pipe::MTE2, 0);
      copy(Pipe::MTE2, Q, {k.group, k.row0, c0}, qL1, {c0, c0}, tl.bq, d.dk);
      set(Pipe::MTE2, Pipe::MTE1, 0);
      wait(Pipe::MTE2, Pipe::MTE1, 0);

      loop(c0, add(k.n, cst(L)), 1, [&](Value step) {
        // QK(step): S = Q·Kᵀ of KV tile jLo + step into ring slot step % R.
        when(cmp(P::ult, step, k.n), [&] {
          Value s = rem(step, R), ev = add(s, cst(1));
          Value kS = slot(kL1, s);
          Value j0 = mul(add(k.jLo, step), tl.bk);
          waitV(Pipe::MTE1, Pipe::MTE2, ev);
          copy(Pipe::MTE2, K, {k.group, j0, c0}, kS, {c0, c0}, tl.bk, d.dk);
          setV(Pipe::MTE2, Pipe::MTE1, ev);
          waitV(Pipe::MTE2, Pipe::MTE1, ev);
          wait(Pipe::FIX, Pipe::M, 0);
          for (int64_t c = 0; c < kChunks; ++c) {
            Value cs = rem(add(mul(step, kChunks), cst(c)), 2);
            waitV(Pipe::M, Pipe::MTE1, cs);
            copy(Pipe::MTE1, qL1, {c0, cst(c * tl.kChunk)}, slot(qa, cs), {c0, c0}, tl.bq,
                 tl.kChunk);
            copy(Pipe::MTE1, kS, {c0, cst(c * tl.kChunk)}, slot(kb, cs), {c0, c0}, tl.kChunk,
                 tl.bk, /*transpose=*/true);
            setV(Pipe::MTE1, Pipe::M, cs);
            waitV(Pipe::MTE1, Pipe::M, cs);
            builder.create<MmadOp>(loc, slot(qa, cs), slot(kb, cs), sC,
                                   builder.create<arith::ConstantIntOp>(loc, c == 0, 1));
            // S55: the next chunk accumulates into sC on the same pipe.
            builder.create<BarrierOp>(loc, Pipe::M);
            setV(Pipe::M, Pipe::MTE1, cs);
          }
          if (!p.valueFromKey)
            setV(Pipe::MTE1, Pipe::MTE2, ev);
          set(Pipe::M, Pipe::FIX, 0);
          wait(Pipe::M, Pipe::FIX, 0);
          copy(Pipe::FIX, sC, {c0, c0}, wsS, {ringSlot(s), c0, c0}, tl.bq, tl.bk);
          set(Pipe::FIX, Pipe::M, 0);
          xset(Pipe::FIX, kQkReady);
        });
        // PV(step - L): O_tmp = P·V once both AIVs have written P.
        when(cmp(P::uge, step, cst(L)), [&] {
          Value tile = sub(step, cst(L));
          Value s = rem(tile, R);
          Value j0 = mul(add(k.jLo, tile), tl.bk);
          xwait(kPReady);
          wait(Pipe::MTE1, Pipe::MTE2, evP);
          copy(Pipe::MTE2, wsP, {ringSlot(s), c0, c0}, pL1, {c0, c0}, tl.bq, tl.bk);
          if (!p.valueFromKey) {
            wait(Pipe::MTE1, Pipe::MTE2, evV);
            copy(Pipe::MTE2, V, {k.group, j0, c0}, vL1, {c0, c0}, tl.bk, d.dv);
          }
          set(Pipe::MTE2, Pipe::MTE1, evP);
          wait(Pipe::MTE2, Pipe::MTE1, evP);
          wait(Pipe::M, Pipe::MTE1, 2);
          copy(Pipe::MTE1, pL1, {c0, c0}, pa, {c0, c0}, tl.bq, tl.bk);
          set(Pipe::MTE1, Pipe::MTE2, evP);
          set(Pipe::MTE1, Pipe::M, 2);
          wait(Pipe::MTE1, Pipe::M, 2);
          Value vSrc = p.valueFromKey ? slot(kL1, s) : vL1;
          for (int64_t c = 0; c < nChunks; ++c) {
            Value vs = add(rem(add(mul(tile, nChunks), cst(c)), 2), cst(3));
            waitV(Pipe::M, Pipe::MTE1, vs);
            copy(Pipe::MTE1, vSrc, {c0, cst(c * tl.nChunk)}, slot(vb, vs), {c0, c0}, tl.bk,
                 tl.nChunk);
            if (c == nChunks - 1)
              // The K tile (MLA: read again as V) or the V tile is free.
              setV(Pipe::MTE1, Pipe::MTE2, p.valueFromKey ? add(s, cst(1)) : cst(evV));
            setV(Pipe::MTE1, Pipe::M, vs);
            waitV(Pipe::MTE1, Pipe::M, vs);
            wait(Pipe::FIX, Pipe::M, 1);
            builder.create<MmadOp>(loc, pa, slot(vb, vs), oC,
                                   builder.create<arith::ConstantIntOp>(loc, 1, 1));
            builder.create<BarrierOp>(loc, Pipe::M);
            setV(Pipe::M, Pipe::MTE1, vs);
            if (c == nChunks - 1)
              set(Pipe::M, Pipe::MTE1, 2);
            set(Pipe::M, Pipe::FIX, 1);
            wait(Pipe::M, Pipe::FIX, 1);
            copy(Pipe::FIX, oC, {c0, c0}, wsO, {ringSlot(s), c0, cst(c * tl.nChunk)}, tl.bq,
                 tl.nChunk);
            set(Pipe::FIX, Pipe::M, 1);
          }
          xset(Pipe::FIX, kPvReady);
        });
      });
      set(Pipe::MTE1, Pipe::MTE2, 0);
    });

    freeFlags(wait);
    if (splits > 1)
      builder.create<SyncAllOp>(loc); // the vector cores combine the parts after it
  });

  //===------------------------------------------------------------------===//
  // The vector cores: AIV `sub` owns rows [sub·r, (sub + 1)·r) of a task.
  //===------------------------------------------------------------------===//
  when(cmp(P::ne, coreIdx, c0), [&] {
    Value rowOff = mul(sub(coreIdx, cst(1)), r);
    Value sUb = alloc(Space::UB, Layout::ND, r, tl.bk, f32);
    Value mskUb = alloc(Space::UB, Layout::ND, r, tl.bk, f32);
    Value tmp = alloc(Space::UB, Layout::ND, r, tl.bk, f32);
    Value pUb = alloc(Space::UB, Layout::ND, r, tl.bk, elem);
    auto column = [&](int64_t slots = 1) { return alloc(Space::UB, Layout::ND, r, 1, f32, slots); };
    Value m = column(), l = column(), mj = column(), mNew = column(), lj = column(),
          lInv = column(), alpha = column(R);
    Value sinkUb = p.sinks ? column() : Value();
    Value o = alloc(Space::UB, Layout::ND, r, d.dv, f32);
    Value oTmp = alloc(Space::UB, Layout::ND, r, d.dv, f32);
    Value oB = alloc(Space::UB, Layout::ND, r, d.dv, f32);
    auto barrier = [&] { builder.create<BarrierOp>(loc, Pipe::V); };
    auto v2 = [&](auto tag, Value x, Value y, Value z) {
      builder.create<decltype(tag)>(loc, x, y, z);
      barrier();
    };
    auto v1 = [&](auto tag, Value x, Value z) {
      builder.create<decltype(tag)>(loc, x, z);
      barrier();
    };
    auto scalar = [&](auto tag, Value x, double c, Value z) {
      builder.create<decltype(tag)>(loc, x, b.getF64FloatAttr(c), z);
      barrier();
    };
    auto dup = [&](double c, Value z) {
      builder.create<VDupOp>(loc, b.getF64FloatAttr(c), z);
      barrier();
    };
    // O = O / l (rows of the running sum l).
    auto normalise = [&] {
      v1(VRecOp(), l, lInv);
      v1(VBrcbOp(), lInv, oB);
      v2(VMulOp(), o, oB, o);
    };
    // Events: V->MTE2 / MTE2->V: 0 S and mask, 1 O_tmp, 2 sinks;
    // V->MTE3 / MTE3->V: 0 P, 1 O.
    auto freeFlags = [&](llvm::function_ref<void(Pipe, Pipe, int64_t)> flag) {
      for (int64_t e = 0; e < 3; ++e)
        flag(Pipe::V, Pipe::MTE2, e);
      flag(Pipe::MTE3, Pipe::V, 0);
      flag(Pipe::MTE3, Pipe::V, 1);
    };
    freeFlags(set);

    loop(blk, cst(tasks), blockDim, [&](Value task) {
      Task k = taskOf(task);
      Value row0 = add(k.row0, rowOff);
      wait(Pipe::MTE3, Pipe::V, 1);
      auto plainStart = [&] {
        dup(kMasked, m);
        dup(0.0, l);
      };
      if (p.sinks) {
        // The sink joins one part's denominator only.
        Value first = cmp(P::eq, k.split, c0);
        when(first, [&] {
          wait(Pipe::V, Pipe::MTE2, 2);
          copy(Pipe::MTE2, sinkGm, {add(mul(k.group, M), row0), c0}, sinkUb, {c0, c0}, r, 1);
          set(Pipe::MTE2, Pipe::V, 2);
          wait(Pipe::MTE2, Pipe::V, 2);
          scalar(VAddsOp(), sinkUb, 0.0, m);
          set(Pipe::V, Pipe::MTE2, 2);
          dup(1.0, l); // exp(sink - m) with m = sink
        });
        if (splits > 1)
          when(cmp(P::ne, k.split, c0), plainStart);
      } else {
        plainStart();
      }
      dup(0.0, o);

      loop(c0, add(k.n, cst(L)), 1, [&](Value step) {
        // SOFTMAX(step) over this AIV's rows of the S tile.
        when(cmp(P::ult, step, k.n), [&] {
          Value s = rem(step, R);
          Value j0 = mul(add(k.jLo, step), tl.bk);
          xwait(kQkReady);
          wait(Pipe::V, Pipe::MTE2, 0);
          copy(Pipe::MTE2, wsS, {ringSlot(s), rowOff, c0}, sUb, {c0, c0}, r, tl.bk);
          // The mask is needed where the tile crosses the causal diagonal
          // (keys past the earliest row) or the window's left edge.
          Value edge = cmp(P::sgt, add(j0, cst(tl.bk - 1)), k.pMin);
          if (p.window)
            edge = builder.create<arith::OrIOp>(
                loc, edge, cmp(P::slt, j0, sub(k.pMax, cst(p.window - 1))));
          when(edge, [&] {
            // Row a of the compressed mask serves query position q against
            // keys j0..: a = q - j0 + bk - 1, clamped (attentionMaskRows).
            for (int64_t row = 0; row < r; ++row) {
              Value pos = add(rem(add(row0, cst(row)), p.tq), cst(p.tk - p.tq));
              Value a = smin(smax(add(sub(pos, j0), cst(tl.bk - 1)), c0), cst(maskRows - 1));
              copy(Pipe::MTE2, maskGm, {a, c0}, mskUb, {cst(row), c0}, 1, tl.bk);
            }
          });
          set(Pipe::MTE2, Pipe::V, 0);
          wait(Pipe::MTE2, Pipe::V, 0);
          Value al = slot(alpha, s);
          scalar(VMulsOp(), sUb, p.scale, sUb);
          when(edge, [&] { v2(VAddOp(), sUb, mskUb, sUb); });
          builder.create<VReduceOp>(loc, ReduceKind::Max, sUb, mj);
          barrier();
          v2(VMaxOp(), m, mj, mNew);
          v2(VSubOp(), m, mNew, al);
          v1(VExpOp(), al, al); // alpha = exp(m_old - m_new)
          v1(VBrcbOp(), mNew, tmp);
          v2(VSubOp(), sUb, tmp, sUb);
          v1(VExpOp(), sUb, sUb); // p = exp(s - m_new)
          builder.create<VReduceOp>(loc, ReduceKind::Sum, sUb, lj);
          barrier();
          v2(VMulOp(), l, al, l);
          v2(VAddOp(), l, lj, l);
          scalar(VAddsOp(), mNew, 0.0, m);
          wait(Pipe::MTE3, Pipe::V, 0);
          v1(VCastOp(), sUb, pUb);
          set(Pipe::V, Pipe::MTE2, 0);
          set(Pipe::V, Pipe::MTE3, 0);
          wait(Pipe::V, Pipe::MTE3, 0);
          copy(Pipe::MTE3, pUb, {c0, c0}, wsP, {ringSlot(s), rowOff, c0}, r, tl.bk);
          set(Pipe::MTE3, Pipe::V, 0);
          xset(Pipe::MTE3, kPReady);
        });
        // RESCALE(step - L): O = O·alpha + O_tmp.
        when(cmp(P::uge, step, cst(L)), [&] {
          Value s = rem(sub(step, cst(L)), R);
          xwait(kPvReady);
          wait(Pipe::V, Pipe::MTE2, 1);
          copy(Pipe::MTE2, wsO, {ringSlot(s), rowOff, c0}, oTmp, {c0, c0}, r, d.dv);
          set(Pipe::MTE2, Pipe::V, 1);
          wait(Pipe::MTE2, Pipe::V, 1);
          v1(VBrcbOp(), slot(alpha, s), oB);
          v2(VMulOp(), o, oB, o);
          v2(VAddOp(), o, oTmp, o);
          set(Pipe::V, Pipe::MTE2, 1);
        });
      });

      // O / l, each row to its token and head: row ρ of group g is head
      // g·headsPerGroup + ρ / tq at token ρ % tq.
      normalise();
      if (splits > 1 || p.saveLse) {
        // This part's log-sum-exp m + ln l, beside its O.
        v1(VLnOp(), l, lj);
        v2(VAddOp(), m, lj, lj);
      }
      set(Pipe::V, Pipe::MTE3, 1);
      wait(Pipe::V, Pipe::MTE3, 1);
      for (int64_t row = 0; row < r; ++row) {
        Value rho = add(row0, cst(row));
        when(cmp(P::ult, rho, cst(M)), [&] {
          if (splits > 1) {
            Value at = add(mul(add(mul(k.split, p.groups), k.group), M), rho);
            copy(Pipe::MTE3, o, {cst(row), c0}, wsPart, {at, c0}, 1, d.dv);
            copy(Pipe::MTE3, lj, {cst(row), c0}, wsLse, {at, c0}, 1, 1);
            return;
          }
          Value head = add(mul(k.group, p.headsPerGroup), div(rho, p.tq));
          copy(Pipe::MTE3, o, {cst(row), c0}, out, {rem(rho, p.tq), mul(head, p.dv)}, 1, p.dv);
          if (p.saveLse)
            copy(Pipe::MTE3, lj, {cst(row), c0}, lseOut, {k.group, rho, c0}, 1, 1);
        });
      }
      set(Pipe::MTE3, Pipe::V, 1);
    });

    if (splits > 1) {
      // Every part of every row is in workspace once all cores meet.
      builder.create<SyncAllOp>(loc);
      // Row tiles of r rows dealt over all vector cores: a running max and
      // rescaled sums over the parts, as the KV loop does over tiles.
      const int64_t rowsAll = p.groups * M, combineTiles = ceilDiv(rowsAll, r);
      Value aiv = add(mul(blk, 2), sub(coreIdx, cst(1)));
      loop(aiv, cst(combineTiles), 2 * blockDim, [&](Value ct) {
        Value g0 = mul(ct, r);
        wait(Pipe::MTE3, Pipe::V, 1);
        dup(kMasked, m);
        dup(0.0, l);
        dup(0.0, o);
        loop(c0, cst(splits), 1, [&](Value sp) {
          Value at = add(mul(sp, rowsAll), g0);
          wait(Pipe::V, Pipe::MTE2, 1);
          copy(Pipe::MTE2, wsLse, {at, c0}, mj, {c0, c0}, r, 1);
          copy(Pipe::MTE2, wsPart, {at, c0}, oTmp, {c0, c0}, r, d.dv);
          set(Pipe::MTE2, Pipe::V, 1);
          wait(Pipe::MTE2, Pipe::V, 1);
          v2(VMaxOp(), m, mj, mNew);
          builder.create<VSubOp>(loc, m, mNew, lInv);
          v2(VSubOp(), mj, mNew, lj);
          builder.create<VExpOp>(loc, lInv, lInv); // alpha = exp(m_old - m_new)
          v1(VExpOp(), lj, lj);                    // w = exp(lse - m_new)
          v2(VMulOp(), l, lInv, l);
          v2(VAddOp(), l, lj, l);
          v1(VBrcbOp(), lInv, oB);
          v2(VMulOp(), o, oB, o);
          v1(VBrcbOp(), lj, oB);
          v2(VMulOp(), oTmp, oB, oTmp);
          v2(VAddOp(), o, oTmp, o);
          set(Pipe::V, Pipe::MTE2, 1);
          scalar(VAddsOp(), mNew, 0.0, m);
        });
        normalise();
        set(Pipe::V, Pipe::MTE3, 1);
        wait(Pipe::V, Pipe::MTE3, 1);
        // Global row ρ = g·M + i is head g·headsPerGroup + i at token 0.
        for (int64_t row = 0; row < r; ++row) {
          Value rho = add(g0, cst(row));
          when(cmp(P::ult, rho, cst(rowsAll)), [&] {
            copy(Pipe::MTE3, o, {cst(row), c0}, out, {c0, mul(rho, p.dv)}, 1, p.dv);
          });
        }
        set(Pipe::MTE3, Pipe::V, 1);
      });
    }

    freeFlags(wait);
  });
  return kernel;
}
