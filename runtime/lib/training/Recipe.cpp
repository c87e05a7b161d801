//===- Recipe.cpp - what a training job runs, as JSON ----------------------===//

#include "attnedit/Runtime/Training/Recipe.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/IR/Limits.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <set>

using namespace mlir;
using namespace mlir::attnedit;
namespace json = llvm::json;

//===----------------------------------------------------------------------===//
// Recipes
//===----------------------------------------------------------------------===//

double StageRecipe::learningRate(int64_t step, bool teacherCopy) const {
  double peak = teacherCopy && lrRest ? *lrRest : lr;
  if (step < warmup)
    return peak * (step + 1) / warmup;
  int64_t decaySteps = std::max<int64_t>(steps - warmup, 1);
  double progress = std::min(1.0, (double)(step - warmup) / decaySteps);
  double floor = peak * minLrRatio;
  return floor + (peak - floor) * 0.5 * (1 + std::cos(M_PI * progress));
}

std::string StageRecipe::buildOptions() const {
  std::string options = "stage=" + stage;
  if (stage != "model")
    return options;
  // Full precision: formatv's default of two decimals would change the value.
  auto exact = [](double v) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.17g", v);
    return std::string(buffer);
  };
  options += " temperature=" + exact(temperature) + " feature-weight=" + exact(featureWeight) +
             " train=" + train;
  if (!featureLayers.empty()) {
    options += " feature-layers=";
    llvm::raw_string_ostream os(options);
    llvm::interleave(featureLayers, os, ",");
  }
  return options;
}

json::Value StageRecipe::toJson() const {
  json::Object object{{"stage", stage},
                      {"steps", steps},
                      {"lr", lr},
                      {"warmup", warmup},
                      {"min_lr_ratio", minLrRatio},
                      {"weight_decay", weightDecay},
                      {"clip", clip},
                      {"beta1", beta1},
                      {"beta2", beta2},
                      {"eps", eps},
                      {"temperature", temperature},
                      {"feature_layers", json::Array(featureLayers)},
                      {"feature_weight", featureWeight},
                      {"train", train},
                      {"parallel", parallel}};
  // Only when set, so that a checkpoint of a recipe without it still
  // resumes as the same recipe.
  if (lrRest)
    object["lr_rest"] = *lrRest;
  return object;
}

json::Value Recipe::toJson() const {
  json::Array list;
  for (const StageRecipe &s : stages)
    list.push_back(s.toJson());
  return json::Object{{"seed", (int64_t)seed},
                      {"batch", batch},
                      {"seq_len", seqLen},
                      {"checkpoint_every", checkpointEvery},
                      {"lanes", lanes},
                      {"stages", std::move(list)}};
}

