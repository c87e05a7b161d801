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
#include <limits>
#include <vector>

using namespace mlir::attnedit;
using namespace mlir::attnedit::cpu::detail;

namespace {

constexpr int64_t kQueryBlock = 32;
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
  float scale, sink;
  bool causal, hasSink;
  int64_t window, h, hk, q0, rows;
};

constexpr int64_t kKeyVectors = kKeyBlock / kLanes;

/// ai = ai·correction + Σ_{j in [lo, hi)} p[j]·vb[j], for rows of NV
/// vectors: the accumulators stay in registers, two sets (even and odd
/// keys) so that consecutive FMAs do not wait on each other.
template <int NV>
inline void accumulateValues(V *ai, const float *p, const V *vb, int64_t lo, int64_t hi,
                             float correction) {
  V a0[NV], a1[NV];
#pragma GCC unroll 8
  for (int e = 0; e < NV; ++e) {
    a0[e] = ai[e] * correction;
    a1[e] = V{};
  }
  int64_t j = lo;
  for (; j + 1 < hi; j += 2) {
    V p0 = splat(p[j]), p1 = splat(p[j + 1]);
    const V *v0 = vb + j * NV, *v1 = v0 + NV;
#pragma GCC unroll 8
    for (int e = 0; e < NV; ++e) {
      a0[e] += p0 * v0[e];
      a1[e] += p1 * v1[e];
    }
  }
  if (j < hi) {
    V p0 = splat(p[j]);
#pragma GCC unroll 8
    for (int e = 0; e < NV; ++e)
      a0[e] += p0 * vb[j * NV + e];
  }
#pragma GCC unroll 8
  for (int e = 0; e < NV; ++e)
    ai[e] = a0[e] + a1[e];
}

/// The same for any width (value heads wider than 128).
inline void accumulateValues(V *ai, const float *p, const V *vb, int64_t lo, int64_t hi,
                             float correction, int64_t nv) {
  for (int64_t e = 0; e < nv; ++e)
    ai[e] *= correction;
  for (int64_t j = lo; j < hi; ++j) {
    V pj = splat(p[j]);
    for (int64_t e = 0; e < nv; ++e)
      ai[e] += pj * vb[j * nv + e];
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
  std::vector<float> qt(rows * d);
  Vectors acc(rows * dvVectors), scores(rows * kKeyVectors);
  std::vector<float> m(rows, qb.hasSink ? qb.sink : ninf);
  std::vector<float> l(rows, qb.hasSink ? 1.0f : 0.0f);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t c = 0; c < d; ++c)
      qt[i * d + c] = q(qb.q0 + i, qb.h, c);
  VI lane;
  for (int i = 0; i < kLanes; ++i)
    lane[i] = i;
  // Keys this block may see: [first, last].
  int64_t firstPos = offset + qb.q0, lastPos = firstPos + rows - 1;
  int64_t last = qb.causal ? std::min(tk - 1, lastPos) : tk - 1;
  int64_t first = qb.causal && qb.window > 0 ? std::max<int64_t>(0, firstPos - qb.window + 1) : 0;
  first -= first % kKeyBlock; // whole packed blocks; keys before `first` are masked below
  for (int64_t j0 = first; j0 <= last; j0 += kKeyBlock) {
    int64_t cols = std::min(kKeyBlock, last + 1 - j0);
    const V *kt = qb.kPacked + (j0 / kKeyBlock) * d * kKeyVectors;
    const V *vb = qb.vPacked + j0 * dvVectors;
    // Scores of the block's queries against the key block, (q·k) before the
    // scale as the reference computes them: two queries at a time, so each
    // kᵀ vector loaded feeds eight independent accumulators.
    for (int64_t i = 0; i < rows; i += 2) {
      const float *qa = &qt[i * d], *qb2 = i + 1 < rows ? qa + d : qa;
      V a[kKeyVectors] = {}, b[kKeyVectors] = {};
      for (int64_t c = 0; c < d; ++c) {
        V x = splat(qa[c]), y = splat(qb2[c]);
#pragma GCC unroll 4
        for (int64_t u = 0; u < kKeyVectors; ++u) {
          V key = kt[c * kKeyVectors + u];
          a[u] += x * key;
          b[u] += y * key;
        }
      }
      for (int64_t u = 0; u < kKeyVectors; ++u) {
        scores[i * kKeyVectors + u] = a[u];
        if (i + 1 < rows)
          scores[(i + 1) * kKeyVectors + u] = b[u];
      }
    }
    for (int64_t i = 0; i < rows; ++i) {
      V *s = &scores[i * kKeyVectors];
      // Keys of this block query i keeps: [lo, hi).
      int64_t pos = firstPos + i, lo = 0, hi = cols;
      if (qb.causal) {
        hi = std::clamp<int64_t>(pos + 1 - j0, 0, cols);
        if (qb.window > 0)
          lo = std::clamp<int64_t>(pos - qb.window + 1 - j0, 0, hi);
      }
      if (lo >= hi)
        continue; // Nothing visible in this block.
      V rowMax = splat(m[i]);
      for (int64_t u = 0; u < kKeyVectors; ++u) {
        VI col = lane + (int32_t)(u * kLanes);
        s[u] = (col >= (int32_t)lo) & (col < (int32_t)hi) ? s[u] * qb.scale : splat(ninf);
        rowMax = rowMax > s[u] ? rowMax : s[u];
      }
      float newMax = horizontalMax(rowMax);
      float correction = expNonPositive(m[i] - newMax);
      V sum{};
      for (int64_t u = 0; u < kKeyVectors; ++u) {
        s[u] = expNonPositive(s[u] - newMax);
        sum += s[u];
      }
      m[i] = newMax;
      l[i] = l[i] * correction + horizontalSum(sum);
      V *ai = &acc[i * dvVectors];
      const float *p = reinterpret_cast<const float *>(s);
      switch (dvVectors) {
      case 1: accumulateValues<1>(ai, p, vb, lo, hi, correction); break;
      case 2: accumulateValues<2>(ai, p, vb, lo, hi, correction); break;
      case 3: accumulateValues<3>(ai, p, vb, lo, hi, correction); break;
      case 4: accumulateValues<4>(ai, p, vb, lo, hi, correction); break;
      case 8: accumulateValues<8>(ai, p, vb, lo, hi, correction); break;
      default: accumulateValues(ai, p, vb, lo, hi, correction, dvVectors); break;
      }
    }
  }
  for (int64_t i = 0; i < rows; ++i) {
    float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    float *o = qb.out + (qb.q0 + i) * qb.outStrides[0] + qb.h * qb.outStrides[1];
    const float *ai = reinterpret_cast<const float *>(&acc[i * dvVectors]);
    for (int64_t e = 0; e < dv; ++e)
      o[e * qb.outStrides[2]] = ai[e] * inv;
  }
}

