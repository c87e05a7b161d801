//===- AttentionGradKernel.cpp - flash-attention backward as a mix kernel --===//
//
// Per block, both passes share one step over a (query tile i, KV tile j)
// pair, x being the tile the pass streams (j in the query pass, i in the KV
// pass) and ring slot x % ring of the block its workspace:
//   AIC:  S = Q_i·K_jᵀ and dP = dO_i·V_jᵀ into L0C, FixPipe both into the
//         ring slot, cross_set(FIX, kScores);
//   AIV:  cross_wait(kScores), S and dP rows -> UB, P = exp(scale·S + mask -
//         lse), dS = scale·P·(dP - D), (KV pass: P ->) dS -> ring,
//         cross_set(MTE3, kGrads);
//   AIC:  cross_wait(kGrads), then the pass's products:
//         query pass:  dQ_i += dS·K_j                 (L0C over j)
//         KV pass:     dV_j += Pᵀ·dO_i, dK_j += dSᵀ·Q_i (L0C over i; Pᵀ and
//                      dSᵀ are MTE1's transposed loads, LoadData transpose)
// and FixPipe of each accumulator when its loop ends. As the forward runs
// QK ahead of PV, the AIC runs the scores of tile x (stage A) ring - 1
// tiles ahead of the products of tile x - ring + 1 (stage B), so the
// vector cores work on one pair while the Cube computes the next's scores
// and the last's products; the streamed tiles and the P / dS tiles have a
// ring of L1 slots. Every product contracts in Cube chunks through two
// L0A / L0B slots per chunk shape, shared by all products of that shape;
// each pass allocates its buffers in its own loop body, so the two passes'
// L0C accumulators share bytes (dQ; dV, dK). The query pass's AIVs
// first compute D = rowsum(dO·O) per row (and the sink gradient rows) into
// workspace; sync_all publishes D to the KV pass of every block.
//
// Every on-chip buffer is guarded the way the forward's are: a
// consumer-to-producer flag per buffer, pre-armed at the start of a pass and
// drained at its end, and a producer-to-consumer flag per fill.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AttentionGradKernel.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/TileLayout.h"
#include "AttentionSteps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"

