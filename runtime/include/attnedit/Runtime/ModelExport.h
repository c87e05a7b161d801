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
// llama2.c's interleaved RoPE is written in HF's rotate-half order (q/k rows
// permuted per head, as HF's llama2.c converter does) for Llama and GateSWA.
// Anything the target format cannot express exactly (Llama 3 rope scaling
// or mixed layers on MLA, per-layer windows that differ, ...) is refused.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_MODELEXPORT_H
#define ATTNEDIT_RUNTIME_MODELEXPORT_H

#include "attnedit/Runtime/ParameterStore.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"

#include <string>
#include <vector>

namespace mlir::attnedit {

struct ExportOptions {
  /// Where a parameter of @forward has a value in this scope, that value is
  /// exported even if @forward names it unscoped: a trainer that distils
  /// every weight (train=all) keeps its copies of the teacher's there.
  std::string preferredScope = "student";
  /// The tokenizer to copy; empty = the module's `attnedit.tokenizer`.
  std::string tokenizerPath;
  /// The written directory is loaded back and its logits on these tokens
  /// compared with @forward's; empty = a few fixed ids below the vocabulary
  /// size. `verify = false` skips the check (it costs two forward passes).
  bool verify = true;
  std::vector<int32_t> verifyTokens;
  /// Largest accepted max|exported - module| / max|module| over the logits.
  double tolerance = 1e-4;
};

/// What was written.
struct ExportSummary {
  std::string architecture;    // the config's architectures[0]
  int64_t numTensors = 0;
  std::string tokenizerFile;   // empty when no tokenizer was copied
  double relativeError = -1;   // of the verification; -1 when not verified
};

/// Writes the model `module`'s @forward computes, with parameter values from
/// `store` (scope-aware, see ExportOptions::preferredScope), to `dir`:
/// dir/config.json, dir/model.safetensors (f32) and dir/tokenizer.json or
/// dir/tokenizer.bin. The directory appears complete or not at all (it is
/// built as a sibling temporary and renamed into place); an existing model
/// directory at `dir` is replaced. Primitive attention is raised first.
llvm::Expected<ExportSummary> exportModel(mlir::ModuleOp module, ParameterStore &store,
                                          llvm::StringRef dir,
                                          const ExportOptions &options = {});

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_MODELEXPORT_H
