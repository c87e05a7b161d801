//===- Executor.cpp - the reference executor and the backend registry ------===//

#include "attnedit/Runtime/Execution/Executor.h"

#include "llvm/ADT/StringExtras.h"

#include <mutex>

#include <unistd.h>

using namespace mlir;
using namespace mlir::attnedit;

Executor::~Executor() = default;

double attnedit::physicalMemoryBytes() {
  return (double)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGE_SIZE);
}

llvm::Expected<std::vector<Tensor>> Executor::run(ModuleOp module, llvm::StringRef name,
                                                  llvm::ArrayRef<Tensor> args,
                                                  ParameterStore &parameters) {
  auto func = module.lookupSymbol<func::FuncOp>(name);
  if (!func)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "%s: the module has no such function", name.str().c_str());
  return run(func, args, parameters);
}

namespace {
class ReferenceExecutor final : public Executor {
public:
  explicit ReferenceExecutor(EvaluatorOptions options) : options(options) {}
  llvm::Expected<std::vector<Tensor>> run(func::FuncOp func, llvm::ArrayRef<Tensor> args,
                                          ParameterStore &parameters) override {
    return evaluate(func, args, parameters, options);
  }
  using Executor::run;
  llvm::StringRef backend() const override { return "reference"; }

private:
  EvaluatorOptions options;
};
} // namespace

std::unique_ptr<Executor> attnedit::createReferenceExecutor(EvaluatorOptions options) {
  return std::make_unique<ReferenceExecutor>(options);
}

static const llvm::StringRef kBackends[] = {"cpu", "reference", "ascend-sim"};

llvm::ArrayRef<llvm::StringRef> attnedit::backendNames() { return kBackends; }

static std::mutex defaultMutex;
static std::unique_ptr<Executor> &defaultSlot() {
  // Never destroyed: a compiled executor's JIT must not be torn down by
  // static destructors after LLVM's own.
  static auto *slot = new std::unique_ptr<Executor>();
  return *slot;
}

static std::string &defaultName() {
  static auto *name = new std::string("reference");
  return *name;
}

Executor &attnedit::defaultExecutor() {
  std::lock_guard<std::mutex> lock(defaultMutex);
  std::unique_ptr<Executor> &slot = defaultSlot();
  if (!slot)
    slot = createReferenceExecutor();
  return *slot;
}

llvm::Error attnedit::setDefaultBackend(llvm::StringRef name, const BackendOptions &options) {
  std::unique_ptr<Executor> chosen;
  if (name == "reference")
    chosen = createReferenceExecutor();
  else if (name == "cpu")
    chosen = createCompiledExecutor();
  else if (name == "ascend-sim") {
    auto sim = createAscendSimExecutor(options.ascendTarget, options.ascendDtype);
    if (!sim)
      return sim.takeError();
    chosen = std::move(*sim);
  }
  if (!chosen)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "--backend: unknown backend '%s' (known: %s)",
                                   name.str().c_str(),
                                   llvm::join(backendNames(), ", ").c_str());
  std::lock_guard<std::mutex> lock(defaultMutex);
  defaultSlot() = std::move(chosen);
  defaultName() = name == "ascend-sim"
                      ? (name + " " + options.ascendTarget + " " + options.ascendDtype).str()
                      : name.str();
  return llvm::Error::success();
}

std::string attnedit::defaultBackendName() {
  std::lock_guard<std::mutex> lock(defaultMutex);
  return defaultName();
}
