//===- Scheduler.cpp - continuous batching over one Decoder ----------------===//

#include "attnedit/Runtime/Inference/Scheduler.h"

#include "llvm/Support/FormatVariadic.h"

#include <set>

using namespace mlir;
using namespace mlir::attnedit;
using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

Scheduler::Scheduler(Decoder &decoder, const Tokenizer *tokenizer, int64_t maxBatch,
                     int64_t prefillBudget)
    : decoder(decoder), tokenizer(tokenizer), maxBatch(std::max<int64_t>(1, maxBatch)),
      prefillBudget(std::max<int64_t>(1, prefillBudget)) {}

/// The result of a request that ends before it was admitted.
static RequestResult unstarted(const Request &request, std::string finishReason,
                               std::string error) {
  RequestResult result;
  result.finishReason = std::move(finishReason);
  result.error = std::move(error);
  result.promptTokens = request.prompt.size();
  return result;
}

void Scheduler::submit(Request request) {
  request.submitted = Clock::now();
  {
    std::unique_lock<std::mutex> lock(mutex);
    // A handler that passed its checks as the server began shutting down.
    if (!closed.empty()) {
      RequestResult result = unstarted(request, "aborted", closed);
      lock.unlock();
      if (request.onDone)
        request.onDone(result);
      return;
    }
    waiting.push_back(std::move(request));
    ++counters.requestsTotal;
    counters.requestsWaiting = waiting.size();
  }
  ready.notify_all();
}

std::vector<int64_t> Scheduler::blocksNeeded(const Request &request) const {
  const KvCache &cache = decoder.cache();
  // The last token sampled is returned, never fed back into the cache.
  int64_t length = request.prompt.size() + std::max<int64_t>(0, request.options.maxTokens - 1);
  if (decoder.model().maxPositions() > 0)
    length = std::min(length, decoder.model().maxPositions());
  std::vector<int64_t> need;
  for (size_t g = 0; g < cache.layout().groups.size(); ++g)
    need.push_back(cache.blocksFor(g, length));
  return need;
}

std::string Scheduler::unfit(const Request &request) const {
  return unfitFor(blocksNeeded(request));
}

