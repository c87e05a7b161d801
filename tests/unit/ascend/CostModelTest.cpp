//===- CostModelTest.cpp - event-driven timing ----------------------------===//

#include "attnedit/Ascend/CostModel.h"
#include "attnedit/Ascend/MatmulKernel.h"
#include "attnedit/Ascend/ScheduleBuilder.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {

TileRef tile(Space space, int64_t rows, int64_t cols, DType d, Layout l, int64_t offset = 0) {
  return TileRef{space, -1, offset, {rows, cols}, d, l};
}

Schedule single(std::vector<Instr> instrs) {
  Schedule s;
  s.kernel = "k";
  s.target = *TargetDescription::load("910b");
  s.cores.push_back({0, std::move(instrs)});
  return s;
}

/// A bf16 mmad of 128 x 64 by 64 x 256, A at `aOffset` of L0A.
Instr mmad128x64x256(int64_t aOffset = 0) {
  Instr mmad;
  mmad.kind = InstrKind::Mmad;
  mmad.pipe = Pipe::M;
  mmad.src0 = {tile(Space::L0A, 128, 64, DType::BF16, Layout::ZZ, aOffset), {0, 0}};
  mmad.src1 = {tile(Space::L0B, 64, 256, DType::BF16, Layout::ZN), {0, 0}};
  mmad.dst = {tile(Space::L0C, 128, 256, DType::F32, Layout::NZ), {0, 0}};
  return mmad;
}

/// The MTE1 load of a bf16 128 x 64 tile from L1 into L0A.
Instr l1ToL0a128x64() {
  Instr load;
  load.kind = InstrKind::Copy;
  load.pipe = Pipe::MTE1;
  load.src0 = {tile(Space::L1, 128, 64, DType::BF16, Layout::NZ), {0, 0}};
  load.dst = {tile(Space::L0A, 128, 64, DType::BF16, Layout::ZZ), {0, 0}};
  load.rows = 128;
  load.cols = 64;
  return load;
}

// Tests CANN's theoretical mmad model (S56): ⌈m/16⌉·⌈n/16⌉·⌈k/16⌉ cycles for
// b16 operands, and the L1 -> L0A rate of S57 (256 B/cycle + 28 cycles).
TEST(CostModel, MmadAndMte1Formulas) {
  auto e = estimate(single({mmad128x64x256()}));
  ASSERT_TRUE(static_cast<bool>(e));
  EXPECT_DOUBLE_EQ(e->cycles, 8 * 16 * 4);
  EXPECT_DOUBLE_EQ(e->flops, 2.0 * 128 * 64 * 256);
  EXPECT_EQ(e->bound, Pipe::M);

  auto l = estimate(single({l1ToL0a128x64()}));
  ASSERT_TRUE(static_cast<bool>(l));
  EXPECT_DOUBLE_EQ(l->cycles, 28 + 128 * 64 * 2 / 256.0);
}

// Tests that a flag makes the consumer start after the producer completes,
// while independent pipes overlap.
TEST(CostModel, FlagsSerialiseAndPipesOverlap) {
  Instr load = l1ToL0a128x64();
  Instr mmad = mmad128x64x256(/*aOffset=*/32768);
  Instr set, wait;
  set.kind = InstrKind::SetFlag;
  set.pipe = set.flagSrc = Pipe::MTE1;
  set.flagDst = Pipe::M;
  wait = set;
  wait.kind = InstrKind::WaitFlag;
  wait.pipe = Pipe::M;
  double loadCycles = 28 + 64, mmadCycles = 512, flag = 4;
  auto overlapped = estimate(single({load, mmad}));
  auto ordered = estimate(single({load, set, wait, mmad}));
  ASSERT_TRUE(overlapped && ordered);
  EXPECT_DOUBLE_EQ(overlapped->cycles, std::max(loadCycles, mmadCycles));
  EXPECT_DOUBLE_EQ(ordered->cycles, loadCycles + flag + mmadCycles);
}

