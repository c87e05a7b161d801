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
#include "AttentionSteps.h"
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
      tl.nChunk < 16 || d.dk % tl.kChunk || d.dv % tl.nChunk || tl.ring < 2 || tl.ring > 4)
    return fail("tiles must be multiples of 16 dividing the padded head dims, ring 2 to 4");
  Footprint f = footprint(p, tl);
  if (std::string over = capacityError(t, f.bytes); !over.empty())
    return fail(over);
  return true;
}

std::vector<AttentionTiling>
mlir::attnedit::ascend::attentionTilings(const AttentionProblem &p, const TargetDescription &t) {
  std::vector<AttentionTiling> out;
  int64_t rows = roundUp(p.rows(), 16), keys = roundUp(p.tk, 16);
  int64_t dk = roundUp(p.dk, 16), dv = roundUp(p.dv, 16);
  for (int64_t bq : {128, 64, 32, 16})
    for (int64_t bk : {256, 128, 64, 32, 16})
      for (int64_t ring : {2, 3, 4}) { // 4: K slot events 1..4 below evP
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
  if (out.size() > 12)
    out.resize(12);
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
  auto fastest = fastestCandidate(
      context, candidates.size(),
      [&](OpBuilder &b, size_t i) {
        return buildAttentionKernel(b, b.getUnknownLoc(), "candidate", p, candidates[i], t);
      },
      [](size_t) { return llvm::SmallVector<int64_t>{0}; });
  if (!fastest)
    return fastest.takeError();
  return AttentionChoice{candidates[fastest->first], std::move(fastest->second),
                         static_cast<int64_t>(candidates.size())};
}

llvm::Expected<std::pair<size_t, KernelEstimate>> mlir::attnedit::ascend::fastestCandidate(
    MLIRContext *context, size_t count, llvm::function_ref<KernelOp(OpBuilder &, size_t)> build,
    llvm::function_ref<llvm::SmallVector<int64_t>(size_t)> blocks) {
  OpBuilder builder(context);
  OwningOpRef<ModuleOp> scratch = ModuleOp::create(builder.getUnknownLoc());
  builder.setInsertionPointToEnd(scratch->getBody());
  std::optional<std::pair<size_t, KernelEstimate>> best;
  for (size_t i = 0; i < count; ++i) {
    KernelOp kernel = build(builder, i);
    llvm::Expected<Schedule> s = buildSchedule(kernel, blocks(i));
    if (!s)
      return s.takeError();
    EstimateOptions options;
    options.representative = true;
    llvm::Expected<KernelEstimate> e = estimate(*s, options);
    kernel.erase();
    if (!e)
      return e.takeError();
    if (!best || e->seconds < best->second.seconds)
      best.emplace(i, std::move(*e));
  }
  if (!best)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "no candidate to time");
  return std::move(*best);
}

