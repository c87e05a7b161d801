//===- Sampling.cpp - a file of texts sampled from a model ----------------===//

#include "attnedit/Runtime/Inference/Sampling.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Runtime/Inference/Decoder.h"
#include "attnedit/Runtime/Inference/Scheduler.h"
#include "attnedit/Runtime/Training/Checkpoint.h"
#include "attnedit/Runtime/Training/Distiller.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include <unistd.h>

using namespace mlir;
using namespace mlir::attnedit;

/// A killed `sample` run's complete samples so far (the first ones in
/// order) and the job they belong to: a line naming the format, one JSON
/// line {"job"}, then a chunk per checkpoint, appended: a JSON line
/// {"first", "samples", "bytes", "xxh3"} and `bytes` bytes holding per sample its
/// length and ids as int32. (It was rewritten whole at every checkpoint:
/// 8000 samples wrote 65 MB for 1 MB of them.)
static constexpr llvm::StringLiteral kSampleCheckpointMagic = "attnedit-sample-checkpoint-2";

/// Appends `samples`, the run's from number `first` on, to the checkpoint
/// at `path`, first creating it for `job` if `fresh`.
static llvm::Error appendSampleCheckpoint(llvm::StringRef path, const llvm::json::Value &job,
                                          bool fresh, int64_t first,
                                          llvm::ArrayRef<std::vector<int32_t>> samples) {
  if (fresh)
    if (llvm::Error e = writeFileAtomically(path, [&](llvm::raw_ostream &out) {
          out << kSampleCheckpointMagic << "\n"
              << llvm::json::Value(llvm::json::Object{{"job", job}}) << "\n";
        }))
      return e;
  std::string data;
  llvm::raw_string_ostream os(data);
  for (const std::vector<int32_t> &sample : samples) {
    int32_t n = sample.size();
    os.write(reinterpret_cast<const char *>(&n), sizeof n);
    os.write(reinterpret_cast<const char *>(sample.data()), n * sizeof(int32_t));
  }
  // The chunk's hash: a flipped or zeroed byte was resumed as other ids.
  std::string chunk;
  llvm::raw_string_ostream(chunk)
      << llvm::json::Value(llvm::json::Object{{"first", first},
                                              {"samples", (int64_t)samples.size()},
                                              {"bytes", (int64_t)data.size()},
                                              {"xxh3", llvm::utohexstr(llvm::xxh3_64bits(data))}})
      << "\n"
      << data;
  return appendDurably(path, chunk);
}

