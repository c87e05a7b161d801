//===- AttentionLibrary.cpp - fused causal attention for compiled code ------===//
//
// `attnedit-cpu-convert-to-linalg` replaces the primitive chain
//   matmul(q, kᵀ) → scale → causal_mask → softmax(+sinks) → matmul(·, v)
// by one call of `attnedit_cpu_attention[_sinks]`, defined here. It is
// computed in tiles with an online softmax (flash attention, Dao et al.
// 2022): a block of queries against a block of keys at a time, the running
// row maximum and denominator rescaling the accumulated output, so no T×T
// scores exist and key blocks wholly in the future (or out of the window)
// are skipped. Query blocks of all heads run in parallel (OpenMP).
//
// Layouts, as the model's projections produce them (no transposes):
//   q [Tq, H, D], k [Tk, Hk, D], v [Tk, Hk, Dv], out [Tq, H, Dv],
//   sinks [H], params [scale, causal, window];
// query head h reads KV head h / (H / Hk) (repeat_kv). Query i sits at
// position Tk - Tq + i, as causal_mask defines.
//
//===----------------------------------------------------------------------===//

#include "VectorMath.h"
#include "attnedit/CPU/JitModule.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

using namespace mlir::attnedit;
using namespace mlir::attnedit::cpu::detail;

namespace {

constexpr int64_t kQueryBlock = 32; // a multiple of 16: runQueryBlock's row groups
constexpr int64_t kKeyBlock = 64;

struct View3 {
  const float *data;
  int64_t sizes[3], strides[3];
  const float *at(int64_t a, int64_t b) const { return data + a * strides[0] + b * strides[1]; }
  float operator()(int64_t a, int64_t b, int64_t c) const { return at(a, b)[c * strides[2]]; }
};

View3 view(StridedMemRefType<float, 3> *m) {
  return {m->data + m->offset,
          {m->sizes[0], m->sizes[1], m->sizes[2]},
          {m->strides[0], m->strides[1], m->strides[2]}};
}

/// One block of queries [q0, q0 + rows) of head h against all the keys it
/// may see.
struct QueryBlock {
  const View3 &q;
  /// K and V of this query's KV head, packed once for all query blocks:
  /// per key block, kᵀ [D][64 keys]; per key, v padded to whole vectors.
  const V *kPacked, *vPacked;
  int64_t tk, dv;
  float *out;
  const int64_t *outStrides;
  /// Each row's log-sum-exp of its scaled scores, for the backward pass to
  /// recompute probabilities from (null in inference).
  float *lse;
  int64_t lseStride;
  float scale, sink;
  bool causal, hasSink;
  /// `segment` > 0: the rows are packed sequences of that many tokens.
  int64_t window, segment, h, hk, q0, rows;
};

constexpr int64_t kKeyVectors = kKeyBlock / kLanes;

/// out[r·outStride ..+NV] += Σ_{t<n} w[r·wRow + t·wStride] · x[t·xStride ..+NV]
/// for R rows at once, a GEMM micro-kernel's rank-1 updates: the R·NV
/// accumulators stay in registers, each x vector is loaded once for all R
/// rows, and the R·NV independent FMA chains hide the FMA latency. Forced
/// inline: a call would run the default clone's code (SSE2), whatever the
/// caller's ISA.
template <int R, int NV, bool Accumulate = true>
__attribute__((always_inline)) inline void weightedSums(V *out, int64_t outStride, const float *w,
                                                        int64_t wRow, int64_t wStride, const V *x,
                                                        int64_t xStride, int64_t n) {
  V acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int e = 0; e < NV; ++e)
      acc[r][e] = Accumulate ? out[r * outStride + e] : V{};
  for (int64_t t = 0; t < n; ++t) {
    const V *xt = x + t * xStride;
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      V wr = splat(w[r * wRow + t * wStride]);
#pragma GCC unroll 8
      for (int e = 0; e < NV; ++e)
        acc[r][e] += wr * xt[e];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int e = 0; e < NV; ++e)
      out[r * outStride + e] = acc[r][e];
}

