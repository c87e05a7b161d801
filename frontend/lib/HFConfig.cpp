//===- HFConfig.cpp - Hugging Face config.json parsing ---------------------===//
//
// Defaults follow transformers' LlamaConfig / Qwen2Config / Qwen3Config.
// Anything that would change the computation and that we do not implement
// (other rope scalings, MLP biases, Qwen2 sliding windows, activations other
// than SiLU) is rejected rather than silently ignored.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/ModelConfig.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

using namespace mlir;
using namespace mlir::attnedit;

namespace {

class ConfigReader {
public:
  ConfigReader(llvm::StringRef path, const llvm::json::Object &object)
      : path(path), object(object) {}

  llvm::Error error(llvm::StringRef field, const llvm::Twine &msg) const {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: field '%s' %s",
                                   path.str().c_str(), field.str().c_str(),
                                   msg.str().c_str());
  }

  llvm::Expected<int64_t> positive(llvm::StringRef field,
                                   std::optional<int64_t> fallback = std::nullopt) const {
    const llvm::json::Value *v = object.get(field);
    if (!v || v->kind() == llvm::json::Value::Null) {
      if (fallback)
        return *fallback;
      return error(field, "is missing");
    }
    std::optional<int64_t> n = v->getAsInteger();
    if (!n || *n <= 0)
      return error(field, "must be a positive integer");
    return *n;
  }

  llvm::Expected<double> positiveNumber(llvm::StringRef field, double fallback) const {
    const llvm::json::Value *v = object.get(field);
    if (!v || v->kind() == llvm::json::Value::Null)
      return fallback;
    std::optional<double> n = v->getAsNumber();
    if (!n || !(*n > 0))
      return error(field, "must be a positive number");
    return *n;
  }

  llvm::Expected<bool> flag(llvm::StringRef field, bool fallback) const {
    const llvm::json::Value *v = object.get(field);
    if (!v || v->kind() == llvm::json::Value::Null)
      return fallback;
    std::optional<bool> b = v->getAsBoolean();
    if (!b)
      return error(field, "must be true or false");
    return *b;
  }

  /// An int or a list of ints (eos_token_id may be either).
  llvm::Expected<std::vector<int32_t>> tokenIds(llvm::StringRef field) const {
    const llvm::json::Value *v = object.get(field);
    std::vector<int32_t> ids;
    if (!v || v->kind() == llvm::json::Value::Null)
      return ids;
    auto push = [&](const llvm::json::Value &x) -> llvm::Error {
      std::optional<int64_t> n = x.getAsInteger();
      if (!n || *n < 0 || *n > INT32_MAX)
        return error(field, "must be a token id or a list of token ids");
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

  llvm::StringRef path;
  const llvm::json::Object &object;
};

} // namespace

static llvm::Expected<std::optional<std::array<double, 4>>>
parseRopeScaling(const ConfigReader &config) {
  const llvm::json::Value *v = config.object.get("rope_scaling");
  if (!v || v->kind() == llvm::json::Value::Null)
    return std::nullopt;
  const llvm::json::Object *scaling = v->getAsObject();
  if (!scaling)
    return config.error("rope_scaling", "must be an object or null");
  std::optional<llvm::StringRef> type = scaling->getString("rope_type");
  if (!type)
    type = scaling->getString("type");
  if (!type)
    return config.error("rope_scaling", "has no 'rope_type'");
  if (*type == "default")
    return std::nullopt;
  if (*type != "llama3")
    return config.error("rope_scaling",
                        "has rope_type '" + *type + "', which is not supported (supported: "
                        "llama3, default)");
  ConfigReader inner(config.path, *scaling);
  std::array<double, 4> values;
  const char *names[] = {"factor", "low_freq_factor", "high_freq_factor",
                         "original_max_position_embeddings"};
  for (int i = 0; i < 4; ++i) {
    llvm::Expected<double> x = inner.positiveNumber(names[i], -1);
    if (!x)
      return x.takeError();
    if (*x < 0)
      return config.error(llvm::formatv("rope_scaling.{0}", names[i]).str(), "is missing");
    values[i] = *x;
  }
  if (values[1] >= values[2])
    return config.error("rope_scaling", "needs low_freq_factor < high_freq_factor");
  return values;
}

llvm::Expected<ModelConfig> attnedit::parseHFConfig(llvm::StringRef path) {
  auto fail = [&](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: %s",
                                   path.str().c_str(), msg.str().c_str());
  };
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return fail("cannot open: " + buffer.getError().message());
  llvm::Expected<llvm::json::Value> json = llvm::json::parse((*buffer)->getBuffer());
  if (!json)
    return fail("not valid JSON: " + llvm::toString(json.takeError()));
  const llvm::json::Object *object = json->getAsObject();
  if (!object)
    return fail("not a JSON object");
  ConfigReader reader(path, *object);

