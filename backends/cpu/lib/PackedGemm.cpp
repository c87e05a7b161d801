//===- PackedGemm.cpp - AVX-512 GEMM over packed panels ---------------------===//
//
// The GEMM compiled code runs on an AVX-512 CPU, in the layout of BLIS
// (Goto's algorithm): a KC × NC block of op(B) is packed into 32-column
// micro-panels shared by the threads; each thread takes its rows of op(A)
// 8 micro-panels of 14 at a time (a k-major op(A) packed, a row-major one
// read in place or copied at a padded stride: rowMajorAInPlace), and sweeps
// them across the block with a 14 × 32 register tile (28 zmm accumulators,
// 28 FMAs per k for 2 loads and 14 broadcasts). A transposed B is
// transposed while packing, 16 × 16 in registers.
//
// Why hand-written (README "GEMM choice"): OpenBLAS 0.3.21's SkylakeX
// kernel, the fastest library here, reaches 56–70% of the FMA peak on the
// training shapes; this one runs them at 0.95–1.16× its speed on 2 threads
// and 5–15% faster on one, as a training batch's lanes run it. Smaller GEMMs
// and CPUs without AVX-512 go to BLAS (GemmLibrary.cpp).
//
// Rows are split between the threads (columns, when A is read in place and
// B spans several blocks) and every element's sum runs in the same k order,
// so results do not depend on the thread count.
//
//===----------------------------------------------------------------------===//

#include "PackedGemm.h"

#include <immintrin.h>
#include <omp.h>

// GCC 12's intrinsics start from _mm512_undefined_ps(), which its own
// -Wmaybe-uninitialized then reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <utility>

namespace mlir::attnedit::cpu::detail {
namespace {

constexpr int64_t kMR = 14, kNR = 32;
// A 256 × 14 panel of A (14 KiB) stays in L1 while a 256 × 768 block of B
// (768 KiB) streams from L2: the best of KC 256 / 384 / 512 × NC 512 / 768 /
// 1024 measured on the training shapes (/tmp sweep, 2 threads). A thread
// packs or copies 8 panels of A at once (~120 KiB, beside the B block in L2).
constexpr int64_t kKC = 256, kNC = 768, kAPanels = 8;
// copyRows' row stride: KC plus 64 bytes, so 14 copied rows spread over L1's
// sets (rowMajorAInPlace).
constexpr int64_t kCopyStride = kKC + 16;

#define AVX512 __attribute__((target("avx512f")))

/// 14 rows of A over k: packed (element (i, p) at pa[p · 14 + i]) or
/// row-major, A's own rows or their copy (at pa[i · lda + p]).
struct APanel {
  const float *pa;
  int64_t lda; // 0: packed
};

/// C[14 × 32] (row stride ldc) = (accumulate ? C : 0) + Σ_k A[:, k] pb[k].
template <bool InPlace>
AVX512 inline __attribute__((always_inline)) void microKernel(int64_t kc, APanel a,
                                                              const float *pb, float *c,
                                                              int64_t ldc, bool accumulate) {
  __m512 lo[kMR], hi[kMR];
#pragma GCC unroll 14
  for (int i = 0; i < kMR; ++i)
    lo[i] = hi[i] = _mm512_setzero_ps();
  const float *pa = a.pa;
  int64_t lda = a.lda;
  for (int64_t p = 0; p < kc; ++p, pa += InPlace ? 1 : kMR, pb += kNR) {
    __m512 b0 = _mm512_load_ps(pb), b1 = _mm512_load_ps(pb + 16);
    _mm_prefetch(reinterpret_cast<const char *>(pb + 8 * kNR), _MM_HINT_T0);
#pragma GCC unroll 14
    for (int i = 0; i < kMR; ++i) {
      __m512 x = _mm512_set1_ps(InPlace ? pa[i * lda] : pa[i]);
      lo[i] = _mm512_fmadd_ps(x, b0, lo[i]);
      hi[i] = _mm512_fmadd_ps(x, b1, hi[i]);
    }
  }
#pragma GCC unroll 14
  for (int i = 0; i < kMR; ++i) {
    float *row = c + i * ldc;
    if (accumulate) {
      lo[i] = _mm512_add_ps(lo[i], _mm512_loadu_ps(row));
      hi[i] = _mm512_add_ps(hi[i], _mm512_loadu_ps(row + 16));
    }
    _mm512_storeu_ps(row, lo[i]);
    _mm512_storeu_ps(row + 16, hi[i]);
  }
}

/// Masks of the first `cols` of 32 columns, as two halves of 16.
inline std::pair<__mmask16, __mmask16> columnMasks(int64_t cols) {
  auto first = [](int64_t n) -> __mmask16 { return n >= 16 ? 0xFFFF : n <= 0 ? 0 : (1u << n) - 1; };
  return {first(cols), first(cols - 16)};
}

/// A tile cut by the matrix's edge: computed whole into a buffer, then the
/// `rows` × `cols` corner written.
template <bool InPlace>
AVX512 void edgeKernel(int64_t kc, APanel a, const float *pb, float *c, int64_t ldc,
                       bool accumulate, int64_t rows, int64_t cols) {
  alignas(64) float tile[kMR * kNR];
  microKernel<InPlace>(kc, a, pb, tile, kNR, false);
  auto [lo, hi] = columnMasks(cols);
  for (int64_t i = 0; i < rows; ++i) {
    float *row = c + i * ldc;
    __m512 a = _mm512_load_ps(tile + i * kNR), b = _mm512_load_ps(tile + i * kNR + 16);
    if (accumulate) {
      a = _mm512_add_ps(a, _mm512_maskz_loadu_ps(lo, row));
      b = _mm512_add_ps(b, _mm512_maskz_loadu_ps(hi, row + 16));
    }
    _mm512_mask_storeu_ps(row, lo, a);
    _mm512_mask_storeu_ps(row + 16, hi, b);
  }
}

/// Transposes 16 rows of 16 floats in registers.
AVX512 inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xDD);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xDD);
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xDD);
  }
}

