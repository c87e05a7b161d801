//===- EditAttention.cpp - --attnedit-edit-attention -----------------------===//
//
// Rewrites attnedit.attention into attnedit.mla or attnedit.gate_swa. The
// student's attention parameters get their own scope ("student") so they
// never shadow the teacher's, which distillation still reads by name.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/Frontend/ModelConfig.h"
#include "attnedit/Frontend/WeightFile.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/EditPlan.h"
#include "attnedit/Passes/MlaInit.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <cmath>
#include <deque>
#include <set>

namespace mlir::attnedit {
#define GEN_PASS_DEF_EDITATTENTIONPASS
#include "attnedit/Passes/Passes.h.inc"
} // namespace mlir::attnedit

using namespace mlir;
using namespace mlir::attnedit;

static constexpr llvm::StringLiteral kStudentScope = "student";

static int64_t numElements(ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace {

/// Reads the teacher's parameters as f32 from the module's parameter files.
class TeacherWeights {
public:
  llvm::Error open(ModuleOp module) {
    auto files = module->getAttrOfType<ArrayAttr>(attrs::kParameterFiles);
    if (!files)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "the module has no '%s' to read teacher weights from",
                                     attrs::kParameterFiles.data());
    for (auto written : files.getAsValueRange<StringAttr>()) {
      std::string path = resolveModulePath(module, written);
      if (llvm::sys::path::extension(path) == ".bin") {
        auto checkpoint = openLlama2c(path);
        if (!checkpoint)
          return checkpoint.takeError();
        weights.push_back(std::move(checkpoint->weights));
        continue;
      }
      auto file = WeightFile::openSafetensors(path);
      if (!file)
        return file.takeError();
      weights.push_back(std::move(*file));
    }
    return llvm::Error::success();
  }

  /// The values of the parameter that `value` is (possibly through a convert).
  llvm::Expected<std::vector<float>> read(Value value) {
    if (auto convert = value.getDefiningOp<ConvertOp>())
      value = convert.getInput();
    auto param = value.getDefiningOp<ParamOp>();
    if (!param || param.getScope())
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "a teacher weight is not an unscoped attnedit.param");
    for (const auto &file : weights)
      if (const TensorInfo *info = file->find(param.getName())) {
        std::vector<float> out(info->numElements());
        convertToF32(info->dtype, file->bytes(*info), out.data(), out.size());
        return out;
      }
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "parameter '%s' is in none of the parameter files",
                                   param.getName().str().c_str());
  }

private:
  std::vector<std::shared_ptr<WeightFile>> weights;
};

struct EditAttentionPass : attnedit::impl::EditAttentionPassBase<EditAttentionPass> {
  using Base::Base;
  friend llvm::StringRef attnedit::optionForOtherTarget<>(EditAttentionPass &);

  void runOnOperation() override;

private:
  LogicalResult checkOptions(int64_t numLayers);
  /// A new trainable parameter of the student scope, kept for params-out.
  Value newParam(OpBuilder &b, Location loc, const llvm::Twine &name,
                 ArrayRef<int64_t> shape, std::vector<float> values);
  LogicalResult editToMla(AttentionOp op, int64_t layer, MlaShape shape);
  LogicalResult editToGateSwa(AttentionOp op, int64_t layer, bool full, int64_t window);
  /// The MLA shape the options give, with the plan's rank and RoPE dims.
  MlaShape mlaShape(int64_t headDim, const LayerEdit *edit = nullptr);
  std::string prefix(int64_t layer) {
    return llvm::formatv("model.layers.{0}.self_attn.", layer).str();
  }
  /// The teacher value of an operand, or an error on the op.
  FailureOr<std::vector<float>> teacherValue(Operation *op, Value value);

  /// Reads sink-logits= into sinkInit.
  LogicalResult loadSinkLogits();
  /// Reads activations= into covariances: one [hidden, hidden] covariance per
  /// layer, each finite, symmetric, with a non-negative diagonal.
  LogicalResult loadActivations(int64_t numLayers, int64_t hidden);
  /// Fails if params-out is a file the module reads its weights from.
  LogicalResult checkParamsOutIsNew(ModuleOp module);

