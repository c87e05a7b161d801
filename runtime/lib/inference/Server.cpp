//===- Server.cpp - an OpenAI-compatible HTTP server -----------------------===//
//
// HTTP is cpp-httplib's (Debian's libcpp-httplib-dev); JSON is llvm::json.
// Handler threads parse and validate a request, submit it to the
// Scheduler, and wait: for the whole answer, or (stream: true) for each
// token, which they send as a server-sent event `data: {...}\n\n`, ending
// with `data: [DONE]\n\n` (OpenAI's stream format, as llama.cpp's server).
//
//===----------------------------------------------------------------------===//

#include "attnedit/Runtime/Inference/Server.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/ModelConfig.h"
#include "attnedit/Runtime/Inference/ChatFormat.h"
#include "attnedit/Runtime/Inference/Scheduler.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <netdb.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <thread>
#include <variant>

using namespace mlir;
using namespace mlir::attnedit;
namespace json = llvm::json;

namespace {

std::string dump(json::Value value) { return llvm::formatv("{0}", value).str(); }

json::Object usageOf(const RequestResult &r) {
  int64_t completion = r.generated;
  return json::Object{{"prompt_tokens", r.promptTokens},
                      {"completion_tokens", completion},
                      {"total_tokens", r.promptTokens + completion}};
}

/// How much of `text` ends in whole UTF-8 characters. A trailing lead byte
/// with fewer continuation bytes than it announces waits for the next
/// token: byte-fallback tokens spell one character over several (🦙 is
/// four), and a stream event holding part of one showed U+FFFD. Bytes that
/// can never complete are not held; they are U+FFFD either way.
size_t wholeUtf8Prefix(llvm::StringRef text) {
  size_t n = text.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    unsigned char c = text[n - back];
    if ((c & 0xC0) == 0x80)
      continue; // a continuation byte: its lead is further back
    size_t length = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return length > back ? n - back : n;
  }
  return n;
}

/// llvm::json asserts on invalid UTF-8; text a model generated may be.
std::string validUtf8(std::string text) {
  return json::isUTF8(text) ? text : json::fixUTF8(text);
}

/// 2, 0.5, 1e-09: what a person would write.
std::string shortNumber(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", value);
  return text;
}

/// An OpenAI-style error answer.
struct ApiError {
  int status;
  std::string message, type, param, code;
};

constexpr size_t kMaxBodyBytes = size_t(32) << 20;
// Each generated token is matched against every stop string, so their
// number and length cost every step of the batch (400,000 took a request
// 7 s and slowed the others). OpenAI takes 4; 16 leaves room for the
// several end markers a chat format may need; 256 bytes is more than a
// sentence.
constexpr size_t kMaxStopStrings = 16;
constexpr size_t kMaxStopBytes = 256;
/// How long a stream may be silent before it sends an SSE comment: a write
/// is the only way cpp-httplib 0.11 lets a handler find a client that left
/// (one that left while its request waited for KV blocks was found only
/// after it was admitted and prefilled, holding back those behind it), and
/// it keeps proxies from closing an idle stream, as OpenRouter's
/// ": OPENROUTER PROCESSING" lines do. SSE clients skip comments.
constexpr std::chrono::seconds kStreamProbe{5};

/// {"error": {...}}: an answer's body, or a stream's last event.
json::Object errorBody(const ApiError &e) {
  json::Object error{{"message", e.message}, {"type", e.type}};
  error["param"] = e.param.empty() ? json::Value(nullptr) : json::Value(e.param);
  error["code"] = e.code.empty() ? json::Value(nullptr) : json::Value(e.code);
  return json::Object{{"error", std::move(error)}};
}

void sendError(httplib::Response &res, const ApiError &e) {
  res.status = e.status;
  res.set_content(dump(errorBody(e)), "application/json");
}

ApiError invalid(std::string message, std::string param = "", std::string code = "") {
  return {400, std::move(message), "invalid_request_error", std::move(param), std::move(code)};
}

ApiError bodyTooLarge() {
  return {413, "the request body is larger than " + std::to_string(kMaxBodyBytes >> 20) + " MiB",
          "invalid_request_error", "", "request_too_large"};
}

ApiError failed(std::string message) {
  return {500, std::move(message), "server_error", "", ""};
}

ApiError shuttingDown(std::string message) {
  return {503, std::move(message), "server_error", "", "server_shutting_down"};
}

ApiError modelNotFound(llvm::StringRef name, llvm::StringRef served) {
  return {404, ("The model '" + name + "' does not exist; this server has '" + served + "'").str(),
          "invalid_request_error", "model", "model_not_found"};
}

/// The methods a route answers, for a 405's Allow header: the routes
/// Service::install() registers.
std::string allowedMethods(llvm::StringRef path) {
  if (path == "/v1/completions" || path == "/v1/chat/completions")
    return "POST";
  if (path == "/health" || path == "/metrics" || path == "/v1/models" ||
      path.starts_with("/v1/models/"))
    return "GET, HEAD";
  return "";
}

/// httplib reads Content-Length with strtoull: "-5" was a body of 2^64 - 5
/// bytes, refused as larger than the cap.
bool validContentLength(const httplib::Request &req) {
  if (!req.has_header("Content-Length"))
    return true;
  llvm::StringRef value = req.get_header_value("Content-Length");
  return !value.empty() && llvm::all_of(value, llvm::isDigit);
}

ApiError badContentLength() {
  return invalid("the Content-Length header must be a non-negative integer");
}

/// What the access log line tells of the request its thread answers:
/// httplib runs the pre-routing handler, the handler, the streaming of the
/// answer and then the logger on one thread.
struct AccessLog {
  std::optional<std::chrono::steady_clock::time_point> start;
  std::string tokens; // a completion's token counts and finish reason
};
thread_local AccessLog accessLog;

