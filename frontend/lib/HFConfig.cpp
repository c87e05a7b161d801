//===- HFConfig.cpp - Hugging Face config.json parsing ---------------------===//
//
// Defaults follow transformers' LlamaConfig / Qwen2Config / Qwen3Config and
// DeepseekV2Config / DeepseekV3Config. Anything that would change the
// computation and that we do not implement (other rope scalings, MLP biases,
// Qwen2 sliding windows, activations other than SiLU, DeepSeek MoE layers) is
// rejected rather than silently ignored. transformers >= 5 writes the RoPE
// settings as rope_parameters, which is read too (parseRopeParameters).
//
// GateSwaForCausalLM is attnedit's own export of a GateSWA student (see
// Frontend/ModelExport.h): the base model's fields plus per-layer windows,
// gates and sinks. In DeepSeek and GateSWA configs kv_lora_rank,
// qk_rope_head_dim and rope_theta may also be lists with one entry per layer
// (attnedit's export of MLA layers of different sizes).
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/ModelConfig.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/IR/AttnEditDialect.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::attnedit;

/// An int or a list of ints (eos_token_id may be either) below `vocabSize`;
/// empty when absent.
static llvm::Expected<std::vector<int32_t>> tokenIds(const JsonReader &reader,
                                                     llvm::StringRef field, int64_t vocabSize) {
  const llvm::json::Value *v = reader.get(field);
  std::vector<int32_t> ids;
  if (!v)
    return ids;
  auto push = [&](const llvm::json::Value &x) -> llvm::Error {
    std::optional<int64_t> n = x.getAsInteger();
    if (!n || *n < 0 || *n > INT32_MAX)
      return reader.error(field, "must be a token id or a list of token ids");
    // Past the vocabulary it failed only at the first prompt, in the
    // embedding, naming neither this file nor the field.
    if (*n >= vocabSize)
      return reader.error(field, llvm::formatv("is {0}, past the vocabulary "
                                               "(vocab_size {1})",
                                               *n, vocabSize)
                                     .str());
    ids.push_back((int32_t)*n);
    return llvm::Error::success();
  };
  if (const llvm::json::Array *list = v->getAsArray()) {
    for (const llvm::json::Value &x : *list)
      if (llvm::Error e = push(x))
        return std::move(e);
  } else if (llvm::Error e = push(*v)) {
    return std::move(e);
  }
  return ids;
}

/// The llama3 scaling that `field` (rope_scaling, or transformers 5's
/// rope_parameters) asks for; std::nullopt for none. rope_parameters may
/// leave rope_type out, meaning "default", as transformers reads it.
static llvm::Expected<std::optional<std::array<double, 4>>>
parseRopeScaling(const JsonReader &config, llvm::StringRef field, bool llama3Allowed) {
  const llvm::json::Value *v = config.get(field);
  if (!v)
    return std::nullopt;
  const llvm::json::Object *scaling = v->getAsObject();
  if (!scaling)
    return config.error(field, "must be an object or null");
  std::optional<llvm::StringRef> type = scaling->getString("rope_type");
  if (!type)
    type = scaling->getString("type");
  if (!type && field == "rope_parameters")
    type = "default";
  if (!type)
    return config.error(field, "has no 'rope_type'");
  if (*type == "default")
    return std::nullopt;
  if (*type != "llama3" || !llama3Allowed)
    return config.error(field, "has rope_type '" + *type + "', which is not supported " +
                                   (llama3Allowed ? "(supported: llama3, default)"
                                                  : "for DeepSeek models (only default)"));
  JsonReader inner = config.nested(field, *scaling);
  std::array<double, 4> values;
  const char *names[] = {"factor", "low_freq_factor", "high_freq_factor",
                         "original_max_position_embeddings"};
  for (int i = 0; i < 4; ++i)
    if (!inner.require(names[i]) || !inner.positiveNumber(names[i], values[i]))
      return inner.takeError();
  if (values[1] >= values[2])
    return config.error(field, "needs low_freq_factor < high_freq_factor");
  return values;
}

/// As the file writes it: formatv would print 500000 as "500000.00".
static std::string number(double x) { return llvm::formatv("{0}", llvm::format("%g", x)); }

static std::string describeScaling(const std::optional<std::array<double, 4>> &scaling) {
  if (!scaling)
    return "no scaling";
  return llvm::formatv("llama3 scaling (factor {0}, low_freq_factor {1}, high_freq_factor {2}, "
                       "original_max_position_embeddings {3})",
                       number((*scaling)[0]), number((*scaling)[1]), number((*scaling)[2]),
                       number((*scaling)[3]));
}

