//===- KernelsTest.cpp - reference kernels against hand-computed values ----===//

#include "attnedit/Runtime/Execution/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace mlir::attnedit;

namespace {

Tensor make(llvm::ArrayRef<int64_t> shape, std::vector<float> values) {
  Tensor t = Tensor::zeros(shape);
  std::copy(values.begin(), values.end(), t.mutableData());
  return t;
}

std::vector<float> data(const Tensor &t) { return {t.data(), t.data() + t.numel()}; }

TEST(KernelsTest, LinearIsXTimesWTransposedPlusBias) {
  Tensor x = make({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor w = make({2, 3}, {1, 0, 0, 0, 1, 1});
  Tensor b = make({2}, {10, 20});
  EXPECT_EQ(data(kernels::linear(x, w, &b)), (std::vector<float>{11, 25, 14, 31}));
}

TEST(KernelsTest, RmsNormScalesByRootMeanSquare) {
  Tensor x = make({1, 2}, {3, 4});
  Tensor w = make({2}, {1, 2});
  std::vector<float> out = data(kernels::rmsNorm(x, w, 0.0 + 1e-12));
  double rms = std::sqrt((9.0 + 16.0) / 2);
  EXPECT_NEAR(out[0], 3 / rms, 1e-6);
  EXPECT_NEAR(out[1], 2 * 4 / rms, 1e-6);
}

TEST(KernelsTest, RopeRotatesTheRightPairs) {
  // One token at position 1, one head of 4 dims, theta chosen so the first
  // pair turns by 1 radian and the second by 1/theta^(1/2).
  Tensor x = make({1, 1, 4}, {1, 2, 3, 4});
  Tensor pos = Tensor::ints({1});
  double c0 = std::cos(1.0), s0 = std::sin(1.0), c1 = std::cos(0.01), s1 = std::sin(0.01);
  kernels::RopeConfig half{10000.0, 4, false, std::nullopt};
  std::vector<float> h = data(kernels::rope(x, pos, half));
  // rotate_half pairs (0, 2) and (1, 3).
  EXPECT_NEAR(h[0], 1 * c0 - 3 * s0, 1e-6);
  EXPECT_NEAR(h[2], 3 * c0 + 1 * s0, 1e-6);
  EXPECT_NEAR(h[1], 2 * c1 - 4 * s1, 1e-6);
  kernels::RopeConfig inter{10000.0, 4, true, std::nullopt};
  std::vector<float> i = data(kernels::rope(x, pos, inter));
  // interleaved pairs (0, 1) and (2, 3).
  EXPECT_NEAR(i[0], 1 * c0 - 2 * s0, 1e-6);
  EXPECT_NEAR(i[1], 2 * c0 + 1 * s0, 1e-6);
  EXPECT_NEAR(i[3], 4 * c1 + 3 * s1, 1e-6);
}

TEST(KernelsTest, PartialRopeLeavesTailUntouched) {
  Tensor x = make({1, 1, 4}, {1, 2, 3, 4});
  kernels::RopeConfig config{10000.0, 2, false, std::nullopt};
  std::vector<float> out = data(kernels::rope(x, Tensor::ints({5}), config));
  EXPECT_EQ(out[2], 3);
  EXPECT_EQ(out[3], 4);
}

TEST(KernelsTest, Llama3ScalingKeepsHighAndDividesLowFrequencies) {
  kernels::RopeConfig config{10000.0, 64, false, std::array<double, 4>{8, 1, 4, 8192}};
  kernels::RopeConfig plain{10000.0, 64, false, std::nullopt};
  std::vector<double> scaled = kernels::ropeInverseFrequencies(config);
  std::vector<double> base = kernels::ropeInverseFrequencies(plain);
  EXPECT_DOUBLE_EQ(scaled.front(), base.front());
  EXPECT_NEAR(scaled.back(), base.back() / 8, 1e-15);
}

TEST(KernelsTest, CausalWindowMaskAndSoftmax) {
  Tensor s = Tensor::zeros({1, 3, 3});
  std::vector<float> p = data(kernels::softmax(kernels::causalMask(s, 2), 2));
  EXPECT_EQ(p, (std::vector<float>{1, 0, 0, 0.5, 0.5, 0, 0, 0.5, 0.5}));
}

TEST(KernelsTest, MaskAlignsQueriesWithTheLastKeys) {
  Tensor s = Tensor::zeros({1, 1, 3});
  std::vector<float> p = data(kernels::softmax(kernels::causalMask(s, 0), 2));
  EXPECT_NEAR(p[2], 1.0 / 3, 1e-7);
}

TEST(KernelsTest, RepeatKvRepeatsEachHeadInPlace) {
  Tensor x = make({2, 1, 1}, {1, 2});
  EXPECT_EQ(data(kernels::repeatKv(x, 2)), (std::vector<float>{1, 1, 2, 2}));
}

TEST(KernelsTest, TransposeSliceConcat) {
  Tensor x = make({2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(data(kernels::transpose(x, {1, 0})), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  Tensor tail = kernels::slice(x, 1, 1, 2);
  EXPECT_EQ(data(tail), (std::vector<float>{2, 3, 5, 6}));
  EXPECT_EQ(data(kernels::concat({x, tail}, 1)),
            (std::vector<float>{1, 2, 3, 2, 3, 4, 5, 6, 5, 6}));
}

TEST(KernelsTest, EmbeddingRejectsIdsOutsideTheVocabulary) {
  Tensor table = make({2, 2}, {1, 2, 3, 4});
  auto ok = kernels::embedding(table, Tensor::ints({1, 0}));
  ASSERT_TRUE(static_cast<bool>(ok));
  EXPECT_EQ(data(*ok), (std::vector<float>{3, 4, 1, 2}));
  auto bad = kernels::embedding(table, Tensor::ints({2}));
  ASSERT_FALSE(static_cast<bool>(bad));
  EXPECT_NE(llvm::toString(bad.takeError()).find("outside the vocabulary [0, 2)"),
            std::string::npos);
}

TEST(KernelsTest, BatchedMatmul) {
  Tensor a = make({2, 1, 2}, {1, 2, 3, 4});
  Tensor b = make({2, 2, 1}, {1, 1, 2, 0});
  EXPECT_EQ(data(kernels::matmul(a, b)), (std::vector<float>{3, 6}));
}

} // namespace

namespace {
// Rows with target -1 drop out of the cross entropy and of its gradient, and
// the mean is over the remaining rows (PyTorch's ignore_index).
TEST(KernelsTest, CrossEntropyIgnoresTargetMinusOne) {
  Tensor logits = make({3, 2}, {0, 0, 1, 3, 5, -5});
  Tensor some = Tensor::ints({-1, 1, -1});
  Tensor one = Tensor::ints({1});
  Tensor row = make({1, 2}, {1, 3});
  auto masked = kernels::loss(LossKind::CrossEntropy, logits, some, 1.0);
  auto single = kernels::loss(LossKind::CrossEntropy, row, one, 1.0);
  ASSERT_TRUE(bool(masked) && bool(single));
  EXPECT_NEAR(masked->data()[0], std::log(1 + std::exp(-2.0)), 1e-6);
  EXPECT_EQ(masked->data()[0], single->data()[0]);

  Tensor seed = make({}, {1});
  auto grad = kernels::lossGrad(LossKind::CrossEntropy, logits, some, seed, 0, 1.0);
  ASSERT_TRUE(bool(grad));
  std::vector<float> g = data(*grad);
  EXPECT_EQ(g[0], 0);
  EXPECT_EQ(g[1], 0);
  EXPECT_EQ(g[4], 0);
  EXPECT_EQ(g[5], 0);
  double p1 = 1 / (1 + std::exp(-2.0)); // softmax([1, 3])[1]
  EXPECT_NEAR(g[2], 1 - p1, 1e-6);
  EXPECT_NEAR(g[3], p1 - 1, 1e-6);

  auto none = kernels::loss(LossKind::CrossEntropy, logits, Tensor::ints({-1, -1, -1}),
                            1.0);
  ASSERT_TRUE(bool(none));
  EXPECT_EQ(none->data()[0], 0);
  auto bad = kernels::loss(LossKind::CrossEntropy, logits, Tensor::ints({-2, 0, 0}), 1.0);
  EXPECT_FALSE(bool(bad));
  llvm::consumeError(bad.takeError());
}
} // namespace
