//===- Generation.h - extending a prompt token by token --------*- C++ -*-===//
#ifndef ATTNEDIT_RUNTIME_INFERENCE_GENERATION_H
#define ATTNEDIT_RUNTIME_INFERENCE_GENERATION_H

#include "attnedit/Runtime/Execution/Model.h"

#include <functional>
#include <random>
#include <string>
#include <vector>

namespace mlir::attnedit {

struct GenerationOptions {
  int64_t maxTokens = 256;
  double temperature = 1.0; // 0 = greedy argmax
  uint64_t seed = 0;
  int64_t topK = 0;   // sample among the k likeliest tokens; 0 = all
  double topP = 1.0;  // ... and among the fewest whose mass reaches p (nucleus)
  /// > 1 makes tokens already in the context less likely (CTRL, Keskar et
  /// al. 2019, as HF: a positive logit is divided by it, a negative one
  /// multiplied); 1 = off.
  double repetitionPenalty = 1.0;
  /// Generation stops before a token whose text completes one of these.
  std::vector<std::string> stopStrings;
  /// Prefill + decode over a paged KV cache; false recomputes the whole
  /// prefix for every token (the reference the cache is tested against).
  bool useCache = true;
  /// Keeps going through stop tokens (benchmarks, as llama-bench does).
  bool ignoreStopTokens = false;
};

/// `logits` with the repetition penalty applied to the ids in `context`.
void applyRepetitionPenalty(llvm::MutableArrayRef<float> logits,
                            llvm::ArrayRef<int32_t> context, double penalty);

/// The next token from one row of logits under `options` (greedy at
/// temperature 0; otherwise softmax at the temperature, cut to top-k and
/// top-p, renormalised, sampled with `rng`).
int32_t sampleToken(llvm::ArrayRef<float> logits, const GenerationOptions &options,
                    std::mt19937_64 &rng);

/// Extends `prompt` token by token. Stops after maxTokens new tokens, before
/// emitting a stop token or a token completing a stop string, or at the
/// model's context length. `onToken(prev, next)` sees each new token as it is
/// chosen. Returns the new tokens.
llvm::Expected<std::vector<int32_t>>
generate(Model &model, llvm::ArrayRef<int32_t> prompt, const GenerationOptions &options,
         const std::function<void(int32_t, int32_t)> &onToken = {});

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_INFERENCE_GENERATION_H
