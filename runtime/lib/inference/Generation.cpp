//===- Generation.cpp - extending a prompt token by token ------------------===//

#include "attnedit/Runtime/Inference/Generation.h"

#include <algorithm>
#include <cmath>
#include <random>

using namespace mlir;
using namespace mlir::attnedit;

static llvm::Error makeError(llvm::StringRef where, const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: %s",
                                 where.str().c_str(), msg.str().c_str());
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
    int32_t next = 0;
    if (options.temperature == 0) {
      next = (int32_t)(std::max_element(last, last + vocab) - last);
    } else {
      float maxv = *std::max_element(last, last + vocab);
      std::vector<double> weights(vocab);
      for (int64_t i = 0; i < vocab; ++i)
        weights[i] = std::exp((last[i] - maxv) / options.temperature);
      next = (int32_t)std::discrete_distribution<int64_t>(weights.begin(), weights.end())(rng);
    }
    if (llvm::is_contained(model.stopTokens(), next))
      break;
    if (onToken)
      onToken(tokens.back(), next);
    tokens.push_back(next);
    generated.push_back(next);
  }
  return generated;
}

