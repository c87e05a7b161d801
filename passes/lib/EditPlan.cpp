//===- EditPlan.cpp - per-layer attention edits as JSON ---------------------===//

#include "attnedit/Passes/EditPlan.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/Frontend/ModelConfig.h"

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
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return makeError(path, "cannot read: " + buffer.getError().message());
  return parseEditPlan((*buffer)->getBuffer(), path);
}

std::vector<size_t>
mlir::attnedit::cheapestChoices(const std::vector<std::vector<PlanChoice>> &choices) {
  std::vector<size_t> chosen;
  for (const std::vector<PlanChoice> &c : choices) {
    size_t best = 0;
    for (size_t i = 1; i < c.size(); ++i)
      if (c[i].bytesPerToken < c[best].bytesPerToken ||
          (c[i].bytesPerToken == c[best].bytesPerToken && c[i].damage < c[best].damage))
        best = i;
    chosen.push_back(best);
  }
  return chosen;
}

double mlir::attnedit::restoreUnderBudget(const std::vector<std::vector<PlanChoice>> &choices,
                                          std::vector<size_t> &chosen, double budget) {
  double total = 0;
  for (size_t l = 0; l < choices.size(); ++l)
    total += choices[l][chosen[l]].bytesPerToken;
  for (;;) {
    int64_t bestLayer = -1;
    size_t bestChoice = 0;
    double bestGain = 0;
    for (size_t l = 0; l < choices.size(); ++l) {
      const PlanChoice &now = choices[l][chosen[l]];
      for (size_t i = 0; i < choices[l].size(); ++i) {
        const PlanChoice &c = choices[l][i];
        double gain = now.damage - c.damage;
        if (gain <= bestGain ||
            total - now.bytesPerToken + c.bytesPerToken > budget * (1 + 1e-9))
          continue;
        bestLayer = l, bestChoice = i, bestGain = gain;
      }
    }
    if (bestLayer < 0)
      return total;
    total += choices[bestLayer][bestChoice].bytesPerToken -
             choices[bestLayer][chosen[bestLayer]].bytesPerToken;
    chosen[bestLayer] = bestChoice;
  }
}
