//===- CostModel.cpp - event-driven replay of per-pipe streams ------------===//
//
// Every duration is computed from the target description; the [E] numbers
// among them (latencies, GM efficiency curve, L2 rate) are marked in the
// JSON. Shared GM bandwidth is modelled as an equal static share per active
// core; a GM tensor read more often than its size is assumed to hit L2 for
// the re-reads when it fits the target's l2_reuse_fraction of L2.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/CostModel.h"

#include "llvm/ADT/DenseMap.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <tuple>

using namespace mlir::attnedit::ascend;
namespace json = llvm::json;

namespace {

bool isTranscendental(VectorOp op) {
  return op == VectorOp::Exp || op == VectorOp::Sqrt || op == VectorOp::Rec || op == VectorOp::Div ||
         op == VectorOp::Sin || op == VectorOp::Cos || op == VectorOp::Ln;
}

/// Elements of a copy window that lie inside a GM tensor (reads past the end
/// are zero padding, writes past it are dropped: neither moves bytes).
int64_t validElements(const Window &gm, int64_t rows, int64_t cols) {
  const auto &shape = gm.tile.shape;
  int64_t r0 = gm.offsets[shape.size() - 2], c0 = gm.offsets.back();
  int64_t vr = std::max<int64_t>(0, std::min(rows, shape[shape.size() - 2] - r0));
  int64_t vc = std::max<int64_t>(0, std::min(cols, shape.back() - c0));
  return vr * vc;
}

struct Model {
  const Schedule &s;
  const TargetDescription &t;
  const EstimateOptions &options;
  double scale = 1;
  int64_t activeCores = 1;
  double hbmShare = 0; // bytes/cycle per core
  std::vector<double> hits;     // per GM tensor, fraction of reads hitting L2
  std::vector<double> readRate; // per GM tensor, bytes/cycle per core

  Model(const Schedule &s, const EstimateOptions &options)
      : s(s), t(options.target ? *options.target : *s.target), options(options) {}

  /// Programs per block: 1, or a mix kernel's AIC and AIVs.
  int64_t perBlock() const { return s.core == CoreKind::Mix ? 1 + t.vectorCoresPerCube : 1; }

  void prepare() {
    int64_t modelled = std::max<int64_t>(1, s.cores.size() / perBlock());
    scale = options.representative ? double(s.blockDim) / modelled : 1.0;
    int64_t physical = t.cubeCores * (s.core == CoreKind::AIV ? t.vectorCoresPerCube : 1);
    activeCores = std::min<int64_t>(s.blockDim, physical);
    hbmShare = std::min(t.ddrBytesPerCycle, t.hbmBytesPerSecond / t.freqHz / activeCores);
    // Bytes read from each GM tensor, and bytes written to GM.
    std::vector<double> readBytes(s.gm.size(), 0);
    for (const CoreProgram &p : s.cores)
      for (const Instr &i : p.instrs) {
        if (i.kind != InstrKind::Copy)
          continue;
        if (i.src0.tile.space == Space::GM)
          readBytes[i.src0.tile.gmArg] +=
              validElements(i.src0, i.transpose ? i.cols : i.rows, i.transpose ? i.rows : i.cols) *
              i.src0.tile.elementBytes();
      }
    // Re-reads of a tensor hit L2 when it fits the reusable part of L2
    // (S9: 192 MiB; S12: the cliff once matrices exceed it).
    hits.assign(s.gm.size(), 0.0);
    for (size_t i = 0; i < s.gm.size(); ++i) {
      double size = s.gm[i].numel() * dtypeBytes(s.gm[i].dtype);
      // A mix kernel's cube <-> vector ring stays in L2 (S26, research §9.3).
      if (s.gm[i].workspace) {
        hits[i] = 1.0;
        continue;
      }
      double reads = readBytes[i] * scale;
      hits[i] = (size <= t.l2ReuseFraction * t.l2Bytes && reads > size) ? 1.0 - size / reads : 0.0;
      if (i < options.l2HitRatio.size())
        hits[i] = options.l2HitRatio[i];
    }
    readRate.assign(s.gm.size(), hbmShare);
    for (size_t i = 0; i < s.gm.size(); ++i)
      readRate[i] = 1.0 / (hits[i] / t.l2BytesPerCycle + (1.0 - hits[i]) / hbmShare);
  }