/// The same for `rows` rows, R at a time (with Accumulate false, `out` is
/// overwritten: no fill of zeros to load back).
template <int R, int NV, bool Accumulate = true>
__attribute__((always_inline)) inline void
weightedSumRows(V *out, int64_t outStride, const float *w, int64_t wRow, int64_t wStride,
                const V *x, int64_t xStride, int64_t n, int64_t rows) {
  int64_t r = 0;
  for (; r + R <= rows; r += R)
    weightedSums<R, NV, Accumulate>(out + r * outStride, outStride, w + r * wRow, wRow, wStride,
                                    x, xStride, n);
  for (; r < rows; ++r)
    weightedSums<1, NV, Accumulate>(out + r * outStride, outStride, w + r * wRow, wRow, wStride,
                                    x, xStride, n);
}

/// The same for rows of any width `nv`: R·NV = 16 accumulators where the
/// head dims are common (32, 64, 128 floats), half the 32 AVX-512 registers;
/// 24 for MLA's 48 (its 32 + 16 RoPE dims; 2% of the backward over 12).
__attribute__((always_inline)) inline void
weightedSumRows(V *out, int64_t outStride, const float *w, int64_t wRow, int64_t wStride,
                const V *x, int64_t xStride, int64_t n, int64_t rows, int64_t nv) {
  switch (nv) {
  case 1: return weightedSumRows<8, 1>(out, outStride, w, wRow, wStride, x, xStride, n, rows);
  case 2: return weightedSumRows<8, 2>(out, outStride, w, wRow, wStride, x, xStride, n, rows);
  case 3: return weightedSumRows<8, 3>(out, outStride, w, wRow, wStride, x, xStride, n, rows);
  case 4: return weightedSumRows<4, 4>(out, outStride, w, wRow, wStride, x, xStride, n, rows);
  case 8: return weightedSumRows<2, 8>(out, outStride, w, wRow, wStride, x, xStride, n, rows);
  default:
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t t = 0; t < n; ++t) {
        V wt = splat(w[r * wRow + t * wStride]);
        for (int64_t e = 0; e < nv; ++e)
          out[r * outStride + e] += wt * x[t * xStride + e];
      }
  }
}

/// Scores a[i][u·16 + lane] = Σ_c rows[i][c] · packed[c][u·16 + lane] for a
/// block of n rows against one packed key block.
__attribute__((always_inline)) inline void
blockProducts(V *a, const float *rows, int64_t n, int64_t width, const V *packed, int64_t d) {
  weightedSumRows<4, kKeyVectors, false>(a, kKeyVectors, rows, width, 1, packed, kKeyVectors, d,
                                         n);
}

/// Sets the keys of a row of one key block outside [lo, hi) to `value`. By
/// scalar stores, and only on the blocks a row's view cuts: a vector
/// compare of lane indices is scalarised lane by lane in the avx512f clone
/// (GCC 12: setg per lane), which had cost a fifth of the kernels' time.
inline void maskOutside(V *row, int64_t lo, int64_t hi, float value) {
  float *x = reinterpret_cast<float *>(row);
  std::fill(x, x + lo, value);
  std::fill(x + hi, x + kKeyBlock, value);
}

/// The first key position query position `pos` sees.
inline int64_t firstVisible(int64_t pos, bool causal, int64_t window, int64_t segment) {
  if (!causal)
    return 0;
  int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
  return segment > 0 ? std::max(first, pos - pos % segment) : first;
}

/// The keys [lo, hi) of the block of `cols` keys from key j0 that the query
/// at position `pos` sees.
inline std::pair<int64_t, int64_t> visibleKeys(int64_t pos, int64_t j0, int64_t cols, bool causal,
                                               int64_t window, int64_t segment) {
  if (!causal)
    return {0, cols};
  int64_t hi = std::clamp<int64_t>(pos + 1 - j0, 0, cols);
  int64_t lo = std::clamp<int64_t>(firstVisible(pos, causal, window, segment) - j0, 0, hi);
  return {lo, hi};
}

/// `count` <= 16 floats `stride` apart from `src`, zero-padded to a vector.
inline V loadChunk(const float *src, int64_t stride, int64_t count) {
  V chunk{};
  if (count == kLanes && stride == 1)
    std::memcpy(&chunk, src, sizeof(V));
  else
    for (int64_t e = 0; e < count; ++e)
      chunk[e] = src[e * stride];
  return chunk;
}

/// The first `count` <= 16 lanes of `chunk` to floats `stride` apart.
inline void storeChunk(V chunk, float *dst, int64_t stride, int64_t count) {
  if (count == kLanes && stride == 1)
    std::memcpy(dst, &chunk, sizeof(V));
  else
    for (int64_t e = 0; e < count; ++e)
      dst[e * stride] = chunk[e];
}

