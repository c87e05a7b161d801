//===- PlanEdits.cpp - per-layer edits chosen under a KV budget ------------===//
//
// --attnedit-plan-edits: the choice half of planning. Measuring damage runs
// the model on calibration data (runtime/, `attnedit-run plan-edits`); the
// choice under a budget, and the edit that applies it, are compiler work and
// live here, so one measurement serves every budget and context.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/EditPlan.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>

namespace mlir::attnedit {
#define GEN_PASS_DEF_PLANEDITSPASS
#include "attnedit/Passes/Passes.h.inc"
} // namespace mlir::attnedit

using namespace mlir;
using namespace mlir::attnedit;
namespace json = llvm::json;

namespace {

struct PlanEditsPass : attnedit::impl::PlanEditsPassBase<PlanEditsPass> {
  using Base::Base;

  LogicalResult fail(const llvm::Twine &message) {
    getOperation().emitError("attnedit-plan-edits: " + message);
    return failure();
  }

  /// bf16 bytes per token of a layer caching `valuesPerToken` values for
  /// min(window, context) tokens (window 0: all of them), amortised.
  double bytesPerToken(int64_t valuesPerToken, int64_t window) const {
    int64_t cached = window ? std::min<int64_t>(window, context) : context;
    return 2.0 * valuesPerToken * cached / context;
  }

  /// Every layer's choices: keep, then each candidate `calibration` measured.
  LogicalResult readChoices(llvm::MutableArrayRef<AttentionLikeOpInterface> layers,
                            std::vector<std::vector<PlanChoice>> &choices) {
    auto buffer = readInputFile(calibration);
    if (!buffer)
      return fail(calibration + ": cannot read: " + buffer.getError().message());
    auto parsed = parseJson((*buffer)->getBuffer());
    if (!parsed)
      return fail(calibration + ": is not JSON: " + llvm::toString(parsed.takeError()));
    json::Object *root = parsed->getAsObject();
    json::Array *candidates = root ? root->getArray("candidates") : nullptr;
    if (!candidates)
      return fail(calibration + ": needs a \"candidates\" array (the measurement attnedit-run "
                                "plan-edits writes)");
    for (AttentionLikeOpInterface op : layers)
      choices.push_back({{LayerEdit{}, bytesPerToken(op.getKvValuesPerToken(), 0), 0.0}});
    for (auto [i, row] : llvm::enumerate(*candidates)) {
      std::string where = llvm::formatv("{0}: candidates[{1}]", calibration, i).str();
      json::Object *o = row.getAsObject();
      std::optional<int64_t> layer = o ? o->getInteger("layer") : std::nullopt;
      std::optional<double> kl = o ? o->getNumber("kl") : std::nullopt;
      const json::Value *edit = o ? o->get("edit") : nullptr;
      if (!layer || !kl || !edit)
        return fail(where + ": needs \"layer\", \"edit\" and \"kl\"");
      if (*layer < 0 || *layer >= (int64_t)layers.size())
        return fail(llvm::formatv("{0}: layer {1} is not one of the module's {2} attention "
                                  "layers",
                                  where, *layer, layers.size()));
      if (!(*kl >= 0))
        return fail(where + ": \"kl\" must be >= 0");
      auto parsedEdit = parseEditPlan(
          llvm::formatv("{{\"layers\": [{0}]}", *edit).str(), where + ".edit");
      if (!parsedEdit)
        return fail(llvm::toString(parsedEdit.takeError()));
      LayerEdit e = parsedEdit->layers.front();
      if (e.kind == LayerEdit::Kind::Mla && e.qkRopeHeadDim == 0)
        return fail(where + ".edit: needs \"qk_rope_head_dim\"");
      int64_t values = layers[*layer].getKvValuesPerToken();
      double bytes = e.kind == LayerEdit::Kind::Swa   ? bytesPerToken(values, e.window)
                     : e.kind == LayerEdit::Kind::Mla ? bytesPerToken(e.kvLoraRank + e.qkRopeHeadDim, 0)
                                                      : bytesPerToken(values, 0);
      // Two damages for one candidate: which was measured on this model?
      if (llvm::any_of(choices[*layer], [&](const PlanChoice &c) {
            return c.edit.toJson() == e.toJson();
          }))
        return fail(llvm::formatv("{0}: layer {1} has this edit twice", where, *layer).str());
      choices[*layer].push_back({e, bytes, *kl});
    }
    // A layer with none could only be kept: the budget would look too small.
    std::string unmeasured;
    for (size_t l = 0; l < choices.size(); ++l)
      if (choices[l].size() == 1)
        unmeasured += (unmeasured.empty() ? "" : ", ") + std::to_string(l);
    if (!unmeasured.empty())
      return fail(calibration + ": no candidates for layer(s) " + unmeasured +
                  " (a measurement of another model, or cut short)");
    return success();
  }

