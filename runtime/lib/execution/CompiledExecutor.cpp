//===- CompiledExecutor.cpp - running functions as JIT-compiled CPU code ---===//
//
// Each function is printed, parsed into a private context, lowered by the
// CPU backend's pipeline (backends/cpu) and JIT-compiled once; compiled code
// is cached by a hash of the function's text, the pipeline, the executable
// (so a rebuilt lowering never loads stale code) and the host CPU,
// in memory (a function called for every generated token compiles once) and
// on disk (an object file and its calling convention as JSON, so a second
// run compiles nothing): in $ATTNEDIT_CACHE_DIR, else
// $XDG_CACHE_HOME/attnedit/cpu or ~/.cache/attnedit/cpu; ATTNEDIT_CACHE_DIR=""
// turns the disk cache off. The
// compiled function takes its inputs, then its parameters (bound by name to
// the store's memory, never copied), as dense memrefs; its results are
// buffers it allocated, handed to the caller's tensors, except KV-cache
// pools, which it updates in the caller's memory (the caller donates them)
// and which come back as the argument tensors themselves.
//
//===----------------------------------------------------------------------===//

#include "attnedit/CPU/JitModule.h"
#include "attnedit/CPU/Passes.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"
#include "attnedit/Runtime/Execution/Executor.h"
#include "attnedit/Runtime/Inference/CacheKernels.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/xxhash.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <malloc.h>
#include <unistd.h>

using namespace mlir;
using namespace mlir::attnedit;

