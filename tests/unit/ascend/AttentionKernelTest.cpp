//===- AttentionKernelTest.cpp - the mix flash-attention kernel ------------===//
//
// The fused kernel in the functional simulator against the reference
// evaluator's attention (kernels::attend), for causal GQA prefill, decode,
// sliding window with sinks, and MLA's absorbed decode (V read from the
// latent K tile); the planted cross-core bugs the simulator must catch; and
// the cost model replaying the cross-core dependencies.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AttentionKernel.h"
#include "attnedit/Ascend/CostModel.h"
#include "attnedit/Ascend/Numerics.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/Simulator.h"
#include "attnedit/Runtime/Execution/Kernels.h"
#include "AscendTestSupport.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <random>

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;
using mlir::attnedit::ascend::test::randomTensor;
using mlir::attnedit::ascend::test::runSchedule;

namespace {

/// `t` as the Cube reads it: rounded to `dtype` (the reference then sees
/// the same operands and only the kernel's own roundings differ).
Tensor rounded(const Tensor &t, DType dtype) {
  Tensor out = t;
  for (int64_t k = 0; k < t.numel(); ++k) {
    float x = t.data()[k];
    out.mutableData()[k] = dtype == DType::F32   ? x
                           : dtype == DType::F16 ? halfToFloat(floatToHalf(x))
                                                 : bf16ToFloat(floatToBF16(x));
  }
  return out;
}

AttentionProblem problem(int64_t groups, int64_t headsPerGroup, int64_t tq, int64_t tk, int64_t dk,
                         int64_t dv, double scale, DType dtype = DType::BF16) {
  AttentionProblem p;
  p.groups = groups;
  p.headsPerGroup = headsPerGroup;
  p.tq = tq;
  p.tk = tk;
  p.dk = dk;
  p.dv = dv;
  p.scale = scale;
  p.dtype = dtype;
  return p;
}

std::unique_ptr<test::BuiltKernel> build(const AttentionProblem &p, const AttentionTiling &tl,
                                         llvm::StringRef target = "910b") {
  return test::buildKernel(target, [&](OpBuilder &b, const TargetDescription &t) {
    std::string why;
    EXPECT_TRUE(attentionFits(p, tl, t, &why)) << why;
    return buildAttentionKernel(b, b.getUnknownLoc(), "fa", p, tl, t);
  });
}

/// q [H, tq, dk], k [Hkv, tk, dk], v [Hkv, tk, dv] (null with valueFromKey).
std::vector<std::vector<float>> inputs(const AttentionProblem &p, const AttentionTiling &tl,
                                       const Tensor &q, const Tensor &k, const Tensor *v,
                                       const Tensor *sinks) {
  std::vector<std::vector<float>> in;
  in.emplace_back(q.data(), q.data() + q.numel());
  in.emplace_back(k.data(), k.data() + k.numel());
  if (v)
    in.emplace_back(v->data(), v->data() + v->numel());
  in.push_back(attentionMaskRows(p, tl));
  if (sinks)
    in.push_back(attentionSinkRows(p, {sinks->data(), (size_t)sinks->numel()}));
  return in;
}


/// The reference: kernels::attend takes [T, H, D] operands.
Tensor reference(const AttentionProblem &p, const Tensor &q, const Tensor &k, const Tensor &v,
                 const Tensor *sinks) {
  return kernels::attend(kernels::transpose(q, {1, 0, 2}), kernels::transpose(k, {1, 0, 2}),
                         kernels::transpose(v, {1, 0, 2}), p.scale, p.window, sinks);
}

void expectNear(const std::vector<float> &got, const Tensor &want, double tol) {
  ASSERT_EQ((int64_t)got.size(), want.numel());
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, std::abs(double(got[i]) - want.data()[i]) / (1 + std::abs(want.data()[i])));
  EXPECT_LT(worst, tol);
}

