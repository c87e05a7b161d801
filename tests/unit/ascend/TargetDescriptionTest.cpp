//===- TargetDescriptionTest.cpp - JSON target descriptions ---------------===//

#include "attnedit/Ascend/TargetDescription.h"
#include "attnedit/Ascend/TileLayout.h"

#include "llvm/Support/JSON.h"

#include <gtest/gtest.h>

using namespace mlir::attnedit::ascend;

namespace {

std::shared_ptr<const TargetDescription> builtin(llvm::StringRef name) {
  auto t = TargetDescription::load(name);
  EXPECT_TRUE(static_cast<bool>(t)) << (t ? "" : llvm::toString(t.takeError()));
  return t ? *t : nullptr;
}

// Tests the 910B figures the research note sources (S5, S9, S56, S57).
TEST(TargetDescription, Builtin910B) {
  auto t = builtin("910b");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->cubeCores, 24);
  EXPECT_EQ(t->vectorCoresPerCube, 2);
  EXPECT_TRUE(t->separated);
  EXPECT_EQ(t->buffer(Space::L1).bytes, 512 * 1024);
  EXPECT_EQ(t->buffer(Space::L0A).bytes, 64 * 1024);
  EXPECT_EQ(t->buffer(Space::L0C).bytes, 128 * 1024);
  EXPECT_EQ(t->buffer(Space::UB).bytes, 192 * 1024);
  EXPECT_EQ(t->buffer(Space::L0C).align, 512);
  EXPECT_EQ(t->cubeMacsPerCycle(DType::BF16), 4096);
  // 24 cores x 8192 flop/cycle x 1.8 GHz = 353.9 TFLOPS (research table 1.3).
  EXPECT_NEAR(t->cubePeakFlops(DType::F16) / 1e12, 353.9, 0.1);
  const PathSpec *fix = t->findPath(Space::L0C, Space::GM);
  ASSERT_TRUE(fix);
  EXPECT_EQ(fix->pipe, Pipe::FIX);
  EXPECT_EQ(t->findPath(Space::L0C, Space::UB), nullptr);
  EXPECT_NE(t->sources.lookup("numbers.cube_cores").find("S5"), std::string::npos);
}

// Tests that the 910A description differs where the hardware does: coupled
// cores, no FixPipe (L0C -> UB on V), four event ids, larger L1/L0C.
TEST(TargetDescription, Builtin910A) {
  auto t = builtin("910a");
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->separated);
  EXPECT_EQ(t->cubeCores, 32);
  EXPECT_EQ(t->eventsPerPipePair, 4);
  EXPECT_EQ(t->findPath(Space::L0C, Space::GM), nullptr);
  ASSERT_TRUE(t->findPath(Space::L0C, Space::UB));
  EXPECT_EQ(t->findPath(Space::L0C, Space::UB)->pipe, Pipe::V);
  EXPECT_GT(t->buffer(Space::L1).bytes, builtin("910b")->buffer(Space::L1).bytes);
  EXPECT_TRUE(t->pipeAvailable(CoreKind::Coupled, Pipe::V));
  EXPECT_FALSE(builtin("910b")->pipeAvailable(CoreKind::AIC, Pipe::V));
}

// Tests that a number without its source is refused, naming the field.
TEST(TargetDescription, NumberNeedsSource) {
  llvm::StringRef json = R"({"name": "x", "description": "d", "arch": "a", "separated": true,
    "numbers": {"cube_cores": {"value": 4}}})";
  auto parsed = TargetDescription::parse(json, "x.json");
  ASSERT_FALSE(static_cast<bool>(parsed));
  EXPECT_EQ(llvm::toString(parsed.takeError()),
            "x.json: number 'cube_cores' has no \"source\"");
}

TEST(TargetDescription, BadInputs) {
  auto bad = TargetDescription::parse("{", "broken.json");
  ASSERT_FALSE(static_cast<bool>(bad));
  EXPECT_NE(llvm::toString(bad.takeError()).find("broken.json: invalid JSON"), std::string::npos);
  auto missing = TargetDescription::load("/nonexistent/t.json");
  ASSERT_FALSE(static_cast<bool>(missing));
  EXPECT_NE(llvm::toString(missing.takeError()).find("cannot read target description"),
            std::string::npos);
  auto unknown = TargetDescription::load("310p");
  ASSERT_FALSE(static_cast<bool>(unknown));
  EXPECT_NE(llvm::toString(unknown.takeError()).find("unknown Ascend target '310p'"),
            std::string::npos);
}

// Tests the fractal padding of S8: a 16 x C0 fractal is 512 bytes, C0 = 16
// for bf16 and 8 for f32; ND UB rows pad to 32 bytes.
TEST(TileLayout, PaddingAndOffsets) {
  EXPECT_EQ(tileBytes(Layout::NZ, 16, 16, 2, false), 512);
  EXPECT_EQ(tileBytes(Layout::NZ, 17, 16, 2, false), 1024);
  EXPECT_EQ(tileBytes(Layout::NZ, 16, 8, 4, false), 512);
  EXPECT_EQ(tileBytes(Layout::ND, 3, 5, 4, false), 3 * 8 * 4);
  EXPECT_EQ(tileBytes(Layout::ND, 3, 5, 4, true), 60);
  // NZ: the fractal grid is column-major, so (0, 16) starts the second
  // fractal column after all rows of the first.
  EXPECT_EQ(elementIndex(Layout::NZ, 32, 32, 2, false, 0, 16), 32 * 16);
  EXPECT_EQ(elementIndex(Layout::NZ, 32, 32, 2, false, 1, 0), 16);
  // ZZ: the grid is row-major, so (0, 16) is the second fractal.
  EXPECT_EQ(elementIndex(Layout::ZZ, 32, 32, 2, false, 0, 16), 256);
  // ZN: inside a fractal the row (K) index is innermost.
  EXPECT_EQ(elementIndex(Layout::ZN, 32, 32, 2, false, 1, 0), 1);
  EXPECT_EQ(elementIndex(Layout::ZN, 32, 32, 2, false, 0, 1), 16);
  // Every element of a padded tile has a distinct index inside the tile.
  for (Layout l : {Layout::ND, Layout::NZ, Layout::ZZ, Layout::ZN}) {
    std::vector<bool> seen(tileBytes(l, 20, 24, 2, false) / 2);
    for (int r = 0; r < 20; ++r)
      for (int c = 0; c < 24; ++c) {
        int64_t i = elementIndex(l, 20, 24, 2, false, r, c);
        ASSERT_LT(i, (int64_t)seen.size());
        EXPECT_FALSE(seen[i]);
        seen[i] = true;
      }
  }
}

} // namespace
