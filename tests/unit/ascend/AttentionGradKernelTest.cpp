//===- AttentionGradKernelTest.cpp - the flash-attention backward kernel --===//
//
// The backward mix kernel in the functional simulator against a direct
// double-precision backward of softmax(scale·q·kᵀ + mask [, sinks])·v, for
// causal GQA (tails in rows and keys, several tilings, f32 and bf16 Cube
// operands) and GateSWA's window with sinks; the forward's saved
// log-sum-exp feeding it through OpSimulator; and planted bugs (a removed
// wait_flag, a removed cross_wait) the simulator must catch.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AttentionGradKernel.h"
#include "attnedit/Ascend/Numerics.h"
#include "attnedit/Ascend/OpSimulator.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/Simulator.h"
#include "AscendTestSupport.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;

namespace {

std::vector<float> random(int64_t n, std::mt19937 &rng, DType dtype) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float &x : v) {
    x = u(rng);
    x = dtype == DType::F32   ? x
        : dtype == DType::F16 ? halfToFloat(floatToHalf(x))
                              : bf16ToFloat(floatToBF16(x));
  }
  return v;
}

/// A problem's tensors and its forward and backward in double.
struct Case {
  AttentionProblem p;
  std::vector<float> q, k, v, sinks, dO; // q, dO [H, tq, d]; k, v [groups, tk, d]
  std::vector<float> o, lse;             // o [tq, H, dv]; lse [H·tq]
  std::vector<double> dq, dk, dv, dsinks;

  Case(const AttentionProblem &problem, unsigned seed) : p(problem) {
    std::mt19937 rng(seed);
    int64_t H = p.heads(), T = p.tq;
    q = random(H * T * p.dk, rng, p.dtype);
    k = random(p.groups * T * p.dk, rng, p.dtype);
    v = random(p.groups * T * p.dv, rng, p.dtype);
    sinks = random(H, rng, DType::F32);
    dO = random(H * T * p.dv, rng, p.dtype);
    o.assign(T * H * p.dv, 0);
    lse.assign(H * T, 0);
    dq.assign(q.size(), 0);
    dk.assign(k.size(), 0);
    dv.assign(v.size(), 0);
    dsinks.assign(H, 0);
    for (int64_t h = 0; h < H; ++h) {
      int64_t g = h / p.headsPerGroup;
      for (int64_t t = 0; t < T; ++t) {
        auto visible = [&](int64_t j) { return j <= t && (!p.window || t - j < p.window); };
        std::vector<double> s(T, 0), pr(T, 0), dp(T, 0);
        double m = p.sinks ? sinks[h] : -1e300;
        for (int64_t j = 0; j < T; ++j)
          if (visible(j)) {
            for (int64_t c = 0; c < p.dk; ++c)
              s[j] += double(q[(h * T + t) * p.dk + c]) * k[(g * T + j) * p.dk + c];
            s[j] *= p.scale;
            m = std::max(m, s[j]);
          }
        double z = p.sinks ? std::exp(sinks[h] - m) : 0;
        for (int64_t j = 0; j < T; ++j)
          if (visible(j))
            z += std::exp(s[j] - m);
        lse[h * T + t] = static_cast<float>(m + std::log(z));
        double d = 0;
        for (int64_t j = 0; j < T; ++j)
          if (visible(j)) {
            pr[j] = std::exp(s[j] - m) / z;
            for (int64_t c = 0; c < p.dv; ++c) {
              o[(t * H + h) * p.dv + c] += pr[j] * v[(g * T + j) * p.dv + c];
              dp[j] += double(dO[(h * T + t) * p.dv + c]) * v[(g * T + j) * p.dv + c];
            }
            d += pr[j] * dp[j];
          }
        if (p.sinks)
          dsinks[h] -= std::exp(sinks[h] - m) / z * d;
        for (int64_t j = 0; j < T; ++j)
          if (visible(j)) {
            double ds = p.scale * pr[j] * (dp[j] - d);
            for (int64_t c = 0; c < p.dk; ++c) {
              dq[(h * T + t) * p.dk + c] += ds * k[(g * T + j) * p.dk + c];
              dk[(g * T + j) * p.dk + c] += ds * q[(h * T + t) * p.dk + c];
            }
            for (int64_t c = 0; c < p.dv; ++c)
              dv[(g * T + j) * p.dv + c] += pr[j] * dO[(h * T + t) * p.dv + c];
          }
      }
    }
  }

