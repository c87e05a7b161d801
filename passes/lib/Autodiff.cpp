//===- Autodiff.cpp - --attnedit-autodiff ----------------------------------===//
//
// Reverse mode over one block: decompose composites, find the values that
// depend on something being differentiated, then walk the ops backwards
// asking each one's DifferentiableOpInterface for its operands' cotangents.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringMap.h"

namespace mlir::attnedit {
#define GEN_PASS_DEF_AUTODIFFPASS
#include "attnedit/Passes/Passes.h.inc"
} // namespace mlir::attnedit

using namespace mlir;
using namespace mlir::attnedit;

namespace {

struct AutodiffPass : attnedit::impl::AutodiffPassBase<AutodiffPass> {
  using Base::Base;
  void runOnOperation() override;
};

/// The name a gradient is reported under.
std::string paramKey(ParamOp param) {
  return param.getScope() ? (*param.getScope() + "::" + param.getName()).str()
                          : param.getName().str();
}

LogicalResult decomposeComposites(func::FuncOp func) {
  SmallVector<DecomposableOpInterface> composites;
  func.walk([&](DecomposableOpInterface op) { composites.push_back(op); });
  for (DecomposableOpInterface op : composites) {
    OpBuilder builder(op);
    FailureOr<SmallVector<Value>> expansion = op.decompose(builder);
    if (failed(expansion))
      return op->emitOpError("has no primitive expansion to differentiate");
    op->replaceAllUsesWith(*expansion);
    op->erase();
  }
  return success();
}

Value constant(OpBuilder &b, Location loc, RankedTensorType type, float value) {
  return b.create<arith::ConstantOp>(loc, type, DenseElementsAttr::get(type, value));
}

/// Builds the gradient function in place of the clone `func`.
LogicalResult differentiate(func::FuncOp func) {
  Block &body = func.getBody().front();
  auto ret = cast<func::ReturnOp>(body.getTerminator());
  if (ret.getNumOperands() != 1)
    return func.emitError("attnedit-autodiff: the function must return one loss value");
  Value loss = ret.getOperand(0);
  auto lossType = dyn_cast<RankedTensorType>(loss.getType());
  if (!lossType || !lossType.hasStaticShape() || lossType.getNumElements() != 1 ||
      !lossType.getElementType().isF32())
    return func.emitError("attnedit-autodiff: the loss must be a single-element f32 tensor");
  if (failed(decomposeComposites(func)))
    return failure();

  // What is differentiated: trainable parameters (by name) and marked args.
  llvm::MapVector<std::string, SmallVector<Value>, llvm::StringMap<unsigned>> params;
  SmallVector<std::pair<std::string, Value>> args;
  llvm::DenseSet<Value> active;
  for (BlockArgument arg : body.getArguments())
    if (func.getArgAttr(arg.getArgNumber(), "attnedit.wrt")) {
      // An integer's "gradient" was a zero tensor of its type, an f16's a
      // silent zero (convert passes nothing back to a storage type).
      auto type = dyn_cast<RankedTensorType>(arg.getType());
      if (!type || !type.getElementType().isF32())
        return func.emitError() << "attnedit-autodiff: argument " << arg.getArgNumber()
                                << " is marked attnedit.wrt but is " << arg.getType()
                                << "; only f32 tensors have gradients";
      args.push_back({"arg" + std::to_string(arg.getArgNumber()), arg});
      active.insert(arg);
    }
  for (Operation &op : body) {
    // The reverse sweep walks one block: a gradient that would flow through
    // a region (scf.if, scf.execute_region) came out as zero, silently.
    bool activeInside = false;
    op.walk([&](Operation *inner) {
      if (inner == &op)
        return;
      auto p = dyn_cast<ParamOp>(inner);
      if ((p && p.getTrainable()) ||
          llvm::any_of(inner->getOperands(), [&](Value v) { return active.contains(v); }))
        activeInside = true;
    });
    if (activeInside)
      return op.emitOpError() << "attnedit-autodiff: a differentiated value flows through this "
                                 "op's regions, which autodiff does not differentiate; keep "
                                 "the path from the parameters to the loss in the function's "
                                 "own block";
    auto param = dyn_cast<ParamOp>(op);
    if (param && param.getTrainable() && !param.getType().getElementType().isF32())
      // Its uses go through a convert to f32, whose gradient does not flow
      // back to a storage type: the result would be a zero gradient.
      return param.emitError() << "attnedit-autodiff: trainable parameter '"
                               << param.getName() << "' is stored as "
                               << param.getType().getElementType()
                               << "; gradients are computed in f32, so make it an f32 "
                                  "parameter (as --attnedit-build-distill does for what it "
                                  "trains) or freeze it";
    if (param && param.getTrainable()) {
      SmallVector<Value> &uses = params[paramKey(param)];
      // One gradient per name: uses of two shapes could not be summed.
      if (!uses.empty() && uses.front().getType() != param.getType())
        return param.emitError() << "attnedit-autodiff: trainable parameter '"
                                 << param.getName() << "' is declared as "
                                 << uses.front().getType() << " and as " << param.getType();
      uses.push_back(param);
      active.insert(param);
      continue;
    }
    if (llvm::any_of(op.getOperands(), [&](Value v) { return active.contains(v); }))
      active.insert(op.result_begin(), op.result_end());
  }
  if (params.empty() && args.empty())
    return func.emitError("attnedit-autodiff: nothing to differentiate (no trainable "
                          "attnedit.param and no argument marked attnedit.wrt)");

  OpBuilder b(ret);
  Location loc = func.getLoc();
  llvm::DenseMap<Value, Value> grads;
  auto accumulate = [&](Value v, Value g) {
    auto [it, fresh] = grads.try_emplace(v, g);
    if (!fresh)
      it->second = b.create<AddOp>(loc, it->second, g);
  };
  if (active.contains(loss))
    grads[loss] = constant(b, loc, lossType, 1.0f);

  SmallVector<Operation *> forward;
  for (Operation &op : body.without_terminator())
    forward.push_back(&op);
  for (Operation *op : llvm::reverse(forward)) {
    if (isa<ParamOp>(op))
      continue;
    // VJP rules take one cotangent: a multi-result op (a func.call) on the
    // loss's path was skipped, and its inputs' gradients came out zero.
    if (op->getNumResults() != 1) {
      if (llvm::any_of(op->getResults(), [&](Value r) { return grads.contains(r); }))
        return op->emitOpError() << "has " << op->getNumResults()
                                 << " results on the loss's path; autodiff differentiates "
                                    "ops of one result";
      continue;
    }
    Value g = grads.lookup(op->getResult(0));
    if (!g)
      continue;
    auto rule = dyn_cast<DifferentiableOpInterface>(op);
    if (!rule)
      return op->emitOpError("has no VJP rule (DifferentiableOpInterface)");
    FailureOr<SmallVector<Value>> operandGrads = rule.buildVjp(b, g);
    if (failed(operandGrads))
      return failure();
    for (auto [operand, og] : llvm::zip(op->getOperands(), *operandGrads))
      if (og && active.contains(operand))
        accumulate(operand, og);
  }

  SmallVector<Value> results{loss};
  SmallVector<Attribute> names;
  auto gradOrZero = [&](Value v) -> FailureOr<Value> {
    if (Value g = grads.lookup(v))
      return g;
    auto type = cast<RankedTensorType>(v.getType());
    if (!type.hasStaticShape())
      return func.emitError("attnedit-autodiff: an unused differentiated value has a "
                            "dynamic shape, so its zero gradient has no size"),
             failure();
    return constant(b, loc, type, 0.0f);
  };
  for (auto &[name, uses] : params) {
    Value total;
    for (Value use : uses) {
      auto g = gradOrZero(use);
      if (failed(g))
        return failure();
      total = total ? b.create<AddOp>(loc, total, *g).getResult() : *g;
    }
    results.push_back(total);
    names.push_back(b.getStringAttr(name));
  }
  for (auto &[name, arg] : args) {
    auto g = gradOrZero(arg);
    if (failed(g))
      return failure();
    results.push_back(*g);
    names.push_back(b.getStringAttr(name));
  }
  b.create<func::ReturnOp>(loc, results);
  ret.erase();
  func.setFunctionType(b.getFunctionType(func.getArgumentTypes(), ValueRange(results).getTypes()));
  func->setAttr("attnedit.gradients", b.getArrayAttr(names));
  return success();
}

void AutodiffPass::runOnOperation() {
  ModuleOp module = getOperation();
  auto func = module.lookupSymbol<func::FuncOp>(funcName);
  if (!func) {
    // Naming the candidates: --attnedit-build-distill writes @train_step,
    // and the option's default is @loss.
    SmallVector<StringRef> scalar;
    for (auto f : module.getOps<func::FuncOp>())
      if (!f.isExternal() && f.getNumResults() == 1)
        if (auto t = dyn_cast<RankedTensorType>(f.getResultTypes()[0]);
            t && t.hasStaticShape() && t.getNumElements() == 1)
          scalar.push_back(f.getSymName());
    InFlightDiagnostic diag = module.emitError()
                              << "attnedit-autodiff: no function @" << funcName
                              << " (the func= option)";
    if (!scalar.empty())
      diag << "; functions returning a scalar here: @" << llvm::join(scalar, ", @");
    return signalPassFailure();
  }
  if (auto why = whyNotOneBlock(func)) {
    func.emitError() << "attnedit-autodiff: " << *why;
    return signalPassFailure();
  }
  std::string gradName = funcName + "_grad";
  if (module.lookupSymbol(gradName)) {
    module.emitError() << "attnedit-autodiff: @" << gradName << " already exists";
    return signalPassFailure();
  }
  OpBuilder b(module.getContext());
  b.setInsertionPointAfter(func);
  auto grad = cast<func::FuncOp>(b.clone(*func));
  grad.setName(gradName);
  if (failed(differentiate(grad)))
    return signalPassFailure();
}

} // namespace