void noteTokens(const RequestResult &r) {
  accessLog.tokens = llvm::formatv("{0} prompt + {1} completion tokens, {2}", r.promptTokens,
                                   r.generated, r.finishReason);
}

/// What one request asks for, validated.
struct Parsed {
  std::vector<int32_t> prompt;
  GenerationOptions options;
  bool stream = false;
  bool includeUsage = false; // stream_options.include_usage
  bool chat = false;
  std::string maxTokensKey = "max_tokens"; // or the key the request used
};

/// Tokens, state and the end of one request, shared between the scheduler's
/// callbacks and the handler thread that answers it.
struct Pending {
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::string> pieces; // not yet sent (stream)
  std::string partial;            // a character's first bytes (wholeUtf8Prefix)
  std::string text;
  bool done = false;
  RequestResult result;

  /// Adds text to the answer; whole characters go to `pieces` (a streamed
  /// event never splits one).
  void append(llvm::StringRef piece) {
    text += piece;
    partial += piece;
    if (size_t whole = wholeUtf8Prefix(partial)) {
      pieces.push_back(partial.substr(0, whole));
      partial.erase(0, whole);
    }
  }
};

class Service {
public:
  Service(Decoder &decoder, const Tokenizer *tok, ChatFormat chatFormat,
          const ServerOptions &options)
      : model(decoder.model()), tok(tok), chatFormat(std::move(chatFormat)), options(options),
        scheduler(decoder, tok, options.maxBatch, options.prefillBudget),
        defaults(modelGenerationOptions(model)) {
    for (int32_t id = 0; id < tok->vocabSize(); ++id)
      longestToken = std::max(longestToken, tok->decodeToken(-1, id).size() + 1);
  }

  void install(httplib::Server &server);
  void runScheduler(const std::atomic<bool> &stop) {
    scheduler.run(stop);
    scheduler.abortAll("the server is shutting down; the request was ended before it finished");
  }
  void wake() { scheduler.wake(); }
  /// From the first SIGINT/SIGTERM on: new requests get a 503.
  void drain() { draining = true; }
  /// Requests submitted and not yet done. (The scheduler's running and
  /// waiting counts miss one between its admission and the step's end.)
  int64_t busy() const { return inFlight; }

private:
  std::variant<Parsed, ApiError> parse(llvm::StringRef body, bool chat);
  void complete(llvm::StringRef body, httplib::Response &res, bool chat);
  std::string metrics();

  json::Object chunk(const std::string &id, bool chat, const std::string &piece,
                     const std::string &finish, bool first) const;

  Model &model;
  const Tokenizer *tok;
  ChatFormat chatFormat;
  ServerOptions options;
  Scheduler scheduler;
  /// What a request leaves out samples with (the model's settings).
  GenerationOptions defaults;
  // Ids unique across restarts and replicas (their logs are merged), as
  // OpenAI's and vLLM's random ones are.
  std::string idPrefix = llvm::formatv("{0:x-16}", std::random_device{}() |
                                                       (uint64_t)std::random_device{}() << 32);
  std::atomic<int64_t> nextId{0};
  std::atomic<int64_t> httpErrors{0};
  std::atomic<bool> draining{false};
  std::atomic<int64_t> inFlight{0};
  size_t longestToken = 1; // bytes of text, at most, one token stands for (+1 for a space)
};

