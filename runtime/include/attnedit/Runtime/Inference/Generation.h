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
  /// Keeps only tokens at least this likely relative to the likeliest
  /// (min-p sampling, as vLLM's min_p); 0 = off.
  double minP = 0.0;
  /// Generation stops when one of these appears in the new text; the
  /// output ends where it begins (StopStringScanner). Of several, the one
  /// ending the output first wins (vLLM takes the first listed it finds).
  std::vector<std::string> stopStrings;
  /// ... or ends after it, the stop string included.
  bool includeStopString = false;
  /// Stop tokens besides the model's (ended on, not emitted).
  std::vector<int32_t> stopTokenIds;
  /// No stop token is drawn before this many new tokens, and only a stop
  /// string ending after them ends generation (its text may begin sooner).
  int64_t minTokens = 0;
  /// Prefill + decode over a paged KV cache; false recomputes the whole
  /// prefix for every token (the reference the cache is tested against).
  bool useCache = true;
  /// Keeps going through the model's stop tokens (benchmarks, as
  /// llama-bench does; vLLM's ignore_eos), not through stopTokenIds.
  bool ignoreStopTokens = false;
  /// The text leaves special tokens out (Tokenizer::pieceOf), as vLLM's
  /// skip_special_tokens does by default; stop strings see that text.
  bool skipSpecialTokens = true;
};

/// The options a command line or a request starts from: GenerationOptions
/// defaults with the model's sampling settings (its generation_config.json's,
/// Model::samplingDefaults) over them, as transformers and vLLM apply them;
/// do_sample false is greedy.
GenerationOptions modelGenerationOptions(const Model &model);
/// "temperature 0.6, top_k 20": the model's sampling settings, for logs.
std::string describeSamplingDefaults(const Model &model);

/// The token after `context`, of which `generated` are new, from the
/// model's logits `row`: HF's repetition penalty over the context, stop
/// tokens masked before minTokens, then greedy at temperature 0, else
/// softmax at the temperature cut to top-k, top-p and min-p, renormalised,
/// sampled with `rng`. A row holding NaN or an infinity is an error: its
/// "sample" was a token of garbage.
llvm::Expected<int32_t> drawToken(llvm::ArrayRef<float> row, llvm::ArrayRef<int32_t> context,
                                  size_t generated, const Model &model,
                                  const GenerationOptions &options, std::mt19937_64 &rng);

/// Whether `token` ends generation under `options`: the model's stop tokens
/// (unless ignoreStopTokens) and options.stopTokenIds.
bool isStopToken(const Model &model, const GenerationOptions &options, int32_t token);

/// The text of generated tokens, scanned for stop strings as it streams.
/// A token is settled (safe to emit) once its text ends before any text a
/// stop string could still begin with. Once a stop string appears, the
/// output ends where it begins (after it, with includeStop), as OpenAI's
/// and vLLM's do: the tokens wholly before that end are settled, and the
/// text of the one it falls inside, up to the end, is tail(). Without stop
/// strings (or a tokenizer) every token is settled at once.
class StopStringScanner {
public:
  /// Scans the text generation shows under `options` (its stop strings,
  /// includeStopString, skipSpecialTokens).
  StopStringScanner(const Tokenizer *tokenizer, const GenerationOptions &options);
  /// Appends `next`'s text (decoded after `prev`). Returns whether a stop
  /// string is now complete; with `mayStop` false (before minTokens) none
  /// is looked for.
  bool append(int32_t prev, int32_t next, bool mayStop = true);
  /// How many of the appended tokens are settled.
  size_t settled() const;
  /// After a stop: the text kept of the first token not settled.
  std::string tail() const;
  /// Passes `generated[i]` for i up to `upTo` not passed before to
  /// `onToken(prev, next)`, prev being the token before it (after
  /// `prompt`'s last): the settled ones while generating, all that are kept
  /// once it ends.
  void release(llvm::ArrayRef<int32_t> prompt, llvm::ArrayRef<int32_t> generated, size_t upTo,
               const std::function<void(int32_t, int32_t)> &onToken);

private:
  const Tokenizer *tokenizer;
  std::vector<std::string> stops;
  bool includeStop, skipSpecial;
  std::string text;
  std::vector<size_t> ends; // where each appended token's text ends
  size_t held = 0;          // trailing characters a stop string may begin with
  std::optional<size_t> end; // where the output ends, once a stop string appeared
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
  /// Then: the text kept of the token the output ends inside
  /// (StopStringScanner::tail), which no onToken call spelled.
  std::string tail;
  /// When set, the logits of every token drawn, one row each (the model's,
  /// before the repetition penalty and the temperature; a stop token's and
  /// a stop string's rows included): row i predicts position prompt + i.
  std::vector<float> *logits = nullptr;
};

/// Extends `prompt` token by token. Stops after maxTokens new tokens, before
/// emitting a stop token, at a stop string (StopStringScanner), or at the
/// model's context length. `onToken(prev, next)` sees each new token once it
/// is settled. Returns the new tokens (those wholly before a stop string's
/// end: the rest of the text is report->tail).
llvm::Expected<std::vector<int32_t>>
generate(Model &model, llvm::ArrayRef<int32_t> prompt, const GenerationOptions &options,
         const std::function<void(int32_t, int32_t)> &onToken = {},
         GenerationReport *report = nullptr);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_INFERENCE_GENERATION_H
