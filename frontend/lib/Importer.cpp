//===- Importer.cpp - checkpoints to attnedit modules ----------------------===//
//
// The emitted graph is the literal decoder: attention appears as its primitive
// subgraph (built by AttentionOp::decompose, the composite's definition), so
// recognising attention is left to --attnedit-raise-attention. Checkpoints
// whose attention already is a converted one (DeepSeek MLA, attnedit's
// GateSWA export) import as the composite ops attnedit.mla / attnedit.gate_swa.
//
// Every tensor a checkpoint holds must be one the config's model reads: one
// left over means config.json and the weights disagree (fewer layers, no
// biases, another architecture), and the model built from the config would
// run and compute garbage. Only extras that change nothing pass, with a
// warning: RoPE inv_freq buffers, and an lm_head.weight that is a copy of the
// embedding the config ties it to.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/Importer.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/IR/AttnEditOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

#include <cstring>

using namespace mlir::attnedit;
using namespace mlir;
namespace fs = llvm::sys::fs;
namespace path = llvm::sys::path;

const TensorInfo *Checkpoint::find(llvm::StringRef name, const WeightFile **file) const {
  for (const auto &f : files)
    if (const TensorInfo *info = f->find(name)) {
      if (file)
        *file = f.get();
      return info;
    }
  return nullptr;
}

/// The shard files named by model.safetensors.index.json, each once, and
/// each tensor it lists with the index of its shard in those.
static llvm::Expected<std::vector<std::string>>
readShardIndex(llvm::StringRef indexPath, llvm::StringRef dir,
               std::vector<std::pair<std::string, size_t>> &listed) {
  auto buffer = readInputFile(indexPath, /*isText=*/true);
  if (!buffer)
    return makeError(indexPath, "cannot open: " + buffer.getError().message());
  llvm::Expected<llvm::json::Value> json = parseJson((*buffer)->getBuffer());
  if (!json)
    return makeError(indexPath, "not valid JSON: " + llvm::toString(json.takeError()));
  const llvm::json::Object *map =
      json->getAsObject() ? json->getAsObject()->getObject("weight_map") : nullptr;
  if (!map)
    return makeError(indexPath, "field 'weight_map' is missing or not an object");
  std::vector<std::string> shards;
  llvm::StringMap<size_t> seen;
  for (const auto &[name, file] : *map) {
    std::optional<llvm::StringRef> shard = file.getAsString();
    if (!shard || shard->empty() || shard->contains('/') || shard->starts_with(".."))
      return makeError(indexPath, "weight_map entry for '" + llvm::StringRef(name) +
                                      "' must be a file name in the model directory");
    auto [it, added] = seen.try_emplace(*shard, shards.size());
    if (added) {
      llvm::SmallString<256> full(dir);
      path::append(full, *shard);
      shards.push_back(full.str().str());
    }
    listed.emplace_back(name.str(), it->second);
  }
  return shards;
}