std::variant<Parsed, ApiError> Service::parse(llvm::StringRef text, bool chat) {
  auto body = json::parse(text);
  if (!body)
    return invalid("could not parse the JSON body: " + llvm::toString(body.takeError()));
  const json::Object *o = body->getAsObject();
  if (!o)
    return invalid("the body must be a JSON object");
  Parsed p;
  p.chat = chat;
  const json::Value *modelField = o->get("model");
  if (!modelField || modelField->kind() == json::Value::Null)
    return invalid("you must provide a model parameter", "model");
  std::optional<llvm::StringRef> name = modelField->getAsString();
  if (!name)
    return invalid("model must be a string", "model");
  if (*name != options.modelName)
    return modelNotFound(*name, options.modelName);

  // Parameters this server does not implement are refused when they would
  // change the answer, rather than ignored: a client asking for logprobs
  // would otherwise get null and no word why. Unknown fields and these at
  // their neutral values pass, as OpenAI's clients often send them.
  // False is neutral too; completions' logprobs has no neutral number (0
  // asks for the sampled tokens' logprobs).
  for (const auto &[key, neutral] :
       std::initializer_list<std::pair<const char *, std::optional<double>>>{
           {"logprobs", std::nullopt}, {"top_logprobs", 0}, {"echo", 0}, {"best_of", 1},
           {"presence_penalty", 0}, {"frequency_penalty", 0}}) {
    const json::Value *v = o->get(key);
    if (!v || v->kind() == json::Value::Null || v->getAsBoolean() == false)
      continue;
    std::optional<double> x = v->getAsNumber();
    if (!x || x != neutral)
      return invalid(std::string(key) + " is not supported by this server", key);
  }
  for (const char *key : {"suffix", "logit_bias", "tools", "functions", "response_format"}) {
    const json::Value *v = o->get(key);
    bool empty = !v || v->kind() == json::Value::Null ||
                 (v->getAsString() && v->getAsString()->empty()) ||
                 (v->getAsObject() && v->getAsObject()->empty()) ||
                 (v->getAsArray() && v->getAsArray()->empty());
    bool plainText = llvm::StringRef(key) == "response_format" && v && v->getAsObject() &&
                     v->getAsObject()->getString("type") == llvm::StringRef("text");
    if (!empty && !plainText)
      return invalid(std::string(key) + " is not supported by this server", key);
  }

  int64_t context = model.maxPositions();
  auto encodeText = [&](llvm::StringRef text) -> std::optional<ApiError> {
    // A token spells at most longestToken bytes, so a text this long has
    // more tokens than the context holds: refused before encoding it,
    // which took 12 s and 1.6 GB for 30 MB. The factor 4 leaves room for
    // normalizers that shorten text (NFKC, whitespace).
    if (context > 0 && text.size() > 4 * (size_t)context * longestToken)
      return invalid(llvm::formatv("This model's maximum context length is {0} tokens, however "
                                   "your prompt has {1} bytes, more than {0} tokens of at most "
                                   "{2} bytes spell",
                                   context, text.size(), longestToken),
                     chat ? "messages" : "prompt", "context_length_exceeded");
    if (model.bosToken())
      p.prompt.push_back(*model.bosToken());
    std::vector<int32_t> ids = tok->encode(text);
    p.prompt.insert(p.prompt.end(), ids.begin(), ids.end());
    return std::nullopt;
  };
  if (chat) {
    const json::Array *messages = o->getArray("messages");
    if (!messages || messages->empty())
      return invalid("'messages' must be a non-empty array", "messages");
    std::vector<ChatMessage> chatMessages;
    for (auto [i, m] : llvm::enumerate(*messages)) {
      std::string at = llvm::formatv("messages[{0}]", i).str();
      const json::Object *msg = m.getAsObject();
      auto role = msg ? msg->getString("role") : std::nullopt;
      if (!role)
        return invalid(at + " needs a string 'role'", "messages");
      // OpenAI's roles; another was written into the prompt as given.
      if (!llvm::is_contained({"system", "developer", "user", "assistant", "tool"}, *role))
        return invalid(at + ".role '" + role->str() +
                           "' is not one of system, developer, user, assistant, tool",
                       "messages");
      // Tools are refused above; a call in the history would be dropped
      // from the prompt without a word.
      if (const json::Value *calls = msg->get("tool_calls");
          calls && calls->kind() != json::Value::Null &&
          !(calls->getAsArray() && calls->getAsArray()->empty()))
        return invalid(at + ".tool_calls: tool calls are not supported by this server",
                       "messages");
      // A string, or OpenAI's array of content parts, of which text ones.
      std::string content;
      const json::Value *c = msg->get("content");
      if (auto s = c ? c->getAsString() : std::nullopt) {
        content = s->str();
      } else if (const json::Array *parts = c ? c->getAsArray() : nullptr) {
        for (const json::Value &part : *parts) {
          const json::Object *po = part.getAsObject();
          auto type = po ? po->getString("type") : std::nullopt;
          auto partText = po ? po->getString("text") : std::nullopt;
          if (type != "text" || !partText)
            return invalid(at + ".content: only text parts ({\"type\": \"text\", \"text\": "
                                "...}) are supported",
                           "messages");
          content += partText->str();
        }
      } else {
        return invalid(at + " needs 'content', a string or an array of text parts", "messages");
      }
      std::optional<std::string> reasoning;
      if (const json::Value *r = msg->get("reasoning_content");
          r && r->kind() != json::Value::Null) {
        if (!r->getAsString())
          return invalid(at + ".reasoning_content must be a string", "messages");
        reasoning = r->getAsString()->str();
      }
      // OpenAI's developer messages are what system messages were, and
      // chat templates know only "system".
      chatMessages.push_back(
          {*role == "developer" ? "system" : role->str(), std::move(content), reasoning});
    }
    // vLLM's chat_template_kwargs, of which the one variable templates
    // attnedit writes read (others were ignored without a word).
    bool thinking = true;
    if (const json::Value *v = o->get("chat_template_kwargs");
        v && v->kind() != json::Value::Null) {
      const json::Object *kwargs = v->getAsObject();
      if (!kwargs)
        return invalid("chat_template_kwargs must be an object", "chat_template_kwargs");
      for (const auto &[key, value] : *kwargs) {
        if (key != "enable_thinking" || !value.getAsBoolean())
          return invalid("chat_template_kwargs: only enable_thinking (a boolean) is supported",
                         "chat_template_kwargs");
        thinking = *value.getAsBoolean();
      }
    }
    if (auto e = encodeText(chatFormat.render(chatMessages, thinking)))
      return *e;
  } else {
    const json::Value *prompt = o->get("prompt");
    if (!prompt)
      return invalid("you must provide a prompt", "prompt");
    if (auto s = prompt->getAsString()) {
      if (auto e = encodeText(*s))
        return *e;
    } else if (const json::Array *a = prompt->getAsArray()) {
      // One prompt: a string, [string], [ids] or [[ids]].
      if (const json::Array *ids = a->size() == 1 ? (*a)[0].getAsArray() : nullptr;
          ids && (ids->empty() || (*ids)[0].getAsInteger()))
        a = ids;
      if (a->size() == 1 && (*a)[0].getAsString()) {
        if (auto e = encodeText(*(*a)[0].getAsString()))
          return *e;
      } else if (!a->empty() && ((*a)[0].getAsString() || (*a)[0].getAsArray())) {
        return invalid(llvm::formatv("prompt is a list of {0} {1}: this server takes one prompt "
                                     "per request",
                                     a->size(), (*a)[0].getAsString() ? "strings" : "lists"),
                       "prompt");
      } else {
        for (const json::Value &v : *a) {
          auto id = v.getAsInteger();
          if (!id || *id < 0 || *id >= model.vocabSize())
            return invalid("prompt: token ids must be integers in [0, " +
                               std::to_string(model.vocabSize()) + "); one prompt per request",
                           "prompt");
          p.prompt.push_back((int32_t)*id);
        }
      }
    } else {
      return invalid("prompt must be a string, [string], [token ids] or [[token ids]]",
                     "prompt");
    }
  }
  if (p.prompt.empty())
    return invalid("the prompt has no tokens", chat ? "messages" : "prompt");

  if (context > 0 && (int64_t)p.prompt.size() >= context)
    return invalid(llvm::formatv("This model's maximum context length is {0} tokens, however "
                                 "your prompt has {1} tokens",
                                 context, p.prompt.size()),
                   chat ? "messages" : "prompt", "context_length_exceeded");

  GenerationOptions &g = p.options;
  // OpenAI deprecated max_tokens for max_completion_tokens, which wins when
  // both are given (as vLLM does).
  const json::Value *maxTokens = o->get("max_completion_tokens");
  if (maxTokens && maxTokens->kind() != json::Value::Null)
    p.maxTokensKey = "max_completion_tokens";
  else
    maxTokens = o->get("max_tokens");
  const std::string &maxKey = p.maxTokensKey;
  if (maxTokens && maxTokens->kind() != json::Value::Null) {
    // 0 generates nothing and, with no echo, answers nothing (vLLM refuses it too).
    auto n = maxTokens->getAsInteger();
    if (!n || *n < 1 || *n > kMaxConfigSize)
      return invalid(llvm::formatv("{0} must be an integer in [1, {1}]", maxKey, kMaxConfigSize),
                     maxKey);
    if (context > 0 && (int64_t)p.prompt.size() + *n > context)
      return invalid(llvm::formatv("This model's maximum context length is {0} tokens, however "
                                   "you requested {1} tokens ({2} in the prompt, {3} for the "
                                   "completion)",
                                   context, p.prompt.size() + *n, p.prompt.size(), *n),
                     maxKey, "context_length_exceeded");
    g.maxTokens = *n;
  } else {
    // OpenAI: 16 for completions; chat runs to a stop or the context, or
    // to generation_config.json's max_new_tokens (vLLM's reading). A
    // default the client never asked for fits the cache (--kv-blocks): it
    // failed every chat request that left max_tokens out.
    int64_t room = scheduler.longestRequest() - (int64_t)p.prompt.size();
    int64_t chatDefault = context > 0 ? context - (int64_t)p.prompt.size() : 256;
    if (model.samplingDefaults() && model.samplingDefaults().get("max_new_tokens"))
      chatDefault = std::min(chatDefault, defaults.maxTokens);
    g.maxTokens = std::clamp<int64_t>(chat ? chatDefault : 16, 0, std::max<int64_t>(room, 0));
  }
  auto number = [&](llvm::StringRef key, double lo, double hi, double fallback,
                    double &out) -> std::optional<ApiError> {
    const json::Value *v = o->get(key);
    out = fallback;
    if (!v || v->kind() == json::Value::Null)
      return std::nullopt;
    auto x = v->getAsNumber();
    if (!x || !(*x >= lo && *x <= hi))
      return invalid(key.str() + " must be a number in [" + shortNumber(lo) + ", " +
                         shortNumber(hi) + "]",
                     key.str());
    out = *x;
    return std::nullopt;
  };
  double topK = 0, n = 1, minTokens = 0;
  if (auto e = number("temperature", 0, 2, defaults.temperature, g.temperature))
    return *e;
  if (auto e = number("top_p", 1e-9, 1, defaults.topP, g.topP))
    return *e;
  // vLLM's top_k: -1 (its old default) or 0 = all.
  if (auto e = number("top_k", -1, 1e9, (double)defaults.topK, topK))
    return *e;
  if (topK != std::floor(topK))
    return invalid("top_k must be an integer", "top_k");
  if (auto e = number("min_p", 0, 1, defaults.minP, g.minP))
    return *e;
  if (auto e = number("repetition_penalty", 1e-3, 100, defaults.repetitionPenalty,
                      g.repetitionPenalty))
    return *e;
  if (auto e = number("n", 1, 1, 1, n))
    return invalid("only n = 1 is supported", "n");
  g.topK = std::max<int64_t>((int64_t)topK, 0);
  // OpenAI's seed is optional, any int64: without one, each request samples
  // afresh (a fixed default made every unseeded request return the same text).
  g.seed = std::random_device{}();
  if (const json::Value *v = o->get("seed"); v && v->kind() != json::Value::Null) {
    std::optional<int64_t> s = v->getAsInteger();
    if (!s)
      return invalid("seed must be an integer in [-2^63, 2^63)", "seed");
    g.seed = (uint64_t)*s;
  }
  // vLLM's extensions, which its clients and benchmarks send (ignoring
  // them answered other lengths and text than asked, unsaid).
  if (auto e = number("min_tokens", 0, (double)g.maxTokens, 0, minTokens))
    return invalid(llvm::formatv("min_tokens must be an integer in [0, {0}], the request's {1}",
                                 g.maxTokens,
                                 maxTokens && maxTokens->kind() != json::Value::Null
                                     ? maxKey
                                     : "max_tokens default"),
                   "min_tokens");
  if (minTokens != std::floor(minTokens))
    return invalid("min_tokens must be an integer", "min_tokens");
  g.minTokens = (int64_t)minTokens;
  for (auto [key, flag] : {std::pair<const char *, bool *>{"ignore_eos", &g.ignoreStopTokens},
                           {"include_stop_str_in_output", &g.includeStopString},
                           {"skip_special_tokens", &g.skipSpecialTokens}})
    if (const json::Value *v = o->get(key); v && v->kind() != json::Value::Null) {
      if (!v->getAsBoolean())
        return invalid(std::string(key) + " must be a boolean", key);
      *flag = *v->getAsBoolean();
    }
  if (const json::Value *v = o->get("stop_token_ids"); v && v->kind() != json::Value::Null) {
    const json::Array *ids = v->getAsArray();
    if (!ids)
      return invalid("stop_token_ids must be an array of token ids", "stop_token_ids");
    for (const json::Value &id : *ids) {
      std::optional<int64_t> i = id.getAsInteger();
      if (!i || *i < 0 || *i >= model.vocabSize())
        return invalid("stop_token_ids: token ids must be integers in [0, " +
                           std::to_string(model.vocabSize()) + ")",
                       "stop_token_ids");
      g.stopTokenIds.push_back((int32_t)*i);
    }
    // Checked for every token drawn: at most the vocabulary, however long the list.
    llvm::sort(g.stopTokenIds);
    g.stopTokenIds.erase(std::unique(g.stopTokenIds.begin(), g.stopTokenIds.end()),
                         g.stopTokenIds.end());
  }
  if (const json::Value *stop = o->get("stop")) {
    if (auto s = stop->getAsString()) {
      g.stopStrings.push_back(s->str());
    } else if (const json::Array *a = stop->getAsArray()) {
      for (const json::Value &v : *a) {
        if (!v.getAsString())
          return invalid("stop must be a string or an array of strings", "stop");
        g.stopStrings.push_back(v.getAsString()->str());
      }
    } else if (stop->kind() != json::Value::Null) {
      return invalid("stop must be a string or an array of strings", "stop");
    }
  }
  // An empty stop string matches nowhere useful: a caller's mistake.
  if (llvm::is_contained(g.stopStrings, ""))
    return invalid("stop strings must not be empty", "stop");
  if (g.stopStrings.size() > kMaxStopStrings)
    return invalid(llvm::formatv("stop takes at most {0} strings, not {1}", kMaxStopStrings,
                                 g.stopStrings.size()),
                   "stop");
  for (auto [i, s] : llvm::enumerate(g.stopStrings))
    if (s.size() > kMaxStopBytes)
      return invalid(llvm::formatv("stop strings are at most {0} bytes; stop[{1}] has {2}",
                                   kMaxStopBytes, i, s.size()),
                     "stop");
  if (const json::Value *s = o->get("stream"); s && s->kind() != json::Value::Null) {
    if (!s->getAsBoolean())
      return invalid("stream must be a boolean", "stream");
    p.stream = *s->getAsBoolean();
  }
  if (const json::Value *s = o->get("stream_options"); s && s->kind() != json::Value::Null) {
    const json::Object *so = s->getAsObject();
    if (!so)
      return invalid("stream_options must be an object", "stream_options");
    if (!p.stream)
      return invalid("stream_options is only allowed when stream is true", "stream_options");
    if (const json::Value *u = so->get("include_usage"); u && u->kind() != json::Value::Null) {
      if (!u->getAsBoolean())
        return invalid("stream_options.include_usage must be a boolean", "stream_options");
      p.includeUsage = *u->getAsBoolean();
    }
  }
  return p;
}