int64_t Scheduler::longestRequest() const {
  const KvCache &cache = decoder.cache();
  int64_t context = decoder.model().maxPositions();
  int64_t hi = context > 0 ? context : int64_t(1) << 40;
  // A request of `length` tokens caches all but its last (blocksNeeded).
  auto fits = [&](int64_t length) {
    for (size_t g = 0; g < cache.layout().groups.size(); ++g)
      if (cache.blocksFor(g, length - 1) > cache.blockCap())
        return false;
    return true;
  };
  if (cache.blockCap() <= 0 || fits(hi))
    return hi;
  int64_t lo = 1; // fits; hi does not
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

std::string Scheduler::unfitFor(llvm::ArrayRef<int64_t> needs) const {
  int64_t cap = decoder.cache().blockCap();
  if (cap <= 0)
    return "";
  for (int64_t need : needs)
    if (need > cap)
      return llvm::formatv("the prompt and max_tokens need {0} KV-cache blocks of {1} tokens; "
                           "the cache holds {2} (--kv-blocks)",
                           need, decoder.cache().layout().blockSize, cap)
          .str();
  return "";
}

void Scheduler::finish(Running &r, std::string reason, std::string error) {
  // Text held back for a stop string that never came is output after all.
  if (r.scanner)
    r.scanner->release(r.request.prompt, r.result.tokens, r.result.tokens.size(),
                       r.request.onToken);
  for (size_t g = 0; g < r.reserved.size(); ++g)
    reservedBlocks[g] -= r.reserved[g];
  r.reserved.clear();
  decoder.cache().close(r.seq);
  r.result.finishReason = std::move(reason);
  r.result.error = std::move(error);
  r.result.seconds = since(r.start);
  if (r.request.onDone)
    r.request.onDone(r.result);
}

bool Scheduler::advance(Running &r, llvm::ArrayRef<float> row) {
  const GenerationOptions &options = r.request.options;
  Model &model = decoder.model();
  size_t before = r.result.tokens.size();
  llvm::Expected<int32_t> sampled = drawToken(row, r.context, before, model, options, r.rng);
  if (!sampled) {
    finish(r, "error", llvm::toString(sampled.takeError()));
    return false;
  }
  int32_t next = *sampled;
  if (r.result.tokens.empty())
    r.result.secondsToFirstToken = since(r.start);
  ++r.result.generated;
  {
    std::lock_guard<std::mutex> lock(mutex);
    ++counters.generatedTokensTotal;
  }
  if (isStopToken(model, options, next)) {
    finish(r, "stop");
    return false;
  }
  if (!r.scanner)
    r.scanner.emplace(tokenizer, options);
  bool stopped = r.scanner->append(r.context.back(), next, (int64_t)before >= options.minTokens);
  r.context.push_back(next);
  r.result.tokens.push_back(next);
  if (stopped) {
    r.result.tokens.resize(r.scanner->settled());
    r.result.tail = r.scanner->tail();
    finish(r, "stop");
    return false;
  }
  r.scanner->release(r.request.prompt, r.result.tokens, r.scanner->settled(), r.request.onToken);
  r.pending = next;
  if ((int64_t)r.result.tokens.size() >= options.maxTokens ||
      (model.maxPositions() > 0 && (int64_t)r.context.size() >= model.maxPositions())) {
    finish(r, "length");
    return false;
  }
  return true;
}

static bool isCancelled(const Request &r) { return r.cancelled && r.cancelled->load(); }

bool Scheduler::step() {
  bool worked = false;
  int64_t vocab = decoder.model().vocabSize();
  // Cancelled requests leave first.
  std::vector<std::unique_ptr<Running>> kept;
  for (auto &r : running) {
    if (isCancelled(r->request)) {
      finish(*r, "cancelled");
      worked = true;
    } else {
      kept.push_back(std::move(r));
    }
  }
  running = std::move(kept);
  // Waiting ones too: one at the head of the queue would hold back those
  // behind it until blocks were free for it.
  std::vector<Request> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (auto it = waiting.begin(); it != waiting.end();) {
      if (isCancelled(*it)) {
        dropped.push_back(std::move(*it));
        it = waiting.erase(it);
      } else {
        ++it;
      }
    }
    counters.requestsWaiting = waiting.size();
  }
  for (Request &request : dropped) {
    worked = true;
    if (request.onDone)
      request.onDone(unstarted(request, "cancelled", ""));
  }
  // Admit waiting requests while the batch has room and, under a capped
  // cache, blocks for their whole prompt and max_tokens are free: a
  // request admitted on hope would fail midway when the cache filled.
  int64_t cap = decoder.cache().blockCap();
  reservedBlocks.resize(decoder.cache().layout().groups.size(), 0);
  while ((int64_t)running.size() < maxBatch) {
    Request request;
    std::vector<int64_t> need;
    std::string tooLarge;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (waiting.empty())
        break;
      need = blocksNeeded(waiting.front());
      tooLarge = unfitFor(need);
      bool fits = true;
      for (size_t g = 0; g < need.size(); ++g)
        fits = fits && (cap <= 0 || reservedBlocks[g] + need[g] <= cap);
      if (!fits && tooLarge.empty())
        break; // waits for running requests to free their blocks
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
    if (!tooLarge.empty()) {
      finish(*r, "error", tooLarge);
      continue;
    }
    r->reserved = need;
    for (size_t g = 0; g < need.size(); ++g)
      reservedBlocks[g] += need[g];
    if (isCancelled(r->request))
      finish(*r, "cancelled");
    else if (r->context.empty())
      finish(*r, "error", "the prompt has no tokens");
    else if (r->request.options.maxTokens <= 0)
      finish(*r, "length");
    else
      running.push_back(std::move(r));
  }
  // Prefill prompts, oldest first, within the step's token budget; a prompt
  // that is complete samples its first token.
  int64_t budget = prefillBudget;
  kept.clear();
  for (auto &r : running) {
    if (r->pending >= 0 || budget <= 0) {
      kept.push_back(std::move(r));
      continue;
    }
    worked = true;
    size_t n = std::min<size_t>(budget, r->request.prompt.size() - r->prefilled);
    auto t = Clock::now();
    auto logits = decoder.prefill(
        r->seq, llvm::ArrayRef<int32_t>(r->request.prompt).slice(r->prefilled, n));
    {
      std::lock_guard<std::mutex> lock(mutex);
      counters.prefillSeconds += since(t);
      counters.promptTokensTotal += n;
    }
    budget -= n;
    r->prefilled += n;
    if (!logits) {
      finish(*r, "error", llvm::toString(logits.takeError()));
      continue;
    }
    if (r->prefilled < r->request.prompt.size()) {
      kept.push_back(std::move(r));
      continue;
    }
    const float *last = logits->data() + (logits->dim(0) - 1) * vocab;
    if (advance(*r, llvm::ArrayRef<float>(last, vocab)))
      kept.push_back(std::move(r));
  }
  running = std::move(kept);
  // Decode: one token for every request past its prompt, in one call.
  std::vector<Running *> batch;
  for (auto &r : running)
    if (r->pending >= 0)
      batch.push_back(r.get());
  if (!batch.empty()) {
    worked = true;
    std::vector<int64_t> seqs;
    std::vector<int32_t> tokens;
    for (Running *r : batch) {
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
    std::string error = logits ? "" : llvm::toString(logits.takeError());
    std::set<Running *> done;
    for (size_t i = 0; i < batch.size(); ++i) {
      bool keep = false;
      if (error.empty())
        keep = advance(*batch[i], llvm::ArrayRef<float>(logits->data() + i * vocab, vocab));
      else
        finish(*batch[i], "error", error);
      if (!keep)
        done.insert(batch[i]);
    }
    kept.clear();
    for (auto &r : running)
      if (!done.count(r.get()))
        kept.push_back(std::move(r));
    running = std::move(kept);
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
    finish(*r, "aborted", reason);
  running.clear();
  std::deque<Request> queued;
  {
    std::lock_guard<std::mutex> lock(mutex);
    queued.swap(waiting);
    counters.requestsWaiting = 0;
    closed = reason;
  }
  for (Request &request : queued)
    if (request.onDone)
      request.onDone(unstarted(request, "aborted", reason));
  refreshStats();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mutex);
  return counters;
}
