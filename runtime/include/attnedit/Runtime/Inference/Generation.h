//===- Generation.h - extending a prompt token by token --------*- C++ -*-===//
#ifndef ATTNEDIT_RUNTIME_INFERENCE_GENERATION_H
#define ATTNEDIT_RUNTIME_INFERENCE_GENERATION_H

#include "attnedit/Runtime/Execution/Model.h"

#include <functional>
#include <optional>
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
  /// Generation stops when one of these appears in the new text; the
  /// output ends before the first token holding any of its characters.
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
/// top-p, renormalised, sampled with `rng`). A row holding NaN or an
/// infinity is an error: its "sample" was a token of garbage.
llvm::Expected<int32_t> sampleToken(llvm::ArrayRef<float> logits,
                                    const GenerationOptions &options, std::mt19937_64 &rng);

/// The text of generated tokens, scanned for stop strings as it streams.
/// A token is settled (safe to emit) once its text ends before any text a
/// stop string could still begin with; after a stop string appears, the
/// tokens before the first one holding part of it are settled and no more.
/// Without stop strings (or a tokenizer) every token is settled at once.
class StopStringScanner {
public:
  StopStringScanner(const Tokenizer *tokenizer, std::vector<std::string> stops);
  /// Appends `next`'s text (decoded after `prev`). Returns whether a stop
  /// string is now complete.
  bool append(int32_t prev, int32_t next);
  /// How many of the appended tokens are settled.
  size_t settled() const;
  /// Passes `generated[i]` for i up to `upTo` not passed before to
  /// `onToken(prev, next)`, prev being the token before it (after
  /// `prompt`'s last): the settled ones while generating, all that are kept
  /// once it ends.
  void release(llvm::ArrayRef<int32_t> prompt, llvm::ArrayRef<int32_t> generated, size_t upTo,
               const std::function<void(int32_t, int32_t)> &onToken);

private:
  const Tokenizer *tokenizer;
  std::vector<std::string> stops;
  std::string text;
  std::vector<size_t> ends; // where each appended token's text ends
  size_t held = 0;          // trailing characters a stop string may begin with
  std::optional<size_t> stopAt;
  size_t released = 0; // tokens passed to onToken
};

/// How generate() went, for its caller's log.
struct GenerationReport {
  /// Seconds until the first new token's logits: the set-up (the first run
  /// compiles the model's functions) and the prompt's prefill, which a
  /// decode rate should not include.
  double firstTokenSeconds = 0;
  /// The stop token it drew and did not emit, if that ended it.
  std::optional<int32_t> stopToken;
  /// Whether a stop string ended it.
  bool stopString = false;
  /// When set, the logits of every token drawn, one row each (the model's,
  /// before the repetition penalty and the temperature; a stop token's and
  /// a stop string's rows included): row i predicts position prompt + i.
  std::vector<float> *logits = nullptr;
};

/// Extends `prompt` token by token. Stops after maxTokens new tokens, before
/// emitting a stop token, at a stop string (StopStringScanner), or at the
/// model's context length. `onToken(prev, next)` sees each new token once it
/// is settled. Returns the new tokens (those before a stop string).
llvm::Expected<std::vector<int32_t>>
generate(Model &model, llvm::ArrayRef<int32_t> prompt, const GenerationOptions &options,
         const std::function<void(int32_t, int32_t)> &onToken = {},
         GenerationReport *report = nullptr);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_INFERENCE_GENERATION_H
