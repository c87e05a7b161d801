//===- BuildDistill.cpp - --attnedit-build-distill -------------------------===//
//
// Clones the teacher's forward (and, for stage=model, the student's) into
// @train_step and ties them together with loss ops. Layers are matched by
// the order of their attention ops; hidden states are the values entering
// the RMSNorm in front of each attention.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/InputFile.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/IR/Limits.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/SourceMgr.h"

#include <set>

namespace mlir::attnedit {
#define GEN_PASS_DEF_BUILDDISTILLPASS
#include "attnedit/Passes/Passes.h.inc"
} // namespace mlir::attnedit

using namespace mlir;
using namespace mlir::attnedit;

/// Makes a trainable parameter stored as bf16/f16 an f32 one: gradients and
/// AdamW updates are computed in f32 (the parameter store widens the stored
/// values), and a bf16 master copy would round every update away.
static void trainInF32(ParamOp param) {
  auto type = param.getType();
  if (type.getElementType().isF32())
    return;
  param.getResult().setType(RankedTensorType::get(type.getShape(),
                                                  Float32Type::get(param.getContext())));
  for (Operation *user : llvm::make_early_inc_range(param->getUsers()))
    if (auto convert = dyn_cast<ConvertOp>(user))
      if (convert.getType().getElementType().isF32()) {
        convert.getResult().replaceAllUsesWith(param.getResult());
        convert.erase();
      }
}

namespace {

struct BuildDistillPass : attnedit::impl::BuildDistillPassBase<BuildDistillPass> {
  using Base::Base;
  void runOnOperation() override;

private:
  LogicalResult fail(const Twine &msg) {
    getOperation().emitError() << "attnedit-build-distill: " << msg;
    return failure();
  }
  LogicalResult build(func::FuncOp teacherForward, func::FuncOp studentForward);
  void buildLanguageModelLoss(func::FuncOp forward);
};

SmallVector<Operation *> attentionOps(func::FuncOp func) {
  SmallVector<Operation *> ops;
  func.walk([&](AttentionLikeOpInterface op) { ops.push_back(op); });
  return ops;
}

/// The residual-stream value entering a layer: what the RMSNorm in front of
/// its attention normalises.
Value hiddenState(Operation *attention) {
  auto norm = attention->getOperand(0).getDefiningOp<RmsNormOp>();
  return norm ? norm.getInput() : Value();
}

/// Clones `func`'s body before `b`'s insertion point with its arguments
/// replaced by `args`; returns the value it returns.
Value inlineBody(OpBuilder &b, func::FuncOp func, ValueRange args, IRMapping &map) {
  Block &body = func.getBody().front();
  map.map(body.getArguments(), args);
  for (Operation &op : body.without_terminator())
    b.clone(op, map);
  return map.lookup(body.getTerminator()->getOperand(0));
}

/// Clones what `value` is computed from (parameters and converts only).
Value cloneParameter(OpBuilder &b, Value value, IRMapping &map) {
  if (Value mapped = map.lookupOrNull(value))
    return mapped;
  Operation *def = value.getDefiningOp();
  for (Value operand : def->getOperands())
    cloneParameter(b, operand, map);
  return b.clone(*def, map)->getResult(0);
}

void eraseDeadOps(func::FuncOp func) {
  bool changed = true;
  while (changed) {
    changed = false;
    SmallVector<Operation *> ops;
    for (Operation &op : func.getBody().front().without_terminator())
      ops.push_back(&op);
    for (Operation *op : llvm::reverse(ops))
      if (op->use_empty()) {
        op->erase();
        changed = true;
      }
  }
}

} // namespace