/// Runs `p` with each tiling in `tilings` and compares with the reference.
void check(const AttentionProblem &p, std::vector<AttentionTiling> tilings, double tol,
           unsigned seed) {
  std::mt19937 rng(seed);
  int64_t hkv = p.groups;
  Tensor q = rounded(randomTensor({p.heads(), p.tq, p.dk}, rng), p.dtype);
  Tensor k = rounded(randomTensor({hkv, p.tk, p.dk}, rng), p.dtype);
  Tensor v = p.valueFromKey ? kernels::slice(k, 2, 0, p.dv)
                            : rounded(randomTensor({hkv, p.tk, p.dv}, rng), p.dtype);
  Tensor sinks = randomTensor({p.heads()}, rng);
  Tensor want = reference(p, q, k, v, p.sinks ? &sinks : nullptr);
  for (const AttentionTiling &tl : tilings) {
    SCOPED_TRACE(testing::Message() << "bq " << tl.bq << " bk " << tl.bk << " ring " << tl.ring
                                    << " kChunk " << tl.kChunk << " nChunk " << tl.nChunk
                                    << " splits " << tl.splits);
    auto built = build(p, tl);
    auto got = runSchedule(*built->schedule, inputs(p, tl, q, k, p.valueFromKey ? nullptr : &v,
                                                    p.sinks ? &sinks : nullptr));
    ASSERT_TRUE(static_cast<bool>(got)) << llvm::toString(got.takeError());
    expectNear(*got, want, tol);
  }
}

// Causal GQA prefill, 4 query heads over 2 KV heads, 40 tokens (a tail
// tile), head dim 24 (padded to 32): several KV tiles per task, the mask
// on the diagonal tiles, both ring depths, K and N split into chunks.
TEST(AttentionKernel, CausalGqaPrefillMatchesReference) {
  AttentionProblem p = problem(2, 2, 40, 40, 24, 24, 0.2);
  for (DType dtype : {DType::F32, DType::BF16}) {
    p.dtype = dtype;
    // f32 operands: only summation order differs. bf16: P is rounded to
    // bf16 before PV (u = 2^-8) on top of the rounded operands.
    check(p, {{16, 16, 2, 16, 16}, {32, 16, 3, 32, 16}, {16, 32, 2, 32, 32}},
          dtype == DType::F32 ? 1e-5 : 2e-2, 1);
  }
}

// Query rows that are consecutive positions of one head (r = bq / 2
// divides tq): each vector core reads its edge tiles' mask rows as one
// window of the padded mask table; bq 128 over bk 16 puts some of those
// windows past the table's pads (rows a vector core's keys do not reach),
// which are read row by row. Causal and a window of 40 with sinks; ring 4
// (QK three tiles ahead of PV).
TEST(AttentionKernel, MaskWindowsMatchReference) {
  AttentionProblem p = problem(1, 2, 128, 128, 16, 16, 0.3, DType::F32);
  check(p, {{32, 16, 2, 16, 16}, {128, 16, 3, 16, 16}, {64, 32, 2, 16, 16}, {32, 16, 4, 16, 16}}, 1e-5, 11);
  p.window = 40;
  p.sinks = true;
  check(p, {{32, 16, 2, 16, 16}, {128, 16, 3, 16, 16}}, 1e-5, 12);
}

// Decode: one query per head at the last of 37 positions, 4 heads per KV
// head in one task (GQA shares the K/V tiles, S27).
TEST(AttentionKernel, GqaDecodeMatchesReference) {
  AttentionProblem p = problem(2, 4, 1, 37, 16, 16, 0.25, DType::F32);
  check(p, {{16, 16, 2, 16, 16}}, 1e-5, 2);
}

