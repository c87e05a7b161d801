//===- EditPlan.cpp - per-layer attention edits as JSON ---------------------===//

#include "attnedit/Passes/EditPlan.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/Frontend/ModelConfig.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace mlir::attnedit;
namespace json = llvm::json;

json::Value LayerEdit::toJson() const {
  json::Object o{{"kind", kindName(kind)}};
  if (kind == Kind::Swa)
    o["window"] = window;
  if (kind == Kind::Mla) {
    o["kv_lora_rank"] = kvLoraRank;
    if (qkRopeHeadDim)
      o["qk_rope_head_dim"] = qkRopeHeadDim;
  }
  return o;
}

json::Value EditPlan::toJson() const {
  json::Object o = extra;
  json::Array rows;
  for (const LayerEdit &l : layers)
    rows.push_back(l.toJson());
  o["layers"] = std::move(rows);
  return o;
}

llvm::Expected<EditPlan> mlir::attnedit::parseEditPlan(llvm::StringRef text,
                                                       llvm::StringRef source) {
  auto parsed = parseJson(text);
  if (!parsed)
    return makeError(source, "is not JSON: " + llvm::toString(parsed.takeError()));
  json::Object *root = parsed->getAsObject();
  if (!root)
    return makeError(source, "must be a JSON object with a \"layers\" array");
  json::Array *rows = root->getArray("layers");
  if (!rows || rows->empty())
    return makeError(source, "needs a non-empty \"layers\" array (one entry per layer)");
  JsonReader reader(source, *root);
  EditPlan plan;
  for (auto [i, row] : llvm::enumerate(*rows)) {
    std::string entry = llvm::formatv("layers[{0}]", i).str();
    json::Object *o = row.getAsObject();
    if (!o)
      return reader.error(entry, "must be an object");
    JsonReader layer = reader.nested(entry, *o);
    std::string kind;
    if (!layer.string("kind", kind))
      return layer.takeError();
    LayerEdit e;
    std::vector<llvm::StringRef> known{"kind"};
    if (kind == "keep") {
      e.kind = LayerEdit::Kind::Keep;
    } else if (kind == "swa") {
      e.kind = LayerEdit::Kind::Swa;
      known.push_back("window");
      if (!layer.require("window") || !layer.positive("window", e.window, kMaxConfigSize))
        return layer.takeError();
    } else if (kind == "mla") {
      e.kind = LayerEdit::Kind::Mla;
      known.insert(known.end(), {"kv_lora_rank", "qk_rope_head_dim"});
      if (!layer.require("kv_lora_rank") ||
          !layer.positive("kv_lora_rank", e.kvLoraRank, kMaxConfigSize) ||
          !layer.positive("qk_rope_head_dim", e.qkRopeHeadDim, kMaxConfigSize))
        return layer.takeError();
      if (e.qkRopeHeadDim % 2)
        return layer.error("qk_rope_head_dim", "must be even");
    } else {
      return layer.error("kind", (o->get("kind") ? "is '" + kind + "'" : "is missing") +
                                     "; expected keep, swa or mla");
    }
    if (!layer.only(known, "a field of kind " + kind))
      return layer.takeError();
    plan.layers.push_back(e);
  }
  for (auto &kv : *root)
    if (kv.first != "layers")
      plan.extra[kv.first] = kv.second;
  return plan;
}

llvm::Expected<EditPlan> mlir::attnedit::readEditPlan(llvm::StringRef path) {
  auto buffer = readInputFile(path);
  if (!buffer)
    return makeError(path, "cannot read: " + buffer.getError().message());
  return parseEditPlan((*buffer)->getBuffer(), path);
}

double
mlir::attnedit::cheapestBytesPerToken(const std::vector<std::vector<PlanChoice>> &choices) {
  double total = 0;
  for (const std::vector<PlanChoice> &c : choices)
    total += llvm::min_element(c, [](const PlanChoice &a, const PlanChoice &b) {
               return a.bytesPerToken < b.bytesPerToken;
             })->bytesPerToken;
  return total;
}

std::optional<ChosenPlan>
mlir::attnedit::leastDamagePlan(const std::vector<std::vector<PlanChoice>> &choices,
                                double budget) {
  // Exact multiple-choice knapsack: after each layer, the plans of the layers so far that no
  // other beats in both bytes and damage, by increasing bytes. Layers of one shape share their
  // candidates' bytes, so the sums are few (a greedy restore of the biggest damage first spent
  // the budget on upgrades that cost the most bytes: 6-9x the KL of the best plan).
  struct Partial {
    double bytes, damage;
    size_t choice, parent; // this layer's choice; the entry it extends in the layer before
  };
  std::vector<std::vector<Partial>> frontiers;
  std::vector<Partial> frontier{{0, 0, 0, 0}};
  for (const std::vector<PlanChoice> &layer : choices) {
    std::vector<Partial> next;
    for (size_t p = 0; p < frontier.size(); ++p)
      for (size_t c = 0; c < layer.size(); ++c) {
        double bytes = frontier[p].bytes + layer[c].bytesPerToken;
        if (bytes <= budget * (1 + 1e-9))
          next.push_back({bytes, frontier[p].damage + layer[c].damage, c, p});
      }
    llvm::sort(next, [](const Partial &a, const Partial &b) {
      return a.bytes != b.bytes ? a.bytes < b.bytes : a.damage < b.damage;
    });
    std::vector<Partial> kept;
    for (const Partial &e : next)
      if (kept.empty() || e.damage < kept.back().damage)
        kept.push_back(e);
    frontiers.push_back(frontier = std::move(kept));
  }
  // The last entry has the least damage (the least bytes among equals); none when even the
  // cheapest plan exceeds the budget.
  if (frontier.empty())
    return std::nullopt;
  ChosenPlan chosen{EditPlan{std::vector<LayerEdit>(choices.size()), {}},
                    frontier.back().bytes, frontier.back().damage};
  for (size_t l = choices.size(), at = frontier.size() - 1; l-- > 0;) {
    chosen.plan.layers[l] = choices[l][frontiers[l][at].choice].edit;
    at = frontiers[l][at].parent;
  }
  return chosen;
}