  std::vector<std::vector<float>> inputs(int64_t bk) const {
    AttentionTiling tl;
    tl.bk = bk;
    std::vector<std::vector<float>> in{q, k, v, dO, o, lse, attentionMaskRows(p, tl)};
    if (p.sinks)
      in.push_back(attentionSinkRows(p, sinks));
    return in;
  }
};

/// max |got - want| / max(max |want|, 1e-3).
double relError(const std::vector<float> &got, const std::vector<double> &want) {
  EXPECT_EQ(got.size(), want.size());
  double worst = 0, scale = 1e-3;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return worst / scale;
}

std::unique_ptr<test::BuiltKernel> build(const AttentionProblem &p,
                                         const AttentionGradTiling &tl) {
  return test::buildKernel("910b", [&](OpBuilder &b, const TargetDescription &t) {
    std::string why;
    EXPECT_TRUE(attentionGradFits(p, tl, t, &why)) << why;
    return buildAttentionGradKernel(b, b.getUnknownLoc(), "fa_grad", p, tl, t);
  });
}

/// The kernel's outputs (dq, dk, dv[, sink rows]) or the simulator's error.
llvm::Expected<std::vector<std::vector<float>>> run(const Schedule &s, const Case &c,
                                                    int64_t bk) {
  std::vector<std::vector<float>> in = c.inputs(bk);
  std::vector<llvm::ArrayRef<float>> refs(in.begin(), in.end());
  return OpSimulator::simulate(s, refs, c.p.sinks ? 4 : 3);
}

void check(const AttentionProblem &p, std::vector<AttentionGradTiling> tilings, double tol,
           unsigned seed) {
  Case c(p, seed);
  for (const AttentionGradTiling &tl : tilings) {
    SCOPED_TRACE(testing::Message() << "bq " << tl.bq << " bk " << tl.bk);
    auto built = build(p, tl);
    auto got = run(*built->schedule, c, tl.bk);
    ASSERT_TRUE(static_cast<bool>(got)) << llvm::toString(got.takeError());
    EXPECT_LT(relError((*got)[0], c.dq), tol) << "dq";
    EXPECT_LT(relError((*got)[1], c.dk), tol) << "dk";
    EXPECT_LT(relError((*got)[2], c.dv), tol) << "dv";
    if (p.sinks) {
      // The per-row terms, summed per head here (OpSimulator runs a row sum).
      std::vector<float> sums(p.heads(), 0);
      for (int64_t h = 0; h < p.heads(); ++h)
        for (int64_t t = 0; t < p.tq; ++t)
          sums[h] += (*got)[3][h * p.tq + t];
      EXPECT_LT(relError(sums, c.dsinks), tol) << "dsinks";
    }
  }
}

AttentionProblem problem(int64_t groups, int64_t hpg, int64_t t, int64_t dk, int64_t dv,
                         double scale, DType dtype) {
  AttentionProblem p;
  p.groups = groups;
  p.headsPerGroup = hpg;
  p.tq = p.tk = t;
  p.dk = dk;
  p.dv = dv;
  p.scale = scale;
  p.dtype = dtype;
  return p;
}

} // namespace

// Causal GQA, 2 query heads per KV head, 40 tokens (tails in rows and
// keys), head dims 24 and 16: several KV tiles per query tile and query
// tiles per KV tile, tiles spanning two heads' rows.
TEST(AttentionGradKernel, CausalGqaMatchesReference) {
  AttentionProblem p = problem(2, 2, 40, 24, 16, 0.2, DType::F32);
  check(p, {{16, 16}, {32, 16}, {16, 32}, {64, 48}, {32, 16, 3}, {64, 48, 3}}, 1e-5, 1);
  // bf16 Cube operands: P and dS are rounded to bf16 before the Cube.
  p.dtype = DType::BF16;
  check(p, {{32, 16}}, 2e-2, 2);
}

