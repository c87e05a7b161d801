//===- KvReport.cpp - --attnedit-kv-report ---------------------------------===//
//
// Asks every attention-like op what decoding caches (AttentionLikeOpInterface)
// and adds it up, so the report knows no attention variant by name.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/EditPlan.h"
#include "attnedit/Passes/Passes.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::attnedit {
#define GEN_PASS_DEF_KVREPORTPASS
#include "attnedit/Passes/Passes.h.inc"
} // namespace mlir::attnedit

using namespace mlir;
using namespace mlir::attnedit;

namespace {

struct LayerCache {
  std::string kind;
  int64_t valuesPerToken, window, cachedTokens, bytesPerToken, bytesAtContext;
};

struct KvReportPass : attnedit::impl::KvReportPassBase<KvReportPass> {
  using Base::Base;

  void runOnOperation() override {
    int64_t bytesPerValue = llvm::StringSwitch<int64_t>(dtype)
                                .Case("f32", 4)
                                .Cases("f16", "bf16", 2)
                                .Case("f8", 1)
                                .Default(0);
    // 2^40 tokens: past any context, and the byte counts stay within int64.
    if (!bytesPerValue || context < 1 || context > (int64_t(1) << 40)) {
      getOperation().emitError() << "attnedit-kv-report: dtype must be f32, f16, bf16 or f8 "
                                    "and context in [1, 2^40] (got dtype '"
                                 << dtype << "', context " << (int64_t)context << ")";
      return signalPassFailure();
    }
    std::vector<LayerCache> layers;
    layersOf(getOperation())->walk([&](AttentionLikeOpInterface op) {
      LayerCache l;
      l.kind = op.getAttentionKind().str();
      l.valuesPerToken = op.getKvValuesPerToken();
      l.window = op.getKvWindow();
      l.cachedTokens = l.window ? std::min<int64_t>(context, l.window) : context;
      l.bytesPerToken = l.valuesPerToken * bytesPerValue;
      l.bytesAtContext = l.bytesPerToken * l.cachedTokens;
      layers.push_back(l);
    });
    if (layers.empty())
      getOperation().emitWarning("attnedit-kv-report: no attention ops (run "
                                 "--attnedit-raise-attention first on an imported model)");
    // stderr: stdout carries the module, which a pipe passes on.
    printTable(layers, llvm::errs());
    llvm::json::Value json = toJson(layers, bytesPerValue);
    // A planned edit says which kind each layer got and why; report it
    // beside the bytes it bought.
    if (auto plan = getOperation()->getAttrOfType<StringAttr>(kEditPlanAttr)) {
      llvm::errs() << "edit plan: " << plan.getValue() << "\n";
      if (auto parsed = llvm::json::parse(plan.getValue()))
        json.getAsObject()->try_emplace("plan", std::move(*parsed));
      else
        llvm::consumeError(parsed.takeError());
    }
    llvm::errs() << llvm::formatv("{0:2}", json) << "\n";
    if (jsonOut.empty())
      return;
    if (llvm::Error e =
            writeFileAtomically(jsonOut, llvm::formatv("{0:2}\n", json).str())) {
      getOperation().emitError() << "attnedit-kv-report: " << llvm::toString(std::move(e));
      return signalPassFailure();
    }
  }

  void printTable(llvm::ArrayRef<LayerCache> layers, llvm::raw_ostream &os) {
    os << llvm::formatv("KV cache at context {0}, {1}\n", (int64_t)context, dtype);
    os << llvm::formatv("{0,5} {1,-5} {2,14} {3,8} {4,12} {5,16}\n", "layer", "kind",
                        "values/token", "window", "bytes/token", "bytes@context");
    int64_t perToken = 0, atContext = 0;
    for (auto [i, l] : llvm::enumerate(layers)) {
      os << llvm::formatv("{0,5} {1,-5} {2,14} {3,8} {4,12} {5,16}\n", i, l.kind,
                          l.valuesPerToken, l.window ? std::to_string(l.window) : "-",
                          l.bytesPerToken, l.bytesAtContext);
      perToken += l.bytesPerToken;
      atContext += l.bytesAtContext;
    }
    os << llvm::formatv("{0,5} {1,-5} {2,14} {3,8} {4,12} {5,16}\n", "total", "", "", "",
                        perToken, atContext);
  }

  llvm::json::Value toJson(llvm::ArrayRef<LayerCache> layers, int64_t bytesPerValue) {
    llvm::json::Array rows;
    int64_t perToken = 0, atContext = 0;
    for (auto [i, l] : llvm::enumerate(layers)) {
      rows.push_back(llvm::json::Object{{"layer", (int64_t)i},
                                        {"kind", l.kind},
                                        {"values_per_token", l.valuesPerToken},
                                        {"window", l.window},
                                        {"cached_tokens", l.cachedTokens},
                                        {"bytes_per_token", l.bytesPerToken},
                                        {"bytes_at_context", l.bytesAtContext}});
      perToken += l.bytesPerToken;
      atContext += l.bytesAtContext;
    }
    return llvm::json::Object{
        {"context", (int64_t)context},
        {"dtype", dtype},
        {"bytes_per_value", bytesPerValue},
        {"layers", std::move(rows)},
        {"total", llvm::json::Object{{"bytes_per_token", perToken},
                                     {"bytes_at_context", atContext}}}};
  }
};

} // namespace
