//===- ModelExport.cpp - modules to loadable model directories -------------===//
//
// Reads the decoder @forward computes (embedding, per-layer norms, attention
// composite, SwiGLU MLP, final norm, head) off its ops and parameters, maps
// it onto the target format's tensor names and config fields, applies the
// exact rewrites that format needs, and lets the caller prove the result
// before it is renamed into place. See ModelExport.h for the formats.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/ModelExport.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/Frontend/WeightFile.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/IR/RopeFrequencies.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"

#include <array>
#include <cmath>
#include <deque>
#include <map>
#include <optional>

using namespace mlir;
using namespace mlir::attnedit;
namespace fs = llvm::sys::fs;
namespace path = llvm::sys::path;

/// DeepSeek builds q_a_layernorm / kv_a_layernorm with the RMSNorm class
/// default eps, not config.rms_norm_eps (modeling_deepseek.py).
static constexpr double kDeepseekLatentEps = 1e-6;

namespace {

/// Config fields every layer must agree on; the first layer sets them.
struct Uniform {
  llvm::json::Object fields;
  llvm::Error check(llvm::StringRef key, llvm::json::Value value, int64_t layer) {
    if (const llvm::json::Value *seen = fields.get(key)) {
      if (*seen != value) {
        std::string a, b;
        llvm::raw_string_ostream(a) << *seen;
        llvm::raw_string_ostream(b) << value;
        return makeError("export", llvm::formatv("layer {0} has {1} = {2} but layer 0 has {3}; the "
                                       "format has one value for all layers",
                                       layer, key, b, a)
                             .str());
      }
      return llvm::Error::success();
    }
    fields[key] = std::move(value);
    return llvm::Error::success();
  }
};

/// Config fields a layer may set for itself: the MLA layers' latent rank
/// and RoPE width, and every layer's RoPE base (MLA layers may keep other
/// frequencies than the rest). Written as one value when every layer that
/// has the field agrees, else as a list with an entry per layer (null for
/// layers without the field), as OpenELM's config lists num_kv_heads.
struct PerLayer {
  int64_t layers = 0;
  std::map<std::string, std::vector<llvm::json::Value>> fields;

  void set(llvm::StringRef key, llvm::json::Value value, int64_t layer) {
    std::vector<llvm::json::Value> &values = fields[key.str()];
    if (values.empty())
      values.assign(layers, nullptr);
    values[layer] = std::move(value);
  }
  /// The config value of `key`; absent when no layer has the field.
  std::optional<llvm::json::Value> value(llvm::StringRef key) const {
    auto it = fields.find(key.str());
    if (it == fields.end())
      return std::nullopt;
    const llvm::json::Value *first = nullptr;
    bool same = true;
    for (const llvm::json::Value &v : it->second)
      if (v.kind() != llvm::json::Value::Null) {
        same &= !first || *first == v;
        first = first ? first : &v;
      }
    if (same)
      return *first;
    llvm::json::Array list;
    for (const llvm::json::Value &v : it->second)
      list.push_back(v);
    return llvm::json::Value(std::move(list));
  }
};

/// A parameter's values as the export writes them (row-major f32).
struct Weight {
  std::vector<int64_t> shape;
  std::vector<float> values;
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  int64_t rowSize() const { return shape.size() < 2 ? 1 : shape[1]; }
};

class Exporter {
public:
  Exporter(ModuleOp module, const ParameterReader &reader, const ExportOptions &options)
      : module(module), reader(reader), options(options) {}

  /// Reads the module into `config` and `tensors`.
  llvm::Error collect();
  llvm::Error write(llvm::StringRef dir, ExportSummary &summary);

  /// A copy of @forward's module where every unscoped parameter that has a
  /// value in the preferred scope is read from there: the function exported.
  OwningOpRef<ModuleOp> resolvedModule();

private:
  /// The parameter `value` is (through a convert), read through the reader.
  llvm::Expected<Weight> read(Value value, llvm::StringRef what);
  llvm::Expected<Weight> readParam(ParamOp param);
  llvm::Error add(const std::string &name, Value value, llvm::StringRef what);
  llvm::Error add(const std::string &name, Weight weight) {
    tensors[name] = std::move(weight);
    return llvm::Error::success();
  }

  llvm::Error collectStandard(Operation *op, int64_t layer, bool gateSwa);
  llvm::Error collectMla(MlaOp op, int64_t layer);
  llvm::Error collectDecoder();

  ModuleOp module;
  const ParameterReader &reader;
  const ExportOptions &options;
  func::FuncOp forward;
  llvm::StringMap<ParamOp> liveParams; // @forward's parameters by name

