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

#include "attnedit/CPU/JitModule.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

using namespace mlir::attnedit;

namespace {

constexpr int64_t kQueryBlock = 32;
constexpr int64_t kKeyBlock = 64;

/// exp(x) for x <= 0 (scores minus their row maximum), 0 below exp's float
/// range, within 2 ulp: Cephes' expf polynomial (S. Moshier). Rounding by
/// the 1.5·2²³ trick and a bit cast instead of floor() and memcpy keep it
/// branch free and call free, so the loops calling it vectorize.
inline float expNonPositive(float x) {
  float clamped = x < -87.0f ? -87.0f : x;
  constexpr float kRound = 12582912.0f; // 1.5 · 2²³
  float n = (clamped * 1.44269504088896341f + kRound) - kRound;
  float r = clamped - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  float scaleBy = __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23);
  return x < -87.0f ? 0.0f : p * scaleBy;
}

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
  const View3 &q, &k, &v;
  float *out;
  const int64_t *outStrides;
  float scale, sink;
  bool causal, hasSink;
  int64_t window, h, hk, q0, rows;
};

/// Cloned per ISA (GCC function multiversioning, chosen once at load time
/// from the CPU's features): the simd loops become 16-wide on AVX-512.
__attribute__((target_clones("avx512f", "avx2", "default"))) void
runQueryBlock(const QueryBlock &qb) {
  const View3 &q = qb.q, &k = qb.k, &v = qb.v;
  float scale = qb.scale, sink = qb.sink;
  bool causal = qb.causal, hasSink = qb.hasSink;
  int64_t window = qb.window, h = qb.h, hk = qb.hk, q0 = qb.q0, rows = qb.rows;
  {
    int64_t d = q.sizes[2], dv = v.sizes[2], tk = k.sizes[0];
    int64_t offset = tk - q.sizes[0];
    std::vector<float> qt(rows * d), kt(d * kKeyBlock), vb(kKeyBlock * dv), s(kKeyBlock),
        acc(rows * dv, 0.0f);
    std::vector<float> m(rows, hasSink ? sink : -std::numeric_limits<float>::infinity());
    std::vector<float> l(rows, hasSink ? 1.0f : 0.0f);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t c = 0; c < d; ++c)
        qt[i * d + c] = q(q0 + i, h, c);
    // Keys this block may see: [first, last].
    int64_t lastPos = offset + q0 + rows - 1, firstPos = offset + q0;
    int64_t last = causal ? std::min(tk - 1, lastPos) : tk - 1;
    int64_t first = causal && window > 0 ? std::max<int64_t>(0, firstPos - window + 1) : 0;
    for (int64_t j0 = first; j0 <= last; j0 += kKeyBlock) {
      int64_t cols = std::min(kKeyBlock, last + 1 - j0);
      for (int64_t j = 0; j < cols; ++j) {
        for (int64_t c = 0; c < d; ++c)
          kt[c * kKeyBlock + j] = k(j0 + j, hk, c);
        for (int64_t e = 0; e < dv; ++e)
          vb[j * dv + e] = v(j0 + j, hk, e);
      }
      for (int64_t i = 0; i < rows; ++i) {
        // Scores of query i against this key block, as the reference
        // computes them: (q·k) then the scale.
        float *si = s.data();
        std::fill(si, si + kKeyBlock, 0.0f);
        const float *qi = &qt[i * d];
        for (int64_t c = 0; c < d; ++c) {
          float qc = qi[c];
          const float *kc = &kt[c * kKeyBlock];
#pragma omp simd
          for (int64_t j = 0; j < kKeyBlock; ++j)
            si[j] += qc * kc[j];
        }
        int64_t pos = offset + q0 + i;
        // Keys of this block query i keeps: [lo, hi).
        int64_t lo = 0, hi = cols;
        if (causal) {
          hi = std::clamp<int64_t>(pos + 1 - j0, 0, cols);
          if (window > 0)
            lo = std::clamp<int64_t>(pos - window + 1 - j0, 0, hi);
        }
        float rowMax = m[i];
#pragma omp simd reduction(max : rowMax)
        for (int64_t j = lo; j < hi; ++j) {
          si[j] *= scale;
          rowMax = std::max(rowMax, si[j]);
        }
        if (rowMax == -std::numeric_limits<float>::infinity())
          continue; // Nothing visible yet: the row stays empty.
        float correction = expNonPositive(m[i] - rowMax), sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t j = lo; j < hi; ++j) {
          si[j] = expNonPositive(si[j] - rowMax);
          sum += si[j];
        }
        m[i] = rowMax;
        l[i] = l[i] * correction + sum;
        float *ai = &acc[i * dv];
#pragma omp simd
        for (int64_t e = 0; e < dv; ++e)
          ai[e] *= correction;
        for (int64_t j = lo; j < hi; ++j) {
          float p = si[j];
          const float *vj = &vb[j * dv];
#pragma omp simd
          for (int64_t e = 0; e < dv; ++e)
            ai[e] += p * vj[e];
        }
      }
    }
    for (int64_t i = 0; i < rows; ++i) {
      float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
      float *o = qb.out + (q0 + i) * qb.outStrides[0] + h * qb.outStrides[1];
      for (int64_t e = 0; e < dv; ++e)
        o[e * qb.outStrides[2]] = acc[i * dv + e] * inv;
    }
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
  int64_t blocks = (tq + kQueryBlock - 1) / kQueryBlock;
  float *out = outm->data + outm->offset;
  // Later query blocks see more keys: hand them out first.
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t task = 0; task < blocks * heads; ++task) {
    int64_t block = blocks - 1 - task / heads, h = task % heads;
    int64_t q0 = block * kQueryBlock;
    runQueryBlock(QueryBlock{q, k, v, out, outm->strides, scale, sinks ? sinks[h] : 0.0f, causal,
                             sinks != nullptr, window, h, h / group, q0,
                             std::min(kQueryBlock, tq - q0)});
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
