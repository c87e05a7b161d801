//===- TargetDescription.cpp - JSON target descriptions -------------------===//
//
// Every number in a description is {"value": x, "source": "..."}: a field
// without its source is an error, so no hardware figure enters unsourced.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/TargetDescription.h"
#include "attnedit/Frontend/InputFile.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>
#include <mutex>
#include <sstream>

using namespace mlir::attnedit::ascend;
namespace json = llvm::json;

namespace {
// The built-in descriptions, embedded at configure time from targets/*.json.
#include "BuiltinTargets.inc"
} // namespace

int64_t mlir::attnedit::ascend::dtypeBytes(DType dtype) { return dtype == DType::F32 ? 4 : 2; }

llvm::StringRef mlir::attnedit::ascend::dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "f32";
  case DType::F16:
    return "f16";
  case DType::BF16:
    return "bf16";
  }
  return "?";
}

const PathSpec *TargetDescription::findPath(Space src, Space dst) const {
  for (const PathSpec &p : paths)
    if (p.src == src && p.dst == dst)
      return &p;
  return nullptr;
}

bool TargetDescription::pipeAvailable(CoreKind core, Pipe pipe) const {
  if (!separated || core == CoreKind::Coupled || core == CoreKind::Mix || pipe == Pipe::S)
    return true;
  // S1: an AIC runs MTE1, MTE2, M and FIX; an AIV runs MTE2, V and MTE3.
  if (core == CoreKind::AIC)
    return pipe == Pipe::MTE1 || pipe == Pipe::MTE2 || pipe == Pipe::M || pipe == Pipe::FIX;
  return pipe == Pipe::MTE2 || pipe == Pipe::V || pipe == Pipe::MTE3;
}

namespace {
/// `v` as the JSON wrote it: 0, -1, 1.5e+10.
std::string shortest(double v) {
  std::ostringstream text;
  text << v;
  return text.str();
}

struct Reader {
  llvm::StringRef origin;
  std::string error;

  bool fail(const llvm::Twine &msg) {
    if (error.empty())
      error = (origin + ": " + msg).str();
    return false;
  }

  /// Fails on a key of `object` outside `known`: a misspelt optional field
  /// ("latnecy") would otherwise read as 0 without a word.
  bool onlyKnown(const json::Object &object, llvm::ArrayRef<llvm::StringRef> known,
                 const llvm::Twine &where) {
    for (const auto &[key, value] : object)
      if (!llvm::is_contained(known, key.str()))
        return fail("unknown field '" + key.str() + "' in " + where + " (known: " +
                    llvm::join(known, ", ") + ")");
    return true;
  }

  bool number(const json::Object &numbers, llvm::StringRef key, double &out,
              llvm::StringMap<std::string> &sources) {
    const json::Object *field = numbers.getObject(key);
    if (!field)
      return fail("missing number '" + key + "'");
    if (!onlyKnown(*field, {"value", "source"}, "number '" + key + "'"))
      return false;
    std::optional<double> v = field->getNumber("value");
    std::optional<llvm::StringRef> src = field->getString("source");
    if (!v)
      return fail("number '" + key + "' has no numeric \"value\"");
    if (!src || src->empty())
      return fail("number '" + key + "' has no \"source\"");
    // Every figure is a count, size, rate, latency or fraction: a negative
    // one gave negative times ("modelled -97999930.1 us").
    if (!std::isfinite(*v) || *v < 0)
      return fail("number '" + key + "' must be 0 or more, got " + shortest(*v));
    out = *v;
    sources["numbers." + key.str()] = src->str();
    return true;
  }
  template <typename T>
  bool integer(const json::Object &numbers, llvm::StringRef key, T &out,
               llvm::StringMap<std::string> &sources) {
    double v;
    if (!number(numbers, key, v, sources))
      return false;
    if (v != std::floor(v) || v > 1e15)
      return fail("number '" + key + "' must be a whole number, got " + shortest(v));
    out = static_cast<T>(v);
    return true;
  }
};

std::optional<Space> spaceOf(llvm::StringRef s) { return symbolizeSpace(s); }
} // namespace