std::vector<float> mlir::attnedit::ascend::attentionMaskRows(const AttentionProblem &p,
                                                             const AttentionTiling &tl) {
  int64_t rows = attentionMaskTableRows(p, tl.bk);
  std::vector<float> m(rows * tl.bk);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < tl.bk; ++c) {
      int64_t dist = i - kMaskPadRows - (tl.bk - 1) - c; // query position - key position
      bool visible = dist >= 0 && (p.window == 0 || dist < p.window);
      m[i * tl.bk + c] = visible ? 0.0f : static_cast<float>(kMasked);
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
  Type elem = cubeElementType(ctx, p.dtype), f32 = b.getF32Type();
  Dims d(p, tl);
  const int64_t M = p.rows(), R = tl.ring, L = tl.ring - 1, r = d.r;
  // KV splits: `per` tiles each, every part non-empty.
  const int64_t kvTiles = tl.splits > 1 ? decodeKvTiles(p, tl.bk) : 0;
  const int64_t per = tl.splits > 1 ? ceilDiv(kvTiles, std::min(tl.splits, kvTiles)) : 0;
  const int64_t splits = tl.splits > 1 ? ceilDiv(kvTiles, per) : 1;
  const int64_t qTiles = ceilDiv(M, tl.bq), tasks = p.groups * qTiles * splits;
  const int64_t blockDim = std::min(tasks, t.cubeCores);
  const int64_t maskRows = attentionMaskTableRows(p, tl.bk);
  const int64_t kChunks = d.dk / tl.kChunk, nChunks = d.dv / tl.nChunk;

  // TCubeTiling-style record with FlashAttentionScore's vocabulary (S20, S29).
  MixKernel mk = startMixKernel(builder, loc, name, t, blockDim,
                                {{"usedCoreNum", blockDim},
                                 {"qTile", tl.bq},
                                 {"kvTile", tl.bk},
                                 {"preLaunch", L},
                                 {"baseK", tl.kChunk},
                                 {"baseN", tl.nChunk},
                                 {"sparseMode", p.window ? 4 : 3}, // band / rightDownCausal (S29)
                                 {"preTokens", p.window ? p.window - 1 : p.tk},
                                 {"nextTokens", 0},
                                 {"numSinks", p.sinks ? 1 : 0},
                                 {"splitKV", splits}});
  auto gm = [&](std::initializer_list<int64_t> shape, Type e) { return mk.gm(shape, e); };
  Value blk = mk.block, coreIdx = mk.core;
  Value Q = gm({p.groups, M, p.dk}, elem);
  Value K = gm({p.groups, p.tk, p.dk}, elem);
  Value V = p.valueFromKey ? K : gm({p.groups, p.tk, p.dv}, elem);
  Value maskGm = gm({maskRows, tl.bk}, f32);
  Value sinkGm = p.sinks ? gm({p.groups * M, 1}, f32) : Value();
  int64_t firstWs = mk.nextArgument();
  Value wsS = gm({blockDim * R, tl.bq, tl.bk}, f32);
  Value wsP = gm({blockDim * R, tl.bq, tl.bk}, elem);
  Value wsO = gm({blockDim * R, tl.bq, d.dv}, f32);
  SmallVector<int64_t> workspace{firstWs, firstWs + 1, firstWs + 2};
  Value wsPart, wsLse;
  if (splits > 1) {
    wsPart = gm({splits * p.groups * M, d.dv}, f32);
    wsLse = gm({splits * p.groups * M, 1}, f32);
    workspace.append({firstWs + 3, firstWs + 4});
  }
  Value lseOut = p.saveLse ? gm({p.groups, M, 1}, f32) : Value();
  Value out = gm({p.tq, p.heads() * p.dv}, f32);
  mk.kernel.setWorkspaceAttr(b.getDenseI64ArrayAttr(workspace));

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(mk.entry);
  KernelEmitter e(builder, loc, t);
  Value c0 = e.cst(0);
  using P = arith::CmpIPredicate;

  /// Per task: its KV group, first query row, and the range of KV tiles its
  /// rows see (research §9.6: a window visits only the tiles it overlaps).
  struct Task {
    Value group, row0, jLo, n, split;
    QueryRows rows;
  };
  auto taskOf = [&](Value task) {
    Task k;
    k.split = e.rem(task, splits);
    task = e.div(task, splits);
    k.group = e.div(task, qTiles);
    k.row0 = e.mul(e.rem(task, qTiles), tl.bq);
    k.rows = queryRows(e, p, k.row0, tl.bq, tl.bk);
    k.jLo = k.rows.jLo;
    k.n = e.add(e.sub(k.rows.jHi, k.jLo), e.cst(1));
    if (splits > 1) {
      Value skip = e.mul(k.split, per);
      k.jLo = e.add(k.jLo, skip);
      k.n = e.smin(e.cst(per), e.sub(k.n, skip));
    }
    return k;
  };
  auto ringSlot = [&](Value s) { return e.add(e.mul(blk, R), s); };

  Value isCube = e.cmp(P::eq, coreIdx, c0);
  //===------------------------------------------------------------------===//
  // The cube core.
  //===------------------------------------------------------------------===//
  e.when(isCube, [&] {
    Value qL1 = e.alloc(Space::L1, Layout::NZ, tl.bq, d.dk, elem);
    Value kL1 = e.alloc(Space::L1, Layout::NZ, tl.bk, d.dk, elem, R);
    Value pL1 = e.alloc(Space::L1, Layout::NZ, tl.bq, tl.bk, elem);
    Value vL1 = p.valueFromKey ? Value() : e.alloc(Space::L1, Layout::NZ, tl.bk, d.dv, elem);
    Value qa = e.alloc(Space::L0A, Layout::ZZ, tl.bq, tl.kChunk, elem, 2);
    Value pa = e.alloc(Space::L0A, Layout::ZZ, tl.bq, tl.bk, elem);
    Value kb = e.alloc(Space::L0B, Layout::ZN, tl.kChunk, tl.bk, elem, 2);
    Value vb = e.alloc(Space::L0B, Layout::ZN, tl.bk, tl.nChunk, elem, 2);
    Value sC = e.alloc(Space::L0C, Layout::NZ, tl.bq, tl.bk, f32);
    Value oC = e.alloc(Space::L0C, Layout::NZ, tl.bq, tl.nChunk, f32);
    // Events: MTE1->MTE2 / MTE2->MTE1: 0 qL1, 1+s kL1 slot s, 5 pL1, 6 vL1;
    // MTE1<->M: 0/1 QK chunk slots, 2 pa, 3/4 PV chunk slots; M<->FIX: 0 sC, 1 oC.
    const int64_t evP = 5, evV = 6;
    // Every buffer starts free: the consumer-to-producer flags are set
    // before the loop (pre-armed) and waited after it (drained).
    SmallVector<KernelEmitter::Flag> free;
    for (int64_t ev : {int64_t(0), evP, evV})
      free.push_back({Pipe::MTE1, Pipe::MTE2, ev});
    for (int64_t s = 0; s < R; ++s)
      free.push_back({Pipe::MTE1, Pipe::MTE2, 1 + s});
    for (int64_t ev = 0; ev < 5; ++ev)
      free.push_back({Pipe::M, Pipe::MTE1, ev});
    free.push_back({Pipe::FIX, Pipe::M, 0});
    free.push_back({Pipe::FIX, Pipe::M, 1});
    e.flags(true, free);

    e.loop(blk, e.cst(tasks), blockDim, [&](Value task) {
      Task k = taskOf(task);
      e.wait(Pipe::MTE1, Pipe::MTE2, 0);
      e.copy(Pipe::MTE2, Q, {k.group, k.row0, c0}, qL1, {c0, c0}, tl.bq, d.dk);
      e.set(Pipe::MTE2, Pipe::MTE1, 0);
      e.wait(Pipe::MTE2, Pipe::MTE1, 0);

      e.loop(c0, e.add(k.n, e.cst(L)), 1, [&](Value step) {
        // QK(step): S = Q·Kᵀ of KV tile jLo + step into ring slot step % R.
        e.when(e.cmp(P::ult, step, k.n), [&] {
          Value s = e.rem(step, R), ev = e.add(s, e.cst(1));
          Value kS = e.slot(kL1, s);
          Value j0 = e.mul(e.add(k.jLo, step), tl.bk);
          e.wait(Pipe::MTE1, Pipe::MTE2, ev);
          e.copy(Pipe::MTE2, K, {k.group, j0, c0}, kS, {c0, c0}, tl.bk, d.dk);
          e.set(Pipe::MTE2, Pipe::MTE1, ev);
          e.wait(Pipe::MTE2, Pipe::MTE1, ev);
          e.wait(Pipe::FIX, Pipe::M, 0);
          for (int64_t c = 0; c < kChunks; ++c) {
            Value cs = e.rem(e.add(e.mul(step, kChunks), e.cst(c)), 2);
            e.wait(Pipe::M, Pipe::MTE1, cs);
            e.copy(Pipe::MTE1, qL1, {c0, e.cst(c * tl.kChunk)}, e.slot(qa, cs), {c0, c0}, tl.bq,
                 tl.kChunk);
            e.copy(Pipe::MTE1, kS, {c0, e.cst(c * tl.kChunk)}, e.slot(kb, cs), {c0, c0}, tl.kChunk,
                 tl.bk, /*transpose=*/true);
            e.set(Pipe::MTE1, Pipe::M, cs);
            e.wait(Pipe::MTE1, Pipe::M, cs);
            e.mmad(e.slot(qa, cs), e.slot(kb, cs), sC, e.constBool(c == 0));
            e.set(Pipe::M, Pipe::MTE1, cs);
          }
          if (!p.valueFromKey)
            e.set(Pipe::MTE1, Pipe::MTE2, ev);
          e.set(Pipe::M, Pipe::FIX, 0);
          e.wait(Pipe::M, Pipe::FIX, 0);
          e.copy(Pipe::FIX, sC, {c0, c0}, wsS, {ringSlot(s), c0, c0}, tl.bq, tl.bk);
          e.set(Pipe::FIX, Pipe::M, 0);
          e.crossSet(Pipe::FIX, kQkReady);
        });
        // PV(step - L): O_tmp = P·V once both AIVs have written P.
        e.when(e.cmp(P::uge, step, e.cst(L)), [&] {
          Value tile = e.sub(step, e.cst(L));
          Value s = e.rem(tile, R);
          Value j0 = e.mul(e.add(k.jLo, tile), tl.bk);
          e.crossWait(kPReady);
          e.wait(Pipe::MTE1, Pipe::MTE2, evP);
          e.copy(Pipe::MTE2, wsP, {ringSlot(s), c0, c0}, pL1, {c0, c0}, tl.bq, tl.bk);
          if (!p.valueFromKey) {
            e.wait(Pipe::MTE1, Pipe::MTE2, evV);
            e.copy(Pipe::MTE2, V, {k.group, j0, c0}, vL1, {c0, c0}, tl.bk, d.dv);
          }
          e.set(Pipe::MTE2, Pipe::MTE1, evP);
          e.wait(Pipe::MTE2, Pipe::MTE1, evP);
          e.wait(Pipe::M, Pipe::MTE1, 2);
          e.copy(Pipe::MTE1, pL1, {c0, c0}, pa, {c0, c0}, tl.bq, tl.bk);
          e.set(Pipe::MTE1, Pipe::MTE2, evP);
          e.set(Pipe::MTE1, Pipe::M, 2);
          e.wait(Pipe::MTE1, Pipe::M, 2);
          Value vSrc = p.valueFromKey ? e.slot(kL1, s) : vL1;
          for (int64_t c = 0; c < nChunks; ++c) {
            Value vs = e.add(e.rem(e.add(e.mul(tile, nChunks), e.cst(c)), 2), e.cst(3));
            e.wait(Pipe::M, Pipe::MTE1, vs);
            e.copy(Pipe::MTE1, vSrc, {c0, e.cst(c * tl.nChunk)}, e.slot(vb, vs), {c0, c0}, tl.bk,
                 tl.nChunk);
            if (c == nChunks - 1)
              // The K tile (MLA: read again as V) or the V tile is free.
              e.set(Pipe::MTE1, Pipe::MTE2, p.valueFromKey ? e.add(s, e.cst(1)) : e.cst(evV));
            e.set(Pipe::MTE1, Pipe::M, vs);
            e.wait(Pipe::MTE1, Pipe::M, vs);
            e.wait(Pipe::FIX, Pipe::M, 1);
            e.mmad(pa, e.slot(vb, vs), oC, e.constBool(true));
            e.set(Pipe::M, Pipe::MTE1, vs);
            if (c == nChunks - 1)
              e.set(Pipe::M, Pipe::MTE1, 2);
            e.set(Pipe::M, Pipe::FIX, 1);
            e.wait(Pipe::M, Pipe::FIX, 1);
            e.copy(Pipe::FIX, oC, {c0, c0}, wsO, {ringSlot(s), c0, e.cst(c * tl.nChunk)}, tl.bq,
                 tl.nChunk);
            e.set(Pipe::FIX, Pipe::M, 1);
          }
          e.crossSet(Pipe::FIX, kPvReady);
        });
      });
      e.set(Pipe::MTE1, Pipe::MTE2, 0);
    });

    e.flags(false, free);
    if (splits > 1)
      e.syncAll(); // the vector cores combine the parts after it
  });

  //===------------------------------------------------------------------===//
  // The vector cores: AIV `sub` owns rows [sub·r, (sub + 1)·r) of a task.
  //===------------------------------------------------------------------===//
  e.when(e.cmp(P::ne, coreIdx, c0), [&] {
    Value rowOff = e.mul(e.sub(coreIdx, e.cst(1)), r);
    Value sUb = e.alloc(Space::UB, Layout::ND, r, tl.bk, f32);
    Value mskUb = e.alloc(Space::UB, Layout::ND, r, tl.bk, f32);
    Value tmp = e.alloc(Space::UB, Layout::ND, r, tl.bk, f32);
    Value pUb = e.alloc(Space::UB, Layout::ND, r, tl.bk, elem);
    auto column = [&](int64_t slots = 1) { return e.alloc(Space::UB, Layout::ND, r, 1, f32, slots); };
    Value m = column(), l = column(), mj = column(), mNew = column(), lj = column(),
          lInv = column(), alpha = column(R);
    Value sinkUb = p.sinks ? column() : Value();
    Value o = e.alloc(Space::UB, Layout::ND, r, d.dv, f32);
    Value oTmp = e.alloc(Space::UB, Layout::ND, r, d.dv, f32);
    Value oB = e.alloc(Space::UB, Layout::ND, r, d.dv, f32);
    // O = O / l (rows of the running sum l).
    auto normalise = [&] {
      e.v1<VRecOp>(l, lInv);
      e.v1<VBrcbOp>(lInv, oB);
      e.v2<VMulOp>(o, oB, o);
    };
    // Events: V->MTE2 / MTE2->V: 0 S and mask, 1 O_tmp, 2 sinks;
    // V->MTE3 / MTE3->V: 0 P, 1 O.
    const KernelEmitter::Flag free[] = {{Pipe::V, Pipe::MTE2, 0},
                                        {Pipe::V, Pipe::MTE2, 1},
                                        {Pipe::V, Pipe::MTE2, 2},
                                        {Pipe::MTE3, Pipe::V, 0},
                                        {Pipe::MTE3, Pipe::V, 1}};
    e.flags(true, free);

    e.loop(blk, e.cst(tasks), blockDim, [&](Value task) {
      Task k = taskOf(task);
      Value row0 = e.add(k.row0, rowOff);
      e.wait(Pipe::MTE3, Pipe::V, 1);
      auto plainStart = [&] {
        e.dup(kMasked, m);
        e.dup(0.0, l);
      };
      if (p.sinks) {
        // The sink joins one part's denominator only.
        Value first = e.cmp(P::eq, k.split, c0);
        e.when(first, [&] {
          e.wait(Pipe::V, Pipe::MTE2, 2);
          e.copy(Pipe::MTE2, sinkGm, {e.add(e.mul(k.group, M), row0), c0}, sinkUb, {c0, c0}, r, 1);
          e.set(Pipe::MTE2, Pipe::V, 2);
          e.wait(Pipe::MTE2, Pipe::V, 2);
          e.scalar<VAddsOp>(sinkUb, 0.0, m);
          e.set(Pipe::V, Pipe::MTE2, 2);
          e.dup(1.0, l); // exp(sink - m) with m = sink
        });
        if (splits > 1)
          e.when(e.cmp(P::ne, k.split, c0), plainStart);
      } else {
        plainStart();
      }
      e.dup(0.0, o);

      e.loop(c0, e.add(k.n, e.cst(L)), 1, [&](Value step) {
        // SOFTMAX(step) over this AIV's rows of the S tile.
        e.when(e.cmp(P::ult, step, k.n), [&] {
          Value s = e.rem(step, R);
          Value j0 = e.mul(e.add(k.jLo, step), tl.bk);
          e.crossWait(kQkReady);
          e.wait(Pipe::V, Pipe::MTE2, 0);
          e.copy(Pipe::MTE2, wsS, {ringSlot(s), rowOff, c0}, sUb, {c0, c0}, r, tl.bk);
          Value edge = loadEdgeMask(e, p, tl.bk, maskGm, mskUb, row0, r, j0, k.rows);
          e.set(Pipe::MTE2, Pipe::V, 0);
          e.wait(Pipe::MTE2, Pipe::V, 0);
          Value al = e.slot(alpha, s);
          e.scalar<VMulsOp>(sUb, p.scale, sUb);
          e.when(edge, [&] { e.v2<VAddOp>(sUb, mskUb, sUb); });
          e.reduce(ReduceKind::Max, sUb, mj);
          e.v2<VMaxOp>(m, mj, mNew);
          e.v2<VSubOp>(m, mNew, al);
          e.v1<VExpOp>(al, al); // alpha = exp(m_old - m_new)
          e.v1<VBrcbOp>(mNew, tmp);
          e.v2<VSubOp>(sUb, tmp, sUb);
          e.v1<VExpOp>(sUb, sUb); // p = exp(s - m_new)
          e.reduce(ReduceKind::Sum, sUb, lj);
          e.v2<VMulOp>(l, al, l);
          e.v2<VAddOp>(l, lj, l);
          e.scalar<VAddsOp>(mNew, 0.0, m);
          e.wait(Pipe::MTE3, Pipe::V, 0);
          e.v1<VCastOp>(sUb, pUb);
          e.set(Pipe::V, Pipe::MTE2, 0);
          e.set(Pipe::V, Pipe::MTE3, 0);
          e.wait(Pipe::V, Pipe::MTE3, 0);
          e.copy(Pipe::MTE3, pUb, {c0, c0}, wsP, {ringSlot(s), rowOff, c0}, r, tl.bk);
          e.set(Pipe::MTE3, Pipe::V, 0);
          e.crossSet(Pipe::MTE3, kPReady);
        });
        // RESCALE(step - L): O = O·alpha + O_tmp.
        e.when(e.cmp(P::uge, step, e.cst(L)), [&] {
          Value s = e.rem(e.sub(step, e.cst(L)), R);
          e.crossWait(kPvReady);
          e.wait(Pipe::V, Pipe::MTE2, 1);
          e.copy(Pipe::MTE2, wsO, {ringSlot(s), rowOff, c0}, oTmp, {c0, c0}, r, d.dv);
          e.set(Pipe::MTE2, Pipe::V, 1);
          e.wait(Pipe::MTE2, Pipe::V, 1);
          e.v1<VBrcbOp>(e.slot(alpha, s), oB);
          e.v2<VMulOp>(o, oB, o);
          e.v2<VAddOp>(o, oTmp, o);
          e.set(Pipe::V, Pipe::MTE2, 1);
        });
      });

      // O / l, each row to its token and head: row ρ of group g is head
      // g·headsPerGroup + ρ / tq at token ρ % tq.
      normalise();
      if (splits > 1 || p.saveLse) {
        // This part's log-sum-exp m + ln l, beside its O.
        e.v1<VLnOp>(l, lj);
        e.v2<VAddOp>(m, lj, lj);
      }
      e.set(Pipe::V, Pipe::MTE3, 1);
      e.wait(Pipe::V, Pipe::MTE3, 1);
      for (int64_t row = 0; row < r; ++row) {
        Value rho = e.add(row0, e.cst(row));
        e.when(e.cmp(P::ult, rho, e.cst(M)), [&] {
          if (splits > 1) {
            Value at = e.add(e.mul(e.add(e.mul(k.split, p.groups), k.group), M), rho);
            e.copy(Pipe::MTE3, o, {e.cst(row), c0}, wsPart, {at, c0}, 1, d.dv);
            e.copy(Pipe::MTE3, lj, {e.cst(row), c0}, wsLse, {at, c0}, 1, 1);
            return;
          }
          Value head = e.add(e.mul(k.group, p.headsPerGroup), e.div(rho, p.tq));
          e.copy(Pipe::MTE3, o, {e.cst(row), c0}, out, {e.rem(rho, p.tq), e.mul(head, p.dv)}, 1, p.dv);
          if (p.saveLse)
            e.copy(Pipe::MTE3, lj, {e.cst(row), c0}, lseOut, {k.group, rho, c0}, 1, 1);
        });
      }
      e.set(Pipe::MTE3, Pipe::V, 1);
    });

    if (splits > 1) {
      // Every part of every row is in workspace once all cores meet.
      e.syncAll();
      // Row tiles of r rows dealt over all vector cores: a running max and
      // rescaled sums over the parts, as the KV loop does over tiles.
      const int64_t rowsAll = p.groups * M, combineTiles = ceilDiv(rowsAll, r);
      Value aiv = e.add(e.mul(blk, 2), e.sub(coreIdx, e.cst(1)));
      e.loop(aiv, e.cst(combineTiles), 2 * blockDim, [&](Value ct) {
        Value g0 = e.mul(ct, r);
        e.wait(Pipe::MTE3, Pipe::V, 1);
        e.dup(kMasked, m);
        e.dup(0.0, l);
        e.dup(0.0, o);
        e.loop(c0, e.cst(splits), 1, [&](Value sp) {
          Value at = e.add(e.mul(sp, rowsAll), g0);
          e.wait(Pipe::V, Pipe::MTE2, 1);
          e.copy(Pipe::MTE2, wsLse, {at, c0}, mj, {c0, c0}, r, 1);
          e.copy(Pipe::MTE2, wsPart, {at, c0}, oTmp, {c0, c0}, r, d.dv);
          e.set(Pipe::MTE2, Pipe::V, 1);
          e.wait(Pipe::MTE2, Pipe::V, 1);
          e.v2<VMaxOp>(m, mj, mNew);
          builder.create<VSubOp>(loc, m, mNew, lInv);
          e.v2<VSubOp>(mj, mNew, lj);
          builder.create<VExpOp>(loc, lInv, lInv); // alpha = exp(m_old - m_new)
          e.v1<VExpOp>(lj, lj);                    // w = exp(lse - m_new)
          e.v2<VMulOp>(l, lInv, l);
          e.v2<VAddOp>(l, lj, l);
          e.v1<VBrcbOp>(lInv, oB);
          e.v2<VMulOp>(o, oB, o);
          e.v1<VBrcbOp>(lj, oB);
          e.v2<VMulOp>(oTmp, oB, oTmp);
          e.v2<VAddOp>(o, oTmp, o);
          e.set(Pipe::V, Pipe::MTE2, 1);
          e.scalar<VAddsOp>(mNew, 0.0, m);
        });
        normalise();
        e.set(Pipe::V, Pipe::MTE3, 1);
        e.wait(Pipe::V, Pipe::MTE3, 1);
        // Global row ρ = g·M + i is head g·headsPerGroup + i at token 0.
        for (int64_t row = 0; row < r; ++row) {
          Value rho = e.add(g0, e.cst(row));
          e.when(e.cmp(P::ult, rho, e.cst(rowsAll)), [&] {
            e.copy(Pipe::MTE3, o, {e.cst(row), c0}, out, {c0, e.mul(rho, p.dv)}, 1, p.dv);
          });
        }
        e.set(Pipe::MTE3, Pipe::V, 1);
      });
    }

    e.flags(false, free);
  });
  return mk.kernel;
}
