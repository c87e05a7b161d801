//===- Simulator.cpp - functional simulator with happens-before checks ----===//
//
// Memory is bytes (on-chip per core and space, GM per tensor) so aliasing
// and layouts are exact. Shadow cells track the last write and the latest
// read per pipe: per 32-byte block on chip (every legal on-chip window is
// 32-byte granular, S19) and per element in GM (tiles of different cores
// may share a 32-byte block of a row). The execution order is a sweep over
// the pipes taking, per pipe, the next instruction if its dependencies are
// met.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/Simulator.h"
#include "attnedit/Ascend/Numerics.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <map>
#include <tuple>

using namespace mlir::attnedit::ascend;

namespace {

/// The cores of one block that order each other with cross-core flags: one
/// (AIC, AIV or coupled kernels) or a mix kernel's AIC and its AIVs. Clocks
/// run over every pipe of every core of the group ("slot" = member · pipes
/// + pipe); different groups are ordered only by sync_all.
constexpr int kMaxGroupCores = 3;
constexpr int kSlots = kMaxGroupCores * kNumPipes;
using Clock = std::array<uint32_t, kSlots>;

/// Shadow of the last write and of the reads since: on-chip cells only see
/// their own core (N = pipes), GM cells every core of the group (N = slots).
template <int N> struct CellT {
  const Instr *writer = nullptr;
  int32_t wCore = -1;
  uint32_t wPhase = 0, wEpoch = 0;
  uint8_t wSlot = 0;
  // Latest read per reader slot since the last write; rGroup is the
  // readers' group, or -2 when several groups read (only GM).
  std::array<uint32_t, N> rEpoch{};
  std::array<const Instr *, N> reader{};
  int32_t rGroup = -1;
  uint32_t rPhase = 0;
  /// The clock slot of reader index q for a core that is group member m.
  static int clockSlot(int m, int q) { return N == kSlots ? q : m * kNumPipes + q; }
  static int readerIndex(int m, int pipe) { return N == kSlots ? m * kNumPipes + pipe : pipe; }
};
using Cell = CellT<kNumPipes>;
using GmCell = CellT<kSlots>;

struct Flag {
  Clock clock;
  const Instr *setter;
};

/// A cross_set on its way to a receiving core.
struct CrossFlag {
  Clock clock;
  const Instr *setter;
};

struct Core {
  int64_t block;
  CoreKind kind = CoreKind::AIC;
  int group = 0, member = 0; // group: index of the block's first core
  std::array<Clock, kNumPipes> vc{};
  std::array<uint32_t, kNumPipes> count{};
  std::array<std::vector<uint8_t>, kNumSpaces> mem;
  std::array<std::vector<Cell>, kNumSpaces> shadow;
  std::map<std::tuple<int, int, int64_t>, Flag> flags;
  std::array<std::vector<const Instr *>, kNumPipes> queue;
  std::array<size_t, kNumPipes> head{};
  /// Received cross-core sets per (flag id, sending member), in order.
  std::map<std::pair<int64_t, int>, std::deque<CrossFlag>> inbox;
  /// cross_wait instances already satisfied: the clock every pipe joins.
  std::map<const Instr *, Clock> passed;

  int slot(int pipe) const { return member * kNumPipes + pipe; }
};

std::string pipeName(Pipe p) { return stringifyPipe(p).upper(); }
std::string spaceName(Space s) { return stringifySpace(s).upper(); }

} // namespace

struct Simulator::Impl {
  const Schedule &s;
  const TargetDescription &t;
  std::vector<std::vector<uint8_t>> gm;
  std::vector<std::vector<GmCell>> gmShadow;
  std::vector<Core> cores;
  uint32_t phase = 0;
  const Instr *failed = nullptr;
  Instr resolvedCopy; // the last indexed copy, its window moved
  int64_t executed = 0;
  std::map<std::string, int64_t> pathBytes;

  explicit Impl(const Schedule &s) : s(s), t(*s.target) {
    for (const GmTensor &g : s.gm) {
      gm.emplace_back(g.storage() * dtypeBytes(g.dtype), 0);
      gmShadow.emplace_back(g.storage());
    }
  }

  //===--------------------------------------------------------------------===//
  // Errors
  //===--------------------------------------------------------------------===//