  /// Bytes an instruction moves to or from HBM (L2 hits excluded).
  double hbmBytes(const Instr &i, double bytes) const {
    if (i.kind != InstrKind::Copy)
      return 0;
    if (i.src0.tile.space == Space::GM)
      return bytes * (1 - hits[i.src0.tile.gmArg]);
    return i.dst.tile.space == Space::GM && !s.gm[i.dst.tile.gmArg].workspace ? bytes : 0;
  }

  /// S25: small transfers and GM addresses off the 512-byte line are slower.
  /// A window of whole rows is one contiguous burst: only its start's
  /// alignment counts; otherwise every row starts a burst of its own. An
  /// argument bound to a column window of a wider tensor (a folded slice)
  /// is read in bursts of its rows, one a row of that tensor (S33: a
  /// stride off the line costs bandwidth).
  double gmEfficiency(const Window &gm, double bytes, int64_t windowCols) const {
    double eta = bytes / (bytes + t.gmHalfEfficiencyBytes);
    const GmTensor &g = s.gm[gm.tile.gmArg];
    int64_t eb = gm.tile.elementBytes();
    int64_t rowBytes = (g.viewWidth ? g.viewPitch : gm.tile.cols()) * eb;
    int64_t start = 0, stride = 1;
    for (int d = gm.tile.shape.size() - 1; d >= 0; --d) {
      start += gm.offsets[d] * stride;
      stride *= gm.tile.shape[d];
    }
    start = g.at(start);
    bool contiguous = windowCols >= gm.tile.cols() && !g.viewWidth;
    bool aligned = (start * eb) % t.gmPerfAlign == 0 && (contiguous || rowBytes % t.gmPerfAlign == 0);
    return eta * (aligned ? 1.0 : t.gmMisalignedFactor);
  }

