//===- FewRowsGemm.cpp - AVX-512 GEMM of a few rows against a weight -------===//
//
// Decoding multiplies a few rows (one per sequence in the batch, or a short
// prompt chunk) by a linear layer's weight, stored [out, in]: C = A · Bᵀ
// with m ≤ 32 (the default batch). Packing the weight, as OpenBLAS 0.3.21's
// sgemm and our packed GEMM do on every call, then costs more than the
// product (perf of a 90M-parameter model's decode: 52-57% in
// sgemm_incopy), so here each thread streams its share of the weight's rows
// once: a row of B is loaded a vector at a time and multiplied into the dot
// products of up to 8 rows of A at once (A's rows stay in L1/L2), then each
// sum is reduced.
// Every element's sum runs in the same order whatever the threads.
//
//===----------------------------------------------------------------------===//

#include "PackedGemm.h"

#include <immintrin.h>

// GCC 12's intrinsics start from _mm512_undefined_ps(), which its own
// -Wmaybe-uninitialized then reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>

namespace mlir::attnedit::cpu::detail {
namespace {

#define AVX512 __attribute__((target("avx512f")))

/// c[i · ldc + j] (+)= Σ_p a[i · lda + p] · b[j · ldb + p] for R rows of A
/// and the rows [j0, j1) of B.
template <int R>
AVX512 void dotRows(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t k,
                    float *c, int64_t ldc, int64_t j0, int64_t j1, bool overwrite) {
  int64_t tail = k % 16;
  __mmask16 tailMask = (1u << tail) - 1;
  for (int64_t j = j0; j < j1; ++j) {
    const float *w = b + j * ldb;
    __m512 acc[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i)
      acc[i] = _mm512_setzero_ps();
    int64_t p = 0;
    for (; p + 16 <= k; p += 16) {
      __m512 wv = _mm512_loadu_ps(w + p);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i)
        acc[i] = _mm512_fmadd_ps(_mm512_loadu_ps(a + i * lda + p), wv, acc[i]);
    }
    if (tail) {
      __m512 wv = _mm512_maskz_loadu_ps(tailMask, w + p);
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i)
        acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tailMask, a + i * lda + p), wv, acc[i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      float sum = _mm512_reduce_add_ps(acc[i]);
      float &out = c[i * ldc + j];
      out = overwrite ? sum : out + sum;
    }
  }
}

/// The rows [j0, j1) of B against all m rows of A, 8 at a time: B's row
/// stays in L1 between the groups.
AVX512 void dotAllRows(const float *a, int64_t lda, int64_t m, const float *b, int64_t ldb,
                       int64_t k, float *c, int64_t ldc, int64_t j0, int64_t j1,
                       bool overwrite) {
  constexpr int64_t kBlock = 8; // B rows per pass: 8 × 4 KiB at k = 1024
  for (int64_t jb = j0; jb < j1; jb += kBlock) {
    int64_t je = std::min(j1, jb + kBlock);
    for (int64_t i = 0; i < m; i += 8) {
      const float *ai = a + i * lda;
      float *ci = c + i * ldc;
      switch (std::min<int64_t>(8, m - i)) {
      case 1: dotRows<1>(ai, lda, b, ldb, k, ci, ldc, jb, je, overwrite); break;
      case 2: dotRows<2>(ai, lda, b, ldb, k, ci, ldc, jb, je, overwrite); break;
      case 3: dotRows<3>(ai, lda, b, ldb, k, ci, ldc, jb, je, overwrite); break;
      case 4: dotRows<4>(ai, lda, b, ldb, k, ci, ldc, jb, je, overwrite); break;
      case 5: dotRows<5>(ai, lda, b, ldb, k, ci, ldc, jb, je, overwrite); break;
      case 6: dotRows<6>(ai, lda, b, ldb, k, ci, ldc, jb, je, overwrite); break;
      case 7: dotRows<7>(ai, lda, b, ldb, k, ci, ldc, jb, je, overwrite); break;
      default: dotRows<8>(ai, lda, b, ldb, k, ci, ldc, jb, je, overwrite); break;
      }
    }
  }
}

} // namespace

bool fewRowsGemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc,
                 bool overwrite) {
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  // A weight under 256 KiB is cheap to pack from L2, and OpenBLAS's small
  // kernels (stories260K's 64-wide layers) do as well as this loop. Past 32
  // rows (a 64-token prompt chunk) the packed kernel's FMA rate wins
  // (90M-parameter prefill: 500-541 tok/s here against 573-586 packed;
  // decode at 32 rows 1.08x faster here).
  if (!avx512 || transA || !transB || m > 32 || n * k < (1 << 16))
    return false;
  // From 2 MiB of weight the threads split B's rows: below it one core
  // streams the weight faster than a fork costs.
  int64_t chunks = n * k >= (1 << 19) ? 64 : 1;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    dotAllRows(a, lda, m, b, ldb, k, c, ldc, n * chunk / chunks, n * (chunk + 1) / chunks,
               overwrite);
  return true;
}

} // namespace mlir::attnedit::cpu::detail