/// The samples of the checkpoint at `path`, refused when it belongs to
/// another job than `job` (of `total` samples) or does not parse (errors
/// name the file). A last chunk cut short (a kill during its append) is
/// dropped, and the file truncated before it.
static llvm::Expected<std::vector<std::vector<int32_t>>>
readSampleCheckpoint(llvm::StringRef path, const llvm::json::Value &job, int64_t total,
                     int64_t vocab) {
  auto buffer = readInputFile(path);
  if (!buffer)
    return makeError(path, buffer.getError().message());
  llvm::StringRef file = (*buffer)->getBuffer();
  auto corrupt = [&](const llvm::Twine &why) {
    return makeError(path, "not a sample checkpoint (" + why +
                               "); delete it to sample from the start");
  };
  auto [magic, afterMagic] = file.split('\n');
  auto [header, rest] = afterMagic.split('\n');
  if (magic != kSampleCheckpointMagic)
    return corrupt(magic.starts_with("attnedit-sample-checkpoint")
                       ? "written by an earlier attnedit, in another format"
                       : "no header line");
  auto parsed = parseJson(header);
  if (!parsed)
    return corrupt(llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
  const llvm::json::Value *savedJob = object ? object->get("job") : nullptr;
  if (!savedJob)
    return corrupt("no job");
  std::vector<std::string> changes = jsonChanges(*savedJob, job);
  if (!changes.empty())
    return makeError(path, "the checkpoint belongs to another sample run; changed: " +
                               llvm::join(changes, "; ") +
                               ". Resume with the same options, or delete it");
  std::vector<std::vector<int32_t>> samples;
  while (!rest.empty()) {
    size_t lineEnd = rest.find('\n');
    std::optional<llvm::json::Value> chunk;
    if (lineEnd != llvm::StringRef::npos) {
      auto parsedChunk = parseJson(rest.take_front(lineEnd));
      if (!parsedChunk)
        return corrupt(llvm::toString(parsedChunk.takeError()));
      chunk = std::move(*parsedChunk);
    }
    const llvm::json::Object *c = chunk ? chunk->getAsObject() : nullptr;
    std::optional<int64_t> first = c ? c->getInteger("first") : std::nullopt;
    std::optional<int64_t> count = c ? c->getInteger("samples") : std::nullopt;
    std::optional<int64_t> bytes = c ? c->getInteger("bytes") : std::nullopt;
    std::optional<llvm::StringRef> hash = c ? c->getString("xxh3") : std::nullopt;
    if (chunk && (!first || !count || !bytes || !hash || *count < 0 || *bytes < 0))
      return corrupt("a chunk without its first, samples, bytes and xxh3");
    if (!chunk || rest.size() - lineEnd - 1 < (uint64_t)*bytes) {
      size_t kept = rest.data() - file.data();
      spdlog::warn("{}: dropping a last chunk cut short ({} bytes: its run was killed, or "
                   "its disk filled, while writing it), resuming from the samples before it",
                   path.str(), file.size() - kept);
      if (::truncate(path.str().c_str(), kept) != 0)
        return makeError(path, llvm::Twine("cannot truncate: ") + std::strerror(errno));
      break;
    }
    // A chunk repeated, dropped or moved would shift every sample after it.
    if (*first != (int64_t)samples.size())
      return corrupt(llvm::formatv("a chunk of samples from {0} where {1} comes next",
                                   *first, samples.size())
                         .str());
    if ((int64_t)samples.size() + *count > total)
      return corrupt(llvm::formatv("{0} samples of a run of {1}", samples.size() + *count,
                                   total)
                         .str());
    llvm::StringRef data = rest.substr(lineEnd + 1, *bytes);
    rest = rest.drop_front(lineEnd + 1 + *bytes);
    if (*hash != llvm::utohexstr(llvm::xxh3_64bits(data)))
      return corrupt("its samples' bytes do not match the xxh3 " + *hash +
                     " recorded with them");
    for (int64_t i = 0; i < *count; ++i) {
      int64_t index = samples.size();
      int32_t n;
      if (data.size() < sizeof n)
        return corrupt(llvm::formatv("sample {0} is missing", index).str());
      std::memcpy(&n, data.data(), sizeof n);
      data = data.drop_front(sizeof n);
      if (n < 0 || data.size() < (size_t)n * sizeof(int32_t))
        return corrupt(llvm::formatv("sample {0} has {1} ids, the file fewer", index, n).str());
      std::vector<int32_t> &sample = samples.emplace_back(n);
      std::memcpy(sample.data(), data.data(), n * sizeof(int32_t));
      data = data.drop_front(n * sizeof(int32_t));
      if (llvm::any_of(sample, [&](int32_t id) { return id < 0 || id >= vocab; }))
        return corrupt(llvm::formatv("sample {0} has an id outside the vocabulary", index).str());
    }
    if (!data.empty())
      return corrupt("bytes after a chunk's last sample");
  }
  return samples;
}

llvm::Error attnedit::writeSamples(Model &model, Decoder &decoder,
                                   const SampleJobOptions &options) {
  bool ids = llvm::sys::path::extension(options.out).equals_insensitive(".bin");
  bool jsonLines = llvm::sys::path::extension(options.out).equals_insensitive(".jsonl");
  if (ids && model.vocabSize() > 65536)
    return makeError("a .bin holds uint16 ids, but the vocabulary has " +
                     llvm::Twine(model.vocabSize()) + " entries; write text instead");
  auto loaded = model.tokenizer();
  if (!loaded)
    return loaded.takeError();
  const Tokenizer *tok = *loaded;
  if (!ids && !tok)
    return makeError("text samples need the model's tokenizer; pass --tokenizer, or write a "
                     ".bin");
  // Where readTokens starts a document: `sample`'s output is data to distil on.
  std::optional<int32_t> first = documentStartToken(model.bosToken(), model.stopTokens(), tok);
  if (!first)
    return makeError("the model has neither a BOS nor an EOS token to start a sample from");
  // Before the checkpoint is read: a run writing it now is not a killed one.
  auto lock = JobLock::acquireFile(options.out);
  if (!lock)
    return lock.takeError();
  const GenerationOptions &sampling = options.sampling;
  int64_t count = options.count;
  // What the samples depend on (not the batch size, which only changes the
  // logits' rounding): a checkpoint of anything else is not resumed.
  llvm::json::Value job = llvm::json::Object{
      {"model", moduleIdentity(model.module())},
      {"backend", options.backend},
      {"count", count},
      {"seed", (int64_t)sampling.seed},
      {"max_tokens", sampling.maxTokens},
      {"temperature", sampling.temperature},
      {"top_k", sampling.topK},
      {"top_p", sampling.topP},
      {"min_p", sampling.minP},
      {"repetition_penalty", sampling.repetitionPenalty}};
  std::string checkpoint = options.out + ".partial";
  std::vector<std::vector<int32_t>> samples(count);
  int64_t resumed = 0;
  if (llvm::sys::fs::exists(checkpoint)) {
    if (!options.resume)
      return makeError(checkpoint, "a killed sample run left this checkpoint; pass --resume "
                                   "to continue it, or delete it");
    auto saved = readSampleCheckpoint(checkpoint, job, count, model.vocabSize());
    if (!saved)
      return saved.takeError();
    resumed = saved->size();
    std::move(saved->begin(), saved->end(), samples.begin());
    spdlog::info("resuming {}: {} of {} samples done", checkpoint, resumed, count);
  } else if (options.resume) {
    spdlog::info("{}: no checkpoint to resume; starting from the first sample", checkpoint);
  }
  std::vector<bool> done(count, false);
  std::fill(done.begin(), done.begin() + resumed, true);
  std::optional<std::string> failure;
  int64_t finished = resumed, tokens = 0, saved = resumed, prefix = resumed, next = resumed;
  auto start = std::chrono::steady_clock::now();
  double lastReport = -1;
  // Samples are independent requests, decoded maxBatch at a time (one
  // Decoder for all: building its functions costs more than a sample),
  // submitted a few batches ahead so that memory does not grow with the count.
  Scheduler scheduler(decoder, tok, options.maxBatch);
  auto submit = [&](int64_t i) {
    Request request;
    request.prompt = {*first};
    request.options = sampling;
    request.options.seed = sampling.seed * 1000003 + i; // each sample its own stream
    request.onDone = [&, i](const RequestResult &result) {
      if (result.finishReason == "error") {
        if (!failure)
          failure = llvm::formatv("sample {0}: {1}", i, result.error).str();
        return;
      }
      samples[i] = result.tokens;
      done[i] = true;
      tokens += result.tokens.size();
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      ++finished;
      // A line a second, and the last: a log of 64000 samples stays readable.
      if (seconds < lastReport + 1 && finished < count)
        return;
      lastReport = seconds;
      double eta = seconds / (finished - resumed) * (count - finished);
      llvm::errs() << llvm::formatv("sample {0}/{1}  {2:F0} tok/s  ETA {3}m{4:D2}s\n",
                                    finished, count, tokens / std::max(seconds, 1e-9),
                                    (int64_t)eta / 60, (int64_t)eta % 60);
    };
    scheduler.submit(std::move(request));
  };
  for (;;) {
    for (; next < count && next - finished < 4 * options.maxBatch; ++next)
      submit(next);
    if (failure || !scheduler.step())
      break;
    // The samples complete from the first on, once there are
    // checkpointEvery more of them.
    while (prefix < count && done[prefix])
      ++prefix;
    if (prefix - saved < options.checkpointEvery || prefix == count)
      continue;
    if (llvm::Error e = appendSampleCheckpoint(
            checkpoint, job, !llvm::sys::fs::exists(checkpoint), saved,
            llvm::ArrayRef(samples).slice(saved, prefix - saved)))
      return e;
    saved = prefix;
  }
  if (failure)
    return makeError("sample", *failure);
  std::string text;
  std::vector<uint16_t> stream;
  for (const std::vector<int32_t> &sample : samples) {
    // Each sample opens with its start token, as the trainer's packed data
    // expects.
    stream.push_back(*first);
    stream.insert(stream.end(), sample.begin(), sample.end());
    if (!tok)
      continue;
    // JSON lines keep samples apart; plain text joins them with newlines,
    // which the samples themselves may hold.
    std::string decoded = tok->decode(sample, options.sampling.skipSpecialTokens);
    text += jsonLines ? llvm::formatv("{0}\n", llvm::json::Value(llvm::json::Object{
                                                   {"text", llvm::json::fixUTF8(decoded)}}))
                            .str()
                      : decoded + "\n";
  }
  llvm::Error written =
      ids ? writeFileAtomically(options.out, llvm::StringRef(reinterpret_cast<const char *>(
                                                                 stream.data()),
                                                             stream.size() * 2))
          : writeFileAtomically(options.out, text);
  if (written)
    return written;
  if (std::error_code ec = llvm::sys::fs::remove(checkpoint))
    return makeError(checkpoint, "cannot remove: " + ec.message());
  spdlog::info("wrote {}: {} samples, {} sampled tokens ({})", options.out, count,
               stream.size() - count,
               ids ? llvm::formatv("{0} uint16 ids: BOS before each sample", stream.size()).str()
                   : jsonLines ? "JSON lines of {\"text\": ...}" : "text");
  return llvm::Error::success();
}