json::Object Service::chunk(const std::string &id, bool chat, const std::string &piece,
                            const std::string &finish, bool first) const {
  json::Value reason = finish.empty() ? json::Value(nullptr) : json::Value(finish);
  json::Object choice{{"index", 0}, {"finish_reason", std::move(reason)}};
  if (chat) {
    json::Object delta;
    if (first)
      delta["role"] = "assistant";
    if (!piece.empty() || first)
      delta["content"] = validUtf8(piece);
    choice["delta"] = std::move(delta);
  } else {
    choice["text"] = validUtf8(piece);
    choice["logprobs"] = nullptr;
  }
  return json::Object{{"id", id},
                      {"object", chat ? "chat.completion.chunk" : "text_completion"},
                      {"created", (int64_t)std::time(nullptr)},
                      {"model", options.modelName},
                      {"choices", json::Array{std::move(choice)}}};
}

void Service::complete(llvm::StringRef body, httplib::Response &res, bool chat) {
  // While shutting down, each answer closes its connection: a client's
  // idle keep-alive one would hold the server until it timed out.
  if (draining) {
    res.set_header("Connection", "close");
    return sendError(res, shuttingDown("the server is shutting down"));
  }
  auto parsed = parse(body, chat);
  if (auto *e = std::get_if<ApiError>(&parsed))
    return sendError(res, *e);
  Parsed p = std::move(std::get<Parsed>(parsed));
  std::string id = llvm::formatv("{0}-{1}{2:x-8}", chat ? "chatcmpl" : "cmpl", idPrefix,
                                 (uint64_t)nextId++);
  auto pending = std::make_shared<Pending>();
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  Request request;
  request.cancelled = cancel;
  request.prompt = p.prompt;
  request.options = p.options;
  bool skipSpecial = p.options.skipSpecialTokens;
  request.onToken = [this, pending, skipSpecial](int32_t prev, int32_t next) {
    std::string piece = tok->pieceOf(prev, next, skipSpecial);
    std::lock_guard<std::mutex> lock(pending->mutex);
    pending->append(piece);
    pending->cv.notify_all();
  };
  request.onDone = [this, pending](const RequestResult &result) {
    --inFlight;
    std::lock_guard<std::mutex> lock(pending->mutex);
    pending->append(result.tail);
    // A character the output ends inside of is sent as it is (U+FFFD), as
    // the whole text has it.
    if (!pending->partial.empty())
      pending->pieces.push_back(std::exchange(pending->partial, {}));
    pending->result = result;
    pending->done = true;
    pending->cv.notify_all();
  };
  if (std::string why = scheduler.unfit(request); !why.empty())
    return sendError(res, invalid(why, p.maxTokensKey, "context_length_exceeded"));
  ++inFlight;
  scheduler.submit(std::move(request));

  if (!p.stream) {
    std::unique_lock<std::mutex> lock(pending->mutex);
    pending->cv.wait(lock, [&] { return pending->done; });
    const RequestResult &r = pending->result;
    noteTokens(r);
    if (draining)
      res.set_header("Connection", "close");
    if (r.finishReason == "error")
      return sendError(res, failed(r.error));
    if (r.finishReason == "aborted")
      return sendError(res, shuttingDown(r.error));
    json::Object choice{{"index", 0}, {"finish_reason", r.finishReason}};
    if (chat)
      choice["message"] =
          json::Object{{"role", "assistant"}, {"content", validUtf8(pending->text)}};
    else {
      choice["text"] = validUtf8(pending->text);
      choice["logprobs"] = nullptr;
    }
    json::Object body{{"id", id},
                      {"object", chat ? "chat.completion" : "text_completion"},
                      {"created", (int64_t)std::time(nullptr)},
                      {"model", options.modelName},
                      {"choices", json::Array{std::move(choice)}},
                      {"usage", usageOf(r)}};
    res.set_content(dump(std::move(body)), "application/json");
    return;
  }

  auto first = std::make_shared<bool>(true);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, pending, cancel, id, chat, first, usage = p.includeUsage](size_t,
                                                                       httplib::DataSink &sink) {
        // With include_usage every chunk has "usage": null but a last one,
        // whose choices are empty, before [DONE] (OpenAI's stream_options).
        auto send = [&](json::Value v) {
          if (usage && v.getAsObject() && !v.getAsObject()->get("error"))
            v.getAsObject()->try_emplace("usage", nullptr);
          std::string event = "data: " + dump(std::move(v)) + "\n\n";
          return sink.write(event.data(), event.size());
        };
        std::unique_lock<std::mutex> lock(pending->mutex);
        if (!pending->cv.wait_for(lock, kStreamProbe,
                                  [&] { return pending->done || !pending->pieces.empty(); })) {
          lock.unlock();
          std::string comment = ": waiting\n\n";
          if (sink.write(comment.data(), comment.size()))
            return true;
          cancel->store(true);
          return false;
        }
        std::deque<std::string> pieces;
        pieces.swap(pending->pieces);
        bool done = pending->done;
        RequestResult result = pending->result;
        lock.unlock();
        for (const std::string &piece : pieces) {
          if (!send(chunk(id, chat, piece, "", *first))) {
            cancel->store(true); // the client left: stop generating for it
            return false;
          }
          *first = false;
        }
        if (!done)
          return true;
        noteTokens(result);
        if (result.finishReason == "error" || result.finishReason == "aborted") {
          send(errorBody(result.finishReason == "aborted"
                             ? shuttingDown(result.error)
                             : failed(result.error)));
        } else {
          send(chunk(id, chat, "", result.finishReason, *first));
          if (usage) {
            json::Object last = chunk(id, chat, "", "", false);
            last["choices"] = json::Array{};
            last["usage"] = usageOf(result);
            send(std::move(last));
          }
        }
        std::string end = "data: [DONE]\n\n";
        sink.write(end.data(), end.size());
        sink.done();
        return true;
      },
      [cancel](bool success) {
        if (!success)
          cancel->store(true);
      });
}