static llvm::Expected<Checkpoint> openHFDirectory(llvm::StringRef dir, bool configOnly) {
  Checkpoint checkpoint;
  checkpoint.source = dir.str();
  llvm::SmallString<256> configPath(dir), indexPath(dir), singlePath(dir), tokPath(dir);
  path::append(configPath, "config.json");
  path::append(indexPath, "model.safetensors.index.json");
  path::append(singlePath, "model.safetensors");
  path::append(tokPath, "tokenizer.json");
  llvm::SmallString<256> binTokPath(dir), spmTokPath(dir);
  path::append(binTokPath, "tokenizer.bin"); // a llama2.c tokenizer, as exports write it
  path::append(spmTokPath, "tokenizer.model"); // SentencePiece, when no tokenizer.json
  if (!fs::exists(configPath)) {
    // attnedit-compile writes the manifest last: without it an artifact is
    // unfinished or damaged, not a model directory missing its config.
    llvm::SmallString<256> module(dir);
    path::append(module, "module.mlir");
    if (fs::exists(module))
      return makeError(dir, "an attnedit-compile artifact without its manifest.aexm (unfinished "
                            "or damaged): run attnedit-compile again");
    return makeError(dir, "not a model directory: no config.json");
  }
  llvm::Expected<ModelConfig> config = parseHFConfig(configPath);
  if (!config)
    return config.takeError();
  llvm::SmallString<256> generationPath(dir);
  path::append(generationPath, "generation_config.json");
  if (fs::exists(generationPath))
    if (llvm::Error e = readGenerationConfig(generationPath, *config))
      return e;
  if (llvm::Error e = readTokenizerBos(dir, *config))
    return e;
  checkpoint.config = std::move(*config);
  if (fs::exists(tokPath))
    checkpoint.tokenizerPath = tokPath.str().str();
  else if (fs::exists(binTokPath))
    checkpoint.tokenizerPath = binTokPath.str().str();
  else if (fs::exists(spmTokPath))
    checkpoint.tokenizerPath = spmTokPath.str().str();
  checkpoint.configOnly = configOnly;
  if (configOnly)
    return checkpoint;

  std::vector<std::string> shards;
  std::vector<std::pair<std::string, size_t>> listed;
  // transformers loads model.safetensors when both are there (a directory
  // resharded or consolidated in place), so the shards may be other weights.
  if (fs::exists(singlePath)) {
    if (fs::exists(indexPath))
      warn(indexPath + ": ignored, with the shards it lists: model.safetensors is there too, "
                       "which is what transformers loads");
    shards.push_back(singlePath.str().str());
  } else if (fs::exists(indexPath)) {
    auto named = readShardIndex(indexPath, dir, listed);
    if (!named)
      return named.takeError();
    shards = std::move(*named);
  } else {
    return makeError(dir, "no model.safetensors or model.safetensors.index.json");
  }
  for (const std::string &shard : shards) {
    auto file = WeightFile::openSafetensors(shard);
    if (!file)
      return file.takeError();
    checkpoint.files.push_back(std::move(*file));
  }
  // An index that does not match its shards (one replaced by another
  // download's, or cut short) is a damaged checkpoint, whichever tensors
  // this model goes on to read.
  for (const auto &[name, shard] : listed)
    if (!checkpoint.files[shard]->find(name))
      return makeError(indexPath, "weight_map lists '" + name + "' in " +
                                      path::filename(shards[shard]) + ", which does not hold it");
  return checkpoint;
}

static bool isLlama2cTokenizerName(llvm::StringRef name) {
  return name == "tokenizer.bin" || (name.starts_with("tok") && name.ends_with(".bin"));
}

bool attnedit::isReadByModelLoad(llvm::StringRef modelPath, llvm::StringRef path) {
  llvm::SmallString<256> dir(path), model(modelPath);
  fs::make_absolute(dir);
  fs::make_absolute(model);
  path::remove_filename(dir);
  llvm::StringRef name = path::filename(path);
  if (fs::is_directory(modelPath))
    return fs::equivalent(dir, model) &&
           (llvm::is_contained({"config.json", "generation_config.json", "tokenizer.json",
                                "tokenizer.model", "tokenizer.bin", "tokenizer_config.json",
                                "special_tokens_map.json", "model.safetensors.index.json"},
                               name) ||
            (name.starts_with("model") && name.ends_with(".safetensors")));
  path::remove_filename(model);
  return path::extension(modelPath) == ".bin" && fs::equivalent(dir, model) &&
         isLlama2cTokenizerName(name);
}

/// llama2.c keeps the tokenizer beside the checkpoint as tokenizer.bin or
/// tok<N>.bin; use it when exactly one such file is there.
static std::string findLlama2cTokenizer(llvm::StringRef checkpointPath) {
  llvm::SmallString<256> dir(checkpointPath);
  path::remove_filename(dir);
  if (dir.empty())
    dir = ".";
  std::vector<std::string> candidates;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec)) {
    llvm::StringRef name = path::filename(it->path());
    if (isLlama2cTokenizerName(name))
      candidates.push_back(it->path());
  }
  return candidates.size() == 1 ? candidates.front() : std::string();
}

llvm::Expected<Checkpoint> attnedit::openCheckpoint(llvm::StringRef modelPath,
                                                    bool configOnly) {
  if (fs::is_directory(modelPath))
    return openHFDirectory(modelPath, configOnly);
  if (configOnly)
    return makeError(modelPath, "--config-only needs a Hugging Face model directory");
  if (!fs::exists(modelPath))
    return makeError(modelPath, "no such file or directory");
  if (path::extension(modelPath) != ".bin")
    return makeError(modelPath, "unknown model format: expected a Hugging Face model "
                                "directory or a llama2.c .bin checkpoint");
  llvm::Expected<Llama2cCheckpoint> l2c = openLlama2c(modelPath);
  if (!l2c)
    return l2c.takeError();
  Checkpoint checkpoint;
  checkpoint.source = modelPath.str();
  checkpoint.config = std::move(l2c->config);
  checkpoint.files.push_back(std::move(l2c->weights));
  checkpoint.tokenizerPath = findLlama2cTokenizer(modelPath);
  return checkpoint;
}