#include <functional>

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {

// Cross-core flag ids (S23: 0-10).
constexpr int64_t kScores = 3, kGrads = 4;

/// One block per task of the larger pass (query tiles or KV tiles of every
/// KV head), at most one per cube core.
int64_t blockDimOf(const AttentionProblem &p, const AttentionGradTiling &tl,
                   const TargetDescription &t) {
  return std::min(std::max(p.groups * ceilDiv(p.rows(), tl.bq), p.groups * ceilDiv(p.tk, tl.bk)),
                  t.cubeCores);
}

/// The Cube's contraction chunk: the tiling's, or the largest dividing every
/// contracted dimension (dk for S, dv for dP, bk for dQ, bq for dV and dK).
int64_t chunkOf(const AttentionProblem &p, const AttentionGradTiling &tl) {
  if (tl.kChunk)
    return tl.kChunk;
  int64_t dk = roundUp(p.dk, 16), dv = roundUp(p.dv, 16);
  for (int64_t c : {128, 64, 32})
    if (tl.bq % c == 0 && tl.bk % c == 0 && dk % c == 0 && dv % c == 0)
      return c;
  return 16;
}

/// A buffer handed from a producer pipe to a consumer pipe on one event.
struct Handoff {
  Pipe producer, consumer;
  int64_t event;
  /// The consumer-to-producer flag that frees the buffer.
  KernelEmitter::Flag free() const { return {consumer, producer, event}; }
};

enum class Pass { Query, KV };

/// Places buffers one after another per space. With an emitter it emits the
/// allocations; without one it only counts their bytes (the fit check), so
/// the check and the kernel share one plan.
struct Planner {
  KernelEmitter *emitter; // null when counting
  const TargetDescription &t;
  Type cubeType; // the Cube operands' element type (null when counting)
  int64_t cubeBytes;
  std::array<int64_t, kNumSpaces> counted{};

  /// `slots` tiles of rows x cols of the Cube's dtype (or f32).
  Value alloc(Space space, Layout layout, int64_t rows, int64_t cols, bool f32 = false,
              int64_t slots = 1) {
    if (emitter)
      return emitter->alloc(space, layout, rows, cols,
                            f32 ? Float32Type::get(cubeType.getContext()) : cubeType, slots);
    counted[(int)space] += roundUp(tileBytes(layout, rows, cols, f32 ? 4 : cubeBytes, false) * slots,
                                   t.buffer(space).align);
    return {};
  }
};

/// L1 slots of the tiles streamed per pair: one more than the ring, so the
/// next pair's tiles load while the products of the pair `ring - 1` back
/// still read theirs (with `ring` slots the load waited for those products).
int64_t streamSlots(const AttentionGradTiling &tl) { return tl.ring + 1; }
/// L1 slots of the P / dS tiles read back from the ring (pair n in n % 2).
constexpr int64_t kGradSlots = 2;

/// A pass's cube-core buffers. The task's fixed tiles (query pass: Q, dO;
/// KV pass: K, V) have one slot, the tiles streamed per pair ring + 1
/// (pair n in slot n % (ring + 1)), the P / dS read back two; L0A / L0B hold two slots
/// of each chunk shape the pass's products take, shared by all products of
/// that shape; L0C holds S, dP and the pass's accumulators (dQ; dV, dK).
/// The passes' buffers are allocated in their own loop bodies and share
/// bytes (AscendOps.cpp: allocations in disjoint regions may overlap).
struct CubeTiles {
  Value q, dO, k, v, p, dS, s, dP, acc0, acc1;
  struct Operand {
    Space space;
    int64_t rows, cols;
    Value buffer;
  };
  SmallVector<Operand> operands;

  Value operand(Space space, int64_t rows, int64_t cols) const {
    for (const Operand &o : operands)
      if (o.space == space && o.rows == rows && o.cols == cols)
        return o.buffer;
    llvm_unreachable("an L0 operand shape the plan did not allocate");
  }
};

CubeTiles planCube(Planner &pl, const AttentionProblem &p, const AttentionGradTiling &tl,
                   Pass pass) {
  const int64_t dk = roundUp(p.dk, 16), dv = roundUp(p.dv, 16), bq = tl.bq, bk = tl.bk;
  const int64_t S = streamSlots(tl), kc = chunkOf(p, tl);
  const bool kv = pass == Pass::KV;
  CubeTiles c;
  c.q = pl.alloc(Space::L1, Layout::NZ, bq, dk, false, kv ? S : 1);
  c.dO = pl.alloc(Space::L1, Layout::NZ, bq, dv, false, kv ? S : 1);
  c.k = pl.alloc(Space::L1, Layout::NZ, bk, dk, false, kv ? 1 : S);
  c.v = pl.alloc(Space::L1, Layout::NZ, bk, dv, false, kv ? 1 : S);
  if (kv)
    c.p = pl.alloc(Space::L1, Layout::NZ, bq, bk, false, kGradSlots);
  c.dS = pl.alloc(Space::L1, Layout::NZ, bq, bk, false, kGradSlots);
  auto operand = [&](Space space, int64_t rows, int64_t cols) {
    for (const CubeTiles::Operand &o : c.operands)
      if (o.space == space && o.rows == rows && o.cols == cols)
        return;
    Layout l = space == Space::L0A ? Layout::ZZ : Layout::ZN;
    c.operands.push_back({space, rows, cols, pl.alloc(space, l, rows, cols, false, 2)});
  };
  operand(Space::L0A, bq, kc); // Q, dO (S, dP); dS (dQ)
  operand(Space::L0B, kc, bk); // Kᵀ, Vᵀ
  if (kv) {
    operand(Space::L0A, bk, kc); // Pᵀ, dSᵀ
    operand(Space::L0B, kc, dv); // dO
  }
  operand(Space::L0B, kc, dk); // K (dQ), Q (dK)
  c.s = pl.alloc(Space::L0C, Layout::NZ, bq, bk, true);
  c.dP = pl.alloc(Space::L0C, Layout::NZ, bq, bk, true);
  if (kv) {
    c.acc0 = pl.alloc(Space::L0C, Layout::NZ, bk, dv, true);
    c.acc1 = pl.alloc(Space::L0C, Layout::NZ, bk, dk, true);
  } else {
    c.acc0 = pl.alloc(Space::L0C, Layout::NZ, bq, dk, true);
  }
  return c;
}

/// The vector cores' UB tiles (both passes). What a pair reads (S, dP, the
/// mask rows, the KV pass's lse and D rows) and writes (P, dS) has two
/// slots, pair n in slot n % 2, so the loads of the next pair and the
/// stores of the last overlap this pair's Vector work; the task's rows (the
/// query pass's lse, D, sink) and the scratch have one. D = rowsum(dO ∘ O)
/// takes dO and O `dChunk` columns at a time (dOE, dOF, o), so the pair
/// slots fit UB at bq 128.
struct VectorTiles {
  Value s, dP, mask, tmp, pOut, dsOut, dOE, dOF, o, lse, dOut, dPart, lsePair, dIn, sink, e;
};

/// Pair slots of the vector cores' tiles.
constexpr int64_t kPairSlots = 2;

VectorTiles planVector(Planner &pl, const AttentionProblem &p, const AttentionGradTiling &tl,
                       int64_t dChunk) {
  const int64_t r = tl.bq / 2, bk = tl.bk;
  auto f32 = [&](int64_t cols, int64_t slots = 1) {
    return pl.alloc(Space::UB, Layout::ND, r, cols, true, slots);
  };
  auto cube = [&](int64_t cols, int64_t slots = 1) {
    return pl.alloc(Space::UB, Layout::ND, r, cols, false, slots);
  };
  VectorTiles v;
  v.s = f32(bk, kPairSlots);
  v.dP = f32(bk, kPairSlots);
  v.mask = f32(bk, kPairSlots);
  v.tmp = f32(bk);
  v.pOut = cube(bk, kPairSlots);
  v.dsOut = cube(bk, kPairSlots);
  v.dOE = cube(dChunk);
  v.dOF = f32(dChunk);
  v.o = f32(dChunk);
  v.lse = f32(1);
  v.dOut = f32(1);
  v.dPart = f32(1);
  v.lsePair = f32(1, kPairSlots);
  v.dIn = f32(1, kPairSlots);
  v.sink = f32(1);
  v.e = f32(1);
  return v;
}

/// The columns of dO and O D takes at a time: all of dv if the vector
/// cores' tiles then fit UB (less its reserve), else the largest of 128 /
/// 64 / 32 / 16 dividing dv that does (16 if none: the fit check reports it).
int64_t dChunkOf(const AttentionProblem &p, const AttentionGradTiling &tl,
                 const TargetDescription &t) {
  const int64_t dv = roundUp(p.dv, 16);
  if (tl.dChunk)
    return tl.dChunk;
  for (int64_t c : {dv, int64_t(128), int64_t(64), int64_t(32)}) {
    if (c > dv || dv % c)
      continue;
    Planner pl{nullptr, t, Type(), dtypeBytes(p.dtype)};
    planVector(pl, p, tl, c);
    if (pl.counted[(int)Space::UB] <= t.usableBytes(Space::UB))
      return c;
  }
  return 16;
}

} // namespace