std::string Service::metrics() {
  SchedulerStats s = scheduler.stats();
  std::string out;
  auto metric = [&](const char *name, const char *type, const char *help, double value) {
    out += llvm::formatv("# HELP attnedit_{0} {1}\n# TYPE attnedit_{0} {2}\nattnedit_{0} {3}\n",
                         name, help, type, shortNumber(value))
               .str();
  };
  metric("requests_total", "counter",
         "Requests admitted (refused ones count in request_errors_total).", s.requestsTotal);
  metric("requests_running", "gauge", "Requests in the decode batch.", s.requestsRunning);
  metric("requests_waiting", "gauge", "Requests waiting to join the batch.", s.requestsWaiting);
  metric("request_errors_total", "counter", "Requests refused with a 4xx answer.",
         (double)httpErrors.load());
  metric("prompt_tokens_total", "counter", "Prompt tokens prefilled.", s.promptTokensTotal);
  metric("generation_tokens_total", "counter", "Tokens generated.", s.generatedTokensTotal);
  metric("decode_steps_total", "counter", "Batched @decode calls.", s.decodeSteps);
  metric("prefill_seconds_total", "counter", "Seconds in @prefill.", s.prefillSeconds);
  metric("decode_seconds_total", "counter", "Seconds in @decode.", s.decodeSeconds);
  metric("prompt_tokens_per_second", "gauge", "Prompt tokens per prefill second.",
         s.prefillSeconds > 0 ? s.promptTokensTotal / s.prefillSeconds : 0);
  metric("generation_tokens_per_second", "gauge", "Generated tokens per decode second.",
         s.decodeSeconds > 0 ? s.generatedTokensTotal / s.decodeSeconds : 0);
  metric("kv_blocks_in_use", "gauge", "KV-cache blocks held by sequences.", s.kvBlocksInUse);
  metric("kv_bytes_in_use", "gauge", "Bytes of the KV-cache blocks in use.", s.kvBytesInUse);
  metric("kv_bytes_allocated", "gauge", "Bytes of the KV-cache pools.", s.kvBytesAllocated);
  metric("kv_bytes_peak", "gauge", "Most KV-cache bytes in use so far.", s.kvPeakBytes);
  return out;
}

