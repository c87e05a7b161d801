//===- LossKernels.cpp - distillation and language-model losses ------------===//
//
// Every loss is a mean over rows (all axes but the last), accumulated in
// double; the gradients are the closed forms of those means. Cross entropy
// skips rows whose target is -1 (PyTorch's ignore_index) and averages over
// the others, so a task can supervise only the positions that matter.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Runtime/Execution/Kernels.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::attnedit;

namespace {

Tensor scalar(double value) {
  Tensor t = Tensor::zeros({});
  t.mutableData()[0] = (float)value;
  return t;
}

constexpr int32_t kIgnoredTarget = -1;

/// Rows that count towards the mean: all, or for cross entropy the ones
/// with a target.
int64_t countedRows(LossKind kind, const Tensor &rhs, int64_t rows) {
  if (kind != LossKind::CrossEntropy)
    return rows;
  return std::count_if(rhs.intValues(), rhs.intValues() + rows,
                       [](int32_t t) { return t != kIgnoredTarget; });
}

llvm::Error badTarget(int64_t row, int32_t id, int64_t vocab) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "target id %d at row %lld is outside the vocabulary [0, %lld)",
                                 id, (long long)row, (long long)vocab);
}

} // namespace

namespace mlir::attnedit::kernels {

void logSoftmax(const float *logits, int64_t n, double temperature, std::vector<double> &out) {
  out.resize(n);
  double maxv = -INFINITY;
  for (int64_t i = 0; i < n; ++i)
    maxv = std::max(maxv, logits[i] / temperature);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    sum += std::exp(logits[i] / temperature - maxv);
  double logSum = maxv + std::log(sum);
  for (int64_t i = 0; i < n; ++i)
    out[i] = logits[i] / temperature - logSum;
}

double klDivergence(llvm::ArrayRef<double> logP, llvm::ArrayRef<double> logQ) {
  double kl = 0;
  for (size_t i = 0; i < logP.size(); ++i)
    kl += std::exp(logP[i]) * (logP[i] - logQ[i]);
  return kl;
}

llvm::Expected<Tensor> loss(LossKind kind, const Tensor &lhs, const Tensor &rhs,
                            double temperature) {
  int64_t width = lhs.dim(-1), rows = lhs.numel() / std::max<int64_t>(1, width);
  double total = 0;
  std::vector<double> p, q;
  for (int64_t r = 0; r < rows; ++r) {
    const float *a = lhs.data() + r * width;
    switch (kind) {
    case LossKind::Mse:
      for (int64_t i = 0; i < width; ++i)
        total += std::pow((double)a[i] - rhs.data()[r * width + i], 2) / width;
      break;
    case LossKind::Kl: {
      logSoftmax(a, width, temperature, p);
      logSoftmax(rhs.data() + r * width, width, temperature, q);
      total += klDivergence(p, q);
      break;
    }
    case LossKind::CrossEntropy: {
      int32_t target = rhs.intValues()[r];
      if (target == kIgnoredTarget)
        break;
      if (target < 0 || target >= width)
        return badTarget(r, target, width);
      logSoftmax(a, width, 1.0, p);
      total -= p[target];
      break;
    }
    case LossKind::Cosine: {
      const float *b = rhs.data() + r * width;
      double dot = 0, na = 0, nb = 0;
      for (int64_t i = 0; i < width; ++i) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
      }
      total += 1 - dot / std::max(std::sqrt(na * nb), 1e-12);
      break;
    }
    }
  }
  int64_t counted = countedRows(kind, rhs, rows);
  return scalar(counted ? total / counted : 0.0);
}

llvm::Expected<Tensor> lossGrad(LossKind kind, const Tensor &lhs, const Tensor &rhs,
                                const Tensor &grad, int64_t index, double temperature) {
  int64_t width = lhs.dim(-1), rows = lhs.numel() / std::max<int64_t>(1, width);
  double g = grad.data()[0] / std::max<int64_t>(1, countedRows(kind, rhs, rows));
  Tensor out = Tensor::zeros(index == 0 ? lhs.shape() : rhs.shape());
  std::vector<double> p, q;
  for (int64_t r = 0; r < rows; ++r) {
    const float *a = lhs.data() + r * width;
    float *o = out.mutableData() + r * width;
    switch (kind) {
    case LossKind::Mse: {
      double sign = index == 0 ? 1 : -1;
      for (int64_t i = 0; i < width; ++i)
        o[i] = (float)(sign * g * 2 * ((double)a[i] - rhs.data()[r * width + i]) / width);
      break;
    }
    case LossKind::Kl: // student side only: (q - p) / τ
      logSoftmax(a, width, temperature, p);
      logSoftmax(rhs.data() + r * width, width, temperature, q);
      for (int64_t i = 0; i < width; ++i)
        o[i] = (float)(g * (std::exp(q[i]) - std::exp(p[i])) / temperature);
      break;
    case LossKind::CrossEntropy: {
      int32_t target = rhs.intValues()[r];
      if (target == kIgnoredTarget)
        break;
      if (target < 0 || target >= width)
        return badTarget(r, target, width);
      logSoftmax(a, width, 1.0, p);
      for (int64_t i = 0; i < width; ++i)
        o[i] = (float)(g * (std::exp(p[i]) - (i == target)));
      break;
    }
    case LossKind::Cosine: {
      // d(1 - cos)/dx = -(y / (|x||y|) - cos · x / |x|²), x the operand.
      const float *b = rhs.data() + r * width;
      const float *x = index == 0 ? a : b, *y = index == 0 ? b : a;
      double dot = 0, nx = 0, ny = 0;
      for (int64_t i = 0; i < width; ++i) {
        dot += (double)x[i] * y[i];
        nx += (double)x[i] * x[i];
        ny += (double)y[i] * y[i];
      }
      double norms = std::max(std::sqrt(nx * ny), 1e-12), cos = dot / norms;
      for (int64_t i = 0; i < width; ++i)
        o[i] = (float)(-g * (y[i] / norms - cos * x[i] / std::max(nx, 1e-24)));
      break;
    }
    }
  }
  return out;
}

} // namespace mlir::attnedit::kernels