/// transformers >= 5 writes rope_parameters {rope_type, rope_theta, scaling
/// fields} and no top-level rope_theta or rope_scaling. It reads
/// rope_scaling in preference to rope_parameters, and rope_parameters'
/// rope_theta in preference to the top-level one; transformers 4 reads only
/// the top-level fields. Runs after those are read into `config`, and
/// refuses a file whose two kinds of fields disagree, since which of them
/// holds depends on the transformers version.
static llvm::Error parseRopeParameters(JsonReader &reader, ModelConfig &config,
                                       bool llama3Allowed) {
  const llvm::json::Value *v = reader.get("rope_parameters");
  if (!v)
    return llvm::Error::success();
  const llvm::json::Object *params = v->getAsObject();
  if (!params)
    return reader.error("rope_parameters", "must be an object or null");
  // Models with several attention kinds key it by layer type; without a
  // rope_type it would read as the default RoPE for every layer.
  for (const auto &[key, value] : *params)
    if (value.getAsObject())
      return reader.error("rope_parameters",
                          "holds RoPE settings per layer type ('" + key.str() +
                              "'), which are not supported");
  JsonReader inner = reader.nested("rope_parameters", *params);
  std::optional<double> theta;
  if (inner.get("rope_theta")) {
    double t = 0;
    if (!inner.positiveNumber("rope_theta", t))
      return inner.takeError();
    theta = t;
  }
  auto scaling = parseRopeScaling(reader, "rope_parameters", llama3Allowed);
  if (!scaling)
    return scaling.takeError();

  if (reader.get("rope_scaling")) {
    if (*scaling != config.llama3Scaling)
      return reader.error("rope_scaling",
                          "asks for " + describeScaling(config.llama3Scaling) +
                              " but field 'rope_parameters' for " + describeScaling(*scaling));
    if (theta && *theta != config.ropeTheta)
      return inner.error("rope_theta",
                         llvm::formatv("is {0}, but rope_scaling is given too, with which "
                                       "transformers takes rope_theta from the top level "
                                       "({1}{2})",
                                       number(*theta), number(config.ropeTheta),
                                       reader.get("rope_theta") ? "" : ", its default"));
    return llvm::Error::success();
  }
  if (theta) {
    if (!config.layerRopeTheta.empty())
      return reader.error("rope_theta", "is a per-layer list, and field "
                                        "'rope_parameters.rope_theta' gives one value too");
    if (reader.get("rope_theta") && *theta != config.ropeTheta)
      return reader.error("rope_theta",
                          llvm::formatv("is {0} but field 'rope_parameters.rope_theta' is "
                                        "{1} (transformers 4 reads the first, 5 the second)",
                                        number(config.ropeTheta), number(*theta)));
    config.ropeTheta = *theta;
  }
  config.llama3Scaling = *scaling;
  return llvm::Error::success();
}

/// transformers 5 reads rope_scaling as rope_parameters, rope_theta
/// included; transformers 4 ignores a rope_theta there. A file where the two
/// disagree is refused, as for rope_parameters.
static llvm::Error checkRopeScalingTheta(JsonReader &reader, const ModelConfig &config) {
  const llvm::json::Value *v = reader.get("rope_scaling");
  const llvm::json::Object *scaling = v ? v->getAsObject() : nullptr;
  if (!scaling || !scaling->get("rope_theta"))
    return llvm::Error::success();
  JsonReader inner = reader.nested("rope_scaling", *scaling);
  double theta = 0;
  if (!inner.positiveNumber("rope_theta", theta))
    return inner.takeError();
  if (!config.layerRopeTheta.empty())
    return reader.error("rope_theta", "is a per-layer list, and field "
                                      "'rope_scaling.rope_theta' gives one value too");
  if (theta != config.ropeTheta)
    return inner.error("rope_theta",
                       llvm::formatv("is {0} but the top-level rope_theta is {1}{2} "
                                     "(transformers 4 reads the second, 5 the first)",
                                     number(theta), number(config.ropeTheta),
                                     reader.get("rope_theta") ? "" : ", its default"));
  return llvm::Error::success();
}

