//===- Generation.cpp - extending a prompt token by token ------------------===//

#include "attnedit/Runtime/Inference/Generation.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

using namespace mlir;
using namespace mlir::attnedit;

static llvm::Error makeError(llvm::StringRef where, const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: %s",
                                 where.str().c_str(), msg.str().c_str());
}

int32_t attnedit::sampleToken(llvm::ArrayRef<float> logits, const GenerationOptions &options,
                              std::mt19937_64 &rng) {
  int64_t vocab = logits.size();
  if (options.temperature == 0)
    return (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
  float maxv = *std::max_element(logits.begin(), logits.end());
  std::vector<double> weights(vocab);
  for (int64_t i = 0; i < vocab; ++i)
    weights[i] = std::exp((logits[i] - maxv) / options.temperature);
  bool truncate = (options.topK > 0 && options.topK < vocab) || options.topP < 1.0;
  if (truncate) {
    // Keep the likeliest tokens (ties by id) while both limits allow.
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return weights[a] > weights[b]; });
    double total = std::accumulate(weights.begin(), weights.end(), 0.0), mass = 0;
    int64_t keep = options.topK > 0 ? std::min(options.topK, vocab) : vocab;
    for (int64_t i = 0; i < keep; ++i) {
      mass += weights[order[i]];
      if (mass >= options.topP * total) {
        keep = i + 1;
        break;
      }
    }
    for (int64_t i = keep; i < vocab; ++i)
      weights[order[i]] = 0;
  }
  return (int32_t)std::discrete_distribution<int64_t>(weights.begin(), weights.end())(rng);
}

llvm::Expected<std::vector<int32_t>>
attnedit::generate(Model &model, llvm::ArrayRef<int32_t> prompt,
                   const GenerationOptions &options,
                   const std::function<void(int32_t, int32_t)> &onToken) {
  if (prompt.empty())
    return makeError("generate", "the prompt has no tokens");
  std::vector<int32_t> tokens(prompt.begin(), prompt.end()), generated;
  std::mt19937_64 rng(options.seed);
  while ((int64_t)generated.size() < options.maxTokens &&
         (model.maxPositions() == 0 || (int64_t)tokens.size() < model.maxPositions())) {
    llvm::Expected<Tensor> logits = model.forward(tokens);
    if (!logits)
      return logits.takeError();
    int64_t vocab = logits->dim(1);
    const float *last = logits->data() + (logits->dim(0) - 1) * vocab;
    int32_t next = sampleToken(llvm::ArrayRef<float>(last, vocab), options, rng);
    if (llvm::is_contained(model.stopTokens(), next))
      break;
    if (onToken)
      onToken(tokens.back(), next);
    tokens.push_back(next);
    generated.push_back(next);
  }
  return generated;
}