double searchedCubeFraction(int64_t m, int64_t n, int64_t k, MatmulTiling *chosen = nullptr,
                            std::vector<int64_t> parts = {}) {
  MLIRContext context;
  context.loadDialect<AscendDialect>();
  MatmulProblem p{1, m, n, k, true, DType::BF16};
  p.nParts = parts;
  auto t = TargetDescription::load("910b");
  auto choice = searchMatmulTiling(&context, p, **t);
  EXPECT_TRUE(static_cast<bool>(choice));
  if (chosen)
    *chosen = choice->tiling;
  // Time the chosen tiling on the whole kernel, every core expanded.
  OpBuilder b(&context);
  OwningOpRef<ModuleOp> module = ModuleOp::create(b.getUnknownLoc());
  b.setInsertionPointToEnd(module->getBody());
  KernelOp kernel = buildMatmulKernel(b, b.getUnknownLoc(), "mm", p, choice->tiling, **t);
  auto s = buildSchedule(kernel);
  EXPECT_TRUE(static_cast<bool>(s));
  auto e = estimate(*s);
  EXPECT_TRUE(static_cast<bool>(e));
  return e->cubePeakFraction;
}

// Tests the bar: a large GEMM reaches >= 85% of the modelled Cube
// peak, and the tile search picks a large base block for it.
TEST(CostModel, LargeGemmNearCubePeak) {
  MatmulTiling chosen;
  double fraction = searchedCubeFraction(4096, 4096, 4096, &chosen);
  EXPECT_GE(fraction, 0.85);
  EXPECT_GE(chosen.baseM * chosen.baseN, 128 * 128);
}

// Tests the bar for Qwen3-8B's k and v projections at 4K tokens of prefill
// (N 1024): alone, 128 tiles of 256x128 for 24 cube cores re-read x only 8
// times through L2, and the per-tile loads outlast the Cube; fused with q
// (the three read the same input; N 4096 + 1024 + 1024) they are 768 tiles,
// 32 per core, x re-read 48 times, at >= 85% of the modelled Cube peak.
TEST(CostModel, FusedProjectionsNearCubePeak) {
  MatmulTiling chosen;
  double fraction = searchedCubeFraction(4096, 6144, 4096, &chosen, {4096, 1024, 1024});
  EXPECT_GE(fraction, 0.85);
  EXPECT_EQ(1024 % chosen.baseN, 0);
}

// Tests that the search weighs the last wave: Qwen3-8B's o_proj in decode
// (32 tokens; its weights streamed once) in 64 tiles of 64 columns leaves
// the last of three waves on 24 cores 2/3 full; the search's sizes that cut
// N into about c·cores tiles find 24 tiles of 176 columns, one full wave.
TEST(CostModel, DecodeGemmFillsItsWaves) {
  MLIRContext context;
  context.loadDialect<AscendDialect>();
  MatmulProblem p{1, 32, 4096, 4096, true, DType::BF16};
  auto t = TargetDescription::load("910b");
  auto choice = searchMatmulTiling(&context, p, **t);
  ASSERT_TRUE(static_cast<bool>(choice));
  int64_t tiles = (p.n + choice->tiling.baseN - 1) / choice->tiling.baseN;
  EXPECT_EQ(tiles % (*t)->cubeCores, 0) << "baseN " << choice->tiling.baseN;
  auto time = [&](const MatmulTiling &tl) {
    OpBuilder b(&context);
    OwningOpRef<ModuleOp> module = ModuleOp::create(b.getUnknownLoc());
    b.setInsertionPointToEnd(module->getBody());
    auto s = buildSchedule(buildMatmulKernel(b, b.getUnknownLoc(), "mm", p, tl, **t));
    EXPECT_TRUE(static_cast<bool>(s));
    auto e = estimate(*s);
    EXPECT_TRUE(static_cast<bool>(e));
    return e->seconds;
  };
  // The best power-of-two tiling before (three waves).
  EXPECT_LT(time(choice->tiling), 0.9 * time({32, 64, 128, 8}));
}

