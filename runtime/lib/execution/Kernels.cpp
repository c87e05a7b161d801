//===- Kernels.cpp - reference kernels -------------------------------------===//
//
// Reductions (RMSNorm, softmax) accumulate in double so that the oracle's own
// rounding stays far below the 1e-4 tolerance used against PyTorch.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Runtime/Execution/Kernels.h"
#include "attnedit/IR/RopeFrequencies.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::attnedit;

namespace mlir::attnedit::kernels {

llvm::Expected<Tensor> embedding(const Tensor &table, const Tensor &ids) {
  int64_t vocab = table.dim(0), width = table.dim(1), t = ids.dim(0);
  Tensor out = Tensor::zeros({t, width});
  for (int64_t i = 0; i < t; ++i) {
    int32_t id = ids.intValues()[i];
    if (id < 0 || id >= vocab)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "token id %d at position %lld is outside the "
                                     "vocabulary [0, %lld)",
                                     id, (long long)i, (long long)vocab);
    std::copy_n(table.data() + id * width, width, out.mutableData() + i * width);
  }
  return out;
}

Tensor linear(const Tensor &x, const Tensor &w, const Tensor *bias) {
  int64_t k = x.dim(-1), n = w.dim(0), m = x.numel() / k;
  llvm::SmallVector<int64_t, 4> shape(x.shape());
  shape.back() = n;
  Tensor out = Tensor::zeros(shape);
  float *y = out.mutableData();
  if (bias)
    for (int64_t i = 0; i < m; ++i)
      std::copy_n(bias->data(), n, y + i * n);
  if (m > 0)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x.data(), k,
                w.data(), k, bias ? 1.0f : 0.0f, y, n);
  return out;
}

Tensor rmsNorm(const Tensor &x, const Tensor &w, double eps) {
  int64_t d = x.dim(-1), rows = x.numel() / d;
  Tensor out = Tensor::zeros(x.shape());
  for (int64_t r = 0; r < rows; ++r) {
    const float *in = x.data() + r * d;
    double sum = 0;
    for (int64_t i = 0; i < d; ++i)
      sum += (double)in[i] * in[i];
    double inv = 1.0 / std::sqrt(sum / d + eps);
    float *o = out.mutableData() + r * d;
    for (int64_t i = 0; i < d; ++i)
      o[i] = (float)(in[i] * inv * w.data()[i]);
  }
  return out;
}

std::vector<double> ropeInverseFrequencies(const RopeConfig &config) {
  return attnedit::ropeInverseFrequencies(config.theta, config.rotaryDim, config.llama3Scaling);
}

Tensor rope(const Tensor &x, const Tensor &positions, const RopeConfig &config) {
  int64_t t = x.dim(0), h = x.dim(1), d = x.dim(2), half = config.rotaryDim / 2;
  std::vector<double> inv = ropeInverseFrequencies(config);
  Tensor out = Tensor::zeros(x.shape());
  std::copy_n(x.data(), x.numel(), out.mutableData());
  std::vector<float> cosv(half), sinv(half);
  for (int64_t ti = 0; ti < t; ++ti) {
    for (int64_t i = 0; i < half; ++i) {
      double angle = positions.intValues()[ti] * inv[i] * (config.inverse ? -1 : 1);
      cosv[i] = (float)std::cos(angle);
      sinv[i] = (float)std::sin(angle);
    }
    for (int64_t hi = 0; hi < h; ++hi) {
      const float *in = x.data() + (ti * h + hi) * d;
      float *o = out.mutableData() + (ti * h + hi) * d;
      for (int64_t i = 0; i < half; ++i) {
        // rotate_half pairs (i, i + half); interleaved pairs (2i, 2i + 1).
        int64_t a = config.interleaved ? 2 * i : i;
        int64_t b = config.interleaved ? 2 * i + 1 : i + half;
        o[a] = in[a] * cosv[i] - in[b] * sinv[i];
        o[b] = in[b] * cosv[i] + in[a] * sinv[i];
      }
    }
  }
  return out;
}

Tensor matmul(const Tensor &a, const Tensor &b) {
  int64_t m = a.dim(-2), k = a.dim(-1), n = b.dim(-1);
  int64_t batch = a.numel() / (m * k);
  llvm::SmallVector<int64_t, 4> shape(a.shape());
  shape.back() = n;
  Tensor out = Tensor::zeros(shape);
  if (m == 0 || n == 0 || k == 0)
    return out;
  for (int64_t i = 0; i < batch; ++i)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f,
                a.data() + i * m * k, k, b.data() + i * k * n, n, 0.0f,
                out.mutableData() + i * m * n, n);
  return out;
}