  /// Cycles of one instruction (flag and barrier instructions take none).
  /// Cycles the instruction occupies its pipe; `latency` is added to its
  /// completion only, since a DMA queue keeps several transfers in flight
  /// (CANN's transfer model is latency + bytes / rate, S57, S58).
  double duration(const Instr &i, double &bytes, double &flops, double &latency) const {
    bytes = flops = latency = 0;
    switch (i.kind) {
    case InstrKind::Copy: {
      const PathSpec *path = t.findPath(i.src0.tile.space, i.dst.tile.space);
      // MTE2/MTE3 transfers pay the GM request latency (numbers.mte_latency,
      // [E]); MTE1 and FixPipe their path's (S57, S58).
      bool dma = i.pipe == Pipe::MTE2 || i.pipe == Pipe::MTE3;
      latency = dma || !path ? t.mteLatency : path->latency;
      if (i.src0.tile.space == Space::GM) {
        int64_t n = validElements(i.src0, i.transpose ? i.cols : i.rows,
                                  i.transpose ? i.rows : i.cols);
        bytes = n * i.src0.tile.elementBytes();
        if (!bytes)
          return 0;
        return bytes / (readRate[i.src0.tile.gmArg] *
                        gmEfficiency(i.src0, bytes, i.transpose ? i.rows : i.cols));
      }
      if (i.dst.tile.space == Space::GM) {
        int64_t n = validElements(i.dst, i.rows, i.cols);
        bytes = n * i.dst.tile.elementBytes();
        if (!bytes)
          return 0;
        double rate = s.gm[i.dst.tile.gmArg].workspace ? t.l2BytesPerCycle : hbmShare;
        double gm = bytes / (rate * gmEfficiency(i.dst, bytes, i.cols));
        double egress = path && path->elementsPerCycle ? n / path->elementsPerCycle : 0;
        return std::max(gm, egress);
      }
      double n = double(i.rows) * i.cols;
      bytes = n * i.src0.tile.elementBytes();
      if (path && path->bytesPerCycle)
        return bytes / path->bytesPerCycle;
      if (path && path->elementsPerCycle)
        return n / path->elementsPerCycle;
      return 0;
    }
    case InstrKind::Mmad: {
      int64_t m = i.src0.tile.rows(), k = i.src0.tile.cols(), n = i.src1.tile.cols();
      flops = 2.0 * m * n * k;
      // S56: cycles = ⌈m/16⌉·⌈n/16⌉·⌈k/cube_k⌉, cube_k = MACs per cycle / 256.
      int64_t cubeK = std::max<int64_t>(1, t.cubeMacsPerCycle(i.src0.tile.dtype) / 256);
      return double((m + 15) / 16) * ((n + 15) / 16) * ((k + cubeK - 1) / cubeK);
    }
    case InstrKind::Vector: {
      const Window &big = i.src0.tile.shape.empty() ? i.dst : i.src0;
      double elems = double(big.tile.rows()) * big.tile.cols();
      int64_t eb = std::max(i.dst.tile.elementBytes(),
                            i.src0.tile.shape.empty() ? 0 : i.src0.tile.elementBytes());
      double repeats = std::ceil(elems * eb / t.vectorBytesPerCycle);
      latency = t.vectorLatency;
      double cycles = repeats * (isTranscendental(i.vop) ? t.vectorTranscendentalCpi : 1);
      if (i.vop == VectorOp::ReduceSum || i.vop == VectorOp::ReduceMax)
        cycles += std::ceil(std::log2(std::max(1.0, big.tile.cols() * eb / t.vectorBytesPerCycle)));
      return cycles;
    }
    default:
      return 0;
    }
  }
};

} // namespace