// The pipelined cube core: ring 2, 3 and 4 (scores one to three pairs
// ahead of the products), several Cube chunks per product (head dims 64, bq 64: S,
// dP, dV and dK contract over 2 to 4 chunks of 32 or 16 through the shared
// L0A / L0B double buffers), query tiles spanning two heads.
TEST(AttentionGradKernel, PipelinedChunksMatchReference) {
  AttentionProblem p = problem(1, 2, 70, 64, 64, 0.125, DType::F32);
  check(p, {{64, 32, 2}, {64, 32, 3}, {64, 64, 3, 16}, {32, 64, 3, 32}, {32, 32, 4}}, 1e-5, 6);
}

// GateSWA: window 6 with sinks, 2 heads per KV head, 37 tokens.
TEST(AttentionGradKernel, SlidingWindowWithSinksMatchesReference) {
  AttentionProblem p = problem(1, 2, 37, 16, 16, 0.3, DType::F32);
  p.window = 6;
  p.sinks = true;
  check(p, {{16, 16}, {32, 16}, {32, 16, 3}}, 1e-5, 3);
}

// Query tiles holding one head's rows each (tq a multiple of bq): the KV
// pass walks only the query tiles that see its keys, as one dense run of
// pairs across the group's heads (pair n is head n / per's n % per-th),
// with and without a window, 4 query heads per KV head, ring 2 and 3; the
// vector cores' pair tiles alternate their two UB slots across head
// boundaries.
TEST(AttentionGradKernel, DensePairsAcrossHeadsMatchReference) {
  AttentionProblem p = problem(2, 4, 64, 16, 32, 0.3, DType::F32);
  check(p, {{16, 16}, {32, 16, 3}, {16, 32}, {64, 16, 3}, {16, 16, 4}}, 1e-5, 7);
  p.window = 20;
  p.sinks = true;
  check(p, {{16, 16}, {32, 16, 3}, {16, 32, 2}, {32, 32, 3}, {32, 16, 4}}, 1e-5, 8);
  p.window = 3;
  check(p, {{16, 16, 3}, {32, 16}}, 1e-5, 9);
}

// The edge tiles' mask rows as one window of the padded table per vector
// core, and row by row where bq 128 over bk 16 leaves the table's pads.
TEST(AttentionGradKernel, MaskWindowsMatchReference) {
  AttentionProblem p = problem(1, 2, 128, 16, 16, 0.3, DType::F32);
  check(p, {{128, 16, 3}, {64, 32}}, 1e-5, 11);
  p.window = 40;
  p.sinks = true;
  check(p, {{128, 16, 3}, {32, 16}}, 1e-5, 12);
}

// D = rowsum(dO ∘ O) over dv in column chunks (what lets the pair slots
// fit UB at bq 128 with dv 128): 16 and 32 of dv 64, with sinks.
TEST(AttentionGradKernel, DInColumnChunksMatchesReference) {
  AttentionProblem p = problem(1, 2, 32, 32, 64, 0.2, DType::F32);
  p.window = 9;
  p.sinks = true;
  check(p, {{16, 16, 2, 0, 16}, {32, 16, 3, 0, 32}}, 1e-5, 10);
  std::string why;
  EXPECT_FALSE(attentionGradFits(p, {16, 16, 2, 0, 24}, *TargetDescription::load("910b").get(), &why));
  EXPECT_NE(why.find("the D chunk must be a multiple of 16 dividing the padded dv"), std::string::npos)
      << why;
}