  ModelConfig config;
  if (const llvm::json::Array *archs = object->getArray("architectures")) {
    if (archs->empty() || !(*archs)[0].getAsString())
      return reader.error("architectures", "must list the model class");
    config.architecture = (*archs)[0].getAsString()->str();
  } else if (std::optional<llvm::StringRef> type = object->getString("model_type")) {
    config.architecture = llvm::StringSwitch<std::string>(*type)
                              .Case("llama", "LlamaForCausalLM")
                              .Case("qwen2", "Qwen2ForCausalLM")
                              .Case("qwen3", "Qwen3ForCausalLM")
                              .Default(type->str());
  } else {
    return fail("neither 'architectures' nor 'model_type' says what the model is");
  }
  bool llama = config.architecture == "LlamaForCausalLM";
  bool qwen2 = config.architecture == "Qwen2ForCausalLM";
  bool qwen3 = config.architecture == "Qwen3ForCausalLM";
  if (!llama && !qwen2 && !qwen3)
    return reader.error("architectures", "names '" + config.architecture +
                                             "', which is not supported (supported: "
                                             "LlamaForCausalLM, Qwen2ForCausalLM, "
                                             "Qwen3ForCausalLM)");

#define READ(dst, expr)                                                        \
  if (auto value = (expr))                                                     \
    dst = *value;                                                              \
  else                                                                         \
    return value.takeError();
  READ(config.hiddenSize, reader.positive("hidden_size"));
  READ(config.intermediateSize, reader.positive("intermediate_size"));
  READ(config.numLayers, reader.positive("num_hidden_layers"));
  READ(config.numHeads, reader.positive("num_attention_heads"));
  READ(config.numKvHeads, reader.positive("num_key_value_heads", config.numHeads));
  READ(config.vocabSize, reader.positive("vocab_size"));
  READ(config.maxPositions, reader.positive("max_position_embeddings", 2048));
  READ(config.rmsNormEps, reader.positiveNumber("rms_norm_eps", 1e-6));
  READ(config.ropeTheta, reader.positiveNumber("rope_theta", 10000.0));
  READ(config.tieWordEmbeddings, reader.flag("tie_word_embeddings", false));
  READ(config.llama3Scaling, parseRopeScaling(reader));
  bool mlpBias = false, slidingWindow = false;
  READ(mlpBias, reader.flag("mlp_bias", false));
  READ(slidingWindow, reader.flag("use_sliding_window", false));
  READ(config.attentionBias, reader.flag("attention_bias", false));
#undef READ

  if (config.numHeads % config.numKvHeads != 0)
    return reader.error("num_key_value_heads",
                        llvm::formatv("({0}) must divide num_attention_heads ({1})",
                                      config.numKvHeads, config.numHeads));
  // Qwen3 decouples head_dim from hidden_size / heads; the others may state it.
  if (config.hiddenSize % config.numHeads != 0 && !object->get("head_dim"))
    return reader.error("head_dim", "is missing and hidden_size is not divisible by "
                                    "num_attention_heads");
  auto headDim = reader.positive("head_dim", config.hiddenSize / config.numHeads);
  if (!headDim)
    return headDim.takeError();
  config.headDim = *headDim;
  if (config.headDim % 2 != 0)
    return reader.error("head_dim", "must be even for rotary embeddings");
  if (mlpBias)
    return reader.error("mlp_bias", "is true; MLP biases are not supported");
  if (slidingWindow)
    return reader.error("use_sliding_window", "is true; Qwen2 sliding-window layers are "
                                              "not supported on import");
  if (std::optional<llvm::StringRef> act = object->getString("hidden_act"))
    if (*act != "silu")
      return reader.error("hidden_act", "is '" + *act + "'; only 'silu' is supported");
  // Qwen2's attention always has q/k/v biases, whatever the config says.
  config.attentionBias |= qwen2;
  config.qkNorm = qwen3;

  llvm::Expected<std::vector<int32_t>> bos = reader.tokenIds("bos_token_id");
  if (!bos)
    return bos.takeError();
  if (!bos->empty())
    config.bosTokenId = bos->front();
  llvm::Expected<std::vector<int32_t>> eos = reader.tokenIds("eos_token_id");
  if (!eos)
    return eos.takeError();
  config.stopTokenIds = *eos;
  return config;
}
