//===- ModelExport.h - modules to loadable model directories --*- C++ -*-===//
//
// Writes the model a module's @forward computes as a Hugging Face-style
// directory (config.json + model.safetensors + tokenizer) that
// `attnedit-run generate DIR` and `attnedit-run eval --student DIR` load back,
// and that other engines load exactly or not at all:
//
//   - every layer attnedit.mla      -> DeepseekV2ForCausalLM (dense MLA): the
//     softmax-scale difference folded into the query rows, rotate-half RoPE
//     rows permuted into DeepSeek's interleaved pairs, the latent RMSNorm eps
//     difference folded into the down-projections;
//   - some layer attnedit.gate_swa  -> GateSwaForCausalLM, attnedit's own
//     format: the base model's fields ("base_architecture") plus per-layer
//     windows ("layer_types", "sliding_window"), gates ("attention_gate",
//     "layer_gates") and sink logits ("attention_sinks", "layer_sinks");
//   - plain attention               -> LlamaForCausalLM / Qwen2ForCausalLM /
//     Qwen3ForCausalLM.
//
// MLA layers may differ in kv_lora_rank, qk_rope_head_dim and rope_theta
// (a plan gives each layer its own rank). DeepSeek and GateSWA configs then
// hold those fields as lists with one entry per layer (null for a GateSWA
// layer that is not MLA), as OpenELM's config.json lists num_kv_heads per
// layer; a field every layer agrees on stays one value, so uniform models
// keep the plain DeepSeek-V2 config. transformers' DeepseekV2 takes only
// one value per field and fails building the first layer from a list, so
// such a directory loads exactly (attnedit) or not at all.
//
// llama2.c's interleaved RoPE is written in HF's rotate-half order (q/k rows
// permuted per head, as HF's llama2.c converter does) for Llama and GateSWA.
// Anything the target format cannot express exactly (Llama 3 rope scaling
// on MLA, per-layer windows that differ, ...) is refused.
//
// The exporter reads parameter values through a callback, so it needs no
// runtime; proving the directory (loading it back and comparing logits) is
// the caller's `check`, run before the directory is renamed into place.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_MODELEXPORT_H
#define ATTNEDIT_FRONTEND_MODELEXPORT_H

#include "attnedit/Runtime/Execution/ParameterStore.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <functional>
#include <string>
#include <vector>

namespace mlir::attnedit {

/// The f32 values of parameter `name` of `shape` in `scope` (empty: the
/// unscoped parameter), row-major.
using ParameterReader = std::function<llvm::Expected<std::vector<float>>(
    llvm::StringRef name, llvm::ArrayRef<int64_t> shape, llvm::StringRef scope)>;

struct ExportOptions {
  /// Where a parameter of @forward has a value in this scope, that value is
  /// exported even if @forward names it unscoped: a trainer that distils
  /// every weight (train=all) keeps its copies of the teacher's there.
  std::string preferredScope = "student";
  /// The tokenizer to copy; empty = the module's `attnedit.tokenizer`.
  std::string tokenizerPath;
  /// Runs on the finished temporary directory before it is renamed into
  /// place, with a copy of the module whose unscoped parameters that have a
  /// preferred-scope value are scoped there (the function exported); an
  /// error abandons the export.
  std::function<llvm::Error(llvm::StringRef dir, mlir::ModuleOp exported)> check;
};

/// What was written.
struct ExportSummary {
  std::string architecture;    // the config's architectures[0]
  int64_t numTensors = 0;
  std::string tokenizerFile;   // empty when no tokenizer was copied
};

/// Writes the model `module`'s @forward computes, with parameter values from
/// `read` (scope-aware, see ExportOptions::preferredScope), to `dir`:
/// dir/config.json, dir/model.safetensors (f32) and dir/tokenizer.json or
/// dir/tokenizer.bin. The directory appears complete or not at all (it is
/// built as a sibling temporary and renamed into place); an existing `dir`
/// is replaced only if checkExportTarget allows it. @forward's attention
/// must be composite (run --attnedit-raise-attention first).
llvm::Expected<ExportSummary> exportModel(mlir::ModuleOp module, const ParameterReader &read,
                                          llvm::StringRef dir,
                                          const ExportOptions &options = {});

/// Whether exportModel may write `dir`: absent, empty, or holding only files
/// an export writes (a model exported before). Anything else (a job's logs
/// and checkpoints, a hub checkpoint's README.md, another file) would be
/// lost with the swap, so such a directory is refused, naming a file it
/// holds. Callers run this before their work.
llvm::Error checkExportTarget(llvm::StringRef dir);

/// Everything exportModel checks of `module` (the format it maps to, every
/// layer expressible in it, every parameter placed), without writing: a job
/// that will export at its end runs this before its first step.
llvm::Error checkExportable(mlir::ModuleOp module, const ParameterReader &read,
                            const ExportOptions &options = {});

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_MODELEXPORT_H
