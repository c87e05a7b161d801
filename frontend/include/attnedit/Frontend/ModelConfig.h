//===- ModelConfig.h - decoder hyper-parameters ---------------*- C++ -*-===//
//
// What the importer needs to know about a checkpoint, whichever format it
// came from: HF config.json (Llama, Qwen2, Qwen3; DeepSeek-V2/V3 dense MLA;
// attnedit's GateSWA export) or a llama2.c header.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_MODELCONFIG_H
#define ATTNEDIT_FRONTEND_MODELCONFIG_H

#include "attnedit/Frontend/WeightFile.h"
#include "attnedit/IR/Limits.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace mlir::attnedit {

/// Which attention every layer of the model has.
enum class AttentionKind {
  Standard, // Llama / Qwen multi-head or grouped-query attention
  Mla,      // DeepSeek-V2/V3 multi-head latent attention
  GateSwa,  // attnedit's gated (sliding-window) attention export
};

/// The most layers a config may have (released models have < 200); every
/// layer becomes IR, so this bounds the work an import does.
constexpr int64_t kMaxLayers = 4096;

struct ModelConfig {
  std::string architecture; // "LlamaForCausalLM", ..., or "llama2.c"
  /// GateSWA exports: the architecture the model was made from, which fixes
  /// biases, q/k norms and BOS handling ("Qwen3ForCausalLM", ...).
  std::string baseArchitecture;
  AttentionKind attention = AttentionKind::Standard;
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;
  int64_t numLayers = 0;
  int64_t numHeads = 0;
  int64_t numKvHeads = 0;
  int64_t headDim = 0;
  int64_t vocabSize = 0;
  int64_t maxPositions = 0;
  double rmsNormEps = 1e-6;
  double ropeTheta = 10000.0;
  /// Llama 3.1 rope_scaling: factor, low_freq_factor, high_freq_factor,
  /// original_max_position_embeddings.
  std::optional<std::array<double, 4>> llama3Scaling;
  bool tieWordEmbeddings = false;
  bool attentionBias = false; // Qwen2: q/k/v projections carry biases
  bool qkNorm = false;        // Qwen3: per-head RMSNorm on q and k
  bool interleavedRope = false; // llama2.c pairs (2i, 2i+1)

  /// MLA (DeepSeek field names). qLoraRank 0 = a full-rank q_proj.
  int64_t qLoraRank = 0;
  int64_t kvLoraRank = 0;
  int64_t qkNopeHeadDim = 0;
  int64_t qkRopeHeadDim = 0;
  int64_t vHeadDim = 0;
  /// DeepSeek's q_a_layernorm / kv_a_layernorm are built with the RMSNorm
  /// class default eps (1e-6), not rms_norm_eps.
  double latentNormEps = 1e-6;

  /// Configs whose kv_lora_rank, qk_rope_head_dim or rope_theta is a list
  /// (one entry per layer, attnedit's export of per-layer MLA sizes): the
  /// value of each layer; 0 for a layer that is not MLA. Empty when the
  /// field is one number, which the scalar above then holds for every layer.
  std::vector<int64_t> layerKvLoraRank;
  std::vector<int64_t> layerQkRopeHeadDim;
  std::vector<double> layerRopeTheta;
  int64_t kvLoraRankOf(int64_t layer) const {
    return layerKvLoraRank.empty() ? kvLoraRank : layerKvLoraRank[layer];
  }
  int64_t qkRopeHeadDimOf(int64_t layer) const {
    return layerQkRopeHeadDim.empty() ? qkRopeHeadDim : layerQkRopeHeadDim[layer];
  }
  double ropeThetaOf(int64_t layer) const {
    return layerRopeTheta.empty() ? ropeTheta : layerRopeTheta[layer];
  }

  /// GateSWA, per layer: the window (0 = a full-attention layer), whether
  /// the output gate and the sink logits are present. The gate kind is
  /// "headwise" or "elementwise" for every gated layer.
  std::vector<int64_t> layerWindows;
  std::vector<bool> layerGated;
  std::vector<bool> layerSinks;
  std::string gateKind = "none";
  /// GateSWA configs of planned (mixed) edits: the layers that are MLA, with
  /// the MLA fields above and DeepSeek's interleaved q_pe/k_pe rows.
  std::vector<bool> layerMla;

  /// The token the model's text starts with (none for Qwen, whose config
  /// names one its tokenizers never prepend).
  std::optional<int32_t> bosTokenId;
  /// The config's bos_token_id, prepended or not (written back on export).
  std::optional<int32_t> configBosTokenId;
  /// Generation stops before emitting any of these.
  std::vector<int32_t> stopTokenIds;
  /// generation_config.json's sampling settings (temperature, top_k, top_p,
  /// min_p, repetition_penalty), those it names, and its do_sample.
  std::vector<std::pair<std::string, double>> samplingSettings;
  std::optional<bool> doSample;
};

/// Parses an HF config.json. Errors name the file and the field.
llvm::Expected<ModelConfig> parseHFConfig(llvm::StringRef path);
/// The same, of a config already read by readConfigJson (\p path names it
/// in errors).
llvm::Expected<ModelConfig> parseHFConfig(llvm::StringRef path, const llvm::json::Value &json);

/// The JSON object a config file holds, as written (errors name the file).
llvm::Expected<llvm::json::Value> readConfigJson(llvm::StringRef path);

/// Reads an HF generation_config.json into `config`: its eos_token_id values
/// join `stopTokenIds` (instruct checkpoints list their end-of-turn tokens,
/// Llama 3's <|eot_id|>, Qwen2.5's <|im_end|>, there only), and its sampling
/// settings (Qwen3's temperature 0.6, top_k 20, top_p 0.95) become
/// `samplingSettings`. Errors name the file and the field.
llvm::Error readGenerationConfig(llvm::StringRef path, ModelConfig &config);

/// Whether text starts with config.json's BOS, decided in model directory
/// `dir` as transformers' tokenizer decides it: tokenizer_config.json's
/// add_bos_token where it says; else yes for the SentencePiece-era classes
/// (LlamaTokenizer, CodeLlama, Gemma), whose default it is; else by
/// tokenizer.json's post_processor template, so that a tokenizer adding
/// none adds none (SmolLM2: Llama architecture, ChatML, config.json's BOS
/// <|im_start|>). Llama 3's <|begin_of_text|> stays without a template, as
/// in llama.cpp: its first tokenizer.json lacked the one later added.
/// Errors name the file and the field.
llvm::Error readTokenizerBos(llvm::StringRef dir, ModelConfig &config);

/// A llama2.c checkpoint: its header as a config and its weights under HF
/// Llama names (model.layers.N.self_attn.q_proj.weight, ...).
struct Llama2cCheckpoint {
  ModelConfig config;
  std::unique_ptr<WeightFile> weights;
};
llvm::Expected<Llama2cCheckpoint> openLlama2c(llvm::StringRef path);

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_MODELCONFIG_H