namespace {

/// Emits the decoder graph, checking each parameter against the checkpoint.
class DecoderEmitter {
public:
  DecoderEmitter(MLIRContext &context, const Checkpoint &checkpoint)
      : b(&context), loc(b.getUnknownLoc()), ckpt(checkpoint), c(checkpoint.config) {}

  llvm::Expected<OwningOpRef<ModuleOp>> emit();

private:
  RankedTensorType f32(llvm::ArrayRef<int64_t> shape) {
    return RankedTensorType::get(shape, b.getF32Type());
  }

  /// A named parameter as f32, or an error if the checkpoint lacks it or
  /// stores another shape.
  llvm::Expected<Value> param(const llvm::Twine &name, llvm::ArrayRef<int64_t> shape);

  Value rmsNorm(Value x, Value w) {
    return b.create<attnedit::RmsNormOp>(loc, x.getType(), x, w,
                                         b.getF64FloatAttr(c.rmsNormEps));
  }
  Value linear(Value x, Value w) {
    auto shape = cast<RankedTensorType>(w.getType()).getShape();
    return b.create<attnedit::LinearOp>(loc, f32({ShapedType::kDynamic, shape[0]}), x, w,
                                        Value());
  }

  /// The q/k/v/o weights (in that order), biases, q/k norms and rope
  /// scaling that plain and gated attention layers share.
  struct AttentionWeights {
    SmallVector<Value, 4> qkvo;
    SmallVector<Value> bias, norms;
    DenseF64ArrayAttr scaling;
  };
  llvm::Expected<AttentionWeights> attentionWeights(int64_t layer);
  llvm::Expected<Value> attention(int64_t layer, Value x, Value positions);
  llvm::Expected<Value> mla(int64_t layer, Value x, Value positions);
  llvm::Expected<Value> gateSwa(int64_t layer, Value x, Value positions);
  llvm::Expected<Value> mlp(int64_t layer, Value x);
  /// Refuses tensors of the checkpoint that param() never read.
  llvm::Error checkAllTensorsUsed();

  OpBuilder b;
  Location loc;
  const Checkpoint &ckpt;
  const ModelConfig &c;
  llvm::StringSet<> used; // the checkpoint tensors param() returned
};

} // namespace

llvm::Expected<Value> DecoderEmitter::param(const llvm::Twine &name,
                                            llvm::ArrayRef<int64_t> shape) {
  std::string key = name.str();
  if (ckpt.configOnly) {
    if (ckpt.configOnlyDType == DType::F32)
      return b.create<attnedit::ParamOp>(loc, f32(shape), b.getStringAttr(key),
                                         /*scope=*/nullptr, /*trainable=*/nullptr)
          .getResult();
    auto storage = RankedTensorType::get(shape, b.getBF16Type());
    Value value = b.create<attnedit::ParamOp>(loc, storage, b.getStringAttr(key),
                                              /*scope=*/nullptr, /*trainable=*/nullptr);
    return b.create<attnedit::ConvertOp>(loc, f32(shape), value).getResult();
  }
  const TensorInfo *info = ckpt.find(key);
  if (!info)
    return makeError(ckpt.source, "missing tensor '" + key + "'");
  if (llvm::ArrayRef<int64_t>(info->shape) != shape) {
    std::string got, want;
    llvm::raw_string_ostream(got) << llvm::formatv("[{0:$[, ]}]", llvm::make_range(info->shape.begin(), info->shape.end()));
    llvm::raw_string_ostream(want) << llvm::formatv("[{0:$[, ]}]", llvm::make_range(shape.begin(), shape.end()));
    return makeError(ckpt.source, "tensor '" + key + "' has shape " + got + ", expected " +
                                      want + " from the config");
  }
  used.insert(key);
  Type storage = info->dtype == DType::F32   ? b.getF32Type()
                 : info->dtype == DType::F16 ? Type(b.getF16Type())
                                             : Type(b.getBF16Type());
  Value value = b.create<attnedit::ParamOp>(loc, RankedTensorType::get(shape, storage),
                                            b.getStringAttr(key), /*scope=*/nullptr,
                                            /*trainable=*/nullptr);
  if (info->dtype != DType::F32)
    value = b.create<attnedit::ConvertOp>(loc, f32(shape), value);
  return value;
}

