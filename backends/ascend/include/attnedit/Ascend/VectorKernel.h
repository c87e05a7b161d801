//===- VectorKernel.h - row-wise Vector kernels through UB ----*- C++ -*-===//
//
// Kernels for the element-wise and row-wise ops of a decoder layer (RMSNorm,
// SiLU·mul, residual add, softmax) on the vector cores, in the Ascend C
// CopyIn / Compute / CopyOut shape with two UB slots per stream so MTE2,
// V and MTE3 overlap (S17: InitBuffer(que, 2, len)).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_VECTORKERNEL_H
#define ATTNEDIT_ASCEND_VECTORKERNEL_H

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/TargetDescription.h"

#include "mlir/IR/Builders.h"

namespace mlir::attnedit::ascend {

enum class RowOp {
  Add, Mul, Silu, SiluMul, RmsNorm, Softmax, Rope, Scale, BiasAdd, Sigmoid,
  // The training step's backward-only ops (their closed forms as the
  // reference kernels compute them, runtime/lib/execution/Kernels.cpp):
  SiluGrad,          // (x, dy) -> dy·s·(1 + x·(1 - s)), s = sigmoid(x)
  SigmoidGrad,       // (y, dy) -> dy·y·(1 - y)
  SoftmaxGrad,       // (y, dy) -> y·(dy - Σ y·dy)
  RmsNormGrad,       // (x, dy; weight w) -> r·w·dy - x·r³/d·Σ dy·w·x, r = 1/rms(x)
  RmsNormWeightRows, // (x, dy) -> dy·x·r, summed over rows by a column-sum kernel
  SoftmaxSinks,      // (x, sink [rows, 1]) -> exp(x - m) / (Σ exp(x - m) + exp(sink - m))
  SinkRows,          // (p, dy) -> [rows, 1]: -(1 - Σ p)·Σ dy·p, summed per head
  KlRows,            // (teacher, student) -> [rows, 1]: Σ p·(log p - log q) at `temperature`
  KlGrad,            // (teacher, student; scalar g [1, 1]) -> g·factor·(q - p)
  RowSum,            // x -> [rows, 1]
  BroadcastCol,      // x [rows, 1] -> [rows, cols]
};
llvm::StringRef rowOpName(RowOp op);

/// `op` over `rows` x `cols` f32 tensors (the last axis is the row): one or
/// two row inputs, plus for RmsNorm and BiasAdd (x + bias, linear's bias) a
/// weight of `cols` values (GM [1, cols]).
struct RowProblem {
  RowOp op = RowOp::Add;
  int64_t rows = 0, cols = 0;
  double eps = 0; // RmsNorm
  double factor = 1; // Scale: x · factor (vmuls)
  /// Softmax over rows too long for UB: columns per chunk (a divisor of
  /// cols); the kernel then makes three passes (row max, sum of exp, write)
  /// over the chunks. 0 = whole rows.
  int64_t chunk = 0;
  /// Rope (rotate_half over whole heads): rows = tokens, cols = heads x
  /// head dim; GM inputs x [rows, cols], positions [rows, 1] (f32) and the
  /// inverse frequencies [1, head dim / 2]. `inverse` rotates by -angle.
  int64_t heads = 0;
  bool inverse = false;
  /// Rope over interleaved pairs (llama2.c, GPT-J): (x[2i], x[2i+1]) rotate
  /// by position · inv_freq[i]. GM inputs x, positions, the signed
  /// frequencies [-f0, f0, -f1, f1, ...] as [1, head dim] and the pair-swap
  /// index row [1, 0, 3, 2, ...] as [1, head dim].
  bool interleaved = false;
  double theta = 0;
  /// KlRows, KlGrad: the distillation temperature.
  double temperature = 1;
};

int64_t rowInputs(RowOp op);
/// Columns of row input `k` and of the output: `cols`, or 1 for a
/// per-row column ([rows, 1]).
int64_t rowInputCols(const RowProblem &p, int64_t k);
int64_t rowOutputCols(const RowProblem &p);
/// The GM operand after the row inputs: a [1, cols] row replicated into
/// every row of a UB tile (RmsNorm, RmsNormGrad, BiasAdd), a [1, 1]
/// scalar (KlGrad), or none.
enum class RowSide { None, Row, Scalar };
RowSide rowSide(RowOp op);

/// Rows per UB tile that fit the target's UB (minus its reserve) with two
/// slots per input and output stream plus the op's scratch; 0 if even one
/// row does not fit.
int64_t rowsPerTile(const RowProblem &p, const TargetDescription &t);

/// Creates the kernel at `builder`'s insertion point. GM arguments: the row
/// inputs [rows, cols], the weight [1, cols] (RmsNorm) or positions and
/// inverse frequencies (Rope), the output.
KernelOp buildRowKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                        const RowProblem &p, int64_t tileRows, const TargetDescription &t);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_VECTORKERNEL_H
