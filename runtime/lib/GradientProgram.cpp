//===- GradientProgram.cpp - run a training step's gradient ----------------===//

#include "attnedit/Runtime/GradientProgram.h"
#include "attnedit/IR/AttnEditOps.h"

#include "llvm/ADT/StringMap.h"

#include <random>

using namespace mlir;
using namespace mlir::attnedit;

static std::pair<llvm::StringRef, llvm::StringRef> splitKey(llvm::StringRef key) {
  auto [scope, name] = key.split("::");
  return name.empty() ? std::pair{llvm::StringRef(), scope} : std::pair{scope, name};
}

llvm::Expected<GradientProgram> GradientProgram::create(func::FuncOp gradFunc,
                                                        ParameterStore &store, uint64_t seed) {
  auto names = gradFunc->getAttrOfType<ArrayAttr>("attnedit.gradients");
  if (!names)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "@%s is not a gradient function (run --attnedit-autodiff)",
                                   gradFunc.getName().str().c_str());
  // Shapes come from the param ops the gradients are for.
  llvm::StringMap<ArrayRef<int64_t>> shapes;
  gradFunc.walk([&](ParamOp p) {
    std::string key = p.getScope() ? (*p.getScope() + "::" + p.getName()).str()
                                   : p.getName().str();
    shapes[key] = p.getType().getShape();
  });
  GradientProgram program(gradFunc, store);
  std::mt19937_64 rng(seed);
  for (llvm::StringRef key : names.getAsValueRange<StringAttr>()) {
    if (key.starts_with("arg"))
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "@%s differentiates an argument (%s); a training step "
                                     "only differentiates parameters",
                                     gradFunc.getName().str().c_str(), key.str().c_str());
    auto [scope, name] = splitKey(key);
    ArrayRef<int64_t> shape = shapes.lookup(key);
    Tensor value = Tensor::zeros(shape);
    auto stored = store.get(name, shape, scope);
    if (!stored && !scope.empty()) {
      llvm::consumeError(stored.takeError());
      stored = store.get(name, shape);
    }
    if (stored) {
      std::copy_n(stored->data(), stored->numel(), value.mutableData());
    } else {
      llvm::consumeError(stored.takeError());
      bool norm = name.contains("norm");
      std::normal_distribution<float> normal(0.0f, 0.02f);
      for (int64_t i = 0; i < value.numel(); ++i)
        value.mutableData()[i] = norm ? 1.0f : normal(rng);
    }
    store.set(name, value, scope);
    program.names.push_back(key.str());
    program.params.push_back(value);
    program.grads.push_back(Tensor::zeros(shape));
  }
  return program;
}

llvm::Expected<double> GradientProgram::accumulate(llvm::ArrayRef<Tensor> args) {
  auto results = evaluate(gradFunc, args, *store);
  if (!results)
    return results.takeError();
  for (size_t i = 0; i < grads.size(); ++i) {
    const Tensor &g = (*results)[i + 1];
    float *acc = grads[i].mutableData();
    for (int64_t j = 0; j < g.numel(); ++j)
      acc[j] += g.data()[j];
  }
  ++sequences;
  return (double)results->front().data()[0];
}

void GradientProgram::averageGradients() {
  if (sequences <= 1)
    return;
  for (Tensor &g : grads)
    for (int64_t j = 0; j < g.numel(); ++j)
      g.mutableData()[j] /= sequences;
}

void GradientProgram::resetGradients() {
  for (Tensor &g : grads)
    std::fill_n(g.mutableData(), g.numel(), 0.0f);
  sequences = 0;
}