llvm::Expected<DecoderEmitter::AttentionWeights>
DecoderEmitter::attentionWeights(int64_t layer) {
  std::string prefix = llvm::formatv("model.layers.{0}.self_attn.", layer).str();
  int64_t hq = c.numHeads, hkv = c.numKvHeads, d = c.headDim, h = c.hiddenSize;
  AttentionWeights a;
  for (auto [proj, rows] : {std::pair{"q_proj", hq * d}, {"k_proj", hkv * d},
                            {"v_proj", hkv * d}}) {
    auto w = param(prefix + proj + ".weight", {rows, h});
    if (!w)
      return w.takeError();
    a.qkvo.push_back(*w);
    if (c.attentionBias) {
      auto bv = param(prefix + proj + ".bias", {rows});
      if (!bv)
        return bv.takeError();
      a.bias.push_back(*bv);
    }
  }
  auto wo = param(prefix + "o_proj.weight", {h, hq * d});
  if (!wo)
    return wo.takeError();
  a.qkvo.push_back(*wo);
  if (c.qkNorm)
    for (const char *norm : {"q_norm", "k_norm"}) {
      auto w = param(prefix + norm + ".weight", {d});
      if (!w)
        return w.takeError();
      a.norms.push_back(*w);
    }
  if (c.llama3Scaling)
    a.scaling = b.getDenseF64ArrayAttr(*c.llama3Scaling);
  return a;
}

llvm::Expected<Value> DecoderEmitter::attention(int64_t layer, Value x, Value positions) {
  int64_t hq = c.numHeads, hkv = c.numKvHeads, d = c.headDim;
  auto a = attentionWeights(layer);
  if (!a)
    return a.takeError();
  auto op = b.create<attnedit::AttentionOp>(
      loc, x.getType(), x, positions, a->qkvo[0], a->qkvo[1], a->qkvo[2], a->qkvo[3], a->bias,
      a->norms, hq, hkv, d, llvm::APFloat(1.0 / std::sqrt((double)d)),
      llvm::APFloat(c.ropeThetaOf(layer)), d,
      c.interleavedRope ? attnedit::RopeStyle::Interleaved : attnedit::RopeStyle::RotateHalf,
      a->scaling, llvm::APFloat(c.rmsNormEps), /*window=*/0);
  FailureOr<SmallVector<Value>> expansion = op.decompose(b);
  op.erase();
  if (failed(expansion))
    return makeError(ckpt.source, "internal error: attention has no expansion");
  return expansion->front();
}

