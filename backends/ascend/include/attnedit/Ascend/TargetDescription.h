//===- TargetDescription.h - an Ascend part as data -----------*- C++ -*-===//
//
// Core counts, clock, buffer capacities and alignments, pipe paths and
// rates of one Ascend part, read from a JSON file in which every number
// carries its source (backends/ascend/targets/*.json). The compiler, the
// simulator and the cost model read the hardware only from here, so a
// second description (910a) changes tilings and schedules without code.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_TARGETDESCRIPTION_H
#define ATTNEDIT_ASCEND_TARGETDESCRIPTION_H

#include "attnedit/Ascend/AscendEnums.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace mlir::attnedit::ascend {

struct BufferSpec {
  int64_t bytes = 0;
  int64_t align = 1;
};

/// A legal data movement: `pipe` moves `src` -> `dst` (S2, S36). A rate of 0
/// means the GM bandwidth model decides (GM-side paths).
struct PathSpec {
  Space src, dst;
  Pipe pipe;
  double bytesPerCycle = 0, elementsPerCycle = 0;
  int64_t latency = 0;
};

/// Element types the Cube and the vector unit handle.
enum class DType { F32, F16, BF16 };
int64_t dtypeBytes(DType dtype);
llvm::StringRef dtypeName(DType dtype);

struct TargetDescription {
  std::string name, description, arch;
  /// What `load` was given: a built-in name or the JSON file's path. Kernels
  /// carry it as their `target`, so the verifier, the simulator and the cost
  /// model load the very description the kernel was built for (a file's
  /// "name" may repeat a built-in's or be new: it only labels messages).
  std::string ref;
  bool separated = true; // AIC and AIV are separate cores (910B) or one (910A)
  int64_t cubeCores = 0, vectorCoresPerCube = 0;
  double freqHz = 0;
  double hbmBytesPerSecond = 0, l2Bytes = 0, l2ReuseFraction = 0;
  double ddrBytesPerCycle = 0, l2BytesPerCycle = 0; // per core
  int64_t gmPerfAlign = 512;
  double gmMisalignedFactor = 1, gmHalfEfficiencyBytes = 0;
  std::array<int64_t, 3> cubeMacs{}; // per DType
  double vectorBytesPerCycle = 0, vectorTranscendentalCpi = 1, vectorLatency = 0;
  double mteLatency = 0, flagLatency = 0, syncAllLatency = 0, launchSeconds = 0;
  /// Cycles from a cross_set firing to the other core's cross_wait passing.
  double crossCoreLatency = 0;
  int64_t eventsPerPipePair = 0, ubReserveBytes = 0;
  /// Cross-core flag ids [0, crossCoreFlags) (S23).
  int64_t crossCoreFlags = 0;
  std::array<BufferSpec, kNumSpaces> buffers{};
  std::vector<PathSpec> paths;
  /// "numbers.<field>" / "buffers.<space>" / "paths.<src>-><dst>" -> source.
  llvm::StringMap<std::string> sources;

  /// The `target` a kernel built for this description carries: `ref`, or
  /// `name` for a description parsed in memory.
  const std::string &reference() const { return ref.empty() ? name : ref; }
  /// `name`, followed by the file it came from when not a built-in.
  std::string label() const { return ref.empty() || ref == name ? name : name + " from " + ref; }

  const BufferSpec &buffer(Space s) const { return buffers[static_cast<int>(s)]; }
  /// The bytes of `s` a kernel may plan: all of it, but UB less what the
  /// library's temporaries keep (`ub_reserve_bytes`).
  int64_t usableBytes(Space s) const {
    return buffer(s).bytes - (s == Space::UB ? ubReserveBytes : 0);
  }
  const PathSpec *findPath(Space src, Space dst) const;
  /// MACs per cycle of one cube core for `dtype`; 0 when unsupported.
  int64_t cubeMacsPerCycle(DType dtype) const { return cubeMacs[static_cast<int>(dtype)]; }
  /// Whether a kernel of `core` kind may use `pipe` on this target (S1); a
  /// mix kernel holds both core types' programs.
  bool pipeAvailable(CoreKind core, Pipe pipe) const;
  /// Peak Cube flop/s of the whole chip for `dtype`.
  double cubePeakFlops(DType dtype) const {
    return 2.0 * cubeMacsPerCycle(dtype) * cubeCores * freqHz;
  }

  /// Multiplies the cost-model number `field` (as named in the JSON's
  /// "numbers") by `factor`; false if it is not one the cost model reads.
  bool scaleNumber(llvm::StringRef field, double factor);
  /// The cost-model numbers whose source marks an estimate ("[E]").
  std::vector<std::string> estimatedNumbers() const;

  /// Parses a description; `origin` names it in errors.
  static llvm::Expected<TargetDescription> parse(llvm::StringRef json, llvm::StringRef origin);
  /// A built-in description by name ("910b", "910a") or a JSON file path.
  /// Results are cached: verifiers call this for every kernel.
  static llvm::Expected<std::shared_ptr<const TargetDescription>> load(llvm::StringRef nameOrPath);
  static std::vector<std::string> builtinNames();
};

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_TARGETDESCRIPTION_H