/// A config field that is a list, one entry per layer (attnedit's export of
/// per-layer MLA sizes and RoPE bases, as OpenELM's config lists
/// num_kv_heads per layer): checks the length; the entries are the caller's
/// to check. std::nullopt when the field is not a list.
static llvm::Expected<std::optional<std::vector<const llvm::json::Value *>>>
perLayerList(JsonReader &reader, llvm::StringRef field, int64_t layers) {
  const llvm::json::Value *v = reader.get(field);
  if (!v || !v->getAsArray())
    return std::nullopt;
  std::vector<const llvm::json::Value *> entries;
  if (!reader.list(field, layers, entries))
    return reader.takeError();
  return std::optional(std::move(entries));
}

/// DeepSeek-V2/V3 dense MLA fields. The latent sizes default as in
/// transformers' DeepseekV2Config/DeepseekV3Config; an explicit null
/// q_lora_rank means a full-rank q_proj.
/// The MLA sizes: DeepSeek's fields, also in GateSWA configs with "mla" layers.
/// kv_lora_rank and qk_rope_head_dim may be per-layer lists: an entry per
/// layer, null for the layers of a GateSWA config that are not MLA.
static llvm::Error parseMlaSizes(JsonReader &reader, ModelConfig &config) {
  const llvm::json::Value *qLora = reader.object().get("q_lora_rank");
  if (qLora && qLora->kind() == llvm::json::Value::Null) {
    config.qLoraRank = 0;
  } else {
    config.qLoraRank = 1536;
    if (!reader.positive("q_lora_rank", config.qLoraRank, kMaxConfigSize))
      return reader.takeError();
  }
  auto isMla = [&](int64_t l) {
    return config.attention == AttentionKind::Mla || config.layerMla[l];
  };
  struct {
    const char *field;
    int64_t *value;
    std::vector<int64_t> *perLayer; // null: one value for every layer
    int64_t fallback;
  } dims[] = {{"kv_lora_rank", &config.kvLoraRank, &config.layerKvLoraRank, 512},
              {"qk_nope_head_dim", &config.qkNopeHeadDim, nullptr, 128},
              {"qk_rope_head_dim", &config.qkRopeHeadDim, &config.layerQkRopeHeadDim, 64},
              {"v_head_dim", &config.vHeadDim, nullptr, 128}};
  for (auto &dim : dims) {
    if (dim.perLayer) {
      auto list = perLayerList(reader, dim.field, config.numLayers);
      if (!list)
        return list.takeError();
      if (*list) {
        dim.perLayer->assign(config.numLayers, 0);
        *dim.value = 0;
        for (auto [l, entry] : llvm::enumerate(**list)) {
          if (!isMla(l)) {
            if (entry->kind() != llvm::json::Value::Null)
              return reader.error(dim.field, llvm::formatv("entry {0} must be null: layer {0} "
                                                           "is not MLA",
                                                           l));
            continue;
          }
          std::optional<int64_t> n = entry->getAsInteger();
          if (!n || *n <= 0 || *n > kMaxConfigSize)
            return reader.error(dim.field, llvm::formatv("entry {0} (layer {0}) must be a "
                                                         "positive integer up to {1}",
                                                         l, kMaxConfigSize));
          (*dim.perLayer)[l] = *n;
          if (*dim.value == 0)
            *dim.value = *n; // the first MLA layer's, for code that wants one
        }
        continue;
      }
    }
    *dim.value = dim.fallback;
    if (!reader.positive(dim.field, *dim.value, kMaxConfigSize))
      return reader.takeError();
  }
  for (int64_t l = 0; l < config.numLayers; ++l)
    if (isMla(l) && config.qkRopeHeadDimOf(l) % 2 != 0)
      return reader.error("qk_rope_head_dim",
                          config.layerQkRopeHeadDim.empty()
                              ? std::string("must be even for rotary embeddings")
                              : llvm::formatv("entry {0} (layer {0}) must be even for rotary "
                                              "embeddings",
                                              l)
                                    .str());
  return llvm::Error::success();
}

/// rope_theta: one number, or (DeepSeek and GateSWA configs, whose MLA
/// layers may keep other RoPE frequencies than the rest) one per layer.
static llvm::Error parseRopeTheta(JsonReader &reader, ModelConfig &config, bool perLayerAllowed) {
  auto list = perLayerList(reader, "rope_theta", config.numLayers);
  if (!list)
    return list.takeError();
  if (!*list) {
    if (!reader.positiveNumber("rope_theta", config.ropeTheta))
      return reader.takeError();
    return llvm::Error::success();
  }
  if (!perLayerAllowed)
    return reader.error("rope_theta", "is a list; " + config.architecture +
                                          " has one rope_theta (per-layer lists are for "
                                          "DeepSeek and GateSwaForCausalLM configs)");
  for (auto [l, entry] : llvm::enumerate(**list)) {
    std::optional<double> x = entry->getAsNumber();
    if (!x || !(*x > 0))
      return reader.error("rope_theta",
                          llvm::formatv("entry {0} (layer {0}) must be a positive number", l));
    config.layerRopeTheta.push_back(*x);
  }
  config.ropeTheta = config.layerRopeTheta.front();
  return llvm::Error::success();
}

