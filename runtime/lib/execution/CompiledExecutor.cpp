//===- CompiledExecutor.cpp - running functions as JIT-compiled CPU code ---===//
//
// Each function is printed, parsed into a private context, lowered by the
// CPU backend's pipeline (backends/cpu) and JIT-compiled once; compiled code
// is cached by a hash of the function's text, the pipeline, the executable
// (so a rebuilt lowering never loads stale code) and the host CPU,
// in memory (a function called for every generated token compiles once) and
// on disk (an object file and its calling convention, a one-function
// manifest of runtime/schema/compiled_model.fbs, so a second run compiles
// nothing): in $ATTNEDIT_CACHE_DIR, else $XDG_CACHE_HOME/attnedit/cpu or
// ~/.cache/attnedit/cpu; ATTNEDIT_CACHE_DIR="" turns the disk cache off. An
// attnedit-compile artifact is the same manifest for every function of a
// module, beside their objects and the module, run by an executor that
// compiles nothing. The compiled function takes its inputs, then its parameters (bound by name to
// the store's memory, never copied), as dense memrefs; its results are
// buffers it allocated, handed to the caller's tensors, except KV-cache
// pools, which it updates in the caller's memory (the caller donates them)
// and which come back as the argument tensors themselves.
//
//===----------------------------------------------------------------------===//

#include "attnedit/CPU/JitModule.h"
#include "attnedit/CPU/Passes.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/ModelConfig.h"
#include "attnedit/Frontend/WeightFile.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"
#include "attnedit/Runtime/Execution/Executor.h"
#include "attnedit/Runtime/Inference/CacheKernels.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/ThreadPool.h"
#include "llvm/Support/xxhash.h"

#include "compiled_model_generated.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <condition_variable>
#include <functional>
#include <map>
#include <cstdlib>
#include <mutex>

#include <fcntl.h>
#include <malloc.h>
#include <sys/time.h>
#include <unistd.h>

using namespace mlir;
using namespace mlir::attnedit;

namespace {

/// Blocks of one size, reused: a block goes back to the pool when the last
/// holder of the pointer `take` returned lets go of it.
struct BlockPool {
  std::mutex mutex;
  std::vector<void *> free;
  ~BlockPool() {
    for (void *a : free)
      std::free(a);
  }
  static std::shared_ptr<void> take(const std::shared_ptr<BlockPool> &pool, int64_t bytes) {
    void *block = nullptr;
    {
      std::lock_guard<std::mutex> lock(pool->mutex);
      if (!pool->free.empty()) {
        block = pool->free.back();
        pool->free.pop_back();
      }
    }
    // Null when it cannot be had: more than the machine holds (Linux would
    // overcommit, and the OOM killer end the job later) or refused.
    if (!block && bytes <= physicalMemoryBytes())
      block = std::aligned_alloc(64, llvm::alignTo(std::max<int64_t>(bytes, 64), 64));
    if (!block)
      return {};
    return {block, [pool](void *a) {
              std::lock_guard<std::mutex> lock(pool->mutex);
              pool->free.push_back(a);
            }};
  }
};

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
  /// The static memory plan's arena (attnedit-cpu-plan-arena), passed as
  /// the last argument; one per concurrent call, kept from call to call so
  /// that a step touches no fresh pages.
  int64_t arenaBytes = 0;
  std::shared_ptr<BlockPool> arenas = std::make_shared<BlockPool>();
  /// When the results are arguments (static shapes only): their shapes, and
  /// the blocks they live in, one per set of results still in use.
  bool resultsAsArguments = false;
  std::vector<SmallVector<int64_t>> resultShapes;
  std::shared_ptr<BlockPool> resultBlocks = std::make_shared<BlockPool>();

  /// Where result `i` starts in a block of results.
  int64_t resultOffset(size_t i) const {
    int64_t offset = 0;
    for (size_t r = 0; r < i; ++r)
      offset += llvm::alignTo(ShapedType::getNumElements(resultShapes[r]) * sizeof(float), 64);
    return offset;
  }
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

/// The manifests' format: bumped whenever the calling convention, a shim's
/// ABI or the schema changes, so no stale object is ever called and no old
/// manifest misread (7: objects' hashes; 9: the manifest's checksum; 10: a
/// llama2.c source's header in its hash).
constexpr const char *kFormat = "attnedit-cpu-10";
/// An artifact's manifest and module, inside its directory.
constexpr const char *kManifestName = "manifest.aexm";
constexpr const char *kModuleName = "module.mlir";

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

/// Removes the least recently used entries of the cache in `dir` (each
/// object with its manifest: the files of one key) until it holds at most
/// `limit` bytes, never the entry `keep` just written. Every rebuild of
/// attnedit and every new model or shape adds entries that a later run may
/// never match again: unbounded, the cache here had grown to 404 MB. A load
/// marks its entry used (loadCached); temporaries younger than an hour may
/// be another process's object being written, and stay.
void evictLeastRecentlyUsed(const std::string &dir, llvm::StringRef keep, uint64_t limit) {
  // A scan per new entry (~30 ms over 7000 files) would add a second to a
  // cold distillation's ~40 compiles: a process keeps the total it last
  // saw, adds its own entries to it, and scans again only once that total
  // reaches the bound (seeing other processes' entries then).
  static std::mutex scanning;
  static llvm::StringMap<uint64_t> known;
  std::lock_guard<std::mutex> lock(scanning);
  uint64_t added = 0;
  for (const char *suffix : {".o", ".aexm"}) {
    uint64_t size = 0;
    if (!llvm::sys::fs::file_size(dir + "/" + keep + suffix, size))
      added += size;
  }
  if (auto it = known.find(dir); it != known.end() && it->second + added <= limit) {
    it->second += added;
    return;
  }
  struct Entry {
    uint64_t bytes = 0;
    llvm::sys::TimePoint<> used;
    std::vector<std::string> files;
  };
  llvm::StringMap<Entry> entries;
  uint64_t total = 0;
  auto now = std::chrono::system_clock::now();
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec)) {
    llvm::sys::fs::file_status status;
    if (llvm::sys::fs::status(it->path(), status) ||
        status.type() != llvm::sys::fs::file_type::regular_file)
      continue;
    total += status.getSize();
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    // writeFileAtomically's NAME.tmp, or NAME.tmp.PID.
    bool temporary = name.ends_with(".tmp") || name.contains(".tmp.");
    if (temporary && now - status.getLastModificationTime() < std::chrono::hours(1))
      continue;
    llvm::StringRef key = temporary ? name : name.rsplit('.').first;
    if (key == keep)
      continue;
    Entry &entry = entries[key];
    entry.bytes += status.getSize();
    entry.used = std::max(entry.used, status.getLastModificationTime());
    entry.files.push_back(it->path());
  }
  std::vector<const Entry *> oldestFirst;
  for (const auto &entry : entries)
    oldestFirst.push_back(&entry.second);
  llvm::sort(oldestFirst, [](const Entry *a, const Entry *b) { return a->used < b->used; });
  for (const Entry *entry : oldestFirst) {
    if (total <= limit)
      break;
    for (const std::string &file : entry->files)
      llvm::sys::fs::remove(file);
    total -= entry->bytes;
  }
  known[dir] = total;
}