bool mlir::attnedit::ascend::attentionGradFits(const AttentionProblem &p,
                                               const AttentionGradTiling &tl,
                                               const TargetDescription &t, std::string *why) {
  auto fail = [&](const llvm::Twine &msg) {
    if (why)
      *why = msg.str();
    return false;
  };
  if (!t.separated || t.vectorCoresPerCube != 2)
    return fail(t.name + ": the backward kernel needs one cube and two vector cores per block");
  if (p.tq != p.tk || p.valueFromKey)
    return fail("the backward kernel takes training's attention (every position a query, "
                "separate V)");
  if ((tl.bq % 32 && tl.bq != 16) || tl.bk % 16 || tl.bk < 16)
    return fail("bq must be 16 or a multiple of 32, bk a multiple of 16");
  const int64_t kc = chunkOf(p, tl);
  // MTE2 -> MTE1 events: the task's tiles, each streamed slot, each P / dS slot.
  if (tl.ring < 2 || 1 + streamSlots(tl) + kGradSlots > t.eventsPerPipePair)
    return fail("ring must be at least 2 with ring + 4 MTE2 -> MTE1 events of " +
                llvm::Twine(t.eventsPerPipePair));
  if (kc % 16 || tl.bq % kc || tl.bk % kc || roundUp(p.dk, 16) % kc || roundUp(p.dv, 16) % kc)
    return fail("the Cube chunk must be a multiple of 16 dividing bq, bk and the head dims");
  if (tl.dChunk && (tl.dChunk % 16 || roundUp(p.dv, 16) % tl.dChunk))
    return fail("the D chunk must be a multiple of 16 dividing the padded dv");
  // Each space's need is the larger pass's (they share bytes), UB the AIVs'.
  std::array<int64_t, kNumSpaces> bytes{};
  for (Pass pass : {Pass::Query, Pass::KV}) {
    Planner pl{nullptr, t, Type(), dtypeBytes(p.dtype)};
    planCube(pl, p, tl, pass);
    for (int s = 0; s < kNumSpaces; ++s)
      bytes[s] = std::max(bytes[s], pl.counted[s]);
  }
  Planner pl{nullptr, t, Type(), dtypeBytes(p.dtype)};
  planVector(pl, p, tl, dChunkOf(p, tl, t));
  bytes[(int)Space::UB] = pl.counted[(int)Space::UB];
  if (std::string over = capacityError(t, bytes); !over.empty())
    return fail(over);
  return true;
}