  TeacherWeights teacher;
  /// Calibrated sink logits per layer and head, for windows of sinkWindow.
  std::vector<std::vector<float>> sinkInit;
  std::vector<std::vector<float>> covariances;
  int64_t sinkWindow = 0;
  std::deque<std::vector<float>> storage;
  std::vector<TensorToWrite> toWrite;
};

} // namespace

LogicalResult EditAttentionPass::checkOptions(int64_t numLayers) {
  ModuleOp module = getOperation();
  auto fail = [&](const llvm::Twine &msg) {
    return module.emitError() << "attnedit-edit-attention: " << msg, failure();
  };
  if (target != "mla" && target != "gate-swa")
    return fail("target must be mla or gate-swa, got '" + target + "'");
  if (llvm::StringRef other = optionForOtherTarget(*this); !other.empty())
    return fail(other + " is not an option of target=" + target);
  if (!sinks && !sinkLogitsFile.empty())
    return fail("sink-logits= sets the sinks' start, but there are sinks only with sinks=true");
  if (!layers.empty())
    for (int64_t l : fullLayers)
      if (!llvm::is_contained(layers, l))
        return fail("full-layers entry " + llvm::Twine(l) +
                    " is not among layers=, which leaves it the teacher's attention");
  for (auto [option, list] : {std::pair{"layers", &layers}, {"full-layers", &fullLayers}}) {
    llvm::SmallDenseSet<int64_t> seen;
    for (int64_t l : *list) {
      if (l < 0 || l >= numLayers)
        return fail(llvm::Twine(option) + " entry " + llvm::Twine(l) +
                    " is out of range: the module has " + llvm::Twine(numLayers) +
                    " attention layers");
      if (!seen.insert(l).second)
        return fail(llvm::Twine(option) + " names layer " + llvm::Twine(l) + " twice");
    }
  }
  // A plan can use both kinds, so both kinds' options must be valid.
  bool planned = !plan.empty();
  if (target == "mla" || planned) {
    if (init != "svd" && init != "random" && init != "rorope")
      return fail("init must be svd, random or rorope, got '" + init + "'");
    if (init == "rorope" && activations.empty())
      return fail("init=rorope measures keys and values on calibration data: give "
                  "activations=FILE (attnedit-run calibrate-activations)");
    // Each named with its value: one message listing every bound left the
    // user to find which option broke it.
    auto bad = [&](llvm::StringRef option, int64_t value, llvm::StringRef needs) {
      return fail(llvm::formatv("{0}={1}: needs {2}", option, value, needs).str());
    };
    if (kvLoraRank < 1)
      return bad("kv-lora-rank", kvLoraRank, "at least 1");
    if (qLoraRank < 0)
      return bad("q-lora-rank", qLoraRank, "0 (no query compression) or more");
    if (qkRopeHeadDim < 2 || qkRopeHeadDim % 2)
      return bad("qk-rope-head-dim", qkRopeHeadDim, "an even number, at least 2");
    // 0 built a model DeepSeek's config cannot describe (its export failed on reload).
    if (qkNopeHeadDim == 0 || qkNopeHeadDim < -1)
      return bad("qk-nope-head-dim", qkNopeHeadDim, "at least 1 (-1: the teacher's head_dim)");
    if (vHeadDim == 0 || vHeadDim < -1)
      return bad("v-head-dim", vHeadDim, "at least 1 (-1: the teacher's head_dim)");
    if (ropeStride < 0)
      return bad("rope-stride", ropeStride, "0 or more");
    if (init != "random" && paramsOut.empty() && !planned)
      return fail("init=" + init + " computes weights: give params-out=FILE.safetensors");
  }
  if (target == "gate-swa" || planned) {
    if (gate != "headwise" && gate != "elementwise" && gate != "none")
      return fail("gate must be headwise, elementwise or none, got '" + gate + "'");
    if (window < 1 || window > kMaxConfigSize)
      return fail(llvm::formatv("window={0}: needs [1, {1}]", (int64_t)window, kMaxConfigSize)
                      .str());
    if (fullEvery < 0 || fullEvery > kMaxLayers)
      return fail(llvm::formatv("full-every={0}: needs [0, {1}]", (int64_t)fullEvery, kMaxLayers)
                      .str());
  }
  return success();
}

