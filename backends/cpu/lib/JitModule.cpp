//===- JitModule.cpp - ExecutionEngine for the host CPU ---------------------===//

#include "attnedit/CPU/JitModule.h"
#include "attnedit/IR/AttnEditOps.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Analysis/TargetLibraryInfo.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/ExecutionEngine/Orc/ExecutionUtils.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/Mangling.h"
#include "llvm/Object/ELFObjectFile.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/TargetParser/Host.h"

#include <cerrno>
#include <csetjmp>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>
#include <sys/mman.h>
#include <unistd.h>

using namespace mlir;
using namespace mlir::attnedit;

/// glibc's vector math library: the loop vectorizer calls its exp/log/...
/// variants (below), which must resolve in this process like libm's.
static constexpr const char *kVectorMathLibrary = "libmvec.so.1";

static llvm::Error initializeTarget() {
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::sys::DynamicLibrary::LoadLibraryPermanently(kVectorMathLibrary, &error);
  });
  if (!error.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "compiled code needs %s (glibc): %s", kVectorMathLibrary,
                                   error.c_str());
  return llvm::Error::success();
}

/// LLVM's -O2 with glibc's vector math library known to the vectorizer:
/// the elementwise loops (softmax, SiLU, cross-entropy) call exp on every
/// element, and without a vector variant a loop that calls it stays scalar
/// (perf: libm's scalar exp was 15% of a compiled training step).
/// libmvec's exp is within 4 ulp in double, so results stay within the
/// parity tolerances against the reference evaluator.
static llvm::Error optimize(llvm::Module *module, llvm::TargetMachine *machine) {
  // ExecutionEngine packs every function's arguments into a `_mlir_<name>`
  // wrapper; only the C interface's (`_mlir__mlir_ciface_<entry>`) is ever
  // called. The entry's own wrapper repeats its call with every memref field
  // as a scalar, which LLVM's DAG combiner lowers in time superlinear in the
  // arguments (a 10-layer MLA forward's: 2.75 of its 3.6 s of llc).
  for (llvm::Function &f : llvm::make_early_inc_range(*module))
    if (!f.isDeclaration() && f.use_empty() && f.getName().starts_with("_mlir_") &&
        !f.getName().starts_with("_mlir_ciface_") &&
        !f.getName().starts_with("_mlir__mlir_ciface_"))
      f.eraseFromParent();
  // On AVX-512 cores: whole-register vectors (LLVM's x86 tuning prefers 256
  // bits there, against early Skylake-X's clock drop; these loops are
  // throughput-bound), and libmvec's AVX-512 exp, which LLVM 19's libmvec
  // table lacks (it stops at 4 doubles / 8 floats).
  bool avx512 = machine->getTargetFeatureString().contains("+avx512f");
  if (avx512)
    for (llvm::Function &f : *module)
      if (!f.isDeclaration())
        f.addFnAttr("prefer-vector-width", "512");
  llvm::PipelineTuningOptions tuning;
  tuning.LoopUnrolling = true;
  tuning.LoopInterleaving = true;
  tuning.LoopVectorization = true;
  tuning.SLPVectorization = true;
  llvm::PassBuilder builder(machine, tuning);
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager cgscc;
  llvm::ModuleAnalysisManager modules;
  llvm::Triple triple(module->getTargetTriple());
  llvm::TargetLibraryInfoImpl library(triple);
  library.addVectorizableFunctionsFromVecLib(llvm::TargetLibraryInfoImpl::LIBMVEC_X86, triple);
  if (avx512)
    library.addVectorizableFunctions(
        {llvm::VecDesc("exp", "_ZGVeN8v_exp", llvm::ElementCount::getFixed(8), false,
                       "_ZGV_LLVM_N8v"),
         llvm::VecDesc("expf", "_ZGVeN16v_expf", llvm::ElementCount::getFixed(16), false,
                       "_ZGV_LLVM_N16v"),
         llvm::VecDesc("llvm.exp.f64", "_ZGVeN8v_exp", llvm::ElementCount::getFixed(8), false,
                       "_ZGV_LLVM_N8v"),
         llvm::VecDesc("llvm.exp.f32", "_ZGVeN16v_expf", llvm::ElementCount::getFixed(16), false,
                       "_ZGV_LLVM_N16v")});
  functions.registerPass([&] { return llvm::TargetLibraryAnalysis(library); });
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(cgscc);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, cgscc, modules);
  builder.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2).run(*module, modules);
  return llvm::Error::success();
}

