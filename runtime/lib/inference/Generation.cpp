//===- Generation.cpp - extending a prompt token by token ------------------===//

#include "attnedit/Runtime/Inference/Generation.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Runtime/Inference/Decoder.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

using namespace mlir;
using namespace mlir::attnedit;

static llvm::Expected<int32_t> sampleToken(llvm::ArrayRef<float> logits,
                                           const GenerationOptions &options,
                                           std::mt19937_64 &rng) {
  int64_t vocab = logits.size();
  if (llvm::Error e = requireFiniteLogits(logits, vocab, "generate"))
    return std::move(e);
  if (options.temperature == 0)
    return (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
  float maxv = *std::max_element(logits.begin(), logits.end());
  std::vector<double> weights(vocab);
  for (int64_t i = 0; i < vocab; ++i)
    weights[i] = std::exp((logits[i] - maxv) / options.temperature);
  // Min-p first, as vLLM's (a logits processor ahead of top-k and top-p):
  // the likeliest token's weight is exp(0) = 1.
  if (options.minP > 0)
    for (double &w : weights)
      if (w < options.minP)
        w = 0;
  bool truncate = (options.topK > 0 && options.topK < vocab) || options.topP < 1.0;
  if (truncate) {
    // Keep the likeliest tokens (ties by id) while both limits allow.
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return weights[a] > weights[b]; });
    double total = std::accumulate(weights.begin(), weights.end(), 0.0), mass = 0;
    int64_t keep = options.topK > 0 ? std::min(options.topK, vocab) : vocab;
    for (int64_t i = 0; i < keep; ++i) {
      mass += weights[order[i]];
      if (mass >= options.topP * total) {
        keep = i + 1;
        break;
      }
    }
    for (int64_t i = keep; i < vocab; ++i)
      weights[order[i]] = 0;
  }
  return (int32_t)std::discrete_distribution<int64_t>(weights.begin(), weights.end())(rng);
}

GenerationOptions attnedit::modelGenerationOptions(const Model &model) {
  GenerationOptions options;
  DictionaryAttr settings = model.samplingDefaults();
  if (!settings)
    return options;
  // The dialect checked each value's kind and range.
  auto number = [&](llvm::StringRef key, double &out) {
    if (auto f = settings.getAs<FloatAttr>(key))
      out = f.getValueAsDouble();
    else if (auto i = settings.getAs<IntegerAttr>(key))
      out = (double)i.getInt();
  };
  number("temperature", options.temperature);
  number("top_p", options.topP);
  number("min_p", options.minP);
  number("repetition_penalty", options.repetitionPenalty);
  if (auto k = settings.getAs<IntegerAttr>("top_k"))
    options.topK = k.getInt();
  if (auto n = settings.getAs<IntegerAttr>("max_new_tokens"))
    options.maxTokens = n.getInt();
  if (auto sample = settings.getAs<BoolAttr>("do_sample"); sample && !sample.getValue())
    options.temperature = 0;
  return options;
}

std::string attnedit::describeSamplingDefaults(const Model &model) {
  std::vector<std::string> parts;
  if (DictionaryAttr settings = model.samplingDefaults())
    for (NamedAttribute a : settings) {
      std::string value;
      if (auto f = dyn_cast<FloatAttr>(a.getValue()))
        value = f.getType().isF32() ? fmt::format("{}", (float)f.getValueAsDouble())
                                    : fmt::format("{}", f.getValueAsDouble());
      else if (auto b = dyn_cast<BoolAttr>(a.getValue()))
        value = b.getValue() ? "true" : "false";
      else if (auto i = dyn_cast<IntegerAttr>(a.getValue()))
        value = std::to_string(i.getInt());
      parts.push_back(a.getName().str() + " " + value);
    }
  return llvm::join(parts, ", ");
}

bool attnedit::isStopToken(const Model &model, const GenerationOptions &options,
                           int32_t token) {
  return (!options.ignoreStopTokens && llvm::is_contained(model.stopTokens(), token)) ||
         llvm::is_contained(options.stopTokenIds, token);
}

llvm::Expected<int32_t> attnedit::drawToken(llvm::ArrayRef<float> row,
                                            llvm::ArrayRef<int32_t> context, size_t generated,
                                            const Model &model, const GenerationOptions &options,
                                            std::mt19937_64 &rng) {
  std::vector<float> logits(row.begin(), row.end());
  if (options.repetitionPenalty != 1.0) {
    std::vector<bool> seen(logits.size(), false);
    for (int32_t id : context)
      if (id >= 0 && (size_t)id < logits.size() && !seen[id]) {
        seen[id] = true;
        float &x = logits[id];
        x = x > 0 ? x / options.repetitionPenalty : x * options.repetitionPenalty;
      }
  }
  // Masked by the lowest finite value, not -inf, which sampleToken refuses
  // as the model's garbage; exp of it at any temperature is 0.
  if ((int64_t)generated < options.minTokens)
    for (llvm::ArrayRef<int32_t> ids :
         {options.ignoreStopTokens ? llvm::ArrayRef<int32_t>() : model.stopTokens(),
          llvm::ArrayRef(options.stopTokenIds)})
      for (int32_t id : ids)
        if (id >= 0 && (size_t)id < logits.size() && std::isfinite(logits[id]))
          logits[id] = std::numeric_limits<float>::lowest();
  return sampleToken(logits, options, rng);
}

namespace {

/// Where the next token's logits come from: the KV cache, or @forward over
/// the whole sequence.
class LogitSource {
public:
  explicit LogitSource(Model &model) : model(model) {}