namespace fb = ::aexm;

/// `fn` as a manifest entry whose object file is `object`, of xxh3 `objectHash`.
flatbuffers::Offset<fb::Function> writeFunction(flatbuffers::FlatBufferBuilder &b,
                                                const CompiledFunction &fn,
                                                llvm::StringRef textHash,
                                                llvm::StringRef object,
                                                llvm::StringRef objectHash) {
  auto longs = [&](llvm::ArrayRef<int64_t> v) { return b.CreateVector(v.data(), v.size()); };
  std::vector<flatbuffers::Offset<fb::Input>> inputs;
  for (const auto &in : fn.inputs)
    inputs.push_back(fb::CreateInput(b, longs(in.shape), in.isInt));
  std::vector<flatbuffers::Offset<fb::Param>> params;
  for (const auto &p : fn.params)
    params.push_back(fb::CreateParam(b, b.CreateString(p.name), b.CreateString(p.scope),
                                     longs(p.shape)));
  std::vector<flatbuffers::Offset<fb::IdCheck>> ids;
  for (const auto &c : fn.idChecks)
    ids.push_back(fb::CreateIdCheck(b, c.input, c.limit, c.allowIgnored, b.CreateString(c.what)));
  std::vector<flatbuffers::Offset<fb::SlotCheck>> slots;
  for (const auto &c : fn.slotChecks)
    slots.push_back(fb::CreateSlotCheck(b, c.table, c.positions, c.pool, c.blockSize, c.window,
                                        c.ring, b.CreateString(c.op)));
  SmallVector<int64_t> resultShapes;
  for (const auto &shape : fn.resultShapes)
    resultShapes.append(shape.begin(), shape.end());
  return fb::CreateFunction(b, b.CreateString(fn.name), b.CreateString(textHash.str()),
                            b.CreateString(object.str()), b.CreateVector(inputs),
                            b.CreateVector(params), b.CreateVector(fn.resultRanks),
                            longs(fn.donated), b.CreateVector(ids), b.CreateVector(slots),
                            fn.arenaBytes, fn.resultsAsArguments, longs(resultShapes),
                            b.CreateString(objectHash.str()));
}

/// The calling convention of a (verified) manifest entry; false when it
/// contradicts itself (indices past the inputs, results not adding up).
bool readFunction(const fb::Function &f, CompiledFunction &fn) {
  auto longs = [](const flatbuffers::Vector<int64_t> *v) {
    return v ? SmallVector<int64_t>(v->begin(), v->end()) : SmallVector<int64_t>();
  };
  auto str = [](const flatbuffers::String *s) { return s ? s->str() : std::string(); };
  if (!f.name() || !f.inputs() || !f.params() || !f.result_ranks() || !f.donated() ||
      !f.id_checks() || !f.slot_checks())
    return false;
  fn.name = f.name()->str();
  for (const fb::Input *in : *f.inputs())
    fn.inputs.push_back({longs(in->shape()), in->is_int()});
  for (const fb::Param *p : *f.params())
    fn.params.push_back({str(p->name()), str(p->scope()), longs(p->shape())});
  fn.resultRanks.assign(f.result_ranks()->begin(), f.result_ranks()->end());
  fn.donated = longs(f.donated());
  fn.arenaBytes = f.arena_bytes();
  fn.resultsAsArguments = f.results_as_arguments();
  if (fn.resultsAsArguments) {
    SmallVector<int64_t> shapes = longs(f.result_shapes());
    size_t at = 0;
    for (unsigned rank : fn.resultRanks) {
      if (at + rank > shapes.size())
        return false;
      fn.resultShapes.emplace_back(shapes.begin() + at, shapes.begin() + at + rank);
      at += rank;
    }
    if (at != shapes.size() || llvm::any_of(shapes, [](int64_t d) { return d < 0; }))
      return false;
  }
  int64_t inputs = fn.inputs.size();
  for (const fb::IdCheck *c : *f.id_checks()) {
    if (c->input() >= inputs)
      return false;
    fn.idChecks.push_back({c->input(), c->limit(), c->allow_ignored(), str(c->what())});
  }
  for (const fb::SlotCheck *c : *f.slot_checks()) {
    if (c->table() >= inputs || c->positions() >= inputs || c->pool() >= inputs)
      return false;
    fn.slotChecks.push_back({c->table(), c->positions(), c->pool(), c->block_size(), c->window(),
                             c->ring(), str(c->op())});
  }
  return fn.arenaBytes >= 0 && (size_t)llvm::count(fn.donated, -1) == fn.resultRanks.size() &&
         llvm::all_of(fn.donated, [&](int64_t i) { return i >= -1 && i < inputs; });
}

/// The xxh3 of a manifest's bytes with its checksum field set to 0.
uint64_t manifestChecksum(std::string bytes) {
  auto *table = flatbuffers::GetMutableRoot<flatbuffers::Table>(bytes.data());
  table->SetField<uint64_t>(fb::Manifest::VT_CHECKSUM, 0, 0);
  return llvm::xxh3_64bits(bytes);
}

/// The manifest in `bytes`, or null when it is not one (wrong identifier,
/// truncated or corrupt: the flatbuffers verifier checks every offset).
const fb::Manifest *verifiedManifest(llvm::StringRef bytes) {
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size());
  if (!fb::ManifestBufferHasIdentifier(bytes.data()) || !fb::VerifyManifestBuffer(verifier))
    return nullptr;
  return fb::GetManifest(bytes.data());
}

/// Whether the verified `manifest` in `bytes` holds its own checksum: every
/// byte as written.
bool sealed(llvm::StringRef bytes, const fb::Manifest &manifest) {
  return manifest.checksum() == manifestChecksum(bytes.str());
}

