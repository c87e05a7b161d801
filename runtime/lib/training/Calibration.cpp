//===- Calibration.cpp - edit starts measured on the teacher ---------------===//

#include "attnedit/Runtime/Training/Calibration.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Training/Distiller.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/FormatVariadic.h"

#include <spdlog/spdlog.h>

#include <cmath>

using namespace mlir;
using namespace mlir::attnedit;
namespace json = llvm::json;

/// Adds @probe to `module` (decomposed): @forward's arguments, returning the
/// input of every attention softmax (scaled, masked scores [H, T, T]) in
/// layer order, each followed by the values it weights ([H, T, d], the
/// other operand of the matmul that consumes the softmax).
static llvm::Expected<func::FuncOp> addScoreProbe(ModuleOp module) {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return makeError("calibration", "the teacher has no func.func @forward");
  auto probe = cast<func::FuncOp>(forward->clone());
  probe.setSymName("probe");
  module.push_back(probe);
  SmallVector<Value> scores;
  SmallVector<Type> types;
  bool weighted = true;
  probe.walk([&](SoftmaxOp op) {
    auto users = op.getResult().getUsers();
    auto matmul = users.empty() ? MatmulOp() : dyn_cast<MatmulOp>(*users.begin());
    weighted &= matmul && matmul.getLhs() == op.getResult();
    if (!weighted)
      return;
    for (Value v : {op.getInput(), matmul.getRhs()}) {
      scores.push_back(v);
      types.push_back(v.getType());
    }
  });
  if (scores.empty() || !weighted)
    return makeError("calibration", "the teacher's @forward has no attention softmax whose "
                                    "result weights values through a matmul");
  Operation *ret = probe.getBody().back().getTerminator();
  OpBuilder b(ret);
  b.create<func::ReturnOp>(ret->getLoc(), scores);
  ret->erase();
  probe.setType(b.getFunctionType(probe.getArgumentTypes(), types));
  return probe;
}

namespace {
/// What one query contributes to the output error of a sink logit s: the
/// GateSWA head outputs c(s)·w, with c(s) = σ(lz - s) the window's share and
/// w the window-renormalised output; the teacher's is t. Error
/// |c w - t|² = c² ww - 2 c wt + tt.
struct QueryTerms {
  double lz, ww, wt, tt;
};
} // namespace

/// The sink logit in [-12, 30] minimising Σ_i |c_i(s) w_i - t_i|²: a grid,
/// then golden-section refinement around its best point (the error is
/// smooth in s; -12 is the edit's negligible default).
static double minimiseOutputError(const std::vector<QueryTerms> &terms) {
  auto error = [&](double s) {
    double sum = 0;
    for (const QueryTerms &q : terms) {
      double c = 1 / (1 + std::exp(s - q.lz));
      sum += c * c * q.ww - 2 * c * q.wt + q.tt;
    }
    return sum;
  };
  double best = -12, bestError = error(best), step = 0.25;
  for (double s = -12 + step; s <= 30; s += step)
    if (double e = error(s); e < bestError)
      best = s, bestError = e;
  double lo = std::max(-12.0, best - step), hi = best + step;
  const double phi = (std::sqrt(5.0) - 1) / 2;
  for (int it = 0; it < 40; ++it) {
    double a = hi - phi * (hi - lo), b = lo + phi * (hi - lo);
    if (error(a) < error(b))
      hi = b;
    else
      lo = a;
  }
  return (lo + hi) / 2;
}

