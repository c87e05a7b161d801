//===- CompiledExecutor.cpp - running functions as JIT-compiled CPU code ---===//
//
// Each function is printed, parsed into a private context, lowered by the
// CPU backend's pipeline (backends/cpu) and JIT-compiled once; compiled code
// is cached by a hash of the function's text and the pipeline, so a module
// whose function is called for every generated token compiles once. The
// compiled function takes its inputs, then its parameters (bound by name to
// the store's memory, never copied), as dense memrefs; its results are
// buffers it allocated, handed to the caller's tensors.
//
//===----------------------------------------------------------------------===//

#include "attnedit/CPU/JitModule.h"
#include "attnedit/CPU/Passes.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"
#include "attnedit/Runtime/Execution/Executor.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/xxhash.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

using namespace mlir;
using namespace mlir::attnedit;

namespace {

llvm::Error makeError(llvm::StringRef where, const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: %s",
                                 where.str().c_str(), msg.str().c_str());
}

/// One JIT-compiled function and how to call it.
struct CompiledFunction {
  std::unique_ptr<cpu::JitModule> jit;
  std::string name;
  struct Input {
    SmallVector<int64_t> shape; // kDynamic where dynamic
    bool isInt;
  };
  std::vector<Input> inputs;
  struct Param {
    std::string name, scope;
    SmallVector<int64_t> shape;
  };
  std::vector<Param> params;
  std::vector<unsigned> resultRanks;
  /// Ids fed directly by an input (embedding ids, cross-entropy targets,
  /// where -1 means "no target"), checked before the call as the reference
  /// kernels check them: compiled code only clamps.
  struct IdCheck {
    unsigned input;
    int64_t limit;
    bool allowIgnored;
    const char *what;
  };
  std::vector<IdCheck> idChecks;
};

/// A memref descriptor as the C interface lays it out: allocated and
/// aligned pointers, offset, sizes, strides, all 8-byte words.
struct Descriptor {
  std::vector<int64_t> words;
  static Descriptor of(const void *data, llvm::ArrayRef<int64_t> shape) {
    Descriptor d;
    int64_t rank = shape.size();
    d.words.assign(3 + 2 * rank, 0);
    d.words[0] = d.words[1] = (int64_t)(intptr_t)data;
    int64_t stride = 1;
    for (int64_t i = rank - 1; i >= 0; --i) {
      d.words[3 + i] = shape[i];
      d.words[3 + rank + i] = stride;
      stride *= shape[i];
    }
    return d;
  }
};

std::once_flag registerOnce;

class CompiledExecutor final : public Executor {
public:
  llvm::Expected<std::vector<Tensor>> run(func::FuncOp func, llvm::ArrayRef<Tensor> args,
                                          ParameterStore &parameters) override;
  using Executor::run;
  llvm::StringRef backend() const override { return "cpu"; }

private:
  llvm::Expected<std::shared_ptr<CompiledFunction>> compiled(func::FuncOp func);
  llvm::Expected<std::shared_ptr<CompiledFunction>> compile(func::FuncOp func,
                                                            const std::string &text);

  std::mutex mutex;
  llvm::StringMap<std::shared_ptr<CompiledFunction>> cache;
};

llvm::Expected<std::shared_ptr<CompiledFunction>> CompiledExecutor::compiled(func::FuncOp func) {
  std::string text;
  llvm::raw_string_ostream os(text);
  func->print(os, OpPrintingFlags().printGenericOpForm(false));
  std::string pipeline = cpu::pipelineText();
  std::string key = llvm::utohexstr(llvm::xxh3_64bits(text)) +
                    llvm::utohexstr(llvm::xxh3_64bits(pipeline)) + func.getSymName().str();
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end())
    return it->second;
  auto fn = compile(func, text);
  if (!fn)
    return fn.takeError();
  cache[key] = *fn;
  return *fn;
}