  LogicalResult plan() {
    if (calibration.empty() || planOut.empty())
      return fail("needs calibration=MEASURED.json (attnedit-run plan-edits' output) and "
                  "plan-out=PLAN.json");
    // inf was written to the plan as a bare `inf`, which no JSON reader takes.
    if (context < 1 || !(kvBudget > 0) || !std::isfinite(kvBudget))
      return fail("needs context >= 1 and a finite kv-budget > 0");
    if (sameFile(calibration, planOut))
      return fail("plan-out=" + planOut + " is the calibration file: writing the plan would "
                  "destroy the measurement");
    if (llvm::StringRef(edit).contains("plan="))
      return fail("edit= must not set plan=: this pass chooses the plan");
    OpPassManager raise(ModuleOp::getOperationName());
    raise.addPass(createRaiseAttentionPass());
    if (failed(runPipeline(raise, getOperation())))
      return failure();
    SmallVector<AttentionLikeOpInterface> layers;
    bool edited = false;
    layersOf(getOperation())->walk([&](AttentionLikeOpInterface op) {
      layers.push_back(op);
      edited |= !isa<AttentionOp>(op.getOperation());
    });
    if (layers.empty() || edited)
      return fail("needs a module whose attention is all attnedit.attention (unedited)");
    std::vector<std::vector<PlanChoice>> choices;
    if (failed(readChoices(layers, choices)))
      return failure();
    double moduleBytes = 0;
    for (const std::vector<PlanChoice> &c : choices)
      moduleBytes += c.front().bytesPerToken;
    double budget = kvBudget > 1 ? kvBudget : kvBudget * moduleBytes;
    std::optional<ChosenPlan> chosen = leastDamagePlan(choices, budget);
    if (!chosen)
      return fail(llvm::formatv("the budget of {0:F1} bytes/token is below the cheapest plan "
                                "({1:F1} bytes/token at context {2}; the module needs {3:F1})",
                                budget, cheapestBytesPerToken(choices), (int64_t)context,
                                moduleBytes));
    EditPlan &plan = chosen->plan;
    plan.extra = json::Object{{"context", (int64_t)context},
                              {"budget_bytes_per_token", budget},
                              {"bytes_per_token", chosen->bytesPerToken},
                              {"teacher_bytes_per_token", moduleBytes},
                              {"kv_reduction", 1 - chosen->bytesPerToken / moduleBytes},
                              {"estimated_kl", chosen->damage},
                              {"calibration", calibration}};
    OpPassManager apply(ModuleOp::getOperationName());
    std::string editPass =
        llvm::formatv("attnedit-edit-attention{{{0} plan=\"{1}\"}", edit, planOut).str();
    if (failed(parsePassPipeline(editPass, apply, llvm::errs())))
      return fail("cannot parse edit=" + edit);
    // The edit reads the plan from plan-out; a plan it refused is removed,
    // so the file is there only when the module was edited by it.
    if (llvm::Error e =
            writeFileAtomically(planOut, llvm::formatv("{0:2}\n", plan.toJson()).str()))
      return fail(llvm::toString(std::move(e)));
    if (failed(runPipeline(apply, getOperation()))) {
      llvm::sys::fs::remove(planOut);
      return failure();
    }
    return success();
  }

  void runOnOperation() override {
    if (failed(plan()))
      signalPassFailure();
  }
};

} // namespace
