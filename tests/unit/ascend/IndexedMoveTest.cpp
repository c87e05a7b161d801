//===- IndexedMoveTest.cpp - data-dependent addresses ----------------------===//
//
// Copies whose GM offset is an id the kernel reads on the device: the
// embedding's row gather and cache_write's in-place row scatter against
// direct loops; planted bugs (the barrier between the ids' load and the
// copies they address removed, an id outside the table); the index fields
// through the schedule flatbuffer.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/MoveKernel.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/ScheduleFlatbuffer.h"
#include "attnedit/Ascend/Simulator.h"
#include "AscendTestSupport.h"

#include "mlir/IR/BuiltinOps.h"

#include <gtest/gtest.h>

#include <random>

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;
using mlir::attnedit::ascend::test::runSchedule;

namespace {

std::unique_ptr<test::BuiltKernel> build(const IndexedMoveProblem &p) {
  return test::buildKernel("910b", [&](OpBuilder &b, const TargetDescription &t) {
    int64_t r = indexedMoveRowsPerTile(p, t);
    EXPECT_GE(r, 1);
    return buildIndexedMoveKernel(b, b.getUnknownLoc(), "move", p, r, t);
  });
}

std::vector<float> random(int64_t n, std::mt19937 &rng) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (float &x : v)
    x = u(rng);
  return v;
}

// The embedding: 12 ids (repeats included) into a 37 x 24 table.
IndexedMoveProblem gatherProblem() {
  return {IndexedMoveProblem::Kind::Gather, 12, 24, 37};
}
std::vector<float> ids() { return {3, 0, 36, 3, 17, 5, 9, 1, 30, 22, 8, 3}; }

} // namespace

TEST(IndexedMove, GatherMatchesRows) {
  IndexedMoveProblem p = gatherProblem();
  std::mt19937 rng(1);
  std::vector<float> table = random(p.tableRows * p.cols, rng), id = ids();
  auto built = build(p);
  auto got = runSchedule(*built->schedule, {id, table});
  ASSERT_TRUE(static_cast<bool>(got)) << llvm::toString(got.takeError());
  for (int64_t i = 0; i < p.rows; ++i)
    for (int64_t c = 0; c < p.cols; ++c)
      ASSERT_EQ((*got)[i * p.cols + c], table[int64_t(id[i]) * p.cols + c]) << i << "," << c;
}

// cache_write: 6 rows into a pool of 40 rows, in place: the other rows keep
// their values.
TEST(IndexedMove, ScatterUpdatesThePoolInPlace) {
  IndexedMoveProblem p{IndexedMoveProblem::Kind::Scatter, 6, 16, 40};
  std::mt19937 rng(2);
  std::vector<float> rows = random(p.rows * p.cols, rng), pool = random(p.tableRows * p.cols, rng);
  std::vector<float> slots{7, 8, 9, 31, 0, 39};
  auto built = build(p);
  auto got = runSchedule(*built->schedule, {slots, rows, pool});
  ASSERT_TRUE(static_cast<bool>(got)) << llvm::toString(got.takeError());
  std::vector<float> want = pool;
  for (int64_t i = 0; i < p.rows; ++i)
    std::copy_n(&rows[i * p.cols], p.cols, &want[int64_t(slots[i]) * p.cols]);
  EXPECT_EQ(*got, want);
}

// Planted bugs: the ids read before MTE2's load of them is ordered (the
// barrier removed), and an id outside the table.
TEST(IndexedMove, SimulatorCatchesUnorderedAndOutOfRangeIds) {
  IndexedMoveProblem p = gatherProblem();
  std::mt19937 rng(3);
  std::vector<float> table = random(p.tableRows * p.cols, rng);
  {
    auto built = build(p);
    int64_t removed = 0;
    for (CoreProgram &c : built->schedule->cores) {
      auto mte2Barrier = [](const Instr &i) {
        return i.kind == InstrKind::Barrier && i.pipe == Pipe::MTE2;
      };
      auto end = std::remove_if(c.instrs.begin(), c.instrs.end(), mte2Barrier);
      removed += c.instrs.end() - end;
      c.instrs.erase(end, c.instrs.end());
    }
    EXPECT_GT(removed, 0);
    auto got = runSchedule(*built->schedule, {ids(), table});
    ASSERT_FALSE(static_cast<bool>(got));
    std::string msg = llvm::toString(got.takeError());
    EXPECT_NE(msg.find("missing"), std::string::npos) << msg;
  }
  {
    auto built = build(p);
    std::vector<float> bad = ids();
    bad[5] = 37;
    auto got = runSchedule(*built->schedule, {bad, table});
    ASSERT_FALSE(static_cast<bool>(got));
    std::string msg = llvm::toString(got.takeError());
    EXPECT_NE(msg.find("index value 37 moves the GM window to 37 along dimension 0, outside [0, 37)"),
              std::string::npos)
        << msg;
  }
}

// The index window and dimension survive the flatbuffer: same output.
TEST(IndexedMove, FlatbufferKeepsTheIndex) {
  IndexedMoveProblem p = gatherProblem();
  auto built = build(p);
  auto back = deserializeSchedules(serializeSchedules({built->schedule.get()}));
  ASSERT_TRUE(static_cast<bool>(back)) << llvm::toString(back.takeError());
  int64_t indexed = 0;
  for (const CoreProgram &c : (*back)[0].cores)
    for (const Instr &i : c.instrs)
      indexed += i.indexDim == 0 && i.index.tile.space == Space::UB;
  EXPECT_EQ(indexed, p.rows);
  std::mt19937 rng(4);
  std::vector<float> table = random(p.tableRows * p.cols, rng);
  auto a = runSchedule(*built->schedule, {ids(), table});
  auto b = runSchedule((*back)[0], {ids(), table});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
}
