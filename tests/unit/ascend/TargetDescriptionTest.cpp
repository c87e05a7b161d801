//===- TargetDescriptionTest.cpp - JSON target descriptions ---------------===//

#include "attnedit/Ascend/CostModel.h"
#include "attnedit/Ascend/MatmulKernel.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/TargetDescription.h"
#include "attnedit/Ascend/TileLayout.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

using namespace mlir;
using namespace mlir::attnedit::ascend;
namespace json = llvm::json;

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

/// The built-in 910B description as JSON, with `edit` applied.
std::string edited910b(llvm::function_ref<void(json::Object &)> edit) {
  auto file = llvm::MemoryBuffer::getFile(ATTNEDIT_SOURCE_DIR "/backends/ascend/targets/910b.json");
  EXPECT_TRUE(static_cast<bool>(file));
  if (!file)
    return "";
  llvm::Expected<json::Value> v = json::parse((*file)->getBuffer());
  EXPECT_TRUE(static_cast<bool>(v));
  if (!v)
    return llvm::consumeError(v.takeError()), "";
  edit(*v->getAsObject());
  return llvm::formatv("{0}", *v).str();
}

void setNumber(json::Object &root, llvm::StringRef key, double value) {
  (*root.getObject("numbers")->getObject(key))["value"] = value;
}

/// The error parsing the edited 910B description gives ("" if none).
std::string parseError(llvm::function_ref<void(json::Object &)> edit) {
  auto parsed = TargetDescription::parse(edited910b(edit), "t.json");
  return parsed ? "" : llvm::toString(parsed.takeError());
}

// Tests that numbers a kernel cannot be planned or timed with are refused
// when the file is read, naming the file and the field: an alignment that
// is no power of two (slots planned at multiples of it failed the kernel
// verifier later), a clock or HBM rate of 0 or less (zero or infinite times),
// negative figures, fractional counts.
TEST(TargetDescription, RefusesUnusableNumbers) {
  EXPECT_EQ(parseError([](json::Object &) {}), "");
  EXPECT_EQ(parseError([](json::Object &r) {
              (*r.getObject("buffers")->getObject("ub"))["align"] = 3;
            }),
            "t.json: buffer 'ub' \"align\" must be a power of two, got 3");
  EXPECT_EQ(parseError([](json::Object &r) { setNumber(r, "freq_hz", 0); }),
            "t.json: number 'freq_hz' must be positive, got 0");
  EXPECT_EQ(parseError([](json::Object &r) { setNumber(r, "hbm_bytes_per_s", -1.5e12); }),
            "t.json: number 'hbm_bytes_per_s' must be 0 or more, got -1.5e+12");
  EXPECT_EQ(parseError([](json::Object &r) { setNumber(r, "hbm_bytes_per_s", 0); }),
            "t.json: number 'hbm_bytes_per_s' must be positive, got 0");
  // Negative latencies, seconds and fractions gave negative kernel times; a
  // fractional count was truncated.
  EXPECT_EQ(parseError([](json::Object &r) { setNumber(r, "launch_seconds", -1); }),
            "t.json: number 'launch_seconds' must be 0 or more, got -1");
  EXPECT_EQ(parseError([](json::Object &r) { setNumber(r, "l2_reuse_fraction", 3); }),
            "t.json: number 'l2_reuse_fraction' must be at most 1, got 3");
  EXPECT_EQ(parseError([](json::Object &r) { setNumber(r, "cube_cores", 2.5); }),
            "t.json: number 'cube_cores' must be a whole number, got 2.5");
  EXPECT_EQ(parseError([](json::Object &r) { setNumber(r, "cube_cores", 0.5); }),
            "t.json: number 'cube_cores' must be a whole number, got 0.5");
  // No cross-core flags failed in a transpose's kernel verifier; a UB reserve
  // past the UB left every op "unfit" and modelled as free.
  EXPECT_EQ(parseError([](json::Object &r) { setNumber(r, "cross_core_flags", 0); }),
            "t.json: number 'cross_core_flags' must be positive, got 0");
  EXPECT_EQ(parseError([](json::Object &r) { setNumber(r, "ub_reserve_bytes", 1e9); }),
            "t.json: number 'ub_reserve_bytes' (1000000000) leaves nothing of buffer 'ub' "
            "(196608 bytes)");
  EXPECT_EQ(parseError([](json::Object &r) {
              (*r.getObject("buffers")->getObject("ub"))["bytes"] = 1024;
            }),
            "t.json: number 'ub_reserve_bytes' (8192) leaves nothing of buffer 'ub' "
            "(1024 bytes)");
  // A misaligned-transfer factor of 0 gave infinite times (a report of "inf", not JSON); a
  // buffer the simulator cannot allocate ended in bad_alloc.
  EXPECT_EQ(parseError([](json::Object &r) { setNumber(r, "gm_misaligned_factor", 0); }),
            "t.json: number 'gm_misaligned_factor' must be positive, got 0");
  EXPECT_EQ(parseError([](json::Object &r) {
              (*r.getObject("buffers")->getObject("l0c"))["bytes"] = int64_t(1) << 40;
            }),
            "t.json: buffer 'l0c' \"bytes\" is 1099511627776, more than the 1073741824 an "
            "on-chip memory can be here");
}

