//===- VectorKernelTest.cpp - row kernels against the reference kernels ---===//

#include "attnedit/Ascend/CostModel.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/ScheduleFlatbuffer.h"
#include "attnedit/Ascend/MoveKernel.h"
#include "attnedit/Ascend/OpSimulator.h"
#include "attnedit/Ascend/Simulator.h"
#include "attnedit/Ascend/VectorKernel.h"
#include "attnedit/Runtime/Execution/Kernels.h"
#include "AscendTestSupport.h"

#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/IR/AttnEditOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <random>

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;
using mlir::attnedit::ascend::test::randomTensor;

namespace {

/// Simulates `op` on `inputs` (GM order) and returns the output tensor.
std::vector<float> simulate(const RowProblem &p, llvm::StringRef target,
                            std::vector<const Tensor *> inputs, int64_t *instructions = nullptr) {
  return test::simulateRows(p, target, inputs, instructions);
}

void expectNear(const std::vector<float> &got, const Tensor &want, double rel) {
  ASSERT_EQ((int64_t)got.size(), want.numel());
  for (int64_t k = 0; k < want.numel(); ++k)
    ASSERT_NEAR(got[k], want.data()[k], rel * (1 + std::abs(want.data()[k]))) << "element " << k;
}

// RMSNorm with a row tail (100 rows in tiles) on both targets.
TEST(VectorKernel, RmsNormMatchesReference) {
  std::mt19937 rng(3);
  Tensor x = randomTensor({100, 96}, rng, -2, 2), w = randomTensor({96}, rng, -2, 2);
  Tensor w2 = w.reshaped({1, 96});
  for (llvm::StringRef target : {"910b", "910a"}) {
    RowProblem p{RowOp::RmsNorm, 100, 96, 1e-6};
    expectNear(simulate(p, target, {&x, &w2}), kernels::rmsNorm(x, w, 1e-6), 1e-5);
  }
}

TEST(VectorKernel, SiluMulAddMulMatchReference) {
  std::mt19937 rng(4);
  Tensor g = randomTensor({70, 40}, rng, -2, 2), u = randomTensor({70, 40}, rng, -2, 2);
  expectNear(simulate({RowOp::SiluMul, 70, 40}, "910b", {&g, &u}),
             kernels::mul(kernels::silu(g), u), 1e-5);
  expectNear(simulate({RowOp::Silu, 70, 40}, "910b", {&g}), kernels::silu(g), 1e-5);
  expectNear(simulate({RowOp::Add, 70, 40}, "910b", {&g, &u}), kernels::add(g, u), 1e-6);
  expectNear(simulate({RowOp::Mul, 70, 40}, "910b", {&g, &u}), kernels::mul(g, u), 1e-6);
}

TEST(VectorKernel, SoftmaxMatchesReference) {
  std::mt19937 rng(5);
  Tensor s = randomTensor({50, 33}, rng, -8, 8);
  expectNear(simulate({RowOp::Softmax, 50, 33}, "910b", {&s}), kernels::softmax(s, 1), 1e-5);
}

// A softmax in column chunks (three passes: max, sum, write) gives the
// same result as the whole-row kernel.
TEST(VectorKernel, ChunkedSoftmaxMatchesReference) {
  std::mt19937 rng(7);
  Tensor s = randomTensor({50, 96}, rng, -8, 8);
  RowProblem p{RowOp::Softmax, 50, 96};
  p.chunk = 32;
  for (llvm::StringRef target : {"910b", "910a"})
    expectNear(simulate(p, target, {&s}), kernels::softmax(s, 1), 1e-5);
}

// RoPE (rotate_half, both directions) against the reference kernel; the
// positions enter as f32, the inverse frequencies as the lowering makes them.
TEST(VectorKernel, RopeMatchesReference) {
  std::mt19937 rng(8);
  int64_t t = 37, h = 3, d = 32;
  Tensor x = randomTensor({t, h, d}, rng, -2, 2);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < t; ++i)
    ids.push_back(static_cast<int32_t>(3 * i + 1));
  Tensor positions = Tensor::ints(ids);
  Tensor posF = Tensor::zeros({t, 1}), inv = Tensor::zeros({1, d / 2});
  for (int64_t i = 0; i < t; ++i)
    posF.mutableData()[i] = static_cast<float>(ids[i]);
  for (int64_t i = 0; i < d / 2; ++i)
    inv.mutableData()[i] = static_cast<float>(std::pow(10000.0, -2.0 * i / d));
  Tensor flat = x.reshaped({t, h * d});
  for (bool inverse : {false, true}) {
    RowProblem p{RowOp::Rope, t, h * d};
    p.heads = h;
    p.inverse = inverse;
    p.theta = 10000.0;
    kernels::RopeConfig config{10000.0, d, /*interleaved=*/false, std::nullopt, inverse};
    Tensor want = kernels::rope(x, positions, config).reshaped({t, h * d});
    // f32 angles of positions up to 109: |error| ~ 1e-5 after sin/cos.
    expectNear(simulate(p, "910b", {&flat, &posF, &inv}), want, 1e-4);
  }
}