KernelOp mlir::attnedit::ascend::buildAttentionGradKernel(OpBuilder &builder, Location loc,
                                                          llvm::StringRef name,
                                                          const AttentionProblem &p,
                                                          const AttentionGradTiling &tl,
                                                          const TargetDescription &t) {
  MLIRContext *ctx = builder.getContext();
  Builder b(ctx);
  Type f32 = b.getF32Type();
  Type elem = cubeElementType(ctx, p.dtype);
  const int64_t M = p.rows(), bq = tl.bq, bk = tl.bk, r = bq / 2;
  const int64_t R = tl.ring, L = R - 1, SL = streamSlots(tl), kc = chunkOf(p, tl);
  const int64_t dk = roundUp(p.dk, 16), dv = roundUp(p.dv, 16);
  const int64_t qTiles = ceilDiv(M, bq), kTiles = ceilDiv(p.tk, bk);
  const int64_t qTasks = p.groups * qTiles, kTasks = p.groups * kTiles;
  const int64_t blockDim = blockDimOf(p, tl, t);
  const int64_t maskRows = attentionMaskTableRows(p, bk);
  const int64_t dChunk = dChunkOf(p, tl, t);

  MixKernel mk = startMixKernel(builder, loc, name, t, blockDim,
                                {{"usedCoreNum", blockDim},
                                 {"qTile", bq},
                                 {"kvTile", bk},
                                 {"preLaunch", L},
                                 {"baseK", kc},
                                 {"sparseMode", p.window ? 4 : 3}, // as the forward (S29)
                                 {"preTokens", p.window ? p.window - 1 : p.tk},
                                 {"numSinks", p.sinks ? 1 : 0}});
  auto gm = [&](std::initializer_list<int64_t> shape, Type e) { return mk.gm(shape, e); };
  Value blk = mk.block, coreIdx = mk.core;
  Value Q = gm({p.groups, M, p.dk}, elem);
  Value K = gm({p.groups, p.tk, p.dk}, elem);
  Value V = gm({p.groups, p.tk, p.dv}, elem);
  Value dO = gm({p.groups, M, p.dv}, elem);
  Value O = gm({p.tq, p.heads() * p.dv}, f32);
  Value lse = gm({p.groups, M, 1}, f32);
  Value maskGm = gm({maskRows, bk}, f32);
  Value sinkGm = p.sinks ? gm({p.groups, M, 1}, f32) : Value();
  int64_t firstWs = mk.nextArgument();
  Value wsS = gm({blockDim * R, bq, bk}, f32);
  Value wsDP = gm({blockDim * R, bq, bk}, f32);
  Value wsP = gm({blockDim * R, bq, bk}, elem);
  Value wsDS = gm({blockDim * R, bq, bk}, elem);
  Value wsD = gm({p.groups, M, 1}, f32);
  mk.kernel.setWorkspaceAttr(b.getDenseI64ArrayAttr(
      {firstWs, firstWs + 1, firstWs + 2, firstWs + 3, firstWs + 4}));
  Value dQ = gm({p.groups, M, p.dk}, f32);
  Value dK = gm({p.groups, p.tk, p.dk}, f32);
  Value dV = gm({p.groups, p.tk, p.dv}, f32);
  Value dSink = p.sinks ? gm({p.groups, M, 1}, f32) : Value();

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(mk.entry);
  KernelEmitter e(builder, loc, t);
  using P = arith::CmpIPredicate;
  // A buffer is free for its producer after acquire, ready for its consumer
  // after publish, free again after release (set by the consumer).
  auto acquireAt = [&](Pipe producer, Pipe consumer, Value ev) {
    e.wait(consumer, producer, ev);
  };
  auto publishAt = [&](Pipe producer, Pipe consumer, Value ev) {
    e.set(producer, consumer, ev);
    e.wait(producer, consumer, ev);
  };
  auto releaseAt = [&](Pipe producer, Pipe consumer, Value ev) { e.set(consumer, producer, ev); };
  auto acquire = [&](Handoff h) { acquireAt(h.producer, h.consumer, e.cst(h.event)); };
  auto publish = [&](Handoff h) { publishAt(h.producer, h.consumer, e.cst(h.event)); };
  auto release = [&](Handoff h) { releaseAt(h.producer, h.consumer, e.cst(h.event)); };

  Value c0 = e.cst(0);
  /// Query tile i: its first row, the positions its rows hold and the KV
  /// tiles they see, as the forward's tasks.
  struct Rows : QueryRows {
    Value row0;
  };
  auto rowsOf = [&](Value i) {
    Rows k;
    k.row0 = e.mul(i, bq);
    static_cast<QueryRows &>(k) = queryRows(e, p, k.row0, bq, bk);
    return k;
  };
  // The KV pass visits query tiles from the one holding head 0's query at
  // position j·bk (tq == tk: the first that sees key tile j; earlier tiles
  // hold only earlier positions of head 0), skipping those that see none.
  auto firstTile = [&](Value j) { return e.div(e.mul(j, bk), bq); };
  auto sees = [&](const Rows &k, Value j) {
    return e.andI(e.cmp(P::sle, k.jLo, j), e.cmp(P::sle, j, k.jHi));
  };
  // The KV pass's pairs of KV tile j, pair n its n-th visited query tile.
  // When every query tile holds one head's rows (tq % bq == 0), head h's
  // tiles that see j are h·tq/bq + [a, b], a and b the same for every head
  // (a = j·bk / bq, the first holding position j·bk; b the last whose
  // window still reaches j), so pair n is tile (n / per)·tq/bq + a + n % per
  // and the cube's pipeline runs on across the group's head boundaries.
  // Otherwise (tiles spanning two heads) the tiles from firstTile(j) are
  // walked and those that do not see j skipped.
  const bool densePairs = p.tq % bq == 0;
  struct KvPairs {
    Value count;
    std::function<Value(Value)> tile;
  };
  auto kvPairs = [&](Value j) -> KvPairs {
    if (!densePairs) {
      Value first = firstTile(j);
      return {e.sub(e.cst(qTiles), first), [&e, first](Value n) { return e.add(first, n); }};
    }
    const int64_t perHead = p.tq / bq;
    Value a = e.div(e.mul(j, bk), bq);
    Value last = e.cst(perHead - 1);
    if (p.window) // l·bq <= (j + 1)·bk + window - 2: its earliest row still sees key j·bk + bk - 1
      last = e.smin(last, e.div(e.add(e.mul(j, bk), e.cst(bk + p.window - 2)), bq));
    Value per = e.add(e.sub(last, a), e.cst(1));
    return {e.mul(per, p.headsPerGroup), [&e, a, per, perHead](Value n) {
              return e.add(e.add(e.mul(e.div(n, per), perHead), a), e.rem(n, per));
            }};
  };
  // Pair n of a task (the n-th KV tile of the query pass's, the n-th query
  // tile visited of the KV pass's) goes through ring slot n % R of the block.
  auto ringSlot = [&](Value n) { return e.add(e.mul(blk, R), e.rem(n, R)); };

  Value isCube = e.cmp(P::eq, coreIdx, c0);
  Value isVector = e.cmp(P::ne, coreIdx, c0);

  //===------------------------------------------------------------------===//
  // The cube core: per pass, a step loop running the scores of tile x
  // (stage A) ring - 1 tiles ahead of the products of tile x - ring + 1
  // (stage B), as the forward runs QK ahead of PV.
  //===------------------------------------------------------------------===//
  // Events. MTE2 <-> MTE1: 0 the task's fixed tiles, 1 + s the tiles
  // streamed into L1 slot s, 1 + SL + s the P / dS of L1 slot s; MTE1 <-> M:
  // 0 / 1 the L0A / L0B chunk slots; M <-> FIX: 0 S, 1 dP, 2 (3) the
  // pass's accumulators.
  const Handoff cS{Pipe::M, Pipe::FIX, 0}, cDP{Pipe::M, Pipe::FIX, 1};
  auto cubeFlags = [&](int64_t accumulators) {
    SmallVector<KernelEmitter::Flag> free;
    for (int64_t ev = 0; ev < 1 + SL + kGradSlots; ++ev)
      free.push_back({Pipe::MTE1, Pipe::MTE2, ev});
    for (int64_t ev = 0; ev < 2; ++ev)
      free.push_back({Pipe::M, Pipe::MTE1, ev});
    for (int64_t ev = 0; ev < 2 + accumulators; ++ev)
      free.push_back({Pipe::FIX, Pipe::M, ev});
    return free;
  };

  auto cubePass = [&](Pass pass) {
    const bool kv = pass == Pass::KV;
    const int64_t tiles = kv ? kTiles : qTiles;
    const SmallVector<KernelEmitter::Flag> free = cubeFlags(kv ? 2 : 1);
    e.flags(true, free);
    e.loop(blk, e.cst(kv ? kTasks : qTasks), blockDim, [&](Value task) {
      // A fresh plan per pass: the passes' buffers share bytes.
      KernelEmitter passBuffers(builder, loc, t);
      Planner pl{&passBuffers, t, elem, dtypeBytes(p.dtype)};
      CubeTiles c = planCube(pl, p, tl, pass);
      int64_t chunk = 0; // alternates the L0 chunk slots
      // acc (+)= A·B, its contraction in kc chunks through L0A / L0B: A
      // [m, k] is `a` (or its transpose), B [k, n] is `bb` (or its).
      auto product = [&](Value a, bool aT, Value bb, bool bT, int64_t m, int64_t n, int64_t k,
                         Value acc, Value init) {
        Value aL0 = c.operand(Space::L0A, m, kc), bL0 = c.operand(Space::L0B, kc, n);
        for (int64_t i = 0; i < k / kc; ++i) {
          int64_t s = chunk++ % 2;
          Value as = e.slot(aL0, e.cst(s)), bs = e.slot(bL0, e.cst(s)), at = e.cst(i * kc);
          const Handoff h{Pipe::MTE1, Pipe::M, s};
          acquire(h);
          e.copy(Pipe::MTE1, a, aT ? ValueRange{at, c0} : ValueRange{c0, at}, as, {c0, c0}, m, kc,
               aT);
          e.copy(Pipe::MTE1, bb, bT ? ValueRange{c0, at} : ValueRange{at, c0}, bs, {c0, c0}, kc, n,
               bT);
          publish(h);
          e.mmad(as, bs, acc, i == 0 ? init : e.constBool(false));
          release(h);
        }
      };
      // S (or dP) of the tiles in L1 into L0C, FixPipe'd into ring slot x.
      auto score = [&](Handoff h, Value a, Value bb, int64_t k, Value ring, Value x) {
        acquire(h);
        product(a, false, bb, true, bq, bk, k, h.event == 0 ? c.s : c.dP, e.constBool(true));
        publish(h);
        e.copy(Pipe::FIX, h.event == 0 ? c.s : c.dP, {c0, c0}, ring, {ringSlot(x), c0, c0}, bq, bk);
        release(h);
      };

      Value g = e.div(task, tiles), own = e.rem(task, tiles);
      Rows mine; // the query pass's task rows
      if (!kv)
        mine = rowsOf(own);
      Value count;                      // the pairs of the task
      std::function<Value(Value)> tileOf; // pair n's streamed tile
      Value ev0 = c0;
      acquireAt(Pipe::MTE2, Pipe::MTE1, ev0);
      if (kv) {
        e.copy(Pipe::MTE2, K, {g, e.mul(own, bk), c0}, c.k, {c0, c0}, bk, dk);
        e.copy(Pipe::MTE2, V, {g, e.mul(own, bk), c0}, c.v, {c0, c0}, bk, dv);
        KvPairs kp = kvPairs(own);
        count = kp.count;
        tileOf = kp.tile;
      } else {
        e.copy(Pipe::MTE2, Q, {g, mine.row0, c0}, c.q, {c0, c0}, bq, dk);
        e.copy(Pipe::MTE2, dO, {g, mine.row0, c0}, c.dO, {c0, c0}, bq, dv);
        Value lo = mine.jLo;
        count = e.sub(e.add(mine.jHi, e.cst(1)), lo);
        tileOf = [&e, lo](Value n) { return e.add(lo, n); };
      }
      publishAt(Pipe::MTE2, Pipe::MTE1, ev0);
      for (int64_t a = 0; a < (kv ? 2 : 1); ++a)
        acquire({Pipe::M, Pipe::FIX, 2 + a});
      // Whether tile x is one the task visits (without dense pairs the KV
      // pass skips query tiles that do not see its keys).
      auto visit = [&](Value x, llvm::function_ref<void()> then) {
        if (kv && !densePairs)
          e.when(sees(rowsOf(x), own), then);
        else
          then();
      };

      e.loop(c0, e.add(count, e.cst(L)), 1, [&](Value step) {
        // Stage A(step): the tile's streamed operands -> L1 slot, S and dP.
        e.when(e.cmp(P::slt, step, count), [&] {
          Value x = tileOf(step);
          visit(x, [&] {
            Value s = e.rem(step, SL), ev = e.add(s, e.cst(1));
            acquireAt(Pipe::MTE2, Pipe::MTE1, ev);
            if (kv) {
              Value row0 = e.mul(x, bq);
              e.copy(Pipe::MTE2, Q, {g, row0, c0}, e.slot(c.q, s), {c0, c0}, bq, dk);
              e.copy(Pipe::MTE2, dO, {g, row0, c0}, e.slot(c.dO, s), {c0, c0}, bq, dv);
            } else {
              Value j0 = e.mul(x, bk);
              e.copy(Pipe::MTE2, K, {g, j0, c0}, e.slot(c.k, s), {c0, c0}, bk, dk);
              e.copy(Pipe::MTE2, V, {g, j0, c0}, e.slot(c.v, s), {c0, c0}, bk, dv);
            }
            publishAt(Pipe::MTE2, Pipe::MTE1, ev);
            Value q = kv ? e.slot(c.q, s) : c.q, dOt = kv ? e.slot(c.dO, s) : c.dO;
            Value k = kv ? c.k : e.slot(c.k, s), v = kv ? c.v : e.slot(c.v, s);
            score(cS, q, k, dk, wsS, step);
            score(cDP, dOt, v, dv, wsDP, step);
            e.crossSet(Pipe::FIX, kScores);
          });
        });
        // Stage B(step - L): once both AIVs have written dS (and P), the
        // pass's products; then the slot's tiles are free.
        e.when(e.cmp(P::sge, step, e.cst(L)), [&] {
          Value n = e.sub(step, e.cst(L));
          visit(tileOf(n), [&] {
            Value s = e.rem(n, SL), pd = e.rem(n, kGradSlots), ev = e.add(pd, e.cst(1 + SL));
            Value first = e.cmp(P::eq, n, c0);
            e.crossWait(kGrads);
            acquireAt(Pipe::MTE2, Pipe::MTE1, ev);
            if (kv)
              e.copy(Pipe::MTE2, wsP, {ringSlot(n), c0, c0}, e.slot(c.p, pd), {c0, c0}, bq, bk);
            e.copy(Pipe::MTE2, wsDS, {ringSlot(n), c0, c0}, e.slot(c.dS, pd), {c0, c0}, bq, bk);
            publishAt(Pipe::MTE2, Pipe::MTE1, ev);
            if (kv) {
              // dV += Pᵀ·dO, dK += dSᵀ·Q (MTE1's transposed loads).
              product(e.slot(c.p, pd), true, e.slot(c.dO, s), false, bk, dv, bq, c.acc0, first);
              product(e.slot(c.dS, pd), true, e.slot(c.q, s), false, bk, dk, bq, c.acc1, first);
            } else {
              // dQ += dS·K.
              product(e.slot(c.dS, pd), false, e.slot(c.k, s), false, bq, dk, bk, c.acc0, first);
            }
            releaseAt(Pipe::MTE2, Pipe::MTE1, ev);
            releaseAt(Pipe::MTE2, Pipe::MTE1, e.add(s, e.cst(1)));
          });
        });
      });
      releaseAt(Pipe::MTE2, Pipe::MTE1, ev0);
      auto out = [&](int64_t a, Value acc, Value dst, ValueRange at, int64_t rows, int64_t cols) {
        const Handoff h{Pipe::M, Pipe::FIX, 2 + a};
        publish(h);
        e.copy(Pipe::FIX, acc, {c0, c0}, dst, at, rows, cols);
        release(h);
      };
      if (kv) {
        out(0, c.acc0, dV, {g, e.mul(own, bk), c0}, bk, dv);
        out(1, c.acc1, dK, {g, e.mul(own, bk), c0}, bk, dk);
      } else {
        out(0, c.acc0, dQ, {g, mine.row0, c0}, bq, dk);
      }
    });
    e.flags(false, free);
  };

  e.when(isCube, [&] {
    cubePass(Pass::Query);
    // Every row's D is in workspace once all cores meet.
    e.syncAll();
    cubePass(Pass::KV);
  });

  //===------------------------------------------------------------------===//
  // The vector cores: AIV `sub` owns rows [sub·r, (sub + 1)·r) of a tile.
  //===------------------------------------------------------------------===//
  VectorTiles u;
  Value rowOff;
  // A pair's tiles in pair slot ps (MTE2 -> V: S, dP, mask, the KV pass's
  // rows; V -> MTE3: P, dS) on event 2·ps; the query pass's task rows
  // (MTE2 -> V) and its D and sink rows (V -> MTE3) on event 1.
  // The query pass's dO / O column chunks for D (MTE2 -> V) on event 3.
  const Handoff vRows{Pipe::MTE2, Pipe::V, 1}, vRowsOut{Pipe::V, Pipe::MTE3, 1},
      vChunk{Pipe::MTE2, Pipe::V, 3};
  SmallVector<KernelEmitter::Flag> vectorFree{vRows.free(), vRowsOut.free(), vChunk.free()};
  for (int64_t ps = 0; ps < kPairSlots; ++ps) {
    vectorFree.push_back({Pipe::V, Pipe::MTE2, 2 * ps});
    vectorFree.push_back({Pipe::MTE3, Pipe::V, 2 * ps});
  }

  // Pair n's Vector work for query rows from row0 (this AIV's) against KV
  // tile j, through ring slot n % R and pair slot n % 2: P and dS from the
  // ring's S and dP, dS (and P) back to it. The query pass's lse and D rows
  // are the task's (`taskRows`); the KV pass loads them per pair (`g`).
  auto gradients = [&](const Rows &k, Value row0, Value j, Value n, bool kvPass, Value g) {
    Value j0 = e.mul(j, bk), at = ringSlot(n);
    Value ps = e.rem(n, kPairSlots), ev = e.mul(ps, 2);
    Value S = e.slot(u.s, ps), dP = e.slot(u.dP, ps), mask = e.slot(u.mask, ps);
    Value pOut = e.slot(u.pOut, ps), dsOut = e.slot(u.dsOut, ps);
    Value lseRows = kvPass ? e.slot(u.lsePair, ps) : u.lse, dRows = kvPass ? e.slot(u.dIn, ps) : u.dOut;
    e.crossWait(kScores);
    acquireAt(Pipe::MTE2, Pipe::V, ev);
    if (kvPass) {
      e.copy(Pipe::MTE2, lse, {g, row0, c0}, lseRows, {c0, c0}, r, 1);
      e.copy(Pipe::MTE2, wsD, {g, row0, c0}, dRows, {c0, c0}, r, 1);
    }
    e.copy(Pipe::MTE2, wsS, {at, rowOff, c0}, S, {c0, c0}, r, bk);
    e.copy(Pipe::MTE2, wsDP, {at, rowOff, c0}, dP, {c0, c0}, r, bk);
    Value edge = loadEdgeMask(e, p, bk, maskGm, mask, row0, r, j0, k);
    publishAt(Pipe::MTE2, Pipe::V, ev);
    e.scalar<VMulsOp>(S, p.scale, S);
    e.when(edge, [&] { e.v2<VAddOp>(S, mask, S); });
    e.v1<VBrcbOp>(lseRows, u.tmp);
    e.v2<VSubOp>(S, u.tmp, S);
    e.v1<VExpOp>(S, S); // P
    e.v1<VBrcbOp>(dRows, u.tmp);
    e.v2<VSubOp>(dP, u.tmp, dP);
    e.v2<VMulOp>(dP, S, dP);
    e.scalar<VMulsOp>(dP, p.scale, dP); // dS
    acquireAt(Pipe::V, Pipe::MTE3, ev);
    if (kvPass)
      e.v1<VCastOp>(S, pOut);
    e.v1<VCastOp>(dP, dsOut);
    releaseAt(Pipe::MTE2, Pipe::V, ev);
    publishAt(Pipe::V, Pipe::MTE3, ev);
    if (kvPass)
      e.copy(Pipe::MTE3, pOut, {c0, c0}, wsP, {at, rowOff, c0}, r, bk);
    e.copy(Pipe::MTE3, dsOut, {c0, c0}, wsDS, {at, rowOff, c0}, r, bk);
    releaseAt(Pipe::V, Pipe::MTE3, ev);
    e.crossSet(Pipe::MTE3, kGrads);
  };

  e.when(isVector, [&] {
    rowOff = e.mul(e.sub(coreIdx, e.cst(1)), r);
    Planner pl{&e, t, elem, dtypeBytes(p.dtype)};
    u = planVector(pl, p, tl, dChunk);

    e.flags(true, vectorFree);
    e.loop(blk, e.cst(qTasks), blockDim, [&](Value task) {
      Value g = e.div(task, qTiles);
      Rows k = rowsOf(e.rem(task, qTiles));
      Value row0 = e.add(k.row0, rowOff);
      // D = rowsum(dO ∘ O) of this AIV's rows; O row ρ is head
      // g·headsPerGroup + ρ / tq at token ρ % tq.
      acquire(vRows);
      e.copy(Pipe::MTE2, lse, {g, row0, c0}, u.lse, {c0, c0}, r, 1);
      if (p.sinks)
        e.copy(Pipe::MTE2, sinkGm, {g, row0, c0}, u.sink, {c0, c0}, r, 1);
      publish(vRows);
      acquire(vRowsOut);
      // dChunk columns of dO and O at a time, their row sums added up.
      for (int64_t c = 0; c < p.dv; c += dChunk) {
        const int64_t cols = std::min(dChunk, p.dv - c);
        acquire(vChunk);
        e.copy(Pipe::MTE2, dO, {g, row0, e.cst(c)}, u.dOE, {c0, c0}, r, cols);
        // O row ρ is head g·headsPerGroup + ρ / tq at token ρ % tq: when r
        // divides tq this AIV's rows are r tokens of one head, one window
        // of O (its row pitch heads·dv); otherwise row by row.
        auto oRows = [&](Value rho, Value at, int64_t rows) {
          Value head = e.add(e.mul(g, p.headsPerGroup), e.div(rho, p.tq));
          e.copy(Pipe::MTE2, O, {e.rem(rho, p.tq), e.add(e.mul(head, p.dv), e.cst(c))}, u.o,
                 {at, c0}, rows, cols);
        };
        if (p.tq % r == 0) {
          e.when(e.cmp(P::ult, row0, e.cst(M)), [&] { oRows(row0, c0, r); });
        } else {
          for (int64_t row = 0; row < r; ++row) {
            Value rho = e.add(row0, e.cst(row));
            e.when(e.cmp(P::ult, rho, e.cst(M)), [&] { oRows(rho, e.cst(row), 1); });
          }
        }
        publish(vChunk);
        e.v1<VCastOp>(u.dOE, u.dOF);
        e.v2<VMulOp>(u.dOF, u.o, u.dOF);
        if (c == 0) {
          e.reduce(ReduceKind::Sum, u.dOF, u.dOut);
        } else {
          e.reduce(ReduceKind::Sum, u.dOF, u.dPart);
          e.v2<VAddOp>(u.dOut, u.dPart, u.dOut);
        }
        release(vChunk);
      }
      if (p.sinks) {
        // d sink = -Σ_rows exp(sink - lse)·D: this AIV's rows of it.
        e.v2<VSubOp>(u.sink, u.lse, u.e);
        e.v1<VExpOp>(u.e, u.e);
        e.v2<VMulOp>(u.e, u.dOut, u.e);
        e.scalar<VMulsOp>(u.e, -1.0, u.e);
      }
      publish(vRowsOut);
      e.copy(Pipe::MTE3, u.dOut, {c0, c0}, wsD, {g, row0, c0}, r, 1);
      if (p.sinks)
        e.copy(Pipe::MTE3, u.e, {c0, c0}, dSink, {g, row0, c0}, r, 1);
      e.loop(k.jLo, e.add(k.jHi, e.cst(1)), 1,
           [&](Value j) { gradients(k, row0, j, e.sub(j, k.jLo), /*kvPass=*/false, g); });
      release(vRowsOut);
      release(vRows);
    });
    e.flags(false, vectorFree);

    // Every row's D is in workspace once all cores meet.
    e.syncAll();

    // KV pass: task (group, KV tile j), P and dS for the same pairs as the cube.
    e.flags(true, vectorFree);
    e.loop(blk, e.cst(kTasks), blockDim, [&](Value task) {
      Value g = e.div(task, kTiles), j = e.rem(task, kTiles);
      KvPairs kp = kvPairs(j);
      e.loop(c0, kp.count, 1, [&](Value n) {
        Rows k = rowsOf(kp.tile(n));
        auto pair = [&] { gradients(k, e.add(k.row0, rowOff), j, n, /*kvPass=*/true, g); };
        if (densePairs)
          pair();
        else
          e.when(sees(k, j), pair);
      });
    });
    e.flags(false, vectorFree);
  });

  return mk.kernel;
}