llvm::Expected<KernelEstimate> mlir::attnedit::ascend::estimate(const Schedule &s,
                                                                 const EstimateOptions &options) {
  Model model(s, options);
  model.prepare();
  const TargetDescription &t = model.t;
  KernelEstimate est;
  est.kernel = s.kernel;
  est.coresUsed = model.activeCores;

  size_t n = s.cores.size();
  struct PipeState {
    std::vector<const Instr *> queue;
    size_t head = 0;
    double freeAt = 0; // the next instruction may start
    double doneAt = 0; // every instruction so far has completed
  };
  std::vector<std::array<PipeState, kNumPipes>> pipes(n);
  std::vector<std::map<std::tuple<int, int, int64_t>, double>> flags(n);
  // Cross-core flags of a mix kernel: the times of the sets each core
  // received per (flag, sender), in order, and when each wait passed.
  std::vector<std::map<std::pair<int64_t, size_t>, std::deque<double>>> inbox(n);
  std::vector<std::map<const Instr *, double>> passed(n);
  std::vector<size_t> groupOf(n);
  for (size_t c = 0; c < n; ++c)
    groupOf[c] = c - (s.core == CoreKind::Mix ? c % model.perBlock() : 0);
  bool anySync = false;
  for (size_t c = 0; c < n; ++c)
    for (const Instr &i : s.cores[c].instrs) {
      if (i.kind == InstrKind::SyncAll || i.kind == InstrKind::CrossWait) {
        anySync = true;
        for (auto &p : pipes[c])
          p.queue.push_back(&i);
      } else {
        pipes[c][static_cast<int>(i.pipe)].queue.push_back(&i);
      }
    }
  if (anySync && s.blockDim > model.activeCores)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "%s: sync_all with %lld blocks on %lld cores would deadlock",
                                   s.kernel.c_str(), (long long)s.blockDim,
                                   (long long)model.activeCores);

  std::vector<double> blockFinish(n, 0), blockHbm(n, 0);
  while (true) {
    bool progress = false, pending = false;
    for (size_t c = 0; c < n; ++c)
      for (int p = 0; p < kNumPipes; ++p) {
        PipeState &ps = pipes[c][p];
        while (ps.head < ps.queue.size()) {
          const Instr &i = *ps.queue[ps.head];
          if (i.kind == InstrKind::SyncAll)
            break;
          double start = ps.freeAt, dur = 0;
          if (i.kind == InstrKind::WaitFlag) {
            auto key = std::make_tuple((int)i.flagSrc, (int)i.flagDst, i.event);
            auto it = flags[c].find(key);
            if (it == flags[c].end())
              break;
            start = std::max(start, it->second + t.flagLatency);
            flags[c].erase(it);
          } else if (i.kind == InstrKind::SetFlag) {
            // Fires when every earlier instruction of its pipe completed.
            flags[c][std::make_tuple((int)i.flagSrc, (int)i.flagDst, i.event)] = ps.doneAt;
          } else if (i.kind == InstrKind::CrossSet) {
            // Mode 2 (S23): the AIC's set reaches its AIVs, an AIV's the AIC.
            size_t g = groupOf[c];
            for (size_t m = 0; m < (size_t)model.perBlock() && g + m < n; ++m)
              if ((c == g) != (m == 0))
                inbox[g + m][{i.event, c - g}].push_back(ps.doneAt);
          } else if (i.kind == InstrKind::CrossWait) {
            // The scalar stalls (S23): no later instruction of any pipe of
            // this core starts before the set(s) plus the flag latency.
            auto it = passed[c].find(&i);
            if (it == passed[c].end()) {
              size_t g = groupOf[c];
              std::vector<std::deque<double> *> boxes;
              bool ready = true;
              for (size_t m = 0; m < (size_t)model.perBlock() && g + m < n; ++m) {
                if ((c == g) == (m == 0))
                  continue;
                std::deque<double> &box = inbox[c][{i.event, m}];
                ready &= !box.empty();
                boxes.push_back(&box);
              }
              if (!ready)
                break;
              double at = 0;
              for (std::deque<double> *box : boxes) {
                at = std::max(at, box->front());
                box->pop_front();
              }
              it = passed[c].emplace(&i, at + t.crossCoreLatency).first;
            }
            start = std::max(start, it->second);
          } else if (i.kind == InstrKind::Barrier) {
            start = std::max(start, ps.doneAt);
          } else {
            double bytes, flops, latency;
            dur = model.duration(i, bytes, flops, latency);
            ps.doneAt = std::max(ps.doneAt, start + dur + latency);
            PipeUsage &u = est.usage[p];
            u.busyCycles += dur;
            u.instrs += 1;
            u.bytes += bytes;
            est.flops += flops;
            blockHbm[c] += model.hbmBytes(i, bytes);
            if (i.src0.tile.space == Space::GM || i.dst.tile.space == Space::GM)
              est.gmBytes += bytes;
            const Window &gmSide = i.src0.tile.space == Space::GM ? i.src0 : i.dst;
            if (i.kind == InstrKind::Copy && gmSide.tile.space == Space::GM &&
                s.gm[gmSide.tile.gmArg].workspace)
              est.workspaceBytes += bytes;
            if (options.trace && dur > 0)
              est.trace.push_back({(int64_t)c, (Pipe)p, start, dur, &i});
          }
          ps.freeAt = start + dur;
          ps.doneAt = std::max(ps.doneAt, ps.freeAt);
          blockFinish[c] = std::max(blockFinish[c], ps.doneAt);
          ++ps.head;
          progress = true;
        }
        if (ps.head < ps.queue.size())
          pending = true;
      }
    if (!pending)
      break;
    // sync_all releases when every pipe of every core is at its marker.
    bool allAtSync = true;
    double meet = 0;
    for (size_t c = 0; c < n; ++c)
      for (PipeState &ps : pipes[c]) {
        bool at = ps.head < ps.queue.size() && ps.queue[ps.head]->kind == InstrKind::SyncAll;
        bool done = ps.head >= ps.queue.size();
        allAtSync &= at || done;
        meet = std::max(meet, ps.doneAt);
      }
    if (allAtSync) {
      for (size_t c = 0; c < n; ++c)
        for (PipeState &ps : pipes[c]) {
          if (ps.head < ps.queue.size())
            ++ps.head;
          ps.freeAt = ps.doneAt = meet + t.syncAllLatency;
        }
      continue;
    }
    if (!progress)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "%s: the cost model found a wait no set can satisfy "
                                     "(run the simulator for details)",
                                     s.kernel.c_str());
  }

  // Each pipe moves GM data at the core's full share, but MTE2, MTE3 and FIX
  // share it (S34): a block takes at least its HBM bytes at that share.
  // A mix kernel's AIC and AIVs of one block run side by side and share
  // its GM bandwidth.
  std::map<size_t, std::pair<double, double>> groups; // finish, HBM bytes
  for (size_t c = 0; c < n; ++c) {
    auto &[finish, hbm] = groups[groupOf[c]];
    finish = std::max(finish, blockFinish[c]);
    hbm += blockHbm[c];
  }
  for (auto &[g, fh] : groups)
    fh.first = std::max(fh.first, fh.second / model.hbmShare);
  // Blocks beyond the physical cores run after earlier blocks on their core.
  std::vector<double> coreTime(std::max<int64_t>(1, model.activeCores), 0);
  if (options.representative) {
    double worst = 0;
    for (auto &[g, fh] : groups)
      worst = std::max(worst, fh.first);
    int64_t waves = (s.blockDim + model.activeCores - 1) / model.activeCores;
    est.cycles = worst * waves * options.timeScale;
  } else {
    for (auto &[g, fh] : groups)
      coreTime[s.cores[g].block % model.activeCores] += fh.first;
    est.cycles = *std::max_element(coreTime.begin(), coreTime.end());
  }
  double scale = model.scale * options.timeScale;
  for (PipeUsage &u : est.usage) {
    u.busyCycles *= scale;
    u.bytes *= scale;
    u.instrs = static_cast<int64_t>(u.instrs * scale);
  }
  est.flops *= scale;
  est.gmBytes *= scale;
  est.workspaceBytes *= scale;
  est.seconds = est.cycles / t.freqHz + t.launchSeconds;
  double best = -1;
  for (int p = 0; p < kNumPipes; ++p) {
    // Cores of a block that have pipe p (a mix block: V on each AIV).
    int64_t having = 0;
    for (int64_t m = 0; m < model.perBlock(); ++m)
      having += t.pipeAvailable(s.core != CoreKind::Mix ? s.core
                                : m == 0                 ? CoreKind::AIC
                                                         : CoreKind::AIV,
                                static_cast<Pipe>(p));
    est.utilisation[p] = est.cycles > 0 ? est.usage[p].busyCycles /
                                              (est.cycles * model.activeCores * std::max<int64_t>(1, having))
                                        : 0;
    if (p != static_cast<int>(Pipe::S) && est.utilisation[p] > best) {
      best = est.utilisation[p];
      est.bound = static_cast<Pipe>(p);
    }
  }
  for (const GmTensor &g : s.gm)
    if (!g.workspace) // scratch in L2, not compulsory HBM traffic
      est.uniqueGmBytes += g.numel() * dtypeBytes(g.dtype);
  DType cubeType = DType::BF16;
  for (const CoreProgram &p : s.cores)
    for (const Instr &i : p.instrs)
      if (i.kind == InstrKind::Mmad)
        cubeType = i.src0.tile.dtype;
  double peak = t.cubePeakFlops(cubeType);
  est.rooflineSeconds = std::max(peak > 0 ? est.flops / peak : 0.0,
                                 est.uniqueGmBytes / t.hbmBytesPerSecond);
  est.cubePeakFraction = peak > 0 && est.seconds > 0 ? est.flops / peak / est.seconds : 0;
  return est;
}

