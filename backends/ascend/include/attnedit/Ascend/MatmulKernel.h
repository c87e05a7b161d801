//===- MatmulKernel.h - the tiled multi-core Cube matmul ------*- C++ -*-===//
//
// Builds the ascend.kernel of C = A·B (or A·Wᵀ) for one tiling, and searches
// the tilings that fit the target's buffers for the one the cost model
// times fastest. Used by --attnedit-ascend-lower-matmul and by tests.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_MATMULKERNEL_H
#define ATTNEDIT_ASCEND_MATMULKERNEL_H

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/CostModel.h"
#include "attnedit/Ascend/TargetDescription.h"

#include "mlir/IR/Builders.h"

#include <vector>

namespace mlir::attnedit::ascend {

struct MatmulProblem {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  /// B is given as W [N, K] (attnedit.linear) instead of [K, N].
  bool transposedB = false;
  DType dtype = DType::BF16; // GM operands and result
  std::string target = "910b";
  /// Linears sharing their input, fused: C's N columns in consecutive parts
  /// (summing to n), each its own weight and output tensor. Empty: one.
  std::vector<int64_t> nParts;
  /// The parts, or {n} when not fused.
  std::vector<int64_t> parts() const { return nParts.empty() ? std::vector<int64_t>{n} : nParts; }
};

/// TCubeTiling's base block (baseM, baseN, baseK) and L1 depth along K
/// (stepKa = stepKb): each L1 slot holds baseM x (stepK·baseK) of A.
struct MatmulTiling {
  int64_t baseM = 0, baseN = 0, baseK = 0, stepK = 1;
  int64_t l1K() const { return baseK * stepK; }
};

/// What makes `tiling` no tiling at all, naming the field (a base size that
/// is not a positive multiple of 16, stepK below 1); empty when nothing.
std::string tilingShapeError(const MatmulTiling &tiling);

/// Whether `tiling` fits the target's L1/L0A/L0B/L0C (and UB where the
/// result goes through it) and, fused, no N tile straddles two parts;
/// otherwise says why not.
bool tilingFits(const MatmulProblem &p, const MatmulTiling &tiling, const TargetDescription &t,
                std::string *why = nullptr);

/// Creates the kernel at `builder`'s insertion point. Its GM arguments are
/// A, then each part's B, then each part's C.
KernelOp buildMatmulKernel(OpBuilder &builder, Location loc, llvm::StringRef name,
                           const MatmulProblem &p, const MatmulTiling &tiling,
                           const TargetDescription &t);

using TilingChoice = TilingSearchResult<MatmulTiling>;

/// Times every candidate tiling (base sizes 16 to 256 in powers of two, and
/// for M and N also the multiples of 16 that cut the dimension into about
/// 1-4 tiles per cube core; L1 depth 1 to 8) that fits, on a sample of the
/// busiest core's tasks scaled to all of them, and returns the fastest.
llvm::Expected<TilingChoice> searchMatmulTiling(MLIRContext *context, const MatmulProblem &p,
                                                const TargetDescription &t);

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_MATMULKERNEL_H