llvm::Expected<AttentionGradChoice>
mlir::attnedit::ascend::searchAttentionGradTiling(MLIRContext *context, const AttentionProblem &p,
                                                  const TargetDescription &t) {
  std::vector<AttentionGradTiling> candidates;
  int64_t rows = roundUp(p.rows(), 16), keys = roundUp(p.tk, 16);
  for (int64_t bq : {128, 64, 32, 16})
    for (int64_t bk : {128, 64, 32, 16})
      for (int64_t ring : {2, 3, 4}) { // 4: 1 + 5 + 2 MTE2 -> MTE1 events, all 8 of S22
        if ((bq > rows && bq > 16) || (bk > keys && bk > 16))
          continue;
        if (attentionGradFits(p, {bq, bk, ring}, t))
          candidates.push_back({bq, bk, ring});
      }
  // Smaller tiles than these only add instructions and flag round trips.
  if (candidates.size() > 6)
    candidates.resize(6);
  std::string why;
  if (candidates.empty()) {
    attentionGradFits(p, {16, 16}, t, &why);
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "no flash-attention backward tiling fits %s: %s",
                                   t.name.c_str(), why.c_str());
  }
  auto fastest = fastestCandidate(
      context, candidates.size(),
      [&](OpBuilder &b, size_t i) {
        return buildAttentionGradKernel(b, b.getUnknownLoc(), "candidate", p, candidates[i], t);
      },
      [&](size_t i) { return sampleBlocks(blockDimOf(p, candidates[i], t)); });
  if (!fastest)
    return fastest.takeError();
  return AttentionGradChoice{candidates[fastest->first], std::move(fastest->second),
                             static_cast<int64_t>(candidates.size())};
}