/// Rows [j0, j0 + 64) of head `head` of `x` ([T, heads, D]: K or V)
/// transposed into dst[c · 64 + j], zero past the last row, 16 × 16 tiles
/// at a time in registers (copied scalar by scalar, K had cost an eighth of
/// the forward kernel).
__attribute__((target_clones("avx512f", "avx2", "default"))) void
packTransposed(const View3 &x, int64_t head, int64_t j0, float *dst) {
  int64_t t = x.sizes[0], d = x.sizes[2], stride = x.strides[2];
  for (int64_t jj = 0; jj < kKeyBlock; jj += kLanes)
    for (int64_t c0 = 0; c0 < d; c0 += kLanes) {
      int64_t width = std::min(kLanes, d - c0);
      V tile[kLanes];
      for (int64_t r = 0; r < kLanes; ++r)
        tile[r] = j0 + jj + r < t ? loadChunk(x.at(j0 + jj + r, head) + c0 * stride, stride, width)
                                  : V{};
      transpose16(tile);
      for (int64_t c = 0; c < width; ++c)
        std::memcpy(dst + (c0 + c) * kKeyBlock + jj, &tile[c], sizeof(V));
    }
}

/// Rows [j0, j0 + 64) of head `head` of `x` (K, V, or the backward's Q
/// and dO), up to its last, padded with zeros to whole vectors:
/// dst[(j - j0) · vectors · 16 + e].
__attribute__((target_clones("avx512f", "avx2", "default"))) void
packRows(const View3 &x, int64_t head, int64_t j0, float *dst) {
  int64_t d = x.sizes[2], stride = x.strides[2], vectors = (d + kLanes - 1) / kLanes;
  for (int64_t j = j0; j < std::min(x.sizes[0], j0 + kKeyBlock); ++j) {
    const float *src = x.at(j, head);
    for (int64_t e0 = 0; e0 < vectors * kLanes; e0 += kLanes) {
      V chunk = loadChunk(src + e0 * stride, stride, std::min(kLanes, d - e0));
      std::memcpy(dst + ((j - j0) * vectors * kLanes + e0), &chunk, sizeof(V));
    }
  }
}

