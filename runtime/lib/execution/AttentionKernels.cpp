//===- AttentionKernels.cpp - reference kernels of composite attention -----===//
//
// Each composite is computed directly (per-head GEMMs, no [H, T, T] score
// tensor for the whole layer) so the evaluator can run edited models without
// decomposing them; the decompositions in ir/lib/Decompositions.cpp are the
// definitions these kernels are tested against.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Runtime/Execution/Kernels.h"

#include <cblas.h>

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::attnedit;

namespace mlir::attnedit::kernels {

Tensor attend(const Tensor &q, const Tensor &k, const Tensor &v, double scale,
              int64_t window, const Tensor *sinks) {
  int64_t tq = q.dim(0), h = q.dim(1), dqk = q.dim(2);
  int64_t tk = k.dim(0), hkv = k.dim(1), dv = v.dim(2), group = h / hkv;
  Tensor out = Tensor::zeros({tq, h, dv});
  if (tq == 0)
    return out;
  std::vector<float> scores(tq * tk);
  for (int64_t head = 0; head < h; ++head) {
    int64_t kvHead = head / group;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, tq, tk, dqk, (float)scale,
                q.data() + head * dqk, h * dqk, k.data() + kvHead * dqk, hkv * dqk, 0.0f,
                scores.data(), tk);
    double sink = sinks ? sinks->data()[head] : -std::numeric_limits<double>::infinity();
    for (int64_t i = 0; i < tq; ++i) {
      float *row = scores.data() + i * tk;
      int64_t pos = tk - tq + i;
      int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
      double maxv = sink;
      for (int64_t j = first; j <= pos; ++j)
        maxv = std::max(maxv, (double)row[j]);
      double sum = sinks ? std::exp(sink - maxv) : 0.0;
      for (int64_t j = first; j <= pos; ++j)
        sum += std::exp(row[j] - maxv);
      for (int64_t j = 0; j < tk; ++j)
        row[j] = j < first || j > pos ? 0.0f : (float)(std::exp(row[j] - maxv) / sum);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, tq, dv, tk, 1.0f, scores.data(),
                tk, v.data() + kvHead * dv, hkv * dv, 0.0f, out.mutableData() + head * dv,
                h * dv);
  }
  return out;
}

Tensor attention(const Tensor &x, const Tensor &positions, const AttentionWeights &w,
                 const AttentionConfig &c) {
  int64_t t = x.dim(0), d = c.headDim;
  Tensor q = linear(x, *w.q, w.qBias).reshaped({t, c.heads, d});
  Tensor k = linear(x, *w.k, w.kBias).reshaped({t, c.kvHeads, d});
  Tensor v = linear(x, *w.v, w.vBias).reshaped({t, c.kvHeads, d});
  if (w.qNorm) {
    q = rmsNorm(q, *w.qNorm, c.normEps);
    k = rmsNorm(k, *w.kNorm, c.normEps);
  }
  Tensor heads = attend(rope(q, positions, c.rope), rope(k, positions, c.rope), v, c.scale,
                        c.window, w.sinks);
  if (c.gate != GateKind::None) {
    Tensor gate = sigmoid(linear(x, *w.gate, nullptr));
    gate = c.gate == GateKind::Headwise
               ? broadcast(gate.reshaped({t, c.heads, 1}), heads.shape())
               : gate.reshaped(heads.shape());
    heads = mul(heads, gate);
  }
  return linear(heads.reshaped({t, c.heads * d}), *w.o, nullptr);
}

/// Rows [offset, offset + count) of every head's block of `rowsPerHead` rows
/// in the [H·rowsPerHead, cols] matrix `w`, as [H, count, cols].
static Tensor headRows(const Tensor &w, int64_t heads, int64_t rowsPerHead, int64_t offset,
                       int64_t count) {
  return slice(w.reshaped({heads, rowsPerHead, w.dim(1)}), 1, offset, count);
}

Tensor mla(const Tensor &x, const Tensor &positions, const MlaWeights &w, const MlaConfig &c,
           bool absorbed) {
  int64_t t = x.dim(0), h = c.heads, n = c.nopeDim, r = c.ropeDim, dv = c.vDim;
  int64_t rank = c.kvLoraRank;
  Tensor q = w.qProj ? linear(x, *w.qProj, nullptr)
                     : linear(rmsNorm(linear(x, *w.qA, nullptr), *w.qANorm, c.normEps), *w.qB,
                              nullptr);
  q = q.reshaped({t, h, n + r});
  Tensor latent = linear(x, *w.kvA, nullptr);
  Tensor latentC = rmsNorm(slice(latent, 1, 0, rank), *w.kvANorm, c.normEps);
  Tensor qPe = rope(slice(q, 2, n, r), positions, c.rope);
  Tensor kPe = rope(slice(latent, 1, rank, r).reshaped({t, 1, r}), positions, c.rope);
  Tensor qNope = slice(q, 2, 0, n);

  if (!absorbed) {
    Tensor kv = linear(latentC, *w.kvB, nullptr).reshaped({t, h, n + dv});
    Tensor keys = concat({slice(kv, 2, 0, n), broadcast(kPe, {t, h, r})}, 2);
    Tensor heads = attend(concat({qNope, qPe}, 2), keys, slice(kv, 2, n, dv), c.scale, 0,
                          nullptr);
    return linear(heads.reshaped({t, h * dv}), *w.o, nullptr);
  }
  // Absorbed: per head, q̃ = W_UKᵀ·q_nope lives in the latent space, so every
  // head attends to the one shared [c; k_pe] key and reads the latent c as its
  // value; W_UV then maps the latent output back to the head's dv values.
  Tensor wUk = headRows(*w.kvB, h, n + dv, 0, n);  // [H, n, rank]
  Tensor wUv = headRows(*w.kvB, h, n + dv, n, dv); // [H, dv, rank]
  Tensor qLatent = transpose(matmul(transpose(qNope, {1, 0, 2}), wUk), {1, 0, 2});
  Tensor queries = concat({qLatent, qPe}, 2);                          // [T, H, rank + r]
  Tensor keys = concat({latentC.reshaped({t, 1, rank}), kPe}, 2);      // [T, 1, rank + r]
  Tensor latentOut = attend(queries, keys, latentC.reshaped({t, 1, rank}), c.scale, 0,
                            nullptr);                                  // [T, H, rank]
  Tensor heads = matmul(transpose(latentOut, {1, 0, 2}), transpose(wUv, {0, 2, 1}));
  return linear(transpose(heads, {1, 0, 2}).reshaped({t, h * dv}), *w.o, nullptr);
}

} // namespace mlir::attnedit::kernels