// Interleaved-pair RoPE (llama2.c's convention) through the Gather of each
// pair's partner, both directions, against the reference kernel.
TEST(VectorKernel, InterleavedRopeMatchesReference) {
  std::mt19937 rng(9);
  int64_t t = 21, h = 4, d = 8;
  Tensor x = randomTensor({t, h, d}, rng, -2, 2);
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < t; ++i)
    ids.push_back(static_cast<int32_t>(5 * i));
  Tensor positions = Tensor::ints(ids);
  Tensor posF = Tensor::zeros({t, 1}), freq = Tensor::zeros({1, d}), index = Tensor::zeros({1, d});
  for (int64_t i = 0; i < t; ++i)
    posF.mutableData()[i] = static_cast<float>(ids[i]);
  for (int64_t i = 0; i < d / 2; ++i) {
    auto f = static_cast<float>(std::pow(10000.0, -2.0 * i / d));
    freq.mutableData()[2 * i] = -f;
    freq.mutableData()[2 * i + 1] = f;
    index.mutableData()[2 * i] = static_cast<float>(2 * i + 1);
    index.mutableData()[2 * i + 1] = static_cast<float>(2 * i);
  }
  Tensor flat = x.reshaped({t, h * d});
  for (bool inverse : {false, true}) {
    RowProblem p{RowOp::Rope, t, h * d};
    p.heads = h;
    p.inverse = inverse;
    p.theta = 10000.0;
    p.interleaved = true;
    kernels::RopeConfig config{10000.0, d, /*interleaved=*/true, std::nullopt, inverse};
    Tensor want = kernels::rope(x, positions, config).reshaped({t, h * d});
    // f32 angles of positions up to 100: |error| ~ 1e-5 after sin/cos.
    for (llvm::StringRef target : {"910b", "910a"})
      expectNear(simulate(p, target, {&flat, &posF, &freq, &index}), want, 1e-4);
  }
}

// Scale (vmuls) and linear's bias (the row replicated in UB, then vadd).
TEST(VectorKernel, ScaleAndBiasAddMatchReference) {
  std::mt19937 rng(10);
  Tensor x = randomTensor({45, 24}, rng, -2, 2), bias = randomTensor({24}, rng, -2, 2);
  RowProblem scale{RowOp::Scale, 45, 24};
  scale.factor = 0.35;
  expectNear(simulate(scale, "910b", {&x}), kernels::scale(x, 0.35), 1e-6);
  Tensor row = bias.reshaped({1, 24});
  Tensor want = kernels::add(x, kernels::broadcast(row, {45, 24}));
  expectNear(simulate({RowOp::BiasAdd, 45, 24}, "910b", {&x, &row}), want, 1e-6);
}

/// Simulates a row-move kernel on `x` and returns its output.
std::vector<float> simulateMove(const MoveProblem &p, llvm::StringRef target, const Tensor &x) {
  return test::simulateTiled(p, target, moveRowsPerTile, buildMoveKernel, {&x});
}