/// Cloned per ISA (GCC function multiversioning, chosen once at load time
/// from the CPU's features).
__attribute__((target_clones("avx512f", "avx2", "default"))) void
runQueryBlock(const QueryBlock &qb) {
  const View3 &q = qb.q;
  const float ninf = -std::numeric_limits<float>::infinity();
  int64_t d = q.sizes[2], dv = qb.dv, tk = qb.tk, rows = qb.rows;
  int64_t offset = tk - q.sizes[0];
  int64_t dvVectors = (dv + kLanes - 1) / kLanes;
  Vectors acc(rows * dvVectors), scores(kQueryBlock * kKeyVectors, false);
  // Each row's running maximum and denominator, whole vectors of rows.
  alignas(64) float m[kQueryBlock], l[kQueryBlock];
  std::fill(m, m + kQueryBlock, qb.hasSink ? qb.sink : ninf);
  std::fill(l, l + kQueryBlock, qb.hasSink ? 1.0f : 0.0f);
  // The queries' rows, read in place unless their elements are strided.
  const float *queries = q.at(qb.q0, qb.h);
  int64_t queryStride = q.strides[0];
  std::vector<float> gathered;
  if (q.strides[2] != 1) {
    gathered.resize(rows * d);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t c = 0; c < d; ++c)
        gathered[i * d + c] = q(qb.q0 + i, qb.h, c);
    queries = gathered.data();
    queryStride = d;
  }
  // Keys this block may see: [first, last].
  int64_t firstPos = offset + qb.q0, lastPos = firstPos + rows - 1;
  int64_t last = qb.causal ? std::min(tk - 1, lastPos) : tk - 1;
  int64_t first = firstVisible(firstPos, qb.causal, qb.window, qb.segment);
  first -= first % kKeyBlock; // whole packed blocks; keys before `first` are masked below
  for (int64_t j0 = first; j0 <= last; j0 += kKeyBlock) {
    int64_t cols = std::min(kKeyBlock, last + 1 - j0);
    const V *kt = qb.kPacked + (j0 / kKeyBlock) * d * kKeyVectors;
    const V *vb = qb.vPacked + j0 * dvVectors;
    // Scores of the block's queries against the key block, (q·k) before the
    // scale as the reference computes them.
    blockProducts(scores.data, queries, rows, queryStride, kt, d);
    // Probabilities, zero where a row does not see a key, 16 rows at a time
    // (their maxima and sums reduced together), then one product with V
    // over the keys any row sees.
    int64_t blockLo = cols, blockHi = 0;
    for (int64_t g0 = 0; g0 < rows; g0 += kLanes) {
      V partial[kLanes];
      bool visible[kLanes];
      for (int64_t r = 0; r < kLanes; ++r) {
        int64_t i = g0 + r;
        auto [lo, hi] = i < rows ? visibleKeys(firstPos + i, j0, cols, qb.causal, qb.window,
                                               qb.segment)
                                 : std::pair<int64_t, int64_t>{0, 0};
        visible[r] = lo < hi;
        partial[r] = splat(ninf);
        if (!visible[r])
          continue;
        blockLo = std::min(blockLo, lo);
        blockHi = std::max(blockHi, hi);
        V *s = &scores[i * kKeyVectors];
        for (int64_t u = 0; u < kKeyVectors; ++u)
          s[u] *= qb.scale;
        maskOutside(s, lo, hi, ninf);
        for (int64_t u = 0; u < kKeyVectors; ++u)
          partial[r] = kMax(partial[r], s[u]);
      }
      // A row that sees no key keeps its maximum: its correction is 1, or 0
      // (exp(-inf)) while it has seen none, when its sums are still 0.
      V oldMax, oldSum;
      std::memcpy(&oldMax, m + g0, sizeof(V));
      std::memcpy(&oldSum, l + g0, sizeof(V));
      V newMax = kMax(oldMax, reduceRows(partial, kMax));
      V shift = newMax == splat(ninf) ? V{} : newMax;
      V correction = expNonPositive(oldMax - shift);
      alignas(64) float shifts[kLanes], corrections[kLanes];
      std::memcpy(shifts, &shift, sizeof(V));
      std::memcpy(corrections, &correction, sizeof(V));
      for (int64_t r = 0; r < kLanes; ++r) {
        V *s = &scores[(g0 + r) * kKeyVectors];
        partial[r] = V{};
        if (!visible[r]) {
          std::fill(s, s + kKeyVectors, V{});
          continue;
        }
        for (int64_t u = 0; u < kKeyVectors; ++u) {
          s[u] = expNonPositive(s[u] - splat(shifts[r]));
          partial[r] += s[u];
        }
      }
      V newSum = oldSum * correction + reduceRows(partial, kSum);
      std::memcpy(m + g0, &newMax, sizeof(V));
      std::memcpy(l + g0, &newSum, sizeof(V));
      for (int64_t r = 0; r < std::min(kLanes, rows - g0); ++r) {
        V *ai = &acc[(g0 + r) * dvVectors];
        for (int64_t e = 0; e < dvVectors; ++e)
          ai[e] *= splat(corrections[r]);
      }
    }
    if (blockLo < blockHi) {
      const float *p = reinterpret_cast<const float *>(scores.data);
      weightedSumRows(acc.data, dvVectors, p + blockLo, kKeyBlock, 1, vb + blockLo * dvVectors,
                      dvVectors, blockHi - blockLo, rows, dvVectors);
    }
  }
  for (int64_t i = 0; i < rows; ++i) {
    float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    float *o = qb.out + (qb.q0 + i) * qb.outStrides[0] + qb.h * qb.outStrides[1];
    const float *ai = reinterpret_cast<const float *>(&acc[i * dvVectors]);
    for (int64_t e = 0; e < dv; ++e)
      o[e * qb.outStrides[2]] = ai[e] * inv;
    if (qb.lse)
      qb.lse[(qb.q0 + i) * qb.lseStride] =
          l[i] > 0.0f ? m[i] + std::log(l[i]) : -std::numeric_limits<float>::infinity();
  }
}

/// The constants LowerAttention.cpp passes: [scale, causal, window, segments].
struct Params {
  float scale;
  bool causal;
  int64_t window, segments;
  /// The length of each packed sequence among `rows` (0: not packed).
  int64_t segmentLength(int64_t rows) const { return segments > 1 ? rows / segments : 0; }
};

Params readParams(StridedMemRefType<float, 1> *m) {
  const float *p = m->data + m->offset;
  int64_t stride = m->strides[0];
  return {p[0], p[stride] != 0.0f, static_cast<int64_t>(p[2 * stride]),
          static_cast<int64_t>(p[3 * stride])};
}