/// dst[p · stride + j] = src[j · ld + p] for p < kc, j < 16 (0 for j ≥ rows).
AVX512 void transposeInto(const float *src, int64_t ld, int64_t rows, int64_t kc, float *dst,
                          int64_t stride) {
  for (int64_t p0 = 0; p0 < kc; p0 += 16) {
    int64_t count = std::min<int64_t>(16, kc - p0);
    __mmask16 load = count == 16 ? 0xFFFF : (1u << count) - 1;
    __m512 r[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j)
      r[j] = j < rows ? _mm512_maskz_loadu_ps(load, src + j * ld + p0) : _mm512_setzero_ps();
    transpose16(r);
    for (int64_t p = 0; p < count; ++p)
      _mm512_storeu_ps(dst + (p0 + p) * stride, r[p]);
  }
}

/// A strided view: element (i, j) at data[i · rowStride + j · colStride].
struct View {
  const float *data;
  int64_t rowStride, colStride;
  const float *at(int64_t i, int64_t j) const { return data + i * rowStride + j * colStride; }
};

/// Packs rows [0, rows) × k [0, kc) of a k-major op(A) (A stored
/// transposed: a TN GEMM) as panels of 14 rows, panel q at pa + q · kc · 14
/// holding pa[p · 14 + i] (rows past `rows` zero). One pass down k reads
/// each k's rows of all the panels at once: a panel at a time re-read every
/// cache line from L2, since rows a multiple of 1 KiB apart share few L1 sets.
AVX512 void packA(View a, int64_t rows, int64_t kc, float *pa) {
  __mmask16 panelRows = (1u << kMR) - 1;
  int64_t panels = (rows + kMR - 1) / kMR;
  for (int64_t p = 0; p < kc; ++p)
    for (int64_t q = 0; q < panels; ++q) {
      __mmask16 load = (1u << std::min(kMR, rows - q * kMR)) - 1;
      _mm512_mask_storeu_ps(pa + (q * kc + p) * kMR, panelRows,
                            _mm512_maskz_loadu_ps(load, a.at(q * kMR, p)));
    }
}

/// Copies rows [0, rows) × k [0, kc) of a row-major op(A) to `dst` at row
/// stride kCopyStride, zero rows up to a multiple of 14: the in-place
/// micro-kernel's operand where A's own rows may not be read in place.
AVX512 void copyRows(View a, int64_t rows, int64_t kc, float *dst) {
  int64_t padded = (rows + kMR - 1) / kMR * kMR;
  for (int64_t i = 0; i < padded; ++i) {
    const float *src = a.at(i, 0);
    float *row = dst + i * kCopyStride;
    for (int64_t p = 0; p < kc; p += 16) {
      __mmask16 lanes = kc - p >= 16 ? 0xFFFF : (1u << (kc - p)) - 1;
      _mm512_mask_storeu_ps(row + p, lanes,
                            i < rows ? _mm512_maskz_loadu_ps(lanes, src + p) : _mm512_setzero_ps());
    }
  }
}