static llvm::Error parseDeepseek(JsonReader &reader, ModelConfig &config, bool v3) {
  const llvm::json::Object &object = reader.object();
  if (llvm::Error e = parseMlaSizes(reader, config))
    return e;
  config.headDim = config.qkNopeHeadDim + config.qkRopeHeadDim;

  // DeepSeek's modeling code knows linear, dynamic and yarn scaling; none of
  // them is implemented here, and an approximation would be silently wrong.
  if (const llvm::json::Value *v = reader.get("rope_scaling")) {
    const llvm::json::Object *scaling = v->getAsObject();
    std::optional<llvm::StringRef> type;
    if (scaling && !(type = scaling->getString("type")))
      type = scaling->getString("rope_type");
    return reader.error("rope_scaling",
                        "has type '" + type.value_or("?") +
                            "', which is not supported for DeepSeek models (only null)");
  }
  bool bias = false;
  if (!reader.flag("attention_bias", bias))
    return reader.takeError();
  if (bias)
    return reader.error("attention_bias", "is true; MLA projection biases are not supported");
  // transformers' DeepSeek-V3 port can store q_pe/k_pe rows in rotate-half
  // order; the original DeepSeek code always de-interleaves them.
  config.interleavedRope = true;
  if (!reader.flag("rope_interleave", config.interleavedRope))
    return reader.takeError();

  // A layer is MoE when n_routed_experts is set, layer >= first_k_dense_replace
  // and layer % moe_layer_freq == 0 (DeepseekV2DecoderLayer); only dense
  // models are supported.
  std::optional<int64_t> experts;
  // Not reader.get: null (no experts) and absent (V3's 256) differ here.
  const llvm::json::Value *n = object.get("n_routed_experts");
  if (!n) {
    if (v3)
      experts = 256;
  } else if (n->kind() != llvm::json::Value::Null) {
    std::optional<int64_t> e = n->getAsInteger();
    if (!e || *e < 0)
      return reader.error("n_routed_experts", "must be a non-negative integer or null");
    if (*e > 0)
      experts = *e;
  }
  if (experts) {
    int64_t firstDense = 0, freq = 1;
    if (const llvm::json::Value *f = object.get("first_k_dense_replace")) {
      std::optional<int64_t> x = f->getAsInteger();
      if (!x || *x < 0)
        return reader.error("first_k_dense_replace", "must be a non-negative integer");
      firstDense = *x;
    } else if (v3) {
      firstDense = 3;
    }
    if (!reader.positive("moe_layer_freq", freq, kMaxConfigSize))
      return reader.takeError();
    // The first MoE layer: the smallest multiple of freq at or past firstDense.
    int64_t firstMoe =
        firstDense >= config.numLayers ? config.numLayers : (firstDense + freq - 1) / freq * freq;
    if (firstMoe < config.numLayers)
      return reader.error(
          "n_routed_experts",
          llvm::formatv("is {0}, so layer {1} is a mixture of experts (first_k_dense_replace "
                        "{2} < num_hidden_layers {3}); only dense DeepSeek models are "
                        "supported",
                        *experts, firstMoe, firstDense, config.numLayers));
  }
  return llvm::Error::success();
}

