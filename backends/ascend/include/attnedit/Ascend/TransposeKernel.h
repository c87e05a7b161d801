//===- TransposeKernel.h - tile transposes on the Vector unit -*- C++ -*-===//
//
// The training step's backward moves data across the last axis: weight
// gradients are dYᵀ·X and dX = dY·W (autodiff writes the transposes out),
// attention's backward reads Kᵀ, Pᵀ and Vᵀ, and reductions over a leading
// axis (a weight gradient's sum over tokens, repeat_kv's VJP summing a
// group's heads, the sinks' per-head sum, the loss's mean over rows) sum
// down columns. Both go through UB tiles transposed by `vtranspose`
// (Ascend C TransDataTo5HD, HIVM vtranspose, S37).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_TRANSPOSEKERNEL_H
#define ATTNEDIT_ASCEND_TRANSPOSEKERNEL_H

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/TargetDescription.h"

#include "mlir/IR/Builders.h"

namespace mlir::attnedit::ascend {

/// [batch, rows, cols] -> [batch, cols, rows] (GM, f32).
struct TransposeProblem {
  int64_t batch = 1, rows = 0, cols = 0;
};

/// [batch, rows, cols] -> [batch, cols]: the sum over the middle axis,
/// times `factor`.
struct ColumnSumProblem {
  int64_t batch = 1, rows = 0, cols = 0;
  double factor = 1;
};

/// The UB tile edge the kernels use (a multiple of 8 f32 values, one 32-byte
/// block, up to 64), for an extent `n`.
int64_t transposeTileEdge(int64_t n);

/// Tiles of tr x tc, dealt round-robin to the vector cores, each loaded
/// (MTE2), transposed (V) and stored (MTE3) through two UB slots per stream.
KernelOp buildTransposeKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                              const TransposeProblem &p, const TargetDescription &t);

/// One task per (batch, column chunk): row chunks stream through two UB
/// slots, each transposed and row-reduced (vreduce) into a running column;
/// the column is transposed back into a row and stored.
KernelOp buildColumnSumKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                              const ColumnSumProblem &p, const TargetDescription &t);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_TRANSPOSEKERNEL_H