llvm::Expected<Value> DecoderEmitter::mla(int64_t layer, Value x, Value positions) {
  std::string p = llvm::formatv("model.layers.{0}.self_attn.", layer).str();
  int64_t hq = c.numHeads, h = c.hiddenSize, n = c.qkNopeHeadDim, r = c.qkRopeHeadDimOf(layer),
          dv = c.vHeadDim, qr = c.qLoraRank, kvr = c.kvLoraRankOf(layer);
  Value qProj, qA, qANorm, qB;
  auto get = [&](const char *name, llvm::ArrayRef<int64_t> shape, Value &out) -> llvm::Error {
    auto v = param(p + name, shape);
    if (!v)
      return v.takeError();
    out = *v;
    return llvm::Error::success();
  };
  if (qr == 0) {
    if (llvm::Error e = get("q_proj.weight", {hq * (n + r), h}, qProj))
      return std::move(e);
  } else {
    if (llvm::Error e = get("q_a_proj.weight", {qr, h}, qA))
      return std::move(e);
    if (llvm::Error e = get("q_a_layernorm.weight", {qr}, qANorm))
      return std::move(e);
    if (llvm::Error e = get("q_b_proj.weight", {hq * (n + r), qr}, qB))
      return std::move(e);
  }
  Value kvA, kvANorm, kvB, o;
  if (llvm::Error e = get("kv_a_proj_with_mqa.weight", {kvr + r, h}, kvA))
    return std::move(e);
  if (llvm::Error e = get("kv_a_layernorm.weight", {kvr}, kvANorm))
    return std::move(e);
  if (llvm::Error e = get("kv_b_proj.weight", {hq * (n + dv), kvr}, kvB))
    return std::move(e);
  if (llvm::Error e = get("o_proj.weight", {h, hq * dv}, o))
    return std::move(e);
  // DeepSeek's softmax_scale is q_head_dim^-1/2 (no yarn mscale: rope_scaling
  // is refused); its stored q_pe/k_pe rows are interleaved pairs.
  auto i64 = [&](int64_t v) { return b.getI64IntegerAttr(v); };
  auto op = b.create<attnedit::MlaOp>(
      loc, x.getType(), x, positions, qProj, qA, qANorm, qB, kvA, kvANorm, kvB, o, i64(hq),
      i64(qr), i64(kvr), i64(n), i64(r), i64(dv), b.getF64FloatAttr(1.0 / std::sqrt((double)(n + r))),
      b.getF64FloatAttr(c.ropeThetaOf(layer)),
      // MLA layers of a mixed (GateSWA-format) model are stored as DeepSeek
      // stores them, interleaved, whatever the other layers do.
      attnedit::RopeStyleAttr::get(b.getContext(), c.interleavedRope ||
                                                           c.attention != AttentionKind::Mla
                                                       ? attnedit::RopeStyle::Interleaved
                                                       : attnedit::RopeStyle::RotateHalf),
      DenseF64ArrayAttr(), b.getF64FloatAttr(c.latentNormEps));
  return op.getResult();
}

llvm::Expected<Value> DecoderEmitter::gateSwa(int64_t layer, Value x, Value positions) {
  std::string prefix = llvm::formatv("model.layers.{0}.self_attn.", layer).str();
  int64_t hq = c.numHeads, hkv = c.numKvHeads, d = c.headDim, h = c.hiddenSize;
  auto a = attentionWeights(layer);
  if (!a)
    return a.takeError();
  attnedit::GateKind kind = attnedit::GateKind::None;
  Value gate, sinks;
  if (c.layerGated[layer]) {
    kind = c.gateKind == "elementwise" ? attnedit::GateKind::Elementwise
                                       : attnedit::GateKind::Headwise;
    auto g = param(prefix + "gate_proj.weight",
                   {kind == attnedit::GateKind::Headwise ? hq : hq * d, h});
    if (!g)
      return g.takeError();
    gate = *g;
  }
  if (c.layerSinks[layer]) {
    auto s = param(prefix + "sinks", {hq});
    if (!s)
      return s.takeError();
    sinks = *s;
  }
  auto op = b.create<attnedit::GateSwaOp>(
      loc, x.getType(), x, positions, a->qkvo[0], a->qkvo[1], a->qkvo[2], a->qkvo[3], a->bias,
      a->norms, gate, sinks, hq, hkv, d, llvm::APFloat(1.0 / std::sqrt((double)d)),
      llvm::APFloat(c.ropeThetaOf(layer)), d,
      c.interleavedRope ? attnedit::RopeStyle::Interleaved : attnedit::RopeStyle::RotateHalf,
      a->scaling, llvm::APFloat(c.rmsNormEps), c.layerWindows[layer], kind);
  return op.getResult();
}

llvm::Expected<Value> DecoderEmitter::mlp(int64_t layer, Value x) {
  std::string prefix = llvm::formatv("model.layers.{0}.mlp.", layer).str();
  int64_t h = c.hiddenSize, f = c.intermediateSize;
  Value w[3];
  const std::pair<const char *, std::array<int64_t, 2>> specs[] = {
      {"gate_proj", {f, h}}, {"up_proj", {f, h}}, {"down_proj", {h, f}}};
  for (int i = 0; i < 3; ++i) {
    auto p = param(prefix + specs[i].first + ".weight", specs[i].second);
    if (!p)
      return p.takeError();
    w[i] = *p;
  }
  Value act = b.create<attnedit::SiluOp>(loc, linear(x, w[0]));
  Value gated = b.create<attnedit::MulOp>(loc, act, linear(x, w[1]));
  return linear(gated, w[2]);
}