// The attention layout moves: [T, H, D] <-> [H, T, D] and repeat_kv, exact.
TEST(MoveKernel, TransposeAndRepeatKvMatchReference) {
  std::mt19937 rng(11);
  Tensor x = randomTensor({13, 6, 8}, rng, -2, 2);
  for (llvm::StringRef target : {"910b", "910a"}) {
    expectNear(simulateMove({MoveProblem::Kind::Transpose, 13, 6, 8}, target, x),
               kernels::transpose(x, {1, 0, 2}), 0);
    expectNear(simulateMove({MoveProblem::Kind::RepeatKv, 13, 6, 8, 3}, target, x),
               kernels::repeatKv(x, 3), 0);
  }
  // Rows narrower than a 32-byte block (MLA's 4-wide RoPE key) stay exact.
  Tensor y = randomTensor({5, 7, 4}, rng, -2, 2);
  expectNear(simulateMove({MoveProblem::Kind::Transpose, 5, 7, 4}, "910b", y),
             kernels::transpose(y, {1, 0, 2}), 0);
}

/// Simulates a mask kernel on `x` and returns its output.
std::vector<float> simulateMask(const MaskProblem &p, const Tensor &x) {
  return test::simulateTiled(p, "910b", maskRowsPerTile, buildMaskKernel, {&x});
}

// Causal and sliding-window masks (more keys than queries, as a chunked
// prefill has), and the VJP's zero fill: -inf in the reference is -3e38 here.
TEST(MoveKernel, CausalMaskMatchesReference) {
  std::mt19937 rng(12);
  Tensor x = randomTensor({3, 6, 11}, rng, -2, 2);
  for (int64_t window : {0, 4})
    for (bool zero : {false, true}) {
      Tensor want = kernels::causalMask(x, window, zero);
      std::vector<float> got = simulateMask({3, 6, 11, window, zero}, x);
      ASSERT_EQ((int64_t)got.size(), want.numel());
      for (int64_t k = 0; k < want.numel(); ++k) {
        float w = want.data()[k];
        if (std::isinf(w))
          ASSERT_EQ(got[k], -3.0e38f) << k;
        else
          ASSERT_EQ(got[k], w) << k;
      }
    }
}

// Slice and concat along the last axis (MLA's nope/rope split and join).
TEST(MoveKernel, ColumnSliceAndConcatMatchReference) {
  std::mt19937 rng(13);
  Tensor a = randomTensor({24, 20}, rng, -2, 2), b = randomTensor({24, 4}, rng, -2, 2);
  auto run = [](const ColumnProblem &p, std::vector<const Tensor *> inputs) {
    return test::simulateTiled(p, "910b", columnRowsPerTile, buildColumnKernel, inputs);
  };
  ColumnProblem slice{24, 4, {{20, 16, 4, 0}}};
  expectNear(run(slice, {&a}), kernels::slice(a, 1, 16, 4), 0);
  ColumnProblem concat{24, 24, {{20, 0, 20, 0}, {4, 0, 4, 20}}};
  expectNear(run(concat, {&a, &b}), kernels::concat({a, b}, 1), 0);
}