llvm::Expected<std::vector<Sensitivity>>
mlir::attnedit::ascend::sensitivity(const Schedule &s, const KernelEstimate &base) {
  std::vector<Sensitivity> out;
  for (const std::string &name : s.target->estimatedNumbers()) {
    Sensitivity row{name, 0, 0};
    for (double factor : {0.5, 1.5}) {
      TargetDescription changed = *s.target;
      changed.scaleNumber(name, factor);
      EstimateOptions options;
      options.target = &changed;
      llvm::Expected<KernelEstimate> e = estimate(s, options);
      if (!e)
        return e.takeError();
      (factor < 1 ? row.low : row.high) = e->seconds / base.seconds - 1;
    }
    out.push_back(row);
  }
  std::sort(out.begin(), out.end(), [](const Sensitivity &a, const Sensitivity &b) {
    return std::max(std::abs(a.low), std::abs(a.high)) > std::max(std::abs(b.low), std::abs(b.high));
  });
  return out;
}

json::Object KernelEstimate::toJSON() const {
  json::Object util, busy;
  for (int p = 0; p < kNumPipes; ++p) {
    if (usage[p].instrs == 0)
      continue;
    util[stringifyPipe(static_cast<Pipe>(p))] = utilisation[p];
    busy[stringifyPipe(static_cast<Pipe>(p))] = usage[p].busyCycles;
  }
  return json::Object{{"kernel", kernel},
                      {"seconds", seconds},
                      {"cycles", cycles},
                      {"cores", coresUsed},
                      {"bound", stringifyPipe(bound)},
                      {"utilisation", std::move(util)},
                      {"busy_cycles", std::move(busy)},
                      {"flops", flops},
                      {"gm_bytes", gmBytes},
                      {"workspace_bytes", workspaceBytes},
                      {"unique_gm_bytes", uniqueGmBytes},
                      {"roofline_seconds", rooflineSeconds},
                      {"cube_peak_fraction", cubePeakFraction}};
}