llvm::Expected<TargetDescription> TargetDescription::parse(llvm::StringRef text,
                                                           llvm::StringRef origin) {
  llvm::Expected<json::Value> parsed = json::parse(text);
  if (!parsed)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: invalid JSON: %s",
                                   origin.str().c_str(),
                                   llvm::toString(parsed.takeError()).c_str());
  const json::Object *root = parsed->getAsObject();
  Reader r{origin, {}};
  TargetDescription t;
  auto error = [&]() {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), r.error);
  };
  if (!root)
    return r.fail("top level must be an object"), error();
  if (!r.onlyKnown(*root, {"name", "description", "arch", "separated", "numbers", "buffers", "paths"},
                   "the top level"))
    return error();
  auto str = [&](llvm::StringRef key, std::string &out) {
    std::optional<llvm::StringRef> s = root->getString(key);
    if (!s)
      return r.fail("missing string '" + key + "'");
    out = s->str();
    return true;
  };
  if (!str("name", t.name) || !str("description", t.description) || !str("arch", t.arch))
    return error();
  std::optional<bool> separated = root->getBoolean("separated");
  if (!separated)
    return r.fail("missing boolean 'separated'"), error();
  t.separated = *separated;

  const json::Object *n = root->getObject("numbers");
  if (!n)
    return r.fail("missing object 'numbers'"), error();
  auto &s = t.sources;
  double macF16, macBF16, macF32;
  bool ok = r.integer(*n, "cube_cores", t.cubeCores, s) &&
            r.integer(*n, "vector_cores_per_cube", t.vectorCoresPerCube, s) &&
            r.number(*n, "freq_hz", t.freqHz, s) &&
            r.number(*n, "hbm_bytes_per_s", t.hbmBytesPerSecond, s) &&
            r.number(*n, "l2_bytes", t.l2Bytes, s) &&
            r.number(*n, "l2_reuse_fraction", t.l2ReuseFraction, s) &&
            r.number(*n, "ddr_bytes_per_cycle", t.ddrBytesPerCycle, s) &&
            r.number(*n, "l2_bytes_per_cycle", t.l2BytesPerCycle, s) &&
            r.integer(*n, "gm_perf_align", t.gmPerfAlign, s) &&
            r.number(*n, "gm_misaligned_factor", t.gmMisalignedFactor, s) &&
            r.number(*n, "gm_half_efficiency_bytes", t.gmHalfEfficiencyBytes, s) &&
            r.number(*n, "cube_macs_f16", macF16, s) &&
            r.number(*n, "cube_macs_bf16", macBF16, s) &&
            r.number(*n, "cube_macs_f32", macF32, s) &&
            r.number(*n, "vector_bytes_per_cycle", t.vectorBytesPerCycle, s) &&
            r.number(*n, "vector_transcendental_cpi", t.vectorTranscendentalCpi, s) &&
            r.number(*n, "vector_latency", t.vectorLatency, s) &&
            r.number(*n, "mte_latency", t.mteLatency, s) &&
            r.number(*n, "flag_latency", t.flagLatency, s) &&
            r.number(*n, "sync_all_latency", t.syncAllLatency, s) &&
            r.number(*n, "cross_core_latency", t.crossCoreLatency, s) &&
            r.integer(*n, "cross_core_flags", t.crossCoreFlags, s) &&
            r.number(*n, "launch_seconds", t.launchSeconds, s) &&
            r.integer(*n, "events_per_pipe_pair", t.eventsPerPipePair, s) &&
            r.integer(*n, "ub_reserve_bytes", t.ubReserveBytes, s);
  if (!ok)
    return error();
  for (const auto &[key, value] : *n)
    if (!s.count("numbers." + key.str()))
      return r.fail("unknown number '" + key.str() +
                    "': a misspelt name would otherwise be ignored"),
             error();
  t.cubeMacs = {static_cast<int64_t>(macF32), static_cast<int64_t>(macF16),
                static_cast<int64_t>(macBF16)};
  // Counts and rates the planner and the cost model divide by or loop over:
  // 0 or less would give zero-time or infinite kernels, not an error.
  const std::pair<const char *, double> positive[] = {
      {"cube_cores", static_cast<double>(t.cubeCores)},
      {"vector_cores_per_cube", static_cast<double>(t.vectorCoresPerCube)},
      {"freq_hz", t.freqHz},
      {"hbm_bytes_per_s", t.hbmBytesPerSecond},
      {"ddr_bytes_per_cycle", t.ddrBytesPerCycle},
      {"l2_bytes_per_cycle", t.l2BytesPerCycle},
      {"vector_bytes_per_cycle", t.vectorBytesPerCycle},
      {"events_per_pipe_pair", static_cast<double>(t.eventsPerPipePair)},
      {"cross_core_flags", static_cast<double>(t.crossCoreFlags)},
      {"gm_perf_align", static_cast<double>(t.gmPerfAlign)},
      // A factor on misaligned transfer times: 0 made them free and the report's times inf.
      {"gm_misaligned_factor", t.gmMisalignedFactor}};
  for (auto [key, v] : positive)
    if (!(v > 0))
      return r.fail("number '" + llvm::Twine(key) + "' must be positive, got " + shortest(v)),
             error();
  if (t.l2ReuseFraction > 1)
    return r.fail("number 'l2_reuse_fraction' must be at most 1, got " +
                  shortest(t.l2ReuseFraction)),
           error();

  const json::Object *bufs = root->getObject("buffers");
  if (!bufs)
    return r.fail("missing object 'buffers'"), error();
  for (const auto &[key, value] : *bufs)
    if (!symbolizeSpace(key.str()))
      return r.fail("unknown buffer '" + key.str() + "' (gm, l1, l0a, l0b, l0c, ub)"), error();
  for (int i = 0; i < kNumSpaces; ++i) {
    llvm::StringRef name = stringifySpace(static_cast<Space>(i));
    const json::Object *b = bufs->getObject(name);
    if (!b)
      return r.fail("missing buffer '" + name + "'"), error();
    if (!r.onlyKnown(*b, {"bytes", "align", "source"}, "buffer '" + name + "'"))
      return error();
    std::optional<int64_t> bytes = b->getInteger("bytes"), align = b->getInteger("align");
    std::optional<llvm::StringRef> src = b->getString("source");
    if (!bytes || !align || *bytes <= 0 || *align <= 0)
      return r.fail("buffer '" + name + "' needs positive integer \"bytes\" and \"align\""),
             error();
    // The simulator allocates the on-chip buffers (2^40 bytes ended in bad_alloc); real ones
    // are KiB to MiB, global memory tens of GiB.
    int64_t most = i == static_cast<int>(Space::GM) ? int64_t(1) << 40 : int64_t(1) << 30;
    if (*bytes > most)
      return r.fail("buffer '" + name + "' \"bytes\" is " + llvm::Twine(*bytes) +
                    ", more than the " + llvm::Twine(most) + " " +
                    (i == static_cast<int>(Space::GM) ? "a global" : "an on-chip") +
                    " memory can be here"),
             error();
    // Tiles are whole 32-byte blocks or 512-byte fractals (S8), so a slot
    // after a slot stays aligned only when the alignment is a power of two.
    if (!llvm::isPowerOf2_64(*align))
      return r.fail("buffer '" + name + "' \"align\" must be a power of two, got " +
                    llvm::Twine(*align)),
             error();
    if (!src || src->empty())
      return r.fail("buffer '" + name + "' has no \"source\""), error();
    t.buffers[i] = {*bytes, *align};
    s[("buffers." + name).str()] = src->str();
  }
  // What the kernels may use of the UB is its size less the reserve: none
  // left made every op "not fit", and the report counted them as free.
  int64_t ub = t.buffers[static_cast<int>(Space::UB)].bytes;
  if (t.ubReserveBytes >= ub)
    return r.fail("number 'ub_reserve_bytes' (" + llvm::Twine(t.ubReserveBytes) +
                  ") leaves nothing of buffer 'ub' (" + llvm::Twine(ub) + " bytes)"),
           error();

  const json::Array *paths = root->getArray("paths");
  if (!paths)
    return r.fail("missing array 'paths'"), error();
  for (const json::Value &v : *paths) {
    const json::Object *p = v.getAsObject();
    if (!p)
      return r.fail("a path must be an object"), error();
    if (!r.onlyKnown(*p, {"src", "dst", "pipe", "bytes_per_cycle", "elements_per_cycle",
                          "latency", "source"},
                     "a path"))
      return error();
    std::optional<llvm::StringRef> src = p->getString("src"), dst = p->getString("dst"),
                                   pipe = p->getString("pipe"), source = p->getString("source");
    std::optional<Space> srcSpace = src ? spaceOf(*src) : std::nullopt;
    std::optional<Space> dstSpace = dst ? spaceOf(*dst) : std::nullopt;
    std::optional<Pipe> pipeKind = pipe ? symbolizePipe(*pipe) : std::nullopt;
    if (!srcSpace || !dstSpace || !pipeKind)
      return r.fail("a path needs \"src\", \"dst\" (gm, l1, l0a, l0b, l0c, ub) and \"pipe\""),
             error();
    if (!source || source->empty())
      return r.fail("path " + *src + "->" + *dst + " has no \"source\""), error();
    PathSpec spec{*srcSpace, *dstSpace, *pipeKind};
    // Absent: 0, the GM model's rate or numbers.mte_latency.
    auto rate = [&](llvm::StringRef key, double &out, bool whole) {
      const json::Value *v = p->get(key);
      if (!v)
        return true;
      std::optional<double> x = v->getAsNumber();
      if (!x || !std::isfinite(*x) || *x < 0 || (whole && *x != std::floor(*x)))
        return r.fail("path " + *src + "->" + *dst + ": '" + key + "' must be a " +
                      (whole ? "whole number" : "number") + " of 0 or more");
      out = *x;
      return true;
    };
    double latency = 0;
    if (!rate("bytes_per_cycle", spec.bytesPerCycle, false) ||
        !rate("elements_per_cycle", spec.elementsPerCycle, false) ||
        !rate("latency", latency, true))
      return error();
    spec.latency = static_cast<int64_t>(latency);
    t.paths.push_back(spec);
    s[("paths." + *src + "->" + *dst).str()] = source->str();
  }
  return t;
}