void attention(StridedMemRefType<float, 3> *qm, StridedMemRefType<float, 3> *km,
               StridedMemRefType<float, 3> *vm, const float *sinks,
               StridedMemRefType<float, 1> *params, StridedMemRefType<float, 3> *outm,
               StridedMemRefType<float, 2> *lsem = nullptr) {
  View3 q = view(qm), k = view(km), v = view(vm);
  Params p = readParams(params);
  int64_t tq = q.sizes[0], heads = q.sizes[1], kvHeads = k.sizes[1];
  int64_t group = std::max<int64_t>(1, heads / std::max<int64_t>(1, kvHeads));
  int64_t d = q.sizes[2], dv = v.sizes[2], tk = k.sizes[0];
  if (!cpu::checkAttentionSizes(tq, tk, v.sizes[0], d, k.sizes[2], p.causal) ||
      !cpu::checkSegments(tq, tk, p.segments))
    return;
  int64_t dvVectors = (dv + kLanes - 1) / kLanes, keyBlocks = (tk + kKeyBlock - 1) / kKeyBlock;
  int64_t kPerHead = keyBlocks * d * kKeyVectors, vPerHead = keyBlocks * kKeyBlock * dvVectors;
  // Every key block is packed whole (K) or up to its last key, the one any
  // query block reads (V).
  Vectors kPacked(kvHeads * kPerHead, false), vPacked(kvHeads * vPerHead, false);
  int64_t blocks = (tq + kQueryBlock - 1) / kQueryBlock;
  float *out = outm->data + outm->offset;
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t task = 0; task < kvHeads * keyBlocks; ++task) {
      int64_t hk = task / keyBlocks, j0 = (task % keyBlocks) * kKeyBlock;
      packTransposed(k, hk, j0, kPacked.floats(hk * kPerHead + j0 / kKeyBlock * d * kKeyVectors));
      packRows(v, hk, j0, vPacked.floats(hk * vPerHead + j0 * dvVectors));
    }
    // Later query blocks see more keys: hand them out first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < blocks * heads; ++task) {
      int64_t block = blocks - 1 - task / heads, h = task % heads, hk = h / group;
      int64_t q0 = block * kQueryBlock;
      float *lse = lsem ? lsem->data + lsem->offset + h * lsem->strides[0] : nullptr;
      runQueryBlock(QueryBlock{q, &kPacked[hk * kPerHead], &vPacked[hk * vPerHead], tk, dv, out,
                               outm->strides, lse, lsem ? lsem->strides[1] : 0, p.scale,
                               sinks ? sinks[h] : 0.0f, p.causal, sinks != nullptr, p.window,
                               p.segmentLength(tk), h, hk, q0,
                               std::min(kQueryBlock, tq - q0)});
    }
  }
}

/// Sinks are a parameter vector: contiguous unless a caller sliced it.
std::vector<float> gather(StridedMemRefType<float, 1> *m) {
  std::vector<float> s(m->sizes[0]);
  for (int64_t i = 0; i < m->sizes[0]; ++i)
    s[i] = m->data[m->offset + i * m->strides[0]];
  return s;
}

void attentionPlain(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 3> *k,
                    StridedMemRefType<float, 3> *v, StridedMemRefType<float, 1> *params,
                    StridedMemRefType<float, 3> *out) {
  attention(q, k, v, nullptr, params, out);
}

void attentionSinks(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 3> *k,
                    StridedMemRefType<float, 3> *v, StridedMemRefType<float, 1> *sinks,
                    StridedMemRefType<float, 1> *params, StridedMemRefType<float, 3> *out) {
  attention(q, k, v, gather(sinks).data(), params, out);
}

void attentionTrain(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 3> *k,
                    StridedMemRefType<float, 3> *v, StridedMemRefType<float, 1> *params,
                    StridedMemRefType<float, 3> *out, StridedMemRefType<float, 2> *lse) {
  attention(q, k, v, nullptr, params, out, lse);
}

void attentionTrainSinks(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 3> *k,
                         StridedMemRefType<float, 3> *v, StridedMemRefType<float, 1> *sinks,
                         StridedMemRefType<float, 1> *params, StridedMemRefType<float, 3> *out,
                         StridedMemRefType<float, 2> *lse) {
  attention(q, k, v, gather(sinks).data(), params, out, lse);
}