  Uniform uniform;
  PerLayer perLayer;
  std::vector<int64_t> layerWindows;
  std::vector<bool> layerGates, layerSinks, layerMla;
  std::string gateKind;

public:
  llvm::json::Object config;
  std::map<std::string, Weight> tensors;
  /// Parameter names of @forward the export placed; any other is an error.
  llvm::StringSet<> placed;
  std::string architecture;
};

} // namespace

static ParamOp paramOf(Value value) {
  if (!value)
    return nullptr;
  if (auto convert = value.getDefiningOp<ConvertOp>())
    value = convert.getInput();
  return value.getDefiningOp<ParamOp>();
}

llvm::Expected<Weight> Exporter::readParam(ParamOp param) {
  llvm::ArrayRef<int64_t> shape = param.getType().getShape();
  Weight w;
  w.shape.assign(shape.begin(), shape.end());
  auto values = reader(param.getName(), shape, param.getScope().value_or(""));
  if (!param.getScope() && !options.preferredScope.empty()) {
    auto preferred = reader(param.getName(), shape, options.preferredScope);
    if (preferred)
      values = std::move(preferred);
    else
      llvm::consumeError(preferred.takeError());
  }
  if (!values)
    return values.takeError();
  w.values = std::move(*values);
  return w;
}

llvm::Expected<Weight> Exporter::read(Value value, llvm::StringRef what) {
  ParamOp param = paramOf(value);
  if (!param)
    return makeError("export", what + " is computed, not a parameter; the export format has no place "
                            "for it");
  placed.insert(param.getName());
  return readParam(param);
}

llvm::Error Exporter::add(const std::string &name, Value value, llvm::StringRef what) {
  auto w = read(value, what);
  if (!w)
    return w.takeError();
  tensors[name] = std::move(*w);
  return llvm::Error::success();
}

OwningOpRef<ModuleOp> Exporter::resolvedModule() {
  OwningOpRef<ModuleOp> copy(cast<ModuleOp>(module->clone()));
  if (options.preferredScope.empty())
    return copy;
  Builder b(copy->getContext());
  copy->walk([&](ParamOp param) {
    if (param.getScope())
      return;
    auto t = reader(param.getName(), param.getType().getShape(), options.preferredScope);
    if (t)
      param.setScopeAttr(b.getStringAttr(options.preferredScope));
    else
      llvm::consumeError(t.takeError());
  });
  return copy;
}

/// Per head of `rowsPerHead` rows, moves the `rotary` rows starting at
/// `offset` from one RoPE pairing to the other. toHalf: interleaved pairs
/// (2i, 2i+1) -> rotate-half pairs (i, i + rotary/2), HF's llama2.c permute;
/// otherwise the inverse.
static void permuteRopeRows(Weight &w, int64_t heads, int64_t rowsPerHead, int64_t offset,
                            int64_t rotary, bool toHalf) {
  int64_t cols = w.values.size() / w.rows();
  std::vector<float> old = w.values;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < rotary / 2; ++i)
      for (int64_t p = 0; p < 2; ++p) {
        int64_t interleaved = h * rowsPerHead + offset + 2 * i + p;
        int64_t half = h * rowsPerHead + offset + p * (rotary / 2) + i;
        int64_t dst = toHalf ? half : interleaved, src = toHalf ? interleaved : half;
        std::copy_n(old.begin() + src * cols, cols, w.values.begin() + dst * cols);
      }
}

static void scaleRows(Weight &w, int64_t begin, int64_t end, double factor) {
  int64_t cols = w.values.size() / w.rows();
  for (int64_t i = begin * cols; i < end * cols; ++i)
    w.values[i] = (float)(w.values[i] * factor);
}

static std::string layerPrefix(int64_t layer) {
  return llvm::formatv("model.layers.{0}.", layer).str();
}

static double f64(FloatAttr a) { return a.getValueAsDouble(); }