/// The manifest `root` finished in `b` (built with ForceDefaults, so its
/// checksum field is there to set), its checksum set.
std::string sealedManifest(flatbuffers::FlatBufferBuilder &b,
                           flatbuffers::Offset<fb::Manifest> root) {
  b.Finish(root, fb::ManifestIdentifier());
  std::string bytes(reinterpret_cast<const char *>(b.GetBufferPointer()), b.GetSize());
  uint64_t checksum = manifestChecksum(bytes);
  flatbuffers::GetMutableRoot<flatbuffers::Table>(bytes.data())
      ->SetField<uint64_t>(fb::Manifest::VT_CHECKSUM, checksum, 0);
  return bytes;
}

std::string textHash(llvm::StringRef text) {
  return llvm::utohexstr(llvm::xxh3_64bits(text), /*LowerCase=*/true);
}

/// The xxh3 of the object file at `path`; "" when it cannot be read.
std::string objectHash(const llvm::Twine &path) {
  auto bytes = readInputFile(path, /*isText=*/false, /*requiresNullTerminator=*/false);
  return bytes ? textHash((*bytes)->getBuffer()) : std::string();
}

/// A manifest's bytes. It names functions, shapes and parameters: kilobytes
/// (a 12-layer model's 20 KB), never the gigabytes a stray file (a device, a
/// symlink to /dev/zero) would have the reader allocate until it dies.
llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> readManifest(const llvm::Twine &path) {
  constexpr uint64_t kMaxManifestBytes = 64 << 20;
  llvm::sys::fs::file_status status;
  if (std::error_code ec = llvm::sys::fs::status(path, status))
    return ec;
  if (!llvm::sys::fs::is_regular_file(status) || status.getSize() > kMaxManifestBytes)
    return std::make_error_code(std::errc::invalid_argument);
  return llvm::MemoryBuffer::getFile(path);
}

/// A safetensors or llama2.c weight file, by its name.
bool isWeightFile(llvm::StringRef path) {
  llvm::StringRef ext = llvm::sys::path::extension(path);
  return ext == ".safetensors" || ext == ".bin";
}

/// The hash of what compiled code depends on in the source at `path` (see
/// Source in compiled_model.fbs): a weight file's tensors by name, dtype and
/// shape (sorted: another writer's order, offsets or metadata are the same
/// weights) and a llama2.c file's header (its config.json: heads, context),
/// any other file whole; "" if it cannot be read.
std::string sourceHash(const std::string &path) {
  if (!isWeightFile(path))
    return objectHash(path);
  std::unique_ptr<WeightFile> weights;
  std::string header;
  if (llvm::sys::path::extension(path) == ".safetensors") {
    auto file = WeightFile::openSafetensors(path);
    if (!file)
      return llvm::consumeError(file.takeError()), std::string();
    weights = std::move(*file);
  } else {
    auto checkpoint = openLlama2c(path);
    if (!checkpoint)
      return llvm::consumeError(checkpoint.takeError()), std::string();
    weights = std::move(checkpoint->weights);
    const ModelConfig &c = checkpoint->config;
    header = llvm::formatv("header {0} {1} {2} {3} {4} {5} {6} {7}", c.hiddenSize,
                           c.intermediateSize, c.numLayers, c.numHeads, c.numKvHeads,
                           c.vocabSize, c.maxPositions, c.tieWordEmbeddings)
                 .str();
  }
  std::vector<std::string> lines{header};
  for (const TensorInfo &t : weights->tensors())
    lines.push_back(llvm::formatv("{0} {1} {2}", t.name, dtypeName(t.dtype),
                                  formatShape(t.shape))
                        .str());
  llvm::sort(lines);
  return textHash(llvm::join(lines, "\n"));
}

/// The files `module` was compiled from, as manifest sources: the module
/// (`moduleText`, stored at kModuleName), its weight files, `configFiles`.
std::vector<flatbuffers::Offset<fb::Source>>
writeSources(flatbuffers::FlatBufferBuilder &b, ModuleOp module, llvm::StringRef moduleText,
             llvm::ArrayRef<std::string> configFiles) {
  std::vector<flatbuffers::Offset<fb::Source>> sources{
      fb::CreateSource(b, b.CreateString(kModuleName), b.CreateString(textHash(moduleText)))};
  std::vector<std::string> files(configFiles.begin(), configFiles.end());
  llvm::append_range(files, parameterFilesOf(module));
  // One that cannot be read now cannot be compared later.
  for (const std::string &file : files)
    if (std::string hash = sourceHash(file); !hash.empty())
      sources.push_back(fb::CreateSource(b, b.CreateString(file), b.CreateString(hash)));
  return sources;
}

/// Fails if a source of the artifact at `path` changed since it was
/// compiled. A source no longer there is not checked: a moved weight file
/// or module fails where it is read, and a config.json is not read.
llvm::Error checkSources(llvm::StringRef path, const fb::Manifest &manifest) {
  if (!manifest.sources())
    return llvm::Error::success();
  for (const fb::Source *source : *manifest.sources()) {
    if (!source->path() || !source->xxh3())
      return makeError(path, "has a malformed source entry");
    llvm::SmallString<256> file(source->path()->str());
    if (llvm::sys::path::is_relative(file))
      file = (path + "/" + file).str();
    if (!llvm::sys::fs::exists(file) || sourceHash(file.str().str()) == source->xxh3()->str())
      continue;
    return makeError(path, "was compiled from " + file + ", which has changed since (" +
                               (!isWeightFile(file) ? "its contents"
                                : llvm::sys::path::extension(file) == ".bin"
                                    ? "its header, or its tensors' names, dtypes or shapes"
                                    : "its tensors' names, dtypes or shapes") +
                               "): run attnedit-compile again");
  }
  return llvm::Error::success();
}

/// Whether the object at `path` is the one its manifest entry `f` recorded.
/// ORC links whatever bytes it is given and the shapes and text hashes
/// describe only the calling convention: a few hundred overwritten bytes of
/// code then crashed the process when called.
llvm::Error checkObject(const std::string &path, const fb::Function &f, llvm::StringRef advice) {
  if (!llvm::sys::fs::exists(path))
    return makeError(path, "is missing; " + advice);
  if (!f.object_hash() || objectHash(path) != f.object_hash()->str())
    return makeError(path, "contents do not match the manifest (corrupted or replaced); " + advice);
  return llvm::Error::success();
}

