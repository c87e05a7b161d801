//===- SimulatorTest.cpp - functional simulator and planted bugs ----------===//
//
// Hand-built schedules (no MLIR) for the access checks, and the lowered
// matmul kernel against the reference evaluator's kernels (the oracle).
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/CostModel.h"
#include "attnedit/Ascend/MatmulKernel.h"
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

namespace {

std::shared_ptr<const TargetDescription> target910b() {
  auto t = TargetDescription::load("910b");
  EXPECT_TRUE(static_cast<bool>(t));
  return *t;
}

TileRef ub(int64_t offset, int64_t rows, int64_t cols, DType d = DType::F32) {
  TileRef t;
  t.space = Space::UB;
  t.offset = offset;
  t.shape = {rows, cols};
  t.dtype = d;
  return t;
}

TileRef gmArg(int64_t arg, int64_t rows, int64_t cols, DType d = DType::F32) {
  TileRef t;
  t.gmArg = arg;
  t.shape = {rows, cols};
  t.dtype = d;
  return t;
}

Window at(TileRef t, int64_t r = 0, int64_t c = 0) { return {std::move(t), {r, c}}; }

Instr copy(Pipe pipe, Window src, Window dst, int64_t rows, int64_t cols) {
  Instr i;
  i.kind = InstrKind::Copy;
  i.pipe = pipe;
  i.src0 = std::move(src);
  i.dst = std::move(dst);
  i.rows = rows;
  i.cols = cols;
  return i;
}

Instr flag(InstrKind kind, Pipe src, Pipe dst, int64_t event = 0) {
  Instr i;
  i.kind = kind;
  i.pipe = kind == InstrKind::SetFlag ? src : dst;
  i.flagSrc = src;
  i.flagDst = dst;
  i.event = event;
  return i;
}

Instr vadd(Window a, Window b, Window d) {
  Instr i;
  i.kind = InstrKind::Vector;
  i.pipe = Pipe::V;
  i.vop = VectorOp::Add;
  i.src0 = std::move(a);
  i.src1 = std::move(b);
  i.dst = std::move(d);
  return i;
}

/// y = x + x on one vector core: GM -> UB (MTE2), vadd (V), UB -> GM (MTE3).
Schedule doubler() {
  Schedule s;
  s.kernel = "doubler";
  s.core = CoreKind::AIV;
  s.target = target910b();
  s.gm = {{{8, 64}, DType::F32}, {{8, 64}, DType::F32}};
  CoreProgram p;
  p.instrs = {copy(Pipe::MTE2, at(gmArg(0, 8, 64)), at(ub(0, 8, 64)), 8, 64),
              flag(InstrKind::SetFlag, Pipe::MTE2, Pipe::V),
              flag(InstrKind::WaitFlag, Pipe::MTE2, Pipe::V),
              vadd(at(ub(0, 8, 64)), at(ub(0, 8, 64)), at(ub(2048, 8, 64))),
              flag(InstrKind::SetFlag, Pipe::V, Pipe::MTE3),
              flag(InstrKind::WaitFlag, Pipe::V, Pipe::MTE3),
              copy(Pipe::MTE3, at(ub(2048, 8, 64)), at(gmArg(1, 8, 64)), 8, 64)};
  for (size_t k = 0; k < p.instrs.size(); ++k)
    p.instrs[k].where = s.addLocation("instr " + std::to_string(k));
  s.cores.push_back(std::move(p));
  return s;
}

std::string runError(const Schedule &s) {
  Simulator sim(s);
  llvm::Error e = sim.run();
  return e ? llvm::toString(std::move(e)) : "";
}

TEST(Simulator, DoublerComputesAndIsHazardFree) {
  Schedule s = doubler();
  Simulator sim(s);
  std::vector<float> x(8 * 64);
  for (size_t k = 0; k < x.size(); ++k)
    x[k] = 0.25f * k;
  sim.setTensor(0, x);
  ASSERT_FALSE(static_cast<bool>(sim.run()));
  std::vector<float> y = sim.tensor(1);
  for (size_t k = 0; k < x.size(); ++k)
    EXPECT_EQ(y[k], 2 * x[k]);
  EXPECT_EQ(sim.executedInstructions(), 3);
  std::map<std::string, int64_t> moved = sim.bytesPerPath();
  EXPECT_EQ(moved["gm->ub"], 8 * 64 * 4);
  EXPECT_EQ(moved["ub->gm"], 8 * 64 * 4);
}

// Planted bug: the wait for MTE2's copy is removed.
TEST(Simulator, MissingWaitIsReadBeforeSignalledWrite) {
  Schedule s = doubler();
  s.cores[0].instrs.erase(s.cores[0].instrs.begin() + 2);
  std::string error = runError(s);
  EXPECT_NE(error.find("instr 3 (V): read before signalled write: UB bytes written by instr 0 "
                       "(MTE2) are not ordered before this read; missing set_flag/wait_flag "
                       "mte2 -> v"),
            std::string::npos)
      << error;
}

// Planted bug: a set without its wait, and a wait without its set.
TEST(Simulator, FlagProtocol) {
  Schedule unwaited = doubler();
  unwaited.cores[0].instrs.push_back(flag(InstrKind::SetFlag, Pipe::MTE3, Pipe::V, 3));
  EXPECT_NE(runError(unwaited).find("set_flag mte3 -> v event 3 is never waited"), std::string::npos);

  Schedule stuck = doubler();
  stuck.cores[0].instrs.erase(stuck.cores[0].instrs.begin() + 1);
  EXPECT_NE(runError(stuck).find("deadlock: wait_flag mte2 -> v event 0"), std::string::npos);

  // MTE2 sets event 1 twice; V can only wait for it after MTE3 has seen a
  // later MTE2 flag, so no wait can come between the two sets.
  Schedule twice = doubler();
  twice.cores[0].instrs = {flag(InstrKind::SetFlag, Pipe::MTE2, Pipe::V, 1),
                           flag(InstrKind::SetFlag, Pipe::MTE2, Pipe::V, 1),
                           flag(InstrKind::SetFlag, Pipe::MTE2, Pipe::MTE3, 0),
                           flag(InstrKind::WaitFlag, Pipe::MTE2, Pipe::MTE3, 0),
                           flag(InstrKind::SetFlag, Pipe::MTE3, Pipe::V, 0),
                           flag(InstrKind::WaitFlag, Pipe::MTE3, Pipe::V, 0),
                           flag(InstrKind::WaitFlag, Pipe::MTE2, Pipe::V, 1),
                           flag(InstrKind::WaitFlag, Pipe::MTE2, Pipe::V, 1)};
  EXPECT_NE(runError(twice).find("second set_flag mte2 -> v event 1 before the wait of the first"),
            std::string::npos);
}

// Planted bug: a UB tile past the 192 KB of the 910B.
TEST(Simulator, CapacityOverflow) {
  Schedule s = doubler();
  s.cores[0].instrs[3].dst.tile.offset = 196608 - 1024;
  std::string error = runError(s);
  EXPECT_NE(error.find("capacity overflow: vector operand UB tile needs bytes [195584, 197632) of "
                       "UB, which has 196608 on 910b"),
            std::string::npos)
      << error;
}

// Planted bug: a copy into UB 16 bytes off the 32-byte alignment (S3).
TEST(Simulator, MisalignedCopy) {
  Schedule s = doubler();
  s.cores[0].instrs[0].dst.tile.offset = 16;
  std::string error = runError(s);
  EXPECT_NE(error.find("misaligned destination UB tile at byte 16: UB needs 32-byte alignment"),
            std::string::npos)
      << error;
}

// Planted bug: a copy on a path the 910B does not have (L0C -> UB).
TEST(Simulator, IllegalPath) {
  Schedule s = doubler();
  s.cores[0].instrs[0].src0 = at(TileRef{Space::L0C, -1, 0, {8, 64}, DType::F32, Layout::NZ});
  s.cores[0].instrs[0].pipe = Pipe::V;
  EXPECT_NE(runError(s).find("no path L0C -> UB on 910b"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// The lowered matmul against the reference evaluator
//===----------------------------------------------------------------------===//

struct MatmulCase {
  MLIRContext context;
  OwningOpRef<ModuleOp> module;
  KernelOp kernel;
  Schedule schedule;

  MatmulCase(const MatmulProblem &p, const MatmulTiling &tiling, llvm::StringRef target = "910b") {
    context.loadDialect<AscendDialect>();
    OpBuilder b(&context);
    module = ModuleOp::create(b.getUnknownLoc());
    b.setInsertionPointToEnd(module->getBody());
    auto t = TargetDescription::load(target);
    EXPECT_TRUE(static_cast<bool>(t));
    kernel = buildMatmulKernel(b, b.getUnknownLoc(), "mm", p, tiling, **t);
    EXPECT_TRUE(succeeded(kernel.verify()));
    llvm::Expected<Schedule> s = buildSchedule(kernel);
    EXPECT_TRUE(static_cast<bool>(s));
    schedule = std::move(*s);
  }
};

/// |sim - ref| <= 2u·Σ|x||w| (inputs rounded to dtype) + u·|ref| (output
/// rounding) + accumulation slack, u the dtype's unit roundoff.
void expectClose(const std::vector<float> &sim, const Tensor &ref, const Tensor &mag, DType d) {
  double u = unitRoundoff(d);
  ASSERT_EQ((int64_t)sim.size(), ref.numel());
  double worst = 0;
  for (int64_t k = 0; k < ref.numel(); ++k) {
    double tol = 2 * u * mag.data()[k] + u * std::abs(ref.data()[k]) + 1e-6;
    worst = std::max(worst, std::abs(sim[k] - ref.data()[k]) / tol);
  }
  EXPECT_LE(worst, 1.0);
}

Tensor absTensor(const Tensor &x) {
  Tensor a = Tensor::zeros(x.shape());
  for (int64_t k = 0; k < x.numel(); ++k)
    a.mutableData()[k] = std::abs(x.data()[k]);
  return a;
}

/// Simulates the bf16 linear x[m, k]·W[n, k]ᵀ on the 910B with `tiling`
/// and compares it with the reference evaluator.
void expectLinearMatchesReference(int64_t m, int64_t n, int64_t k, const MatmulTiling &tiling,
                                  unsigned seed) {
  MatmulProblem p{1, m, n, k, /*transposedB=*/true, DType::BF16};
  MatmulCase mc(p, tiling);
  std::mt19937 rng(seed);
  Tensor x = randomTensor({m, k}, rng), w = randomTensor({n, k}, rng);
  Simulator sim(mc.schedule);
  sim.setTensor(0, llvm::ArrayRef<float>(x.data(), x.numel()));
  sim.setTensor(1, llvm::ArrayRef<float>(w.data(), w.numel()));
  llvm::Error e = sim.run();
  ASSERT_FALSE(static_cast<bool>(e)) << llvm::toString(std::move(e));
  expectClose(sim.tensor(2), kernels::linear(x, w, nullptr),
              kernels::linear(absTensor(x), absTensor(w), nullptr), DType::BF16);
}

TEST(SimulatedMatmul, LinearMatchesReferenceEvaluatorBF16) {
  // Tails in M (50), N (70) and K (90); two K blocks of two slices.
  expectLinearMatchesReference(50, 70, 90, {32, 32, 32, 2}, /*seed=*/1);
}

TEST(SimulatedMatmul, BatchedMatmulMatchesReferenceEvaluatorF16On910A) {
  MatmulProblem p{3, 40, 48, 64, /*transposedB=*/false, DType::F16, "910a"};
  MatmulCase mc(p, {16, 32, 32, 1}, "910a");
  std::mt19937 rng(2);
  Tensor a = randomTensor({3, 40, 64}, rng), b = randomTensor({3, 64, 48}, rng);
  Simulator sim(mc.schedule);
  sim.setTensor(0, llvm::ArrayRef<float>(a.data(), a.numel()));
  sim.setTensor(1, llvm::ArrayRef<float>(b.data(), b.numel()));
  llvm::Error e = sim.run();
  ASSERT_FALSE(static_cast<bool>(e)) << llvm::toString(std::move(e));
  expectClose(sim.tensor(2), kernels::matmul(a, b), kernels::matmul(absTensor(a), absTensor(b)),
              DType::F16);
}

// Tests the search's wave-filling sizes (multiples of 16 that are not
// powers of two, here 48 x 176) with tails in M, N and K.
TEST(SimulatedMatmul, WaveSizedTilesMatchReferenceEvaluator) {
  expectLinearMatchesReference(50, 400, 90, {48, 176, 32, 2}, /*seed=*/4);
}

// Linears sharing their input as one kernel (a layer's q, k and v): each
// part's output matches its own x·Wᵀ, on the 910B (FixPipe out) and the
// 910A (through UB); tails in M, K and the last part's N.
TEST(SimulatedMatmul, FusedLinearsMatchReferenceEvaluator) {
  for (const char *target : {"910b", "910a"}) {
    DType dtype = std::string(target) == "910a" ? DType::F16 : DType::BF16;
    MatmulProblem p{1, 50, 64 + 32 + 40, 90, /*transposedB=*/true, dtype, target};
    p.nParts = {64, 32, 40};
    MatmulCase mc(p, {16, 32, 32, 2}, target);
    ASSERT_EQ(mc.schedule.gm.size(), 7u); // x, three weights, three outputs
    std::mt19937 rng(3);
    Tensor x = randomTensor({50, 90}, rng);
    std::vector<Tensor> w;
    Simulator sim(mc.schedule);
    sim.setTensor(0, llvm::ArrayRef<float>(x.data(), x.numel()));
    for (size_t i = 0; i < 3; ++i) {
      w.push_back(randomTensor({p.nParts[i], 90}, rng));
      sim.setTensor(1 + i, llvm::ArrayRef<float>(w[i].data(), w[i].numel()));
    }
    llvm::Error e = sim.run();
    ASSERT_FALSE(static_cast<bool>(e)) << target << ": " << llvm::toString(std::move(e));
    for (size_t i = 0; i < 3; ++i)
      expectClose(sim.tensor(4 + i), kernels::linear(x, w[i], nullptr),
                  kernels::linear(absTensor(x), absTensor(w[i]), nullptr), dtype);
  }
  // A tile may not straddle two parts.
  MatmulProblem p{1, 50, 96, 90, true, DType::BF16};
  p.nParts = {40, 56};
  std::string why;
  EXPECT_FALSE(tilingFits(p, {16, 32, 32, 2}, **TargetDescription::load("910b"), &why));
  EXPECT_EQ(why, "baseN 32 does not divide fused part 0 of 40 columns");
}

// Planted bugs in the lowered kernel's expanded schedule.
TEST(SimulatedMatmul, PlantedBugs) {
  MatmulProblem p{1, 64, 64, 128, true, DType::BF16};
  auto firstOf = [](Schedule &s, auto pred) {
    auto &v = s.cores[0].instrs;
    return std::find_if(v.begin(), v.end(), pred);
  };
  {
    // Remove the first wait_flag MTE2 -> MTE1.
    MatmulCase mc(p, {32, 32, 32, 2});
    mc.schedule.cores[0].instrs.erase(firstOf(mc.schedule, [](const Instr &i) {
      return i.kind == InstrKind::WaitFlag && i.flagSrc == Pipe::MTE2 && i.flagDst == Pipe::MTE1;
    }));
    EXPECT_NE(runError(mc.schedule).find("read before signalled write: L1 bytes"), std::string::npos);
  }
  {
    // Enlarge an L0A tile past the 910B's 64 KB.
    MatmulCase mc(p, {32, 32, 32, 2});
    auto it = firstOf(mc.schedule, [](const Instr &i) { return i.kind == InstrKind::Mmad; });
    it->src0.tile.shape = {256, 256};
    it->src1.tile.shape = {256, 32};
    it->dst.tile.shape = {256, 32};
    std::string error = runError(mc.schedule);
    EXPECT_NE(error.find("capacity overflow: mmad operand L0A tile needs bytes"), std::string::npos)
        << error;
  }
  {
    // Misalign an L1 -> L0A copy's source tile by 32 bytes off a fractal.
    MatmulCase mc(p, {32, 32, 32, 2});
    auto it = firstOf(mc.schedule, [](const Instr &i) {
      return i.kind == InstrKind::Copy && i.dst.tile.space == Space::L0A;
    });
    it->dst.tile.offset += 32;
    std::string error = runError(mc.schedule);
    EXPECT_NE(error.find("misaligned destination L0A tile at byte 32: L0A needs 512-byte alignment"),
              std::string::npos)
        << error;
  }
}

//===----------------------------------------------------------------------===//
// Numerics
//===----------------------------------------------------------------------===//

TEST(Numerics, RoundToNearestEven) {
  EXPECT_EQ(roundTo(DType::BF16, 1.0f), 1.0f);
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even.
  EXPECT_EQ(roundTo(DType::BF16, 1.0f + std::ldexp(1.0f, -8)), 1.0f);
  EXPECT_EQ(roundTo(DType::BF16, 1.0f + 3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_EQ(roundTo(DType::F16, 1.0f + std::ldexp(1.0f, -11)), 1.0f);
  EXPECT_EQ(roundTo(DType::F16, 65504.0f), 65504.0f);
  EXPECT_TRUE(std::isinf(roundTo(DType::F16, 65520.0f)));
  // The smallest f16 subnormal, 2^-24, and half of it rounding to zero.
  EXPECT_EQ(roundTo(DType::F16, std::ldexp(1.0f, -24)), std::ldexp(1.0f, -24));
  EXPECT_EQ(roundTo(DType::F16, std::ldexp(1.0f, -26)), 0.0f);
  EXPECT_EQ(roundTo(DType::F16, -3.0f * std::ldexp(1.0f, -24)), -3.0f * std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isnan(roundTo(DType::BF16, NAN)));
}

} // namespace

//===----------------------------------------------------------------------===//
// The schedule flatbuffer
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/ScheduleFlatbuffer.h"

namespace {

// Tests that a lowered kernel's schedule survives the flatbuffer round trip:
// same instruction streams, same simulated output, same estimate.
TEST(ScheduleFlatbuffer, RoundTrip) {
  MatmulProblem p{1, 50, 70, 90, true, DType::BF16};
  MatmulCase mc(p, {32, 32, 32, 2});
  std::vector<uint8_t> bytes = serializeSchedules({&mc.schedule});
  ASSERT_GT(bytes.size(), 8u);
  EXPECT_EQ(std::string(bytes.begin() + 4, bytes.begin() + 8), "AESC");
  auto back = deserializeSchedules(bytes);
  ASSERT_TRUE(static_cast<bool>(back)) << llvm::toString(back.takeError());
  ASSERT_EQ(back->size(), 1u);
  const Schedule &s = (*back)[0];
  EXPECT_EQ(s.kernel, "mm");
  EXPECT_EQ(s.target->name, "910b");
  ASSERT_EQ(s.cores.size(), mc.schedule.cores.size());
  for (size_t c = 0; c < s.cores.size(); ++c) {
    ASSERT_EQ(s.cores[c].instrs.size(), mc.schedule.cores[c].instrs.size());
    for (size_t k = 0; k < s.cores[c].instrs.size(); ++k) {
      const Instr &a = s.cores[c].instrs[k], &b = mc.schedule.cores[c].instrs[k];
      EXPECT_EQ(a.kind, b.kind);
      EXPECT_EQ(a.pipe, b.pipe);
      EXPECT_EQ(a.event, b.event);
      EXPECT_EQ(a.dst.tile.offset, b.dst.tile.offset);
      EXPECT_EQ(a.dst.offsets, b.dst.offsets);
      EXPECT_EQ(s.where(a), mc.schedule.where(b));
    }
  }
  std::mt19937 rng(6);
  Tensor x = randomTensor({50, 90}, rng), w = randomTensor({70, 90}, rng);
  Simulator original(mc.schedule), loaded(s);
  for (Simulator *sim : {&original, &loaded}) {
    sim->setTensor(0, llvm::ArrayRef<float>(x.data(), x.numel()));
    sim->setTensor(1, llvm::ArrayRef<float>(w.data(), w.numel()));
    ASSERT_FALSE(static_cast<bool>(sim->run()));
  }
  EXPECT_EQ(original.tensor(2), loaded.tensor(2));
  auto e1 = estimate(mc.schedule), e2 = estimate(s);
  ASSERT_TRUE(e1 && e2);
  EXPECT_DOUBLE_EQ(e1->cycles, e2->cycles);
}

// Tests that corrupt input is refused with a message, never a crash.
TEST(ScheduleFlatbuffer, CorruptInput) {
  MatmulProblem p{1, 32, 32, 32, true, DType::BF16};
  MatmulCase mc(p, {32, 32, 32, 1});
  std::vector<uint8_t> bytes = serializeSchedules({&mc.schedule});
  std::vector<uint8_t> truncated(bytes.begin(), bytes.begin() + bytes.size() / 2);
  auto cut = deserializeSchedules(truncated);
  ASSERT_FALSE(static_cast<bool>(cut));
  EXPECT_NE(llvm::toString(cut.takeError()).find("invalid Ascend schedule flatbuffer"),
            std::string::npos);
  std::vector<uint8_t> garbage(64, 0xab);
  auto bad = deserializeSchedules(garbage);
  ASSERT_FALSE(static_cast<bool>(bad));
  llvm::consumeError(bad.takeError());
}

} // namespace