void attention(StridedMemRefType<float, 3> *qm, StridedMemRefType<float, 3> *km,
               StridedMemRefType<float, 3> *vm, const float *sinks,
               StridedMemRefType<float, 1> *params, StridedMemRefType<float, 3> *outm) {
  View3 q = view(qm), k = view(km), v = view(vm);
  const float *p = params->data + params->offset;
  float scale = p[0 * params->strides[0]];
  bool causal = p[1 * params->strides[0]] != 0.0f;
  auto window = static_cast<int64_t>(p[2 * params->strides[0]]);
  int64_t tq = q.sizes[0], heads = q.sizes[1], kvHeads = k.sizes[1];
  int64_t group = std::max<int64_t>(1, heads / std::max<int64_t>(1, kvHeads));
  int64_t d = q.sizes[2], dv = v.sizes[2], tk = k.sizes[0];
  int64_t dvVectors = (dv + kLanes - 1) / kLanes, keyBlocks = (tk + kKeyBlock - 1) / kKeyBlock;
  int64_t kPerHead = keyBlocks * d * kKeyVectors, vPerHead = keyBlocks * kKeyBlock * dvVectors;
  Vectors kPacked(kvHeads * kPerHead), vPacked(kvHeads * vPerHead);
  int64_t blocks = (tq + kQueryBlock - 1) / kQueryBlock;
  float *out = outm->data + outm->offset;
#pragma omp parallel
  {
#pragma omp for schedule(static)
    for (int64_t task = 0; task < kvHeads * keyBlocks; ++task) {
      int64_t hk = task / keyBlocks, j0 = (task % keyBlocks) * kKeyBlock;
      float *kt = reinterpret_cast<float *>(&kPacked[hk * kPerHead + (j0 / kKeyBlock) * d * kKeyVectors]);
      float *vb = reinterpret_cast<float *>(&vPacked[hk * vPerHead + j0 * dvVectors]);
      for (int64_t j = 0; j < std::min(kKeyBlock, tk - j0); ++j) {
        for (int64_t c = 0; c < d; ++c)
          kt[c * kKeyBlock + j] = k(j0 + j, hk, c);
        for (int64_t e = 0; e < dv; ++e)
          vb[j * dvVectors * kLanes + e] = v(j0 + j, hk, e);
      }
    }
    // Later query blocks see more keys: hand them out first.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < blocks * heads; ++task) {
      int64_t block = blocks - 1 - task / heads, h = task % heads, hk = h / group;
      int64_t q0 = block * kQueryBlock;
      runQueryBlock(QueryBlock{q, &kPacked[hk * kPerHead], &vPacked[hk * vPerHead], tk, dv, out,
                               outm->strides, scale, sinks ? sinks[h] : 0.0f, causal,
                               sinks != nullptr, window, h, hk, q0,
                               std::min(kQueryBlock, tq - q0)});
    }
  }
}

void attentionPlain(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 3> *k,
                    StridedMemRefType<float, 3> *v, StridedMemRefType<float, 1> *params,
                    StridedMemRefType<float, 3> *out) {
  attention(q, k, v, nullptr, params, out);
}

void attentionSinks(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 3> *k,
                    StridedMemRefType<float, 3> *v, StridedMemRefType<float, 1> *sinks,
                    StridedMemRefType<float, 1> *params, StridedMemRefType<float, 3> *out) {
  // Sinks are a parameter vector: contiguous unless a caller sliced it.
  std::vector<float> s(sinks->sizes[0]);
  for (int64_t h = 0; h < sinks->sizes[0]; ++h)
    s[h] = sinks->data[sinks->offset + h * sinks->strides[0]];
  attention(q, k, v, s.data(), params, out);
}

const std::pair<const char *, void *> kSymbols[] = {
    {"_mlir_ciface_attnedit_cpu_attention", reinterpret_cast<void *>(&attentionPlain)},
    {"_mlir_ciface_attnedit_cpu_attention_sinks", reinterpret_cast<void *>(&attentionSinks)},
};

} // namespace

llvm::ArrayRef<std::pair<const char *, void *>> cpu::attentionSymbols() { return kSymbols; }