/// Per input, the shape a training step is compiled for (none: as written).
using InputShapes = std::vector<SmallVector<int64_t>>;

std::string shapesKey(const InputShapes &shapes) {
  std::string key;
  for (const auto &shape : shapes)
    key += ";" + formatShape(shape);
  return key;
}

/// `func`'s dynamic inputs fixed to `shapes`, cast back to the types its
/// body expects; the lowering's canonicalisations then carry the static
/// sizes through every op (tensor.dim folds, linalg ops take the static
/// types of their operands).
void specializeInputs(func::FuncOp func, const InputShapes &shapes) {
  Block &entry = func.front();
  OpBuilder b = OpBuilder::atBlockBegin(&entry);
  SmallVector<Type> types(func.getArgumentTypes());
  for (auto [i, arg] : llvm::enumerate(entry.getArguments())) {
    auto type = cast<RankedTensorType>(arg.getType());
    if (type.hasStaticShape() || i >= shapes.size() || (int64_t)shapes[i].size() != type.getRank())
      continue;
    auto fixed = RankedTensorType::get(shapes[i], type.getElementType());
    arg.setType(fixed);
    auto cast = b.create<tensor::CastOp>(func.getLoc(), type, arg);
    arg.replaceAllUsesExcept(cast, cast);
    types[i] = fixed;
  }
  func.setType(b.getFunctionType(types, func.getResultTypes()));
}

/// A training step runs with the recipe's sequence length every time: it
/// is compiled for its inputs' shapes, so that every intermediate has a
/// static size and the arena plan covers it. Inference functions keep
/// their dynamic sizes (a prompt of any length runs one compiled forward).
bool compiledForInputShapes(func::FuncOp func) { return func->hasAttr("attnedit.gradients"); }

std::string printed(func::FuncOp func) {
  std::string text;
  llvm::raw_string_ostream os(text);
  func->print(os, OpPrintingFlags().printGenericOpForm(false));
  return text;
}

class CompiledExecutor final : public Executor {
public:
  /// Compiles each function on first use, caching objects in `cacheDir`
  /// ("" = no disk cache).
  explicit CompiledExecutor(std::string cacheDir) : cacheDir(std::move(cacheDir)) {}
  /// Runs the functions of the artifact at `path` and compiles nothing.
  static llvm::Expected<std::unique_ptr<CompiledExecutor>> open(llvm::StringRef path,
                                                                ParameterStore &parameters);
  /// Compiles every function of `module` into the artifact `path`.
  llvm::Error writeArtifact(ModuleOp module, llvm::StringRef path,
                            llvm::ArrayRef<std::string> configFiles);
  llvm::Expected<std::vector<Tensor>> run(func::FuncOp func, llvm::ArrayRef<Tensor> args,
                                          ParameterStore &parameters) override;
  using Executor::run;
  llvm::StringRef backend() const override { return "cpu"; }
  bool prefersPackedSequences() const override { return true; }
  void prepare(llvm::ArrayRef<func::FuncOp> functions) override;

private:
  /// `func` compiled for calls with `args` (their shapes matter only for a
  /// training step, which is specialised to them).
  llvm::Expected<std::shared_ptr<CompiledFunction>> compiled(func::FuncOp func,
                                                             llvm::ArrayRef<Tensor> args);
  /// The function keyed by a hash of its text (`printed(func)`) and its
  /// specialised input shapes, from memory, disk or the JIT. Compiles
  /// outside the lock: several functions compile at once (prepare).
  llvm::Expected<std::shared_ptr<CompiledFunction>>
  compiledByText(func::FuncOp func, const std::string &text, const InputShapes &shapes);
  /// Compiles `func`; with `keepObject`, its object code stays for the
  /// caller to write (JitModule::takeObject).
  llvm::Expected<std::shared_ptr<CompiledFunction>>
  compile(func::FuncOp func, const std::string &text, bool keepObject,
          const InputShapes &shapes = {});
  /// Whether the disk cache is on and its directory there (created on first
  /// use; warned about once, naming it, when it cannot be).
  bool diskCacheUsable();
  /// The entry of `key` in the disk cache, or null when absent or unusable.
  std::shared_ptr<CompiledFunction> loadCached(llvm::StringRef key);
  /// Writes `fn`'s object code and manifest as the entry `key`, compiled
  /// from text of hash `keyTextHash`. The cache is optional: a failure is
  /// warned about, naming the file, and leaves no entry.
  void storeCached(llvm::StringRef key, llvm::StringRef keyTextHash, CompiledFunction &fn);

  std::string cacheDir;
  std::once_flag cacheDirChecked;
  bool cacheDirUsable = false;
  /// When running an artifact: its path, and its functions by text hash.
  std::string artifact;
  llvm::StringMap<std::shared_ptr<CompiledFunction>> byTextHash;
  std::mutex mutex;
  llvm::StringMap<std::shared_ptr<CompiledFunction>> cache;
  /// Keys being compiled (outside the lock), and their threads' signal.
  llvm::StringSet<> compiling;
  std::condition_variable compileDone;
  std::map<std::pair<Operation *, std::string>,
           std::pair<OperationFingerPrint, std::shared_ptr<CompiledFunction>>>
      bySight;
};

llvm::Expected<std::shared_ptr<CompiledFunction>>
CompiledExecutor::compiled(func::FuncOp func, llvm::ArrayRef<Tensor> args) {
  InputShapes shapes;
  if (compiledForInputShapes(func) && artifact.empty())
    for (const Tensor &t : args)
      shapes.emplace_back(t.shape().begin(), t.shape().end());
  std::string shapeKey = shapesKey(shapes);
  // A function already seen and unchanged since (a fingerprint walk is far
  // cheaper than printing it: a training step calls run once per sequence).
  OperationFingerPrint fingerprint(func);
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto seen = bySight.find({func.getOperation(), shapeKey});
    if (seen != bySight.end() && seen->second.first == fingerprint)
      return seen->second.second;
  }
  auto fn = compiledByText(func, printed(func), shapes);
  if (fn) {
    std::lock_guard<std::mutex> lock(mutex);
    bySight.insert_or_assign({func.getOperation(), shapeKey}, std::make_pair(fingerprint, *fn));
  }
  return fn;
}