// Tests that a field the reader does not know is refused, naming it: a
// misspelt optional field (a path's "latnecy") read as 0 without a word, and
// "hbm_bytes" sat unread beside the gm buffer's bytes.
TEST(TargetDescription, RefusesUnknownFields) {
  EXPECT_EQ(parseError([](json::Object &r) {
              (*r.getObject("numbers"))["hbm_bytes"] =
                  json::Object{{"value", 1}, {"source", "x"}};
            }),
            "t.json: unknown number 'hbm_bytes': a misspelt name would otherwise be ignored");
  EXPECT_EQ(parseError([](json::Object &r) { r["version"] = 2; }),
            "t.json: unknown field 'version' in the top level (known: name, description, "
            "arch, separated, numbers, buffers, paths)");
  EXPECT_EQ(parseError([](json::Object &r) {
              (*r.getObject("numbers")->getObject("freq_hz"))["unit"] = "Hz";
            }),
            "t.json: unknown field 'unit' in number 'freq_hz' (known: value, source)");
  EXPECT_EQ(parseError([](json::Object &r) {
              (*r.getObject("buffers"))["l2"] = json::Object{{"bytes", 1}};
            }),
            "t.json: unknown buffer 'l2' (gm, l1, l0a, l0b, l0c, ub)");
  EXPECT_EQ(parseError([](json::Object &r) {
              (*r.getObject("buffers")->getObject("ub"))["banks"] = 16;
            }),
            "t.json: unknown field 'banks' in buffer 'ub' (known: bytes, align, source)");
  auto path = [](json::Object &r) { return (*r.getArray("paths"))[2].getAsObject(); };
  EXPECT_EQ(parseError([&](json::Object &r) { (*path(r))["latnecy"] = 28; }),
            "t.json: unknown field 'latnecy' in a path (known: src, dst, pipe, "
            "bytes_per_cycle, elements_per_cycle, latency, source)");
  EXPECT_EQ(parseError([&](json::Object &r) { (*path(r))["latency"] = "28"; }),
            "t.json: path l1->l0a: 'latency' must be a whole number of 0 or more");
  EXPECT_EQ(parseError([&](json::Object &r) { (*path(r))["bytes_per_cycle"] = -256; }),
            "t.json: path l1->l0a: 'bytes_per_cycle' must be a number of 0 or more");
}

/// Writes `text` to a temporary .json file; returns its path.
std::string writeTarget(const std::string &text) {
  llvm::SmallString<128> path;
  EXPECT_FALSE(llvm::sys::fs::createTemporaryFile("ascend-target", "json", path));
  std::error_code ec;
  llvm::raw_fd_ostream(path, ec) << text;
  EXPECT_FALSE(ec);
  return path.str().str();
}

/// Seconds of one 1024^3 bf16 matmul built for `target`, after checking that
/// the kernel names it, verifies against it and is scheduled on it.
double matmulSeconds(llvm::StringRef target) {
  auto t = TargetDescription::load(target);
  EXPECT_TRUE(static_cast<bool>(t)) << (t ? "" : llvm::toString(t.takeError()));
  if (!t)
    return 0;
  MLIRContext context;
  context.loadDialect<AscendDialect>();
  OpBuilder b(&context);
  OwningOpRef<ModuleOp> module = ModuleOp::create(b.getUnknownLoc());
  b.setInsertionPointToEnd(module->getBody());
  MatmulProblem p{1, 1024, 1024, 1024, true, DType::BF16};
  KernelOp kernel = buildMatmulKernel(b, b.getUnknownLoc(), "mm", p, {128, 128, 64, 2}, **t);
  EXPECT_EQ(kernel.getTarget(), target);
  EXPECT_TRUE(succeeded(verify(kernel)));
  auto s = buildSchedule(kernel);
  EXPECT_TRUE(static_cast<bool>(s)) << (s ? "" : llvm::toString(s.takeError()));
  if (!s)
    return 0;
  EXPECT_EQ(s->target.get(), t->get());
  auto e = estimate(*s);
  EXPECT_TRUE(static_cast<bool>(e));
  return e ? e->seconds : 0;
}

// Tests that a description read from a file is the one every stage uses,
// not the built-in of the same "name": kernels carry the file's path, so
// the verifier, the schedule (simulator) and the cost model load the file.
// With a 10x slower clock and a 100x slower HBM the matmul (6 us of Cube
// work besides a 5 us launch on the 910B) takes over twice as long; a
// file with a new name verifies (it failed "unknown Ascend target 'slow'").
TEST(TargetDescription, FileTargetDrivesEveryStage) {
  auto slower = [](json::Object &r) {
    setNumber(r, "freq_hz", 1.8e8);
    setNumber(r, "hbm_bytes_per_s", 1.5e10);
  };
  std::string sameName = writeTarget(edited910b(slower));
  std::string newName = writeTarget(edited910b([&](json::Object &r) {
    slower(r);
    r["name"] = "slow";
  }));
  double builtin = matmulSeconds("910b");
  EXPECT_GT(matmulSeconds(sameName), 2 * builtin);
  EXPECT_GT(matmulSeconds(newName), 2 * builtin);
  EXPECT_EQ((*TargetDescription::load(newName))->label(), "slow from " + newName);
  EXPECT_EQ((*TargetDescription::load("910b"))->label(), "910b");
  llvm::sys::fs::remove(sameName);
  llvm::sys::fs::remove(newName);
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
