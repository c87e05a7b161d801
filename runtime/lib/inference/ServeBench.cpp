//===- ServeBench.cpp - serving throughput and latency ---------------------===//

#include "attnedit/Runtime/Inference/ServeBench.h"
#include "attnedit/Runtime/Inference/Scheduler.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <numeric>

using namespace mlir;
using namespace mlir::attnedit;
using Clock = std::chrono::steady_clock;

static double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

llvm::Expected<ServeBenchResult> attnedit::benchServe(Decoder &decoder,
                                                     const ServeBenchOptions &options) {
  Model &model = decoder.model();
  int64_t vocab = model.vocabSize();
  if (options.concurrency < 1 || options.promptLength < 1 || options.genLength < 1)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "bench-serve: concurrency, prompt and generation lengths "
                                   "must be positive");
  if (!options.kvOnly && model.maxPositions() > 0 &&
      options.promptLength + options.genLength > model.maxPositions())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "bench-serve: %lld prompt + %lld generated tokens exceed the model's context of %lld",
        (long long)options.promptLength, (long long)options.genLength,
        (long long)model.maxPositions());
  // generate() stops at the context: more was measured as fewer, unsaid.
  if (options.uncachedTokens > 0 && model.maxPositions() > 0 &&
      options.promptLength + options.uncachedTokens > model.maxPositions())
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "bench-serve: --uncached-tokens %lld after the %lld-token prompt exceed the model's "
        "context of %lld",
        (long long)options.uncachedTokens, (long long)options.promptLength,
        (long long)model.maxPositions());

  ServeBenchResult result;
  result.options = options;
  // A window group's ring is the same size at any context: counted per
  // sequence, not per token (GateSWA reported its teacher's bytes/token).
  const CacheLayout &layout = decoder.cache().layout();
  for (int64_t g = 0; g < (int64_t)layout.groups.size(); ++g) {
    if (layout.groups[g].ringBlocks > 0)
      result.windowKvBytesPerSequence += layout.groups[g].ringBlocks * layout.bytesPerBlock(g);
    else
      result.kvBytesPerToken += layout.bytesPerBlock(g);
  }
  result.kvBytesPerToken /= layout.blockSize;

  if (options.kvOnly) {
    KvCache &cache = decoder.cache();
    std::vector<int64_t> seqs;
    for (int64_t r = 0; r < options.concurrency; ++r)
      seqs.push_back(cache.open());
    int64_t chunk = cache.layout().maxChunk;
    for (int64_t seq : seqs) {
      for (int64_t n = std::min(chunk, options.promptLength); ;
           n = std::min(n + chunk, options.promptLength)) {
        if (llvm::Error e = cache.extend(seq, n))
          return std::move(e);
        if (n == options.promptLength)
          break;
      }
    }
    for (int64_t g = 1; g <= options.genLength; ++g)
      for (int64_t seq : seqs)
        if (llvm::Error e = cache.extend(seq, options.promptLength + g))
          return std::move(e);
    result.peakKvBytes = cache.peakBytesInUse();
    for (int64_t seq : seqs)
      cache.close(seq);
    return result;
  }

  GenerationOptions greedy;
  greedy.temperature = 0;
  greedy.maxTokens = options.genLength;
  greedy.ignoreStopTokens = true;

  auto warm = decoder.warmUp();
  if (!warm)
    return warm.takeError();
  result.warmUpSeconds = *warm;
  Scheduler scheduler(decoder, nullptr, options.maxBatch, options.prefillBudget);
  std::vector<std::vector<Clock::time_point>> stamps(options.concurrency);
  std::vector<RequestResult> results(options.concurrency);
  std::string error;
  auto start = Clock::now();
  for (int64_t r = 0; r < options.concurrency; ++r) {
    Request request;
    request.options = greedy;
    // Distinct deterministic prompts (no shared prefix to flatter anyone).
    for (int64_t i = 0; i < options.promptLength; ++i)
      request.prompt.push_back((int32_t)((3 + 7 * i + 131 * r) % vocab));
    request.onToken = [&stamps, r](int32_t, int32_t) { stamps[r].push_back(Clock::now()); };
    request.onDone = [&results, &error, r](const RequestResult &done) {
      results[r] = done;
      if (done.finishReason == "error")
        error = done.error;
    };
    scheduler.submit(std::move(request));
  }
  while (scheduler.step()) {
  }
  auto end = Clock::now();
  if (!error.empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "bench-serve: %s",
                                   error.c_str());

  SchedulerStats stats = scheduler.stats();
  result.wallSeconds = seconds(start, end);
  std::vector<double> gaps;
  for (int64_t r = 0; r < options.concurrency; ++r) {
    double ttft = results[r].secondsToFirstToken;
    result.ttftMean += ttft / options.concurrency;
    result.ttftMax = std::max(result.ttftMax, ttft);
    for (size_t i = 1; i < stamps[r].size(); ++i)
      gaps.push_back(seconds(stamps[r][i - 1], stamps[r][i]));
  }
  if (!gaps.empty()) {
    std::sort(gaps.begin(), gaps.end());
    result.itlMean = std::accumulate(gaps.begin(), gaps.end(), 0.0) / gaps.size();
    result.itlP50 = gaps[gaps.size() / 2];
    result.itlP99 = gaps[std::min(gaps.size() - 1, (size_t)(gaps.size() * 0.99))];
  }
  result.generatedTokens = stats.generatedTokensTotal;
  result.promptTokensPerSecond =
      stats.prefillSeconds > 0 ? stats.promptTokensTotal / stats.prefillSeconds : 0;
  // The first token of each request comes from its prefill; the rest from
  // batched @decode calls.
  int64_t decoded = stats.generatedTokensTotal - options.concurrency;
  result.decodeTokensPerSecond = stats.decodeSeconds > 0 ? decoded / stats.decodeSeconds : 0;
  result.wallGeneratedTokensPerSecond =
      stats.generatedTokensTotal / std::max(result.wallSeconds, 1e-9);
  result.peakKvBytes = stats.kvPeakBytes;

  if (options.uncachedTokens > 0) {
    GenerationOptions uncached = greedy;
    uncached.useCache = false;
    uncached.maxTokens = options.uncachedTokens;
    std::vector<int32_t> prompt;
    for (int64_t i = 0; i < options.promptLength; ++i)
      prompt.push_back((int32_t)((3 + 7 * i) % vocab));
    // Time decoding only: the first token pays for the prompt.
    Clock::time_point first, last;
    int64_t count = 0;
    auto generated = generate(model, prompt, uncached, [&](int32_t, int32_t) {
      (count++ == 0 ? first : last) = Clock::now();
    });
    if (!generated)
      return generated.takeError();
    if (count > 1)
      result.uncachedTokensPerSecond = (count - 1) / seconds(first, last);
  }
  return result;
}