// Tests that the description drives the tiling: the 910A's larger L0C and
// its 32 cores and different paths give a different kernel than the 910B.
TEST(CostModel, TargetsDiffer) {
  MLIRContext context;
  context.loadDialect<AscendDialect>();
  MatmulProblem p{1, 1024, 1024, 1024, true, DType::F16};
  auto b = searchMatmulTiling(&context, p, **TargetDescription::load("910b"));
  auto a = searchMatmulTiling(&context, p, **TargetDescription::load("910a"));
  ASSERT_TRUE(a && b);
  EXPECT_GT(a->estimate.coresUsed, b->estimate.coresUsed);
  std::string why;
  MatmulTiling big{256, 256, 64, 2};
  EXPECT_FALSE(tilingFits(p, big, **TargetDescription::load("910b"), &why));
  EXPECT_EQ(why, "l0c needs 262144 bytes of 131072");
  EXPECT_TRUE(tilingFits(p, big, **TargetDescription::load("910a")));
}

// Tests that a tiling that is no tiling names its field: a stepK of 0 was
// "base sizes must be multiples of 16", a negative size passed (-16 % 16
// is 0) and failed later as "needs block_dim >= 1".
TEST(CostModel, TilingShapeErrorsNameTheField) {
  EXPECT_EQ(tilingShapeError({16, 16, 16, 1}), "");
  EXPECT_EQ(tilingShapeError({16, 16, 16, 0}), "stepK must be at least 1, got 0");
  EXPECT_EQ(tilingShapeError({-16, 16, 16, 1}),
            "baseM must be a positive multiple of 16 (S20), got -16");
  EXPECT_EQ(tilingShapeError({16, 0, 16, 1}),
            "baseN must be a positive multiple of 16 (S20), got 0");
  EXPECT_EQ(tilingShapeError({16, 16, 24, 1}),
            "baseK must be a positive multiple of 16 (S20), got 24");
  MatmulProblem p{1, 64, 64, 64, true, DType::BF16};
  std::string why;
  EXPECT_FALSE(tilingFits(p, {16, 16, 16, 0}, **TargetDescription::load("910b"), &why));
  EXPECT_EQ(why, "stepK must be at least 1, got 0");
}

// Tests the Chrome trace: metadata per core and pipe, and one complete
// event per timed instruction with its microsecond times.
TEST(CostModel, ChromeTrace) {
  MLIRContext context;
  context.loadDialect<AscendDialect>();
  OpBuilder b(&context);
  OwningOpRef<ModuleOp> module = ModuleOp::create(b.getUnknownLoc());
  b.setInsertionPointToEnd(module->getBody());
  auto t = TargetDescription::load("910b");
  MatmulProblem p{1, 64, 64, 64, true, DType::BF16};
  KernelOp kernel = buildMatmulKernel(b, b.getUnknownLoc(), "mm", p, {32, 32, 32, 1}, **t);
  auto s = buildSchedule(kernel);
  ASSERT_TRUE(static_cast<bool>(s));
  auto e = estimate(*s, {/*trace=*/true});
  ASSERT_TRUE(static_cast<bool>(e));
  llvm::json::Value trace = chromeTrace(*s, *e);
  const llvm::json::Array *events = trace.getAsObject()->getArray("traceEvents");
  ASSERT_TRUE(events);
  int complete = 0, mmads = 0;
  for (const llvm::json::Value &v : *events) {
    const llvm::json::Object *o = v.getAsObject();
    if (o->getString("ph") == "X") {
      ++complete;
      EXPECT_GE(*o->getNumber("dur"), 0);
      mmads += o->getString("name") == "mmad";
    }
  }
  EXPECT_EQ(complete, (int)e->trace.size());
  EXPECT_EQ(mmads, 4 * 2); // 4 blocks x 2 K slices
}

} // namespace