/// Splits `shape` around `axis` into (outer, axis length, inner) counts.
static std::array<int64_t, 3> around(llvm::ArrayRef<int64_t> shape, int64_t axis) {
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i)
    outer *= shape[i];
  for (size_t i = axis + 1; i < shape.size(); ++i)
    inner *= shape[i];
  return {outer, shape[axis], inner};
}

Tensor softmax(const Tensor &x, int64_t axis, const Tensor *sinks) {
  auto [outer, len, inner] = around(x.shape(), axis);
  int64_t rowsPerHead = sinks ? outer / x.dim(0) : 1;
  Tensor out = Tensor::zeros(x.shape());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const float *in = x.data() + o * len * inner + i;
      float *res = out.mutableData() + o * len * inner + i;
      float sink = sinks ? sinks->data()[o / rowsPerHead]
                         : -std::numeric_limits<float>::infinity();
      float maxv = sink;
      for (int64_t j = 0; j < len; ++j)
        maxv = std::max(maxv, in[j * inner]);
      if (maxv == -std::numeric_limits<float>::infinity())
        continue; // every entry masked: no weight anywhere
      // One exp per entry, none for masked ones (half of a causal row);
      // float exp is within an ulp of the rounded double one, the sum is
      // accumulated in double.
      const float ninf = -std::numeric_limits<float>::infinity();
      double sum = sinks ? std::exp((double)sink - maxv) : 0.0;
      for (int64_t j = 0; j < len; ++j) {
        float e = in[j * inner] == ninf ? 0.0f : std::exp(in[j * inner] - maxv);
        res[j * inner] = e;
        sum += e;
      }
      float scale = (float)(1.0 / sum);
      for (int64_t j = 0; j < len; ++j)
        res[j * inner] *= scale;
    }
  return out;
}

Tensor causalMask(const Tensor &x, int64_t window, bool zeroFill, int64_t segments) {
  int64_t tq = x.dim(-2), tk = x.dim(-1), batch = x.numel() / std::max<int64_t>(1, tq * tk);
  int64_t length = segments > 1 ? tk / segments : tk + 1;
  Tensor out = Tensor::zeros(x.shape());
  std::copy_n(x.data(), x.numel(), out.mutableData());
  const float ninf = zeroFill ? 0.0f : -std::numeric_limits<float>::infinity();
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t i = 0; i < tq; ++i) {
      int64_t pos = tk - tq + i, start = pos - pos % length;
      float *row = out.mutableData() + (b * tq + i) * tk;
      for (int64_t j = 0; j < tk; ++j)
        if (j > pos || j < start || (window > 0 && pos - j >= window))
          row[j] = ninf;
    }
  return out;
}

Tensor repeatKv(const Tensor &x, int64_t repeats) {
  int64_t h = x.dim(0), block = x.numel() / std::max<int64_t>(1, h);
  Tensor out = Tensor::zeros({h * repeats, x.dim(1), x.dim(2)});
  for (int64_t i = 0; i < h; ++i)
    for (int64_t r = 0; r < repeats; ++r)
      std::copy_n(x.data() + i * block, block, out.mutableData() + (i * repeats + r) * block);
  return out;
}

template <typename F>
static Tensor map(const Tensor &x, F f) {
  Tensor out = Tensor::zeros(x.shape());
  for (int64_t i = 0, n = x.numel(); i < n; ++i)
    out.mutableData()[i] = f(x.data()[i]);
  return out;
}

template <typename F>
static Tensor zip(const Tensor &a, const Tensor &b, F f) {
  Tensor out = Tensor::zeros(a.shape());
  for (int64_t i = 0, n = a.numel(); i < n; ++i)
    out.mutableData()[i] = f(a.data()[i], b.data()[i]);
  return out;
}

