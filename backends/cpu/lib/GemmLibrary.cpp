//===- GemmLibrary.cpp - the GEMM shims compiled code calls -----------------===//
//
// `attnedit-cpu-library-calls` turns each GEMM generic of attnedit-cpu-convert-to-
// linalg into a call of `attnedit_cpu_{b,}gemm_{n,t}{n,t}` on strided memrefs
// (C interface: pointers to StridedMemRefType). These shims read the strides,
// so a transposed operand is a transpose flag, never a copy, and call the
// AVX-512 GEMMs (FewRowsGemm.cpp for decoding's few rows, PackedGemm.cpp)
// or cblas_sgemm, accumulating (beta = 1: the generic accumulates into its
// init, a broadcast bias say) or, for the `_overwrite` forms that pass calls
// where the init was a zero fill, overwriting (beta = 0). An operand whose
// last stride is not 1 (not expressible to BLAS) takes a plain loop.
//
// Which GEMM, and why: README "GEMM choice" (our packed kernel on AVX-512
// where it pays, else Debian OpenBLAS 0.3.21 with its kernel chosen from
// the CPU's features).
//
//===----------------------------------------------------------------------===//

#include "attnedit/CPU/JitModule.h"

#include "PackedGemm.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <cblas.h>

#include <algorithm>

using namespace mlir::attnedit;

namespace {

/// A row-major view of a rank-2 operand: data, rows, cols, leading dim.
struct Matrix {
  const float *data;
  int64_t rows, cols, ld;
  bool rowMajor;
};

Matrix view(float *base, int64_t offset, const int64_t *sizes, const int64_t *strides) {
  Matrix m{base + offset, sizes[0], sizes[1], strides[0], strides[1] == 1 || sizes[1] <= 1};
  // BLAS wants ld >= cols even where a unit dimension makes the stride moot.
  if (m.ld < std::max<int64_t>(1, m.cols))
    m.ld = std::max<int64_t>(1, m.cols);
  return m;
}

/// C[m, n] += op(A)[m, k] · op(B)[k, n], or C = op(A) · op(B) when `overwrite`.
void gemm(const int64_t *aSizes, const int64_t *aStrides, float *a,
          const int64_t *bSizes, const int64_t *bStrides, float *b,
          const int64_t *cSizes, const int64_t *cStrides, float *c, bool transA, bool transB,
          bool overwrite) {
  Matrix A = view(a, 0, aSizes, aStrides), B = view(b, 0, bSizes, bStrides);
  Matrix C = view(c, 0, cSizes, cStrides);
  int64_t m = C.rows, n = C.cols, k = transA ? A.rows : A.cols;
  if (m == 0 || n == 0)
    return;
  if (A.rowMajor && B.rowMajor && C.rowMajor && k > 0) {
    float *out = const_cast<float *>(C.data);
    if (cpu::detail::fewRowsGemm(transA, transB, m, n, k, A.data, A.ld, B.data, B.ld, out,
                                 C.ld, overwrite) ||
        cpu::detail::packedGemm(transA, transB, m, n, k, A.data, A.ld, B.data, B.ld, out, C.ld,
                                overwrite))
      return;
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, A.data, A.ld, B.data, B.ld,
                overwrite ? 0.0f : 1.0f, out, C.ld);
    return;
  }
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        float x = transA ? a[p * aStrides[0] + i * aStrides[1]] : a[i * aStrides[0] + p * aStrides[1]];
        float y = transB ? b[j * bStrides[0] + p * bStrides[1]] : b[p * bStrides[0] + j * bStrides[1]];
        acc += x * y;
      }
      float &out = c[i * cStrides[0] + j * cStrides[1]];
      out = overwrite ? acc : out + acc;
    }
}

template <bool TA, bool TB, bool Overwrite>
void gemm2(StridedMemRefType<float, 2> *a, StridedMemRefType<float, 2> *b,
           StridedMemRefType<float, 2> *c) {
  gemm(a->sizes, a->strides, a->data + a->offset, b->sizes, b->strides, b->data + b->offset,
       c->sizes, c->strides, c->data + c->offset, TA, TB, Overwrite);
}

template <bool TA, bool TB, bool Overwrite>
void gemm3(StridedMemRefType<float, 3> *a, StridedMemRefType<float, 3> *b,
           StridedMemRefType<float, 3> *c) {
  for (int64_t i = 0; i < c->sizes[0]; ++i)
    gemm(a->sizes + 1, a->strides + 1, a->data + a->offset + i * a->strides[0], b->sizes + 1,
         b->strides + 1, b->data + b->offset + i * b->strides[0], c->sizes + 1, c->strides + 1,
         c->data + c->offset + i * c->strides[0], TA, TB, Overwrite);
}

/// out[ids[t], :] += grad[t, :], in t order as the reference kernel adds;
/// ids outside the table (checked by the executor first) are skipped.
void embeddingGrad(StridedMemRefType<int32_t, 1> *ids, StridedMemRefType<float, 2> *grad,
                   StridedMemRefType<float, 2> *out) {
  int64_t vocab = out->sizes[0], width = out->sizes[1];
  for (int64_t t = 0; t < ids->sizes[0]; ++t) {
    int32_t id = ids->data[ids->offset + t * ids->strides[0]];
    if (id < 0 || id >= vocab)
      continue;
    float *row = out->data + out->offset + id * out->strides[0];
    const float *g = grad->data + grad->offset + t * grad->strides[0];
    for (int64_t i = 0; i < width; ++i)
      row[i * out->strides[1]] += g[i * grad->strides[1]];
  }
}

/// The four shims of one transpose pair: 2-D and batched, accumulating and
/// overwriting (the names attnedit-cpu-library-calls writes).
#define GEMM_SHIMS(FLAGS, TA, TB)                                                                  \
  {"_mlir_ciface_attnedit_cpu_gemm_" FLAGS, reinterpret_cast<void *>(&gemm2<TA, TB, false>)},      \
  {"_mlir_ciface_attnedit_cpu_gemm_" FLAGS "_overwrite",                                           \
   reinterpret_cast<void *>(&gemm2<TA, TB, true>)},                                                \
  {"_mlir_ciface_attnedit_cpu_bgemm_" FLAGS, reinterpret_cast<void *>(&gemm3<TA, TB, false>)},     \
  {"_mlir_ciface_attnedit_cpu_bgemm_" FLAGS "_overwrite",                                          \
   reinterpret_cast<void *>(&gemm3<TA, TB, true>)}

const std::pair<const char *, void *> kSymbols[] = {
    {"_mlir_ciface_attnedit_cpu_embedding_grad", reinterpret_cast<void *>(&embeddingGrad)},
    GEMM_SHIMS("nn", false, false),
    GEMM_SHIMS("nt", false, true),
    GEMM_SHIMS("tn", true, false),
    GEMM_SHIMS("tt", true, true),
};

#undef GEMM_SHIMS

} // namespace

llvm::ArrayRef<std::pair<const char *, void *>> cpu::gemmSymbols() { return kSymbols; }
