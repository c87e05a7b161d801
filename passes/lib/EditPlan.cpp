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
  EditPlan plan;
  for (auto [i, row] : llvm::enumerate(*rows)) {
    std::string where = llvm::formatv("{0}: layers[{1}]", source, i).str();
    json::Object *o = row.getAsObject();
    if (!o)
      return makeError(where, "must be an object");
    std::optional<llvm::StringRef> kind = o->getString("kind");
    if (!kind)
      return makeError(where, "needs \"kind\": \"keep\", \"swa\" or \"mla\"");
    LayerEdit e;
    std::vector<llvm::StringRef> allowed{"kind"};
    auto positive = [&](llvm::StringRef field, int64_t &out, bool required) -> llvm::Error {
      allowed.push_back(field);
      const json::Value *v = o->get(field);
      if (!v)
        return required ? makeError(where, "\"" + field + "\" is missing")
                        : llvm::Error::success();
      std::optional<int64_t> n = v->getAsInteger();
      if (!n || *n < 1 || *n > kMaxConfigSize)
        return makeError(where, llvm::formatv("\"{0}\" must be an integer in [1, {1}]", field,
                                              kMaxConfigSize)
                                    .str());
      out = *n;
      return llvm::Error::success();
    };
    if (*kind == "keep") {
      e.kind = LayerEdit::Kind::Keep;
    } else if (*kind == "swa") {
      e.kind = LayerEdit::Kind::Swa;
      if (llvm::Error err = positive("window", e.window, true))
        return std::move(err);
    } else if (*kind == "mla") {
      e.kind = LayerEdit::Kind::Mla;
      if (llvm::Error err = positive("kv_lora_rank", e.kvLoraRank, true))
        return std::move(err);
      if (llvm::Error err = positive("qk_rope_head_dim", e.qkRopeHeadDim, false))
        return std::move(err);
      if (e.qkRopeHeadDim % 2)
        return makeError(where, "\"qk_rope_head_dim\" must be even");
    } else {
      return makeError(where, "has kind '" + *kind + "'; expected keep, swa or mla");
    }
    for (const auto &kv : *o)
      if (!llvm::is_contained(allowed, llvm::StringRef(kv.first)))
        return makeError(where, "has unknown field '" + llvm::StringRef(kv.first) + "' for kind " +
                                    *kind);
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