Value EditAttentionPass::newParam(OpBuilder &b, Location loc, const llvm::Twine &name,
                                  ArrayRef<int64_t> shape, std::vector<float> values) {
  std::string key = name.str();
  if (!paramsOut.empty()) {
    assert((int64_t)values.size() == numElements(shape) && "initialiser gave a wrong size");
    storage.push_back(std::move(values));
    const std::vector<float> &data = storage.back();
    toWrite.push_back({key, DType::F32, std::vector<int64_t>(shape.begin(), shape.end()),
                       llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(data.data()),
                                               data.size() * sizeof(float))});
  }
  return b.create<ParamOp>(loc, RankedTensorType::get(shape, b.getF32Type()),
                           b.getStringAttr(key), b.getStringAttr(kStudentScope),
                           b.getUnitAttr());
}

FailureOr<std::vector<float>> EditAttentionPass::teacherValue(Operation *op, Value value) {
  auto values = teacher.read(value);
  if (!values) {
    op->emitError() << "attnedit-edit-attention: " << llvm::toString(values.takeError());
    return failure();
  }
  return std::move(*values);
}

/// The weight of the RMSNorm producing `input`, when it is one.
static Value inputNormWeight(Value input) {
  auto norm = input.getDefiningOp<RmsNormOp>();
  return norm ? norm.getWeight() : Value();
}

MlaShape EditAttentionPass::mlaShape(int64_t d, const LayerEdit *edit) {
  MlaShape shape{qLoraRank, kvLoraRank, qkNopeHeadDim < 0 ? d : qkNopeHeadDim, qkRopeHeadDim,
                 vHeadDim < 0 ? d : vHeadDim, ropeStride};
  if (edit) {
    shape.kvLoraRank = edit->kvLoraRank;
    if (edit->qkRopeHeadDim)
      shape.qkRopeHeadDim = edit->qkRopeHeadDim;
  }
  return shape;
}