json::Value mlir::attnedit::ascend::chromeTrace(const Schedule &s, const KernelEstimate &est) {
  double usPerCycle = 1e6 / s.target->freqHz;
  json::Array events;
  for (size_t c = 0; c < s.cores.size(); ++c) {
    events.push_back(json::Object{{"name", "process_name"}, {"ph", "M"}, {"pid", (int64_t)c},
                                  {"args", json::Object{{"name", (s.kernel + " block " +
                                                                  std::to_string(s.cores[c].block))}}}});
    for (int p = 0; p < kNumPipes; ++p)
      events.push_back(json::Object{{"name", "thread_name"}, {"ph", "M"}, {"pid", (int64_t)c},
                                    {"tid", (int64_t)p},
                                    {"args", json::Object{{"name", stringifyPipe((Pipe)p).upper()}}}});
  }
  for (const TraceEvent &e : est.trace) {
    std::string name = e.instr->kind == InstrKind::Mmad     ? "mmad"
                       : e.instr->kind == InstrKind::Vector ? vectorOpName(e.instr->vop).str()
                       : (std::string("copy ") + stringifySpace(e.instr->src0.tile.space).str() +
                          "->" + stringifySpace(e.instr->dst.tile.space).str());
    events.push_back(json::Object{{"name", name},
                                  {"cat", stringifyPipe(e.pipe)},
                                  {"ph", "X"},
                                  {"pid", e.core},
                                  {"tid", (int64_t)e.pipe},
                                  {"ts", e.start * usPerCycle},
                                  {"dur", e.duration * usPerCycle},
                                  {"args", json::Object{{"where", s.where(*e.instr).str()}}}});
  }
  return json::Object{{"traceEvents", std::move(events)}, {"displayTimeUnit", "ns"}};
}