/// GateSWA per-layer structure: layer_types / sliding_window, attention_gate
/// with optional layer_gates, attention_sinks with optional layer_sinks.
static llvm::Error parseGateSwa(JsonReader &reader, ModelConfig &config) {
  int64_t layers = config.numLayers;
  std::vector<const llvm::json::Value *> types;
  if (!reader.list("layer_types", layers, types))
    return reader.takeError();
  config.layerWindows.assign(layers, 0);
  config.layerMla.assign(layers, false);
  bool anySliding = false;
  for (auto [l, v] : llvm::enumerate(types)) {
    std::optional<llvm::StringRef> t = v->getAsString();
    if (!t || (*t != "full_attention" && *t != "sliding_attention" && *t != "mla"))
      return reader.error("layer_types", "entries must be \"full_attention\", "
                                         "\"sliding_attention\" or \"mla\"");
    anySliding |= *t == "sliding_attention";
    config.layerMla[l] = *t == "mla";
  }
  // A planned edit mixes kinds: its MLA layers are DeepSeek-V2's, with
  // DeepSeek's size fields.
  if (llvm::is_contained(config.layerMla, true))
    if (llvm::Error e = parseMlaSizes(reader, config))
      return e;
  if (anySliding) {
    int64_t window = 0;
    if (!reader.require("sliding_window") ||
        !reader.positive("sliding_window", window, kMaxConfigSize))
      return reader.takeError();
    for (auto [l, v] : llvm::enumerate(types))
      if (*v->getAsString() == "sliding_attention")
        config.layerWindows[l] = window;
  }
  if (!reader.string("attention_gate", config.gateKind))
    return reader.takeError();
  if (config.gateKind != "headwise" && config.gateKind != "elementwise" &&
      config.gateKind != "none")
    return reader.error("attention_gate",
                        "is '" + config.gateKind + "'; expected headwise, elementwise or none");
  bool sinks = false;
  if (!reader.flag("attention_sinks", sinks))
    return reader.takeError();
  auto perLayer = [&](llvm::StringRef field, bool fallback,
                      std::vector<bool> &out) -> llvm::Error {
    std::vector<const llvm::json::Value *> values;
    if (!reader.list(field, layers, values))
      return reader.takeError();
    out.assign(layers, fallback);
    for (auto [l, v] : llvm::enumerate(values)) {
      std::optional<bool> b = v->getAsBoolean();
      if (!b)
        return reader.error(field, "entries must be true or false");
      out[l] = *b;
    }
    return llvm::Error::success();
  };
  if (llvm::Error e = perLayer("layer_gates", config.gateKind != "none", config.layerGated))
    return e;
  if (llvm::Error e = perLayer("layer_sinks", sinks, config.layerSinks))
    return e;
  if (config.gateKind == "none" && llvm::is_contained(config.layerGated, true))
    return reader.error("layer_gates", "marks gated layers but attention_gate is none");
  if (!sinks && llvm::is_contained(config.layerSinks, true))
    return reader.error("layer_sinks", "marks layers with sinks but attention_sinks is false");
  return llvm::Error::success();
}

static std::string architectureOfModelType(llvm::StringRef type) {
  return llvm::StringSwitch<std::string>(type)
      .Case("llama", "LlamaForCausalLM")
      .Case("qwen2", "Qwen2ForCausalLM")
      .Case("qwen3", "Qwen3ForCausalLM")
      .Case("deepseek_v2", "DeepseekV2ForCausalLM")
      .Case("deepseek_v3", "DeepseekV3ForCausalLM")
      .Case("gate_swa", "GateSwaForCausalLM")
      .Default(type.str());
}

static llvm::Error fileError(llvm::StringRef path, const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: %s", path.str().c_str(),
                                 msg.str().c_str());
}

llvm::Expected<llvm::json::Value> attnedit::readConfigJson(llvm::StringRef path) {
  auto buffer = readInputFile(path, /*isText=*/true);
  if (!buffer)
    return fileError(path, "cannot open: " + buffer.getError().message());
  llvm::Expected<llvm::json::Value> json = parseJson((*buffer)->getBuffer());
  if (!json)
    return fileError(path, "not valid JSON: " + llvm::toString(json.takeError()));
  if (!json->getAsObject())
    return fileError(path, "not a JSON object");
  return json;
}

llvm::Error attnedit::readGenerationConfig(llvm::StringRef path, ModelConfig &config) {
  llvm::Expected<llvm::json::Value> json = readConfigJson(path);
  if (!json)
    return json.takeError();
  JsonReader reader(path, *json->getAsObject(), /*nullIsMissing=*/true);
  llvm::Expected<std::vector<int32_t>> eos = tokenIds(reader, "eos_token_id", config.vocabSize);
  if (!eos)
    return eos.takeError();
  for (int32_t id : *eos)
    if (!llvm::is_contained(config.stopTokenIds, id))
      config.stopTokenIds.push_back(id);
  // The fields vLLM applies; others (max_length, num_beams, pad_token_id)
  // are left to the command line and the request, as vLLM leaves them.
  for (llvm::StringRef key :
       {"temperature", "top_k", "top_p", "min_p", "repetition_penalty", "max_new_tokens"}) {
    double value;
    if (!reader.get(key))
      continue;
    if (!reader.number(key, value))
      return reader.takeError();
    if (std::optional<std::string> wrong = checkSamplingSetting(key, value))
      return reader.error(key, *wrong);
    config.samplingSettings.emplace_back(key.str(), value);
  }
  bool doSample;
  if (reader.get("do_sample")) {
    if (!reader.flag("do_sample", doSample))
      return reader.takeError();
    config.doSample = doSample;
  }
  return llvm::Error::success();
}