LogicalResult EditAttentionPass::editToMla(AttentionOp op, int64_t layer, MlaShape shape) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  if (int64_t w = op.getWindow())
    op.emitWarning() << "attnedit-edit-attention: layer " << layer << " attends to a window of "
                     << w << " tokens; attnedit.mla has no window and attends to every token, "
                        "so the student differs from the teacher past the window";
  int64_t hidden = cast<RankedTensorType>(op.getType()).getDimSize(1);
  int64_t h = op.getNumHeads(), d = op.getHeadDim();
  int64_t qLoraRank = shape.qLoraRank, kvLoraRank = shape.kvLoraRank;
  // The latents are projections of the layer input, so a rank above its
  // width holds nothing more; nor can a head use more than the width.
  for (auto [option, value] : {std::pair{"kv-lora-rank", shape.kvLoraRank},
                               {"q-lora-rank", shape.qLoraRank},
                               {"qk-nope-head-dim", shape.qkNopeHeadDim},
                               {"qk-rope-head-dim", shape.qkRopeHeadDim},
                               {"v-head-dim", shape.vHeadDim}})
    if (value > hidden)
      return op.emitError() << "attnedit-edit-attention: " << option << "=" << value
                            << " is larger than the layer's hidden size " << hidden
                            << " (layer " << layer << ")";
  if (!op.getQkvBias().empty())
    op.emitWarning("attnedit-edit-attention: MLA has no attention biases; the teacher's "
                   "q/k/v biases are dropped (distillation has to recover them)");
  if (!op.getQkNorm().empty())
    op.emitWarning("attnedit-edit-attention: MLA has no per-head q/k RMSNorm; the teacher's "
                   "q_norm/k_norm are not reproduced (init=svd folds their weights into the "
                   "projections; distillation has to recover the rest)");

  // Frequency j of the student's RoPE is the teacher's j·K: a stride other
  // than the default needs the student's own theta.
  int64_t r = shape.qkRopeHeadDim;
  if (shape.ropeStride && (r / 2 - 1) * shape.ropeStride >= d / 2)
    return op.emitError() << "attnedit-edit-attention: rope-stride=" << shape.ropeStride
                          << " with qk-rope-head-dim=" << r << " reaches past the teacher's "
                          << d / 2 << " RoPE pairs (layer " << layer << ")";
  double theta = op.getRopeTheta().convertToDouble();
  if (shape.ropeStride)
    theta = studentRopeTheta(theta, shape, d);

  MlaWeights w;
  std::string p = prefix(layer);
  double scale = 1.0 / std::sqrt((double)(shape.qkNopeHeadDim + shape.qkRopeHeadDim));
  if (paramsOut.empty()) {
    // Only the IR is rewritten: no weights to compute.
  } else if (init == "random") {
    w = randomInitMla(hidden, h, shape, seed + layer);
  } else {
    if ((int64_t)op.getRotaryDim() != d)
      return op.emitError("attnedit-edit-attention: init=svd needs RoPE over the whole head");
    std::vector<std::vector<float>> teacherWeights;
    SmallVector<Value> sources{op.getQWeight(), op.getKWeight(), op.getVWeight(),
                               op.getOWeight()};
    for (Value norm : op.getQkNorm())
      sources.push_back(norm);
    for (Value source : sources) {
      auto values = teacherValue(op, source);
      if (failed(values))
        return failure();
      teacherWeights.push_back(std::move(*values));
    }
    std::vector<float> inputNorm;
    if (Value norm = inputNormWeight(op.getInput())) {
      auto values = teacherValue(op, norm);
      if (failed(values))
        return failure();
      inputNorm = std::move(*values);
    }
    bool qkNorm = !op.getQkNorm().empty();
    TeacherAttention t{hidden,
                       h,
                       (int64_t)op.getNumKvHeads(),
                       d,
                       op.getRopeStyle() == RopeStyle::Interleaved,
                       teacherWeights[0],
                       teacherWeights[1],
                       teacherWeights[2],
                       teacherWeights[3],
                       qkNorm ? llvm::ArrayRef<float>(teacherWeights[4]) : llvm::ArrayRef<float>(),
                       qkNorm ? llvm::ArrayRef<float>(teacherWeights[5]) : llvm::ArrayRef<float>(),
                       inputNorm};
    // Activation-aware: the input covariance measured on calibration data.
    if (!covariances.empty())
      t.inputCovariance = covariances[layer];
    auto warm = svdInitMla(t, shape, init == "rorope" ? MlaStart::RoRoPE : MlaStart::Svd);
    if (!warm)
      return op.emitError() << "attnedit-edit-attention: " << llvm::toString(warm.takeError());
    w = std::move(*warm);
    scale = op.getScale().convertToDouble();
  }

  int64_t n = shape.qkNopeHeadDim, dv = shape.vHeadDim;
  auto param = [&](StringRef name, ArrayRef<int64_t> dims, std::vector<float> &values) {
    return newParam(b, loc, p + name, dims, std::move(values));
  };
  Value qProj, qA, qANorm, qB;
  if (qLoraRank == 0) {
    qProj = param("q_proj.weight", {h * (n + r), hidden}, w.qProj);
  } else {
    qA = param("q_a_proj.weight", {qLoraRank, hidden}, w.qAProj);
    qANorm = param("q_a_layernorm.weight", {qLoraRank}, w.qANorm);
    qB = param("q_b_proj.weight", {h * (n + r), qLoraRank}, w.qBProj);
  }
  Value kvA = param("kv_a_proj_with_mqa.weight", {kvLoraRank + r, hidden}, w.kvAProj);
  Value kvANorm = param("kv_a_layernorm.weight", {kvLoraRank}, w.kvANorm);
  Value kvB = param("kv_b_proj.weight", {h * (n + dv), kvLoraRank}, w.kvBProj);
  Value o = param("o_proj.weight", {hidden, h * dv}, w.oProj);
  auto i64 = [&](int64_t v) { return b.getI64IntegerAttr(v); };
  auto mla = b.create<MlaOp>(loc, op.getType(), op.getInput(), op.getPositions(), qProj, qA,
                             qANorm, qB, kvA, kvANorm, kvB, o, i64(h), i64(qLoraRank),
                             i64(kvLoraRank), i64(n), i64(r), i64(dv),
                             b.getF64FloatAttr(scale), b.getF64FloatAttr(theta),
                             op.getRopeStyleAttr(), op.getLlama3ScalingAttr(),
                             op.getNormEpsAttr());
  op.replaceAllUsesWith(mla.getResult());
  op.erase();
  return success();
}