  llvm::Error error(const Core &c, const Instr &i, const llvm::Twine &msg) {
    failed = &i;
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        llvm::formatv("{0}: {1}: {2} ({3}): {4}", s.kernel, coreName(&c - cores.data()),
                      s.where(i), pipeName(i.pipe), msg.str())
            .str());
  }

  //===--------------------------------------------------------------------===//
  // Element access
  //===--------------------------------------------------------------------===//

  static float load(const uint8_t *p, DType d) {
    if (d == DType::F32) {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    uint16_t h;
    std::memcpy(&h, p, 2);
    return d == DType::F16 ? halfToFloat(h) : bf16ToFloat(h);
  }
  static void store(uint8_t *p, DType d, float v) {
    if (d == DType::F32) {
      std::memcpy(p, &v, 4);
      return;
    }
    uint16_t h = d == DType::F16 ? floatToHalf(v) : floatToBF16(v);
    std::memcpy(p, &h, 2);
  }

  /// Where element (r, c) of a window lives: a byte pointer and its shadow
  /// cell, or null when it is outside a GM tensor.
  struct Loc {
    uint8_t *byte = nullptr;
    Cell *cell = nullptr;
    GmCell *gmCell = nullptr;
  };

  Loc locate(Core &c, const Window &w, int64_t r, int64_t col) {
    const TileRef &tile = w.tile;
    int64_t rank = tile.shape.size();
    int64_t rr = w.offsets[rank - 2] + r, cc = w.offsets[rank - 1] + col;
    int64_t eb = tile.elementBytes();
    if (tile.space == Space::GM) {
      if (rr >= tile.rows() || cc >= tile.cols() || rr < 0 || cc < 0)
        return {};
      int64_t index = 0;
      for (int64_t d = 0; d < rank - 2; ++d)
        index = index * tile.shape[d] + w.offsets[d];
      index = s.gm[tile.gmArg].at((index * tile.rows() + rr) * tile.cols() + cc);
      return {gm[tile.gmArg].data() + index * eb, nullptr, &gmShadow[tile.gmArg][index]};
    }
    int s = static_cast<int>(tile.space);
    if (c.mem[s].empty()) {
      c.mem[s].assign(t.buffer(tile.space).bytes, 0);
      c.shadow[s].resize(t.buffer(tile.space).bytes / kBlockBytes + 1);
    }
    int64_t addr = tile.offset + elementIndex(tile.layout, tile.rows(), tile.cols(), eb, false, rr, cc) * eb;
    return {c.mem[s].data() + addr, &c.shadow[s][addr / kBlockBytes], nullptr};
  }

  //===--------------------------------------------------------------------===//
  // Static checks of one instruction
  //===--------------------------------------------------------------------===//

  llvm::Error checkTile(Core &c, const Instr &i, const Window &w, int64_t rows, int64_t cols,
                        llvm::StringRef role) {
    const TileRef &tile = w.tile;
    int64_t rank = tile.shape.size();
    if (static_cast<int64_t>(w.offsets.size()) != rank || rank < 2)
      return error(c, i, role + " window does not index every dimension");
    if (tile.space == Space::GM) {
      for (int64_t d = 0; d < rank - 2; ++d)
        if (w.offsets[d] < 0 || w.offsets[d] >= tile.shape[d])
          return error(c, i, llvm::formatv("{0} GM index {1} of dimension {2} is out of [0, {3})",
                                           role, w.offsets[d], d, tile.shape[d]));
      if (w.offsets[rank - 2] < 0 || w.offsets[rank - 1] < 0)
        return error(c, i, role + " GM window starts at a negative offset");
      return llvm::Error::success();
    }
    const BufferSpec &spec = t.buffer(tile.space);
    if (tile.offset < 0 || tile.offset + tile.bytes() > spec.bytes)
      return error(c, i, llvm::formatv("capacity overflow: {0} {1} tile needs bytes [{2}, {3}) of "
                                       "{4}, which has {5} on {6}",
                                       role, spaceName(tile.space), tile.offset,
                                       tile.offset + tile.bytes(), spaceName(tile.space),
                                       spec.bytes, t.name));
    if (tile.offset % spec.align)
      return error(c, i, llvm::formatv("misaligned {0} {1} tile at byte {2}: {1} needs {3}-byte "
                                       "alignment on {4}",
                                       role, spaceName(tile.space), tile.offset, spec.align, t.name));
    int64_t r0 = w.offsets[0], c0 = w.offsets[1];
    if (r0 < 0 || c0 < 0 || r0 + rows > tile.rows() || c0 + cols > tile.cols())
      return error(c, i, llvm::formatv("{0} window [{1}:{2}, {3}:{4}] is outside its {5}x{6} tile",
                                       role, r0, r0 + rows, c0, c0 + cols, tile.rows(), tile.cols()));
    int64_t rowStep, colStep;
    windowGranule(tile.layout, tile.elementBytes(), false, rowStep, colStep);
    if (r0 % rowStep || c0 % colStep)
      return error(c, i, llvm::formatv("misaligned {0} window at ({1}, {2}) of a {3} tile: offsets "
                                       "must be multiples of {4}x{5}",
                                       role, r0, c0, stringifyLayout(tile.layout), rowStep, colStep));
    return llvm::Error::success();
  }

  llvm::Error checkStatic(Core &c, const Instr &i) {
    if (!t.pipeAvailable(c.kind, i.pipe))
      return error(c, i, llvm::formatv("pipe {0} does not exist on a {1} core of {2}",
                                       pipeName(i.pipe), stringifyCoreKind(c.kind), t.name));
    switch (i.kind) {
    case InstrKind::Copy: {
      const PathSpec *path = t.findPath(i.src0.tile.space, i.dst.tile.space);
      if (!path)
        return error(c, i, llvm::formatv("no path {0} -> {1} on {2}", spaceName(i.src0.tile.space),
                                         spaceName(i.dst.tile.space), t.name));
      if (path->pipe != i.pipe)
        return error(c, i, llvm::formatv("{0} -> {1} runs on {2} on {3}",
                                         spaceName(i.src0.tile.space), spaceName(i.dst.tile.space),
                                         pipeName(path->pipe), t.name));
      if (i.transpose && i.pipe != Pipe::MTE1)
        return error(c, i, "only MTE1 transposes");
      if (llvm::Error e = checkTile(c, i, i.src0, i.transpose ? i.cols : i.rows,
                                    i.transpose ? i.rows : i.cols, "source"))
        return e;
      return checkTile(c, i, i.dst, i.rows, i.cols, "destination");
    }
    case InstrKind::Mmad: {
      const TileRef &a = i.src0.tile, &b = i.src1.tile, &d = i.dst.tile;
      if (a.space != Space::L0A || b.space != Space::L0B || d.space != Space::L0C)
        return error(c, i, "mmad reads L0A and L0B and writes L0C");
      if (a.cols() != b.rows() || a.rows() != d.rows() || b.cols() != d.cols())
        return error(c, i, "mmad shapes do not chain");
      if (!t.cubeMacsPerCycle(a.dtype))
        return error(c, i, llvm::formatv("the {0} Cube has no {1} mode", t.name, dtypeName(a.dtype)));
      for (const Window *w : {&i.src0, &i.src1, &i.dst})
        if (llvm::Error e = checkTile(c, i, *w, w->tile.rows(), w->tile.cols(), "mmad operand"))
          return e;
      return llvm::Error::success();
    }
    case InstrKind::Vector:
      for (const Window *w : {&i.src0, &i.src1, &i.dst}) {
        if (w->tile.shape.empty())
          continue;
        if (w->tile.space != Space::UB)
          return error(c, i, "vector operands live in UB (S3)");
        if (llvm::Error e = checkTile(c, i, *w, w->tile.rows(), w->tile.cols(), "vector operand"))
          return e;
      }
      return llvm::Error::success();
    case InstrKind::SetFlag:
    case InstrKind::WaitFlag:
      if (i.event < 0 || i.event >= t.eventsPerPipePair)
        return error(c, i, llvm::formatv("event {0} is outside [0, {1}) on {2}", i.event,
                                         t.eventsPerPipePair, t.name));
      if (!t.pipeAvailable(c.kind, i.flagSrc) || !t.pipeAvailable(c.kind, i.flagDst))
        return error(c, i, "flag between pipes this core does not have");
      return llvm::Error::success();
    case InstrKind::CrossSet:
    case InstrKind::CrossWait:
      if (s.core != CoreKind::Mix)
        return error(c, i, "cross-core flags synchronise the cores of a mix kernel's block");
      if (i.event < 0 || i.event >= t.crossCoreFlags)
        return error(c, i, llvm::formatv("cross-core flag {0} is outside [0, {1}) on {2}", i.event,
                                         t.crossCoreFlags, t.name));
      if (i.kind == InstrKind::CrossSet && i.pipe == Pipe::S)
        return error(c, i, "cross_set follows a data pipe, not the scalar pipe (S23)");
      return llvm::Error::success();
    default:
      return llvm::Error::success();
    }
  }

  //===--------------------------------------------------------------------===//
  // Happens-before
  //===--------------------------------------------------------------------===//

  /// Whether the write recorded in `cell` is ordered before an access by
  /// `c` on pipe `p`.
  template <int N> bool writeOrdered(const Core &c, int p, const CellT<N> &cell) const {
    if (!cell.writer)
      return true;
    if (cores[cell.wCore].group != c.group)
      return cell.wPhase < phase;
    return c.vc[p][cell.wSlot] >= cell.wEpoch;
  }

  /// "block 3 AIV 1" for the message of a cross-core race.
  std::string coreName(int slotCore) const {
    const Core &o = cores[slotCore];
    std::string name = "block " + std::to_string(o.block);
    if (s.core == CoreKind::Mix)
      name += o.member == 0 ? " AIC" : " AIV " + std::to_string(o.member - 1);
    return name;
  }

  std::string hint(const Core &c, int fromSlot, Pipe to) const {
    Pipe from = static_cast<Pipe>(fromSlot % kNumPipes);
    if (fromSlot / kNumPipes != c.member)
      return "missing cross_set / cross_wait between the block's cores (S23): " +
             coreName(c.group + fromSlot / kNumPipes) + " must signal after its " +
             stringifyPipe(from).upper() + " access and this core wait for it";
    if (from == to)
      return "missing ascend.barrier " + stringifyPipe(from).str() + " (same-pipe order, S55)";
    return "missing set_flag/wait_flag " + stringifyPipe(from).str() + " -> " +
           stringifyPipe(to).str();
  }

  template <int N>
  llvm::Error checkRead(Core &c, int ci, const Instr &i, const CellT<N> &cell, Space space) {
    int p = static_cast<int>(i.pipe);
    // Kernel scratch holds nothing until a core of the kernel writes it: a
    // read of it first means a consumer ran ahead of its producer.
    if (space == Space::GM && !cell.writer && i.kind == InstrKind::Copy &&
        s.gm[i.src0.tile.gmArg].workspace)
      return error(c, i, "reads workspace bytes that no core has written yet: the producer's "
                         "write is not ordered before this read (missing cross_wait, S23, or a "
                         "sync_all between blocks)");
    if (!writeOrdered(c, p, cell)) {
      if (cores[cell.wCore].group != c.group)
        return error(c, i, llvm::formatv("reads {0} written by block {1} ({2}) without a sync_all "
                                         "between the cores",
                                         spaceName(space), cores[cell.wCore].block,
                                         s.where(*cell.writer)));
      std::string who = cell.wCore == ci ? "" : " on " + coreName(cell.wCore);
      return error(c, i, llvm::formatv("read before signalled write: {0} bytes written by {1} "
                                       "({2}{3}) are not ordered before this read; {4}",
                                       spaceName(space), s.where(*cell.writer),
                                       pipeName(static_cast<Pipe>(cell.wSlot % kNumPipes)), who,
                                       hint(c, cell.wSlot, i.pipe)));
    }
    return llvm::Error::success();
  }

  template <int N>
  llvm::Error checkWrite(Core &c, int ci, const Instr &i, const CellT<N> &cell, Space space) {
    int p = static_cast<int>(i.pipe);
    if (cell.rGroup >= 0 && cell.rGroup != c.group && cell.rPhase == phase)
      return error(c, i, llvm::formatv("writes {0} read by block {1} without a sync_all between "
                                       "the cores",
                                       spaceName(space), cores[cell.rGroup].block));
    if (cell.rGroup == -2 && cell.rPhase == phase)
      return error(c, i, llvm::formatv("writes {0} read by other blocks without a sync_all between "
                                       "the cores",
                                       spaceName(space)));
    if (cell.rGroup == c.group)
      for (int q = 0; q < N; ++q) {
        int slot = CellT<N>::clockSlot(c.member, q);
        if (cell.rEpoch[q] && c.vc[p][slot] < cell.rEpoch[q]) {
          std::string who =
              slot / kNumPipes == c.member ? "" : " on " + coreName(c.group + slot / kNumPipes);
          return error(c, i,
                       llvm::formatv("write over a buffer still in use: {0} bytes are read by {1} "
                                     "({2}{3}), which is not ordered before this write; {4}",
                                     spaceName(space), s.where(*cell.reader[q]),
                                     pipeName(static_cast<Pipe>(slot % kNumPipes)), who,
                                     hint(c, slot, i.pipe)));
        }
      }
    if (!writeOrdered(c, p, cell)) {
      if (cores[cell.wCore].group != c.group)
        return error(c, i, llvm::formatv("writes {0} also written by block {1} ({2}) without a "
                                         "sync_all between the cores",
                                         spaceName(space), cores[cell.wCore].block,
                                         s.where(*cell.writer)));
      return error(c, i, llvm::formatv("write after unordered write: {0} bytes written by {1} ({2}); "
                                       "{3}",
                                       spaceName(space), s.where(*cell.writer),
                                       pipeName(static_cast<Pipe>(cell.wSlot % kNumPipes)),
                                       hint(c, cell.wSlot, i.pipe)));
    }
    return llvm::Error::success();
  }

  //===--------------------------------------------------------------------===//
  // Execution
  //===--------------------------------------------------------------------===//

  struct Access {
    Cell *cell;
    GmCell *gmCell;
    Space space;
    bool operator<(const Access &o) const {
      return cell != o.cell ? cell < o.cell : gmCell < o.gmCell;
    }
    bool operator==(const Access &o) const { return cell == o.cell && gmCell == o.gmCell; }
  };
  static Access at(const Loc &l, Space space) { return {l.cell, l.gmCell, space}; }

  template <int N> void recordRead(Core &c, const Instr &i, CellT<N> &cell, uint32_t epoch) {
    int p = static_cast<int>(i.pipe);
    if (cell.rPhase != phase || cell.rGroup == -1) {
      cell.rGroup = c.group;
      cell.rPhase = phase;
      cell.rEpoch.fill(0);
    } else if (cell.rGroup != c.group) {
      cell.rGroup = -2;
    }
    int q = CellT<N>::readerIndex(c.member, p);
    cell.rEpoch[q] = epoch;
    cell.reader[q] = &i;
  }

  template <int N>
  void recordWrite(Core &c, int ci, const Instr &i, CellT<N> &cell, uint32_t epoch) {
    cell.writer = &i;
    cell.wCore = ci;
    cell.wPhase = phase;
    cell.wEpoch = epoch;
    cell.wSlot = static_cast<uint8_t>(c.slot(static_cast<int>(i.pipe)));
    cell.rEpoch.fill(0);
    cell.rGroup = -1;
  }

  /// Checks and records the accesses of one instruction; `reads` and
  /// `writes` are deduplicated cells.
  llvm::Error access(Core &c, int ci, const Instr &i, std::vector<Access> &reads,
                     std::vector<Access> &writes, uint32_t epoch) {
    auto dedupe = [](std::vector<Access> &v) {
      std::sort(v.begin(), v.end());
      v.erase(std::unique(v.begin(), v.end()), v.end());
    };
    dedupe(reads);
    dedupe(writes);
    for (Access &a : reads)
      if (llvm::Error e = a.cell ? checkRead(c, ci, i, *a.cell, a.space)
                                 : checkRead(c, ci, i, *a.gmCell, a.space))
        return e;
    for (Access &a : writes)
      if (llvm::Error e = a.cell ? checkWrite(c, ci, i, *a.cell, a.space)
                                 : checkWrite(c, ci, i, *a.gmCell, a.space))
        return e;
    for (Access &a : reads) {
      if (a.cell)
        recordRead(c, i, *a.cell, epoch);
      else
        recordRead(c, i, *a.gmCell, epoch);
    }
    for (Access &a : writes) {
      if (a.cell)
        recordWrite(c, ci, i, *a.cell, epoch);
      else
        recordWrite(c, ci, i, *a.gmCell, epoch);
    }
    return llvm::Error::success();
  }

  /// An indexed copy with its GM window moved by the index value it reads
  /// now (Instr::index); `indexRead` is that read.
  llvm::Error resolveIndex(Core &c, const Instr &i, Instr &out, std::vector<Access> &indexRead) {
    if (i.index.tile.space != Space::UB || i.index.tile.dtype != DType::F32)
      return error(c, i, "an index tile is an f32 ub buffer");
    if (llvm::Error e = checkTile(c, i, i.index, 1, 1, "index"))
      return e;
    Loc l = locate(c, i.index, 0, 0);
    float v = load(l.byte, DType::F32);
    indexRead.push_back(at(l, Space::UB));
    out = i;
    Window &gm = out.src0.tile.space == Space::GM ? out.src0 : out.dst;
    int64_t dim = i.indexDim, rank = gm.tile.shape.size();
    if (gm.tile.space != Space::GM || dim < 0 || dim >= rank)
      return error(c, i, "an indexed copy's index must move a dimension of its GM side");
    if (!(std::nearbyint(v) == v))
      return error(c, i, llvm::formatv("index value {0} is not a whole number", v));
    int64_t k = static_cast<int64_t>(v), at = gm.offsets[dim] + k;
    int64_t extent = dim == rank - 2 ? gm.tile.rows() : dim == rank - 1 ? gm.tile.cols()
                                                                          : gm.tile.shape[dim];
    if (k < 0 || at >= extent)
      return error(c, i, llvm::formatv("index value {0} moves the GM window to {1} along "
                                       "dimension {2}, outside [0, {3})",
                                       k, at, dim, extent));
    gm.offsets[dim] = at;
    return llvm::Error::success();
  }

  llvm::Error execute(Core &c, int ci, const Instr &original) {
    std::vector<Access> reads, writes;
    Instr &resolved = resolvedCopy; // outlives the call: `failed` may point at it
    bool indexed = original.kind == InstrKind::Copy && original.indexDim >= 0;
    if (indexed)
      if (llvm::Error e = resolveIndex(c, original, resolved, reads))
        return e;
    const Instr &i = indexed ? resolved : original;
    if (llvm::Error e = checkStatic(c, i))
      return e;
    int p = static_cast<int>(i.pipe);
    uint32_t epoch = ++c.count[p];
    ++executed;
    switch (i.kind) {
    case InstrKind::Copy: {
      std::vector<float> values(i.rows * i.cols, 0.0f);
      std::vector<Loc> dst(i.rows * i.cols);
      std::vector<bool> real(i.rows * i.cols, false); // not zero padding
      for (int64_t r = 0; r < i.rows; ++r)
        for (int64_t col = 0; col < i.cols; ++col) {
          Loc src = i.transpose ? locate(c, i.src0, col, r) : locate(c, i.src0, r, col);
          if (src.byte) {
            real[r * i.cols + col] = true;
            values[r * i.cols + col] = load(src.byte, i.src0.tile.dtype);
            reads.push_back(at(src, i.src0.tile.space));
          }
          Loc d = locate(c, i.dst, r, col);
          dst[r * i.cols + col] = d;
          if (d.byte)
            writes.push_back(at(d, i.dst.tile.space));
        }
      if (llvm::Error e = access(c, ci, i, reads, writes, epoch))
        return e;
      int64_t moved = 0;
      for (size_t k = 0; k < values.size(); ++k)
        if (dst[k].byte) {
          store(dst[k].byte, i.dst.tile.dtype, values[k]);
          moved += real[k];
        }
      pathBytes[(stringifySpace(i.src0.tile.space) + "->" + stringifySpace(i.dst.tile.space)).str()] +=
          moved * i.dst.tile.elementBytes();
      return llvm::Error::success();
    }
    case InstrKind::Mmad: {
      int64_t m = i.src0.tile.rows(), k = i.src0.tile.cols(), n = i.src1.tile.cols();
      std::vector<float> a(m * k), b(k * n), acc(m * n);
      std::vector<Loc> out(m * n);
      for (int64_t r = 0; r < m; ++r)
        for (int64_t q = 0; q < k; ++q) {
          Loc l = locate(c, i.src0, r, q);
          a[r * k + q] = load(l.byte, i.src0.tile.dtype);
          reads.push_back(at(l, Space::L0A));
        }
      for (int64_t q = 0; q < k; ++q)
        for (int64_t col = 0; col < n; ++col) {
          Loc l = locate(c, i.src1, q, col);
          b[q * n + col] = load(l.byte, i.src1.tile.dtype);
          reads.push_back(at(l, Space::L0B));
        }
      for (int64_t r = 0; r < m; ++r)
        for (int64_t col = 0; col < n; ++col) {
          Loc l = locate(c, i.dst, r, col);
          out[r * n + col] = l;
          acc[r * n + col] = i.init ? 0.0f : load(l.byte, DType::F32);
          if (!i.init)
            reads.push_back(at(l, Space::L0C));
          writes.push_back(at(l, Space::L0C));
        }
      if (llvm::Error e = access(c, ci, i, reads, writes, epoch))
        return e;
      // S20: products of 16-bit operands accumulate in f32 in L0C.
      for (int64_t r = 0; r < m; ++r)
        for (int64_t q = 0; q < k; ++q) {
          float x = a[r * k + q];
          if (x == 0.0f)
            continue;
          for (int64_t col = 0; col < n; ++col)
            acc[r * n + col] += x * b[q * n + col];
        }
      for (size_t e = 0; e < out.size(); ++e)
        store(out[e].byte, DType::F32, acc[e]);
      return llvm::Error::success();
    }
    case InstrKind::Vector:
      return vector(c, ci, i, epoch);
    default:
      return llvm::Error::success();
    }
  }

  llvm::Error vector(Core &c, int ci, const Instr &i, uint32_t epoch) {
    std::vector<Access> reads, writes;
    int64_t rows = i.dst.tile.rows(), cols = i.dst.tile.cols();
    auto readTile = [&](const Window &w) {
      std::vector<float> v(w.tile.rows() * w.tile.cols());
      for (int64_t r = 0; r < w.tile.rows(); ++r)
        for (int64_t col = 0; col < w.tile.cols(); ++col) {
          Loc l = locate(c, w, r, col);
          v[r * w.tile.cols() + col] = load(l.byte, w.tile.dtype);
          reads.push_back(at(l, Space::UB));
        }
      return v;
    };
    std::vector<float> a, b;
    if (!i.src0.tile.shape.empty())
      a = readTile(i.src0);
    if (!i.src1.tile.shape.empty())
      b = readTile(i.src1);
    std::vector<Loc> out(rows * cols);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t col = 0; col < cols; ++col) {
        out[r * cols + col] = locate(c, i.dst, r, col);
        writes.push_back(at(out[r * cols + col], Space::UB));
      }
    if (llvm::Error e = access(c, ci, i, reads, writes, epoch))
      return e;
    std::vector<float> result(rows * cols);
    int64_t srcCols = i.src0.tile.shape.empty() ? 0 : i.src0.tile.cols();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t col = 0; col < cols; ++col) {
        size_t k = r * cols + col;
        bool rowwise = i.vop == VectorOp::Brcb || i.vop == VectorOp::ReduceSum ||
                       i.vop == VectorOp::ReduceMax || i.vop == VectorOp::Gather ||
                       i.vop == VectorOp::Transpose;
        float x = a.empty() || rowwise ? 0 : a[k];
        float y = b.empty() || i.vop == VectorOp::Gather ? 0 : b[k];
        float v = 0;
        switch (i.vop) {
        case VectorOp::Add: v = x + y; break;
        case VectorOp::Sub: v = x - y; break;
        case VectorOp::Mul: v = x * y; break;
        case VectorOp::Div: v = x / y; break;
        case VectorOp::Max: v = std::max(x, y); break;
        case VectorOp::Exp: v = std::exp(x); break;
        case VectorOp::Sqrt: v = std::sqrt(x); break;
        case VectorOp::Rec: v = 1.0f / x; break;
        case VectorOp::Sin: v = std::sin(x); break;
        case VectorOp::Cos: v = std::cos(x); break;
        case VectorOp::Ln: v = std::log(x); break;
        case VectorOp::Transpose: v = a[col * srcCols + r]; break;
        case VectorOp::Adds: v = x + static_cast<float>(i.scalar); break;
        case VectorOp::Muls: v = x * static_cast<float>(i.scalar); break;
        case VectorOp::Dup: v = static_cast<float>(i.scalar); break;
        case VectorOp::Cast: v = x; break;
        case VectorOp::ReduceSum:
          for (int64_t q = 0; q < srcCols; ++q)
            v += a[r * srcCols + q];
          break;
        case VectorOp::ReduceMax:
          v = -INFINITY;
          for (int64_t q = 0; q < srcCols; ++q)
            v = std::max(v, a[r * srcCols + q]);
          break;
        case VectorOp::Brcb: v = a[r]; break;
        case VectorOp::Gather: {
          int64_t from = static_cast<int64_t>(b[col]);
          if (from < 0 || from >= srcCols)
            return error(c, i, llvm::formatv("gather index {0} outside the {1} source columns",
                                             from, srcCols));
          v = a[r * srcCols + from];
          break;
        }
        }
        result[k] = v;
      }
    for (size_t k = 0; k < out.size(); ++k)
      store(out[k].byte, i.dst.tile.dtype, result[k]);
    return llvm::Error::success();
  }

  /// Runs the head instruction of pipe `p` of core `ci` if it can go.
  /// Returns false when blocked (a wait whose set has not fired, or sync_all).
  llvm::Expected<bool> stepPipe(int ci, int p) {
    Core &c = cores[ci];
    const Instr &i = *c.queue[p][c.head[p]];
    switch (i.kind) {
    case InstrKind::SyncAll:
      return false;
    case InstrKind::SetFlag: {
      if (llvm::Error e = checkStatic(c, i))
        return std::move(e);
      auto key = std::make_tuple((int)i.flagSrc, (int)i.flagDst, i.event);
      auto it = c.flags.find(key);
      if (it != c.flags.end())
        return error(c, i, llvm::formatv("second set_flag {0} -> {1} event {2} before the wait of "
                                         "the first ({3}); the hardware forbids it (S22)",
                                         stringifyPipe(i.flagSrc), stringifyPipe(i.flagDst),
                                         i.event, s.where(*it->second.setter)));
      // Fires once every earlier instruction of its pipe has completed.
      Clock clock = c.vc[p];
      clock[c.slot(p)] = c.count[p];
      c.flags[key] = {clock, &i};
      break;
    }
    case InstrKind::WaitFlag: {
      if (llvm::Error e = checkStatic(c, i))
        return std::move(e);
      auto it = c.flags.find(std::make_tuple((int)i.flagSrc, (int)i.flagDst, i.event));
      if (it == c.flags.end())
        return false;
      for (int q = 0; q < kSlots; ++q)
        c.vc[p][q] = std::max(c.vc[p][q], it->second.clock[q]);
      c.flags.erase(it);
      break;
    }
    case InstrKind::Barrier:
      c.vc[p][c.slot(p)] = c.count[p];
      break;
    case InstrKind::CrossSet: {
      if (llvm::Error e = checkStatic(c, i))
        return std::move(e);
      // Like set_flag: fires once every earlier instruction of its pipe has
      // completed. Mode 2 (S23): the AIC's set reaches each of its AIVs,
      // an AIV's set reaches the AIC.
      Clock clock = c.vc[p];
      clock[c.slot(p)] = c.count[p];
      for (size_t m = 0; m < groupSize(c); ++m) {
        if ((c.member == 0) == (m == 0))
          continue;
        Core &to = cores[c.group + m];
        std::deque<CrossFlag> &box = to.inbox[{i.event, c.member}];
        // S23: "the counter of one flagId can be set at most 16 times".
        if (box.size() >= 16)
          return error(c, i, llvm::formatv("cross_set of flag {0} would be the 17th pending set on "
                                           "{1}; a flag counts at most 16 (S23)",
                                           i.event, coreName(c.group + m)));
        box.push_back({clock, &i});
      }
      break;
    }
    case InstrKind::CrossWait: {
      auto done = c.passed.find(&i);
      if (done == c.passed.end()) {
        if (llvm::Error e = checkStatic(c, i))
          return std::move(e);
        // The AIC's wait needs a set from every AIV; an AIV's, the AIC's.
        std::vector<std::deque<CrossFlag> *> boxes;
        for (size_t m = 0; m < groupSize(c); ++m) {
          if ((c.member == 0) == (m == 0))
            continue;
          auto it = c.inbox.find({i.event, (int)m});
          if (it == c.inbox.end() || it->second.empty())
            return false;
          boxes.push_back(&it->second);
        }
        Clock joined{};
        for (std::deque<CrossFlag> *box : boxes) {
          for (int q = 0; q < kSlots; ++q)
            joined[q] = std::max(joined[q], box->front().clock[q]);
          box->pop_front();
        }
        done = c.passed.emplace(&i, joined).first;
      }
      // S23: the scalar unit stalls, so every later instruction on every
      // pipe is ordered after the set; each pipe joins as it passes.
      for (int q = 0; q < kSlots; ++q)
        c.vc[p][q] = std::max(c.vc[p][q], done->second[q]);
      break;
    }
    default:
      if (llvm::Error e = execute(c, ci, i))
        return std::move(e);
    }
    ++c.head[p];
    return true;
  }

  /// Cores in `c`'s group (its block's AIC and AIVs for a mix kernel).
  size_t groupSize(const Core &c) const {
    size_t n = 1;
    while (c.group + n < cores.size() && cores[c.group + n].group == c.group)
      ++n;
    return n;
  }

  llvm::Error run() {
    for (const auto &[arg, g] : llvm::enumerate(s.gm))
      if (!g.viewFits())
        return llvm::createStringError(
            llvm::inconvertibleErrorCode(),
            "%s: GM argument %zu is bound to columns [%lld, %lld) of %lld-element rows of a "
            "tensor of %lld elements: outside its rows or the tensor",
            s.kernel.c_str(), arg, (long long)g.viewOffset, (long long)(g.viewOffset + g.viewWidth),
            (long long)g.viewPitch, (long long)g.viewElements);
    cores.clear();
    cores.resize(s.cores.size());
    for (size_t ci = 0; ci < s.cores.size(); ++ci) {
      Core &c = cores[ci];
      c.block = s.cores[ci].block;
      c.kind = s.core == CoreKind::Mix ? s.cores[ci].kind : s.core;
      // A mix kernel's programs come as AIC, AIV 0, AIV 1 per block.
      bool joins = s.core == CoreKind::Mix && c.kind == CoreKind::AIV && ci > 0 &&
                   cores[ci - 1].block == c.block;
      c.group = joins ? cores[ci - 1].group : static_cast<int>(ci);
      c.member = static_cast<int>(ci) - c.group;
      if (c.member >= kMaxGroupCores)
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "%s: block %lld has more than %d cores", s.kernel.c_str(),
                                       (long long)c.block, kMaxGroupCores);
      for (const Instr &i : s.cores[ci].instrs) {
        // sync_all and cross_wait hold every pipe of the core (S23, S24).
        if (i.kind == InstrKind::SyncAll || i.kind == InstrKind::CrossWait) {
          for (auto &q : c.queue)
            q.push_back(&i);
        } else {
          c.queue[static_cast<int>(i.pipe)].push_back(&i);
        }
      }
    }
    // Producers first: a missing flag then shows as a read before the
    // signalled write rather than as the mirror-image write-after-read.
    const Pipe order[] = {Pipe::MTE2, Pipe::MTE1, Pipe::M, Pipe::FIX, Pipe::V, Pipe::MTE3, Pipe::S};
    while (true) {
      bool progress = false, pending = false;
      for (size_t ci = 0; ci < cores.size(); ++ci)
        for (Pipe pipe : order) {
          int p = static_cast<int>(pipe);
          Core &c = cores[ci];
          // One instruction per pipe per sweep keeps the pipes abreast, so
          // a missing flag shows where the consumer meets the producer.
          if (c.head[p] < c.queue[p].size()) {
            llvm::Expected<bool> ran = stepPipe(ci, p);
            if (!ran)
              return ran.takeError();
            progress |= *ran;
          }
          pending |= c.head[p] < c.queue[p].size();
        }
      if (!pending)
        break;
      if (progress)
        continue;
      // Every pipe is blocked: either all meet at sync_all, or deadlock.
      bool allAtSync = true;
      for (Core &c : cores)
        for (int p = 0; p < kNumPipes; ++p)
          if (c.head[p] < c.queue[p].size() && c.queue[p][c.head[p]]->kind != InstrKind::SyncAll)
            allAtSync = false;
      if (allAtSync) {
        ++phase;
        // Every pipe of every core meets: each group's clocks join.
        std::map<int, Clock> joined;
        for (Core &c : cores) {
          Clock &all = joined[c.group];
          for (int p = 0; p < kNumPipes; ++p) {
            for (int q = 0; q < kSlots; ++q)
              all[q] = std::max(all[q], c.vc[p][q]);
            all[c.slot(p)] = std::max(all[c.slot(p)], c.count[p]);
          }
        }
        for (Core &c : cores)
          for (int p = 0; p < kNumPipes; ++p) {
            c.vc[p] = joined[c.group];
            if (c.head[p] < c.queue[p].size())
              ++c.head[p];
          }
        continue;
      }
      // Report the root: a blocked wait that no remaining set matches (the
      // other blocked waits only wait on pipes stuck behind it).
      for (int pass = 0; pass < 2; ++pass)
        for (Core &c : cores)
          for (int p = 0; p < kNumPipes; ++p) {
            if (c.head[p] >= c.queue[p].size())
              continue;
            const Instr &i = *c.queue[p][c.head[p]];
            if (i.kind == InstrKind::CrossWait) {
              bool setRemains = false;
              for (size_t m = 0; m < groupSize(c); ++m) {
                const Core &o = cores[c.group + m];
                for (int q = 0; q < kNumPipes; ++q)
                  for (size_t k = o.head[q]; k < o.queue[q].size(); ++k)
                    setRemains |= o.queue[q][k]->kind == InstrKind::CrossSet &&
                                  o.queue[q][k]->event == i.event && &o != &c;
              }
              if (pass == 0 && setRemains)
                continue;
              return error(c, i, llvm::formatv("deadlock: cross_wait of flag {0} waits for a "
                                               "cross_set that no core of the block can still "
                                               "issue",
                                               i.event));
            }
            if (i.kind != InstrKind::WaitFlag)
              continue;
            bool setRemains = false;
            for (int q = 0; q < kNumPipes; ++q)
              for (size_t k = c.head[q]; k < c.queue[q].size(); ++k) {
                const Instr &j = *c.queue[q][k];
                setRemains |= j.kind == InstrKind::SetFlag && j.flagSrc == i.flagSrc &&
                              j.flagDst == i.flagDst && j.event == i.event;
              }
            if (pass == 0 && setRemains)
              continue;
            return error(c, i, llvm::formatv("deadlock: wait_flag {0} -> {1} event {2} waits for "
                                             "a set_flag that no pipe can still issue",
                                             stringifyPipe(i.flagSrc), stringifyPipe(i.flagDst),
                                             i.event));
          }
      for (Core &c : cores)
        for (int p = 0; p < kNumPipes; ++p)
          if (c.head[p] < c.queue[p].size())
            return error(c, *c.queue[p][c.head[p]],
                         "deadlock: sync_all is not reached by every pipe of every core");
    }
    for (Core &c : cores)
      for (auto &[key, box] : c.inbox)
        if (!box.empty())
          return error(c, *box.front().setter,
                       llvm::formatv("cross_set of flag {0} to {1} is never waited before the "
                                     "kernel ends",
                                     key.first, coreName(&c - cores.data())));
    for (Core &c : cores)
      if (!c.flags.empty()) {
        const Instr &i = *c.flags.begin()->second.setter;
        return error(c, i, llvm::formatv("set_flag {0} -> {1} event {2} is never waited before "
                                         "the kernel ends",
                                         stringifyPipe(i.flagSrc), stringifyPipe(i.flagDst),
                                         i.event));
      }
    return llvm::Error::success();
  }
};

