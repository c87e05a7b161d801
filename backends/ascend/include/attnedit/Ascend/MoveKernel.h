//===- MoveKernel.h - row moves through UB (MTE2 in, MTE3 out) -*- C++ -*-===//
//
// Data-movement kernels of the attention layout ops: the transpose of the
// two leading dimensions of [A, B, D] (tokens x heads <-> heads x tokens)
// and repeat_kv of [Hkv, T, D] into [Hkv·rep, T, D]. Both send whole rows
// of D values: each output tile of r rows is gathered row by row from GM
// into a UB slot (MTE2) and written back contiguously (MTE3), two slots so
// the next tile loads while this one stores. No Vector work.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_MOVEKERNEL_H
#define ATTNEDIT_ASCEND_MOVEKERNEL_H

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/TargetDescription.h"

#include "mlir/IR/Builders.h"

namespace mlir::attnedit::ascend {

struct MoveProblem {
  enum class Kind { Transpose, RepeatKv } kind = Kind::Transpose;
  /// Transpose: [a, b, cols] -> [b, a, cols]. RepeatKv: [a heads, b tokens,
  /// cols] -> [a·repeats, b, cols].
  int64_t a = 0, b = 0, cols = 0, repeats = 1;
  int64_t inRows() const { return a * b; }
  int64_t outRows() const { return kind == Kind::Transpose ? a * b : a * repeats * b; }
};

/// Output rows per UB tile: a divisor of the output rows that fits two
/// slots in UB; 0 if one row does not fit.
int64_t moveRowsPerTile(const MoveProblem &p, const TargetDescription &t);

/// GM arguments: the input [inRows, cols] and the output [outRows, cols], f32.
KernelOp buildMoveKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                         const MoveProblem &p, int64_t tileRows, const TargetDescription &t);

/// Rows moved by ids the kernel reads on the device (data-dependent
/// addresses: each id is read from UB and moves its copy's GM offset, as
/// Ascend C's GetValue feeding DataCopy, S62):
///  - Gather (the embedding): out[i] = table[ids[i]];
///  - Scatter (cache_write, vLLM's reshape_and_cache with its host-built
///    slot mapping): pool[slots[i]] = rows[i]. The pool is updated in
///    place: the kernel's output holds it on entry and only the addressed
///    rows are written, so only those rows cost.
/// Ids are f32 (whole numbers below 2^24, as ascend.launch converts i32).
struct IndexedMoveProblem {
  enum class Kind { Gather, Scatter } kind = Kind::Gather;
  int64_t rows = 0, cols = 0, tableRows = 0;
};

/// Rows per UB tile: a divisor of `rows` fitting two slots; 0 if one row
/// does not fit.
int64_t indexedMoveRowsPerTile(const IndexedMoveProblem &p, const TargetDescription &t);

/// GM arguments, f32: gather: ids [rows, 1], table [tableRows, cols], out
/// [rows, cols]; scatter: slots [rows, 1], rows [rows, cols], pool
/// [tableRows, cols] (in place).
KernelOp buildIndexedMoveKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                                const IndexedMoveProblem &p, int64_t tileRows,
                                const TargetDescription &t);

/// Column ranges of row-major inputs placed side by side: slice along the
/// last axis (one piece) and concat along it (one piece per input). Each
/// piece moves `width` columns from `srcCol` of its input ([rows, inCols])
/// to `dstCol` of the output ([rows, outCols]) through UB.
struct ColumnPiece {
  int64_t inCols = 0, srcCol = 0, width = 0, dstCol = 0;
};
struct ColumnProblem {
  int64_t rows = 0, outCols = 0;
  llvm::SmallVector<ColumnPiece, 2> pieces;
};
int64_t columnRowsPerTile(const ColumnProblem &p, const TargetDescription &t);
/// GM arguments: one input per piece, then the output.
KernelOp buildColumnKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                           const ColumnProblem &p, int64_t tileRows, const TargetDescription &t);

/// The causal (and sliding-window) mask of scores [batch, tq, tk], the
/// queries being the last tq of tk positions (kernels::causalMask): rows are
/// copied through UB, then the masked run of each row is overwritten from a
/// UB row filled once on the Vector unit: -3e38 (a finite stand-in for
/// -inf; softmax gives exactly 0 for both) or 0 for the mask's VJP.
struct MaskProblem {
  int64_t batch = 0, tq = 0, tk = 0, window = 0;
  bool zeroFill = false;
};

/// Rows per UB tile: a divisor of tq fitting two slots and the fill row.
int64_t maskRowsPerTile(const MaskProblem &p, const TargetDescription &t);

/// GM arguments: the scores [batch·tq, tk] and the result, f32. The masked
/// runs are unrolled per row (their lengths are static).
KernelOp buildMaskKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                         const MaskProblem &p, int64_t tileRows, const TargetDescription &t);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_MOVEKERNEL_H