LogicalResult EditAttentionPass::editToGateSwa(AttentionOp op, int64_t layer, bool full,
                                               int64_t window) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  if (int64_t w = op.getWindow(); w && (full || window > w))
    op.emitWarning() << "attnedit-edit-attention: layer " << layer << " attends to a window of "
                     << w << " tokens; the student's "
                     << (full ? std::string("full attention")
                              : "window of " + std::to_string(window) + " tokens")
                     << " sees more, so the student differs from the teacher past " << w
                     << " tokens";
  int64_t hidden = cast<RankedTensorType>(op.getType()).getDimSize(1);
  int64_t h = op.getNumHeads(), d = op.getHeadDim();
  GateKind kind = gate == "headwise"      ? GateKind::Headwise
                  : gate == "elementwise" ? GateKind::Elementwise
                                          : GateKind::None;
  std::string p = prefix(layer);
  // The student starts as a copy of the teacher; with a gate, o_proj is
  // doubled and the gate weights are zero, so σ(0)·2 = 1 passes the attention
  // output through unchanged while the gate can still learn.
  auto copy = [&](Value source, StringRef name, float factor) -> FailureOr<Value> {
    auto type = cast<RankedTensorType>(source.getType());
    std::vector<float> values;
    if (!paramsOut.empty()) {
      auto read = teacherValue(op, source);
      if (failed(read))
        return failure();
      values = std::move(*read);
      for (float &v : values)
        v *= factor;
    }
    return newParam(b, loc, p + name, type.getShape(), std::move(values));
  };
  SmallVector<Value> weights, bias, norms;
  const std::pair<Value, const char *> projections[] = {{op.getQWeight(), "q_proj.weight"},
                                                        {op.getKWeight(), "k_proj.weight"},
                                                        {op.getVWeight(), "v_proj.weight"}};
  for (auto [value, name] : projections) {
    auto v = copy(value, name, 1.0f);
    if (failed(v))
      return failure();
    weights.push_back(*v);
  }
  auto o = copy(op.getOWeight(), "o_proj.weight", kind == GateKind::None ? 1.0f : 2.0f);
  if (failed(o))
    return failure();
  const char *biasNames[] = {"q_proj.bias", "k_proj.bias", "v_proj.bias"};
  for (auto [value, name] : llvm::zip(op.getQkvBias(), biasNames)) {
    auto v = copy(value, name, 1.0f);
    if (failed(v))
      return failure();
    bias.push_back(*v);
  }
  const char *normNames[] = {"q_norm.weight", "k_norm.weight"};
  for (auto [value, name] : llvm::zip(op.getQkNorm(), normNames)) {
    auto v = copy(value, name, 1.0f);
    if (failed(v))
      return failure();
    norms.push_back(*v);
  }
  auto zeros = [&](ArrayRef<int64_t> dims, float value) {
    return std::vector<float>(paramsOut.empty() ? 0 : numElements(dims), value);
  };
  Value gateWeight, sinkLogits;
  if (kind != GateKind::None) {
    int64_t rows = kind == GateKind::Headwise ? h : h * d;
    gateWeight = newParam(b, loc, p + "gate_proj.weight", {rows, hidden}, zeros({rows, hidden}, 0));
  }
  // A sink logit this low takes < 1e-4 of any head's attention while it can
  // still learn (Adam's step does not shrink with the gradient). Calibrated
  // logits instead give the sink what the teacher gave keys outside the window.
  if (sinks && !full) {
    std::vector<float> init = zeros({h}, -12.0f);
    if (!sinkInit.empty() && !init.empty()) {
      if (window != sinkWindow || layer >= (int64_t)sinkInit.size() ||
          (int64_t)sinkInit[layer].size() != h)
        return op.emitError() << "attnedit-edit-attention: " << sinkLogitsFile
                              << " was calibrated for window " << sinkWindow << " and "
                              << sinkInit.size() << " layers"
                              << (layer < (int64_t)sinkInit.size()
                                      ? llvm::formatv(", {0} heads in layer {1}",
                                                      sinkInit[layer].size(), layer)
                                            .str()
                                      : std::string())
                              << "; layer " << layer << " has window " << window << " and " << h
                              << " heads";
      init = sinkInit[layer];
    }
    sinkLogits = newParam(b, loc, p + "sinks", {h}, std::move(init));
  }
  auto swa = b.create<GateSwaOp>(
      loc, op.getType(), op.getInput(), op.getPositions(), weights[0], weights[1], weights[2],
      *o, bias, norms, gateWeight, sinkLogits, op.getNumHeads(), op.getNumKvHeads(),
      op.getHeadDim(), op.getScale(), op.getRopeTheta(), op.getRotaryDim(), op.getRopeStyle(),
      op.getLlama3ScalingAttr(), op.getNormEps(), full ? 0 : (int64_t)window, kind);
  op.replaceAllUsesWith(swa.getResult());
  op.erase();
  return success();
}