llvm::Expected<Recipe> Recipe::parse(llvm::StringRef path, const Recipe &defaults) {
  auto buffer = readInputFile(path, /*isText=*/true);
  if (!buffer)
    return makeError(path + ": cannot read: " + buffer.getError().message());
  llvm::Expected<json::Value> parsed = parseJson((*buffer)->getBuffer());
  if (!parsed)
    return makeError(path + ": not valid JSON: " + llvm::toString(parsed.takeError()));
  const json::Object *object = parsed->getAsObject();
  if (!object)
    return makeError(path + ": a recipe is a JSON object");
  Recipe recipe = defaults;
  recipe.path = path.str();
  JsonReader top(path, *object);
  // toJson writes the seed's bits as an int64.
  int64_t seed = (int64_t)recipe.seed;
  if (!top.only({"seed", "batch", "seq_len", "checkpoint_every", "lanes", "stages"},
                "a recipe field") ||
      !top.integer("seed", seed) || !top.integer("batch", recipe.batch) ||
      !top.integer("seq_len", recipe.seqLen) ||
      !top.integer("checkpoint_every", recipe.checkpointEvery) ||
      !top.integer("lanes", recipe.lanes))
    return top.takeError();
  recipe.seed = (uint64_t)seed;
  if (const json::Value *stages = object->get("stages")) {
    const json::Array *list = stages->getAsArray();
    if (!list)
      return top.error("stages", "must be a list of stage objects");
    // A listed stage starts from the default stage of its kind (stage 2
    // alone got stage 1's rate), else of the same index (or the last).
    std::vector<StageRecipe> parsedStages;
    for (auto [i, item] : llvm::enumerate(*list)) {
      std::string entry = llvm::formatv("stages[{0}]", i).str();
      const json::Object *s = item.getAsObject();
      if (!s)
        return top.error(entry, "must be an object");
      std::optional<llvm::StringRef> kind = s->getString("stage");
      auto sameKind = llvm::find_if(defaults.stages, [&](const StageRecipe &d) {
        return kind && d.stage == *kind;
      });
      StageRecipe stage = sameKind != defaults.stages.end() ? *sameKind
                          : defaults.stages.empty()
                              ? StageRecipe()
                              : defaults.stages[std::min(i, defaults.stages.size() - 1)];
      JsonReader r = top.nested(entry, *s);
      if (!r.only({"stage", "steps", "lr", "warmup", "min_lr_ratio", "weight_decay", "clip",
                   "beta1", "beta2", "eps", "temperature", "feature_layers", "feature_weight",
                   "train", "lr_rest", "parallel"},
                  "a recipe field") ||
          !r.string("stage", stage.stage) || !r.integer("steps", stage.steps) ||
          !r.number("lr", stage.lr) || !r.integer("warmup", stage.warmup) ||
          !r.number("min_lr_ratio", stage.minLrRatio) ||
          !r.number("weight_decay", stage.weightDecay) || !r.number("clip", stage.clip) ||
          !r.number("beta1", stage.beta1) || !r.number("beta2", stage.beta2) ||
          !r.number("eps", stage.eps) || !r.number("temperature", stage.temperature) ||
          !r.integers("feature_layers", stage.featureLayers) ||
          !r.number("feature_weight", stage.featureWeight) || !r.string("train", stage.train) ||
          (s->get("lr_rest") && !r.number("lr_rest", stage.lrRest.emplace())) ||
          !r.string("parallel", stage.parallel))
        return r.takeError();
      // Set on another stage, these would be ignored without a word: only
      // stage model's loss has a temperature, a feature term and a choice of
      // what trains (stage lm trains everything, stage layerwise the edits).
      // Their defaults pass: training_log.json writes them for every stage.
      const StageRecipe plain;
      if (stage.stage == "layerwise" || stage.stage == "lm")
        for (auto [field, changed] :
             {std::pair{"temperature", stage.temperature != plain.temperature},
              std::pair{"feature_weight", stage.featureWeight != plain.featureWeight},
              std::pair{"train", stage.train != plain.train}})
          if (changed && s->get(field))
            return r.error(field, "applies only to stage model, not " + stage.stage);
      parsedStages.push_back(stage);
    }
    recipe.stages = std::move(parsedStages);
  }
  // Only `batch` lanes can hold a sequence: the rest would run nothing, and
  // the MPI rank count they seem to allow would be refused at the first step.
  if (object->get("lanes") && recipe.lanes > recipe.batch)
    return top.error("lanes", llvm::formatv("is {0}, more than the batch's {1} sequences",
                                            recipe.lanes, recipe.batch));
  if (llvm::Error e = recipe.validate(path))
    return std::move(e);
  // After validation: a warning before the error it precedes misled.
  const json::Array *rows = object->getArray("stages");
  for (auto [i, stage] : llvm::enumerate(recipe.stages)) {
    const json::Object *row = rows && i < rows->size() ? (*rows)[i].getAsObject() : nullptr;
    if (stage.steps > 0 && stage.warmup > stage.steps)
      spdlog::warn("{}: stages[{}] warms up over {} steps{}, more than its {} steps: its "
                   "rate never reaches lr (set \"warmup\")",
                   path.str(), i, stage.warmup,
                   row && row->get("warmup") ? "" : " (the default warmup)", stage.steps);
  }
  return recipe;
}

