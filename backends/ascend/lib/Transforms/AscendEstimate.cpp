//===- AscendEstimate.cpp - --attnedit-ascend-estimate ---------------------===//
//
// Times every kernel with the cost model and records the estimate on it;
// optionally writes the report, a Chrome trace and the TCubeTiling JSON.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/AttentionKernel.h"
#include "attnedit/Ascend/CostModel.h"
#include "attnedit/Ascend/Passes.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/IR/AttnEditOps.h"

#include "mlir/IR/Builders.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

namespace mlir::attnedit::ascend {
#define GEN_PASS_DEF_ASCENDESTIMATEPASS
#include "attnedit/Ascend/Passes.h.inc"
} // namespace mlir::attnedit::ascend

using namespace mlir;
using namespace mlir::attnedit::ascend;
namespace json = llvm::json;

namespace {

LogicalResult writeJson(Operation *anchor, StringRef option, StringRef path, json::Value value) {
  if (path == "-") {
    llvm::outs() << llvm::formatv("{0:2}", value) << "\n";
    return success();
  }
  // Through a temporary: a failed write leaves no truncated report.
  if (llvm::Error e =
          attnedit::writeFileAtomically(path, llvm::formatv("{0:2}\n", value).str()))
    return anchor->emitError() << "attnedit-ascend-estimate: " << option << "="
                               << llvm::toString(std::move(e));
  return success();
}

/// The lowerings take static shapes only, and an imported model's token
/// dimension is dynamic: its ops would stay unlowered without a word, and the
/// report and the emitted kernels be empty. A warning names them; with no
/// kernel at all it is an error.
static LogicalResult checkStaticShapes(ModuleOp module) {
  auto dynamic = [](Type t) {
    auto shaped = dyn_cast<ShapedType>(t);
    return shaped && !shaped.hasStaticShape();
  };
  int64_t count = 0;
  Operation *first = nullptr;
  module.walk([&](Operation *op) {
    if (isa_and_nonnull<attnedit::AttnEditDialect>(op->getDialect()) &&
        (llvm::any_of(op->getOperandTypes(), dynamic) ||
         llvm::any_of(op->getResultTypes(), dynamic))) {
      first = first ? first : op;
      ++count;
    }
  });
  if (!count)
    return success();
  bool none = module.getOps<KernelOp>().empty();
  InFlightDiagnostic diag = none ? first->emitError() : first->emitWarning();
  diag << count << " attnedit op" << (count == 1 ? " has" : "s have")
       << " dynamic shapes, which the Ascend lowering does not take, so "
       << (none ? "no kernel was made" : "they stay unlowered")
       << ": give the pipeline a token count (tokens=N), or run --attnedit-static-tokens="
          "tokens=N before the lowerings";
  return success(!none);
}

/// attnedit ops outside kernels by name (parameters aside): they run on the
/// host and are not timed, so a report's kernel total is not the model's.
static json::Object hostOps(ModuleOp module) {
  std::map<std::string, int64_t> counts;
  module.walk([&](Operation *op) {
    if (isa_and_nonnull<attnedit::AttnEditDialect>(op->getDialect()) &&
        !isa<attnedit::ParamOp>(op) && !op->getParentOfType<KernelOp>())
      ++counts[op->getName().getStringRef().str()];
  });
  json::Object out;
  for (auto &[name, count] : counts)
    out[name] = count;
  return out;
}

/// attnedit ops that compute outside every kernel (a loss, which no
/// lowering takes, or any op when the lowerings did not run) are work the
/// report does not time, while its host_ops reads as data movement: a
/// warning names them, and with no kernel at all, an error. Dynamic ops
/// are checkStaticShapes'.
static LogicalResult checkHostCompute(ModuleOp module) {
  auto dynamic = [](Type t) {
    auto shaped = dyn_cast<ShapedType>(t);
    return shaped && !shaped.hasStaticShape();
  };
  std::map<std::string, int64_t> counts;
  int64_t count = 0;
  Operation *first = nullptr;
  module.walk([&](Operation *op) {
    if (!isa_and_nonnull<attnedit::AttnEditDialect>(op->getDialect()) ||
        op->getParentOfType<KernelOp>() ||
        isa<attnedit::ParamOp, attnedit::EmbeddingOp, attnedit::ReshapeOp,
            attnedit::TransposeOp, attnedit::SliceOp, attnedit::ConcatOp,
            attnedit::BroadcastOp, attnedit::RepeatKvOp, attnedit::PadOp>(op) ||
        llvm::any_of(op->getOperandTypes(), dynamic) ||
        llvm::any_of(op->getResultTypes(), dynamic))
      return;
    first = first ? first : op;
    ++count;
    ++counts[op->getName().getStringRef().str()];
  });
  if (!count)
    return success();
  std::string names;
  for (auto &[name, n] : counts)
    names += (names.empty() ? "" : ", ") + name + (n > 1 ? " x" + std::to_string(n) : "");
  bool none = module.getOps<KernelOp>().empty();
  InFlightDiagnostic diag = none ? first->emitError() : first->emitWarning();
  diag << count << " attnedit op" << (count == 1 ? " computes" : "s compute")
       << " outside every kernel (" << names << "), not lowered: "
       << (none ? "there is no kernel to time" : "they run on the host, untimed by the report");
  return success(!none);
}

struct AscendEstimatePass : mlir::attnedit::ascend::impl::AscendEstimatePassBase<AscendEstimatePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(checkStaticShapes(module)) || failed(checkHostCompute(module)))
      return signalPassFailure();
    json::Array kernels, tilings, traces;
    Builder b(&getContext());
    for (KernelOp kernel : llvm::make_early_inc_range(module.getOps<KernelOp>())) {
      // A mix kernel's blocks each run a long task loop: sampled blocks
      // stand for them (sampleBlocks), the slowest scaled to all.
      bool sampled = kernel.getCore() == CoreKind::Mix && kernel.getBlockDim() > 4;
      llvm::Expected<Schedule> s =
          buildSchedule(kernel, sampled ? sampleBlocks(kernel.getBlockDim()) : SmallVector<int64_t>());
      if (!s) {
        kernel.emitError() << llvm::toString(s.takeError());
        return signalPassFailure();
      }
      llvm::Expected<KernelEstimate> e = estimate(*s, {/*trace=*/!trace.empty(), sampled});
      if (!e) {
        kernel.emitError() << llvm::toString(e.takeError());
        return signalPassFailure();
      }
      SmallVector<NamedAttribute> util;
      for (int p = 0; p < kNumPipes; ++p)
        if (e->usage[p].instrs)
          util.push_back(b.getNamedAttr(stringifyPipe((Pipe)p), b.getF64FloatAttr(e->utilisation[p])));
      kernel->setAttr("ascend.estimate",
                      b.getDictionaryAttr({
                          b.getNamedAttr("seconds", b.getF64FloatAttr(e->seconds)),
                          b.getNamedAttr("cycles", b.getF64FloatAttr(e->cycles)),
                          b.getNamedAttr("bound", b.getStringAttr(stringifyPipe(e->bound))),
                          b.getNamedAttr("utilisation", b.getDictionaryAttr(util)),
                          b.getNamedAttr("roofline_seconds", b.getF64FloatAttr(e->rooflineSeconds)),
                          b.getNamedAttr("cube_peak_fraction", b.getF64FloatAttr(e->cubePeakFraction)),
                      }));
      json::Object entry = e->toJSON();
      entry["target"] = kernel.getTarget(); // a built-in's name or the file timed with
      if (sensitivity) {
        llvm::Expected<std::vector<Sensitivity>> rows = mlir::attnedit::ascend::sensitivity(*s, *e);
        if (!rows) {
          kernel.emitError() << llvm::toString(rows.takeError());
          return signalPassFailure();
        }
        json::Array list;
        for (const Sensitivity &r : *rows)
          list.push_back(json::Object{{"number", r.number}, {"x0.5", r.low}, {"x1.5", r.high}});
        entry["sensitivity"] = std::move(list);
      }
      kernels.push_back(std::move(entry));
      if (!trace.empty())
        traces.push_back(chromeTrace(*s, *e));
      if (std::optional<DictionaryAttr> t = kernel.getTiling()) {
        json::Object fields;
        for (NamedAttribute f : *t)
          if (auto i = dyn_cast<IntegerAttr>(f.getValue()))
            fields[f.getName().strref()] = i.getInt();
        json::Object entry{{"kernel", kernel.getSymName()},
                           {"target", kernel.getTarget()},
                           {"TCubeTiling", std::move(fields)}};
        // Fused linears (not a TCubeTiling field): N's parts, each its own
        // weight and output.
        if (auto parts = kernel->getAttrOfType<DenseI64ArrayAttr>("ascend.n_parts"))
          entry["n_parts"] = json::Array(parts.asArrayRef());
        tilings.push_back(std::move(entry));
      }
    }
    if (!report.empty() &&
        failed(writeJson(module, "report", report,
                         json::Object{{"kernels", std::move(kernels)},
                                      {"host_ops", hostOps(module)}})))
      return signalPassFailure();
    if (!tiling.empty() &&
        failed(writeJson(module, "tiling", tiling, json::Object{{"tilings", std::move(tilings)}})))
      return signalPassFailure();
    if (!trace.empty()) {
      // One trace file: kernels one after another on disjoint process ids.
      json::Array events;
      int64_t pidBase = 0;
      for (json::Value &t : traces) {
        int64_t maxPid = 0;
        for (json::Value &ev : *t.getAsObject()->getArray("traceEvents")) {
          json::Object *o = ev.getAsObject();
          int64_t pid = *o->getInteger("pid");
          maxPid = std::max(maxPid, pid);
          (*o)["pid"] = pidBase + pid;
          events.push_back(std::move(ev));
        }
        pidBase += maxPid + 1;
      }
      if (failed(writeJson(module, "trace", trace,
                           json::Object{{"traceEvents", std::move(events)},
                                        {"displayTimeUnit", "ns"}})))
        return signalPassFailure();
    }
  }
};

} // namespace