llvm::Expected<std::shared_ptr<CompiledFunction>>
CompiledExecutor::compile(func::FuncOp func, const std::string &text) {
  auto start = std::chrono::steady_clock::now();
  std::call_once(registerOnce, [] {
    registerAttnEditPasses();
    cpu::registerCPUPasses();
  });
  std::string name = func.getSymName().str();
  DialectRegistry registry;
  cpu::registerCPUDialects(registry);
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  context.loadAllAvailableDialects();
  std::string diagnostics;
  llvm::raw_string_ostream diagOs(diagnostics);
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &d) {
    diagOs << d.getLocation() << ": " << d << "\n";
    return success();
  });
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, &context);
  if (!module)
    return makeError(name, "cpu backend: cannot re-parse the function:\n" + diagnostics);

  auto runPipeline = [&](const std::string &pipeline) -> llvm::Error {
    PassManager pm(&context);
    if (failed(parsePassPipeline(pipeline, pm, diagOs)))
      return makeError(name, "cpu backend: bad pipeline: " + diagnostics);
    if (failed(pm.run(*module)))
      return makeError(name, "cpu backend: lowering failed:\n" + diagnostics);
    return llvm::Error::success();
  };
  if (llvm::Error e = runPipeline(cpu::toLinalgPipelineText()))
    return std::move(e);

  auto fn = std::make_shared<CompiledFunction>();
  fn->name = name;
  auto lowered = module->lookupSymbol<func::FuncOp>(name);
  if (!lowered)
    return makeError(name, "cpu backend: the function vanished in lowering");
  for (unsigned i = 0; i < lowered.getNumArguments(); ++i) {
    auto type = cast<RankedTensorType>(lowered.getArgumentTypes()[i]);
    if (auto param = lowered.getArgAttrOfType<StringAttr>(i, "attnedit.param")) {
      auto scope = lowered.getArgAttrOfType<StringAttr>(i, "attnedit.scope");
      fn->params.push_back({param.str(), scope ? scope.str() : "", SmallVector<int64_t>(type.getShape())});
      continue;
    }
    fn->inputs.push_back({SmallVector<int64_t>(type.getShape()), type.getElementType().isInteger(32)});
  }
  for (Type t : lowered.getResultTypes()) {
    auto type = cast<RankedTensorType>(t);
    if (!type.getElementType().isF32())
      return makeError(name, "cpu backend: only f32 results are supported");
    fn->resultRanks.push_back(type.getRank());
  }
  auto checkIds = [&](Value ids, Value table, bool allowIgnored, const char *what) {
    if (auto arg = dyn_cast<BlockArgument>(ids))
      if (arg.getOwner()->getParentOp() == func.getOperation())
        fn->idChecks.push_back({arg.getArgNumber(),
                                allowIgnored ? cast<RankedTensorType>(table.getType()).getShape().back()
                                             : cast<RankedTensorType>(table.getType()).getDimSize(0),
                                allowIgnored, what});
  };
  func.walk([&](Operation *op) {
    if (auto e = dyn_cast<attnedit::EmbeddingOp>(op))
      checkIds(e.getIds(), e.getTable(), false, "token id");
    else if (auto l = dyn_cast<attnedit::CrossEntropyLossOp>(op))
      checkIds(l.getTargets(), l.getLogits(), true, "target id");
    else if (auto g = dyn_cast<attnedit::LossGradOp>(op); g && g.getKind() == "cross_entropy")
      checkIds(g.getRhs(), g.getLhs(), true, "target id");
  });
  lowered->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(), UnitAttr::get(&context));
  if (llvm::Error e = runPipeline(cpu::toLLVMPipelineText()))
    return std::move(e);
  auto lowerEnd = std::chrono::steady_clock::now();
  auto jit = cpu::JitModule::create(*module);
  if (!jit)
    return makeError(name, "cpu backend: JIT: " + llvm::toString(jit.takeError()));
  fn->jit = std::move(*jit);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::debug("cpu backend: compiled @{} in {:.2f} s ({:.2f} s lowering)", name, seconds,
               std::chrono::duration<double>(lowerEnd - start).count());
  return fn;
}