llvm::json::Value ServeBenchResult::toJson() const {
  return llvm::json::Object{
      {"concurrency", options.concurrency},
      {"prompt_len", options.promptLength},
      {"gen_len", options.genLength},
      {"warmup_s", warmUpSeconds},
      {"wall_s", wallSeconds},
      {"ttft_mean_s", ttftMean},
      {"ttft_max_s", ttftMax},
      {"itl_mean_s", itlMean},
      {"itl_p50_s", itlP50},
      {"itl_p99_s", itlP99},
      {"prompt_tok_s", promptTokensPerSecond},
      {"decode_tok_s", decodeTokensPerSecond},
      {"wall_generated_tok_s", wallGeneratedTokensPerSecond},
      {"generated_tokens", generatedTokens},
      {"peak_kv_bytes", peakKvBytes},
      {"kv_bytes_per_token", kvBytesPerToken},
      {"window_kv_bytes_per_seq", windowKvBytesPerSequence},
      {"uncached_decode_tok_s", uncachedTokensPerSecond}};
}

std::string ServeBenchResult::table() const {
  // --kv-only times nothing: its table holds what it measured, not zeros.
  if (options.kvOnly)
    return llvm::formatv("| C | P | G | KV bytes/token | window KV bytes/seq | peak KV MiB |\n"
                         "|---|---|---|---|---|---|\n| {0} | {1} | {2} | {3} | {4} | {5:F2} |\n",
                         options.concurrency, options.promptLength, options.genLength,
                         kvBytesPerToken, windowKvBytesPerSequence, peakKvBytes / 1048576.0)
        .str();
  std::string out =
      "| C | P | G | TTFT mean ms | TTFT max ms | ITL mean ms | ITL p99 ms | prompt tok/s | "
      "decode tok/s | generated tok/s over wall | peak KV MiB | warm-up s |";
  if (uncachedTokensPerSecond > 0)
    out += " uncached decode tok/s |";
  out += "\n|---|---|---|---|---|---|---|---|---|---|---|---|";
  if (uncachedTokensPerSecond > 0)
    out += "---|";
  out += llvm::formatv("\n| {0} | {1} | {2} | {3:F1} | {4:F1} | {5:F2} | {6:F2} | {7:F0} | "
                       "{8:F0} | {9:F0} | {10:F2} | {11:F2} |",
                       options.concurrency, options.promptLength, options.genLength,
                       ttftMean * 1e3, ttftMax * 1e3, itlMean * 1e3, itlP99 * 1e3,
                       promptTokensPerSecond, decodeTokensPerSecond,
                       wallGeneratedTokensPerSecond,
                       peakKvBytes / 1048576.0, warmUpSeconds)
             .str();
  if (uncachedTokensPerSecond > 0)
    out += llvm::formatv(" {0:F1} |", uncachedTokensPerSecond).str();
  return out + "\n";
}