/// Packs k [0, kc) × columns [0, cols) of op(B) as pb[p · 32 + j], columns
/// past `cols` zero.
AVX512 void packB(View b, int64_t kc, int64_t cols, float *pb) {
  if (b.colStride == 1) {
    auto [lo, hi] = columnMasks(cols);
    for (int64_t p = 0; p < kc; ++p) {
      const float *row = b.at(p, 0);
      _mm512_store_ps(pb + p * kNR, _mm512_maskz_loadu_ps(lo, row));
      _mm512_store_ps(pb + p * kNR + 16, _mm512_maskz_loadu_ps(hi, row + 16));
    }
    return;
  }
  transposeInto(b.data, b.colStride, std::min<int64_t>(cols, 16), kc, pb, kNR);
  // Columns 16-31 are zeros when B has no more (rows = 0: nothing is read).
  transposeInto(cols > 16 ? b.at(0, 16) : b.data, b.colStride, std::max<int64_t>(cols - 16, 0),
                kc, pb + 16, kNR);
}

/// One 14-row panel of C (`rows` of them real; a row-major A's panel has 14
/// readable rows, zeros past `rows` in a copy) against the packed block.
template <bool InPlace>
AVX512 void panel(APanel a, int64_t rows, int64_t kc, const float *pb, int64_t cols, float *c,
                  int64_t ldc, bool accumulate) {
  for (int64_t j = 0; j < cols; j += kNR, pb += kc * kNR) {
    int64_t width = std::min(kNR, cols - j);
    if (rows == kMR && width == kNR)
      microKernel<InPlace>(kc, a, pb, c + j, ldc, accumulate);
    else
      edgeKernel<InPlace>(kc, a, pb, c + j, ldc, accumulate, rows, width);
  }
}

/// Whether a row-major A (row stride `lda` floats) is read in place rather
/// than copied (copyRows; a transposing pack had cost 5-10% of such a GEMM).
/// A 14-row panel stays in L1 beside the streaming B panel only if its rows
/// spread over the cache's sets: rows 4 KiB apart (or 2 KiB) share one set
/// (or two) and would evict each other, so those strides are copied.
bool rowMajorAInPlace(int64_t lda) { return std::gcd<int64_t>(4096, lda * 4) <= 1024; }

struct Free {
  void operator()(float *p) const { std::free(p); }
};

/// A 64-byte-aligned buffer of at least `floats` per thread and slot, kept
/// between calls (allocated per call, the B block cost page faults on every
/// GEMM). Per thread: the lanes of a training batch call GEMMs concurrently.
template <int Slot> float *threadBuffer(int64_t floats) {
  thread_local std::unique_ptr<float[], Free> buffer;
  thread_local int64_t capacity = 0;
  if (floats > capacity) {
    capacity = (floats + 15) / 16 * 16;
    buffer.reset(static_cast<float *>(std::aligned_alloc(64, capacity * sizeof(float))));
  }
  return buffer.get();
}

/// One GEMM's operands.
struct Gemm {
  View a, b;
  int64_t m, n, k;
  float *c;
  int64_t ldc;
  bool overwrite, inPlace;
};