/// A writable [a, b, c] view.
struct Out3 {
  float *data;
  int64_t strides[3];
  float *at(int64_t a, int64_t b) const { return data + a * strides[0] + b * strides[1]; }
};

Out3 outView(StridedMemRefType<float, 3> *m) {
  return {m->data + m->offset, {m->strides[0], m->strides[1], m->strides[2]}};
}

/// One query head's inputs to the backward pass, gathered into contiguous
/// rows padded to whole vectors, and its gradient accumulators.
struct HeadBackward {
  const View3 &q, &k, &v, &o, &dout;
  const float *lse;
  int64_t lseStride;
  float scale;
  bool causal;
  int64_t window, segment, h, hk;
  Out3 dq, dk, dv;
  /// The head's sink logit and where its gradient goes (null: no sinks).
  const float *sink;
  float *dsink;
};

/// FlashAttention-2's backward (Dao 2023, Algorithm 2) for one query head:
/// key blocks outside, query blocks inside, probabilities recomputed from
/// the forward's log-sum-exp, so no T×T tensor exists. One thread owns the
/// whole head, so dQ accumulates without atomics.
__attribute__((target_clones("avx512f", "avx2", "default"))) void
runHeadBackward(const HeadBackward &hb) {
  int64_t tq = hb.q.sizes[0], tk = hb.k.sizes[0], d = hb.q.sizes[2], dvDim = hb.v.sizes[2];
  int64_t offset = tk - tq;
  int64_t nd = (d + kLanes - 1) / kLanes, ndv = (dvDim + kLanes - 1) / kLanes;
  int64_t keyBlocks = (tk + kKeyBlock - 1) / kKeyBlock;
  // Query-side rows (also read as scalars), key-side rows, and kᵀ, vᵀ per
  // key block, each written whole by its packer.
  Vectors qRows(tq * nd, false), doRows(tq * ndv, false), kRows(tk * nd, false);
  Vectors kT(keyBlocks * d * kKeyVectors, false), vT(keyBlocks * dvDim * kKeyVectors, false);
  for (int64_t i0 = 0; i0 < tq; i0 += kKeyBlock) {
    packRows(hb.q, hb.h, i0, qRows.floats(i0 * nd));
    packRows(hb.dout, hb.h, i0, doRows.floats(i0 * ndv));
  }
  for (int64_t j0 = 0; j0 < tk; j0 += kKeyBlock) {
    packRows(hb.k, hb.hk, j0, kRows.floats(j0 * nd));
    packTransposed(hb.k, hb.hk, j0, kT.floats(j0 / kKeyBlock * d * kKeyVectors));
    packTransposed(hb.v, hb.hk, j0, vT.floats(j0 / kKeyBlock * dvDim * kKeyVectors));
  }
  // delta = rowsum(dO ∘ O) = Σ_j P·dP, softmax's VJP term: 16 rows at a
  // time, transposed into lanes, each row summed in e order (one row at a
  // time, the chain of dependent adds had cost a tenth of the backward).
  std::vector<float> delta(tq + kLanes), lse(tq);
  for (int64_t i0 = 0; i0 < tq; i0 += kLanes) {
    V dot{};
    for (int64_t e0 = 0; e0 < dvDim; e0 += kLanes) {
      int64_t width = std::min(kLanes, dvDim - e0);
      V g[kLanes], o[kLanes];
      for (int64_t r = 0; r < kLanes; ++r) {
        bool row = i0 + r < tq;
        g[r] = row ? doRows[(i0 + r) * ndv + e0 / kLanes] : V{};
        o[r] = row ? loadChunk(hb.o.at(i0 + r, hb.h) + e0 * hb.o.strides[2], hb.o.strides[2],
                               width)
                   : V{};
      }
      transpose16(g);
      transpose16(o);
      for (int64_t e = 0; e < width; ++e)
        dot += g[e] * o[e];
    }
    std::memcpy(&delta[i0], &dot, sizeof(V));
  }
  for (int64_t i = 0; i < tq; ++i)
    lse[i] = hb.lse[i * hb.lseStride];
  if (hb.sink) {
    // The sink's column has no value: its score's gradient is −p_sink·Δ,
    // with p_sink = exp(sink − lse), the log-sum-exp counting the sink.
    double sum = 0.0;
    for (int64_t i = 0; i < tq; ++i)
      sum += std::exp((double)*hb.sink - lse[i]) * delta[i];
    *hb.dsink = (float)-sum;
  }
  Vectors dqAcc(tq * nd), dkAcc(kKeyBlock * nd), dvAcc(kKeyBlock * ndv);
  Vectors scores(kQueryBlock * kKeyVectors), dprobs(kQueryBlock * kKeyVectors);
  const float *qScalars = reinterpret_cast<const float *>(qRows.data);
  const float *doScalars = reinterpret_cast<const float *>(doRows.data);
  for (int64_t j0 = 0; j0 < tk; j0 += kKeyBlock) {
    int64_t cols = std::min(kKeyBlock, tk - j0);
    dkAcc.fill();
    dvAcc.fill();
    const V *kt = &kT[(j0 / kKeyBlock) * d * kKeyVectors];
    const V *vt = &vT[(j0 / kKeyBlock) * dvDim * kKeyVectors];
    for (int64_t i0 = 0; i0 < tq; i0 += kQueryBlock) {
      int64_t rows = std::min(kQueryBlock, tq - i0);
      int64_t firstPos = offset + i0, lastPos = firstPos + rows - 1;
      if (hb.causal && (lastPos < j0 || firstVisible(firstPos, true, hb.window, hb.segment) >= j0 + cols))
        continue; // every key of the block is in these queries' future or out of their view
      blockProducts(scores.data, qScalars + i0 * nd * kLanes, rows, nd * kLanes, kt, d);
      blockProducts(dprobs.data, doScalars + i0 * ndv * kLanes, rows, ndv * kLanes, vt, dvDim);
      // P and dS (before the scale) of the tile, zero where a query does not
      // see a key.
      for (int64_t i = 0; i < rows; ++i) {
        auto [lo, hi] = visibleKeys(firstPos + i, j0, cols, hb.causal, hb.window, hb.segment);
        V *s = &scores[i * kKeyVectors], *g = &dprobs[i * kKeyVectors];
        float rowLse = lse[i0 + i], rowDelta = delta[i0 + i];
        if (lo >= hi) {
          std::fill(s, s + kKeyVectors, V{});
          std::fill(g, g + kKeyVectors, V{});
          continue;
        }
        for (int64_t u = 0; u < kKeyVectors; ++u)
          s[u] = expNonPositive(s[u] * hb.scale - rowLse);
        maskOutside(s, lo, hi, 0.0f);
        for (int64_t u = 0; u < kKeyVectors; ++u)
          g[u] = s[u] * (g[u] - rowDelta);
      }
      const float *p = reinterpret_cast<const float *>(scores.data);
      const float *ds = reinterpret_cast<const float *>(dprobs.data);
      // dQᵢ += Σⱼ dSᵢⱼ·Kⱼ; dVⱼ += Σᵢ Pᵢⱼ·dOᵢ; dKⱼ += Σᵢ dSᵢⱼ·Qᵢ.
      weightedSumRows(&dqAcc[i0 * nd], nd, ds, kKeyBlock, 1, &kRows[j0 * nd], nd, cols, rows,
                      nd);
      weightedSumRows(dvAcc.data, ndv, p, 1, kKeyBlock, &doRows[i0 * ndv], ndv, rows, cols, ndv);
      weightedSumRows(dkAcc.data, nd, ds, 1, kKeyBlock, &qRows[i0 * nd], nd, rows, cols, nd);
    }
    for (int64_t j = 0; j < cols; ++j) {
      float *dkOut = hb.dk.at(hb.h, j0 + j), *dvOut = hb.dv.at(hb.h, j0 + j);
      int64_t dkStride = hb.dk.strides[2], dvStride = hb.dv.strides[2];
      for (int64_t c0 = 0; c0 < d; c0 += kLanes)
        storeChunk(dkAcc[j * nd + c0 / kLanes] * hb.scale, dkOut + c0 * dkStride, dkStride,
                   std::min(kLanes, d - c0));
      for (int64_t e0 = 0; e0 < dvDim; e0 += kLanes)
        storeChunk(dvAcc[j * ndv + e0 / kLanes], dvOut + e0 * dvStride, dvStride,
                   std::min(kLanes, dvDim - e0));
    }
  }
  for (int64_t i = 0; i < tq; ++i) {
    float *dqOut = hb.dq.at(hb.h, i);
    int64_t stride = hb.dq.strides[2];
    for (int64_t c0 = 0; c0 < d; c0 += kLanes)
      storeChunk(dqAcc[i * nd + c0 / kLanes] * hb.scale, dqOut + c0 * stride, stride,
                 std::min(kLanes, d - c0));
  }
}