llvm::Expected<std::vector<Tensor>> CompiledExecutor::run(func::FuncOp func,
                                                          llvm::ArrayRef<Tensor> args,
                                                          ParameterStore &parameters) {
  auto fnOr = compiled(func);
  if (!fnOr)
    return fnOr.takeError();
  const CompiledFunction &fn = **fnOr;
  if (args.size() != fn.inputs.size())
    return makeError(fn.name, llvm::formatv("expects {0} arguments, got {1}", fn.inputs.size(),
                                            args.size())
                                  .str());
  std::vector<Descriptor> descriptors;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto &in = fn.inputs[i];
    const Tensor &t = args[i];
    bool shapeOk = t.rank() == (int64_t)in.shape.size() && t.isInt() == in.isInt;
    for (int64_t d = 0; shapeOk && d < t.rank(); ++d)
      shapeOk = ShapedType::isDynamic(in.shape[d]) || in.shape[d] == t.dim(d);
    if (!shapeOk)
      return makeError(fn.name, llvm::formatv("argument {0} has shape {1}{2}, the function "
                                              "expects {3}{4}",
                                              i, t.shapeString(), t.isInt() ? " (i32)" : "",
                                              formatShape(in.shape), in.isInt ? " (i32)" : "")
                                    .str());
    descriptors.push_back(Descriptor::of(
        t.isInt() ? (const void *)t.intValues() : (const void *)t.data(), t.shape()));
  }
  for (const auto &check : fn.idChecks) {
    const Tensor &ids = args[check.input];
    for (int64_t i = 0; i < ids.numel(); ++i) {
      int32_t id = ids.intValues()[i];
      if ((id < 0 || id >= check.limit) && !(check.allowIgnored && id == -1))
        return makeError(fn.name, llvm::formatv("{0} {1} at position {2} is outside the "
                                                "vocabulary [0, {3})",
                                                check.what, id, i, check.limit)
                                      .str());
    }
  }
  std::vector<Tensor> bound;
  for (const auto &p : fn.params) {
    auto value = parameters.get(p.name, p.shape, p.scope);
    if (!value)
      return value.takeError();
    bound.push_back(*value);
    descriptors.push_back(Descriptor::of(value->data(), value->shape()));
  }
  // Results: one descriptor, or a struct of them (all 8-byte words, so the
  // struct is their concatenation).
  size_t resultWords = 0;
  for (unsigned r : fn.resultRanks)
    resultWords += 3 + 2 * r;
  std::vector<int64_t> results(resultWords, 0);
  std::vector<void *> callArgs;
  if (!fn.resultRanks.empty())
    callArgs.push_back(results.data());
  for (Descriptor &d : descriptors)
    callArgs.push_back(d.words.data());
  if (llvm::Error e = fn.jit->call(fn.name, callArgs))
    return makeError(fn.name, "cpu backend: call failed: " + llvm::toString(std::move(e)));

  std::vector<Tensor> out;
  std::vector<int64_t> owned;
  size_t at = 0;
  for (int64_t rank : fn.resultRanks) {
    int64_t *w = results.data() + at;
    at += 3 + 2 * rank;
    void *allocated = (void *)(intptr_t)w[0];
    const float *data = (const float *)(intptr_t)w[1] + w[2];
    SmallVector<int64_t> shape(w + 3, w + 3 + rank);
    int64_t expected = 1;
    bool dense = true;
    for (int64_t i = rank - 1; i >= 0; --i) {
      dense &= shape[i] <= 1 || w[3 + rank + i] == expected;
      expected *= shape[i];
    }
    // The deallocation pipeline hands every result's ownership to the caller
    // (cloning where needed); a result that is still one of the inputs'
    // buffers would be a bug there, so it is copied, never freed.
    bool foreign = llvm::is_contained(owned, w[0]);
    for (const Descriptor &d : descriptors)
      foreign |= d.words[0] == w[0];
    if (!foreign)
      owned.push_back(w[0]);
    if (!dense || foreign) {
      Tensor copy = Tensor::zeros(shape);
      SmallVector<int64_t> index(rank, 0);
      for (int64_t n = 0; n < copy.numel(); ++n) {
        int64_t src = 0;
        for (int64_t i = 0; i < rank; ++i)
          src += index[i] * w[3 + rank + i];
        copy.mutableData()[n] = data[src];
        for (int64_t i = rank - 1; i >= 0 && ++index[i] == shape[i]; --i)
          index[i] = 0;
      }
      if (!foreign)
        std::free(allocated);
      out.push_back(copy);
      continue;
    }
    out.push_back(Tensor::view(shape, data, std::shared_ptr<const void>(allocated, std::free)));
  }
  return out;
}

} // namespace

std::unique_ptr<Executor> attnedit::createCompiledExecutor() {
  return std::make_unique<CompiledExecutor>();
}