namespace {
/// The numbers the cost model reads, by JSON name.
struct CostNumber {
  const char *name;
  double TargetDescription::*field;
};
const CostNumber kCostNumbers[] = {
    {"hbm_bytes_per_s", &TargetDescription::hbmBytesPerSecond},
    {"l2_reuse_fraction", &TargetDescription::l2ReuseFraction},
    {"ddr_bytes_per_cycle", &TargetDescription::ddrBytesPerCycle},
    {"l2_bytes_per_cycle", &TargetDescription::l2BytesPerCycle},
    {"gm_misaligned_factor", &TargetDescription::gmMisalignedFactor},
    {"gm_half_efficiency_bytes", &TargetDescription::gmHalfEfficiencyBytes},
    {"vector_bytes_per_cycle", &TargetDescription::vectorBytesPerCycle},
    {"vector_transcendental_cpi", &TargetDescription::vectorTranscendentalCpi},
    {"vector_latency", &TargetDescription::vectorLatency},
    {"mte_latency", &TargetDescription::mteLatency},
    {"flag_latency", &TargetDescription::flagLatency},
    {"sync_all_latency", &TargetDescription::syncAllLatency},
    {"cross_core_latency", &TargetDescription::crossCoreLatency},
    {"launch_seconds", &TargetDescription::launchSeconds},
};
} // namespace

