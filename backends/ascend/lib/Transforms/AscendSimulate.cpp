//===- AscendSimulate.cpp - --attnedit-ascend-simulate ---------------------===//
//
// Runs each kernel in the functional simulator on seeded random inputs. A
// violation becomes an error at the op that caused it; a matmul kernel's
// output is compared with an f64 product of the same (rounded) inputs.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/Numerics.h"
#include "attnedit/Ascend/Passes.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/Simulator.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <random>

namespace mlir::attnedit::ascend {
#define GEN_PASS_DEF_ASCENDSIMULATEPASS
#include "attnedit/Ascend/Passes.h.inc"
} // namespace mlir::attnedit::ascend

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {

/// Max |C - A·B| and the tolerance: one rounding of the result to its
/// dtype plus f32 accumulation over K, relative to Σ|a||b| per element.
struct Comparison {
  double maxError = 0, worstRatio = 0;
};

int64_t tilingValue(DictionaryAttr tiling, StringRef key) {
  return cast<IntegerAttr>(tiling.get(key)).getInt();
}

/// The output widths of a matmul kernel: N, or each part's for fused
/// linears (ascend.n_parts), whose arguments are A, each part's W, each
/// part's C. None for a kernel whose tiling has no N (not a matmul).
SmallVector<int64_t> outputParts(KernelOp kernel, DictionaryAttr tiling) {
  if (auto attr = kernel->getAttrOfType<DenseI64ArrayAttr>("ascend.n_parts"))
    return SmallVector<int64_t>(attr.asArrayRef());
  if (auto n = tiling.getAs<IntegerAttr>("N"))
    return {n.getInt()};
  return {};
}

Comparison compareMatmul(KernelOp kernel, const Schedule &s, Simulator &sim,
                          DictionaryAttr tiling, ArrayRef<int64_t> parts) {
  int64_t batch = tilingValue(tiling, "batch"), m = tilingValue(tiling, "M"),
          k = tilingValue(tiling, "Ka");
  size_t g = parts.size();
  std::vector<float> a = sim.tensor(0);
  // A linear kernel's B is W [N, K] (marked by the lowering); a matmul's
  // is [batch?, K, N].
  bool transposed = kernel->hasAttr("ascend.transposed_b");
  double u = unitRoundoff(s.gm[1 + g].dtype) + k * unitRoundoff(DType::F32);
  Comparison cmp;
  for (size_t part = 0; part < g; ++part) {
    int64_t n = parts[part];
    std::vector<float> b = sim.tensor(1 + part), c = sim.tensor(1 + g + part);
    for (int64_t bi = 0; bi < batch; ++bi)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double ref = 0, mag = 0;
          for (int64_t q = 0; q < k; ++q) {
            double x = a[(bi * m + i) * k + q];
            double y = transposed ? b[j * k + q] : b[(bi * k + q) * n + j];
            ref += x * y;
            mag += std::abs(x * y);
          }
          double err = std::abs(c[(bi * m + i) * n + j] - ref);
          cmp.maxError = std::max(cmp.maxError, err);
          cmp.worstRatio = std::max(cmp.worstRatio, err / (2 * u * mag + 1e-30));
        }
  }
  return cmp;
}

struct AscendSimulatePass : mlir::attnedit::ascend::impl::AscendSimulatePassBase<AscendSimulatePass> {
  using Base::Base;

  void runOnOperation() override {
    for (KernelOp kernel : getOperation().getOps<KernelOp>()) {
      llvm::Expected<Schedule> s = buildSchedule(kernel);
      if (!s) {
        kernel.emitError() << llvm::toString(s.takeError());
        return signalPassFailure();
      }
      Simulator sim(*s);
      std::mt19937_64 rng(seed);
      std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
      for (size_t arg = 0; arg < s->gm.size(); ++arg) {
        std::vector<float> values(s->gm[arg].numel());
        for (float &v : values)
          v = dist(rng);
        sim.setTensor(arg, values);
      }
      if (llvm::Error e = sim.run()) {
        const Instr *at = sim.failedInstr();
        Operation *op = at && at->origin ? static_cast<Operation *>(const_cast<void *>(at->origin))
                                         : kernel.getOperation();
        op->emitError() << "simulator: " << llvm::toString(std::move(e));
        return signalPassFailure();
      }
      // A mix kernel's block is its cube core and vector cores.
      std::string blocks = std::to_string(s->blockDim) + " blocks";
      if (s->core == CoreKind::Mix)
        blocks += " (" + std::to_string(s->cores.size()) + " cores)";
      std::string line = llvm::formatv("ascend-simulate: @{0}: {1}, {2} instructions, no hazards",
                                       kernel.getSymName(), blocks, sim.executedInstructions())
                             .str();
      line += "; moved";
      for (const auto &[path, bytes] : sim.bytesPerPath())
        line += llvm::formatv(" {0} {1}", path, bytes).str();
      std::optional<DictionaryAttr> tiling = kernel.getTiling();
      SmallVector<int64_t> parts = tiling ? outputParts(kernel, *tiling) : SmallVector<int64_t>();
      if (checkReference && !parts.empty() && s->gm.size() == 1 + 2 * parts.size()) {
        Comparison cmp = compareMatmul(kernel, *s, sim, *tiling, parts);
        line += llvm::formatv("; max |C - A.B| {0:e2}, {1:f2} of the {2} tolerance", cmp.maxError,
                              cmp.worstRatio, dtypeName(s->gm.back().dtype))
                    .str();
        if (cmp.worstRatio > 1) {
          kernel.emitError() << "simulator: output differs from the f64 reference beyond the "
                             << dtypeName(s->gm.back().dtype) << " tolerance (" << line << ")";
          return signalPassFailure();
        }
      }
      llvm::outs() << line << "\n";
    }
  }
};

} // namespace
