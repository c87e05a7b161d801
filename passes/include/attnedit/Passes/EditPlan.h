//===- EditPlan.h - a per-layer choice of attention edits -----*- C++ -*-===//
//
// A heterogeneous edit: each layer keeps its attention, slides (GateSWA with
// a window) or becomes MLA. --attnedit-edit-attention=plan=FILE applies one;
// `attnedit-run plan-edits` measures every layer's candidates and chooses
// one under a KV budget; --attnedit-plan-edits chooses one from such a
// measurement (at any budget and context) and applies it.
//
// The file is JSON:
//   {"layers": [{"kind": "keep"},
//               {"kind": "swa", "window": 32},
//               {"kind": "mla", "kv_lora_rank": 16, "qk_rope_head_dim": 4}],
//    ...}
// One entry per attention layer, in order. Entries accept only the fields of
// their kind; other top-level fields (what the planner measured) are kept
// verbatim and ignored by the edit.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_PASSES_EDITPLAN_H
#define ATTNEDIT_PASSES_EDITPLAN_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mlir::attnedit {

/// The module attribute recording the plan an edit applied (its JSON text),
/// which --attnedit-kv-report prints.
inline constexpr llvm::StringLiteral kEditPlanAttr = "attnedit.edit_plan";

struct LayerEdit {
  enum class Kind { Keep, Swa, Mla };
  Kind kind = Kind::Keep;
  int64_t window = 0;        // swa
  int64_t kvLoraRank = 0;    // mla
  int64_t qkRopeHeadDim = 0; // mla; 0: the edit's qk-rope-head-dim option

  static llvm::StringRef kindName(Kind k) {
    return k == Kind::Keep ? "keep" : k == Kind::Swa ? "swa" : "mla";
  }
  llvm::json::Value toJson() const;
};

struct EditPlan {
  std::vector<LayerEdit> layers;
  /// Top-level fields besides "layers", kept as they were.
  llvm::json::Object extra;

  llvm::json::Value toJson() const;
};

/// One way to treat one layer: its KV bytes per token and its measured
/// damage (next-token KL with that layer alone edited; 0 for keep).
struct PlanChoice {
  LayerEdit edit;
  double bytesPerToken = 0;
  double damage = 0;
};

/// The fewest bytes per token of any plan: every layer's cheapest choice.
double cheapestBytesPerToken(const std::vector<std::vector<PlanChoice>> &choices);

/// A plan chosen from measured choices, with its bytes per token and summed damage.
struct ChosenPlan {
  EditPlan plan;
  double bytesPerToken = 0, damage = 0;
};
/// The plan whose damages sum to the least of all plans within `budget`
/// bytes per token (the fewest bytes among equals); none when none fits.
std::optional<ChosenPlan> leastDamagePlan(const std::vector<std::vector<PlanChoice>> &choices,
                                          double budget);

/// Parses a plan; errors name `source` (a file name) and the field.
llvm::Expected<EditPlan> parseEditPlan(llvm::StringRef text, llvm::StringRef source);
/// Reads and parses the plan file at `path`.
llvm::Expected<EditPlan> readEditPlan(llvm::StringRef path);

} // namespace mlir::attnedit

#endif // ATTNEDIT_PASSES_EDITPLAN_H