bool TargetDescription::scaleNumber(llvm::StringRef field, double factor) {
  for (const CostNumber &n : kCostNumbers)
    if (field == n.name) {
      this->*n.field *= factor;
      return true;
    }
  return false;
}

std::vector<std::string> TargetDescription::estimatedNumbers() const {
  std::vector<std::string> out;
  for (const CostNumber &n : kCostNumbers)
    if (llvm::StringRef(sources.lookup(("numbers." + llvm::Twine(n.name)).str())).contains("[E]"))
      out.push_back(n.name);
  return out;
}

std::vector<std::string> TargetDescription::builtinNames() {
  std::vector<std::string> names;
  for (const auto &b : kBuiltinTargets)
    names.push_back(b.name);
  return names;
}

llvm::Expected<std::shared_ptr<const TargetDescription>>
TargetDescription::load(llvm::StringRef nameOrPath) {
  static std::mutex mutex;
  static llvm::StringMap<std::shared_ptr<const TargetDescription>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(nameOrPath);
  if (it != cache.end())
    return it->second;

  llvm::Expected<TargetDescription> parsed = llvm::createStringError(
      llvm::inconvertibleErrorCode(), "unknown Ascend target '%s' (built-in: %s; or a .json file)",
      nameOrPath.str().c_str(), llvm::join(builtinNames(), ", ").c_str());
  bool builtin = false;
  for (const auto &b : kBuiltinTargets)
    if (nameOrPath == b.name) {
      llvm::consumeError(parsed.takeError());
      parsed = parse(b.json, ("built-in target " + nameOrPath).str());
      builtin = true;
    }
  if (!builtin && nameOrPath.ends_with(".json")) {
    llvm::consumeError(parsed.takeError());
    llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> file = readInputFile(nameOrPath);
    if (!file)
      return llvm::createStringError(file.getError(), "cannot read target description '%s': %s",
                                     nameOrPath.str().c_str(),
                                     file.getError().message().c_str());
    parsed = parse((*file)->getBuffer(), nameOrPath);
  }
  if (!parsed)
    return parsed.takeError();
  // A file by absolute path: kernels carry it, and a module read again from
  // another directory must find the same file.
  llvm::SmallString<256> ref(nameOrPath);
  if (!builtin)
    llvm::sys::fs::make_absolute(ref);
  parsed->ref = ref.str().str();
  auto shared = std::make_shared<const TargetDescription>(std::move(*parsed));
  cache[nameOrPath] = shared;
  return shared;
}