LogicalResult BuildDistillPass::build(func::FuncOp teacherForward,
                                      func::FuncOp studentForward) {
  ModuleOp module = getOperation();
  SmallVector<Operation *> teacherLayers = attentionOps(teacherForward);
  SmallVector<Operation *> studentLayers = attentionOps(studentForward);
  if (teacherLayers.empty())
    return fail("the teacher has no attention ops; raise its attention "
                "(--attnedit-raise-attention) first");
  // Another model's teacher would build a loss of mismatched shapes.
  std::string teacherType, studentType;
  llvm::raw_string_ostream(teacherType) << teacherForward.getFunctionType();
  llvm::raw_string_ostream(studentType) << studentForward.getFunctionType();
  if (teacherLayers.size() != studentLayers.size() || teacherType != studentType)
    return fail("the teacher (" + Twine(teacherLayers.size()) + " attention layers, @forward " +
                teacherType + ") is not the model the student was edited from (" +
                Twine(studentLayers.size()) + " attention layers, @forward " + studentType +
                ")");
  for (Operation *op : teacherLayers)
    if (!isa<AttentionOp>(op))
      return fail("the teacher's attention must be attnedit.attention, not " +
                  op->getName().getStringRef());

  OpBuilder b(module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  Location loc = studentForward.getLoc();
  auto scalar = RankedTensorType::get({}, b.getF32Type());
  auto func = b.create<func::FuncOp>(
      loc, "train_step", b.getFunctionType(studentForward.getArgumentTypes(), {scalar}));
  func.setArgAttr(0, "attnedit.name", b.getStringAttr("tokens"));
  func.setArgAttr(1, "attnedit.name", b.getStringAttr("positions"));
  b.setInsertionPointToStart(func.addEntryBlock());

  IRMapping teacherMap;
  Value teacherLogits = inlineBody(b, teacherForward, func.getArguments(), teacherMap);
  auto mean = [&](ArrayRef<Value> terms, size_t count) {
    Value sum = terms.front();
    for (Value term : terms.drop_front())
      sum = b.create<AddOp>(loc, sum, term);
    return b.create<ScaleOp>(loc, sum, b.getF64FloatAttr(1.0 / count)).getResult();
  };

  Value loss;
  if (stage == "layerwise") {
    SmallVector<Value> terms;
    IRMapping studentMap;
    std::set<int64_t> only(layers.begin(), layers.end()), unmatched = only;
    size_t edited = 0;
    for (auto [i, t, s] : llvm::enumerate(teacherLayers, studentLayers)) {
      if (isa<AttentionOp>(s))
        continue; // not edited
      ++edited;
      unmatched.erase(i);
      if (!only.empty() && !only.count(i))
        continue; // another process's layer
      Operation *teacherOp = teacherMap.lookup(t->getResult(0)).getDefiningOp();
      studentMap.map(s->getOperand(0), teacherOp->getOperand(0));
      studentMap.map(s->getOperand(1), func.getArgument(1));
      for (Value operand : s->getOperands().drop_front(2))
        cloneParameter(b, operand, studentMap);
      Value out = b.clone(*s, studentMap)->getResult(0);
      terms.push_back(b.create<MseLossOp>(loc, out, teacherOp->getResult(0)));
    }
    if (!edited)
      return fail("the student has no edited attention to distil layer by layer");
    if (!unmatched.empty())
      return fail("layers= names layer " + Twine(*unmatched.begin()) +
                  ", which is not an edited attention layer");
    loss = mean(terms, edited);
  } else {
    IRMapping studentMap;
    Value studentLogits = inlineBody(b, studentForward, func.getArguments(), studentMap);
    loss = b.create<KlLossOp>(loc, teacherLogits, studentLogits,
                              b.getF64FloatAttr(temperature));
    SmallVector<Value> features;
    for (int64_t layer : std::set<int64_t>(featureLayers.begin(), featureLayers.end())) {
      Value th = hiddenState(teacherLayers[layer]), sh = hiddenState(studentLayers[layer]);
      if (!th || !sh)
        return fail("layer " + Twine(layer) + " has no RMSNorm in front of its attention");
      features.push_back(
          b.create<CosineLossOp>(loc, teacherMap.lookup(th), studentMap.lookup(sh)));
    }
    if (!features.empty() && featureWeight > 0)
      loss = b.create<AddOp>(loc, loss,
                             b.create<ScaleOp>(loc, mean(features, features.size()),
                                               b.getF64FloatAttr(featureWeight)));
    if (train == "all") {
      SmallVector<ParamOp> copies;
      studentForward.walk([&](ParamOp original) {
        if (!original.getScope())
          copies.push_back(studentMap.lookup(original.getResult()).getDefiningOp<ParamOp>());
      });
      for (ParamOp param : copies) {
        param.setScopeAttr(b.getStringAttr("student"));
        param.setTrainable(true);
        // The trainer may give these their own rate (a recipe's lr_rest).
        param->setAttr(attrs::kTeacherCopy, b.getUnitAttr());
        trainInF32(param);
      }
    }
  }
  b.create<func::ReturnOp>(loc, loss);
  eraseDeadOps(func);
  return success();
}

void BuildDistillPass::buildLanguageModelLoss(func::FuncOp forward) {
  ModuleOp module = getOperation();
  OpBuilder b(module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  Location loc = forward.getLoc();
  SmallVector<Type> args(forward.getArgumentTypes());
  args.push_back(args.front());
  auto func = b.create<func::FuncOp>(
      loc, "train_step",
      b.getFunctionType(args, {RankedTensorType::get({}, b.getF32Type())}));
  const char *names[] = {"tokens", "positions", "targets"};
  for (auto [i, name] : llvm::enumerate(names))
    func.setArgAttr(i, "attnedit.name", b.getStringAttr(name));
  b.setInsertionPointToStart(func.addEntryBlock());
  IRMapping map;
  Value logits = inlineBody(b, forward, func.getArguments().take_front(2), map);
  Value loss = b.create<CrossEntropyLossOp>(loc, logits, func.getArgument(2));
  b.create<func::ReturnOp>(loc, loss);
  SmallVector<ParamOp> params;
  func.walk([&](ParamOp param) { params.push_back(param); });
  for (ParamOp param : params) {
    param.setTrainable(true);
    trainInF32(param); // erases converts: not while walking
  }
}

void BuildDistillPass::runOnOperation() {
  ModuleOp module = getOperation();
  if (stage != "layerwise" && stage != "model" && stage != "lm")
    return (void)fail("stage must be layerwise, model or lm, got '" + stage + "'"),
           signalPassFailure();
  if (train != "attention" && train != "all")
    return (void)fail("train must be attention or all, got '" + train + "'"),
           signalPassFailure();
  if (!(temperature >= kMinTemperature && temperature <= kMaxTemperature) ||
      !(featureWeight >= 0 && featureWeight <= kMaxFeatureWeight))
    return (void)fail("needs temperature in [0.001, 100] and feature-weight in [0, 1000]"),
           signalPassFailure();
  if (module.lookupSymbol("train_step"))
    return (void)fail("@train_step already exists"), signalPassFailure();
  auto studentForward = module.lookupSymbol<func::FuncOp>("forward");
  if (!studentForward)
    return (void)fail("the module has no @forward"), signalPassFailure();
  if (auto why = whyNotOneBlock(studentForward))
    return (void)fail(*why), signalPassFailure();
  if (!layers.empty() && stage != "layerwise")
    return (void)fail("layers= selects layers of stage=layerwise only"), signalPassFailure();
  // As the recipe reader does: set on another stage, these were ignored
  // without a word (stage lm trains everything and has no teacher, stage
  // layerwise trains the edits by MSE).
  if (stage != "model")
    for (auto [option, set] : {std::pair{"temperature", temperature != 1.0},
                               std::pair{"feature-weight", featureWeight != 0.0},
                               std::pair{"feature-layers", !featureLayers.empty()},
                               std::pair{"train", train != "attention"},
                               std::pair{"teacher", stage == "lm" && !teacher.empty()}})
      if (set)
        return (void)fail(llvm::Twine(option) + "= does not apply to stage=" + stage),
               signalPassFailure();
  if (!featureLayers.empty() && featureWeight == 0)
    return (void)fail("feature-layers= needs feature-weight > 0, or the feature loss weighs 0"),
           signalPassFailure();
  if (featureLayers.empty() && featureWeight != 0)
    return (void)fail("feature-weight= needs feature-layers=, the layers whose hidden states "
                      "the feature loss compares (it compares none)"),
           signalPassFailure();
  if (stage == "lm")
    return buildLanguageModelLoss(studentForward);
  if (teacher.empty())
    return (void)fail("give the teacher module: teacher=FILE.mlir"), signalPassFailure();

  auto teacherText = readInputFile(teacher);
  if (!teacherText)
    return (void)fail("cannot read the teacher module '" + teacher +
                      "': " + teacherText.getError().message()),
           signalPassFailure();
  llvm::SourceMgr sourceMgr;
  sourceMgr.AddNewSourceBuffer(std::move(*teacherText), llvm::SMLoc());
  OwningOpRef<ModuleOp> teacherModule;
  {
    // For the parse only (errors quote the teacher's text): left installed,
    // the handler would take this pass's own errors too, printing them with
    // the whole module and leaving the pass manager's caller no message.
    SourceMgrDiagnosticHandler handler(sourceMgr, &getContext());
    teacherModule = parseSourceFile<ModuleOp>(sourceMgr, &getContext());
  }
  if (!teacherModule)
    return (void)fail("cannot read the teacher module '" + teacher + "'"),
           signalPassFailure();
  auto teacherForward = teacherModule->lookupSymbol<func::FuncOp>("forward");
  if (!teacherForward)
    return (void)fail("the teacher '" + teacher + "' has no @forward"), signalPassFailure();
  if (auto why = whyNotOneBlock(teacherForward))
    return (void)fail("the teacher '" + teacher + "': " + *why), signalPassFailure();
  for (int64_t layer : featureLayers)
    if (layer < 0 || layer >= (int64_t)attentionOps(studentForward).size())
      return (void)fail("feature layer " + Twine(layer) + " is out of range"),
             signalPassFailure();
  if (failed(build(teacherForward, studentForward)))
    signalPassFailure();
}