/// Whether tokenizer.json's post_processor starts text with a special token:
/// a template decides; none adds nothing, but for Llama 3's
/// <|begin_of_text|> (none for anything else it may hold).
static llvm::Expected<std::optional<bool>> postProcessorAddsBos(llvm::StringRef path,
                                                                const ModelConfig &config) {
  llvm::Expected<llvm::json::Value> json = readConfigJson(path);
  if (!json)
    return json.takeError();
  const llvm::json::Object &root = *json->getAsObject();
  const llvm::json::Object *post = root.getObject("post_processor");
  const llvm::json::Object *templ = nullptr;
  bool other = false;
  auto look = [&](const llvm::json::Object &p) {
    std::optional<llvm::StringRef> type = p.getString("type");
    if (type == "TemplateProcessing")
      templ = &p;
    else if (type != "ByteLevel")
      other = true; // Roberta's, Bert's: special tokens of their own
  };
  if (post && post->getString("type") == "Sequence") {
    if (const llvm::json::Array *steps = post->getArray("processors"))
      for (const llvm::json::Value &step : *steps)
        if (const llvm::json::Object *o = step.getAsObject())
          look(*o);
  } else if (post) {
    look(*post);
  }
  if (templ) {
    const llvm::json::Array *single = templ->getArray("single");
    const llvm::json::Object *first =
        single && !single->empty() ? (*single)[0].getAsObject() : nullptr;
    return std::optional<bool>(first && first->get("SpecialToken"));
  }
  if (other)
    return std::optional<bool>();
  // Llama 3's first tokenizer.json lacked the template its later one adds
  // <|begin_of_text|> with; llama.cpp adds it by the tokenizer's kind.
  if (const llvm::json::Array *added = root.getArray("added_tokens"))
    for (const llvm::json::Value &token : *added)
      if (const llvm::json::Object *o = token.getAsObject())
        if (o->getInteger("id") == config.bosTokenId &&
            o->getString("content") == "<|begin_of_text|>")
          return std::optional<bool>();
  return std::optional<bool>(false);
}

llvm::Error attnedit::readTokenizerBos(llvm::StringRef dir, ModelConfig &config) {
  llvm::SmallString<256> configPath(dir), tokenizerPath(dir);
  llvm::sys::path::append(configPath, "tokenizer_config.json");
  llvm::sys::path::append(tokenizerPath, "tokenizer.json");
  std::optional<bool> add;
  std::string tokenizerClass;
  if (llvm::sys::fs::exists(configPath)) {
    llvm::Expected<llvm::json::Value> json = readConfigJson(configPath);
    if (!json)
      return json.takeError();
    JsonReader reader(configPath, *json->getAsObject(), /*nullIsMissing=*/true);
    bool flag;
    if (reader.get("add_bos_token")) {
      if (!reader.flag("add_bos_token", flag))
        return reader.takeError();
      add = flag;
    }
    if (!reader.string("tokenizer_class", tokenizerClass))
      return reader.takeError();
  }
  // transformers' SentencePiece-era classes rebuild the post-processor from
  // add_bos_token, true by default; the others follow tokenizer.json's.
  bool rebuilds = llvm::StringRef(tokenizerClass).starts_with("Llama") ||
                  llvm::StringRef(tokenizerClass).starts_with("CodeLlama") ||
                  llvm::StringRef(tokenizerClass).starts_with("Gemma");
  // Without a BOS to drop (Qwen's) the file, megabytes of JSON, is not read.
  if (!add && !rebuilds && config.bosTokenId && llvm::sys::fs::exists(tokenizerPath)) {
    llvm::Expected<std::optional<bool>> fromTokenizer = postProcessorAddsBos(tokenizerPath, config);
    if (!fromTokenizer)
      return fromTokenizer.takeError();
    add = *fromTokenizer;
  }
  if (!add)
    return llvm::Error::success();
  if (!*add)
    config.bosTokenId.reset();
  else if (!config.bosTokenId)
    config.bosTokenId = config.configBosTokenId;
  return llvm::Error::success();
}

llvm::Expected<ModelConfig> attnedit::parseHFConfig(llvm::StringRef path) {
  llvm::Expected<llvm::json::Value> json = readConfigJson(path);
  if (!json)
    return json.takeError();
  return parseHFConfig(path, *json);
}