llvm::Error Exporter::collectStandard(Operation *op, int64_t layer, bool gateSwa) {
  // AttentionOp and GateSwaOp share their common operands and attributes.
  auto get = [&](auto typed) -> llvm::Error {
    std::string p = layerPrefix(layer) + "self_attn.";
    int64_t hq = typed.getNumHeads(), hkv = typed.getNumKvHeads(), d = typed.getHeadDim();
    if ((int64_t)typed.getRotaryDim() != d)
      return makeError("export", llvm::formatv("layer {0} rotates {1} of {2} head dims; partial rotary "
                                     "embeddings have no field in the format",
                                     layer, typed.getRotaryDim(), d)
                           .str());
    bool interleaved = typed.getRopeStyle() == RopeStyle::Interleaved;
    double fold = f64(typed.getScaleAttr()) * std::sqrt((double)d);
    bool qkNorm = !typed.getQkNorm().empty();
    auto proj = [&](Value v, const char *name, int64_t heads, bool query) -> llvm::Error {
      auto w = read(v, p + name);
      if (!w)
        return w.takeError();
      // q·k is unchanged when q and k rows move alike; biases and per-head
      // norm weights are rows of the same features.
      if (interleaved)
        permuteRopeRows(*w, heads, w->rows() / heads, 0, d, /*toHalf=*/true);
      // HF scales scores by head_dim^-1/2; fold any other scale into q,
      // or into q_norm's weight when the norm would undo it.
      if (query && fold != 1.0 && (!qkNorm || llvm::StringRef(name).contains("norm")))
        scaleRows(*w, 0, w->rows(), fold);
      tensors[p + name] = std::move(*w);
      return llvm::Error::success();
    };
    if (llvm::Error e = proj(typed.getQWeight(), "q_proj.weight", hq, true))
      return e;
    if (llvm::Error e = proj(typed.getKWeight(), "k_proj.weight", hkv, false))
      return e;
    if (llvm::Error e = add(p + "v_proj.weight", typed.getVWeight(), p + "v_proj.weight"))
      return e;
    if (llvm::Error e = add(p + "o_proj.weight", typed.getOWeight(), p + "o_proj.weight"))
      return e;
    auto bias = typed.getQkvBias();
    if (!bias.empty()) {
      if (llvm::Error e = proj(bias[0], "q_proj.bias", hq, true))
        return e;
      if (llvm::Error e = proj(bias[1], "k_proj.bias", hkv, false))
        return e;
      if (llvm::Error e = add(p + "v_proj.bias", bias[2], p + "v_proj.bias"))
        return e;
    }
    if (qkNorm) {
      // A norm weight [D] is one "head" of D rows.
      if (llvm::Error e = proj(typed.getQkNorm()[0], "q_norm.weight", 1, true))
        return e;
      if (llvm::Error e = proj(typed.getQkNorm()[1], "k_norm.weight", 1, false))
        return e;
    }
    llvm::json::Array scaling;
    if (auto s = typed.getLlama3Scaling())
      for (double x : *s)
        scaling.push_back(x);
    struct {
      const char *key;
      llvm::json::Value value;
    } fields[] = {{"num_attention_heads", hq},
                  {"num_key_value_heads", hkv},
                  {"head_dim", d},
                  {"_llama3_scaling", std::move(scaling)},
                  {"_qkv_bias", !bias.empty()},
                  {"_qk_norm", qkNorm},
                  {"_qk_norm_eps", qkNorm ? f64(typed.getNormEpsAttr()) : 0.0},
                  {"_interleaved", interleaved}};
    for (auto &f : fields)
      if (llvm::Error e = uniform.check(f.key, std::move(f.value), layer))
        return e;
    perLayer.set("rope_theta", f64(typed.getRopeThetaAttr()), layer);
    return llvm::Error::success();
  };
  if (auto attention = dyn_cast<AttentionOp>(op)) {
    if (attention.getWindow() != 0)
      return makeError("export", llvm::formatv("layer {0} is plain attention with a window", layer).str());
    layerWindows.push_back(0);
    layerGates.push_back(false);
    layerSinks.push_back(false);
    return get(attention);
  }
  auto swa = cast<GateSwaOp>(op);
  std::string p = layerPrefix(layer) + "self_attn.";
  layerWindows.push_back(swa.getWindow());
  layerGates.push_back(swa.getGateWeight() != nullptr);
  layerSinks.push_back(swa.getSinks() != nullptr);
  if (swa.getGateWeight()) {
    const char *kind = swa.getGate() == GateKind::Elementwise ? "elementwise" : "headwise";
    if (!gateKind.empty() && gateKind != kind)
      return makeError("export", llvm::formatv("layer {0} has a {1} gate but an earlier layer a {2} "
                                     "one; the format has one gate kind",
                                     layer, kind, gateKind)
                           .str());
    gateKind = kind;
    if (llvm::Error e = add(p + "gate_proj.weight", swa.getGateWeight(), p + "gate_proj.weight"))
      return e;
  }
  if (swa.getSinks())
    if (llvm::Error e = add(p + "sinks", swa.getSinks(), p + "sinks"))
      return e;
  (void)gateSwa;
  return get(swa);
}