/// The host's CPU name and every feature it has (AVX-512 here), PIC so that
/// a cached object links anywhere in a later process's address space.
static llvm::Expected<llvm::orc::JITTargetMachineBuilder> hostMachine() {
  auto builder = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!builder)
    return builder.takeError();
  // -O2, not -O3: GEMMs run in BLAS, and on a whole model's one function
  // (stories260K: ~10k lines of LLVM IR) -O3 with AVX-512 spent 13 s in
  // opt + llc against 3.7 s at -O2 (measured with opt-19/llc-19 here).
  builder->setCodeGenOptLevel(llvm::CodeGenOptLevel::Default);
  builder->setRelocationModel(llvm::Reloc::PIC_);
  return builder;
}

namespace {
/// Freed blocks of compiled code's largest buffers, kept for the next call.
/// glibc serves every block over its largest mmap threshold (32 MiB) from a
/// fresh mapping and unmaps it on free, so such a buffer (a 512-token
/// forward's logits over 32000 tokens: 65 MB) was page-faulted in and
/// zeroed by the kernel again on every call.
struct LargeBlocks {
  static constexpr size_t kMinBytes = size_t(32) << 20;
  /// Enough for a forward's logits and a few intermediates of its size;
  /// more freed blocks go back to glibc, oldest first.
  static constexpr size_t kKept = 4;
  std::mutex mutex;
  llvm::DenseMap<void *, size_t> live;
  std::vector<std::pair<void *, size_t>> kept;

  static LargeBlocks &get() {
    // Never destroyed: results may be freed after static destructors ran.
    static LargeBlocks *blocks = new LargeBlocks;
    return *blocks;
  }
};

void *compiledMalloc(size_t bytes) {
  if (bytes < LargeBlocks::kMinBytes)
    return std::malloc(bytes);
  LargeBlocks &blocks = LargeBlocks::get();
  std::lock_guard<std::mutex> lock(blocks.mutex);
  void *block = nullptr;
  auto same = llvm::find_if(blocks.kept, [&](auto &k) { return k.second == bytes; });
  if (same != blocks.kept.end()) {
    block = same->first;
    blocks.kept.erase(same);
  } else {
    block = std::malloc(bytes);
  }
  if (block)
    blocks.live[block] = bytes;
  return block;
}
} // namespace

void cpu::freeCompiledBuffer(void *block) {
  if (!block)
    return;
  LargeBlocks &blocks = LargeBlocks::get();
  std::unique_lock<std::mutex> lock(blocks.mutex);
  auto it = blocks.live.find(block);
  if (it == blocks.live.end()) {
    lock.unlock();
    std::free(block);
    return;
  }
  blocks.kept.emplace_back(block, it->second);
  blocks.live.erase(it);
  if (blocks.kept.size() > LargeBlocks::kKept) {
    std::free(blocks.kept.front().first);
    blocks.kept.erase(blocks.kept.begin());
  }
}

/// Why the compiled call on this thread failed, or empty.
static thread_local std::string refusal;

bool cpu::checkSegments(int64_t queries, int64_t keys, int64_t segments) {
  if (attnedit::CausalMaskOp::segmentsFit(segments, queries, keys))
    return true;
  if (refusal.empty())
    refusal = llvm::formatv("'attnedit.causal_mask': {0} segments need as many queries as keys, "
                            "a multiple of {0}, not {1} x {2}",
                            segments, queries, keys);
  return false;
}

bool cpu::checkAttentionSizes(int64_t queries, int64_t keys, int64_t values, int64_t queryWidth,
                              int64_t keyWidth, bool causal) {
  std::string why;
  if (queryWidth != keyWidth)
    why = llvm::formatv("'attnedit.matmul': queries of width {0} against keys of width {1}",
                        queryWidth, keyWidth);
  else if (keys != values)
    why = llvm::formatv("'attnedit.matmul': {0} keys against {1} values", keys, values);
  else if (causal && queries > keys)
    why = llvm::formatv("'attnedit.causal_mask': more queries than keys: {0} against {1}",
                        queries, keys);
  if (why.empty())
    return true;
  if (refusal.empty())
    refusal = why;
  return false;
}

/// Where a compiled call that refused its sizes returns to (JitModule::call).
static thread_local jmp_buf *refusedCallReturn = nullptr;

