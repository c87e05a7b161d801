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
/// layer order.
static llvm::Expected<func::FuncOp> addScoreProbe(ModuleOp module) {
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return makeError("calibration", "the teacher has no func.func @forward");
  auto probe = cast<func::FuncOp>(forward->clone());
  probe.setSymName("probe");
  module.push_back(probe);
  SmallVector<Value> scores;
  SmallVector<Type> types;
  probe.walk([&](SoftmaxOp op) {
    scores.push_back(op.getInput());
    types.push_back(op.getInput().getType());
  });
  if (scores.empty())
    return makeError("calibration", "the teacher's @forward has no attention softmax");
  Operation *ret = probe.getBody().back().getTerminator();
  OpBuilder b(ret);
  b.create<func::ReturnOp>(ret->getLoc(), scores);
  ret->erase();
  probe.setType(b.getFunctionType(probe.getArgumentTypes(), types));
  return probe;
}

llvm::Expected<json::Value> attnedit::calibrateSinkLogits(Model &teacher,
                                                          llvm::ArrayRef<int32_t> tokens,
                                                          int64_t window, int64_t chunk) {
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
  // window of every query that has keys outside it.
  std::vector<std::vector<double>> massSum;
  std::vector<std::vector<std::vector<double>>> logWindow;
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
    if (massSum.empty()) {
      massSum.resize(results->size());
      logWindow.resize(results->size());
    }
    for (auto [l, scores] : llvm::enumerate(*results)) {
      llvm::ArrayRef<int64_t> s = scores.shape();
      if (s.size() != 3 || s[1] != (int64_t)n || s[2] != (int64_t)n)
        return makeError("calibration", "attention scores of layer " + llvm::Twine(l) +
                                            " are " + scores.shapeString() +
                                            ", not [heads, T, T]");
      int64_t heads = s[0];
      massSum[l].resize(heads);
      logWindow[l].resize(heads);
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = window; i < (int64_t)n; ++i) {
          const float *row = scores.data() + (h * n + i) * n;
          double peak = -INFINITY;
          for (int64_t j = 0; j <= i; ++j)
            peak = std::max(peak, (double)row[j]);
          double all = 0, inside = 0;
          for (int64_t j = 0; j <= i; ++j) {
            double e = std::exp(row[j] - peak);
            all += e;
            if (i - j < window)
              inside += e;
          }
          massSum[l][h] += 1 - inside / all;
          logWindow[l][h].push_back(peak + std::log(inside));
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
      mass.push_back(target);
    }
    layers.push_back(std::move(logits));
    masses.push_back(std::move(mass));
  }
  spdlog::info("calibration: sink logits of {} layers from {} queries past a {}-token window",
               layers.size(), queries, window);
  return json::Object{{"window", window},
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
  return out;
}