Tensor silu(const Tensor &x) {
  return map(x, [](float v) { return (float)(v / (1.0 + std::exp(-(double)v))); });
}
Tensor sigmoid(const Tensor &x) {
  return map(x, [](float v) { return (float)(1.0 / (1.0 + std::exp(-(double)v))); });
}
Tensor broadcast(const Tensor &x, llvm::ArrayRef<int64_t> shape) {
  int64_t rank = x.rank();
  llvm::SmallVector<int64_t, 6> strides(rank, 0);
  for (int64_t i = rank - 1, stride = 1; i >= 0; stride *= x.dim(i), --i)
    strides[i] = x.dim(i) == 1 ? 0 : stride;
  Tensor out = Tensor::zeros(shape);
  llvm::SmallVector<int64_t, 6> index(rank, 0);
  float *o = out.mutableData();
  for (int64_t n = 0, total = out.numel(); n < total; ++n) {
    int64_t src = 0;
    for (int64_t i = 0; i < rank; ++i)
      src += index[i] * strides[i];
    o[n] = x.data()[src];
    for (int64_t i = rank - 1; i >= 0 && ++index[i] == shape[i]; --i)
      index[i] = 0;
  }
  return out;
}
Tensor add(const Tensor &a, const Tensor &b) {
  return zip(a, b, [](float x, float y) { return x + y; });
}
Tensor mul(const Tensor &a, const Tensor &b) {
  return zip(a, b, [](float x, float y) { return x * y; });
}
Tensor scale(const Tensor &x, double factor) {
  return map(x, [factor](float v) { return (float)(v * factor); });
}

Tensor transpose(const Tensor &x, llvm::ArrayRef<int64_t> perm) {
  int64_t rank = x.rank();
  llvm::SmallVector<int64_t, 6> outShape, inStrides(rank, 1), strides(rank);
  for (int64_t i = rank - 2; i >= 0; --i)
    inStrides[i] = inStrides[i + 1] * x.dim(i + 1);
  for (int64_t i = 0; i < rank; ++i) {
    outShape.push_back(x.dim(perm[i]));
    strides[i] = inStrides[perm[i]];
  }
  Tensor out = Tensor::zeros(outShape);
  if (rank == 0 || out.numel() == 0) {
    std::copy_n(x.data(), out.numel(), out.mutableData());
    return out;
  }
  // Walk the output row by row: the index arithmetic runs once per row of
  // the last output axis, the copy loop is a plain strided gather.
  llvm::SmallVector<int64_t, 6> index(rank, 0);
  int64_t rowLength = outShape[rank - 1], rowStride = strides[rank - 1];
  float *o = out.mutableData();
  const float *in = x.data();
  for (int64_t n = 0, total = x.numel(); n < total; n += rowLength) {
    int64_t src = 0;
    for (int64_t i = 0; i + 1 < rank; ++i)
      src += index[i] * strides[i];
    for (int64_t j = 0; j < rowLength; ++j)
      o[n + j] = in[src + j * rowStride];
    for (int64_t i = rank - 2; i >= 0 && ++index[i] == outShape[i]; --i)
      index[i] = 0;
  }
  return out;
}

Tensor slice(const Tensor &x, int64_t axis, int64_t offset, int64_t size) {
  auto [outer, len, inner] = around(x.shape(), axis);
  llvm::SmallVector<int64_t, 4> shape(x.shape());
  shape[axis] = size;
  Tensor out = Tensor::zeros(shape);
  for (int64_t o = 0; o < outer; ++o)
    std::copy_n(x.data() + (o * len + offset) * inner, size * inner,
                out.mutableData() + o * size * inner);
  return out;
}

Tensor concat(llvm::ArrayRef<Tensor> xs, int64_t axis) {
  llvm::SmallVector<int64_t, 4> shape(xs.front().shape());
  shape[axis] = 0;
  for (const Tensor &x : xs)
    shape[axis] += x.dim(axis);
  auto [outer, total, inner] = around(shape, axis);
  Tensor out = Tensor::zeros(shape);
  int64_t at = 0;
  for (const Tensor &x : xs) {
    int64_t len = x.dim(axis);
    for (int64_t o = 0; o < outer; ++o)
      std::copy_n(x.data() + o * len * inner, len * inner,
                  out.mutableData() + (o * total + at) * inner);
    at += len;
  }
  return out;
}

Tensor reduceSum(const Tensor &x, int64_t axis, bool keepDims) {
  auto [outer, len, inner] = around(x.shape(), axis);
  llvm::SmallVector<int64_t, 4> shape(x.shape());
  if (keepDims)
    shape[axis] = 1;
  else
    shape.erase(shape.begin() + axis);
  Tensor out = Tensor::zeros(shape);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < len; ++j)
        sum += x.data()[(o * len + j) * inner + i];
      out.mutableData()[o * inner + i] = (float)sum;
    }
  return out;
}

Tensor pad(const Tensor &x, int64_t axis, int64_t before, int64_t after) {
  auto [outer, len, inner] = around(x.shape(), axis);
  llvm::SmallVector<int64_t, 4> shape(x.shape());
  shape[axis] = len + before + after;
  Tensor out = Tensor::zeros(shape);
  for (int64_t o = 0; o < outer; ++o)
    std::copy_n(x.data() + o * len * inner, len * inner,
                out.mutableData() + (o * shape[axis] + before) * inner);
  return out;
}

