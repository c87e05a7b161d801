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

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_MOVEKERNEL_H