// GateSWA: window 10 with sinks, 50 tokens: only the window's KV tiles are
// loaded (counted from the schedule), and the numerics match.
TEST(AttentionKernel, SlidingWindowWithSinksMatchesReferenceAndSkipsTiles) {
  AttentionProblem p = problem(1, 2, 50, 50, 16, 16, 0.3, DType::F32);
  p.window = 10;
  p.sinks = true;
  AttentionTiling tl{16, 16, 2, 16, 16};
  check(p, {tl}, 1e-5, 3);

  auto kLoads = [&](const AttentionProblem &problem) {
    auto built = build(problem, tl);
    int64_t n = 0;
    for (const CoreProgram &c : built->schedule->cores)
      for (const Instr &i : c.instrs)
        n += i.kind == InstrKind::Copy && i.src0.tile.gmArg == 1;
    return n;
  };
  AttentionProblem causal = p;
  causal.window = 0;
  // 7 query tiles of 16 rows (2 heads x 50 tokens); the window touches at
  // most ⌈(W + bq - 1) / bk⌉ + 1 = 3 KV tiles per query tile.
  EXPECT_LT(kLoads(p), kLoads(causal));
  EXPECT_LE(kLoads(p), 7 * 3);
}

// MLA absorbed decode: 8 heads share one latent cache per sequence (two
// sequences), K = [c_kv (32); k_pe (4)], V = the first 32 columns of the
// same tile in L1 (no V load, S31).
TEST(AttentionKernel, MlaAbsorbedDecodeReadsValueFromKey) {
  AttentionProblem p = problem(2, 8, 1, 40, 36, 32, 0.15);
  p.valueFromKey = true;
  for (DType dtype : {DType::F32, DType::BF16}) {
    p.dtype = dtype;
    check(p, {{16, 16, 2, 16, 16}, {16, 32, 3, 16, 32}}, dtype == DType::F32 ? 1e-5 : 2e-2, 4);
  }
}

// SplitKV (flash decoding): each task's KV tiles in 2, 3 or 4 parts (the
// last shorter: 37 keys are 3 tiles of 16), every part a task of its own,
// combined after sync_all; GQA decode, a window with sinks (the sink in
// one part only), and MLA's value-from-key form. The combine's rows tail
// (8 heads x 2 groups = 16 rows over tiles of 8) is covered too.
TEST(AttentionKernel, SplitKvDecodeMatchesReference) {
  AttentionProblem gqa = problem(2, 4, 1, 37, 16, 16, 0.25, DType::F32);
  check(gqa, {{16, 16, 2, 16, 16, 2}, {16, 16, 3, 16, 16, 3}, {16, 16, 2, 16, 16, 4}}, 1e-5, 5);
  AttentionProblem swa = problem(3, 2, 1, 60, 16, 16, 0.3, DType::F32);
  swa.window = 40;
  swa.sinks = true;
  check(swa, {{16, 16, 2, 16, 16, 3}}, 1e-5, 6);
  AttentionProblem mla = problem(2, 8, 1, 70, 36, 32, 0.15);
  mla.valueFromKey = true;
  check(mla, {{16, 16, 2, 16, 16, 4}}, 2e-2, 7);
  // Planted: without the sync_all every program of every block meets at,
  // a vector core combines parts that other blocks have not written yet
  // ("reads workspace bytes that no core has written yet ... sync_all").
  {
    AttentionTiling tl{16, 16, 2, 16, 16, 2};
    std::mt19937 rng(8);
    Tensor q = randomTensor({8, 1, 16}, rng), k = randomTensor({2, 37, 16}, rng),
           v = randomTensor({2, 37, 16}, rng);
    auto built = build(gqa, tl);
    int64_t removed = 0;
    for (CoreProgram &c : built->schedule->cores) {
      auto sync = [](const Instr &i) { return i.kind == InstrKind::SyncAll; };
      auto end = std::remove_if(c.instrs.begin(), c.instrs.end(), sync);
      removed += c.instrs.end() - end;
      c.instrs.erase(end, c.instrs.end());
    }
    EXPECT_EQ(removed, (int64_t)built->schedule->cores.size());
    auto got = runSchedule(*built->schedule, inputs(gqa, tl, q, k, &v, nullptr));
    ASSERT_FALSE(static_cast<bool>(got));
    std::string msg = llvm::toString(got.takeError());
    EXPECT_NE(msg.find("sync_all"), std::string::npos) << msg;
  }
  // Decode with few tasks offers split tilings to the search.
  bool offered = false;
  for (const AttentionTiling &tl : attentionTilings(mla, *TargetDescription::load("910b").get()))
    offered |= tl.splits > 1;
  EXPECT_TRUE(offered);
}

