//===- Scheduler.h - continuous batching over one Decoder ------*- C++ -*-===//
//
// Requests join the running batch at step boundaries and leave it when they
// finish (vLLM / Orca-style iteration-level scheduling): each step admits
// waiting requests while the batch has room, prefills prompts within a token
// budget (chunked prefill: a long prompt spreads over several steps, so the
// running requests keep getting tokens), then decodes one token for every
// request past its prompt in one @decode call. Sampling per request is
// generate()'s (drawToken, isStopToken, StopStringScanner).
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_INFERENCE_SCHEDULER_H
#define ATTNEDIT_RUNTIME_INFERENCE_SCHEDULER_H

#include "attnedit/Runtime/Inference/Decoder.h"
#include "attnedit/Runtime/Inference/Generation.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>

namespace mlir::attnedit {

struct RequestResult {
  /// The answer's tokens: without the stop token, and without the token a
  /// stop string cuts, whose text before the cut is `tail`
  /// (StopStringScanner::tail).
  std::vector<int32_t> tokens;
  std::string tail;
  /// Every token sampled, those above and the ones the answer leaves out:
  /// OpenAI's and vLLM's usage.completion_tokens, and /metrics'.
  int64_t generated = 0;
  std::string finishReason; // "stop", "length", "error", "cancelled" or "aborted"
  std::string error;
  int64_t promptTokens = 0;
  double secondsToFirstToken = 0; // from submission
  double seconds = 0;             // from submission to the end
};

struct Request {
  std::vector<int32_t> prompt;
  GenerationOptions options;
  /// Each new token once settled (StopStringScanner; prev = the token
  /// before it), on the scheduler's thread.
  std::function<void(int32_t prev, int32_t next)> onToken;
  /// Once, when the request leaves the batch, on the scheduler's thread.
  std::function<void(const RequestResult &)> onDone;
  /// When it was submitted (set by submit()): latencies count the wait.
  std::chrono::steady_clock::time_point submitted;
  /// Set from any thread (a client that left): the request ends at the next
  /// step with finish reason "cancelled".
  std::shared_ptr<std::atomic<bool>> cancelled;
};

/// Counters for /metrics and the benchmark (a consistent snapshot).
struct SchedulerStats {
  int64_t requestsTotal = 0, requestsRunning = 0, requestsWaiting = 0;
  int64_t promptTokensTotal = 0, generatedTokensTotal = 0, decodeSteps = 0;
  double prefillSeconds = 0, decodeSeconds = 0;
  int64_t kvBlocksInUse = 0, kvBytesInUse = 0, kvBytesAllocated = 0, kvPeakBytes = 0;
};

class Scheduler {
public:
  /// `tokenizer` is needed only for requests with stop strings.
  /// `prefillBudget` caps the prompt tokens prefilled per step.
  Scheduler(Decoder &decoder, const Tokenizer *tokenizer, int64_t maxBatch = 32,
            int64_t prefillBudget = 256);

  /// Queues a request; safe from any thread.
  void submit(Request request);
  /// One step: admit waiting requests, decode the batch once. Returns false
  /// when there was nothing to do.
  bool step();
  /// Steps until `stop` is set, sleeping while idle.
  void run(const std::atomic<bool> &stop);
  /// Wakes run() (after setting its stop flag).
  void wake() { ready.notify_all(); }
  /// Ends every running and waiting request, and any submitted later, as
  /// "aborted" with `reason` (shutdown), so nobody waits for them forever.
  void abortAll(const std::string &reason);

  SchedulerStats stats() const;

  /// Why `request` can never run in a KV cache capped by --kv-blocks (its
  /// prompt and max_tokens need more blocks than the cap), or "".
  std::string unfit(const Request &request) const;
  /// The most tokens (prompt and completion) one request may hold: the
  /// model's context, or less in a KV cache capped by --kv-blocks.
  int64_t longestRequest() const;

private:
  struct Running {
    Request request;
    int64_t seq = 0;
    std::vector<int32_t> context; // prompt + generated
    RequestResult result;
    std::mt19937_64 rng;
    int32_t pending = -1; // sampled, not yet fed to @decode; -1 while prefilling
    size_t prefilled = 0; // prompt tokens in the cache
    std::vector<int64_t> reserved; // KV blocks per group held for the whole request
    std::optional<StopStringScanner> scanner; // from the first sampled token
    std::chrono::steady_clock::time_point start;
  };
  /// Samples from `logits` and emits, or finishes the request. Returns
  /// whether it keeps running.
  bool advance(Running &r, llvm::ArrayRef<float> logits);
  void finish(Running &r, std::string reason, std::string error = "");
  void refreshStats();
  /// Per group, the blocks `request` holds at most (prompt + max_tokens).
  std::vector<int64_t> blocksNeeded(const Request &request) const;
  /// unfit() of a request needing `need` blocks per group.
  std::string unfitFor(llvm::ArrayRef<int64_t> need) const;

  Decoder &decoder;
  const Tokenizer *tokenizer;
  int64_t maxBatch;
  int64_t prefillBudget;
  std::deque<Request> waiting;
  std::vector<std::unique_ptr<Running>> running;
  std::vector<int64_t> reservedBlocks; // per group, over `running`
  mutable std::mutex mutex; // guards waiting and counters
  std::condition_variable ready;
  SchedulerStats counters;
  std::string closed; // abortAll's reason, once it ran
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_INFERENCE_SCHEDULER_H