// Slice and concat on an inner axis through OpSimulator (MLA's absorbed
// decode slices kv_b_proj [H, n + dv, rank] on axis 1): row-major [outer,
// n, inner] is [outer, n·inner], the slice a range of its columns. A slice
// is folded into its consumers (no kernel; they read its columns in place
// through a GM view), unless foldSlices is off or it is materialized.
TEST(MoveKernel, SliceAndConcatOnInnerAxisMatchReference) {
  MLIRContext ctx;
  ctx.loadDialect<AttnEditDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(R"mlir(
    func.func @f(%x: tensor<3x10x4xf32>, %y: tensor<3x2x4xf32>) -> tensor<3x5x4xf32> {
      %s = attnedit.slice %x {axis = 1 : i64, offset = 6 : i64, size = 3 : i64} : (tensor<3x10x4xf32>) -> tensor<3x3x4xf32>
      %c = attnedit.concat %s, %y {axis = 1 : i64} : (tensor<3x3x4xf32>, tensor<3x2x4xf32>) -> tensor<3x5x4xf32>
      return %c : tensor<3x5x4xf32>
    })mlir",
                                                                   &ctx);
  ASSERT_TRUE(module);
  SmallVector<Operation *> ops;
  module->walk([&](Operation *op) {
    if (isa<SliceOp, ConcatOp>(op))
      ops.push_back(op);
  });
  ASSERT_EQ(ops.size(), 2u);
  std::mt19937 rng(15);
  Tensor x = randomTensor({3, 10, 4}, rng, -2, 2), y = randomTensor({3, 2, 4}, rng, -2, 2);
  auto host = [](const Tensor &t, const SliceView *view = nullptr) {
    return HostTensor{llvm::SmallVector<int64_t, 4>(t.shape()), t.data(), nullptr, view};
  };
  Tensor want = kernels::slice(x, 1, 6, 3), wantJoined = kernels::concat({want, y}, 1);

  for (bool fold : {false, true}) {
    SCOPED_TRACE(fold ? "folded" : "a slice kernel");
    OpSimulatorOptions options;
    options.dtype = DType::F32;
    options.foldSlices = fold;
    auto sim = OpSimulator::create(options);
    ASSERT_TRUE(static_cast<bool>(sim)) << llvm::toString(sim.takeError());
    auto sliced = (*sim)->run(ops[0], {host(x)});
    ASSERT_TRUE(sliced && *sliced) << (sliced ? llvm::toString(sliced->takeError()) : "none");
    EXPECT_EQ(ArrayRef<int64_t>((*sliced)->shape), want.shape());
    expectNear((*sliced)->values, want, 0);
    EXPECT_EQ((*sliced)->kernels.size(), fold ? 0u : 1u);
    EXPECT_EQ((*sliced)->folded.has_value(), fold);
    const SliceView *view = nullptr;
    if (fold) {
      // Columns [24, 36) of each 40-value row of x.
      view = &*(*sliced)->folded;
      EXPECT_EQ(view->parent, x.data());
      EXPECT_EQ(view->pitch, 40);
      EXPECT_EQ(view->offset, 24);
      EXPECT_EQ(view->width, 12);
    } else {
      EXPECT_EQ((*sliced)->kernels[0], "slice");
    }
    // The concat's kernel reads the slice where it lies in x.
    Tensor s = Tensor::view(want.shape(), (*sliced)->values.data(), nullptr);
    auto joined = (*sim)->run(ops[1], {host(s, view), host(y)});
    ASSERT_TRUE(joined && *joined) << (joined ? llvm::toString(joined->takeError()) : "none");
    EXPECT_EQ(ArrayRef<int64_t>((*joined)->shape), wantJoined.shape());
    expectNear((*joined)->values, wantJoined, 0);
    EXPECT_EQ((*joined)->viewsRead.size(), fold ? 1u : 0u); // operand 0, in place
    if (fold) {
      // A consumer that cannot read it in place: the slice kernel after all.
      auto m = (*sim)->materialize(host(s, view));
      ASSERT_TRUE(static_cast<bool>(m)) << llvm::toString(m.takeError());
      expectNear(m->values, want, 0);
      ASSERT_EQ(m->kernels.size(), 1u);
      EXPECT_EQ(m->kernels[0], "slice");
    }
  }
}