LogicalResult EditAttentionPass::checkParamsOutIsNew(ModuleOp module) {
  for (const std::string &file : parameterFilesOf(module))
    if (!paramsOut.empty() && sameFile(paramsOut, file))
      return module.emitError()
                 << "attnedit-edit-attention: params-out=" << paramsOut
                 << " is a file the module reads its weights from"
                 << (file == paramsOut ? "" : " (" + file + ")")
                 << ": writing the student's there would destroy them",
             failure();
  return success();
}

LogicalResult EditAttentionPass::loadSinkLogits() {
  ModuleOp module = getOperation();
  auto fail = [&](const llvm::Twine &msg) {
    return module.emitError() << "attnedit-edit-attention: " << sinkLogitsFile << ": " << msg,
           failure();
  };
  auto buffer = readInputFile(sinkLogitsFile);
  if (!buffer)
    return fail("cannot read: " + buffer.getError().message());
  auto json = parseJson((*buffer)->getBuffer());
  if (!json)
    return fail(llvm::toString(json.takeError()));
  llvm::json::Object *root = json->getAsObject();
  std::optional<int64_t> w = root ? root->getInteger("window") : std::nullopt;
  llvm::json::Array *rows = root ? root->getArray("layers") : nullptr;
  if (!w || *w < 1 || !rows)
    return fail("needs \"window\" (a positive integer) and \"layers\" (per layer, the heads' "
                "logits)");
  sinkWindow = *w;
  for (auto [l, row] : llvm::enumerate(*rows)) {
    llvm::json::Array *heads = row.getAsArray();
    if (!heads)
      return fail("layers[" + llvm::Twine(l) + "] must be an array of numbers");
    std::vector<float> values;
    for (const llvm::json::Value &v : *heads) {
      std::optional<double> x = v.getAsNumber();
      if (!x || !std::isfinite(*x))
        return fail("layers[" + llvm::Twine(l) + "] must hold finite numbers");
      values.push_back((float)*x);
    }
    sinkInit.push_back(std::move(values));
  }
  return success();
}