/// What LowerPrimitives.cpp's run-time size checks call when one fails:
/// `what`, a string constant of the compiled module, is a format of the two
/// sizes compared. It does not return: the work after the check would read
/// or write outside its buffers, so the call unwinds to JitModule::call,
/// across compiled frames only (the checks sit in the functions' own
/// bodies, outside parallel regions; what the call allocated before the
/// check is not freed: a refused call is the end of a malformed module's run).
static void refuseCallShim(intptr_t what, int64_t got, int64_t want) {
  if (refusal.empty())
    refusal = llvm::formatv(reinterpret_cast<const char *>(what), got, want).str();
  if (refusedCallReturn)
    std::longjmp(*refusedCallReturn, 1);
  std::abort(); // compiled code runs only through JitModule::call
}

/// What LowerPrimitives.cpp calls before a causal mask with packed
/// segments of dynamic size.
static void checkSegmentsShim(int64_t queries, int64_t keys, int64_t segments) {
  cpu::checkSegments(queries, keys, segments);
}

void *cpu::librarySymbol(llvm::StringRef name) {
  for (auto symbols : {gemmSymbols(), attentionSymbols(), cacheSymbols()})
    for (auto [symbol, address] : symbols)
      if (name == symbol)
        return address;
  return nullptr;
}

/// Host symbols compiled code calls besides libc/libm: the GEMM,
/// attention and KV-cache shims, MLIR's memrefCopy (no longer emitted since
/// attnedit-cpu-strided-copies, but artifacts compiled before it call it),
/// the segments check and malloc / free (above).
static llvm::orc::SymbolMap hostSymbols(llvm::orc::MangleAndInterner interner) {
  llvm::orc::SymbolMap map;
  map[interner("malloc")] = {llvm::orc::ExecutorAddr::fromPtr(&compiledMalloc),
                             llvm::JITSymbolFlags::Exported};
  map[interner("free")] = {llvm::orc::ExecutorAddr::fromPtr(&cpu::freeCompiledBuffer),
                           llvm::JITSymbolFlags::Exported};
  for (auto symbols : {cpu::gemmSymbols(), cpu::attentionSymbols(), cpu::cacheSymbols()})
    for (auto [name, address] : symbols)
      map[interner(name)] = {llvm::orc::ExecutorAddr::fromPtr(address),
                             llvm::JITSymbolFlags::Exported};
  map[interner("memrefCopy")] = {llvm::orc::ExecutorAddr::fromPtr(&memrefCopy),
                                 llvm::JITSymbolFlags::Exported};
  map[interner("attnedit_cpu_check_segments")] = {
      llvm::orc::ExecutorAddr::fromPtr(&checkSegmentsShim), llvm::JITSymbolFlags::Exported};
  map[interner("attnedit_cpu_refuse_call")] = {
      llvm::orc::ExecutorAddr::fromPtr(&refuseCallShim), llvm::JITSymbolFlags::Exported};
  return map;
}

/// Whether ATTNEDIT_PERF_MAP asks for perf's map of compiled code: set, and
/// neither empty nor "0".
static bool perfMapRequested() {
  const char *value = std::getenv("ATTNEDIT_PERF_MAP");
  return value && *value && llvm::StringRef(value) != "0";
}

namespace {
/// An object's functions, as a perf map names them: each at its offset in
/// its section. The JIT loads a section whole (RuntimeDyld and JITLink
/// both), so a function sits at its offset from the anchor, the section's
/// first global function, whose address a lookup gives.
struct PerfMapFunctions {
  struct Function {
    std::string name;
    uint64_t offset, size, section;
  };
  std::vector<Function> functions;
  size_t anchor;
  const std::string &anchorName() const { return functions[anchor].name; }
};
} // namespace

/// The functions of `object` for a perf map, read before the JIT takes the
/// object (and may free it once linked); null unless requested.
static std::optional<PerfMapFunctions> perfMapFunctions(llvm::MemoryBufferRef object) {
  if (!perfMapRequested())
    return std::nullopt;
  auto file = llvm::object::ObjectFile::createObjectFile(object);
  if (!file) {
    llvm::consumeError(file.takeError());
    return std::nullopt;
  }
  auto *elf = llvm::dyn_cast<llvm::object::ELFObjectFileBase>(file->get());
  if (!elf)
    return std::nullopt;
  PerfMapFunctions map;
  std::optional<size_t> anchor;
  for (llvm::object::ELFSymbolRef symbol : elf->symbols()) {
    auto type = symbol.getType();
    auto name = symbol.getName();
    auto offset = symbol.getAddress();
    auto section = symbol.getSection();
    if (!type || !name || !offset || !section || *type != llvm::object::SymbolRef::ST_Function ||
        *section == elf->section_end()) {
      llvm::consumeError(type.takeError());
      llvm::consumeError(name.takeError());
      llvm::consumeError(offset.takeError());
      llvm::consumeError(section.takeError());
      continue;
    }
    map.functions.push_back({name->str(), *offset, symbol.getSize(), (*section)->getIndex()});
    if (!anchor && symbol.getBinding() == llvm::ELF::STB_GLOBAL)
      anchor = map.functions.size() - 1;
  }
  if (!anchor)
    return std::nullopt;
  map.anchor = *anchor;
  return map;
}