// OpSimulator: the forward saves the log-sum-exp, the backward uses it with
// the forward's own output; the sink gradient is summed per head.
TEST(AttentionGradKernel, ForwardLseFeedsBackward) {
  AttentionProblem p = problem(2, 2, 24, 16, 16, 0.25, DType::F32);
  p.window = 5;
  p.sinks = true;
  p.saveLse = true;
  Case c(p, 4);
  OpSimulatorOptions options;
  options.dtype = DType::F32;
  auto sim = OpSimulator::create(options);
  ASSERT_TRUE(static_cast<bool>(sim));
  std::vector<float> lse;
  auto fwd = (*sim)->runAttention(p, c.q, c.k, c.v, c.sinks, &lse);
  ASSERT_TRUE(static_cast<bool>(fwd)) << llvm::toString(fwd.takeError());
  ASSERT_EQ(lse.size(), c.lse.size());
  for (size_t i = 0; i < lse.size(); ++i)
    EXPECT_NEAR(lse[i], c.lse[i], 1e-5);
  auto g = (*sim)->runAttentionGrad(p, c.q, c.k, c.v, c.sinks, fwd->values, lse, c.dO);
  ASSERT_TRUE(static_cast<bool>(g)) << llvm::toString(g.takeError());
  EXPECT_LT(relError(g->dq, c.dq), 1e-5);
  EXPECT_LT(relError(g->dk, c.dk), 1e-5);
  EXPECT_LT(relError(g->dv, c.dv), 1e-5);
  EXPECT_LT(relError(g->dsinks, c.dsinks), 1e-5);
  EXPECT_EQ(g->kernels.size(), 2u); // the mix kernel and the row sum
  EXPECT_GT(g->modelledSeconds, 0);
}

// Planted bugs: one wait removed from a correct kernel.
TEST(AttentionGradKernel, SimulatorCatchesMissingWaits) {
  AttentionProblem p = problem(1, 2, 32, 16, 16, 0.5, DType::F32);
  AttentionGradTiling tl{16, 16};
  Case c(p, 5);
  auto errorWithout = [&](CoreKind kind, llvm::function_ref<bool(const Instr &)> which) {
    auto built = build(p, tl);
    for (CoreProgram &program : built->schedule->cores) {
      if (program.kind != kind)
        continue;
      auto it = std::find_if(program.instrs.begin(), program.instrs.end(), which);
      EXPECT_NE(it, program.instrs.end());
      program.instrs.erase(it);
      break;
    }
    auto got = run(*built->schedule, c, tl.bk);
    EXPECT_FALSE(static_cast<bool>(got));
    return got ? std::string() : llvm::toString(got.takeError());
  };
  // The vector core computes P before MTE2 has brought S into UB: the first
  // wait_flag(MTE2 -> V, 0) of the first AIV is gone.
  std::string msg = errorWithout(CoreKind::AIV, [](const Instr &i) {
    return i.kind == InstrKind::WaitFlag && i.flagSrc == Pipe::MTE2 && i.flagDst == Pipe::V &&
           i.event == 0;
  });
  EXPECT_NE(msg.find("fa_grad: block 0 AIV 0"), std::string::npos) << msg;
  // The V pipe, no longer held, runs into the next fill of its tiles.
  EXPECT_NE(msg.find("missing set_flag/wait_flag"), std::string::npos) << msg;
  // The cube core loads dS from the ring before both vector cores flagged it.
  msg = errorWithout(CoreKind::AIC, [](const Instr &i) {
    return i.kind == InstrKind::CrossWait && i.event == 4;
  });
  EXPECT_NE(msg.find("cross_wait"), std::string::npos) << msg;
  // The L0A / L0B chunk slots every product shares are refilled without
  // the Cube's release: all set_flag / wait_flag m -> mte1 gone, MTE1
  // overwrites a slot an earlier mmad still reads.
  auto built = build(p, tl);
  for (CoreProgram &program : built->schedule->cores)
    if (program.kind == CoreKind::AIC)
      llvm::erase_if(program.instrs, [](const Instr &i) {
        return (i.kind == InstrKind::WaitFlag || i.kind == InstrKind::SetFlag) &&
               i.flagSrc == Pipe::M && i.flagDst == Pipe::MTE1;
      });
  auto got = run(*built->schedule, c, tl.bk);
  ASSERT_FALSE(static_cast<bool>(got));
  msg = llvm::toString(got.takeError());
  EXPECT_NE(msg.find("write over a buffer still in use: L0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing set_flag/wait_flag m -> mte1"), std::string::npos) << msg;
}