llvm::Expected<OwningOpRef<ModuleOp>> DecoderEmitter::emit() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  SmallVector<Attribute> files;
  for (const auto &f : ckpt.files) {
    llvm::SmallString<256> abs(f->path());
    fs::make_absolute(abs);
    path::remove_dots(abs, /*remove_dot_dot=*/true);
    files.push_back(b.getStringAttr(abs));
  }
  Operation *m = module->getOperation();
  m->setAttr(attrs::kParameterFiles, b.getArrayAttr(files));
  m->setAttr(attrs::kArchitecture, b.getStringAttr(c.architecture));
  m->setAttr(attrs::kMaxPositions, b.getI64IntegerAttr(c.maxPositions));
  if (!ckpt.tokenizerPath.empty()) {
    llvm::SmallString<256> abs(ckpt.tokenizerPath);
    fs::make_absolute(abs);
    path::remove_dots(abs, true);
    m->setAttr(attrs::kTokenizer, b.getStringAttr(abs));
  }
  if (c.bosTokenId)
    m->setAttr(attrs::kBosToken, b.getI32IntegerAttr(*c.bosTokenId));
  else if (c.configBosTokenId)
    m->setAttr(attrs::kConfigBosToken, b.getI32IntegerAttr(*c.configBosTokenId));
  m->setAttr(attrs::kStopTokens, b.getDenseI32ArrayAttr(c.stopTokenIds));
  SmallVector<NamedAttribute> sampling;
  if (c.doSample)
    sampling.push_back(b.getNamedAttr("do_sample", b.getBoolAttr(*c.doSample)));
  for (const auto &[key, value] : c.samplingSettings) {
    Attribute a = isIntegerSamplingSetting(key) ? Attribute(b.getI64IntegerAttr((int64_t)value))
                                                : Attribute(b.getF64FloatAttr(value));
    sampling.push_back(b.getNamedAttr(key, a));
  }
  if (!sampling.empty())
    m->setAttr(attrs::kSamplingDefaults, b.getDictionaryAttr(sampling));

  int64_t dyn = ShapedType::kDynamic, h = c.hiddenSize, v = c.vocabSize;
  auto ids = RankedTensorType::get({dyn}, b.getI32Type());
  b.setInsertionPointToEnd(module->getBody());
  auto func = b.create<func::FuncOp>(loc, "forward", b.getFunctionType({ids, ids}, {f32({dyn, v})}));
  func.setArgAttr(0, "attnedit.name", b.getStringAttr("tokens"));
  func.setArgAttr(1, "attnedit.name", b.getStringAttr("positions"));
  b.setInsertionPointToStart(func.addEntryBlock());
  Value tokens = func.getArgument(0), positions = func.getArgument(1);

  auto embed = param("model.embed_tokens.weight", {v, h});
  if (!embed)
    return embed.takeError();
  Value x = b.create<attnedit::EmbeddingOp>(loc, f32({dyn, h}), *embed, tokens);
  for (int64_t l = 0; l < c.numLayers; ++l) {
    std::string prefix = llvm::formatv("model.layers.{0}.", l).str();
    auto ln1 = param(prefix + "input_layernorm.weight", {h});
    if (!ln1)
      return ln1.takeError();
    Value normed = rmsNorm(x, *ln1);
    bool mlaLayer = c.attention == AttentionKind::Mla ||
                    ((size_t)l < c.layerMla.size() && c.layerMla[l]);
    auto attn = mlaLayer                                ? mla(l, normed, positions)
                : c.attention == AttentionKind::GateSwa ? gateSwa(l, normed, positions)
                                                        : attention(l, normed, positions);
    if (!attn)
      return attn.takeError();
    x = b.create<attnedit::AddOp>(loc, x, *attn);
    auto ln2 = param(prefix + "post_attention_layernorm.weight", {h});
    if (!ln2)
      return ln2.takeError();
    auto ffn = mlp(l, rmsNorm(x, *ln2));
    if (!ffn)
      return ffn.takeError();
    x = b.create<attnedit::AddOp>(loc, x, *ffn);
  }
  auto norm = param("model.norm.weight", {h});
  if (!norm)
    return norm.takeError();
  x = rmsNorm(x, *norm);
  Value head = *embed;
  if (!c.tieWordEmbeddings) {
    auto untied = param("lm_head.weight", {v, h});
    if (!untied)
      return untied.takeError();
    head = *untied;
  }
  b.create<func::ReturnOp>(loc, linear(x, head));
  if (!ckpt.configOnly)
    if (llvm::Error e = checkAllTensorsUsed())
      return std::move(e);
  if (failed(module->verify()))
    return makeError(ckpt.source, "internal error: the imported module does not verify");
  return module;
}