llvm::Error Exporter::collectMla(MlaOp op, int64_t layer) {
  std::string p = layerPrefix(layer) + "self_attn.";
  int64_t h = op.getNumHeads(), qr = op.getQLoraRank(), kvr = op.getKvLoraRank(),
          n = op.getQkNopeHeadDim(), r = op.getQkRopeHeadDim(), dv = op.getVHeadDim();
  // Llama 3.1 scaling leaves the pairs whose wavelength is under
  // original / high_freq_factor as they are: when it leaves every pair the
  // MLA rotates, DeepSeek's plain RoPE is the same; otherwise DeepSeek (linear,
  // dynamic, yarn) has no equivalent.
  if (std::optional<llvm::ArrayRef<double>> s = op.getLlama3Scaling()) {
    double theta = f64(op.getRopeThetaAttr());
    std::array<double, 4> scaling{(*s)[0], (*s)[1], (*s)[2], (*s)[3]};
    std::vector<double> scaled = ropeInverseFrequencies(theta, r, scaling),
                        plain = ropeInverseFrequencies(theta, r, std::nullopt);
    int64_t rescaled = 0;
    for (size_t i = 0; i < plain.size(); ++i)
      rescaled += scaled[i] != plain[i];
    if (rescaled)
      return makeError(
          "export",
          llvm::formatv("layer {0}: MLA with Llama 3 rope_scaling: {1} of its {2} RoPE pairs "
                        "are rescaled, which DeepSeek-V2 cannot express (it knows linear, "
                        "dynamic and yarn scaling); pairs with wavelengths under {3:F0} positions "
                        "(original_max_position_embeddings / high_freq_factor) are not, so a "
                        "smaller qk-rope-head-dim with rope-stride=1 exports exactly",
                        layer, rescaled, plain.size(), scaling[3] / scaling[2])
              .str());
  }
  bool rotateHalf = op.getRopeStyle() == RopeStyle::RotateHalf;
  // DeepSeek: softmax_scale = (n + r)^-1/2. Scaling all query rows by f
  // scales both score terms (q_nope·k_nope and q_pe·k_pe) by f.
  double fold = f64(op.getScaleAttr()) * std::sqrt((double)(n + r));
  // rms_norm(s·x, e') = rms_norm(x, e'/s²): scaling the rows that feed a
  // latent norm by s = sqrt(e'/e) turns DeepSeek's eps e' into ours, e.
  double eps = f64(op.getNormEpsAttr());
  double epsFold = std::sqrt(kDeepseekLatentEps / eps);

  auto query = [&](Value v, const char *name) -> llvm::Error {
    auto w = read(v, p + name);
    if (!w)
      return w.takeError();
    if (fold != 1.0)
      scaleRows(*w, 0, w->rows(), fold);
    // DeepSeek de-interleaves q_pe/k_pe before rotate_half, so its stored
    // RoPE rows are interleaved pairs.
    if (rotateHalf)
      permuteRopeRows(*w, h, n + r, n, r, /*toHalf=*/false);
    tensors[p + name] = std::move(*w);
    return llvm::Error::success();
  };
  if (qr == 0) {
    if (llvm::Error e = query(op.getQProj(), "q_proj.weight"))
      return e;
  } else {
    auto qa = read(op.getQAProj(), p + "q_a_proj.weight");
    if (!qa)
      return qa.takeError();
    if (epsFold != 1.0)
      scaleRows(*qa, 0, qa->rows(), epsFold);
    tensors[p + "q_a_proj.weight"] = std::move(*qa);
    if (llvm::Error e = add(p + "q_a_layernorm.weight", op.getQALayernorm(),
                            p + "q_a_layernorm.weight"))
      return e;
    if (llvm::Error e = query(op.getQBProj(), "q_b_proj.weight"))
      return e;
  }
  auto kva = read(op.getKvAProj(), p + "kv_a_proj_with_mqa.weight");
  if (!kva)
    return kva.takeError();
  if (epsFold != 1.0)
    scaleRows(*kva, 0, kvr, epsFold);
  if (rotateHalf)
    permuteRopeRows(*kva, 1, kvr + r, kvr, r, /*toHalf=*/false);
  tensors[p + "kv_a_proj_with_mqa.weight"] = std::move(*kva);
  if (llvm::Error e =
          add(p + "kv_a_layernorm.weight", op.getKvALayernorm(), p + "kv_a_layernorm.weight"))
    return e;
  if (llvm::Error e = add(p + "kv_b_proj.weight", op.getKvBProj(), p + "kv_b_proj.weight"))
    return e;
  if (llvm::Error e = add(p + "o_proj.weight", op.getOProj(), p + "o_proj.weight"))
    return e;
  struct {
    const char *key;
    llvm::json::Value value;
  } fields[] = {{"num_attention_heads", h},
                {"q_lora_rank", qr == 0 ? llvm::json::Value(nullptr) : llvm::json::Value(qr)},
                {"qk_nope_head_dim", n},
                {"v_head_dim", dv}};
  for (auto &f : fields)
    if (llvm::Error e = uniform.check(f.key, std::move(f.value), layer))
      return e;
  perLayer.set("kv_lora_rank", kvr, layer);
  perLayer.set("qk_rope_head_dim", r, layer);
  perLayer.set("rope_theta", f64(op.getRopeThetaAttr()), layer);
  return llvm::Error::success();
}

