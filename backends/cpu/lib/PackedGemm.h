//===- PackedGemm.h - the AVX-512 GEMMs tried before BLAS -------*- C++ -*-===//
//
// Private to backends/cpu/lib: the GEMMs the shims of GemmLibrary.cpp try
// before BLAS (PackedGemm.cpp, FewRowsGemm.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_CPU_LIB_PACKEDGEMM_H
#define ATTNEDIT_CPU_LIB_PACKEDGEMM_H

#include <cstdint>

namespace mlir::attnedit::cpu::detail {

/// Row-major C[m, n] = op(A)[m, k] · op(B)[k, n], plus C's old value unless
/// `overwrite`; A is m × k (k × m when transA) with leading dimension lda,
/// B likewise. Returns false, touching nothing, when the CPU lacks AVX-512 or
/// the GEMM is too small for packing to pay: the caller then uses BLAS.
bool packedGemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, const float *a,
                int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc, bool overwrite);

/// The same contract for a few rows times a transposed weight of 64K
/// elements or more (m <= 32, op(A) = A, op(B) = Bᵀ: decoding's linear
/// layers), without packing. Returns false, touching nothing, for any other
/// GEMM or without AVX-512.
bool fewRowsGemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc, bool overwrite);

} // namespace mlir::attnedit::cpu::detail

#endif // ATTNEDIT_CPU_LIB_PACKEDGEMM_H