/// Gradients of attention from its inputs, output, log-sum-exp and the
/// output's gradient. dK and dV come per query head ([H, Tk, ·]), as the
/// decomposed graph's repeat_kv VJP sums them; with sinks, their gradient [H].
void attentionBackward(StridedMemRefType<float, 3> *qm, StridedMemRefType<float, 3> *km,
                       StridedMemRefType<float, 3> *vm, const float *sinks,
                       StridedMemRefType<float, 3> *om, StridedMemRefType<float, 2> *lsem,
                       StridedMemRefType<float, 3> *doutm, StridedMemRefType<float, 1> *params,
                       StridedMemRefType<float, 3> *dqm, StridedMemRefType<float, 3> *dkm,
                       StridedMemRefType<float, 3> *dvm, float *dsinks) {
  View3 q = view(qm), k = view(km), v = view(vm), o = view(om), dout = view(doutm);
  Params p = readParams(params);
  if (!cpu::checkAttentionSizes(q.sizes[0], k.sizes[0], v.sizes[0], q.sizes[2], k.sizes[2],
                                p.causal))
    return;
  int64_t heads = q.sizes[1], kvHeads = k.sizes[1];
  int64_t group = std::max<int64_t>(1, heads / std::max<int64_t>(1, kvHeads));
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t h = 0; h < heads; ++h)
    runHeadBackward(HeadBackward{q, k, v, o, dout,
                                 lsem->data + lsem->offset + h * lsem->strides[0],
                                 lsem->strides[1], p.scale, p.causal, p.window,
                                 p.segmentLength(k.sizes[0]), h, h / group,
                                 outView(dqm), outView(dkm), outView(dvm),
                                 sinks ? sinks + h : nullptr, sinks ? dsinks + h : nullptr});
}