llvm::Expected<json::Value> attnedit::calibrateSinkLogits(Model &teacher,
                                                          llvm::ArrayRef<int32_t> tokens,
                                                          int64_t window, int64_t chunk,
                                                          SinkObjective objective) {
  if (window < 1 || chunk < 2)
    return makeError("calibration", "needs window >= 1 and chunks of >= 2 tokens");
  auto raised = raisedCopy(teacher.module());
  if (!raised)
    return raised.takeError();
  if (llvm::Error e = runPipeline(**raised, "attnedit-decompose"))
    return std::move(e);
  auto probe = addScoreProbe(**raised);
  if (!probe)
    return probe.takeError();

  // Per layer and head: the outside masses and the log-partition of the
  // window of every query that has keys outside it; for the output
  // objective, every query's error terms.
  std::vector<std::vector<double>> massSum;
  std::vector<std::vector<std::vector<double>>> logWindow;
  std::vector<std::vector<std::vector<QueryTerms>>> terms;
  int64_t queries = 0;
  for (size_t start = 0; start + 1 < tokens.size(); start += chunk) {
    size_t n = std::min<size_t>(chunk, tokens.size() - start);
    std::vector<int32_t> ids(tokens.begin() + start, tokens.begin() + start + n);
    std::vector<int32_t> positions(n);
    for (size_t i = 0; i < n; ++i)
      positions[i] = (int32_t)i;
    auto results = teacher.executor().run(*probe, {Tensor::ints(ids), Tensor::ints(positions)},
                                          teacher.parameterStore());
    if (!results)
      return results.takeError();
    size_t layers = results->size() / 2;
    if (massSum.empty()) {
      massSum.resize(layers);
      logWindow.resize(layers);
      terms.resize(layers);
    }
    for (size_t l = 0; l < layers; ++l) {
      const Tensor &scores = (*results)[2 * l], &values = (*results)[2 * l + 1];
      llvm::ArrayRef<int64_t> s = scores.shape(), vs = values.shape();
      if (s.size() != 3 || s[1] != (int64_t)n || s[2] != (int64_t)n || vs.size() != 3 ||
          vs[0] != s[0] || vs[1] != (int64_t)n)
        return makeError("calibration", "attention scores of layer " + llvm::Twine(l) +
                                            " are " + scores.shapeString() + " and values " +
                                            values.shapeString() +
                                            ", not [heads, T, T] and [heads, T, d]");
      int64_t heads = s[0], d = vs[2];
      massSum[l].resize(heads);
      logWindow[l].resize(heads);
      terms[l].resize(heads);
      std::vector<double> w(d), t(d);
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < (int64_t)n; ++i) {
          if (i < window && objective == SinkObjective::OutsideMass)
            continue;
          const float *row = scores.data() + (h * n + i) * n;
          double peak = -INFINITY;
          for (int64_t j = 0; j <= i; ++j)
            peak = std::max(peak, (double)row[j]);
          double all = 0, inside = 0;
          std::fill(w.begin(), w.end(), 0.0);
          std::fill(t.begin(), t.end(), 0.0);
          for (int64_t j = 0; j <= i; ++j) {
            double e = std::exp(row[j] - peak);
            all += e;
            bool in = i - j < window;
            if (in)
              inside += e;
            if (objective == SinkObjective::OutputError) {
              const float *v = values.data() + (h * n + j) * d;
              for (int64_t k = 0; k < d; ++k) {
                t[k] += e * v[k];
                if (in)
                  w[k] += e * v[k];
              }
            }
          }
          if (i >= window) {
            massSum[l][h] += 1 - inside / all;
            logWindow[l][h].push_back(peak + std::log(inside));
          }
          if (objective == SinkObjective::OutputError) {
            QueryTerms q{peak + std::log(inside), 0, 0, 0};
            for (int64_t k = 0; k < d; ++k) {
              double wk = w[k] / inside, tk = t[k] / all;
              q.ww += wk * wk, q.wt += wk * tk, q.tt += tk * tk;
            }
            terms[l][h].push_back(q);
          }
        }
    }
    queries += std::max<int64_t>(0, (int64_t)n - window);
  }
  if (queries == 0)
    return makeError("calibration", llvm::formatv("no calibration query has keys outside the "
                                                  "{0}-token window (chunks of {1} tokens)",
                                                  window, chunk)
                                        .str());
  json::Array layers, masses;
  for (size_t l = 0; l < massSum.size(); ++l) {
    json::Array logits, mass;
    for (size_t h = 0; h < massSum[l].size(); ++h) {
      const std::vector<double> &z = logWindow[l][h];
      double target = massSum[l][h] / z.size();
      mass.push_back(target);
      if (objective == SinkObjective::OutputError) {
        logits.push_back(minimiseOutputError(terms[l][h]));
        continue;
      }
      auto share = [&](double sink) {
        double sum = 0;
        for (double lz : z)
          sum += 1 / (1 + std::exp(lz - sink));
        return sum / z.size();
      };
      // The share grows with the logit: bisect. A head that never looks
      // outside gets the edit's negligible default.
      double lo = -30, hi = 30;
      for (int it = 0; it < 100; ++it) {
        double mid = (lo + hi) / 2;
        (share(mid) < target ? lo : hi) = mid;
      }
      logits.push_back(std::max(-12.0, (lo + hi) / 2));
    }
    layers.push_back(std::move(logits));
    masses.push_back(std::move(mass));
  }
  const char *name = objective == SinkObjective::OutputError ? "output-error" : "outside-mass";
  spdlog::info("calibration: sink logits ({}) of {} layers from {} queries past a {}-token "
               "window",
               name, layers.size(), queries, window);
  return json::Object{{"window", window},
                      {"objective", name},
                      {"queries", queries},
                      {"layers", std::move(layers)},
                      {"outside_mass", std::move(masses)}};
}

