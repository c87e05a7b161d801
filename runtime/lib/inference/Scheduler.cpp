//===- Scheduler.cpp - continuous batching over one Decoder ----------------===//

#include "attnedit/Runtime/Inference/Scheduler.h"

using namespace mlir;
using namespace mlir::attnedit;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

Scheduler::Scheduler(Decoder &decoder, const Tokenizer *tokenizer, int64_t maxBatch)
    : decoder(decoder), tokenizer(tokenizer), maxBatch(std::max<int64_t>(1, maxBatch)) {}

void Scheduler::submit(Request request) {
  request.submitted = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex);
    waiting.push_back(std::move(request));
    ++counters.requestsTotal;
    counters.requestsWaiting = waiting.size();
  }
  ready.notify_all();
}

void Scheduler::finish(Running &r, std::string reason, std::string error) {
  decoder.cache().close(r.seq);
  r.result.finishReason = std::move(reason);
  r.result.error = std::move(error);
  r.result.seconds = since(r.start);
  if (r.request.onDone)
    r.request.onDone(r.result);
}

bool Scheduler::advance(Running &r, llvm::ArrayRef<float> row) {
  const GenerationOptions &options = r.request.options;
  std::vector<float> logits(row.begin(), row.end());
  applyRepetitionPenalty(logits, r.context, options.repetitionPenalty);
  int32_t next = sampleToken(logits, options, r.rng);
  Model &model = decoder.model();
  if (r.result.tokens.empty())
    r.result.secondsToFirstToken = since(r.start);
  if (!options.ignoreStopTokens && llvm::is_contained(model.stopTokens(), next)) {
    finish(r, "stop");
    return false;
  }
  if (tokenizer && !options.stopStrings.empty()) {
    std::vector<int32_t> candidate = r.result.tokens;
    candidate.push_back(next);
    std::string text = tokenizer->decode(candidate);
    for (const std::string &stop : options.stopStrings)
      if (!stop.empty() && text.find(stop) != std::string::npos) {
        finish(r, "stop");
        return false;
      }
  }
  if (r.request.onToken)
    r.request.onToken(r.context.back(), next);
  r.context.push_back(next);
  r.result.tokens.push_back(next);
  r.pending = next;
  {
    std::lock_guard<std::mutex> lock(mutex);
    ++counters.generatedTokensTotal;
  }
  if ((int64_t)r.result.tokens.size() >= options.maxTokens ||
      (model.maxPositions() > 0 && (int64_t)r.context.size() >= model.maxPositions())) {
    finish(r, "length");
    return false;
  }
  return true;
}

bool Scheduler::step() {
  bool worked = false;
  int64_t vocab = decoder.model().vocabSize();
  // Admit: prefill waiting requests while the batch has room.
  while ((int64_t)running.size() < maxBatch) {
    Request request;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (waiting.empty())
        break;
      request = std::move(waiting.front());
      waiting.pop_front();
      counters.requestsWaiting = waiting.size();
    }
    worked = true;
    auto r = std::make_unique<Running>();
    r->start = request.submitted;
    r->request = std::move(request);
    r->context = r->request.prompt;
    r->result.promptTokens = r->context.size();
    r->rng.seed(r->request.options.seed);
    r->seq = decoder.cache().open();
    if (r->context.empty()) {
      finish(*r, "error", "the prompt has no tokens");
      continue;
    }
    if (r->request.options.maxTokens <= 0) {
      finish(*r, "length");
      continue;
    }
    auto t = Clock::now();
    auto logits = decoder.prefill(r->seq, r->context);
    {
      std::lock_guard<std::mutex> lock(mutex);
      counters.prefillSeconds += since(t);
      counters.promptTokensTotal += r->context.size();
    }
    if (!logits) {
      finish(*r, "error", llvm::toString(logits.takeError()));
      continue;
    }
    const float *last = logits->data() + (logits->dim(0) - 1) * vocab;
    if (advance(*r, llvm::ArrayRef<float>(last, vocab)))
      running.push_back(std::move(r));
  }
  // Decode: one token for every running request, in one call.
  if (!running.empty()) {
    worked = true;
    std::vector<int64_t> seqs;
    std::vector<int32_t> tokens;
    for (auto &r : running) {
      seqs.push_back(r->seq);
      tokens.push_back(r->pending);
    }
    auto t = Clock::now();
    auto logits = decoder.decode(seqs, tokens);
    {
      std::lock_guard<std::mutex> lock(mutex);
      counters.decodeSeconds += since(t);
      ++counters.decodeSteps;
    }
    std::vector<std::unique_ptr<Running>> still;
    if (!logits) {
      std::string message = llvm::toString(logits.takeError());
      for (auto &r : running)
        finish(*r, "error", message);
    } else {
      for (size_t i = 0; i < running.size(); ++i)
        if (advance(*running[i], llvm::ArrayRef<float>(logits->data() + i * vocab, vocab)))
          still.push_back(std::move(running[i]));
    }
    running = std::move(still);
  }
  refreshStats();
  return worked;
}

void Scheduler::refreshStats() {
  std::lock_guard<std::mutex> lock(mutex);
  const KvCache &cache = decoder.cache();
  counters.requestsRunning = running.size();
  counters.kvBlocksInUse = cache.blocksInUse();
  counters.kvBytesInUse = cache.bytesInUse();
  counters.kvBytesAllocated = cache.bytesAllocated();
  counters.kvPeakBytes = cache.peakBytesInUse();
}

void Scheduler::run(const std::atomic<bool> &stop) {
  while (!stop) {
    if (step())
      continue;
    std::unique_lock<std::mutex> lock(mutex);
    ready.wait_for(lock, std::chrono::milliseconds(100),
                   [&] { return stop || !waiting.empty(); });
  }
}

void Scheduler::abortAll(const std::string &reason) {
  for (auto &r : running)
    finish(*r, "error", reason);
  running.clear();
  std::deque<Request> queued;
  {
    std::lock_guard<std::mutex> lock(mutex);
    queued.swap(waiting);
    counters.requestsWaiting = 0;
  }
  for (Request &request : queued)
    if (request.onDone) {
      RequestResult result;
      result.finishReason = "error";
      result.error = reason;
      result.promptTokens = request.prompt.size();
      request.onDone(result);
    }
  refreshStats();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex);
  return counters;
}