llvm::Expected<std::shared_ptr<CompiledFunction>>
CompiledExecutor::compiledByText(func::FuncOp func, const std::string &text,
                                 const InputShapes &shapes) {
  std::unique_lock<std::mutex> lock(mutex);
  if (!artifact.empty()) {
    std::string suffix = "-" + func.getSymName().str();
    auto found = byTextHash.find(textHash(text) + suffix);
    if (found == byTextHash.end()) {
      bool compiled = llvm::any_of(byTextHash, [&](const auto &entry) {
        return entry.getKey().ends_with(suffix);
      });
      if (!compiled && (func.getSymName() == "prefill" || func.getSymName() == "decode"))
        return makeError(artifact, "was compiled without the KV-cache functions "
                                   "(attnedit-compile --no-decode): compile it without "
                                   "--no-decode (generate --no-kv-cache runs without them; "
                                   "serve needs them)");
      return makeError(artifact, "holds no compiled @" + func.getSymName() +
                                     " for this module's text (compiled from another "
                                     "module? run attnedit-compile on it again)");
    }
    return found->second;
  }
  // Refused at the first function that would use the disk cache: not when
  // it is off, nor for an artifact, which compiles nothing.
  if (!cacheDir.empty())
    if (auto limit = compiledCacheLimit(); !limit)
      return limit.takeError();
  static const std::string context =
      std::string(kFormat) + ";" + executableHash() + ";" + cpu::pipelineText() + ";" +
      cpu::JitModule::hostFingerprint();
  std::string keyTextHash = textHash(text + shapesKey(shapes));
  std::string key = keyTextHash + "-" + textHash(context) + "-" + func.getSymName().str();
  // The lanes of a training batch ask for the same step at once: one
  // compiles it, the others wait for its result.
  compileDone.wait(lock, [&] { return !compiling.contains(key); });
  auto it = cache.find(key);
  if (it != cache.end())
    return it->second;
  if (auto cached = loadCached(key)) {
    cache[key] = cached;
    return cached;
  }
  bool toCache = diskCacheUsable();
  compiling.insert(key);
  lock.unlock();
  auto finished = llvm::make_scope_exit([&] {
    if (!lock.owns_lock())
      lock.lock();
    compiling.erase(key);
    compileDone.notify_all();
  });
  auto fn = compile(func, text, toCache, shapes);
  if (!fn)
    return fn.takeError();
  if (toCache)
    storeCached(key, keyTextHash, **fn);
  lock.lock();
  cache[key] = *fn;
  return *fn;
}

void CompiledExecutor::prepare(llvm::ArrayRef<func::FuncOp> functions) {
  // Input shapes are known only at a run.
  SmallVector<std::pair<func::FuncOp, std::string>> jobs;
  for (func::FuncOp func : functions)
    if (!compiledForInputShapes(func))
      jobs.emplace_back(func, printed(func)); // here: printing reads the caller's context
  // Threads of LLVM's pool, not OpenMP's: compiling recurses deeper than
  // OpenMP workers' default stacks are sized for.
  llvm::StdThreadPool pool(llvm::hardware_concurrency());
  for (auto &[func, text] : jobs)
    pool.async([this, func = func, &text = text] {
      // A failure is reported again when the function runs.
      if (auto fn = compiledByText(func, text, {}); !fn)
        llvm::consumeError(fn.takeError());
    });
  pool.wait();
}

bool CompiledExecutor::diskCacheUsable() {
  if (cacheDir.empty() || executableHash().empty())
    return false;
  std::call_once(cacheDirChecked, [&] {
    std::error_code ec = llvm::sys::fs::create_directories(cacheDir);
    if (!ec && !llvm::sys::fs::is_directory(cacheDir))
      ec = std::make_error_code(std::errc::not_a_directory);
    cacheDirUsable = !ec;
    if (ec)
      spdlog::warn("cpu backend: cannot create the cache directory {} ({}); running without "
                   "the disk cache (ATTNEDIT_CACHE_DIR)",
                   cacheDir, ec.message());
  });
  return cacheDirUsable;
}

void CompiledExecutor::storeCached(llvm::StringRef key, llvm::StringRef keyTextHash,
                                   CompiledFunction &fn) {
  std::string base = cacheDir + "/" + key.str();
  auto object = fn.jit->takeObject();
  if (!object) {
    spdlog::warn("cpu backend: @{} not cached: {}", fn.name, llvm::toString(object.takeError()));
    return;
  }
  // Checked when the entry was used, so valid here.
  uint64_t limit = llvm::cantFail(compiledCacheLimit());
  // Stored, an entry over the bound would stay (the newest is never
  // evicted) and hold the cache above what the user set.
  if (object->size() > limit) {
    // Once: a distillation compiles some forty functions.
    static std::atomic<bool> warned{false};
    spdlog::log(warned.exchange(true) ? spdlog::level::debug : spdlog::level::warn,
                "cpu backend: @{} not cached: its {} bytes exceed the cache's bound of {} "
                "(ATTNEDIT_CACHE_MAX_SIZE)",
                fn.name, object->size(), limit);
    return;
  }
  if (llvm::Error e = writeFileAtomically(base + ".o", *object)) {
    spdlog::warn("cpu backend: {}; @{} not cached", llvm::toString(std::move(e)), fn.name);
    // What the key held could not be loaded (loadCached): no entry at all.
    llvm::sys::fs::remove(base + ".aexm");
    return;
  }
  // The calling convention beside the object, written after it: an entry
  // counts only when both are there. The hash is of the bytes written here.
  flatbuffers::FlatBufferBuilder b;
  b.ForceDefaults(true); // a checksum field to seal
  std::vector<flatbuffers::Offset<fb::Function>> functions{
      writeFunction(b, fn, keyTextHash, key.str() + ".o", textHash(*object))};
  std::string manifest = sealedManifest(
      b, fb::CreateManifest(b, b.CreateString(kFormat),
                            b.CreateString(cpu::JitModule::hostFingerprint()), 0,
                            b.CreateVector(functions)));
  if (llvm::Error e = writeFileAtomically(base + ".aexm", manifest)) {
    spdlog::warn("cpu backend: {}; @{} not cached", llvm::toString(std::move(e)), fn.name);
    return;
  }
  evictLeastRecentlyUsed(cacheDir, key, limit);
}