namespace {

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
  /// Per result of the function: the input it is (a KV-cache pool the
  /// function updated in place and no longer returns), or -1 when computed.
  SmallVector<int64_t> donated;
  /// Ids fed directly by an input (embedding ids, cross-entropy targets,
  /// where -1 means "no target"), checked before the call as the reference
  /// kernels check them: compiled code only clamps.
  struct IdCheck {
    unsigned input;
    int64_t limit;
    bool allowIgnored;
    std::string what;
  };
  std::vector<IdCheck> idChecks;
  /// KV-cache slots a cache op of the function touches, fed by inputs
  /// (table, positions, pool), checked before the call as the reference
  /// kernels check them: the compiled kernels skip an unmapped slot.
  struct SlotCheck {
    unsigned table, positions, pool;
    int64_t blockSize, window;
    bool ring;
    std::string op;
  };
  std::vector<SlotCheck> slotChecks;
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

/// Bumped whenever the cache's own format changes.
constexpr const char *kCacheVersion = "attnedit-cpu-cache-3";

/// A hash of the running executable: the lowering, the shims and the
/// runtime's calling convention are all compiled into it, so any rebuild
/// (a changed lowering) misses the cache instead of loading stale code.
/// Empty when the executable cannot be read (then no disk cache).
const std::string &executableHash() {
  static const std::string hash = [] {
    auto exe = llvm::MemoryBuffer::getFile("/proc/self/exe", /*IsText=*/false,
                                           /*RequiresNullTerminator=*/false);
    if (!exe)
      return std::string();
    return llvm::utohexstr(llvm::xxh3_64bits(llvm::arrayRefFromStringRef((*exe)->getBuffer())),
                           /*LowerCase=*/true);
  }();
  return hash;
}

std::string defaultCacheDir() {
  if (const char *dir = std::getenv("ATTNEDIT_CACHE_DIR"))
    return dir;
  llvm::SmallString<256> path;
  if (const char *xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    path = xdg;
  else if (const char *home = std::getenv("HOME"); home && *home)
    llvm::sys::path::append(path, home, ".cache");
  else
    return "";
  llvm::sys::path::append(path, "attnedit", "cpu");
  return path.str().str();
}

llvm::json::Value toJson(const CompiledFunction &fn) {
  llvm::json::Array inputs, params, checks;
  for (const auto &in : fn.inputs)
    inputs.push_back(llvm::json::Object{{"shape", llvm::json::Array(in.shape)}, {"int", in.isInt}});
  for (const auto &p : fn.params)
    params.push_back(llvm::json::Object{
        {"name", p.name}, {"scope", p.scope}, {"shape", llvm::json::Array(p.shape)}});
  for (const auto &c : fn.idChecks)
    checks.push_back(llvm::json::Object{{"input", (int64_t)c.input},
                                        {"limit", c.limit},
                                        {"ignored", c.allowIgnored},
                                        {"what", c.what}});
  llvm::json::Array slots;
  for (const auto &c : fn.slotChecks)
    slots.push_back(llvm::json::Object{{"table", (int64_t)c.table},
                                       {"positions", (int64_t)c.positions},
                                       {"pool", (int64_t)c.pool},
                                       {"block_size", c.blockSize},
                                       {"window", c.window},
                                       {"ring", c.ring},
                                       {"op", c.op}});
  llvm::json::Array results;
  for (unsigned r : fn.resultRanks)
    results.push_back((int64_t)r);
  return llvm::json::Object{{"name", fn.name},
                            {"inputs", std::move(inputs)},
                            {"params", std::move(params)},
                            {"results", std::move(results)},
                            {"donated", llvm::json::Array(fn.donated)},
                            {"id_checks", std::move(checks)},
                            {"slot_checks", std::move(slots)}};
}

/// The calling convention back from toJson's output; false when malformed.
bool fromJson(const llvm::json::Value &value, CompiledFunction &fn) {
  const llvm::json::Object *o = value.getAsObject();
  if (!o)
    return false;
  auto shapeOf = [](const llvm::json::Value *v, SmallVector<int64_t> &shape) {
    const llvm::json::Array *a = v ? v->getAsArray() : nullptr;
    if (!a)
      return false;
    for (const auto &d : *a) {
      auto i = d.getAsInteger();
      if (!i)
        return false;
      shape.push_back(*i);
    }
    return true;
  };
  auto name = o->getString("name");
  const llvm::json::Array *inputs = o->getArray("inputs"), *params = o->getArray("params"),
                          *results = o->getArray("results"), *checks = o->getArray("id_checks");
  if (!name || !inputs || !params || !results || !checks || !shapeOf(o->get("donated"), fn.donated))
    return false;
  fn.name = name->str();
  for (const auto &v : *inputs) {
    const llvm::json::Object *in = v.getAsObject();
    CompiledFunction::Input input;
    auto isInt = in ? in->getBoolean("int") : std::nullopt;
    if (!isInt || !shapeOf(in->get("shape"), input.shape))
      return false;
    input.isInt = *isInt;
    fn.inputs.push_back(std::move(input));
  }
  for (const auto &v : *params) {
    const llvm::json::Object *p = v.getAsObject();
    CompiledFunction::Param param;
    auto pname = p ? p->getString("name") : std::nullopt;
    auto scope = p ? p->getString("scope") : std::nullopt;
    if (!pname || !scope || !shapeOf(p->get("shape"), param.shape))
      return false;
    param.name = pname->str();
    param.scope = scope->str();
    fn.params.push_back(std::move(param));
  }
  for (const auto &v : *results) {
    auto r = v.getAsInteger();
    if (!r)
      return false;
    fn.resultRanks.push_back((unsigned)*r);
  }
  for (const auto &v : *checks) {
    const llvm::json::Object *c = v.getAsObject();
    auto input = c ? c->getInteger("input") : std::nullopt;
    auto limit = c ? c->getInteger("limit") : std::nullopt;
    auto ignored = c ? c->getBoolean("ignored") : std::nullopt;
    auto what = c ? c->getString("what") : std::nullopt;
    if (!input || !limit || !ignored || !what || *input < 0 || *input >= (int64_t)fn.inputs.size())
      return false;
    fn.idChecks.push_back({(unsigned)*input, *limit, *ignored, what->str()});
  }
  const llvm::json::Array *slots = o->getArray("slot_checks");
  if (!slots)
    return false;
  for (const auto &v : *slots) {
    const llvm::json::Object *c = v.getAsObject();
    std::optional<int64_t> index[3];
    const char *keys[3] = {"table", "positions", "pool"};
    for (int k = 0; k < 3; ++k) {
      index[k] = c ? c->getInteger(keys[k]) : std::nullopt;
      if (!index[k] || *index[k] < 0 || *index[k] >= (int64_t)fn.inputs.size())
        return false;
    }
    auto blockSize = c->getInteger("block_size"), window = c->getInteger("window");
    auto ring = c->getBoolean("ring");
    auto op = c->getString("op");
    if (!blockSize || !window || !ring || !op)
      return false;
    fn.slotChecks.push_back({(unsigned)*index[0], (unsigned)*index[1], (unsigned)*index[2],
                             *blockSize, *window, *ring, op->str()});
  }
  size_t kept = llvm::count(fn.donated, -1);
  return kept == fn.resultRanks.size() &&
         llvm::all_of(fn.donated, [&](int64_t i) { return i < (int64_t)fn.inputs.size(); });
}

class CompiledExecutor final : public Executor {
public:
  explicit CompiledExecutor(std::string cacheDir) : cacheDir(std::move(cacheDir)) {}
  llvm::Expected<std::vector<Tensor>> run(func::FuncOp func, llvm::ArrayRef<Tensor> args,
                                          ParameterStore &parameters) override;
  using Executor::run;
  llvm::StringRef backend() const override { return "cpu"; }

private:
  llvm::Expected<std::shared_ptr<CompiledFunction>> compiled(func::FuncOp func);
  /// The function keyed by a hash of its text, from memory, disk or the JIT.
  llvm::Expected<std::shared_ptr<CompiledFunction>> compiledByText(func::FuncOp func);
  llvm::Expected<std::shared_ptr<CompiledFunction>>
  compile(func::FuncOp func, const std::string &text, llvm::StringRef objectPath);
  /// The entry of `key` in the disk cache, or null when absent or unusable.
  std::shared_ptr<CompiledFunction> loadCached(llvm::StringRef key);

  std::string cacheDir;
  std::mutex mutex;
  llvm::StringMap<std::shared_ptr<CompiledFunction>> cache;
  llvm::DenseMap<Operation *, std::pair<OperationFingerPrint, std::shared_ptr<CompiledFunction>>>
      bySight;
};

llvm::Expected<std::shared_ptr<CompiledFunction>> CompiledExecutor::compiled(func::FuncOp func) {
  // A function already seen and unchanged since (a fingerprint walk is far
  // cheaper than printing it: a training step calls run once per sequence).
  OperationFingerPrint fingerprint(func);
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto seen = bySight.find(func.getOperation());
    if (seen != bySight.end() && seen->second.first == fingerprint)
      return seen->second.second;
  }
  auto fn = compiledByText(func);
  if (fn) {
    std::lock_guard<std::mutex> lock(mutex);
    bySight.insert_or_assign(func.getOperation(), std::make_pair(fingerprint, *fn));
  }
  return fn;
}

llvm::Expected<std::shared_ptr<CompiledFunction>>
CompiledExecutor::compiledByText(func::FuncOp func) {
  std::string text;
  llvm::raw_string_ostream os(text);
  func->print(os, OpPrintingFlags().printGenericOpForm(false));
  std::lock_guard<std::mutex> lock(mutex);
  static const std::string context =
      std::string(kCacheVersion) + ";" + executableHash() + ";" + cpu::pipelineText() + ";" +
      cpu::JitModule::hostFingerprint();
  std::string key = llvm::utohexstr(llvm::xxh3_64bits(text), /*LowerCase=*/true) + "-" +
                    llvm::utohexstr(llvm::xxh3_64bits(context), true) + "-" +
                    func.getSymName().str();
  auto it = cache.find(key);
  if (it != cache.end())
    return it->second;
  if (auto cached = loadCached(key)) {
    cache[key] = cached;
    return cached;
  }
  std::string objectPath;
  if (!cacheDir.empty() && !executableHash().empty() &&
      !llvm::sys::fs::create_directories(cacheDir))
    objectPath = (cacheDir + "/" + key + ".o");
  auto fn = compile(func, text, objectPath);
  if (!fn)
    return fn.takeError();
  if (!objectPath.empty() && llvm::sys::fs::exists(objectPath)) {
    // The calling convention beside the object, written after it: an entry
    // counts only when both are there.
    std::string json;
    llvm::raw_string_ostream os(json);
    os << toJson(**fn);
    std::string final = cacheDir + "/" + key + ".json";
    std::string temporary = final + ".tmp." + std::to_string(getpid());
    std::error_code ec;
    {
      llvm::raw_fd_ostream out(temporary, ec);
      if (!ec)
        out << json;
    }
    if (ec || llvm::sys::fs::rename(temporary, final))
      llvm::sys::fs::remove(temporary);
  }
  cache[key] = *fn;
  return *fn;
}

std::shared_ptr<CompiledFunction> CompiledExecutor::loadCached(llvm::StringRef key) {
  if (cacheDir.empty() || executableHash().empty())
    return nullptr;
  std::string base = cacheDir + "/" + key.str();
  auto json = llvm::MemoryBuffer::getFile(base + ".json");
  if (!json || !llvm::sys::fs::exists(base + ".o"))
    return nullptr;
  auto value = llvm::json::parse((*json)->getBuffer());
  auto fn = std::make_shared<CompiledFunction>();
  if (!value || !fromJson(*value, *fn)) {
    if (!value)
      llvm::consumeError(value.takeError());
    spdlog::warn("cpu backend: ignoring a malformed cache entry {}.json", base);
    return nullptr;
  }
  auto jit = cpu::JitModule::load(base + ".o");
  if (!jit) {
    spdlog::warn("cpu backend: cannot load cached {}.o ({}); recompiling", base,
                 llvm::toString(jit.takeError()));
    return nullptr;
  }
  fn->jit = std::move(*jit);
  spdlog::debug("cpu backend: @{} from the cache {}", fn->name, base);
  return fn;
}

llvm::Expected<std::shared_ptr<CompiledFunction>>
CompiledExecutor::compile(func::FuncOp func, const std::string &text, llvm::StringRef objectPath) {
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
  // Arguments keep their numbers (parameters were appended after them), so
  // a donated argument's number is its input index.
  if (auto donated = lowered->getAttrOfType<DenseI64ArrayAttr>("attnedit.donated_results"))
    fn->donated.assign(donated.asArrayRef().begin(), donated.asArrayRef().end());
  else
    fn->donated.assign(fn->resultRanks.size(), -1);
  auto checkIds = [&](Value ids, Value table, bool allowIgnored, const char *what) {
    if (auto arg = dyn_cast<BlockArgument>(ids))
      if (arg.getOwner()->getParentOp() == func.getOperation())
        fn->idChecks.push_back({arg.getArgNumber(),
                                allowIgnored ? cast<RankedTensorType>(table.getType()).getShape().back()
                                             : cast<RankedTensorType>(table.getType()).getDimSize(0),
                                allowIgnored, what});
  };
  auto inputOf = [&](Value v) -> std::optional<unsigned> {
    auto arg = dyn_cast<BlockArgument>(v);
    if (!arg || arg.getOwner()->getParentOp() != func.getOperation())
      return std::nullopt;
    return arg.getArgNumber();
  };
  auto checkSlots = [&](Operation *op, Value table, Value positions, Value pool,
                        int64_t blockSize, bool ring, int64_t window) {
    auto t = inputOf(table), p = inputOf(positions), q = inputOf(pool);
    if (!t || !p || !q)
      return;
    CompiledFunction::SlotCheck check{*t, *p, *q, blockSize, window, ring,
                                      op->getName().getStringRef().str()};
    if (llvm::none_of(fn->slotChecks, [&](const auto &c) {
          return c.table == check.table && c.positions == check.positions &&
                 c.pool == check.pool && c.blockSize == check.blockSize &&
                 c.window == check.window && c.ring == check.ring;
        }))
      fn->slotChecks.push_back(check);
  };
  // A pool a cache_write updates reaches the attention as the write's
  // result: the slots are checked against the pool argument underneath.
  auto poolArgument = [](Value v) {
    while (auto w = v.getDefiningOp<attnedit::CacheWriteOp>())
      v = w.getPool();
    return v;
  };
  func.walk([&](Operation *op) {
    if (auto w = dyn_cast<attnedit::CacheWriteOp>(op))
      checkSlots(op, w.getBlockTable(), w.getPositions(), poolArgument(w.getPool()),
                 w.getBlockSize(), w.getRing(), /*window=*/1);
    else if (auto a = dyn_cast<attnedit::PagedAttentionOp>(op))
      checkSlots(op, a.getBlockTable(), a.getPositions(), poolArgument(a.getKPool()),
                 a.getBlockSize(), a.getRing(), a.getWindow());
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
  auto jit = cpu::JitModule::create(*module, name, objectPath);
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
  for (const auto &check : fn.slotChecks)
    if (llvm::Error e = kernels::checkSlots(args[check.table], args[check.positions],
                                            args[check.pool].dim(0),
                                            {check.blockSize, check.ring}, check.window))
      return makeError(fn.name, "'" + check.op + "': " + llvm::toString(std::move(e)));
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
  size_t at = 0, next = 0;
  for (int64_t input : fn.donated) {
    if (input >= 0) {
      out.push_back(args[input]); // written in place
      continue;
    }
    int64_t rank = fn.resultRanks[next++];
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

std::unique_ptr<Executor> attnedit::createCompiledExecutor(std::optional<std::string> cacheDir) {
  // Compiled functions allocate each intermediate on every call (no static
  // arena plan yet). glibc maps every block over its dynamic threshold
  // fresh and unmaps it on free, so each call page-faulted its buffers in
  // again; kept on the heap (up to glibc's 32 MiB cap), they are reused.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  return std::make_unique<CompiledExecutor>(cacheDir ? *cacheDir : defaultCacheDir());
}
