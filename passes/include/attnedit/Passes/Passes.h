//===- Passes.h - attnedit passes -----------------------------*- C++ -*-===//
#ifndef ATTNEDIT_PASSES_PASSES_H
#define ATTNEDIT_PASSES_PASSES_H

#include "attnedit/IR/AttnEditDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::attnedit {

#define GEN_PASS_DECL
#include "attnedit/Passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "attnedit/Passes/Passes.h.inc"

/// Why `func` is not what every attnedit pass and executor walks: one block
/// ending in func.return, calling no other function. A declaration or a
/// body split by cf branches (attnedit-opt loads cf) had crashed them;
/// std::nullopt when it is.
std::optional<std::string> whyNotOneBlock(func::FuncOp func);

/// Whether `func` is a KV-cache step --attnedit-build-decode built (an
/// argument holds a block table): its sizes are sequences, cache blocks and
/// slots, and it is computed from the attention of @forward.
bool isKvCacheStep(func::FuncOp func);

/// Where a module's layers are: its @forward, the model, when it has one
/// (a distillation step or a copy of the model beside it holds attention
/// too, which layer numbers and totals would count again), else the module.
Operation *layersOf(ModuleOp module);

namespace detail {
template <typename T, typename Parser>
bool changedFromDefault(const Pass::Option<T, Parser> &option) {
  return !option.getDefault().compare(option.getValue());
}
template <typename T, typename Parser>
bool changedFromDefault(const Pass::ListOption<T, Parser> &option) {
  return !option.empty();
}
} // namespace detail

/// The option of the other edit target set away from its default
/// (kv-lora-rank=7 with target=gate-swa, window=8 with target=mla), which the
/// edit would otherwise ignore without a word; empty when there is none or a
/// plan uses both kinds. Not "given": a printed pipeline gives every option.
/// `p` is the edit or the convert pass, which share these options.
template <typename EditPass>
llvm::StringRef optionForOtherTarget(EditPass &p) {
  if (!p.plan.empty())
    return {};
  auto firstChanged = [](auto &...options) {
    llvm::StringRef name;
    ((name = name.empty() && detail::changedFromDefault(options) ? options.ArgStr : name), ...);
    return name;
  };
  if (p.target == "mla")
    return firstChanged(p.window, p.fullLayers, p.fullEvery, p.gate, p.sinks, p.sinkLogitsFile);
  return firstChanged(p.kvLoraRank, p.qLoraRank, p.qkRopeHeadDim, p.ropeStride,
                      p.qkNopeHeadDim, p.vHeadDim, p.init, p.activations);
}

} // namespace mlir::attnedit

#endif // ATTNEDIT_PASSES_PASSES_H
