//===- CostModel.h - event-driven timing of a schedule --------*- C++ -*-===//
//
// Replays each core's per-pipe queues in order: an instruction starts when
// its pipe is free and, for wait_flag, when the matching set_flag has fired
// (its pipe drained up to it) plus the flag latency. Durations follow the
// formulas of research/ascend.md §11.2 with the target's numbers: mmad
// ⌈m/16⌉⌈n/16⌉⌈k/cube_k⌉ cycles (S56), MTE1 latency + bytes / rate (S57),
// FixPipe 64 elements/cycle (S58), GM transfers at the core's share of HBM
// or L2 bandwidth with size and alignment efficiency (S25), vector ops per
// 256-byte repeat (S19).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_COSTMODEL_H
#define ATTNEDIT_ASCEND_COSTMODEL_H

#include "attnedit/Ascend/Schedule.h"

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <array>

namespace mlir::attnedit::ascend {

struct TraceEvent {
  int64_t core;
  Pipe pipe;
  double start, duration; // cycles
  const Instr *instr;
};

struct PipeUsage {
  double busyCycles = 0;
  int64_t instrs = 0;
  double bytes = 0;
};

struct KernelEstimate {
  std::string kernel;
  double cycles = 0;  // slowest core, launch excluded
  double seconds = 0; // cycles / clock + launch
  int64_t coresUsed = 0;
  /// Busy time / (cores used x cycles), per pipe.
  std::array<double, kNumPipes> utilisation{};
  std::array<PipeUsage, kNumPipes> usage{}; // summed over modelled cores
  Pipe bound = Pipe::S;
  double flops = 0;        // Cube flops (2 per MAC)
  double gmBytes = 0;      // bytes moved to and from GM (all transfers)
  double workspaceBytes = 0; // of those, to and from workspace (L2-resident scratch)
  double uniqueGmBytes = 0; // size of the GM tensors (compulsory traffic)
  double rooflineSeconds = 0; // max(flops / Cube peak, unique GM bytes / HBM bandwidth)
  double cubePeakFraction = 0; // (flops / Cube peak) / seconds
  std::vector<TraceEvent> trace; // when requested

  llvm::json::Object toJSON() const;
};

struct EstimateOptions {
  bool trace = false;
  /// The schedule holds only some blocks (e.g. block 0, the busiest when
  /// tasks are dealt round-robin); scale totals to `blockDim` blocks.
  bool representative = false;
  /// Per GM tensor, the fraction of its reads that hit L2, when the caller
  /// knows it better than the schedule at hand (a sampled tiling search).
  std::vector<double> l2HitRatio;
  /// Multiplies the modelled time (a sample of a block's tasks).
  double timeScale = 1;
  /// Times against this description instead of the schedule's (what-if
  /// runs of the sensitivity analysis).
  const TargetDescription *target = nullptr;
};

/// research §11.4: the time at 0.5x and 1.5x of each estimated ([E])
/// number of the target, relative to the estimate, largest effect first.
struct Sensitivity {
  std::string number;
  double low, high; // seconds(x0.5) / seconds - 1, seconds(x1.5) / seconds - 1
};
llvm::Expected<std::vector<Sensitivity>> sensitivity(const Schedule &schedule,
                                                     const KernelEstimate &estimate);

llvm::Expected<KernelEstimate> estimate(const Schedule &schedule, const EstimateOptions &options = {});

/// What a kernel's tiling search returns: the fastest tiling, its estimate,
/// and how many tilings fit and were timed.
template <typename Tiling> struct TilingSearchResult {
  Tiling tiling;
  KernelEstimate estimate;
  int64_t candidates = 0;
};

/// Chrome trace (chrome://tracing, Perfetto): one process per core, one
/// thread per pipe, times in microseconds.
llvm::json::Value chromeTrace(const Schedule &schedule, const KernelEstimate &estimate);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_COSTMODEL_H