llvm::Expected<std::vector<std::vector<float>>>
attnedit::attentionInputCovariance(Model &teacher, llvm::ArrayRef<int32_t> tokens,
                                   int64_t chunk) {
  if (chunk < 2)
    return makeError("calibration", "needs chunks of >= 2 tokens");
  auto raised = raisedCopy(teacher.module());
  if (!raised)
    return raised.takeError();
  auto forward = (*raised)->lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return makeError("calibration", "the teacher has no func.func @forward");
  // @probe returns every attention op's input.
  auto probe = cast<func::FuncOp>(forward->clone());
  probe.setSymName("probe");
  (*raised).get().push_back(probe);
  SmallVector<Value> inputs;
  SmallVector<Type> types;
  probe.walk([&](AttentionLikeOpInterface op) {
    inputs.push_back(op->getOperand(0));
    types.push_back(op->getOperand(0).getType());
  });
  if (inputs.empty())
    return makeError("calibration", "the teacher has no attention");
  Operation *ret = probe.getBody().back().getTerminator();
  OpBuilder b(ret);
  b.create<func::ReturnOp>(ret->getLoc(), inputs);
  ret->erase();
  probe.setType(b.getFunctionType(probe.getArgumentTypes(), types));

  std::vector<std::vector<double>> sums(inputs.size());
  int64_t rows = 0;
  for (size_t start = 0; start < tokens.size(); start += chunk) {
    size_t n = std::min<size_t>(chunk, tokens.size() - start);
    std::vector<int32_t> ids(tokens.begin() + start, tokens.begin() + start + n);
    std::vector<int32_t> positions(n);
    for (size_t i = 0; i < n; ++i)
      positions[i] = (int32_t)i;
    auto results = teacher.executor().run(probe, {Tensor::ints(ids), Tensor::ints(positions)},
                                          teacher.parameterStore());
    if (!results)
      return results.takeError();
    for (auto [l, x] : llvm::enumerate(*results)) {
      int64_t t = x.shape()[0], h = x.shape()[1];
      sums[l].resize(h * h);
      for (int64_t i = 0; i < t; ++i) {
        const float *row = x.data() + i * h;
        for (int64_t a = 0; a < h; ++a)
          for (int64_t c = 0; c < h; ++c)
            sums[l][a * h + c] += (double)row[a] * row[c];
      }
    }
    rows += n;
  }
  std::vector<std::vector<float>> out;
  for (const std::vector<double> &s : sums) {
    std::vector<float> c(s.size());
    for (size_t i = 0; i < s.size(); ++i)
      c[i] = (float)(s[i] / std::max<int64_t>(rows, 1));
    out.push_back(std::move(c));
  }
  spdlog::info("calibration: attention-input covariance of {} layers from {} tokens",
               out.size(), rows);
  // Rank at most `rows`: whitening by it discards every other direction (one token's start
  // measured KL 3.48 where the data-free start has 2.44).
  if (int64_t hidden = std::sqrt((double)(out.empty() ? 0 : out.front().size()));
      rows < 4 * hidden)
    spdlog::warn("calibration: {} tokens for covariances of width {}: fewer than 4 x {} "
                 "leaves them near-singular; give more calibration tokens",
                 rows, hidden, hidden);
  return out;
}