llvm::Expected<ModelConfig> attnedit::parseHFConfig(llvm::StringRef path,
                                                    const llvm::json::Value &json) {
  auto fail = [&](const llvm::Twine &msg) { return fileError(path, msg); };
  const llvm::json::Object *object = json.getAsObject();
  JsonReader reader(path, *object, /*nullIsMissing=*/true);

  ModelConfig config;
  // Present but not a list (a bare string) fell through to model_type,
  // which may name another class than the one written.
  const llvm::json::Value *archField = reader.get("architectures");
  if (archField && !archField->getAsArray())
    return reader.error("architectures", "must list the model class, as [\"NameForCausalLM\"]");
  if (const llvm::json::Array *archs = object->getArray("architectures")) {
    if (archs->empty() || !(*archs)[0].getAsString())
      return reader.error("architectures", "must list the model class");
    config.architecture = (*archs)[0].getAsString()->str();
  } else if (std::optional<llvm::StringRef> type = object->getString("model_type")) {
    config.architecture = architectureOfModelType(*type);
  } else {
    return fail("neither 'architectures' nor 'model_type' says what the model is");
  }
  bool deepseekV2 = config.architecture == "DeepseekV2ForCausalLM";
  bool deepseekV3 = config.architecture == "DeepseekV3ForCausalLM";
  bool deepseek = deepseekV2 || deepseekV3;
  bool gateSwa = config.architecture == "GateSwaForCausalLM";
  config.baseArchitecture = config.architecture;
  if (gateSwa) {
    if (!reader.get("base_architecture"))
      return reader.error("base_architecture",
                          "is missing; a GateSwaForCausalLM config names the architecture "
                          "it was made from");
    if (!reader.string("base_architecture", config.baseArchitecture))
      return reader.takeError();
    if (config.baseArchitecture != "LlamaForCausalLM" &&
        config.baseArchitecture != "Qwen2ForCausalLM" &&
        config.baseArchitecture != "Qwen3ForCausalLM")
      return reader.error("base_architecture",
                          "names '" + config.baseArchitecture +
                              "', which is not supported (supported: LlamaForCausalLM, "
                              "Qwen2ForCausalLM, Qwen3ForCausalLM)");
  }
  bool llama = config.baseArchitecture == "LlamaForCausalLM";
  bool qwen2 = config.baseArchitecture == "Qwen2ForCausalLM";
  bool qwen3 = config.baseArchitecture == "Qwen3ForCausalLM";
  if (!llama && !qwen2 && !qwen3 && !deepseek)
    return reader.error("architectures", "names '" + config.architecture +
                                             "', which is not supported (supported: "
                                             "LlamaForCausalLM, Qwen2ForCausalLM, "
                                             "Qwen3ForCausalLM, DeepseekV2ForCausalLM, "
                                             "DeepseekV3ForCausalLM, GateSwaForCausalLM)");

  struct {
    const char *field;
    int64_t *value;
    int64_t max;
  } required[] = {{"hidden_size", &config.hiddenSize, kMaxConfigSize},
                  {"intermediate_size", &config.intermediateSize, kMaxConfigSize},
                  {"num_hidden_layers", &config.numLayers, kMaxLayers},
                  {"num_attention_heads", &config.numHeads, kMaxConfigSize},
                  {"vocab_size", &config.vocabSize, kMaxConfigSize}};
  for (auto &size : required)
    if (!reader.require(size.field) || !reader.positive(size.field, *size.value, size.max))
      return reader.takeError();
  config.numKvHeads = config.numHeads;
  // transformers' defaults when the field is absent: Qwen2Config and
  // Qwen3Config 32768, the others 2048.
  config.maxPositions = qwen2 || qwen3 ? 32768 : 2048;
  if (!reader.positive("num_key_value_heads", config.numKvHeads, kMaxConfigSize) ||
      !reader.positive("max_position_embeddings", config.maxPositions, kMaxConfigSize) ||
      !reader.positiveNumber("rms_norm_eps", config.rmsNormEps))
    return reader.takeError();
  if (llvm::Error e = parseRopeTheta(reader, config, deepseek || gateSwa))
    return std::move(e);
  bool mlpBias = false;
  std::string act = "silu";
  if (!reader.flag("tie_word_embeddings", config.tieWordEmbeddings) ||
      !reader.flag("mlp_bias", mlpBias) || !reader.string("hidden_act", act))
    return reader.takeError();
  if (mlpBias)
    return reader.error("mlp_bias", "is true; MLP biases are not supported");
  if (act != "silu")
    return reader.error("hidden_act", "is '" + act + "'; only 'silu' is supported");

  if (deepseek) {
    // MLA ignores num_key_value_heads (every head reads the shared latent).
    config.numKvHeads = config.numHeads;
    config.attention = AttentionKind::Mla;
    if (llvm::Error e = parseDeepseek(reader, config, deepseekV3))
      return std::move(e);
  } else {
    if (auto scaling = parseRopeScaling(reader, "rope_scaling", /*llama3Allowed=*/true))
      config.llama3Scaling = *scaling;
    else
      return scaling.takeError();
    if (llvm::Error e = checkRopeScalingTheta(reader, config))
      return std::move(e);
    // transformers' RoPE initialisation reads it for every model type.
    double partialRotary = 1;
    if (!reader.positiveNumber("partial_rotary_factor", partialRotary))
      return reader.takeError();
    if (partialRotary != 1)
      return reader.error("partial_rotary_factor",
                          "is " + number(partialRotary) +
                              "; partial rotary embeddings are not supported (only 1)");
    bool slidingWindow = false;
    if (!reader.flag("use_sliding_window", slidingWindow) ||
        !reader.flag("attention_bias", config.attentionBias))
      return reader.takeError();

    if (config.numHeads % config.numKvHeads != 0)
      return reader.error("num_key_value_heads",
                          llvm::formatv("({0}) must divide num_attention_heads ({1})",
                                        config.numKvHeads, config.numHeads));
    // Qwen3 decouples head_dim from hidden_size / heads (Qwen3Config's
    // default is 128); the others may state it.
    if (!qwen3 && config.hiddenSize % config.numHeads != 0 && !reader.get("head_dim"))
      return reader.error("head_dim", "is missing and hidden_size is not divisible by "
                                      "num_attention_heads");
    config.headDim = qwen3 ? 128 : config.hiddenSize / config.numHeads;
    if (!reader.positive("head_dim", config.headDim, kMaxConfigSize))
      return reader.takeError();
    if (config.headDim % 2 != 0)
      return reader.error("head_dim", "must be even for rotary embeddings");
    // transformers slides layers max_window_layers and after (Qwen's
    // default 28): a model with no more layers than that has none.
    int64_t fullLayers = 28;
    if (slidingWindow && (qwen2 || qwen3) && !reader.integer("max_window_layers", fullLayers))
      return reader.takeError();
    if (slidingWindow && (!(qwen2 || qwen3) || fullLayers < config.numLayers)) {
      std::string which =
          qwen2 || qwen3
              ? llvm::formatv(" and max_window_layers ({0}) is below num_hidden_layers ({1}): "
                              "layers {2} on slide",
                              fullLayers, config.numLayers, std::max<int64_t>(fullLayers, 0))
                    .str()
              : "";
      return reader.error("use_sliding_window",
                          "is true" + which + "; " +
                              (qwen3 ? "Qwen3" : qwen2 ? "Qwen2" : "Llama") +
                              " sliding-window layers are not supported on import");
    }
    // Llama and Qwen3 put attention_bias on o_proj too, which attnedit's
    // attention has no operand for; Qwen2 always has q/k/v biases (and no
    // o_proj bias), whatever the config says.
    if (config.attentionBias && !qwen2)
      return reader.error("attention_bias", "is true, which adds an o_proj bias; attention "
                                            "output biases are not supported");
    config.attentionBias = qwen2;
    config.qkNorm = qwen3;
    if (gateSwa) {
      config.attention = AttentionKind::GateSwa;
      if (llvm::Error e = parseGateSwa(reader, config))
        return std::move(e);
    }
  }

  if (llvm::Error e = parseRopeParameters(reader, config, /*llama3Allowed=*/!deepseek))
    return std::move(e);

  llvm::Expected<std::vector<int32_t>> bos = tokenIds(reader, "bos_token_id", config.vocabSize);
  if (!bos)
    return bos.takeError();
  // Qwen's tokenizers never prepend BOS, although its config names one:
  // its text starts with no BOS, in training as in generation.
  if (!bos->empty())
    config.configBosTokenId = bos->front();
  if (!bos->empty() && !qwen2 && !qwen3)
    config.bosTokenId = bos->front();
  llvm::Expected<std::vector<int32_t>> eos = tokenIds(reader, "eos_token_id", config.vocabSize);
  if (!eos)
    return eos.takeError();
  config.stopTokenIds = *eos;
  return config;
}