std::shared_ptr<CompiledFunction> CompiledExecutor::loadCached(llvm::StringRef key) {
  if (cacheDir.empty() || executableHash().empty())
    return nullptr;
  auto start = std::chrono::steady_clock::now();
  std::string base = cacheDir + "/" + key.str();
  auto bytes = readManifest(base + ".aexm");
  if (!bytes || !llvm::sys::fs::exists(base + ".o"))
    return nullptr;
  const fb::Manifest *manifest = verifiedManifest((*bytes)->getBuffer());
  auto fn = std::make_shared<CompiledFunction>();
  if (!manifest || !sealed((*bytes)->getBuffer(), *manifest) || !manifest->functions() ||
      manifest->functions()->size() != 1 || !readFunction(*manifest->functions()->Get(0), *fn)) {
    spdlog::warn("cpu backend: ignoring a malformed cache entry {}.aexm", base);
    return nullptr;
  }
  // The key is the file's name: an entry copied or renamed to another key
  // (another function's, another text's) would run that other code.
  const fb::Function &f = *manifest->functions()->Get(0);
  if (!f.object() || f.object()->str() != key.str() + ".o" || !f.text_hash() ||
      f.text_hash()->str() != key.split('-').first) {
    spdlog::warn("cpu backend: ignoring the cache entry {}.aexm: it was written for another "
                 "key ({}); recompiling",
                 base, f.object() ? f.object()->str() : "none");
    return nullptr;
  }
  if (llvm::Error e = checkObject(base + ".o", f, "recompiling")) {
    spdlog::warn("cpu backend: {}", llvm::toString(std::move(e)));
    return nullptr;
  }
  auto jit = cpu::JitModule::load(base + ".o");
  if (!jit) {
    spdlog::warn("cpu backend: cannot load cached {}.o ({}); recompiling", base,
                 llvm::toString(jit.takeError()));
    return nullptr;
  }
  fn->jit = std::move(*jit);
  // Used now: the last to be evicted.
  ::utimes((base + ".aexm").c_str(), nullptr);
  spdlog::debug("cpu backend: @{} from the cache {} in {:.2f} s", fn->name, base,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return fn;
}

/// The first difference between the host fingerprints `built` and `here`
/// (JitModule::hostFingerprint), said for a person.
std::string hostMismatch(llvm::StringRef built, llvm::StringRef here) {
  SmallVector<llvm::StringRef> a, b;
  built.split(a, ';');
  here.split(b, ';');
  if (a.size() != 4 || b.size() != 4)
    return "compiled on '" + built.str() + "'";
  const char *what[3] = {"LLVM", "target", "CPU"};
  for (int i = 0; i < 3; ++i)
    if (a[i] != b[i])
      return llvm::formatv("compiled for {0} {1}, this machine is {2}", what[i], a[i], b[i]);
  SmallVector<llvm::StringRef> features, have, missing;
  a[3].split(features, '+', -1, false);
  b[3].split(have, '+', -1, false);
  for (llvm::StringRef f : features)
    if (!llvm::is_contained(have, f))
      missing.push_back(f);
  if (missing.empty())
    return "compiled for CPU features this one has, but not the same set";
  return "compiled for CPU features this machine lacks: " + llvm::join(missing, ", ");
}

llvm::Expected<std::unique_ptr<CompiledExecutor>>
CompiledExecutor::open(llvm::StringRef path, ParameterStore &parameters) {
  std::string manifestPath = (path + "/" + kManifestName).str();
  auto bytes = readManifest(manifestPath);
  if (!bytes)
    return makeError(manifestPath,
                     bytes.getError() == std::errc::invalid_argument
                         ? "is not an attnedit-compile manifest (not a regular file, or larger "
                           "than any manifest)"
                         : "cannot read: " + bytes.getError().message());
  const fb::Manifest *manifest = verifiedManifest((*bytes)->getBuffer());
  if (!manifest || !manifest->format() || !manifest->host() || !manifest->functions())
    return makeError(manifestPath, "is not an attnedit-compile manifest (corrupt or truncated)");
  if (manifest->format()->str() != kFormat)
    return makeError(manifestPath, "has format '" + manifest->format()->str() +
                                       "'; this attnedit reads '" + kFormat +
                                       "': run attnedit-compile again");
  std::string host = cpu::JitModule::hostFingerprint();
  if (manifest->host()->str() != host)
    return makeError(manifestPath, hostMismatch(manifest->host()->str(), host) +
                                       ": run attnedit-compile on this machine");
  if (!sealed((*bytes)->getBuffer(), *manifest))
    return makeError(manifestPath, "does not match its checksum (corrupted or edited): run "
                                   "attnedit-compile again");
  if (llvm::Error e = checkSources(path, *manifest))
    return std::move(e);
  std::unique_ptr<CompiledExecutor> executor(new CompiledExecutor(""));
  executor->artifact = path.str();
  for (const fb::Function *f : *manifest->functions()) {
    auto fn = std::make_shared<CompiledFunction>();
    if (!readFunction(*f, *fn) || !f->text_hash() || !f->object())
      return makeError(manifestPath, "has a malformed function entry");
    for (const auto &p : fn->params)
      if (auto bound = parameters.get(p.name, p.shape, p.scope); !bound)
        return makeError(manifestPath, "@" + fn->name + " was compiled for parameter '" + p.name +
                                           "' of shape " + formatShape(p.shape) + ": " +
                                           llvm::toString(bound.takeError()));
    std::string object = (path + "/" + f->object()->str()).str();
    if (llvm::Error e = checkObject(object, *f, "recompile with attnedit-compile"))
      return std::move(e);
    auto jit = cpu::JitModule::load(object);
    if (!jit)
      return makeError(manifestPath, "@" + fn->name + ": " + llvm::toString(jit.takeError()));
    fn->jit = std::move(*jit);
    executor->byTextHash[f->text_hash()->str() + "-" + fn->name] = fn;
  }
  return executor;
}

/// Puts the directory `built` at `path`, where an earlier artifact may be:
/// swapped in one step (a reader, or a compile interrupted here, sees the
/// old artifact or the new one), then the old one removed.
llvm::Error replaceDirectory(const std::string &built, llvm::StringRef path) {
  std::string target = path.str();
  // A new path or an empty directory, which rename(2) replaces.
  if (::rename(built.c_str(), target.c_str()) == 0)
    return llvm::Error::success();
  if (errno != ENOTEMPTY && errno != EEXIST)
    return makeError(path, "cannot move " + built + " there: " + std::strerror(errno));
  if (::renameat2(AT_FDCWD, built.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0)
    return makeError(path, "cannot replace it with " + built + ": " + std::strerror(errno));
  llvm::sys::fs::remove_directories(built);
  return llvm::Error::success();
}

llvm::Error CompiledExecutor::writeArtifact(ModuleOp module, llvm::StringRef path,
                                            llvm::ArrayRef<std::string> configFiles) {
  // Built beside `path` and moved there whole: the earlier artifact stays
  // until the new one is complete.
  std::string built = scratchBeside(path, ".tmp.");
  if (std::error_code ec = createOutputDirectories(built))
    return makeError(path, "cannot create " + built + ": " + ec.message());
  bool done = false;
  auto removeBuilt = llvm::make_scope_exit([&] {
    if (!done)
      llvm::sys::fs::remove_directories(built);
  });
  flatbuffers::FlatBufferBuilder b;
  b.ForceDefaults(true); // a checksum field to seal
  std::vector<flatbuffers::Offset<fb::Function>> functions;
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isExternal())
      continue;
    std::string text = printed(func);
    std::string object = func.getSymName().str() + ".o";
    auto fn = compile(func, text, /*keepObject=*/true);
    if (!fn)
      return fn.takeError();
    auto bytes = (*fn)->jit->takeObject();
    if (!bytes)
      return makeError(path, "@" + func.getSymName() + ": " + llvm::toString(bytes.takeError()));
    if (llvm::Error e = writeFileAtomically(built + "/" + object, *bytes))
      return e;
    functions.push_back(writeFunction(b, **fn, textHash(text), object, textHash(*bytes)));
    spdlog::info("attnedit-compile: @{} ({} inputs, {} parameters, arena {} bytes)",
                 func.getSymName().str(), (*fn)->inputs.size(), (*fn)->params.size(),
                 (*fn)->arenaBytes);
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  if (llvm::Error e = writeFileAtomically(built + "/" + kModuleName, text))
    return e;
  auto sources = writeSources(b, module, text, configFiles);
  std::string manifest = sealedManifest(
      b, fb::CreateManifest(b, b.CreateString(kFormat),
                            b.CreateString(cpu::JitModule::hostFingerprint()),
                            b.CreateString(kModuleName), b.CreateVector(functions),
                            b.CreateVector(sources)));
  // Last: an artifact counts once its manifest is there.
  if (llvm::Error e = writeFileAtomically(built + "/" + kManifestName, manifest))
    return e;
  if (llvm::Error e = replaceDirectory(built, path))
    return e;
  done = true;
  return llvm::Error::success();
}

llvm::Expected<std::shared_ptr<CompiledFunction>>
CompiledExecutor::compile(func::FuncOp func, const std::string &text, bool keepObject,
                          const InputShapes &shapes) {
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
  if (!shapes.empty())
    specializeInputs(module->lookupSymbol<func::FuncOp>(name), shapes);

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
    fn->resultShapes.emplace_back(type.getShape());
  }
  // A training step's results (its gradients, as large as the model) go to
  // blocks the executor keeps: freshly allocated, each step page-faulted
  // them in again (glibc maps blocks over 32 MiB anew on every malloc).
  fn->resultsAsArguments =
      !fn->resultRanks.empty() && llvm::all_of(lowered.getResultTypes(), [](Type t) {
        return cast<RankedTensorType>(t).hasStaticShape();
      });
  if (!fn->resultsAsArguments)
    fn->resultShapes.clear();
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
    else if (auto g = dyn_cast<attnedit::LossGradOp>(op);
             g && g.getKind() == LossKind::CrossEntropy)
      checkIds(g.getRhs(), g.getLhs(), true, "target id");
  });
  lowered->setAttr(LLVM::LLVMDialect::getEmitCWrapperAttrName(), UnitAttr::get(&context));
  cpu::PipelineOptions options;
  options.resultsAsArguments = fn->resultsAsArguments;
  if (llvm::Error e = runPipeline(cpu::toLLVMPipelineText(options)))
    return std::move(e);
  auto llvmFunc = module->lookupSymbol<LLVM::LLVMFuncOp>(name);
  auto arenaBytes =
      llvmFunc ? llvmFunc->getAttrOfType<IntegerAttr>("attnedit.arena_bytes") : IntegerAttr();
  if (!arenaBytes)
    return makeError(name, "cpu backend: the lowering planned no arena");
  fn->arenaBytes = arenaBytes.getInt();
  auto lowerEnd = std::chrono::steady_clock::now();
  auto jit = cpu::JitModule::create(*module, name, keepObject);
  if (!jit)
    return makeError(name, "cpu backend: JIT: " + llvm::toString(jit.takeError()));
  fn->jit = std::move(*jit);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  spdlog::debug("cpu backend: compiled @{} in {:.2f} s ({:.2f} s lowering), arena {} bytes",
                name, seconds, std::chrono::duration<double>(lowerEnd - start).count(),
                fn->arenaBytes);
  return fn;
}