/// The architecture the module was imported as, mapped to an HF class; ""
/// when its layers tell (a GateSwaForCausalLM's standard layers are its
/// base's: q/k norms Qwen3's, q/k/v biases Qwen2's, neither Llama's).
static std::string baseArchitecture(ModuleOp module) {
  auto arch = module->getAttrOfType<StringAttr>(attrs::kArchitecture);
  if (!arch || arch.getValue() == "GateSwaForCausalLM")
    return "";
  if (arch.getValue() == "llama2.c")
    return "LlamaForCausalLM";
  return arch.getValue().str();
}

llvm::Error Exporter::collectDecoder() {
  forward.walk([&](ParamOp param) {
    Value result = param.getResult();
    bool live = llvm::any_of(result.getUsers(), [](Operation *user) {
      return !isa<ConvertOp>(user) || !user->getResult(0).use_empty();
    });
    if (live)
      liveParams.try_emplace(param.getName(), param);
  });
  auto named = [&](const std::string &name) -> llvm::Error {
    auto it = liveParams.find(name);
    if (it == liveParams.end())
      return makeError("export", "@forward uses no parameter '" + name + "'");
    placed.insert(name);
    auto w = readParam(it->second);
    if (!w)
      return w.takeError();
    tensors[name] = std::move(*w);
    return llvm::Error::success();
  };
  if (llvm::Error e = named("model.embed_tokens.weight"))
    return e;
  if (llvm::Error e = named("model.norm.weight"))
    return e;
  bool tied = !liveParams.count("lm_head.weight");
  if (!tied)
    if (llvm::Error e = named("lm_head.weight"))
      return e;
  int64_t layers = layerWindows.size();
  for (int64_t l = 0; l < layers; ++l)
    for (const char *name :
         {"input_layernorm.weight", "post_attention_layernorm.weight", "mlp.gate_proj.weight",
          "mlp.up_proj.weight", "mlp.down_proj.weight"})
      if (llvm::Error e = named(layerPrefix(l) + name))
        return e;
  for (const auto &entry : liveParams)
    if (!placed.count(entry.getKey()))
      return makeError("export", "parameter '" + entry.getKey() +
                       "' of @forward has no place in the exported format");

  // The decoder's RMSNorms (not the attention-internal ones) share one eps.
  std::optional<double> eps;
  llvm::Error bad = llvm::Error::success();
  forward.walk([&](RmsNormOp norm) {
    ParamOp w = paramOf(norm.getWeight());
    if (!w || !(w.getName().ends_with("layernorm.weight") || w.getName() == "model.norm.weight"))
      return;
    double e = norm.getEps().convertToDouble();
    if (eps && *eps != e && !bad)
      bad = makeError("export", llvm::formatv("the decoder's RMSNorms use eps {0} and {1}; the format "
                                    "has one rms_norm_eps",
                                    *eps, e)
                          .str());
    eps = e;
  });
  if (bad)
    return bad;
  llvm::consumeError(std::move(bad));
  const Weight &embed = tensors["model.embed_tokens.weight"];
  const Weight &up = tensors[layerPrefix(0) + "mlp.up_proj.weight"];
  config["vocab_size"] = embed.shape[0];
  config["hidden_size"] = embed.shape[1];
  config["intermediate_size"] = up.shape[0];
  config["num_hidden_layers"] = layers;
  config["rms_norm_eps"] = eps.value_or(1e-6);
  config["tie_word_embeddings"] = tied;
  config["hidden_act"] = "silu";
  config["torch_dtype"] = "float32";
  int64_t maxPositions = 2048;
  if (auto max = module->getAttrOfType<IntegerAttr>(attrs::kMaxPositions))
    maxPositions = max.getInt();
  config["max_position_embeddings"] = maxPositions;
  if (auto bos = module->getAttrOfType<IntegerAttr>(attrs::kBosToken))
    config["bos_token_id"] = bos.getInt();
  else if (auto named = module->getAttrOfType<IntegerAttr>(attrs::kConfigBosToken))
    config["bos_token_id"] = named.getInt();
  else
    config["bos_token_id"] = nullptr;
  llvm::json::Array stops;
  if (auto s = module->getAttrOfType<DenseI32ArrayAttr>(attrs::kStopTokens))
    for (int32_t id : s.asArrayRef())
      stops.push_back(id);
  if (stops.size() == 1)
    config["eos_token_id"] = stops[0];
  else if (stops.empty())
    config["eos_token_id"] = nullptr;
  else
    config["eos_token_id"] = std::move(stops);
  return llvm::Error::success();
}