/// Names compiled functions for `perf report`, which otherwise shows them
/// as [JIT] addresses: appends "address size name" lines to
/// /tmp/perf-<pid>.map, perf's convention for JIT code, the anchor loaded at
/// `anchorAddress`. (LLVM's perf listener names only what ExecutionEngine
/// compiles, not objects loaded from the cache, and needs `perf inject`.)
/// Functions elsewhere than the anchor's section (none, as the JIT emits
/// them) are left out.
static void appendPerfMap(const PerfMapFunctions &map, uint64_t anchorAddress) {
  const PerfMapFunctions::Function &anchor = map.functions[map.anchor];
  std::string lines;
  llvm::raw_string_ostream os(lines);
  for (const PerfMapFunctions::Function &f : map.functions)
    if (f.section == anchor.section)
      os << llvm::format_hex_no_prefix(anchorAddress - anchor.offset + f.offset, 1) << " "
         << llvm::format_hex_no_prefix(f.size, 1) << " " << f.name << "\n";
  // Functions compile on several threads: one append at a time.
  static std::mutex appending;
  std::lock_guard<std::mutex> lock(appending);
  std::error_code ec;
  llvm::raw_fd_ostream out(("/tmp/perf-" + llvm::Twine(getpid()) + ".map").str(), ec,
                           llvm::sys::fs::OF_Append);
  if (!ec)
    out << os.str();
}

std::string cpu::JitModule::hostFingerprint() {
  std::string features;
  for (auto &f : llvm::sys::getHostCPUFeatures())
    if (f.second)
      features += "+" + f.first().str();
  // getHostCPUFeatures is a StringMap: sort for a stable key.
  llvm::SmallVector<llvm::StringRef> parts;
  llvm::StringRef(features).split(parts, '+', -1, false);
  llvm::sort(parts);
  return std::string("llvm-") + LLVM_VERSION_STRING + ";" + llvm::sys::getProcessTriple() + ";" +
         llvm::sys::getHostCPUName().str() + ";" + llvm::join(parts, "+");
}