/// C's row panels [first, last) × columns [n0, n1) over all of k. With
/// `shared`, the team packs each block of B together into `pb` (one
/// buffer, row panels split between the threads); else this thread packs
/// its own.
AVX512 void sweep(const Gemm &g, int64_t first, int64_t last, int64_t n0, int64_t n1, float *pb,
                  bool shared) {
  float *pa = threadBuffer<1>(kCopyStride * kMR * kAPanels);
  for (int64_t jc = n0; jc < n1; jc += kNC) {
    int64_t nc = std::min(kNC, n1 - jc), colPanels = (nc + kNR - 1) / kNR;
    for (int64_t pc = 0; pc < g.k; pc += kKC) {
      int64_t kc = std::min(kKC, g.k - pc);
      bool accumulate = !g.overwrite || pc > 0;
      auto pack = [&](int64_t jp) {
        packB(View{g.b.at(pc, jc + jp * kNR), g.b.rowStride, g.b.colStride}, kc,
              std::min(kNR, nc - jp * kNR), pb + jp * kc * kNR);
      };
      if (shared) {
#pragma omp for schedule(static)
        for (int64_t jp = 0; jp < colPanels; ++jp)
          pack(jp);
      } else {
        for (int64_t jp = 0; jp < colPanels; ++jp)
          pack(jp);
      }
      for (int64_t ip = first; ip < last; ip += kAPanels) {
        int64_t panels = std::min(kAPanels, last - ip);
        int64_t rows = std::min(panels * kMR, g.m - ip * kMR);
        View a{g.a.at(ip * kMR, pc), g.a.rowStride, g.a.colStride};
        float *cBlock = g.c + ip * kMR * g.ldc + jc;
        if (a.colStride != 1) {
          packA(a, rows, kc, pa);
          for (int64_t q = 0; q < panels; ++q)
            panel<false>(APanel{pa + q * kc * kMR, 0}, std::min(kMR, rows - q * kMR), kc, pb, nc,
                         cBlock + q * kMR * g.ldc, g.ldc, accumulate);
          continue;
        }
        // Row-major A: read in place, or copied first where its stride would
        // crowd L1's sets or its last panel has fewer than 14 rows.
        APanel rowsOfA{a.data, a.rowStride};
        if (!g.inPlace || rows < panels * kMR) {
          copyRows(a, rows, kc, pa);
          rowsOfA = APanel{pa, kCopyStride};
        }
        for (int64_t q = 0; q < panels; ++q)
          panel<true>(APanel{rowsOfA.pa + q * kMR * rowsOfA.lda, rowsOfA.lda},
                      std::min(kMR, rows - q * kMR), kc, pb, nc, cBlock + q * kMR * g.ldc, g.ldc,
                      accumulate);
      }
      // The next block of B overwrites this one.
      if (shared) {
#pragma omp barrier
      }
    }
  }
}
} // namespace

bool packedGemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k, const float *a,
                int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc, bool overwrite) {
  // Below a few panels each way packing costs more than it saves (and a
  // 1-row GEMV would waste 13 of 14 rows).
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 || m < 4 * kMR || n < 2 * kNR || k < 16)
    return false;
  View av{a, transA ? 1 : lda, transA ? lda : 1}, bv{b, transB ? 1 : ldb, transB ? ldb : 1};
  Gemm g{av, bv, m, n, k, c, ldc, overwrite, av.colStride == 1 && rowMajorAInPlace(av.rowStride)};
  int64_t rowPanels = (m + kMR - 1) / kMR, colPanels = (n + kNR - 1) / kNR;
  int64_t bFloats = std::min(k, kKC) * std::min(kNC, colPanels * kNR);
  // A row-major A read in place can be read by every thread: each then
  // sweeps its own columns with its own block of B, and no thread waits for
  // the other at every block of B, which costs more than reading A twice
  // once B spans a whole block (NT 512 × 768 × 768: +6-14%). A k-major A
  // smaller than B (a weight's gradient, in features fewer than out) is
  // worth packing twice for the same: its few row panels split unevenly and
  // each thread would read half of every block of B from the other's cache
  // (TN 256 × 768 × 1024 and 768 × 2048 / 32000 × 512: +7-11% on 2 threads,
  // /tmp sweep).
  bool byColumns = (g.inPlace && n >= kNC) || (av.colStride != 1 && m < n);
  float *pb = byColumns ? nullptr : threadBuffer<0>(bFloats);
#pragma omp parallel if (2.0 * m * n * k > 4e6)
  {
    int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    if (byColumns) {
      int64_t j0 = colPanels * thread / threads * kNR;
      int64_t j1 = std::min(n, colPanels * (thread + 1) / threads * kNR);
      if (j0 < j1)
        sweep(g, 0, rowPanels, j0, j1, threadBuffer<0>(bFloats), false);
    } else {
      sweep(g, rowPanels * thread / threads, rowPanels * (thread + 1) / threads, 0, n, pb, true);
    }
  }
  return true;
}

} // namespace mlir::attnedit::cpu::detail