  llvm::Error init(bool useCache) {
    if (!useCache)
      return llvm::Error::success();
    auto created = Decoder::create(model);
    if (!created)
      return created.takeError();
    decoder = std::move(*created);
    seq = decoder->cache().open();
    return llvm::Error::success();
  }

  /// The logits after `tokens`, of which all but `fresh` were seen before.
  llvm::Expected<std::vector<float>> next(llvm::ArrayRef<int32_t> tokens, size_t fresh) {
    llvm::Expected<Tensor> logits =
        !decoder   ? model.forward(tokens)
        : fresh == 1 && decoder->cache().length(seq) > 0
            ? decoder->decode({seq}, {tokens.back()})
            : decoder->prefill(seq, tokens.take_back(fresh));
    if (!logits)
      return logits.takeError();
    int64_t vocab = logits->dim(1);
    const float *last = logits->data() + (logits->dim(0) - 1) * vocab;
    return std::vector<float>(last, last + vocab);
  }

private:
  Model &model;
  std::unique_ptr<Decoder> decoder;
  int64_t seq = 0;
};

} // namespace

StopStringScanner::StopStringScanner(const Tokenizer *tokenizer,
                                     const GenerationOptions &options)
    : tokenizer(tokenizer), stops(options.stopStrings), includeStop(options.includeStopString),
      skipSpecial(options.skipSpecialTokens) {
  llvm::erase_if(stops, [](const std::string &s) { return s.empty(); });
}

bool StopStringScanner::append(int32_t prev, int32_t next, bool mayStop) {
  if (!tokenizer || stops.empty() || end) {
    ends.push_back(text.size());
    return false;
  }
  size_t before = text.size();
  text += tokenizer->pieceOf(prev, next, skipSpecial);
  ends.push_back(text.size());
  held = 0;
  for (const std::string &stop : stops) {
    // Only a match ending in the new text is new; the one ending the
    // output first wins.
    size_t from = before >= stop.size() ? before - stop.size() + 1 : 0;
    size_t found = mayStop ? text.find(stop, from) : std::string::npos;
    if (found != std::string::npos)
      end = std::min(end.value_or(text.size()), found + (includeStop ? stop.size() : 0));
    for (size_t n = std::min(stop.size() - 1, text.size()); n > held; --n)
      if (llvm::StringRef(text).ends_with(llvm::StringRef(stop).take_front(n))) {
        held = n;
        break;
      }
  }
  return end.has_value();
}

size_t StopStringScanner::settled() const {
  size_t limit = end ? *end : text.size() - held;
  return std::upper_bound(ends.begin(), ends.end(), limit) - ends.begin();
}

std::string StopStringScanner::tail() const {
  if (!end)
    return "";
  size_t n = settled();
  size_t from = n ? ends[n - 1] : 0;
  return text.substr(from, *end - from);
}

void StopStringScanner::release(llvm::ArrayRef<int32_t> prompt,
                                llvm::ArrayRef<int32_t> generated, size_t upTo,
                                const std::function<void(int32_t, int32_t)> &onToken) {
  for (; released < upTo; ++released)
    if (onToken)
      onToken(released ? generated[released - 1] : prompt.back(), generated[released]);
}

llvm::Expected<std::vector<int32_t>>
attnedit::generate(Model &model, llvm::ArrayRef<int32_t> prompt,
                   const GenerationOptions &options,
                   const std::function<void(int32_t, int32_t)> &onToken,
                   GenerationReport *report) {
  if (prompt.empty())
    return makeError("generate", "the prompt has no tokens");
  auto start = std::chrono::steady_clock::now();
  const Tokenizer *tok = nullptr;
  if (!options.stopStrings.empty()) {
    auto loaded = model.tokenizer();
    if (!loaded)
      return loaded.takeError();
    if (!*loaded)
      return makeError("generate", "stop strings need a tokenizer");
    tok = *loaded;
  }
  LogitSource source(model);
  if (llvm::Error e = source.init(options.useCache))
    return std::move(e);
  std::vector<int32_t> tokens(prompt.begin(), prompt.end()), generated;
  StopStringScanner scanner(tok, options);
  std::mt19937_64 rng(options.seed);
  size_t fresh = tokens.size();
  while ((int64_t)generated.size() < options.maxTokens &&
         (model.maxPositions() == 0 || (int64_t)tokens.size() < model.maxPositions())) {
    auto logits = source.next(tokens, fresh);
    if (!logits)
      return logits.takeError();
    if (report && generated.empty())
      report->firstTokenSeconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (report && report->logits)
      report->logits->insert(report->logits->end(), logits->begin(), logits->end());
    llvm::Expected<int32_t> next =
        drawToken(*logits, tokens, generated.size(), model, options, rng);
    if (!next)
      return next.takeError();
    if (isStopToken(model, options, *next)) {
      if (report)
        report->stopToken = *next;
      break;
    }
    bool stopped = scanner.append(tokens.back(), *next,
                                  (int64_t)generated.size() >= options.minTokens);
    tokens.push_back(*next);
    generated.push_back(*next);
    if (stopped) {
      generated.resize(scanner.settled());
      if (report) {
        report->stopString = true;
        report->tail = scanner.tail();
      }
      break;
    }
    scanner.release(prompt, generated, scanner.settled(), onToken);
    fresh = 1;
  }
  scanner.release(prompt, generated, generated.size(), onToken);
  return generated;
}