/// The object code `engine` compiled. ExecutionEngine writes it only to a
/// path, through a stream that aborts the process on a write error ("IO
/// failure on output stream" on a full disk) and prints a bare LLVM line
/// when the path cannot be opened: it writes into a memory file instead,
/// and the caller writes the bytes where it can report a failure.
static llvm::Expected<std::string> compiledObject(ExecutionEngine &engine) {
  int fd = ::memfd_create("attnedit-object", MFD_CLOEXEC);
  if (fd < 0)
    return llvm::createStringError(std::error_code(errno, std::generic_category()),
                                   "cannot keep the object code: memfd_create: %s",
                                   std::strerror(errno));
  auto closeFd = llvm::make_scope_exit([&] { ::close(fd); });
  engine.dumpToObjectFile(("/proc/self/fd/" + llvm::Twine(fd)).str());
  llvm::SmallString<0> bytes;
  if (llvm::Error e = llvm::sys::fs::readNativeFileToEOF(fd, bytes))
    return e;
  if (bytes.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the JIT gave no object code (is /proc mounted?)");
  return bytes.str().str();
}

llvm::Expected<std::unique_ptr<cpu::JitModule>>
cpu::JitModule::create(ModuleOp module, llvm::StringRef entry, bool keepObject) {
  if (llvm::Error e = initializeTarget())
    return std::move(e);
  auto builder = hostMachine();
  if (!builder)
    return builder.takeError();
  auto machine = builder->createTargetMachine();
  if (!machine)
    return machine.takeError();
  // options.transformer is a function_ref: the std::function it refers to
  // must outlive ExecutionEngine::create (ASan: stack-use-after-scope).
  std::function<llvm::Error(llvm::Module *)> transformer =
      [target = machine->get()](llvm::Module *m) { return optimize(m, target); };
  // The perf map reads the object code, kept even without a cache.
  bool perfMap = perfMapRequested() && !entry.empty();
  ExecutionEngineOptions options;
  options.transformer = transformer;
  options.enableObjectDump = keepObject || perfMap;
  // On by default in MLIR: LLVM's listener then wrote a jitdump of every
  // compiled object (to $JITDUMPDIR, else under $HOME or /tmp, .debug/jit)
  // that nothing deleted, 568 MB over this project's test runs.
  options.enablePerfNotificationListener = false;
  auto engine = ExecutionEngine::create(module, options, std::move(*machine));
  if (!engine)
    return engine.takeError();
  (*engine)->registerSymbols(hostSymbols);
  std::unique_ptr<JitModule> jit(new JitModule());
  jit->engine = std::move(*engine);
  if (!options.enableObjectDump)
    return jit;
  // The object exists once something was looked up (cpu-codegen.md §2:
  // dumping first can silently write nothing).
  if (auto fn = jit->engine->lookupPacked(("_mlir_ciface_" + entry).str()); !fn)
    return fn.takeError();
  auto object = compiledObject(*jit->engine);
  if (!object) {
    jit->objectError = llvm::toString(object.takeError());
    return jit;
  }
  if (perfMap) {
    if (auto functions = perfMapFunctions(llvm::MemoryBufferRef(*object, entry))) {
      if (auto address = jit->engine->lookup(functions->anchorName()))
        appendPerfMap(*functions, reinterpret_cast<uint64_t>(*address));
      else
        llvm::consumeError(address.takeError());
    }
  }
  if (keepObject)
    jit->object = std::move(*object);
  return jit;
}

llvm::Expected<std::string> cpu::JitModule::takeObject() {
  if (object.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s",
                                   objectError.empty() ? "no object code was kept"
                                                       : objectError.c_str());
  return std::move(object);
}

llvm::Expected<std::unique_ptr<cpu::JitModule>> cpu::JitModule::load(llvm::StringRef objectPath) {
  if (llvm::Error e = initializeTarget())
    return std::move(e);
  auto builder = hostMachine();
  if (!builder)
    return builder.takeError();
  auto buffer = llvm::MemoryBuffer::getFile(objectPath);
  if (!buffer)
    return llvm::createStringError(buffer.getError(), "%s: cannot read",
                                   objectPath.str().c_str());
  auto lljit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*builder)).create();
  if (!lljit)
    return lljit.takeError();
  llvm::orc::JITDylib &dylib = (*lljit)->getMainJITDylib();
  auto process = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      (*lljit)->getDataLayout().getGlobalPrefix());
  if (!process)
    return process.takeError();
  dylib.addGenerator(std::move(*process));
  llvm::orc::MangleAndInterner interner((*lljit)->getExecutionSession(),
                                        (*lljit)->getDataLayout());
  if (llvm::Error e = dylib.define(llvm::orc::absoluteSymbols(hostSymbols(interner))))
    return std::move(e);
  std::optional<PerfMapFunctions> functions = perfMapFunctions((*buffer)->getMemBufferRef());
  if (llvm::Error e = (*lljit)->addObjectFile(std::move(*buffer)))
    return std::move(e);
  std::unique_ptr<JitModule> jit(new JitModule());
  jit->loaded = std::move(*lljit);
  if (functions) {
    if (auto address = jit->loaded->lookup(functions->anchorName()))
      appendPerfMap(*functions, address->getValue());
    else
      llvm::consumeError(address.takeError());
  }
  return jit;
}

llvm::Error cpu::JitModule::call(llvm::StringRef name, llvm::ArrayRef<void *> args) {
  // The packed wrapper takes one pointer per argument, each pointing at the
  // argument's value (here itself a pointer).
  llvm::SmallVector<void *> packed;
  llvm::SmallVector<void *> values(args.begin(), args.end());
  for (void *&v : values)
    packed.push_back(&v);
  std::string symbol = ("_mlir_ciface_" + name).str();
  void (*function)(void **);
  if (engine) {
    auto found = engine->lookupPacked(symbol);
    if (!found)
      return found.takeError();
    function = *found;
  } else {
    auto address = loaded->lookup("_mlir_" + symbol);
    if (!address)
      return address.takeError();
    function = address->toPtr<void (*)(void **)>();
  }
  refusal.clear();
  jmp_buf refused;
  jmp_buf *outer = std::exchange(refusedCallReturn, &refused);
  if (setjmp(refused) == 0)
    function(packed.data());
  refusedCallReturn = outer;
  if (!refusal.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), std::exchange(refusal, ""));
  return llvm::Error::success();
}