llvm::Error Exporter::collect() {
  forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return makeError("export", "the module has no func.func @forward");
  auto attentionOps = [](func::FuncOp f) {
    SmallVector<Operation *> ops;
    f.walk([&](Operation *op) {
      if (isa<AttentionOp, MlaOp, GateSwaOp>(op))
        ops.push_back(op);
    });
    return ops;
  };
  SmallVector<Operation *> layers = attentionOps(forward);
  if (layers.empty())
    return makeError("export", "@forward has no attention the export recognises; run "
                     "--attnedit-raise-attention on a module with primitive attention first");
  int64_t numMla = llvm::count_if(layers, [](Operation *op) { return isa<MlaOp>(op); });
  int64_t numSwa = llvm::count_if(layers, [](Operation *op) { return isa<GateSwaOp>(op); });
  std::string base = baseArchitecture(module);
  perLayer.layers = layers.size();
  if (numMla > 0 && numMla == (int64_t)layers.size()) {
    for (auto [l, op] : llvm::enumerate(layers)) {
      layerWindows.push_back(0);
      if (llvm::Error e = collectMla(cast<MlaOp>(op), l))
        return e;
    }
    architecture = "DeepseekV2ForCausalLM";
  } else {
    // Some layers MLA, others not: GateSwaForCausalLM names each layer's
    // kind; MLA layers are stored as DeepSeek-V2 stores them.
    for (auto [l, op] : llvm::enumerate(layers)) {
      layerMla.push_back(isa<MlaOp>(op));
      if (auto mla = dyn_cast<MlaOp>(op)) {
        layerWindows.push_back(0);
        layerGates.push_back(false);
        layerSinks.push_back(false);
        if (llvm::Error e = collectMla(mla, l))
          return e;
      } else if (llvm::Error e = collectStandard(op, l, numSwa > 0)) {
        return e;
      }
    }
    bool bias = *uniform.fields.getBoolean("_qkv_bias");
    bool qkNorm = *uniform.fields.getBoolean("_qk_norm");
    if (base.empty())
      base = qkNorm ? "Qwen3ForCausalLM" : bias ? "Qwen2ForCausalLM" : "LlamaForCausalLM";
    bool llama = base == "LlamaForCausalLM", qwen2 = base == "Qwen2ForCausalLM",
         qwen3 = base == "Qwen3ForCausalLM";
    if (!llama && !qwen2 && !qwen3)
      return makeError("export", "the module's architecture '" + base +
                       "' has no standard-attention export");
    if (bias != qwen2)
      return makeError("export", base + (bias ? " has no q/k/v biases, but @forward's attention has them"
                                    : " has q/k/v biases, but @forward's attention has none"));
    if (qkNorm != qwen3)
      return makeError("export", base + (qkNorm ? " has no q/k norms, but @forward's attention has them"
                                      : " has q/k norms, but @forward's attention has none"));
    architecture = numSwa > 0 || numMla > 0 ? "GateSwaForCausalLM" : base;
  }
  if (llvm::Error e = collectDecoder())
    return e;

  // Attention fields.
  llvm::json::Object &u = uniform.fields;
  for (const char *key : {"num_attention_heads", "num_key_value_heads", "head_dim",
                          "q_lora_rank", "qk_nope_head_dim", "v_head_dim"})
    if (const llvm::json::Value *v = u.get(key))
      config[key] = *v;
  // DeepSeek and GateSWA configs take per-layer lists (attnedit's
  // extension); the plain formats have one value, which every layer of a
  // model imported from them still has.
  bool listsAllowed = architecture == "DeepseekV2ForCausalLM" ||
                      architecture == "GateSwaForCausalLM";
  for (const char *key : {"kv_lora_rank", "qk_rope_head_dim", "rope_theta"})
    if (std::optional<llvm::json::Value> v = perLayer.value(key)) {
      if (v->getAsArray() && !listsAllowed) {
        std::string list;
        llvm::raw_string_ostream(list) << *v;
        return makeError("export", llvm::formatv("the layers have {0} = {1}; {2} has one value "
                                                 "for all layers",
                                                 key, list, architecture)
                                       .str());
      }
      config[key] = std::move(*v);
    }
  config["architectures"] = llvm::json::Array{architecture};
  if (architecture == "DeepseekV2ForCausalLM") {
    config["model_type"] = "deepseek_v2";
    config["num_key_value_heads"] = *u.get("num_attention_heads");
    config["attention_bias"] = false;
    config["rope_scaling"] = nullptr;
    config["rope_interleave"] = true;
    config["n_routed_experts"] = nullptr;
    config["n_shared_experts"] = nullptr;
    config["first_k_dense_replace"] = (int64_t)layers.size();
    config["moe_layer_freq"] = 1;
    return llvm::Error::success();
  }
  if (const llvm::json::Array *s = u.getArray("_llama3_scaling"); s && !s->empty()) {
    const char *names[] = {"factor", "low_freq_factor", "high_freq_factor",
                           "original_max_position_embeddings"};
    llvm::json::Object scaling{{"rope_type", "llama3"}};
    for (int i = 0; i < 4; ++i)
      scaling[names[i]] = (*s)[i];
    config["rope_scaling"] = std::move(scaling);
  } else {
    config["rope_scaling"] = nullptr;
  }
  if (base == "Qwen3ForCausalLM") {
    double normEps = *u.getNumber("_qk_norm_eps");
    if (normEps != *config.getNumber("rms_norm_eps"))
      return makeError("export", llvm::formatv("q/k norms use eps {0} but the decoder's norms {1}; "
                                     "Qwen3 has one rms_norm_eps",
                                     normEps, *config.getNumber("rms_norm_eps"))
                           .str());
  }
  // Qwen2's q/k/v biases are not a config field (Qwen2Config has none):
  // `false` beside them read as a model without.
  if (base != "Qwen2ForCausalLM")
    config["attention_bias"] = false;
  config["mlp_bias"] = false;
  llvm::StringRef modelType = base == "Qwen2ForCausalLM"   ? "qwen2"
                              : base == "Qwen3ForCausalLM" ? "qwen3"
                                                           : "llama";
  config["model_type"] = modelType;
  if (base == "Qwen2ForCausalLM")
    config["use_sliding_window"] = false;
  if (architecture != "GateSwaForCausalLM")
    return llvm::Error::success();

  // GateSWA: per-layer structure on top of the base model's fields.
  config["model_type"] = "gate_swa";
  config["base_architecture"] = base;
  config["base_model_type"] = modelType;
  int64_t window = 0;
  llvm::json::Array types, gates, sinks;
  for (auto [l, w] : llvm::enumerate(layerWindows)) {
    if (w != 0 && window != 0 && w != window)
      return makeError("export", llvm::formatv("layers have windows {0} and {1}; the format has one "
                                     "sliding_window",
                                     window, w)
                           .str());
    if (w != 0)
      window = w;
    types.push_back(layerMla.size() > l && layerMla[l] ? "mla"
                    : w == 0                           ? "full_attention"
                                                       : "sliding_attention");
    gates.push_back((bool)layerGates[l]);
    sinks.push_back((bool)layerSinks[l]);
  }
  config["sliding_window"] = window == 0 ? llvm::json::Value(nullptr) : llvm::json::Value(window);
  config["layer_types"] = std::move(types);
  config["attention_gate"] = gateKind.empty() ? "none" : gateKind;
  config["layer_gates"] = std::move(gates);
  config["attention_sinks"] = llvm::is_contained(layerSinks, true);
  config["layer_sinks"] = std::move(sinks);
  return llvm::Error::success();
}