LogicalResult EditAttentionPass::loadActivations(int64_t numLayers, int64_t hidden) {
  ModuleOp module = getOperation();
  auto fail = [&](const llvm::Twine &msg) {
    return module.emitError() << "attnedit-edit-attention: " << activations << ": " << msg,
           failure();
  };
  auto file = WeightFile::openSafetensors(activations);
  if (!file)
    return module.emitError() << "attnedit-edit-attention: " << llvm::toString(file.takeError()),
           failure();
  for (int64_t layer = 0; layer < numLayers; ++layer) {
    std::string name = prefix(layer) + "input_covariance";
    const TensorInfo *info = (*file)->find(name);
    if (!info || info->shape != llvm::SmallVector<int64_t, 4>{hidden, hidden})
      return fail(llvm::formatv("has no [{0}, {0}] tensor '{1}'", hidden, name).str());
    std::vector<float> c(hidden * hidden);
    convertToF32(info->dtype, (*file)->bytes(*info), c.data(), c.size());
    // What a covariance is; anything else makes the whitened SVD fail or mislead.
    double largest = 0;
    for (float x : c)
      largest = std::max(largest, (double)std::fabs(x));
    for (int64_t i = 0; i < hidden; ++i)
      for (int64_t j = 0; j < hidden; ++j) {
        float x = c[i * hidden + j];
        std::string at = llvm::formatv("'{0}'[{1}, {2}] is {3}", name, i, j, x).str();
        if (!std::isfinite(x))
          return fail(at + ": not a covariance");
        if (i == j && x < 0)
          return fail(at + ": a covariance's diagonal is not negative");
        if (std::fabs(x - c[j * hidden + i]) > 1e-4 * largest)
          return fail(at + llvm::formatv(" and [{0}, {1}] is {2}: a covariance is symmetric", j,
                                         i, c[j * hidden + i])
                               .str());
      }
    if (largest == 0)
      return fail("'" + name + "' is zero: calibrated on no data");
    covariances.push_back(std::move(c));
  }
  // Covariances of layers the module does not have: calibrated on another model.
  if ((int64_t)(*file)->tensors().size() != numLayers)
    return fail(llvm::formatv("holds {0} tensors; the module has {1} attention layers, one "
                              "input_covariance each (attnedit-run calibrate-activations)",
                              (*file)->tensors().size(), numLayers)
                    .str());
  return success();
}

