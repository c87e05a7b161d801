//===- Schedule.h - a kernel as per-core instruction streams --*- C++ -*-===//
//
// The expanded form of an ascend.kernel: for each block index, the
// instructions its core's scalar unit issues, in program order, each tagged
// with the pipe whose queue executes it and the buffer windows it touches.
// The simulator and the cost model read only this, so tests can build
// schedules by hand and planted bugs are one erased instruction away.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_SCHEDULE_H
#define ATTNEDIT_ASCEND_SCHEDULE_H

#include "attnedit/Ascend/AscendEnums.h"
#include "attnedit/Ascend/TargetDescription.h"
#include "attnedit/Ascend/TileLayout.h"

#include "llvm/ADT/SmallVector.h"

#include <memory>
#include <string>
#include <vector>

namespace mlir::attnedit::ascend {

/// One buffer: a GM tensor (`gmArg` >= 0) or an on-chip tile at a byte
/// offset of its space (the multi-buffer slot already resolved).
struct TileRef {
  Space space = Space::GM;
  int64_t gmArg = -1;
  int64_t offset = 0;
  llvm::SmallVector<int64_t, 3> shape;
  DType dtype = DType::F32;
  Layout layout = Layout::ND;

  int64_t rows() const { return shape[shape.size() - 2]; }
  int64_t cols() const { return shape.back(); }
  int64_t elementBytes() const { return dtypeBytes(dtype); }
  /// Padded bytes, as the capacity check counts them.
  int64_t bytes() const {
    int64_t lead = 1;
    for (size_t i = 0; i + 2 < shape.size(); ++i)
      lead *= shape[i];
    return lead * tileBytes(layout, rows(), cols(), elementBytes(), space == Space::GM);
  }
};

/// A window into a buffer: offsets for every dimension of `tile`.
struct Window {
  TileRef tile;
  llvm::SmallVector<int64_t, 3> offsets;
};

enum class InstrKind { Copy, Mmad, Vector, SetFlag, WaitFlag, Barrier, SyncAll, CrossSet,
                       CrossWait };
enum class VectorOp { Add, Sub, Mul, Div, Max, Exp, Sqrt, Rec, Adds, Muls, Dup, Cast, ReduceSum,
                      ReduceMax, Brcb, Sin, Cos, Gather, Ln, Transpose };
llvm::StringRef vectorOpName(VectorOp op);

struct Instr {
  InstrKind kind = InstrKind::Copy;
  Pipe pipe = Pipe::S;
  VectorOp vop = VectorOp::Add;
  // Copy: src0 -> dst. Mmad: src0 (A) x src1 (B) -> dst (C). Vector: src0
  // [op src1] -> dst, whole tiles.
  Window src0, src1, dst;
  int64_t rows = 0, cols = 0; // copy window, destination orientation
  bool transpose = false;
  /// Copy with a data-dependent offset (a row gather or scatter): when it
  /// executes, element `index` (an f32 UB window) is added to offset
  /// `indexDim` of the GM side (src0 or dst). -1: none.
  Window index;
  int64_t indexDim = -1;
  bool init = false; // mmad overwrites instead of accumulating
  double scalar = 0;
  Pipe flagSrc = Pipe::S, flagDst = Pipe::S;
  int64_t event = 0; // SetFlag/WaitFlag event id; CrossSet/CrossWait flag id
  /// Where the instruction came from: an index into Schedule::locations
  /// ("file:line:col: op") and the op itself, if any.
  uint32_t where = 0;
  const void *origin = nullptr;
};

struct CoreProgram {
  int64_t block = 0;
  std::vector<Instr> instrs;
  /// A mix kernel's programs: AIC (the block's cube core) or AIV (vector
  /// core `sub` of the block); other kernels' programs run on their kind.
  CoreKind kind = CoreKind::AIC;
  int64_t sub = 0;
};

struct GmTensor {
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
  /// Kernel scratch (the cube <-> vector ring of a mix kernel): L2-resident.
  bool workspace = false;
  /// A slice folded into the kernel: the argument is bound to columns
  /// [viewOffset, viewOffset + viewWidth) of each row of a row-major tensor
  /// of `viewElements` elements, `viewPitch` a row, and the kernel's copies
  /// read it there, as an Ascend C kernel takes a GM address inside a wider
  /// tensor and copies bursts with a source stride (S25, S33, S62).
  /// viewWidth 0: a dense tensor of its own.
  int64_t viewWidth = 0, viewPitch = 0, viewOffset = 0, viewElements = 0;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
  /// Elements of the memory the argument is bound to.
  int64_t storage() const { return viewWidth ? viewElements : numel(); }
  /// Where element `f` (row-major in `shape`) lives in that memory.
  int64_t at(int64_t f) const {
    return viewWidth ? (f / viewWidth) * viewPitch + viewOffset + f % viewWidth : f;
  }
  /// Whether a view keeps every element inside its row and the bound tensor.
  bool viewFits() const {
    return !viewWidth || (viewWidth > 0 && viewOffset >= 0 &&
                          viewOffset + viewWidth <= viewPitch && numel() % viewWidth == 0 &&
                          at(numel() - 1) < viewElements);
  }
};

struct Schedule {
  std::string kernel;
  CoreKind core = CoreKind::AIC;
  int64_t blockDim = 1;
  std::shared_ptr<const TargetDescription> target;
  /// How the kernel named its target (a built-in name or a JSON path).
  std::string targetRef;
  std::vector<GmTensor> gm;
  /// One program per block index that was expanded (all, unless the
  /// builder was asked for a subset); a mix kernel has one per core of each
  /// block, the AIC's first.
  std::vector<CoreProgram> cores;
  /// Descriptions of instruction origins; entry 0 is "(unknown)".
  std::vector<std::string> locations{"(unknown)"};

  llvm::StringRef where(const Instr &i) const { return locations[i.where]; }
  uint32_t addLocation(std::string text) {
    locations.push_back(std::move(text));
    return locations.size() - 1;
  }
};

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_SCHEDULE_H