// A GM argument bound to a column window of a wider tensor (a folded
// slice): an RMSNorm kernel built for dense [6, 8] rows reads columns
// [4, 12) of a [6, 20] tensor in place and gives the dense result; the cost
// model reads it in bursts of rows (no faster than dense); the view survives
// the flatbuffer, and a view past its rows is rejected there and by the
// simulator.
TEST(VectorKernel, GmViewReadsAColumnWindowInPlace) {
  std::mt19937 rng(16);
  Tensor wide = randomTensor({6, 20}, rng, -2, 2), w = randomTensor({8}, rng, 0.5, 1.5);
  Tensor x = kernels::slice(wide, 1, 4, 8);
  RowProblem p{RowOp::RmsNorm, 6, 8, 1e-6};
  auto built = test::buildKernel("910b", [&](OpBuilder &b, const TargetDescription &t) {
    return buildRowKernel(b, b.getUnknownLoc(), "k", p, rowsPerTile(p, t), t);
  });
  ASSERT_TRUE(built->schedule);
  Schedule viewed = *built->schedule;
  viewed.gm[0].viewWidth = 8;
  viewed.gm[0].viewPitch = 20;
  viewed.gm[0].viewOffset = 4;
  viewed.gm[0].viewElements = 120;
  auto got = OpSimulator::simulate(viewed, {llvm::ArrayRef<float>(wide.data(), 120),
                                            llvm::ArrayRef<float>(w.data(), 8)});
  ASSERT_TRUE(static_cast<bool>(got)) << llvm::toString(got.takeError());
  expectNear(*got, kernels::rmsNorm(x, w, 1e-6), 1e-6);
  auto dense = estimate(*built->schedule), inPlace = estimate(viewed);
  ASSERT_TRUE(dense && inPlace);
  EXPECT_GE(inPlace->seconds, dense->seconds);

  auto back = deserializeSchedules(serializeSchedules({&viewed}));
  ASSERT_TRUE(static_cast<bool>(back)) << llvm::toString(back.takeError());
  const GmTensor &g = (*back)[0].gm[0];
  EXPECT_EQ(g.viewWidth, 8);
  EXPECT_EQ(g.viewPitch, 20);
  EXPECT_EQ(g.viewOffset, 4);
  EXPECT_EQ(g.viewElements, 120);
  viewed.gm[0].viewOffset = 14; // columns [14, 22) of 20
  auto bad = deserializeSchedules(serializeSchedules({&viewed}));
  ASSERT_FALSE(static_cast<bool>(bad));
  EXPECT_NE(llvm::toString(bad.takeError()).find("malformed view"), std::string::npos);
  auto outside = OpSimulator::simulate(viewed, {llvm::ArrayRef<float>(wide.data(), 120),
                                                llvm::ArrayRef<float>(w.data(), 8)});
  ASSERT_FALSE(static_cast<bool>(outside));
  std::string msg = llvm::toString(outside.takeError());
  EXPECT_NE(msg.find("GM argument 0 is bound to columns [14, 22) of 20-element rows"),
            std::string::npos)
      << msg;
}

TEST(VectorKernel, SigmoidMatchesReference) {
  std::mt19937 rng(14);
  Tensor x = randomTensor({33, 8}, rng, -6, 6);
  expectNear(simulate({RowOp::Sigmoid, 33, 8}, "910b", {&x}), kernels::sigmoid(x), 1e-6);
}

// Tests the UB budget: a 4096-wide RMSNorm row in f32 takes 16 KB per
// stream slot, so only one row fits per tile with two slots per stream
// (research §9.2 finds 2 rows for bf16); a few rows are spread over the 48
// vector cores.
TEST(VectorKernel, RowsPerTileFollowsUB) {
  auto t = TargetDescription::load("910b");
  ASSERT_TRUE(static_cast<bool>(t));
  EXPECT_EQ(rowsPerTile({RowOp::RmsNorm, 4096, 4096, 1e-6}, **t), 1);
  // Add: 2 slots x (2 inputs + 1 output) x 1 KB per row in 184 KB of UB.
  EXPECT_EQ(rowsPerTile({RowOp::Add, 4096, 256, 0}, **t), (196608 - 8192) / 6144);
  EXPECT_EQ(rowsPerTile({RowOp::Add, 96, 256, 0}, **t), 2);
  EXPECT_EQ(rowsPerTile({RowOp::RmsNorm, 1, 1 << 20, 0}, **t), 0);
}

} // namespace
