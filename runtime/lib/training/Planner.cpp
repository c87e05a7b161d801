//===- Planner.cpp - per-layer attention edits under a KV budget -----------===//

#include "attnedit/Runtime/Training/Planner.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Training/Distiller.h"
#include "attnedit/Runtime/Training/Evaluation.h"
#include "attnedit/Runtime/Training/Evidence.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"

#include <spdlog/spdlog.h>

using namespace mlir;
using namespace mlir::attnedit;
namespace json = llvm::json;

/// bf16 KV bytes per token of each attention layer of `module`, amortised
/// over `context` tokens (a window caches min(window, context) of them).
static std::vector<double> layerBytes(ModuleOp module, int64_t context) {
  std::vector<double> bytes;
  module.walk([&](AttentionLikeOpInterface op) {
    int64_t window = op.getKvWindow();
    int64_t cached = window ? std::min(window, context) : context;
    bytes.push_back(2.0 * op.getKvValuesPerToken() * cached / context);
  });
  return bytes;
}

/// The student `plan` makes of `raised`, loaded as a Model from `dir`.
static llvm::Expected<std::unique_ptr<Model>> studentOf(ModuleOp raised, const EditPlan &plan,
                                                        const PlanOptions &options,
                                                        llvm::StringRef name) {
  std::string planPath = joinPath(options.workDir, (name + ".plan.json").str());
  if (llvm::Error e =
          writeFileAtomically(planPath, llvm::formatv("{0:2}\n", plan.toJson()).str()))
    return std::move(e);
  std::string edit = "plan=\"" + planPath + "\" " + options.editOptions +
                     llvm::formatv(" qk-rope-head-dim={0}", options.qkRopeHeadDim).str();
  auto student =
      editedCopy(raised, edit, joinPath(options.workDir, (name + ".safetensors").str()));
  if (!student)
    return student.takeError();
  std::string modulePath = joinPath(options.workDir, (name + ".mlir").str());
  if (llvm::Error e = writeModule(**student, modulePath))
    return std::move(e);
  return Model::load(modulePath);
}