Simulator::Simulator(const Schedule &schedule) : impl(std::make_unique<Impl>(schedule)) {}
Simulator::~Simulator() = default;

void Simulator::setTensor(size_t arg, llvm::ArrayRef<float> values) {
  DType d = impl->s.gm[arg].dtype;
  int64_t eb = dtypeBytes(d);
  std::vector<uint8_t> &bytes = impl->gm[arg];
  for (size_t k = 0; k < values.size() && (int64_t)(k * eb) < (int64_t)bytes.size(); ++k)
    Impl::store(bytes.data() + k * eb, d, values[k]);
}

std::vector<float> Simulator::tensor(size_t arg) const {
  DType d = impl->s.gm[arg].dtype;
  int64_t eb = dtypeBytes(d);
  const std::vector<uint8_t> &bytes = impl->gm[arg];
  std::vector<float> out(bytes.size() / eb);
  for (size_t k = 0; k < out.size(); ++k)
    out[k] = Impl::load(bytes.data() + k * eb, d);
  return out;
}

llvm::Error Simulator::run() { return impl->run(); }
const Instr *Simulator::failedInstr() const { return impl->failed; }
int64_t Simulator::executedInstructions() const { return impl->executed; }
std::map<std::string, int64_t> Simulator::bytesPerPath() const { return impl->pathBytes; }
