//===- GradKernelTest.cpp - the training step's kernels vs the reference ---===//
//
// The backward-only row kernels, the tile transpose and the column sum
// (TransposeKernel.h) simulated on random values against the reference
// evaluator's kernels, with row and column tails.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/TransposeKernel.h"
#include "attnedit/Ascend/VectorKernel.h"
#include "attnedit/Runtime/Execution/Kernels.h"
#include "AscendTestSupport.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;
using mlir::attnedit::ascend::test::randomTensor;
using mlir::attnedit::ascend::test::simulateKernel;

namespace {

std::vector<float> rows(const RowProblem &p, std::vector<const Tensor *> inputs,
                        llvm::StringRef target = "910b") {
  return test::simulateRows(p, target, inputs);
}

std::vector<float> columnSum(const ColumnSumProblem &p, const Tensor &x,
                             llvm::StringRef target = "910b") {
  return simulateKernel(
      target,
      [&](OpBuilder &b, const TargetDescription &t) {
        return buildColumnSumKernel(b, b.getUnknownLoc(), "k", p, t);
      },
      {&x});
}

Tensor tensorOf(const std::vector<float> &v, std::vector<int64_t> shape) {
  Tensor t = Tensor::zeros(shape);
  EXPECT_EQ((int64_t)v.size(), t.numel());
  std::copy(v.begin(), v.begin() + std::min<int64_t>(v.size(), t.numel()), t.mutableData());
  return t;
}

/// |got - want| <= tol · max(1, max|want|) element-wise.
void expectClose(const std::vector<float> &got, const Tensor &want, double tol) {
  ASSERT_EQ((int64_t)got.size(), want.numel());
  double scale = 1;
  for (int64_t k = 0; k < want.numel(); ++k)
    scale = std::max<double>(scale, std::abs(want.data()[k]));
  for (int64_t k = 0; k < want.numel(); ++k)
    ASSERT_NEAR(got[k], want.data()[k], tol * scale) << "element " << k;
}

TEST(GradKernel, ElementwiseGradsMatchReference) {
  std::mt19937 rng(7);
  Tensor x = randomTensor({70, 44}, rng, -4, 4), g = randomTensor({70, 44}, rng);
  Tensor y = randomTensor({70, 44}, rng, 0, 1);
  expectClose(rows({RowOp::SiluGrad, 70, 44}, {&x, &g}), kernels::siluGrad(x, g), 1e-6);
  expectClose(rows({RowOp::SigmoidGrad, 70, 44}, {&y, &g}), kernels::sigmoidGrad(y, g), 1e-6);
  expectClose(rows({RowOp::SiluGrad, 70, 44}, {&x, &g}, "910a"), kernels::siluGrad(x, g), 1e-6);
}

TEST(GradKernel, SoftmaxAndRmsNormGradsMatchReference) {
  std::mt19937 rng(8);
  Tensor logits = randomTensor({50, 33}, rng, -3, 3), g = randomTensor({50, 33}, rng);
  Tensor y = kernels::softmax(logits, 1);
  expectClose(rows({RowOp::SoftmaxGrad, 50, 33}, {&y, &g}), kernels::softmaxGrad(y, g, 1), 1e-6);

  Tensor x = randomTensor({45, 64}, rng), w = randomTensor({64}, rng), dy = randomTensor({45, 64}, rng);
  Tensor w2 = w.reshaped({1, 64});
  RowProblem grad{RowOp::RmsNormGrad, 45, 64, 1e-5};
  expectClose(rows(grad, {&x, &dy, &w2}), kernels::rmsNormGrad(x, w, dy, 1e-5), 1e-5);
  // The weight gradient: per-row terms, then the sum over the 45 rows.
  RowProblem terms{RowOp::RmsNormWeightRows, 45, 64, 1e-5};
  Tensor perRow = tensorOf(rows(terms, {&x, &dy}), {1, 45, 64});
  expectClose(columnSum({1, 45, 64}, perRow), kernels::rmsNormWeightGrad(x, dy, 1e-5), 1e-5);
}

// Softmax with sinks over causally masked scores (-inf entries), and the
// sinks' gradient summed per head.
TEST(GradKernel, SinkSoftmaxAndSinkGradMatchReference) {
  std::mt19937 rng(9);
  int64_t h = 3, tq = 10, tk = 10;
  Tensor scores = kernels::causalMask(randomTensor({h, tq, tk}, rng, -2, 2), 0, false);
  Tensor sinks = randomTensor({h}, rng, -1, 1);
  std::vector<float> column(h * tq);
  for (int64_t r = 0; r < h * tq; ++r)
    column[r] = sinks.data()[r / tq];
  Tensor sinkColumn = tensorOf(column, {h * tq, 1});
  Tensor want = kernels::softmax(scores, 2, &sinks);
  expectClose(rows({RowOp::SoftmaxSinks, h * tq, tk}, {&scores, &sinkColumn}), want, 1e-6);

  Tensor g = randomTensor({h, tq, tk}, rng);
  Tensor perRow = tensorOf(rows({RowOp::SinkRows, h * tq, tk}, {&want, &g}), {h, tq, 1});
  expectClose(columnSum({h, tq, 1}, perRow), kernels::sinkGrad(want, g), 1e-5);
}

TEST(GradKernel, KlLossAndGradMatchReference) {
  std::mt19937 rng(10);
  Tensor teacher = randomTensor({9, 100}, rng, -5, 5), student = randomTensor({9, 100}, rng, -5, 5);
  for (double tau : {1.0, 2.0}) {
    RowProblem kl{RowOp::KlRows, 9, 100};
    kl.temperature = tau;
    Tensor perRow = tensorOf(rows(kl, {&teacher, &student}), {1, 9, 1});
    auto loss = kernels::loss(LossKind::Kl, teacher, student, tau);
    ASSERT_TRUE(static_cast<bool>(loss));
    expectClose(columnSum({1, 9, 1, 1.0 / 9}, perRow), loss->reshaped({1}), 1e-5);

    Tensor g = tensorOf({0.75f}, {1, 1});
    RowProblem grad{RowOp::KlGrad, 9, 100};
    grad.temperature = tau;
    grad.factor = 1.0 / (9 * tau);
    auto want = kernels::lossGrad(LossKind::Kl, teacher, student, g.reshaped({}), 1, tau);
    ASSERT_TRUE(static_cast<bool>(want));
    expectClose(rows(grad, {&teacher, &student, &g}), *want, 1e-5);
  }
}

TEST(GradKernel, RowSumAndBroadcast) {
  std::mt19937 rng(11);
  Tensor x = randomTensor({37, 20}, rng);
  expectClose(rows({RowOp::RowSum, 37, 20}, {&x}), kernels::reduceSum(x, 1, true), 1e-6);
  Tensor c = randomTensor({37, 1}, rng);
  expectClose(rows({RowOp::BroadcastCol, 37, 20}, {&c}), kernels::broadcast(c, {37, 20}), 0);
}

// Batched transposes with tails in both dims (several tiles per matrix) and
// a column sum over a middle axis longer than one row chunk.
TEST(GradKernel, TransposeAndColumnSumMatchReference) {
  std::mt19937 rng(12);
  for (llvm::StringRef target : {"910b", "910a"}) {
    Tensor x = randomTensor({3, 70, 45}, rng);
    std::vector<float> got = simulateKernel(
        target,
        [&](OpBuilder &b, const TargetDescription &t) {
          return buildTransposeKernel(b, b.getUnknownLoc(), "k", {3, 70, 45}, t);
        },
        {&x});
    expectClose(got, kernels::transpose(x, {0, 2, 1}), 0);
    Tensor y = randomTensor({4, 130, 21}, rng);
    expectClose(columnSum({4, 130, 21}, y, target), kernels::reduceSum(y, 1, false), 1e-6);
  }
}

} // namespace