llvm::Error Recipe::validate(llvm::StringRef where) const {
  auto bad = [&](const llvm::Twine &field, const llvm::Twine &msg) {
    return makeError(where + ": field '" + field + "' " + msg);
  };
  if (batch < 1 || batch > 4096)
    return bad("batch", "must be in [1, 4096]");
  if (seqLen < 2 || seqLen > 65536)
    return bad("seq_len", "must be in [2, 65536]");
  if (checkpointEvery < 1 || checkpointEvery > kMaxSteps)
    return bad("checkpoint_every", llvm::formatv("must be in [1, {0}]", kMaxSteps));
  if (lanes < 1 || lanes > 4096)
    return bad("lanes", "must be in [1, 4096]");
  if (stages.empty())
    return bad("stages", "must list at least one stage");
  for (auto [i, s] : llvm::enumerate(stages)) {
    std::string p = llvm::formatv("stages[{0}].", i).str();
    if (s.stage != "layerwise" && s.stage != "model" && s.stage != "lm")
      return bad(p + "stage", "must be layerwise, model or lm, not '" + s.stage + "'");
    if (s.steps < 0 || s.steps > kMaxSteps)
      return bad(p + "steps", llvm::formatv("must be in [0, {0}]", kMaxSteps));
    if (!(s.lr > 0 && s.lr < 1))
      return bad(p + "lr", "must be in (0, 1)");
    if (s.warmup < 0 || s.warmup > kMaxSteps)
      return bad(p + "warmup", llvm::formatv("must be in [0, {0}]", kMaxSteps));
    if (!(s.minLrRatio >= 0 && s.minLrRatio <= 1))
      return bad(p + "min_lr_ratio", "must be in [0, 1]");
    if (!(s.weightDecay >= 0 && s.weightDecay < 1))
      return bad(p + "weight_decay", "must be in [0, 1)");
    if (!(s.clip >= 0 && s.clip <= 1e6))
      return bad(p + "clip", "must be in [0, 1e6] (0 = no clipping)");
    if (!(s.beta1 >= 0 && s.beta1 < 1) || !(s.beta2 >= 0 && s.beta2 < 1))
      return bad(p + "beta1/beta2", "must be in [0, 1)");
    if (!(s.eps > 0 && s.eps < 1))
      return bad(p + "eps", "must be in (0, 1)");
    if (!(s.temperature >= kMinTemperature && s.temperature <= kMaxTemperature))
      return bad(p + "temperature", "must be in [0.001, 100]");
    if (!(s.featureWeight >= 0 && s.featureWeight <= kMaxFeatureWeight))
      return bad(p + "feature_weight", "must be in [0, 1000]");
    if (s.train != "attention" && s.train != "all")
      return bad(p + "train", "must be attention or all, not '" + s.train + "'");
    if (s.lrRest && !(s.stage == "model" && s.train == "all"))
      return bad(p + "lr_rest", "is the rate of the teacher's other weights, which only a "
                               "stage model with train all trains");
    if (s.lrRest && !(*s.lrRest > 0 && *s.lrRest < 1))
      return bad(p + "lr_rest", "must be in (0, 1)");
    // Each would otherwise be ignored without a word: the feature loss is
    // stage model's, weighs 0 unless given a weight, and compares no layer
    // unless given some.
    if (!s.featureLayers.empty() && s.stage != "model")
      return bad(p + "feature_layers", "applies only to stage model (its cosine feature loss)");
    if (!s.featureLayers.empty() && s.featureWeight == 0)
      return bad(p + "feature_layers", "needs feature_weight > 0, or the feature loss weighs 0");
    if (s.featureLayers.empty() && s.featureWeight != 0)
      return bad(p + "feature_weight", "needs feature_layers, the layers whose hidden states "
                                       "the feature loss compares (it compares none)");
    if (s.parallel != "data" && !(s.parallel == "layers" && s.stage == "layerwise"))
      return bad(p + "parallel", "must be data, or layers for stage layerwise, not '" +
                                     s.parallel + "'");
    // The feature loss averages over distinct layers: a repeat would not
    // weigh its layer twice, as it seems to. (std::set: a DenseSet cannot
    // hold every int64, and the entries are the file's.)
    std::set<int64_t> seen;
    for (auto [j, layer] : llvm::enumerate(s.featureLayers))
      if (!seen.insert(layer).second)
        return bad(llvm::formatv("{0}feature_layers[{1}]", p, j).str(),
                   llvm::formatv("repeats layer {0}", layer).str());
  }
  return llvm::Error::success();
}

llvm::Error Recipe::checkRanks(int64_t ranks) const {
  int64_t numLanes = std::min(lanes, batch);
  bool lanesSplit =
      llvm::any_of(stages, [](const StageRecipe &s) { return s.parallel != "layers"; });
  if (lanesSplit && ranks > numLanes)
    return makeError(llvm::formatv("{0} ranks, but a batch of {1} sequences runs in {2} lanes "
                                   "(fixed, so that the weights do not depend on the number of "
                                   "ranks): run at most {2} ranks, or set {3}'s \"lanes\" (and "
                                   "\"batch\") to at least {0}",
                                   ranks, batch, numLanes, path.empty() ? "the recipe" : path)
                         .str());
  return llvm::Error::success();
}

llvm::Error Recipe::validateForModel(int64_t numLayers) const {
  std::string where = path.empty() ? "the default recipe" : path;
  for (auto [i, s] : llvm::enumerate(stages))
    for (auto [j, layer] : llvm::enumerate(s.featureLayers))
      if (layer < 0 || layer >= numLayers)
        return makeError(llvm::formatv("{0}: field 'stages[{1}].feature_layers[{2}]' is {3}; "
                                       "the model has {4} layers, so it must be in [0, {4})",
                                       where, i, j, layer, numLayers)
                             .str());
  return llvm::Error::success();
}