void EditAttentionPass::runOnOperation() {
  ModuleOp module = getOperation();
  // Functions built from the attention an edit replaces would keep the old
  // one: a KV-cache step decoded another model than @forward computed.
  for (auto func : module.getOps<func::FuncOp>()) {
    bool decodeStep = isKvCacheStep(func);
    if (!decodeStep && !func->hasAttr("attnedit.gradients"))
      continue;
    func.emitError() << "attnedit-edit-attention: @" << func.getSymName() << " was built by "
                     << (decodeStep ? "--attnedit-build-decode" : "--attnedit-autodiff")
                     << " from the attention this edit replaces, and would keep it: edit "
                        "first, then build it";
    return signalPassFailure();
  }
  SmallVector<AttentionOp> attentions;
  Operation *model = layersOf(module);
  model->walk([&](AttentionOp op) { attentions.push_back(op); });
  if (model != module.getOperation()) {
    int64_t elsewhere = -(int64_t)attentions.size();
    module.walk([&](AttentionOp) { ++elsewhere; });
    if (elsewhere > 0)
      module.emitWarning() << "attnedit-edit-attention: edits @forward's "
                           << attentions.size() << " layers; " << elsewhere
                           << " attnedit.attention in other functions stay as they are";
  }
  int64_t numLayers = attentions.size();
  if (numLayers == 0) {
    // Editing nothing and still writing params-out would look like success.
    int64_t mla = 0, swa = 0;
    model->walk([&](Operation *op) {
      mla += isa<MlaOp>(op);
      swa += isa<GateSwaOp>(op);
    });
    if (mla + swa > 0)
      module.emitError() << "attnedit-edit-attention: the model's attention is already edited ("
                         << mla << " attnedit.mla, " << swa
                         << " attnedit.gate_swa, no attnedit.attention left): edit the teacher "
                            "it was converted from";
    else
      module.emitError() << "attnedit-edit-attention: the module has no attnedit.attention to "
                            "edit; an imported model's attention is primitive: run "
                            "--attnedit-raise-attention first, or --attnedit-convert, which "
                            "does both";
    return signalPassFailure();
  }
  if (failed(checkOptions(numLayers)))
    return signalPassFailure();
  // The params themselves, not only the scope attribute: an edit without
  // params-out writes no scope, and a second edit's params-out then held
  // none of the first's parameters, which the module still read.
  bool studentParams = false;
  module.walk([&](ParamOp p) { studentParams |= p.getScope() == kStudentScope; });
  if (studentParams) {
    module.emitError("attnedit-edit-attention: the module already has student parameters: "
                     "edit the teacher it was converted from, with one plan= for edits "
                     "that differ by layer");
    return signalPassFailure();
  }
  std::optional<EditPlan> editPlan;
  if (!plan.empty()) {
    // The plan gives each layer's kind, window and rank: these would be ignored.
    if (!layers.empty() || !fullLayers.empty() || fullEvery != 0 ||
        attnedit::detail::changedFromDefault(target) ||
        attnedit::detail::changedFromDefault(window) ||
        attnedit::detail::changedFromDefault(kvLoraRank)) {
      module.emitError("attnedit-edit-attention: plan= chooses every layer's edit; it cannot be "
                       "combined with target=, window=, kv-lora-rank=, layers=, full-layers= or "
                       "full-every=");
      return signalPassFailure();
    }
    auto parsed = readEditPlan(plan);
    if (!parsed) {
      module.emitError() << "attnedit-edit-attention: " << llvm::toString(parsed.takeError());
      return signalPassFailure();
    }
    if ((int64_t)parsed->layers.size() != numLayers) {
      module.emitError() << "attnedit-edit-attention: " << plan << ": the plan has "
                         << parsed->layers.size() << " layers, the module " << numLayers;
      return signalPassFailure();
    }
    editPlan = std::move(*parsed);
  }
  if (!sinkLogitsFile.empty() && failed(loadSinkLogits()))
    return signalPassFailure();
  if (!activations.empty() &&
      failed(loadActivations(
          numLayers, cast<RankedTensorType>(attentions.front().getType()).getDimSize(1))))
    return signalPassFailure();
  if (failed(checkParamsOutIsNew(module)))
    return signalPassFailure();
  bool readsTeacher = !paramsOut.empty() && (target == "gate-swa" || init != "random");
  if (editPlan)
    readsTeacher = !paramsOut.empty() &&
                   llvm::any_of(editPlan->layers, [&](const LayerEdit &e) {
                     return e.kind == LayerEdit::Kind::Swa ||
                            (e.kind == LayerEdit::Kind::Mla && init != "random");
                   });
  if (readsTeacher) {
    if (llvm::Error e = teacher.open(module)) {
      module.emitError() << "attnedit-edit-attention: " << llvm::toString(std::move(e));
      return signalPassFailure();
    }
  }
  std::set<int64_t> selected(layers.begin(), layers.end());
  std::set<int64_t> full(fullLayers.begin(), fullLayers.end());
  for (auto [layer, op] : llvm::enumerate(attentions)) {
    if (editPlan) {
      const LayerEdit &e = editPlan->layers[layer];
      LogicalResult edited =
          e.kind == LayerEdit::Kind::Keep  ? success()
          : e.kind == LayerEdit::Kind::Swa ? editToGateSwa(op, layer, false, e.window)
                                           : editToMla(op, layer, mlaShape(op.getHeadDim(), &e));
      if (failed(edited))
        return signalPassFailure();
      continue;
    }
    if (!selected.empty() && !selected.count(layer))
      continue;
    bool keepFull = full.count(layer) || (fullEvery > 0 && (layer + 1) % fullEvery == 0);
    LogicalResult edited =
        target == "mla" ? editToMla(op, layer, mlaShape(op.getHeadDim()))
                        : editToGateSwa(op, layer, keepFull, window);
    if (failed(edited))
      return signalPassFailure();
  }
  // The student is written beside its own weights, not its teacher's.
  anchorModulePaths(module);
  Builder b(module.getContext());
  if (editPlan)
    module->setAttr(kEditPlanAttr,
                    b.getStringAttr(llvm::formatv("{0}", editPlan->toJson()).str()));
  if (paramsOut.empty())
    return;
  if (llvm::Error e = writeSafetensors(paramsOut, toWrite)) {
    module.emitError() << "attnedit-edit-attention: " << llvm::toString(std::move(e));
    return signalPassFailure();
  }
  NamedAttrList scopes;
  if (auto existing = module->getAttrOfType<DictionaryAttr>(attrs::kParameterScopes))
    scopes.append(existing.getValue());
  llvm::SmallString<256> path(paramsOut);
  llvm::sys::fs::make_absolute(path);
  scopes.set(kStudentScope, b.getArrayAttr({b.getStringAttr(path)}));
  module->setAttr(attrs::kParameterScopes, scopes.getDictionary(module.getContext()));
}
