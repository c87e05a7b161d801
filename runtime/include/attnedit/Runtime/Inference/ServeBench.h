//===- ServeBench.h - serving throughput and latency -----------*- C++ -*-===//
//
// `attnedit-run bench-serve`: C requests of P prompt tokens and G generated
// tokens each, all submitted at once to one continuous-batching Scheduler
// (in process, no HTTP), greedy and through stop tokens as llama-bench runs.
// Reports time to first token, inter-token latency, prompt and decode
// tokens/s and peak KV bytes; optionally the same single sequence without
// the cache, so the cache's gain is visible. The clock starts after the
// decoder's warm-up (compiling, or loading from the disk cache), whose time
// is reported apart, as `serve` pays it before it listens.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_INFERENCE_SERVEBENCH_H
#define ATTNEDIT_RUNTIME_INFERENCE_SERVEBENCH_H

#include "attnedit/Runtime/Inference/Decoder.h"

#include "llvm/Support/JSON.h"

namespace mlir::attnedit {

struct ServeBenchOptions {
  int64_t concurrency = 1;
  int64_t promptLength = 128;
  int64_t genLength = 128;
  int64_t maxBatch = 32;
  int64_t prefillBudget = 256; // prompt tokens prefilled per step
  /// Also decode `uncachedTokens` tokens of one sequence by recomputing the
  /// prefix (0 = skip).
  int64_t uncachedTokens = 0;
  /// Only walk the KV pool through the same block allocations (every
  /// sequence to prompt + generated tokens, prompt in max_chunk pieces),
  /// without running the model: the memory at contexts too long to compute
  /// on the reference evaluator.
  bool kvOnly = false;
};

struct ServeBenchResult {
  ServeBenchOptions options;
  double warmUpSeconds = 0;
  double wallSeconds = 0;
  double ttftMean = 0, ttftMax = 0;      // seconds
  double itlMean = 0, itlP50 = 0, itlP99 = 0; // seconds between a request's tokens
  double promptTokensPerSecond = 0;      // prompt tokens / prefill seconds
  double decodeTokensPerSecond = 0;      // generated tokens / decode seconds
  double wallGeneratedTokensPerSecond = 0; // generated tokens (no prompt) / wall seconds
  int64_t generatedTokens = 0;
  int64_t peakKvBytes = 0;
  int64_t kvBytesPerToken = 0;           // over the layers whose cache grows with the context
  int64_t windowKvBytesPerSequence = 0;  // sliding-window layers' rings, flat in the context
  double uncachedTokensPerSecond = 0;    // 0 when not measured

  llvm::json::Value toJson() const;
  /// A markdown table row set (one run).
  std::string table() const;
};

llvm::Expected<ServeBenchResult> benchServe(Decoder &decoder, const ServeBenchOptions &options);

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_INFERENCE_SERVEBENCH_H
