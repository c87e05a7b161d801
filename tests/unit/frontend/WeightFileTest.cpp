//===- WeightFileTest.cpp - safetensors round trip and dtype widening ------===//

#include "attnedit/Frontend/WeightFile.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using namespace mlir::attnedit;

namespace {

TEST(WeightFileTest, WriteThenReadRoundTripsEveryDtype) {
  llvm::SmallString<128> dir;
  ASSERT_FALSE(llvm::sys::fs::createUniqueDirectory("attnedit-st", dir));
  llvm::SmallString<128> path(dir);
  llvm::sys::path::append(path, "w.safetensors");

  std::vector<float> f32 = {1.5f, -2.25f, 3.0f};
  std::vector<uint16_t> bf16 = {0x3f80, 0xc000};   // 1.0, -2.0
  std::vector<uint16_t> f16 = {0x3c00, 0x0001};    // 1.0, smallest subnormal
  auto bytes = [](const auto &v) {
    return llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(v.data()),
                                   v.size() * sizeof(v[0]));
  };
  ASSERT_FALSE(writeSafetensors(path, {{"a", DType::F32, {3}, bytes(f32)},
                                       {"b", DType::BF16, {2, 1}, bytes(bf16)},
                                       {"c", DType::F16, {2}, bytes(f16)}}));
  auto file = WeightFile::openSafetensors(path);
  ASSERT_TRUE(static_cast<bool>(file)) << llvm::toString(file.takeError());
  const TensorInfo *b = (*file)->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->shape, (llvm::SmallVector<int64_t, 4>{2, 1}));
  float out[3];
  convertToF32(DType::BF16, (*file)->bytes(*b), out, 2);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  const TensorInfo *c = (*file)->find("c");
  convertToF32(DType::F16, (*file)->bytes(*c), out, 2);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], std::ldexp(1.0f, -24));
  const TensorInfo *a = (*file)->find("a");
  EXPECT_EQ(a->offset % 8, 0u) << "f32 data must be usable in place";
  convertToF32(DType::F32, (*file)->bytes(*a), out, 3);
  EXPECT_EQ(std::vector<float>(out, out + 3), f32);
  llvm::sys::fs::remove_directories(dir);
}

// A zero-element tensor may come with no data pointer (issue 8: memcpy from
// null is undefined even for zero bytes; UBSan reports it).
TEST(WeightFileTest, ZeroElementTensorsConvertWithoutTouchingData) {
  for (DType dtype : {DType::F32, DType::BF16, DType::F16})
    convertToF32(dtype, nullptr, nullptr, 0);
}

TEST(WeightFileTest, RoundingToHalfFormatsIsToNearestEven) {
  EXPECT_EQ(roundToBF16(1.0f + std::ldexp(1.0f, -8)), 1.0f); // tie -> even
  EXPECT_EQ(roundToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_EQ(roundToF16(1.0f + std::ldexp(1.0f, -11)), 1.0f);
  EXPECT_EQ(roundToF16(70000.0f), INFINITY);
}

} // namespace