/// Whether two tensors hold the same values in the same encoding.
static bool sameTensor(const WeightFile &fa, const TensorInfo &a, const WeightFile &fb,
                       const TensorInfo &b) {
  return a.dtype == b.dtype && a.shape == b.shape &&
         std::memcmp(fa.bytes(a), fb.bytes(b), a.size) == 0;
}

llvm::Error DecoderEmitter::checkAllTensorsUsed() {
  std::string config = ckpt.source;
  if (fs::is_directory(config)) {
    llvm::SmallString<256> p(config);
    path::append(p, "config.json");
    config = p.str().str();
  }
  llvm::StringMap<const WeightFile *> seen;
  std::vector<std::string> invFreq;
  for (const auto &f : ckpt.files)
    for (const TensorInfo &t : f->tensors()) {
      llvm::StringRef name = t.name;
      auto [at, fresh] = seen.try_emplace(name, f.get());
      if (!fresh) // Checkpoint::find would read the first copy only
        return makeError(f->path(), "tensor '" + name + "' is stored again, already in " +
                                        at->second->path());
      if (used.contains(name))
        continue;
      llvm::StringRef rest = name;
      int64_t layer;
      if (rest.consume_front("model.layers.") && !rest.consumeInteger(10, layer) &&
          rest.starts_with(".") && layer >= c.numLayers)
        return makeError(f->path(), llvm::formatv("tensor '{0}' is of layer {1}, but {2} has "
                                                  "field 'num_hidden_layers' {3}; the weights "
                                                  "and the config disagree",
                                                  name, layer, config, c.numLayers));
      // Older Llama checkpoints store RoPE's inverse frequencies as buffers;
      // transformers recomputes them from rope_theta, as the importer does.
      if (name.ends_with(".rotary_emb.inv_freq")) {
        invFreq.push_back(t.name);
        continue;
      }
      // Under tie_word_embeddings the head is the embedding, so a stored
      // lm_head.weight is harmless when it is a copy of it.
      if (name == "lm_head.weight" && c.tieWordEmbeddings) {
        const WeightFile *embedFile;
        const TensorInfo *embed = ckpt.find("model.embed_tokens.weight", &embedFile);
        if (!sameTensor(*f, t, *embedFile, *embed))
          return makeError(f->path(), "tensor 'lm_head.weight' differs from "
                                      "'model.embed_tokens.weight', but " +
                                          config +
                                          " has field 'tie_word_embeddings' true (the "
                                          "embedding is the head); the weights and the "
                                          "config disagree");
        warn(f->path() + ": ignoring 'lm_head.weight', a copy of "
                         "'model.embed_tokens.weight' (tie_word_embeddings)");
        continue;
      }
      // The field a stray tensor most likely contradicts, as a hint.
      bool mla = c.attention == AttentionKind::Mla || llvm::is_contained(c.layerMla, true);
      llvm::StringRef field = name.ends_with(".bias")                  ? "attention_bias"
                              : name.contains("self_attn.gate_proj.")  ? "layer_gates"
                              : name.contains("self_attn.sinks")       ? "layer_sinks"
                              : mla && name.contains("self_attn.q_")   ? "q_lora_rank"
                              : c.attention == AttentionKind::GateSwa  ? "layer_types"
                                                                       : "architectures";
      return makeError(f->path(), "tensor '" + name + "' is not read by the " +
                                      c.architecture + " model " + config +
                                      " describes (see its field '" + field +
                                      "'); the weights and the config disagree");
    }
  llvm::sort(invFreq);
  if (!invFreq.empty())
    warn(ckpt.source + ": ignoring " + llvm::Twine(invFreq.size()) +
         " rotary_emb.inv_freq buffer(s) ('" + invFreq.front() +
         "'...): RoPE frequencies come from rope_theta");
  return llvm::Error::success();
}

llvm::Expected<OwningOpRef<ModuleOp>>
attnedit::importCheckpoint(MLIRContext &context, const Checkpoint &checkpoint) {
  context.loadDialect<attnedit::AttnEditDialect, func::FuncDialect>();
  return DecoderEmitter(context, checkpoint).emit();
}