void Service::install(httplib::Server &server) {
  server.Get("/health", [](const httplib::Request &, httplib::Response &res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  auto modelEntry = [this] {
    return json::Object{{"id", options.modelName},
                        {"object", "model"},
                        {"created", (int64_t)std::time(nullptr)},
                        {"owned_by", "attnedit"}};
  };
  server.Get("/v1/models", [modelEntry](const httplib::Request &, httplib::Response &res) {
    res.set_content(dump(json::Object{{"object", "list"}, {"data", json::Array{modelEntry()}}}),
                    "application/json");
  });
  // OpenAI's client's models.retrieve().
  server.Get("/v1/models/(.+)", [this, modelEntry](const httplib::Request &req,
                                                    httplib::Response &res) {
    if (req.matches[1] != options.modelName)
      return sendError(res, modelNotFound(req.matches[1].str(), options.modelName));
    res.set_content(dump(modelEntry()), "application/json");
  });
  server.Get("/metrics", [this](const httplib::Request &, httplib::Response &res) {
    res.set_content(metrics(), "text/plain; version=0.0.4");
  });
  // A body is read whole before it is parsed: cap it (a prompt of a
  // million tokens is a few MiB of text). httplib's own cap
  // (set_payload_max_length) covers a Content-Length but not a chunked
  // body, which it read whole however large (35 MB took 2.5 GB): the
  // handlers read the body themselves.
  server.set_payload_max_length(kMaxBodyBytes);
  auto post = [this](bool chat) {
    return [this, chat](const httplib::Request &req, httplib::Response &res,
                        const httplib::ContentReader &reader) {
      // httplib parses multipart bodies itself, calling handlers this
      // reader does not have.
      if (req.is_multipart_form_data())
        return sendError(res, {415, "the body must be JSON, not multipart/form-data",
                               "invalid_request_error", "", "unsupported_media_type"});
      // Without either, httplib reads the body until the client closes.
      if (!req.has_header("Content-Length") &&
          req.get_header_value("Transfer-Encoding") != "chunked") {
        res.set_header("Connection", "close");
        return sendError(res, {411,
                               "a POST needs a Content-Length header or Transfer-Encoding: "
                               "chunked",
                               "invalid_request_error", "", "length_required"});
      }
      if (!validContentLength(req)) {
        res.set_header("Connection", "close");
        return sendError(res, badContentLength());
      }
      std::string body;
      bool tooLarge = false;
      bool read = reader([&](const char *data, size_t size) {
        tooLarge = body.size() + size > kMaxBodyBytes;
        if (!tooLarge)
          body.append(data, size);
        return !tooLarge;
      });
      if (tooLarge || res.status == 413) {
        // The rest of the body is not read: the connection cannot serve
        // another request.
        res.set_header("Connection", "close");
        return sendError(res, bodyTooLarge());
      }
      if (!read)
        return sendError(res, invalid("could not read the request body"));
      complete(body, res, chat);
    };
  };
  server.Post("/v1/completions", post(/*chat=*/false));
  server.Post("/v1/chat/completions", post(/*chat=*/true));
  server.set_pre_routing_handler([](const httplib::Request &, httplib::Response &) {
    accessLog = {std::chrono::steady_clock::now(), ""};
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Operators see every request at debug level (SPDLOG_LEVEL=debug), and
  // the refused ones at info, with the reason the client was given.
  server.set_logger([](const httplib::Request &req, const httplib::Response &res) {
    std::string what = accessLog.tokens;
    if (res.status >= 400) {
      auto body = json::parse(res.body);
      const json::Object *o = body ? body->getAsObject() : nullptr;
      if (const json::Object *error = o ? o->getObject("error") : nullptr)
        what = error->getString("message").value_or("").str();
      if (!body)
        llvm::consumeError(body.takeError());
    }
    double seconds =
        accessLog.start
            ? std::chrono::duration<double>(std::chrono::steady_clock::now() - *accessLog.start)
                  .count()
            : 0;
    spdlog::log(res.status >= 500   ? spdlog::level::warn
                : res.status >= 400 ? spdlog::level::info
                                    : spdlog::level::debug,
                "{} {} {} in {:.3f} s{}{}", req.method, req.path, res.status, seconds,
                what.empty() ? "" : ": ", what);
    accessLog = {};
  });
  // Errors httplib answers itself (unknown routes, bodies and headers it
  // refuses) get OpenAI-style bodies too: a client reads
  // {"error": {...}} whatever went wrong.
  server.set_error_handler([this](const httplib::Request &req, httplib::Response &res) {
    // httplib calls this for every answer of status 400 or more, before
    // sending it: the count is current when the client reads it.
    if (res.status < 500)
      ++httpErrors;
    if (!res.body.empty())
      return;
    std::string allowed = allowedMethods(req.path);
    // httplib sets REMOTE_ADDR once the request line and headers are read.
    if (!req.has_header("REMOTE_ADDR"))
      sendError(res, {res.status,
                      llvm::formatv("could not read the request line and headers (a header "
                                    "line holds at most {0} bytes)",
                                    CPPHTTPLIB_HEADER_MAX_LENGTH),
                      "invalid_request_error", "", ""});
    else if ((res.status == 404 || res.status == 400) && !allowed.empty()) {
      res.set_header("Allow", allowed);
      sendError(res, {405, req.method + " is not allowed on " + req.path + "; use " + allowed,
                      "invalid_request_error", "", "method_not_allowed"});
    } else if (res.status == 404)
      sendError(res, {404, "no route " + req.method + " " + req.path, "invalid_request_error",
                      "", "not_found"});
    else if (!validContentLength(req))
      sendError(res, badContentLength());
    else if (res.status == 413)
      sendError(res, bodyTooLarge());
    else
      sendError(res, {res.status, llvm::formatv("the request failed with HTTP {0}", res.status),
                      res.status < 500 ? "invalid_request_error" : "server_error", "", ""});
  });
}

/// The signal handler only writes the signal's number to this pipe (write()
/// is async-signal-safe; logging, locks and httplib's stop() are not); a
/// thread of serve() reads it and shuts down. 0 wakes that thread when
/// serve() ends for another reason.
int signalPipe[2] = {-1, -1};
std::atomic<int> signalsSeen{0};

extern "C" void onSignal(int sig) {
  if (signalsSeen.fetch_add(1) > 0) {
    static const char message[] = "serve: a second signal: exiting at once\n";
    [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, message, sizeof message - 1);
    _exit(128 + sig);
  }
  unsigned char byte = sig;
  [[maybe_unused]] ssize_t written = ::write(signalPipe[1], &byte, 1);
}

} // namespace

llvm::Error attnedit::serve(Decoder &decoder, const ServerOptions &options) {
  // The port file names a port only while this server listens on it: one
  // left after it stopped sent a client polling it to a closed port.
  std::string portFile = options.portFile.empty() ? "" : followLinks(options.portFile);
  auto removePortFile = llvm::make_scope_exit([&] {
    if (!portFile.empty())
      llvm::sys::fs::remove(portFile);
  });
  auto tok = decoder.model().tokenizer();
  if (!tok)
    return tok.takeError();
  if (!*tok)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "serve: the model has no tokenizer (pass --tokenizer)");
  auto chatFormat = ChatFormat::forTokenizer(decoder.model().tokenizerPath());
  if (!chatFormat)
    return chatFormat.takeError();
  if (chatFormat->unrecognised())
    spdlog::warn("{}: the chat template is of none of the families attnedit writes (ChatML, "
                 "Llama 3, Llama 2, Zephyr; it runs no Jinja): chat completions get plain "
                 "\"role: content\" lines; send the prompt as the model expects it to "
                 "/v1/completions",
                 decoder.model().tokenizerPath().str());
  else
    spdlog::info("chat completions are written as {}", chatFormat->name().str());
  // As vLLM does (its --generation-config auto): the checkpoint's authors'
  // settings, not 1.0 and no cut, for the fields a request leaves out.
  if (decoder.model().samplingDefaults())
    spdlog::info("sampling fields a request leaves out take the model's defaults (its "
                 "generation_config.json's): {}",
                 describeSamplingDefaults(decoder.model()));
  Service service(decoder, *tok, std::move(*chatFormat), options);
  httplib::Server server;
  // cpp-httplib's default adds SO_REUSEPORT, with which a second server on
  // a busy port starts and the kernel splits the requests between the two.
  socket_t listener = INVALID_SOCKET;
  server.set_socket_options([&listener](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const void *>(&yes), sizeof yes);
    listener = sock;
  });
  int threads = options.threads;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  service.install(server);

  // httplib reports a host it cannot resolve as a failed bind, without why.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo *resolved = nullptr;
  if (int rc = ::getaddrinfo(options.host.c_str(), nullptr, &hints, &resolved))
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "serve: --host %s: %s",
                                   options.host.c_str(), ::gai_strerror(rc));
  ::freeaddrinfo(resolved);
  int port = options.port;
  errno = 0;
  if (port == 0)
    port = server.bind_to_any_port(options.host);
  else if (!server.bind_to_port(options.host, port))
    port = -1;
  if (port < 0)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "serve: cannot listen on %s:%d%s%s", options.host.c_str(),
                                   options.port, errno ? ": " : "",
                                   errno ? std::strerror(errno) : "");
  // cpp-httplib listens with a backlog of 5 (compiled into the library):
  // a burst of clients, as many as the batch serves, had their connections
  // reset. Listening again on the bound socket raises it (Linux).
  if (listener != INVALID_SOCKET && ::listen(listener, SOMAXCONN) != 0)
    spdlog::warn("serve: cannot raise the listen backlog: {}", std::strerror(errno));
  // After binding, so a busy port fails at once, not after the compile; and
  // before the port file and the log line, which mean requests are served
  // at full speed from the first one.
  auto warm = decoder.warmUp();
  if (!warm)
    return warm.takeError();
  spdlog::info("prefill and decode ran once in {:.2f} s", *warm);
  if (!portFile.empty())
    if (llvm::Error e = writeFileAtomically(portFile, llvm::formatv("{0}\n", port).str()))
      return e;
  spdlog::info("serving '{}' on http://{}:{} (batch up to {})", options.modelName,
               options.host, port, options.maxBatch);

  std::atomic<bool> stop{false};
  std::thread worker([&] { service.runScheduler(stop); });
  if (::pipe(signalPipe) != 0)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "serve: pipe: %s",
                                   std::strerror(errno));
  std::atomic<bool> stopping{false};
  std::thread drainer([&] {
    unsigned char sig = 0;
    while (::read(signalPipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    if (sig == 0)
      return;
    stopping = true;
    service.drain();
    // Shutting the listening socket down ends httplib's accept loop, which
    // then waits for its handlers: unlike Server::stop(), which also ends
    // every response being streamed in the middle of its body.
    ::shutdown(listener, SHUT_RDWR);
    int64_t busy = service.busy();
    spdlog::info("{}: no longer accepting connections; {} request(s) get up to {} s to finish "
                 "(a second signal exits at once)",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", busy, options.shutdownGrace);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.shutdownGrace);
    while (!stop && service.busy() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    busy = service.busy();
    if (busy > 0)
      spdlog::warn("ending {} request(s) still running after {} s (HTTP 503, or an error event "
                   "in a stream)",
                   busy, options.shutdownGrace);
    else
      spdlog::info("every request finished");
    stop = true;
    service.wake();
  });
  signalsSeen = 0;
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  bool ok = server.listen_after_bind() || stopping;
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  stop = true;
  service.wake();
  worker.join();
  unsigned char wake = 0;
  if (::write(signalPipe[1], &wake, 1) < 0)
    spdlog::warn("serve: cannot wake the draining thread: {}", std::strerror(errno));
  drainer.join();
  ::close(signalPipe[0]);
  ::close(signalPipe[1]);
  spdlog::info("server stopped");
  if (!ok)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "serve: the listener failed");
  return llvm::Error::success();
}