llvm::Expected<EditPlan> attnedit::planEdits(Model &teacher, llvm::ArrayRef<int32_t> calibration,
                                             const PlanOptions &options) {
  if (options.context < 1 || options.window < 1 || options.kvLoraRank < 1 ||
      options.qkRopeHeadDim < 2 || options.budget <= 0)
    return makeError("plan-edits", "needs context, window, kv-lora-rank >= 1, "
                                   "qk-rope-head-dim >= 2 and a positive budget");
  // The plan's edits come from these; the same option in --edit was overridden without a word.
  auto editValues = editOptionValues(options.editOptions);
  if (!editValues)
    return editValues.takeError();
  for (auto [option, flag] : {std::pair{"window", "--swa-window"},
                              {"kv-lora-rank", "--kv-lora-rank"},
                              {"qk-rope-head-dim", "--qk-rope-head-dim"},
                              {"target", ""},
                              {"plan", ""},
                              {"layers", ""},
                              {"full-layers", ""},
                              {"full-every", ""}})
    if (editValues->count(option))
      return makeError("plan-edits", llvm::formatv("--edit sets {0}=, which plan-edits chooses "
                                                   "per layer{1}",
                                                   option,
                                                   *flag ? llvm::formatv(" (give {0})", flag).str()
                                                         : std::string())
                                         .str());
  // Within the window sliding changes nothing: every layer would measure
  // free and the plan would slide them all.
  int64_t seen = std::min<int64_t>(calibration.size(), options.evalWindow);
  if (seen <= options.window)
    return makeError("plan-edits",
                     llvm::formatv("measures with {0} tokens at a time ({1} calibration tokens, "
                                   "windows of {2}), which the {3}-token sliding window covers: "
                                   "give more calibration tokens or a smaller window",
                                   seen, calibration.size(), options.evalWindow, options.window)
                         .str());
  if (std::error_code ec = createOutputDirectories(options.workDir))
    return makeError(options.workDir, "cannot create: " + ec.message());
  auto raised = raisedCopy(teacher.module());
  if (!raised)
    return raised.takeError();
  std::vector<double> keepBytes = layerBytes(**raised, options.context);
  int64_t numLayers = keepBytes.size();
  if (numLayers == 0)
    return makeError("plan-edits", "the teacher has no attention to edit");
  double teacherBytes = 0;
  for (double b : keepBytes)
    teacherBytes += b;
  double budget = options.budget > 1 ? options.budget : options.budget * teacherBytes;

  // Damage of every candidate, one layer edited at a time.
  LayerEdit swa{LayerEdit::Kind::Swa, options.window, 0, 0};
  LayerEdit mla{LayerEdit::Kind::Mla, 0, options.kvLoraRank, options.qkRopeHeadDim};
  std::vector<std::vector<PlanChoice>> choices(numLayers);
  json::Array measured;
  for (int64_t l = 0; l < numLayers; ++l) {
    choices[l].push_back({LayerEdit{}, keepBytes[l], 0.0});
    for (const LayerEdit &candidate : {swa, mla}) {
      EditPlan single;
      single.layers.assign(numLayers, LayerEdit{});
      single.layers[l] = candidate;
      std::string name =
          llvm::formatv("layer{0}-{1}", l, LayerEdit::kindName(candidate.kind)).str();
      auto student = studentOf(**raised, single, options, name);
      if (!student)
        return student.takeError();
      auto cmp = compareNextToken(teacher, **student, calibration, options.evalWindow);
      if (!cmp)
        return cmp.takeError();
      PlanChoice o{candidate, layerBytes((*student)->module(), options.context)[l], cmp->kl};
      // The edited layer's teacher-forced output error, on the first window.
      std::vector<std::vector<int32_t>> first{std::vector<int32_t>(
          calibration.begin(),
          calibration.begin() + std::min<size_t>(calibration.size(), options.evalWindow))};
      auto ev = measureStage(**raised, (*student)->module(), (*student)->parameterStore(),
                             first, name, /*attentionErrorOnly=*/true);
      if (!ev)
        return ev.takeError();
      double error = ev->relativeError[l];
      spdlog::info("plan-edits: layer {} {}: KL {:.5f}, attention error {:.4f}, {:.1f} "
                   "bytes/token",
                   l, LayerEdit::kindName(candidate.kind).str(), o.damage, error, o.bytesPerToken);
      measured.push_back(json::Object{{"layer", l},
                                      {"edit", candidate.toJson()},
                                      {"kl", o.damage},
                                      {"top1", cmp->top1},
                                      {"attention_relative_error", error},
                                      {"bytes_per_token", o.bytesPerToken}});
      choices[l].push_back(o);
    }
  }

  std::optional<ChosenPlan> chosen = leastDamagePlan(choices, budget);
  if (!chosen)
    return makeError("plan-edits",
                     llvm::formatv("the budget of {0:F1} bytes/token is below the cheapest plan "
                                   "({1:F1} bytes/token at context {2}; the teacher needs {3:F1})",
                                   budget, cheapestBytesPerToken(choices), options.context,
                                   teacherBytes)
                         .str());
  EditPlan plan = std::move(chosen->plan);
  double total = chosen->bytesPerToken, estimated = chosen->damage;
  auto student = studentOf(**raised, plan, options, "plan");
  if (!student)
    return student.takeError();
  auto cmp = compareNextToken(teacher, **student, calibration, options.evalWindow);
  if (!cmp)
    return cmp.takeError();
  spdlog::info("plan-edits: {:.1f} of {:.1f} budget bytes/token (teacher {:.1f}); KL {:.5f} "
               "(sum of single-layer KLs {:.5f})",
               total, budget, teacherBytes, cmp->kl, estimated);
  plan.extra = json::Object{{"context", options.context},
                            {"budget_bytes_per_token", budget},
                            {"bytes_per_token", total},
                            {"teacher_bytes_per_token", teacherBytes},
                            {"kv_reduction", 1 - total / teacherBytes},
                            {"calibration_tokens", (int64_t)calibration.size()},
                            {"estimated_kl", estimated},
                            {"measured_kl", cmp->kl},
                            {"measured_top1", cmp->top1},
                            {"candidates", std::move(measured)}};
  return plan;
}
