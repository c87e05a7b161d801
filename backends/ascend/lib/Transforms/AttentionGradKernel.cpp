//===- AttentionGradKernel.cpp - flash-attention backward as a mix kernel --===//
//
// Per block, both passes share one step over a (query tile i, KV tile j)
// pair:
//   AIC:  S = Q_i·K_jᵀ and dP = dO_i·V_jᵀ into L0C, FixPipe both into the
//         block's ring slot, cross_set(FIX, kScores);
//   AIV:  cross_wait(kScores), S and dP rows -> UB, P = exp(scale·S + mask -
//         lse), dS = scale·P·(dP - D), (KV pass: P ->) dS -> ring,
//         cross_set(MTE3, kGrads);
//   AIC:  cross_wait(kGrads), then the pass's products:
//         query pass:  dQ_i += dS·K_j                 (L0C over j)
//         KV pass:     dV_j += Pᵀ·dO_i, dK_j += dSᵀ·Q_i (L0C over i; Pᵀ and
//                      dSᵀ are MTE1's transposed loads, LoadData transpose)
// and FixPipe of each accumulator when its loop ends. The query pass's AIVs
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

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/BuiltinOps.h"

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {

// Cross-core flag ids (S23: 0-10).
constexpr int64_t kScores = 3, kGrads = 4;
constexpr double kMasked = -3e38; // as the forward's mask rows

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// One block per task of the larger pass (query tiles or KV tiles of every
/// KV head), at most one per cube core.
int64_t blockDimOf(const AttentionProblem &p, const AttentionGradTiling &tl,
                   const TargetDescription &t) {
  return std::min(std::max(p.groups * ceilDiv(p.rows(), tl.bq), p.groups * ceilDiv(p.tk, tl.bk)),
                  t.cubeCores);
}

/// A buffer handed from a producer pipe to a consumer pipe on one event.
struct Handoff {
  Pipe producer, consumer;
  int64_t event;
};

/// The buffers, in allocation order, per space.
struct Plan {
  struct Buf {
    Space space;
    Layout layout;
    int64_t rows, cols, elementBytes;
  };
  std::vector<Buf> cube, vector;
};

Plan plan(const AttentionProblem &p, const AttentionGradTiling &tl) {
  int64_t dk = roundUp(p.dk, 16), dv = roundUp(p.dv, 16), bq = tl.bq, bk = tl.bk, r = bq / 2;
  int64_t eb = dtypeBytes(p.dtype);
  Plan pl;
  auto c = [&](Space s, Layout l, int64_t rows, int64_t cols, int64_t e = 0) {
    pl.cube.push_back({s, l, rows, cols, e ? e : eb});
  };
  // L1: Q, dO, K, V, P, dS tiles.
  c(Space::L1, Layout::NZ, bq, dk);
  c(Space::L1, Layout::NZ, bq, dv);
  c(Space::L1, Layout::NZ, bk, dk);
  c(Space::L1, Layout::NZ, bk, dv);
  c(Space::L1, Layout::NZ, bq, bk);
  c(Space::L1, Layout::NZ, bq, bk);
  // L0A: Q, dO, dS, Pᵀ, dSᵀ; L0B: Kᵀ, Vᵀ, K, dO, Q.
  c(Space::L0A, Layout::ZZ, bq, dk);
  c(Space::L0A, Layout::ZZ, bq, dv);
  c(Space::L0A, Layout::ZZ, bq, bk);
  c(Space::L0A, Layout::ZZ, bk, bq);
  c(Space::L0A, Layout::ZZ, bk, bq);
  c(Space::L0B, Layout::ZN, dk, bk);
  c(Space::L0B, Layout::ZN, dv, bk);
  c(Space::L0B, Layout::ZN, bk, dk);
  c(Space::L0B, Layout::ZN, bq, dv);
  c(Space::L0B, Layout::ZN, bq, dk);
  // L0C: S, dP, dQ, dV, dK.
  c(Space::L0C, Layout::NZ, bq, bk, 4);
  c(Space::L0C, Layout::NZ, bq, bk, 4);
  c(Space::L0C, Layout::NZ, bq, dk, 4);
  c(Space::L0C, Layout::NZ, bk, dv, 4);
  c(Space::L0C, Layout::NZ, bk, dk, 4);
  auto v = [&](int64_t rows, int64_t cols, int64_t e = 4) {
    pl.vector.push_back({Space::UB, Layout::ND, rows, cols, e});
  };
  for (int k = 0; k < 4; ++k)
    v(r, bk); // S, dP, mask, broadcast
  v(r, bk, eb);
  v(r, bk, eb); // P and dS out
  v(r, dv, eb);
  v(r, dv);
  v(r, dv); // dO (Cube dtype, f32), O
  for (int k = 0; k < 5; ++k)
    v(r, 1); // lse, D out, D in, sinks, sink gradient rows
  return pl;
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
  std::array<int64_t, kNumSpaces> bytes{};
  Plan pl = plan(p, tl);
  for (const Plan::Buf &b : pl.cube)
    bytes[(int)b.space] += roundUp(tileBytes(b.layout, b.rows, b.cols, b.elementBytes, false),
                                   t.buffer(b.space).align);
  for (const Plan::Buf &b : pl.vector)
    bytes[(int)b.space] += roundUp(tileBytes(b.layout, b.rows, b.cols, b.elementBytes, false),
                                   t.buffer(b.space).align);
  for (int s = 1; s < kNumSpaces; ++s) {
    int64_t cap = t.buffers[s].bytes - (s == (int)Space::UB ? t.ubReserveBytes : 0);
    if (bytes[s] > cap)
      return fail(stringifySpace(static_cast<Space>(s)) + " needs " + llvm::Twine(bytes[s]) +
                  " bytes of " + llvm::Twine(cap));
  }
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
  Type elem = p.dtype == DType::F32   ? f32
              : p.dtype == DType::F16 ? Type(b.getF16Type())
                                      : Type(b.getBF16Type());
  const int64_t M = p.rows(), bq = tl.bq, bk = tl.bk, r = bq / 2;
  const int64_t dk = roundUp(p.dk, 16), dv = roundUp(p.dv, 16);
  const int64_t qTiles = ceilDiv(M, bq), kTiles = ceilDiv(p.tk, bk);
  const int64_t qTasks = p.groups * qTiles, kTasks = p.groups * kTiles;
  const int64_t blockDim = blockDimOf(p, tl, t);
  const int64_t maskRows = p.window + 2 * bk - 1;

  SmallVector<NamedAttribute> tiling;
  auto field = [&](StringRef key, int64_t v) {
    tiling.push_back(b.getNamedAttr(key, b.getI64IntegerAttr(v)));
  };
  field("usedCoreNum", blockDim);
  field("qTile", bq);
  field("kvTile", bk);
  field("sparseMode", p.window ? 4 : 3); // as the forward (S29)
  field("preTokens", p.window ? p.window - 1 : p.tk);
  field("numSinks", p.sinks ? 1 : 0);

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
  Value V = entry->addArgument(gm({p.groups, p.tk, p.dv}, elem), loc);
  Value dO = entry->addArgument(gm({p.groups, M, p.dv}, elem), loc);
  Value O = entry->addArgument(gm({p.tq, p.heads() * p.dv}, f32), loc);
  Value lse = entry->addArgument(gm({p.groups, M, 1}, f32), loc);
  Value maskGm = entry->addArgument(gm({maskRows, bk}, f32), loc);
  Value sinkGm = p.sinks ? entry->addArgument(gm({p.groups, M, 1}, f32), loc) : Value();
  int64_t firstWs = entry->getNumArguments() - 2;
  Value wsS = entry->addArgument(gm({blockDim, bq, bk}, f32), loc);
  Value wsDP = entry->addArgument(gm({blockDim, bq, bk}, f32), loc);
  Value wsP = entry->addArgument(gm({blockDim, bq, bk}, elem), loc);
  Value wsDS = entry->addArgument(gm({blockDim, bq, bk}, elem), loc);
  Value wsD = entry->addArgument(gm({p.groups, M, 1}, f32), loc);
  kernel.setWorkspaceAttr(b.getDenseI64ArrayAttr(
      {firstWs, firstWs + 1, firstWs + 2, firstWs + 3, firstWs + 4}));
  Value dQ = entry->addArgument(gm({p.groups, M, p.dk}, f32), loc);
  Value dK = entry->addArgument(gm({p.groups, p.tk, p.dk}, f32), loc);
  Value dV = entry->addArgument(gm({p.groups, p.tk, p.dv}, f32), loc);
  Value dSink = p.sinks ? entry->addArgument(gm({p.groups, M, 1}, f32), loc) : Value();

  OpBuilder::InsertionGuard guard(builder);
  builder.setInsertionPointToEnd(entry);
  auto cst = [&](int64_t v) -> Value { return builder.create<arith::ConstantIndexOp>(loc, v); };
  auto add = [&](Value x, Value y) -> Value { return builder.create<arith::AddIOp>(loc, x, y); };
  auto sub = [&](Value x, Value y) -> Value { return builder.create<arith::SubIOp>(loc, x, y); };
  auto mul = [&](Value x, int64_t y) -> Value { return builder.create<arith::MulIOp>(loc, x, cst(y)); };
  auto div = [&](Value x, int64_t y) -> Value { return builder.create<arith::DivUIOp>(loc, x, cst(y)); };
  auto rem = [&](Value x, int64_t y) -> Value { return builder.create<arith::RemUIOp>(loc, x, cst(y)); };
  using P = arith::CmpIPredicate;
  auto cmp = [&](P pred, Value x, Value y) -> Value {
    return builder.create<arith::CmpIOp>(loc, pred, x, y);
  };
  auto andI = [&](Value x, Value y) -> Value { return builder.create<arith::AndIOp>(loc, x, y); };
  auto select = [&](Value c, Value x, Value y) -> Value {
    return builder.create<arith::SelectOp>(loc, c, x, y);
  };
  auto smax = [&](Value x, Value y) -> Value { return builder.create<arith::MaxSIOp>(loc, x, y); };
  auto smin = [&](Value x, Value y) -> Value { return builder.create<arith::MinSIOp>(loc, x, y); };
  auto flag = [&](bool isSet, Pipe s, Pipe d, int64_t ev) {
    if (isSet)
      builder.create<SetFlagOp>(loc, s, d, cst(ev));
    else
      builder.create<WaitFlagOp>(loc, s, d, cst(ev));
  };
  // A buffer is free for its producer after acquire, ready for its consumer
  // after publish, free again after release (set by the consumer).
  auto acquire = [&](Handoff h) { flag(false, h.consumer, h.producer, h.event); };
  auto publish = [&](Handoff h) {
    flag(true, h.producer, h.consumer, h.event);
    flag(false, h.producer, h.consumer, h.event);
  };
  auto release = [&](Handoff h) { flag(true, h.consumer, h.producer, h.event); };
  auto xset = [&](Pipe pipe, int64_t f) { builder.create<CrossSetOp>(loc, pipe, cst(f)); };
  auto xwait = [&](int64_t f) { builder.create<CrossWaitOp>(loc, cst(f)); };
  auto copy = [&](Pipe pipe, Value src, ValueRange so, Value dst, ValueRange dof, int64_t rows,
                  int64_t cols, bool transpose = false) {
    builder.create<CopyOp>(loc, pipe, src, so, dst, dof, ArrayRef<int64_t>{rows, cols}, transpose);
  };
  std::array<int64_t, kNumSpaces> offset{};
  auto alloc = [&](Space space, Layout layout, int64_t rows, int64_t cols, Type e) -> Value {
    auto type = BufType::get(ctx, space, {rows, cols}, e, layout);
    Value v = builder.create<AllocOp>(loc, type, offset[(int)space], 1);
    offset[(int)space] += roundUp(type.getBytes(), t.buffer(space).align);
    return v;
  };
  auto when = [&](Value cond, llvm::function_ref<void()> then) {
    auto op = builder.create<scf::IfOp>(loc, cond, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard g(builder);
    builder.setInsertionPointToStart(&op.getThenRegion().front());
    then();
  };
  auto loop = [&](Value lo, Value hi, llvm::function_ref<void(Value)> body, int64_t step = 1) {
    auto op = builder.create<scf::ForOp>(loc, lo, hi, cst(step));
    OpBuilder::InsertionGuard g(builder);
    builder.setInsertionPointToStart(op.getBody());
    body(op.getInductionVar());
  };
  auto mmad = [&](Value a, Value bb, Value c, Value init) {
    builder.create<MmadOp>(loc, a, bb, c, init);
    builder.create<BarrierOp>(loc, Pipe::M); // S55: the next mmad may accumulate into c
  };
  auto constTrue = [&]() -> Value { return builder.create<arith::ConstantIntOp>(loc, 1, 1); };

  Value c0 = cst(0);
  /// The positions query tile i's rows hold (rows wrap over a group's heads
  /// every tq rows) and the KV tiles they see, as the forward's tasks.
  struct Rows {
    Value row0, pMin, pMax, jLo, jHi;
  };
  auto rowsOf = [&](Value i) {
    Rows k;
    k.row0 = mul(i, bq);
    Value last = sub(smin(add(k.row0, cst(bq)), cst(M)), cst(1));
    Value same = cmp(P::eq, div(k.row0, p.tq), div(last, p.tq));
    k.pMin = add(select(same, rem(k.row0, p.tq), c0), cst(p.tk - p.tq));
    k.pMax = add(select(same, rem(last, p.tq), cst(p.tq - 1)), cst(p.tk - p.tq));
    Value lo = p.window ? smax(c0, sub(k.pMin, cst(p.window - 1))) : c0;
    k.jLo = div(lo, bk);
    k.jHi = div(k.pMax, bk);
    return k;
  };
  // The KV pass visits query tiles from the one holding head 0's query at
  // position j·bk (tq == tk: the first that sees key tile j; earlier tiles
  // hold only earlier positions of head 0), skipping those that see none.
  auto firstTile = [&](Value j) { return div(mul(j, bk), bq); };
  auto sees = [&](const Rows &k, Value j) {
    return andI(cmp(P::sle, k.jLo, j), cmp(P::sle, j, k.jHi));
  };

  Value isCube = cmp(P::eq, coreIdx, c0);
  Value isVector = cmp(P::ne, coreIdx, c0);

  //===------------------------------------------------------------------===//
  // The cube core.
  //===------------------------------------------------------------------===//
  Value qL1, doL1, kL1, vL1, pL1, dsL1, aQ, aDO, aDS, aPT, aDST, bKT, bVT, bK, bDO, bQ, sC, dpC,
      dqC, dvC, dkC;
  // L1 fills (MTE2 -> MTE1), L0 operand pairs (MTE1 -> M), L0C (M -> FIX).
  const Handoff hQ{Pipe::MTE2, Pipe::MTE1, 0}, hDO{Pipe::MTE2, Pipe::MTE1, 1},
      hK{Pipe::MTE2, Pipe::MTE1, 2}, hV{Pipe::MTE2, Pipe::MTE1, 3}, hP{Pipe::MTE2, Pipe::MTE1, 4},
      hDS{Pipe::MTE2, Pipe::MTE1, 5};
  const Handoff mS{Pipe::MTE1, Pipe::M, 0}, mDP{Pipe::MTE1, Pipe::M, 1},
      mDQ{Pipe::MTE1, Pipe::M, 2}, mDV{Pipe::MTE1, Pipe::M, 3}, mDK{Pipe::MTE1, Pipe::M, 4};
  const Handoff cS{Pipe::M, Pipe::FIX, 0}, cDP{Pipe::M, Pipe::FIX, 1}, cDQ{Pipe::M, Pipe::FIX, 2},
      cDV{Pipe::M, Pipe::FIX, 3}, cDK{Pipe::M, Pipe::FIX, 4};
  auto cubeFlags = [&](bool isSet, llvm::ArrayRef<Handoff> hs) {
    for (Handoff h : hs)
      flag(isSet, h.consumer, h.producer, h.event);
  };

  // S = Q·Kᵀ and dP = dO·Vᵀ of the tiles in L1, FixPipe'd into the ring.
  auto scores = [&] {
    Value slotIdx = blk;
    acquire(mS);
    copy(Pipe::MTE1, qL1, {c0, c0}, aQ, {c0, c0}, bq, dk);
    copy(Pipe::MTE1, kL1, {c0, c0}, bKT, {c0, c0}, dk, bk, /*transpose=*/true);
    publish(mS);
    acquire(cS);
    mmad(aQ, bKT, sC, constTrue());
    release(mS);
    publish(cS);
    copy(Pipe::FIX, sC, {c0, c0}, wsS, {slotIdx, c0, c0}, bq, bk);
    release(cS);
    acquire(mDP);
    copy(Pipe::MTE1, doL1, {c0, c0}, aDO, {c0, c0}, bq, dv);
    copy(Pipe::MTE1, vL1, {c0, c0}, bVT, {c0, c0}, dv, bk, /*transpose=*/true);
    publish(mDP);
    acquire(cDP);
    mmad(aDO, bVT, dpC, constTrue());
    release(mDP);
    publish(cDP);
    copy(Pipe::FIX, dpC, {c0, c0}, wsDP, {slotIdx, c0, c0}, bq, bk);
    release(cDP);
    xset(Pipe::FIX, kScores);
  };
  auto load = [&](Handoff h, Value src, ValueRange at, Value dst, int64_t rows, int64_t cols) {
    acquire(h);
    copy(Pipe::MTE2, src, at, dst, {c0, c0}, rows, cols);
    publish(h);
  };

  when(isCube, [&] {
    qL1 = alloc(Space::L1, Layout::NZ, bq, dk, elem);
    doL1 = alloc(Space::L1, Layout::NZ, bq, dv, elem);
    kL1 = alloc(Space::L1, Layout::NZ, bk, dk, elem);
    vL1 = alloc(Space::L1, Layout::NZ, bk, dv, elem);
    pL1 = alloc(Space::L1, Layout::NZ, bq, bk, elem);
    dsL1 = alloc(Space::L1, Layout::NZ, bq, bk, elem);
    aQ = alloc(Space::L0A, Layout::ZZ, bq, dk, elem);
    aDO = alloc(Space::L0A, Layout::ZZ, bq, dv, elem);
    aDS = alloc(Space::L0A, Layout::ZZ, bq, bk, elem);
    aPT = alloc(Space::L0A, Layout::ZZ, bk, bq, elem);
    aDST = alloc(Space::L0A, Layout::ZZ, bk, bq, elem);
    bKT = alloc(Space::L0B, Layout::ZN, dk, bk, elem);
    bVT = alloc(Space::L0B, Layout::ZN, dv, bk, elem);
    bK = alloc(Space::L0B, Layout::ZN, bk, dk, elem);
    bDO = alloc(Space::L0B, Layout::ZN, bq, dv, elem);
    bQ = alloc(Space::L0B, Layout::ZN, bq, dk, elem);
    sC = alloc(Space::L0C, Layout::NZ, bq, bk, f32);
    dpC = alloc(Space::L0C, Layout::NZ, bq, bk, f32);
    dqC = alloc(Space::L0C, Layout::NZ, bq, dk, f32);
    dvC = alloc(Space::L0C, Layout::NZ, bk, dv, f32);
    dkC = alloc(Space::L0C, Layout::NZ, bk, dk, f32);

    // Query pass: task (group, query tile i), KV tiles jLo..jHi.
    const SmallVector<Handoff> queryFlags{hQ, hDO, hK, hV, hDS, mS, mDP, mDQ, cS, cDP, cDQ};
    cubeFlags(true, queryFlags);
    loop(blk, cst(qTasks), [&](Value task) {
      Value g = div(task, qTiles);
      Rows k = rowsOf(rem(task, qTiles));
      load(hQ, Q, {g, k.row0, c0}, qL1, bq, dk);
      load(hDO, dO, {g, k.row0, c0}, doL1, bq, dv);
      acquire(cDQ);
      loop(k.jLo, add(k.jHi, cst(1)), [&](Value j) {
        Value j0 = mul(j, bk);
        load(hK, K, {g, j0, c0}, kL1, bk, dk);
        load(hV, V, {g, j0, c0}, vL1, bk, dv);
        scores();
        release(hV);
        xwait(kGrads);
        load(hDS, wsDS, {blk, c0, c0}, dsL1, bq, bk);
        acquire(mDQ);
        copy(Pipe::MTE1, dsL1, {c0, c0}, aDS, {c0, c0}, bq, bk);
        copy(Pipe::MTE1, kL1, {c0, c0}, bK, {c0, c0}, bk, dk);
        publish(mDQ);
        release(hDS);
        release(hK);
        mmad(aDS, bK, dqC, cmp(P::eq, j, k.jLo));
        release(mDQ);
      });
      release(hQ);
      release(hDO);
      publish(cDQ);
      copy(Pipe::FIX, dqC, {c0, c0}, dQ, {g, k.row0, c0}, bq, dk);
      release(cDQ);
    }, blockDim);
    cubeFlags(false, queryFlags);

    // Every row's D is in workspace once all cores meet.
    builder.create<SyncAllOp>(loc);

    // KV pass: task (group, KV tile j), the query tiles that see it.
    const SmallVector<Handoff> kvFlags{hQ, hDO, hK, hV, hP, hDS, mS, mDP, mDV, mDK, cS, cDP, cDV, cDK};
    cubeFlags(true, kvFlags);
    loop(blk, cst(kTasks), [&](Value task) {
      Value g = div(task, kTiles), j = rem(task, kTiles), j0 = mul(j, bk);
      Value iFirst = firstTile(j);
      load(hK, K, {g, j0, c0}, kL1, bk, dk);
      load(hV, V, {g, j0, c0}, vL1, bk, dv);
      acquire(cDV);
      acquire(cDK);
      loop(iFirst, cst(qTiles), [&](Value i) {
        Rows k = rowsOf(i);
        when(sees(k, j), [&] {
          Value first = cmp(P::eq, i, iFirst);
          load(hQ, Q, {g, k.row0, c0}, qL1, bq, dk);
          load(hDO, dO, {g, k.row0, c0}, doL1, bq, dv);
          scores();
          xwait(kGrads);
          load(hP, wsP, {blk, c0, c0}, pL1, bq, bk);
          load(hDS, wsDS, {blk, c0, c0}, dsL1, bq, bk);
          // dV += Pᵀ·dO
          acquire(mDV);
          copy(Pipe::MTE1, pL1, {c0, c0}, aPT, {c0, c0}, bk, bq, /*transpose=*/true);
          copy(Pipe::MTE1, doL1, {c0, c0}, bDO, {c0, c0}, bq, dv);
          publish(mDV);
          release(hP);
          release(hDO);
          mmad(aPT, bDO, dvC, first);
          release(mDV);
          // dK += dSᵀ·Q
          acquire(mDK);
          copy(Pipe::MTE1, dsL1, {c0, c0}, aDST, {c0, c0}, bk, bq, /*transpose=*/true);
          copy(Pipe::MTE1, qL1, {c0, c0}, bQ, {c0, c0}, bq, dk);
          publish(mDK);
          release(hDS);
          release(hQ);
          mmad(aDST, bQ, dkC, first);
          release(mDK);
        });
      });
      release(hK);
      release(hV);
      publish(cDV);
      copy(Pipe::FIX, dvC, {c0, c0}, dV, {g, j0, c0}, bk, dv);
      release(cDV);
      publish(cDK);
      copy(Pipe::FIX, dkC, {c0, c0}, dK, {g, j0, c0}, bk, dk);
      release(cDK);
    }, blockDim);
    cubeFlags(false, kvFlags);
  });

  //===------------------------------------------------------------------===//
  // The vector cores: AIV `sub` owns rows [sub·r, (sub + 1)·r) of a tile.
  //===------------------------------------------------------------------===//
  Value sUb, dpUb, mskUb, tmp, pOut, dsOut, doE, doF, oUb, lseUb, dOutUb, dInUb, sinkUb, eUb,
      rowOff;
  // S / dP / mask tiles and per-row inputs (MTE2 -> V); P / dS tiles and
  // per-row outputs (V -> MTE3).
  const Handoff vTiles{Pipe::MTE2, Pipe::V, 0}, vRows{Pipe::MTE2, Pipe::V, 1},
      vOut{Pipe::V, Pipe::MTE3, 0}, vRowsOut{Pipe::V, Pipe::MTE3, 1};
  auto vectorFlags = [&](bool isSet) {
    for (Handoff h : {vTiles, vRows, vOut, vRowsOut})
      flag(isSet, h.consumer, h.producer, h.event);
  };
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

  // One step's Vector work for query rows from row0 (this AIV's) against
  // KV tile j: P and dS from the ring's S and dP, dS (and P) back to it.
  auto gradients = [&](const Rows &k, Value row0, Value j, Value dRows, bool writeP) {
    Value j0 = mul(j, bk);
    xwait(kScores);
    acquire(vTiles);
    copy(Pipe::MTE2, wsS, {blk, rowOff, c0}, sUb, {c0, c0}, r, bk);
    copy(Pipe::MTE2, wsDP, {blk, rowOff, c0}, dpUb, {c0, c0}, r, bk);
    // The mask where the tile crosses the diagonal or the window's edge
    // (row a of the compressed mask: a = q - j0 + bk - 1, clamped).
    Value edge = cmp(P::sgt, add(j0, cst(bk - 1)), k.pMin);
    if (p.window)
      edge = builder.create<arith::OrIOp>(loc, edge,
                                          cmp(P::slt, j0, sub(k.pMax, cst(p.window - 1))));
    when(edge, [&] {
      for (int64_t row = 0; row < r; ++row) {
        Value pos = add(rem(add(row0, cst(row)), p.tq), cst(p.tk - p.tq));
        Value a = smin(smax(add(sub(pos, j0), cst(bk - 1)), c0), cst(maskRows - 1));
        copy(Pipe::MTE2, maskGm, {a, c0}, mskUb, {cst(row), c0}, 1, bk);
      }
    });
    publish(vTiles);
    scalar(VMulsOp(), sUb, p.scale, sUb);
    when(edge, [&] { v2(VAddOp(), sUb, mskUb, sUb); });
    v1(VBrcbOp(), lseUb, tmp);
    v2(VSubOp(), sUb, tmp, sUb);
    v1(VExpOp(), sUb, sUb); // P
    v1(VBrcbOp(), dRows, tmp);
    v2(VSubOp(), dpUb, tmp, dpUb);
    v2(VMulOp(), dpUb, sUb, dpUb);
    scalar(VMulsOp(), dpUb, p.scale, dpUb); // dS
    acquire(vOut);
    if (writeP)
      v1(VCastOp(), sUb, pOut);
    v1(VCastOp(), dpUb, dsOut);
    release(vTiles);
    publish(vOut);
    if (writeP)
      copy(Pipe::MTE3, pOut, {c0, c0}, wsP, {blk, rowOff, c0}, r, bk);
    copy(Pipe::MTE3, dsOut, {c0, c0}, wsDS, {blk, rowOff, c0}, r, bk);
    release(vOut);
    xset(Pipe::MTE3, kGrads);
  };

  when(isVector, [&] {
    rowOff = mul(sub(coreIdx, cst(1)), r);
    sUb = alloc(Space::UB, Layout::ND, r, bk, f32);
    dpUb = alloc(Space::UB, Layout::ND, r, bk, f32);
    mskUb = alloc(Space::UB, Layout::ND, r, bk, f32);
    tmp = alloc(Space::UB, Layout::ND, r, bk, f32);
    pOut = alloc(Space::UB, Layout::ND, r, bk, elem);
    dsOut = alloc(Space::UB, Layout::ND, r, bk, elem);
    doE = alloc(Space::UB, Layout::ND, r, dv, elem);
    doF = alloc(Space::UB, Layout::ND, r, dv, f32);
    oUb = alloc(Space::UB, Layout::ND, r, dv, f32);
    lseUb = alloc(Space::UB, Layout::ND, r, 1, f32);
    dOutUb = alloc(Space::UB, Layout::ND, r, 1, f32);
    dInUb = alloc(Space::UB, Layout::ND, r, 1, f32);
    sinkUb = alloc(Space::UB, Layout::ND, r, 1, f32);
    eUb = alloc(Space::UB, Layout::ND, r, 1, f32);

    vectorFlags(true);
    loop(blk, cst(qTasks), [&](Value task) {
      Value g = div(task, qTiles);
      Rows k = rowsOf(rem(task, qTiles));
      Value row0 = add(k.row0, rowOff);
      // D = rowsum(dO ∘ O) of this AIV's rows; O row ρ is head
      // g·headsPerGroup + ρ / tq at token ρ % tq.
      acquire(vRows);
      copy(Pipe::MTE2, lse, {g, row0, c0}, lseUb, {c0, c0}, r, 1);
      copy(Pipe::MTE2, dO, {g, row0, c0}, doE, {c0, c0}, r, dv);
      if (p.sinks)
        copy(Pipe::MTE2, sinkGm, {g, row0, c0}, sinkUb, {c0, c0}, r, 1);
      for (int64_t row = 0; row < r; ++row) {
        Value rho = add(row0, cst(row));
        when(cmp(P::ult, rho, cst(M)), [&] {
          Value head = add(mul(g, p.headsPerGroup), div(rho, p.tq));
          copy(Pipe::MTE2, O, {rem(rho, p.tq), mul(head, p.dv)}, oUb, {cst(row), c0}, 1, p.dv);
        });
      }
      publish(vRows);
      acquire(vRowsOut);
      v1(VCastOp(), doE, doF);
      v2(VMulOp(), doF, oUb, doF);
      builder.create<VReduceOp>(loc, ReduceKind::Sum, doF, dOutUb);
      barrier();
      if (p.sinks) {
        // d sink = -Σ_rows exp(sink - lse)·D: this AIV's rows of it.
        v2(VSubOp(), sinkUb, lseUb, eUb);
        v1(VExpOp(), eUb, eUb);
        v2(VMulOp(), eUb, dOutUb, eUb);
        scalar(VMulsOp(), eUb, -1.0, eUb);
      }
      publish(vRowsOut);
      copy(Pipe::MTE3, dOutUb, {c0, c0}, wsD, {g, row0, c0}, r, 1);
      if (p.sinks)
        copy(Pipe::MTE3, eUb, {c0, c0}, dSink, {g, row0, c0}, r, 1);
      loop(k.jLo, add(k.jHi, cst(1)),
           [&](Value j) { gradients(k, row0, j, dOutUb, /*writeP=*/false); });
      release(vRowsOut);
      release(vRows);
    }, blockDim);
    vectorFlags(false);

    // Every row's D is in workspace once all cores meet.
    builder.create<SyncAllOp>(loc);

    // KV pass: task (group, KV tile j), P and dS for the same pairs as the cube.
    vectorFlags(true);
    loop(blk, cst(kTasks), [&](Value task) {
      Value g = div(task, kTiles), j = rem(task, kTiles);
      loop(firstTile(j), cst(qTiles), [&](Value i) {
        Rows k = rowsOf(i);
        when(sees(k, j), [&] {
          Value row0 = add(k.row0, rowOff);
          acquire(vRows);
          copy(Pipe::MTE2, lse, {g, row0, c0}, lseUb, {c0, c0}, r, 1);
          copy(Pipe::MTE2, wsD, {g, row0, c0}, dInUb, {c0, c0}, r, 1);
          publish(vRows);
          gradients(k, row0, j, dInUb, /*writeP=*/true);
          release(vRows);
        });
      });
    }, blockDim);
    vectorFlags(false);
  });

  return kernel;
}

llvm::Expected<AttentionGradChoice>
mlir::attnedit::ascend::searchAttentionGradTiling(MLIRContext *context, const AttentionProblem &p,
                                                  const TargetDescription &t) {
  std::vector<AttentionGradTiling> candidates;
  int64_t rows = roundUp(p.rows(), 16), keys = roundUp(p.tk, 16);
  for (int64_t bq : {128, 64, 32, 16})
    for (int64_t bk : {128, 64, 32, 16}) {
      if ((bq > rows && bq > 16) || (bk > keys && bk > 16))
        continue;
      if (attentionGradFits(p, {bq, bk}, t))
        candidates.push_back({bq, bk});
    }
  if (candidates.size() > 6)
    candidates.resize(6);
  std::string why;
  if (candidates.empty()) {
    attentionGradFits(p, {16, 16}, t, &why);
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "no flash-attention backward tiling fits %s: %s",
                                   t.name.c_str(), why.c_str());
  }
  OpBuilder builder(context);
  Location loc = builder.getUnknownLoc();
  OwningOpRef<ModuleOp> scratch = ModuleOp::create(loc);
  std::optional<AttentionGradChoice> best;
  for (const AttentionGradTiling &tl : candidates) {
    llvm::Expected<KernelEstimate> e = estimateCandidate(
        builder, *scratch,
        [&](OpBuilder &b) { return buildAttentionGradKernel(b, loc, "candidate", p, tl, t); },
        sampleBlocks(blockDimOf(p, tl, t)));
    if (!e)
      return e.takeError();
    if (!best || e->seconds < best->estimate.seconds)
      best = AttentionGradChoice{tl, std::move(*e), 0};
  }
  best->candidates = candidates.size();
  return *best;
}