llvm::Expected<std::vector<Tensor>> CompiledExecutor::run(func::FuncOp func,
                                                          llvm::ArrayRef<Tensor> args,
                                                          ParameterStore &parameters) {
  auto fnOr = compiled(func, args);
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
  // Results: arguments into a block of the pool, or returned as one
  // descriptor or a struct of them (all 8-byte words, so the struct is
  // their concatenation).
  // Compiled code cannot report a failed allocation: the arena and results
  // are allocated here, and one that cannot be had is refused.
  int64_t resultBytes = fn.resultsAsArguments ? fn.resultOffset(fn.resultShapes.size()) : 0;
  auto outOfMemory = [&] {
    return makeError(fn.name,
                     llvm::formatv("cpu backend: a call needs {0:F2} GiB of working memory (its "
                                   "activations' arena and results), which this machine "
                                   "({1:F1} GiB) cannot allocate: use fewer tokens per call "
                                   "(batch, seq_len, lanes, or a shorter prompt)",
                                   (fn.arenaBytes + resultBytes) / double(1 << 30),
                                   physicalMemoryBytes() / (1 << 30))
                         .str());
  };
  std::shared_ptr<void> resultBlock;
  if (fn.resultsAsArguments) {
    resultBlock = BlockPool::take(fn.resultBlocks, resultBytes);
    if (!resultBlock)
      return outOfMemory();
    for (size_t i = 0; i < fn.resultShapes.size(); ++i)
      descriptors.push_back(Descriptor::of((char *)resultBlock.get() + fn.resultOffset(i),
                                           fn.resultShapes[i]));
  }
  size_t resultWords = 0;
  for (unsigned r : fn.resultRanks)
    resultWords += 3 + 2 * r;
  std::vector<int64_t> results(resultWords, 0);
  std::vector<void *> callArgs;
  if (!fn.resultRanks.empty() && !fn.resultsAsArguments)
    callArgs.push_back(results.data());
  std::shared_ptr<void> arena = BlockPool::take(fn.arenas, fn.arenaBytes);
  if (!arena)
    return outOfMemory();
  descriptors.push_back(Descriptor::of(arena.get(), {fn.arenaBytes}));
  for (Descriptor &d : descriptors)
    callArgs.push_back(d.words.data());
  if (llvm::Error e = fn.jit->call(fn.name, callArgs)) {
    // A call its code refused (checkSegments) still returned its results:
    // freed unread, each once, none that is an argument's buffer.
    std::vector<int64_t> freed;
    for (size_t r = 0, at = 0; !fn.resultsAsArguments && r < fn.resultRanks.size(); ++r) {
      int64_t allocated = results[at];
      at += 3 + 2 * fn.resultRanks[r];
      if (!allocated || llvm::is_contained(freed, allocated) ||
          llvm::any_of(descriptors, [&](const Descriptor &d) { return d.words[0] == allocated; }))
        continue;
      freed.push_back(allocated);
      cpu::freeCompiledBuffer((void *)(intptr_t)allocated);
    }
    return makeError(fn.name, "cpu backend: call failed: " + llvm::toString(std::move(e)));
  }

  if (fn.resultsAsArguments) {
    std::vector<Tensor> out;
    for (size_t i = 0, next = 0; i < fn.donated.size(); ++i) {
      if (fn.donated[i] >= 0) {
        out.push_back(args[fn.donated[i]]); // written in place
        continue;
      }
      out.push_back(Tensor::view(fn.resultShapes[next],
                                 (const float *)((char *)resultBlock.get() + fn.resultOffset(next)),
                                 resultBlock));
      ++next;
    }
    return out;
  }
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
        cpu::freeCompiledBuffer(allocated);
      out.push_back(copy);
      continue;
    }
    out.push_back(Tensor::view(shape, data, std::shared_ptr<const void>(allocated, cpu::freeCompiledBuffer)));
  }
  return out;
}

} // namespace