Tensor embeddingGrad(const Tensor &grad, const Tensor &ids, int64_t vocab) {
  int64_t width = grad.dim(1);
  Tensor out = Tensor::zeros({vocab, width});
  for (int64_t t = 0; t < ids.dim(0); ++t) {
    float *row = out.mutableData() + ids.intValues()[t] * width;
    for (int64_t i = 0; i < width; ++i)
      row[i] += grad.data()[t * width + i];
  }
  return out;
}

/// 1 / sqrt(mean(x²) + eps) of each row of width d.
static std::vector<double> inverseRms(const Tensor &x, double eps) {
  int64_t d = x.dim(-1), rows = x.numel() / std::max<int64_t>(1, d);
  std::vector<double> inv(rows);
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0;
    for (int64_t i = 0; i < d; ++i)
      sum += (double)x.data()[r * d + i] * x.data()[r * d + i];
    inv[r] = 1.0 / std::sqrt(sum / d + eps);
  }
  return inv;
}

Tensor rmsNormGrad(const Tensor &x, const Tensor &w, const Tensor &grad, double eps) {
  // dx_j = r·w_j·g_j − x_j·r³/d · Σ_i g_i·w_i·x_i
  int64_t d = x.dim(-1);
  std::vector<double> inv = inverseRms(x, eps);
  Tensor out = Tensor::zeros(x.shape());
  for (int64_t r = 0; r < (int64_t)inv.size(); ++r) {
    const float *xr = x.data() + r * d, *gr = grad.data() + r * d;
    double dot = 0;
    for (int64_t i = 0; i < d; ++i)
      dot += (double)gr[i] * w.data()[i] * xr[i];
    double k = inv[r] * inv[r] * inv[r] * dot / d;
    for (int64_t i = 0; i < d; ++i)
      out.mutableData()[r * d + i] = (float)(inv[r] * w.data()[i] * gr[i] - xr[i] * k);
  }
  return out;
}

Tensor rmsNormWeightGrad(const Tensor &x, const Tensor &grad, double eps) {
  int64_t d = x.dim(-1);
  std::vector<double> inv = inverseRms(x, eps), sum(d, 0.0);
  for (int64_t r = 0; r < (int64_t)inv.size(); ++r)
    for (int64_t i = 0; i < d; ++i)
      sum[i] += (double)grad.data()[r * d + i] * x.data()[r * d + i] * inv[r];
  Tensor out = Tensor::zeros({d});
  for (int64_t i = 0; i < d; ++i)
    out.mutableData()[i] = (float)sum[i];
  return out;
}

Tensor softmaxGrad(const Tensor &y, const Tensor &grad, int64_t axis) {
  auto [outer, len, inner] = around(y.shape(), axis);
  Tensor out = Tensor::zeros(y.shape());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t base = o * len * inner + i;
      double dot = 0;
      for (int64_t j = 0; j < len; ++j)
        dot += (double)grad.data()[base + j * inner] * y.data()[base + j * inner];
      for (int64_t j = 0; j < len; ++j) {
        int64_t at = base + j * inner;
        out.mutableData()[at] = (float)(y.data()[at] * (grad.data()[at] - dot));
      }
    }
  return out;
}

Tensor sinkGrad(const Tensor &y, const Tensor &grad) {
  int64_t h = y.dim(0), rows = y.dim(1), len = y.dim(2);
  Tensor out = Tensor::zeros({h});
  for (int64_t head = 0; head < h; ++head) {
    double total = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const float *p = y.data() + (head * rows + r) * len;
      const float *g = grad.data() + (head * rows + r) * len;
      double mass = 0, dot = 0;
      for (int64_t j = 0; j < len; ++j) {
        mass += p[j];
        dot += (double)g[j] * p[j];
      }
      total -= (1.0 - mass) * dot;
    }
    out.mutableData()[head] = (float)total;
  }
  return out;
}

Tensor siluGrad(const Tensor &x, const Tensor &grad) {
  return zip(x, grad, [](float v, float g) {
    double s = 1.0 / (1.0 + std::exp(-(double)v));
    return (float)(g * (s + v * s * (1 - s)));
  });
}

Tensor sigmoidGrad(const Tensor &y, const Tensor &grad) {
  return zip(y, grad, [](float v, float g) { return (float)((double)g * v * (1.0 - v)); });
}

} // namespace mlir::attnedit::kernels