// Planted bugs: each removes one cross-core wait of a correct kernel.
TEST(AttentionKernel, SimulatorCatchesMissingCrossCoreWaits) {
  AttentionProblem p = problem(1, 2, 48, 48, 16, 16, 1.0, DType::F32);
  AttentionTiling tl{16, 16, 2, 16, 16};
  std::mt19937 rng(5);
  Tensor q = randomTensor({2, 48, 16}, rng), k = randomTensor({1, 48, 16}, rng),
         v = randomTensor({1, 48, 16}, rng);
  auto in = inputs(p, tl, q, k, &v, nullptr);

  // The simulator's error once program `core`'s first wait for `flag` is gone.
  auto errorWithout = [&](size_t core, CoreKind kind, int64_t flag) -> std::string {
    auto built = build(p, tl);
    CoreProgram &program = built->schedule->cores[core];
    EXPECT_EQ(program.kind, kind);
    auto it = std::find_if(program.instrs.begin(), program.instrs.end(), [&](const Instr &i) {
      return i.kind == InstrKind::CrossWait && i.event == flag;
    });
    EXPECT_NE(it, program.instrs.end());
    program.instrs.erase(it);
    auto got = runSchedule(*built->schedule, in);
    EXPECT_FALSE(static_cast<bool>(got));
    return got ? "" : llvm::toString(got.takeError());
  };
  // The vector core reads a QKᵀ tile from the ring without waiting for the
  // cube core's FixPipe write to be flagged.
  std::string msg = errorWithout(1, CoreKind::AIV, 0);
  EXPECT_NE(msg.find("cross_wait"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fa: block 0 AIV 0"), std::string::npos) << msg;
  // The cube core reads P before both vector cores flagged it.
  msg = errorWithout(0, CoreKind::AIC, 1);
  EXPECT_NE(msg.find("cross_wait"), std::string::npos) << msg;
  EXPECT_NE(msg.find("fa: block 0 AIC"), std::string::npos) << msg;
  // A cross_set nobody waits for is reported at the end.
  {
    auto built = build(p, tl);
    CoreProgram &aic = built->schedule->cores[0];
    Instr extra;
    extra.kind = InstrKind::CrossSet;
    extra.pipe = Pipe::FIX;
    extra.event = 7;
    aic.instrs.push_back(extra);
    auto got = runSchedule(*built->schedule, in);
    ASSERT_FALSE(static_cast<bool>(got));
    EXPECT_NE(llvm::toString(got.takeError()).find("never waited"), std::string::npos);
  }
}

// The cost model replays the cross-core flags: a slower flag makes the
// kernel slower, and both core types' pipes are busy.
TEST(AttentionKernel, CostModelReplaysCrossCoreDependencies) {
  AttentionProblem p = problem(8, 4, 1, 2048, 128, 128, 0.088);
  auto tilings = attentionTilings(p, *TargetDescription::load("910b").get());
  ASSERT_FALSE(tilings.empty());
  auto built = build(p, tilings.front());
  auto base = estimate(*built->schedule);
  ASSERT_TRUE(static_cast<bool>(base)) << llvm::toString(base.takeError());
  EXPECT_GT(base->utilisation[(int)Pipe::M], 0);
  EXPECT_GT(base->utilisation[(int)Pipe::V], 0);
  EXPECT_GT(base->utilisation[(int)Pipe::MTE3], 0);
  TargetDescription slow = *built->target;
  slow.crossCoreLatency *= 10;
  EstimateOptions options;
  options.target = &slow;
  auto slower = estimate(*built->schedule, options);
  ASSERT_TRUE(static_cast<bool>(slower));
  EXPECT_GT(slower->seconds, base->seconds * 1.2);
  // K and V stream from HBM once per group; the ring stays in L2.
  double kv = 2.0 * p.groups * p.tk * p.dk * 2;
  EXPECT_GE(base->uniqueGmBytes, kv);
  EXPECT_LT(base->uniqueGmBytes, kv * 1.2);
}

} // namespace