bool attnedit::isCompiledModel(llvm::StringRef path) {
  return llvm::sys::fs::is_directory(path) &&
         llvm::sys::fs::exists(path + "/" + kManifestName);
}

std::string attnedit::compiledModelModule(llvm::StringRef path) {
  return (path + "/" + kModuleName).str();
}

llvm::Error attnedit::checkCompiledModelOutput(llvm::StringRef output) {
  std::string path = followLinks(output);
  llvm::sys::fs::file_status status;
  if (std::error_code ec = llvm::sys::fs::status(path, status)) {
    if (ec != std::errc::no_such_file_or_directory)
      return makeError(path, "cannot be written: " + ec.message());
  } else {
    if (status.type() != llvm::sys::fs::file_type::directory_file)
      return makeError(path, "exists and is not a directory");
    // An artifact holds its manifest, module and objects, and the
    // temporaries (NAME.tmp, NAME.tmp.PID) of a compile that was interrupted.
    auto listed = foreignEntries(path, [](llvm::StringRef name) {
      llvm::StringRef file = name.substr(0, name.find(".tmp"));
      return file == kManifestName || file == kModuleName || file.ends_with(".o");
    });
    if (!listed)
      return makeError(path, "cannot list: " + listed.getError().message());
    std::vector<std::string> &foreign = *listed;
    if (!foreign.empty()) {
      if (foreign.size() > 3) {
        foreign.resize(4);
        foreign.back() = "...";
      }
      return makeError(path, "is not an attnedit-compile artifact but a directory holding " +
                                 llvm::join(foreign, ", ") +
                                 "; give a new or empty directory (or an artifact to replace)");
    }
  }
  // The artifact is built in a directory beside `path` (writeArtifact):
  // one that cannot be created is found now, not after compiling.
  std::string probe = scratchBeside(path, ".tmp.");
  if (std::error_code ec = createOutputDirectories(probe))
    return makeError(path, "cannot write in " + llvm::sys::path::parent_path(probe).str() +
                               ": " + ec.message());
  llvm::sys::fs::remove(probe);
  return llvm::Error::success();
}

llvm::Error attnedit::writeCompiledModel(ModuleOp module, llvm::StringRef path,
                                         llvm::ArrayRef<std::string> configFiles) {
  // Resolved once: the directory checked is the one written.
  std::string target = followLinks(path);
  if (llvm::Error e = checkCompiledModelOutput(target))
    return e;
  return CompiledExecutor("").writeArtifact(module, target, configFiles);
}

llvm::Expected<std::unique_ptr<Executor>>
attnedit::openCompiledModel(llvm::StringRef path, ParameterStore &parameters) {
  auto executor = CompiledExecutor::open(path, parameters);
  if (!executor)
    return executor.takeError();
  return std::unique_ptr<Executor>(std::move(*executor));
}

llvm::Expected<uint64_t> attnedit::compiledCacheLimit() {
  const char *text = std::getenv("ATTNEDIT_CACHE_MAX_SIZE");
  if (!text || !*text)
    return 1ull << 30;
  llvm::StringRef size(text);
  uint64_t scale = 1, bytes = 0;
  if (size.consume_back("K") || size.consume_back("k"))
    scale = 1ull << 10;
  else if (size.consume_back("M") || size.consume_back("m"))
    scale = 1ull << 20;
  else if (size.consume_back("G") || size.consume_back("g"))
    scale = 1ull << 30;
  if (size.getAsInteger(10, bytes) || bytes == 0 || bytes > UINT64_MAX / scale)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "ATTNEDIT_CACHE_MAX_SIZE=%s is not a size such as 500M or 2G",
                                   text);
  return bytes * scale;
}

std::unique_ptr<Executor> attnedit::createCompiledExecutor(std::optional<std::string> cacheDir) {
  // Results, and the intermediates of dynamic size the arena plan cannot
  // place (inference functions keep dynamic lengths), are allocated on
  // every call. glibc maps every block over its dynamic threshold fresh and
  // unmaps it on free, so each call page-faulted its buffers in again; kept
  // on the heap (up to glibc's 32 MiB cap), they are reused.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  return std::make_unique<CompiledExecutor>(cacheDir ? *cacheDir : defaultCacheDir());
}