llvm::Error Exporter::write(llvm::StringRef dir, ExportSummary &summary) {
  std::vector<TensorToWrite> list;
  for (auto &[name, w] : tensors)
    list.push_back({name, DType::F32, w.shape,
                    llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(w.values.data()),
                                            w.values.size() * sizeof(float))});
  llvm::SmallString<256> weights(dir);
  path::append(weights, "model.safetensors");
  if (llvm::Error e = writeSafetensors(weights, list))
    return e;
  summary.numTensors = list.size();

  std::string tokenizer = options.tokenizerPath;
  if (tokenizer.empty())
    if (auto t = module->getAttrOfType<StringAttr>(attrs::kTokenizer))
      tokenizer = resolveModulePath(module, t.getValue());
  if (!tokenizer.empty()) {
    llvm::StringRef ext = path::extension(tokenizer);
    bool json = ext == ".json";
    llvm::SmallString<256> copy(dir);
    path::append(copy, json ? "tokenizer.json" : ext == ".model" ? "tokenizer.model" : "tokenizer.bin");
    if (std::error_code ec = fs::copy_file(tokenizer, copy))
      return makeError("export", tokenizer + ": cannot copy the tokenizer: " + ec.message());
    summary.tokenizerFile = path::filename(copy).str();
    // HF tokenizers keep their special-token settings beside tokenizer.json.
    if (json)
      for (const char *extra : {"tokenizer_config.json", "special_tokens_map.json"}) {
        llvm::SmallString<256> from(tokenizer), to(dir);
        path::remove_filename(from);
        path::append(from, extra);
        path::append(to, extra);
        if (fs::exists(from))
          if (std::error_code ec = fs::copy_file(from, to))
            return makeError("export", from + ": cannot copy: " + ec.message());
      }
  }

  // transformers reads a generation_config.json instead of config.json's
  // bos/eos ids, so it carries them too.
  if (auto sampling = module->getAttrOfType<DictionaryAttr>(attrs::kSamplingDefaults)) {
    llvm::json::Object generation{{"bos_token_id", *config.get("bos_token_id")},
                                  {"eos_token_id", *config.get("eos_token_id")}};
    for (NamedAttribute a : sampling) {
      if (auto b = dyn_cast<BoolAttr>(a.getValue()))
        generation[a.getName().getValue()] = b.getValue();
      else if (auto f = dyn_cast<FloatAttr>(a.getValue()))
        generation[a.getName().getValue()] = f.getValueAsDouble();
      else
        generation[a.getName().getValue()] = cast<IntegerAttr>(a.getValue()).getInt();
    }
    llvm::SmallString<256> generationPath(dir);
    path::append(generationPath, "generation_config.json");
    std::string generationText = formatJsonShortest(llvm::json::Value(std::move(generation)));
    if (llvm::Error e = writeFileAtomically(generationPath, generationText + "\n"))
      return e;
  }

  // config.json last: a directory without it is not a model.
  llvm::SmallString<256> configPath(dir);
  path::append(configPath, "config.json");
  std::string text = formatJsonShortest(llvm::json::Value(llvm::json::Object(config)));
  return writeFileAtomically(configPath, text + "\n");
}