void attentionBackwardPlain(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 3> *k,
                            StridedMemRefType<float, 3> *v, StridedMemRefType<float, 3> *o,
                            StridedMemRefType<float, 2> *lse, StridedMemRefType<float, 3> *dout,
                            StridedMemRefType<float, 1> *params, StridedMemRefType<float, 3> *dq,
                            StridedMemRefType<float, 3> *dk, StridedMemRefType<float, 3> *dv) {
  attentionBackward(q, k, v, nullptr, o, lse, dout, params, dq, dk, dv, nullptr);
}

void attentionBackwardSinks(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 3> *k,
                            StridedMemRefType<float, 3> *v, StridedMemRefType<float, 1> *sinks,
                            StridedMemRefType<float, 3> *o, StridedMemRefType<float, 2> *lse,
                            StridedMemRefType<float, 3> *dout, StridedMemRefType<float, 1> *params,
                            StridedMemRefType<float, 3> *dq, StridedMemRefType<float, 3> *dk,
                            StridedMemRefType<float, 3> *dv, StridedMemRefType<float, 1> *dsinks) {
  std::vector<float> s = gather(sinks), ds(s.size());
  attentionBackward(q, k, v, s.data(), o, lse, dout, params, dq, dk, dv, ds.data());
  for (size_t h = 0; h < ds.size(); ++h)
    dsinks->data[dsinks->offset + h * dsinks->strides[0]] = ds[h];
}

const std::pair<const char *, void *> kSymbols[] = {
    {"_mlir_ciface_attnedit_cpu_attention", reinterpret_cast<void *>(&attentionPlain)},
    {"_mlir_ciface_attnedit_cpu_attention_sinks", reinterpret_cast<void *>(&attentionSinks)},
    {"_mlir_ciface_attnedit_cpu_attention_train", reinterpret_cast<void *>(&attentionTrain)},
    {"_mlir_ciface_attnedit_cpu_attention_train_sinks", reinterpret_cast<void *>(&attentionTrainSinks)},
    {"_mlir_ciface_attnedit_cpu_attention_backward", reinterpret_cast<void *>(&attentionBackwardPlain)},
    {"_mlir_ciface_attnedit_cpu_attention_backward_sinks", reinterpret_cast<void *>(&attentionBackwardSinks)},
};

} // namespace

llvm::ArrayRef<std::pair<const char *, void *>> cpu::attentionSymbols() { return kSymbols; }