llvm::Error attnedit::checkExportTarget(llvm::StringRef dir) {
  if (!fs::exists(dir))
    return llvm::Error::success();
  if (!fs::is_directory(dir))
    return makeError("export", dir + " exists and is not a directory; not replacing it");
  // What Exporter::write puts in a directory.
  static const llvm::StringLiteral kWritten[] = {
      "config.json",           "model.safetensors",       "tokenizer.json",
      "tokenizer.model",       "tokenizer.bin",           "tokenizer_config.json",
      "special_tokens_map.json", "generation_config.json"};
  auto foreign =
      foreignEntries(dir, [](llvm::StringRef name) { return llvm::is_contained(kWritten, name); });
  if (!foreign)
    return makeError("export", dir + ": cannot list: " + foreign.getError().message());
  if (!foreign->empty())
    return makeError("export", dir + " holds '" + foreign->front() +
                                   "', which an export does not write; not replacing the "
                                   "directory (choose a new output directory, or remove it)");
  return llvm::Error::success();
}

llvm::Error attnedit::checkExportable(ModuleOp module, const ParameterReader &read,
                                      const ExportOptions &options) {
  return Exporter(module, read, options).collect();
}

llvm::Expected<ExportSummary> attnedit::exportModel(ModuleOp module, const ParameterReader &read,
                                                    llvm::StringRef dir,
                                                    const ExportOptions &options) {
  Exporter exporter(module, read, options);
  if (llvm::Error e = exporter.collect())
    return std::move(e);
  ExportSummary summary;
  summary.architecture = exporter.architecture;

  llvm::SmallString<256> target(dir);
  fs::make_absolute(target);
  path::remove_dots(target, /*remove_dot_dot=*/true);
  // A link's directory is the one replaced (the link then names the new model): a link moved
  // aside was removed through, emptying the directory it named.
  target = followLinks(target);
  if (llvm::Error e = checkExportTarget(target))
    return std::move(e);
  std::string pid = std::to_string(llvm::sys::Process::getProcessId());
  std::string temp = scratchBeside(target, ".tmp-");
  fs::remove_directories(temp);
  // Errors name the output first: the scratch directory is ours, not the user's.
  auto notWritten = [&](const llvm::Twine &why) {
    return makeError("export", target + ": cannot be written: " + why);
  };
  if (std::error_code ec = createOutputDirectories(temp))
    return notWritten("cannot create " + temp + " beside it: " + ec.message());
  auto cleanup = llvm::make_scope_exit([&] { fs::remove_directories(temp); });
  if (llvm::Error e = exporter.write(temp, summary))
    return notWritten(llvm::toString(std::move(e)));

  if (options.check) {
    OwningOpRef<ModuleOp> resolved = exporter.resolvedModule();
    if (llvm::Error e = options.check(temp, *resolved))
      return std::move(e);
  }

  // Swap the finished directory into place: rename is atomic, so `dir` is
  // at every moment absent, the old model, or the new one.
  if (fs::exists(target)) {
    std::string old = (target + ".old-" + pid).str();
    fs::remove_directories(old);
    if (std::error_code ec = fs::rename(target, old))
      return makeError("export", target + ": cannot move the old directory aside: " + ec.message());
    if (std::error_code ec = fs::rename(temp, target)) {
      (void)fs::rename(old, target);
      return makeError("export", target + ": cannot rename into place: " + ec.message());
    }
    fs::remove_directories(old);
  } else if (std::error_code ec = fs::rename(temp, target)) {
    return makeError("export", target + ": cannot rename into place: " + ec.message());
  }
  cleanup.release();
  return summary;
}
