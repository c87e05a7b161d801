//===- DecoderTest.cpp - cached decoding equals recomputation ---------------===//
//
// For GQA (Llama, Qwen3), MLA (absorbed decode) and GateSWA (windows much
// shorter than the sequence, sinks, gates) on tiny random models and on
// stories260K: the logits of @prefill / @decode over the paged KV cache equal
// those of @forward over the whole sequence at every step (1e-5 relative),
// greedy tokens are the same, batched decoding of sequences of different
// lengths gives what each gives alone, and the cache's memory is exact
// (sliding-window layers stay flat, blocks come back when sequences close).
// Student parameters get random values first, so gates and sinks matter.
// Every test runs the decoder on both backends (reference interpreter and
// compiled CPU code); the recomputation it is checked against always runs on
// the reference.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/Evaluator.h"
#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Runtime/Inference/Decoder.h"
#include "attnedit/Runtime/Inference/Generation.h"
#include "attnedit/Runtime/Inference/Scheduler.h"
#include "attnedit/Runtime/Training/Distiller.h"
#include "attnedit/Frontend/WeightFile.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <numeric>
#include <random>

using namespace mlir;
using namespace mlir::attnedit;
namespace fs = llvm::sys::fs;

namespace {

constexpr double kTolerance = 1e-5;

std::string join(llvm::StringRef dir, llvm::StringRef name) {
  llvm::SmallString<256> p(dir);
  llvm::sys::path::append(p, name);
  return p.str().str();
}

/// max |a - b| / max |b| over one row of `n` logits.
double relativeDiff(const float *a, const float *b, int64_t n) {
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i]))
      return INFINITY;
    diff = std::max(diff, (double)std::fabs(a[i] - b[i]));
    ref = std::max(ref, (double)std::fabs(b[i]));
  }
  return ref == 0 ? INFINITY : diff / ref;
}

int32_t argmax(const float *row, int64_t n) { return std::max_element(row, row + n) - row; }

struct TinySpec {
  std::string arch = "LlamaForCausalLM";
  int64_t hidden = 32, ffn = 48, layers = 3, heads = 4, kvHeads = 2, headDim = 8, vocab = 48;
  uint32_t seed = 1;
};

/// A tiny random HF model directory.
std::string writeTeacher(const std::string &root, const TinySpec &s) {
  std::mt19937 gen(s.seed);
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> w;
  auto fill = [&](const std::string &name, std::vector<int64_t> shape, float mean, float sd) {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    std::normal_distribution<float> dist(mean, sd);
    std::vector<float> v(n);
    for (float &x : v)
      x = dist(gen);
    w[name] = {shape, v};
  };
  int64_t h = s.hidden, d = s.headDim;
  fill("model.embed_tokens.weight", {s.vocab, h}, 0, 0.5f);
  fill("model.norm.weight", {h}, 1, 0.1f);
  fill("lm_head.weight", {s.vocab, h}, 0, 0.25f);
  for (int64_t l = 0; l < s.layers; ++l) {
    std::string p = llvm::formatv("model.layers.{0}.", l).str();
    fill(p + "input_layernorm.weight", {h}, 1, 0.1f);
    fill(p + "post_attention_layernorm.weight", {h}, 1, 0.1f);
    fill(p + "self_attn.q_proj.weight", {s.heads * d, h}, 0, 0.25f);
    fill(p + "self_attn.k_proj.weight", {s.kvHeads * d, h}, 0, 0.25f);
    fill(p + "self_attn.v_proj.weight", {s.kvHeads * d, h}, 0, 0.25f);
    fill(p + "self_attn.o_proj.weight", {h, s.heads * d}, 0, 0.25f);
    if (s.arch == "Qwen3ForCausalLM") {
      fill(p + "self_attn.q_norm.weight", {d}, 1, 0.1f);
      fill(p + "self_attn.k_norm.weight", {d}, 1, 0.1f);
    }
    fill(p + "mlp.gate_proj.weight", {s.ffn, h}, 0, 0.25f);
    fill(p + "mlp.up_proj.weight", {s.ffn, h}, 0, 0.25f);
    fill(p + "mlp.down_proj.weight", {h, s.ffn}, 0, 0.25f);
  }
  std::string dir = join(root, "teacher-" + std::to_string(s.seed));
  fs::create_directories(dir);
  std::vector<TensorToWrite> list;
  for (auto &[name, t] : w)
    list.push_back({name, DType::F32, t.first,
                    llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(t.second.data()),
                                            t.second.size() * 4)});
  EXPECT_FALSE((bool)writeSafetensors(join(dir, "model.safetensors"), list));
  llvm::json::Object config{{"architectures", llvm::json::Array{s.arch}},
                            {"hidden_size", h},
                            {"intermediate_size", s.ffn},
                            {"num_hidden_layers", s.layers},
                            {"num_attention_heads", s.heads},
                            {"num_key_value_heads", s.kvHeads},
                            {"head_dim", d},
                            {"vocab_size", s.vocab},
                            {"rms_norm_eps", 1e-5},
                            {"rope_theta", 10000.0},
                            {"max_position_embeddings", 128},
                            {"tie_word_embeddings", false},
                            {"bos_token_id", 1},
                            {"eos_token_id", 2}};
  std::ofstream(join(dir, "config.json"))
      << llvm::formatv("{0}", llvm::json::Value(std::move(config))).str();
  return dir;
}

class DecoderTest : public ::testing::TestWithParam<std::string> {
protected:
  void SetUp() override {
    llvm::SmallString<128> dir;
    ASSERT_FALSE(fs::createUniqueDirectory("attnedit-decode", dir));
    root = dir.str().str();
  }
  void TearDown() override {
    if (!HasFailure())
      fs::remove_directories(root);
  }

  /// `teacher` edited by `edit` (empty: unedited), loaded, with every
  /// student parameter given random values (trained gates and sinks).
  std::unique_ptr<Model> load(const std::string &teacher, const std::string &edit) {
    auto model = loadOnReference(teacher, edit);
    if (model && GetParam() == "cpu")
      model->setExecutor(createCompiledExecutor(/*cacheDir=*/""));
    return model;
  }

  std::unique_ptr<Model> loadOnReference(const std::string &teacher, const std::string &edit) {
    auto model = Model::load(teacher);
    if (!model) {
      ADD_FAILURE() << llvm::toString(model.takeError());
      return nullptr;
    }
    if (edit.empty())
      return std::move(*model);
    std::string name = "student" + std::to_string(students++);
    auto raised = raisedCopy((*model)->module());
    if (!raised) {
      ADD_FAILURE() << llvm::toString(raised.takeError());
      return nullptr;
    }
    auto edited = editedCopy(**raised, edit, join(root, name + ".safetensors"));
    if (!edited) {
      ADD_FAILURE() << llvm::toString(edited.takeError());
      return nullptr;
    }
    std::string path = join(root, name + ".mlir");
    EXPECT_FALSE((bool)writeModule(**edited, path));
    auto student = Model::load(path);
    if (!student) {
      ADD_FAILURE() << llvm::toString(student.takeError());
      return nullptr;
    }
    std::mt19937 gen(7);
    ParameterStore &store = (*student)->parameterStore();
    (*student)->module().walk([&](ParamOp p) {
      if (!p.getScope())
        return;
      auto shape = p.getType().getShape();
      auto old = store.get(p.getName(), shape, *p.getScope());
      ASSERT_TRUE((bool)old) << llvm::toString(old.takeError());
      Tensor t = Tensor::zeros(shape);
      bool sinks = p.getName().ends_with("sinks");
      std::normal_distribution<float> noise(0, sinks ? 1.0f : 0.1f);
      for (int64_t i = 0; i < t.numel(); ++i)
        t.mutableData()[i] = (sinks ? 0 : old->data()[i]) + noise(gen);
      store.set(p.getName(), t, *p.getScope());
    });
    return std::move(*student);
  }

  /// @forward of `tokens` on the reference evaluator, whatever runs the model.
  Tensor referenceForward(Model &model, llvm::ArrayRef<int32_t> tokens) {
    std::vector<int32_t> positions(tokens.size());
    std::iota(positions.begin(), positions.end(), 0);
    auto forward = model.module().lookupSymbol<func::FuncOp>("forward");
    auto results = reference->run(forward, {Tensor::ints(tokens.vec()), Tensor::ints(positions)},
                                  model.parameterStore());
    if (!results) {
      ADD_FAILURE() << llvm::toString(results.takeError());
      return Tensor::zeros({(int64_t)tokens.size(), model.vocabSize()});
    }
    return results->front();
  }

  /// Greedy decoding of `steps` tokens after `prompt`, each step's logits
  /// compared with @forward over the whole sequence; returns the tokens.
  std::vector<int32_t> checkAgainstForward(Model &model, std::vector<int32_t> prompt,
                                           int64_t steps, DecoderOptions options) {
    auto decoder = Decoder::create(model, options);
    if (!decoder) {
      ADD_FAILURE() << llvm::toString(decoder.takeError());
      return {};
    }
    KvCache &cache = (*decoder)->cache();
    int64_t seq = cache.open();
    std::vector<int32_t> tokens = prompt;
    auto logits = (*decoder)->prefill(seq, tokens);
    if (!logits) {
      ADD_FAILURE() << llvm::toString(logits.takeError());
      return {};
    }
    int64_t vocab = model.vocabSize();
    Tensor full = referenceForward(model, tokens);
    for (size_t i = 0; i < tokens.size(); ++i)
      EXPECT_LT(relativeDiff(logits->data() + i * vocab, full.data() + i * vocab, vocab),
                kTolerance)
          << "prompt row " << i;
    std::vector<int32_t> generated;
    for (int64_t step = 0; step < steps; ++step) {
      int32_t next = argmax(logits->data() + (logits->dim(0) - 1) * vocab, vocab);
      int32_t expected = argmax(full.data() + (full.dim(0) - 1) * vocab, vocab);
      EXPECT_EQ(next, expected) << "greedy token at step " << step;
      tokens.push_back(next);
      generated.push_back(next);
      logits = (*decoder)->decode({seq}, {next});
      if (!logits) {
        ADD_FAILURE() << llvm::toString(logits.takeError());
        return {};
      }
      full = referenceForward(model, tokens);
      double rel = relativeDiff(logits->data(), full.data() + (tokens.size() - 1) * vocab, vocab);
      EXPECT_LT(rel, kTolerance) << "decode step " << step << " (position "
                                  << tokens.size() - 1 << ")";
      if (HasFailure())
        return generated;
    }
    EXPECT_EQ(cache.length(seq), (int64_t)tokens.size());
    cache.close(seq);
    EXPECT_EQ(cache.blocksInUse(), 0);
    EXPECT_EQ(cache.bytesInUse(), 0);
    return generated;
  }

  /// Sequences of different lengths decoded together give, row for row,
  /// the logits each gives alone.
  void checkBatched(Model &model, DecoderOptions options, int64_t steps) {
    std::vector<std::vector<int32_t>> prompts = {
        {1, 5, 9}, {1, 7, 3, 11, 20, 4, 8, 30, 6, 12, 17}, {1, 40, 2, 33, 14, 9, 25}};
    int64_t vocab = model.vocabSize();
    std::vector<std::vector<std::vector<float>>> alone(prompts.size());
    std::vector<std::vector<int32_t>> streams(prompts.size());
    for (size_t s = 0; s < prompts.size(); ++s) {
      auto decoder = Decoder::create(model, options);
      ASSERT_TRUE((bool)decoder) << llvm::toString(decoder.takeError());
      int64_t seq = (*decoder)->cache().open();
      auto logits = (*decoder)->prefill(seq, prompts[s]);
      ASSERT_TRUE((bool)logits) << llvm::toString(logits.takeError());
      for (int64_t step = 0; step < steps; ++step) {
        int32_t next = argmax(logits->data() + (logits->dim(0) - 1) * vocab, vocab);
        streams[s].push_back(next);
        logits = (*decoder)->decode({seq}, {next});
        ASSERT_TRUE((bool)logits) << llvm::toString(logits.takeError());
        alone[s].emplace_back(logits->data(), logits->data() + vocab);
      }
    }
    auto decoder = Decoder::create(model, options);
    ASSERT_TRUE((bool)decoder) << llvm::toString(decoder.takeError());
    KvCache &cache = (*decoder)->cache();
    std::vector<int64_t> seqs;
    for (const auto &p : prompts) {
      seqs.push_back(cache.open());
      ASSERT_TRUE((bool)(*decoder)->prefill(seqs.back(), p));
    }
    for (int64_t step = 0; step < steps; ++step) {
      std::vector<int32_t> next;
      for (size_t s = 0; s < prompts.size(); ++s)
        next.push_back(streams[s][step]);
      auto logits = (*decoder)->decode(seqs, next);
      ASSERT_TRUE((bool)logits) << llvm::toString(logits.takeError());
      for (size_t s = 0; s < prompts.size(); ++s)
        EXPECT_LT(relativeDiff(logits->data() + s * vocab, alone[s][step].data(), vocab),
                  kTolerance)
            << "sequence " << s << " at step " << step;
    }
    for (int64_t seq : seqs)
      cache.close(seq);
    EXPECT_EQ(cache.blocksInUse(), 0);
  }

  std::string root;
  int students = 0;
  std::unique_ptr<Executor> reference = createReferenceExecutor();
};

const DecoderOptions kSmallBlocks{/*blockSize=*/4, /*maxChunk=*/8, /*maxBlocks=*/0};
const std::vector<int32_t> kPrompt = {1, 5, 9, 23, 42, 7, 17, 3, 30, 11, 4, 19, 8};

// Tests GQA (4 query heads, 2 KV heads): 13-token prompt in chunks of 8,
// blocks of 4, 30 decode steps; batched decoding.
TEST_P(DecoderTest, GqaMatchesForward) {
  auto model = load(writeTeacher(root, {}), "");
  ASSERT_TRUE(model);
  checkAgainstForward(*model, kPrompt, 30, kSmallBlocks);
  checkBatched(*model, kSmallBlocks, 12);
}

// Tests Qwen3's per-head q/k norms and a head_dim unrelated to hidden/heads.
TEST_P(DecoderTest, Qwen3MatchesForward) {
  TinySpec spec;
  spec.arch = "Qwen3ForCausalLM";
  spec.headDim = 16;
  spec.seed = 3;
  auto model = load(writeTeacher(root, spec), "");
  ASSERT_TRUE(model);
  checkAgainstForward(*model, kPrompt, 20, kSmallBlocks);
}

// Tests MLA: the cache holds the latent and the RoPE key only, decode runs
// absorbed (the recomputed @forward runs the expanded form), and the bytes in
// use are the (kv_lora_rank + rope) bound per token, rounded up to blocks.
TEST_P(DecoderTest, MlaMatchesForwardAndCachesTheLatent) {
  auto model = load(writeTeacher(root, {}),
                    "target=mla kv-lora-rank=8 qk-rope-head-dim=4 init=svd");
  ASSERT_TRUE(model);
  checkAgainstForward(*model, kPrompt, 30, kSmallBlocks);
  checkBatched(*model, kSmallBlocks, 12);

  auto decoder = Decoder::create(*model, {16, 64, 0});
  ASSERT_TRUE((bool)decoder) << llvm::toString(decoder.takeError());
  KvCache &cache = (*decoder)->cache();
  ASSERT_EQ(cache.layout().pools.size(), 3u);
  for (const auto &pool : cache.layout().pools) {
    EXPECT_EQ(pool.part, "latent");
    EXPECT_EQ(pool.width, 8 + 4);
  }
  int64_t seq = cache.open();
  std::vector<int32_t> tokens(40, 5);
  ASSERT_TRUE((bool)(*decoder)->prefill(seq, tokens));
  EXPECT_EQ(cache.bytesInUse(), 3 /*blocks*/ * 16 * 3 /*layers*/ * 12 * 4);
}

// Tests MLA with a low-rank query (q_a_proj, q_a_layernorm, q_b_proj) and
// v_head_dim unlike the nope dims.
TEST_P(DecoderTest, MlaWithQueryLoraMatchesForward) {
  auto model = load(writeTeacher(root, {}),
                    "target=mla kv-lora-rank=8 q-lora-rank=12 qk-rope-head-dim=4 "
                    "qk-nope-head-dim=6 v-head-dim=5 init=random");
  ASSERT_TRUE(model);
  checkAgainstForward(*model, kPrompt, 20, kSmallBlocks);
}

// Tests GateSWA with window 4 in layers 0 and 1 and a full layer 2, sinks
// and head-wise gates, decoding 40 tokens (10 windows) past the prompt; the
// window layers' rings stay at ceil((4 + 8 - 2) / 4) + 1 = 4 blocks.
TEST_P(DecoderTest, GateSwaMatchesForwardPastTheWindow) {
  auto model = load(writeTeacher(root, {}),
                    "target=gate-swa window=4 full-layers=2 sinks=true gate=headwise");
  ASSERT_TRUE(model);
  checkAgainstForward(*model, kPrompt, 40, kSmallBlocks);
  checkBatched(*model, kSmallBlocks, 12);
}

// Tests an all-window GateSWA model with element-wise gates: memory flat as
// the context grows (the ring is reused), and exact.
TEST_P(DecoderTest, SlidingWindowMemoryIsFlat) {
  auto model = load(writeTeacher(root, {}), "target=gate-swa window=4 gate=elementwise");
  ASSERT_TRUE(model);
  checkAgainstForward(*model, {1, 2, 3}, 30, kSmallBlocks);
  auto decoder = Decoder::create(*model, kSmallBlocks);
  ASSERT_TRUE((bool)decoder) << llvm::toString(decoder.takeError());
  KvCache &cache = (*decoder)->cache();
  ASSERT_EQ(cache.layout().groups.size(), 1u);
  EXPECT_EQ(cache.layout().groups[0].ringBlocks, 4);
  int64_t seq = cache.open();
  ASSERT_TRUE((bool)(*decoder)->prefill(seq, {1, 2, 3, 4, 5, 6, 7, 8}));
  int64_t bytes = 0;
  for (int step = 0; step < 60; ++step) {
    ASSERT_TRUE((bool)(*decoder)->decode({seq}, {(int32_t)(step % 40 + 3)}));
    if (step == 10)
      bytes = cache.bytesInUse();
  }
  EXPECT_EQ(cache.bytesInUse(), bytes);
  EXPECT_EQ(cache.blocksInUse(), 4);
  EXPECT_EQ(bytes, 4 * 4 * 3 /*layers*/ * 2 * 16 * 4);
}

// Tests the pool itself: blocks are shared by sequences, freed ones are
// reused, a cap is an error naming the cache, chunks too long for a ring
// are refused.
TEST(KvCacheTest, BlocksAreSharedFreedAndCapped) {
  CacheLayout layout;
  layout.blockSize = 4;
  layout.maxChunk = 4;
  layout.groups = {{0, 0}, {4, 3}};
  layout.pools = {{0, "k", 8, 0}, {0, "v", 8, 0}, {1, "k", 8, 1}};
  KvCache cache(layout, /*maxBlocks=*/16);
  int64_t a = cache.open(), b = cache.open();
  ASSERT_FALSE((bool)cache.extend(a, 4));
  ASSERT_FALSE((bool)cache.extend(b, 4));
  ASSERT_FALSE((bool)cache.extend(a, 6));
  EXPECT_EQ(cache.blocksInUse(0), 3);
  EXPECT_EQ(cache.blocksInUse(1), 3);
  EXPECT_EQ(cache.bytesInUse(), 3 * 4 * 16 * 4 + 3 * 4 * 8 * 4);
  std::vector<Tensor> tables = cache.tables({a, b});
  ASSERT_EQ(tables.size(), 2u);
  EXPECT_EQ(tables[0].shape(), (llvm::ArrayRef<int64_t>{2, 2}));
  EXPECT_EQ(tables[0].intValues()[3], -1); // b has one block
  EXPECT_EQ(tables[1].shape(), (llvm::ArrayRef<int64_t>{2, 3}));
  cache.close(b);
  EXPECT_EQ(cache.blocksInUse(0), 2);
  llvm::Error tooLong = cache.extend(a, 20);
  ASSERT_TRUE((bool)tooLong);
  EXPECT_NE(llvm::toString(std::move(tooLong)).find("exceeds the decode functions' max_chunk"),
            std::string::npos);
  int64_t c = cache.open();
  llvm::Error full = llvm::Error::success();
  for (int64_t n = 4; n <= 80 && !full; n += 4)
    full = cache.extend(c, n);
  ASSERT_TRUE((bool)full);
  EXPECT_NE(llvm::toString(std::move(full)).find("the KV cache is full: all 16 blocks"),
            std::string::npos);
  EXPECT_LE(cache.peakBytesInUse(), cache.bytesAllocated());
}

// Tests that generate() with the cache gives the tokens of recomputation,
// with sampling, top-k/top-p and a repetition penalty.
TEST_P(DecoderTest, GenerateWithAndWithoutCacheAgree) {
  auto model = load(writeTeacher(root, {}), "target=gate-swa window=4 full-layers=1");
  ASSERT_TRUE(model);
  GenerationOptions options;
  options.maxTokens = 24;
  options.temperature = 0.8;
  options.topK = 20;
  options.topP = 0.9;
  options.repetitionPenalty = 1.3;
  options.seed = 11;
  auto cached = generate(*model, {1, 5, 9}, options);
  ASSERT_TRUE((bool)cached) << llvm::toString(cached.takeError());
  options.useCache = false;
  auto recomputed = generate(*model, {1, 5, 9}, options);
  ASSERT_TRUE((bool)recomputed) << llvm::toString(recomputed.takeError());
  EXPECT_EQ(*cached, *recomputed);
}

// Tests continuous batching: requests that join a running batch at later
// steps, with different prompts (prefilled in chunks), lengths and sampling,
// get the tokens generate() gives each alone; finished ones leave and free
// their blocks; a cancelled one leaves at the next step.
TEST_P(DecoderTest, ContinuousBatchingGivesWhatEachGetsAlone) {
  auto model = load(writeTeacher(root, {}),
                    "target=gate-swa window=4 full-layers=2 sinks=true");
  ASSERT_TRUE(model);
  struct Case {
    std::vector<int32_t> prompt;
    int64_t maxTokens;
    double temperature;
    int joinAtStep;
  };
  std::vector<Case> cases = {{{1, 5, 9}, 20, 0, 0},
                             {{1, 7, 3, 11, 20, 4, 8, 30, 6, 12, 17}, 9, 0, 0},
                             {{1, 40}, 15, 0.9, 3},
                             {{1, 33, 14, 9, 25, 2, 6}, 12, 0, 5},
                             {{1, 13, 21}, 6, 1.2, 11}};
  std::vector<std::vector<int32_t>> alone;
  for (const Case &c : cases) {
    GenerationOptions options;
    options.maxTokens = c.maxTokens;
    options.temperature = c.temperature;
    options.seed = 5;
    options.ignoreStopTokens = true;
    auto tokens = generate(*model, c.prompt, options);
    ASSERT_TRUE((bool)tokens) << llvm::toString(tokens.takeError());
    alone.push_back(*tokens);
  }
  auto decoder = Decoder::create(*model, kSmallBlocks);
  ASSERT_TRUE((bool)decoder) << llvm::toString(decoder.takeError());
  // A budget of 5 prompt tokens per step splits the longer prompts over
  // several steps (chunked prefill) while others decode.
  Scheduler scheduler(**decoder, nullptr, /*maxBatch=*/3, /*prefillBudget=*/5);
  std::vector<std::vector<int32_t>> streamed(cases.size());
  std::vector<RequestResult> results(cases.size());
  size_t submitted = 0;
  int maxRunning = 0;
  for (int step = 0; step < 200; ++step) {
    while (submitted < cases.size() && cases[submitted].joinAtStep <= step) {
      Request r;
      r.prompt = cases[submitted].prompt;
      r.options.maxTokens = cases[submitted].maxTokens;
      r.options.temperature = cases[submitted].temperature;
      r.options.seed = 5;
      r.options.ignoreStopTokens = true;
      r.onToken = [&, i = submitted](int32_t, int32_t next) { streamed[i].push_back(next); };
      r.onDone = [&, i = submitted](const RequestResult &done) { results[i] = done; };
      scheduler.submit(std::move(r));
      ++submitted;
    }
    bool worked = scheduler.step();
    maxRunning = std::max<int>(maxRunning, scheduler.stats().requestsRunning);
    if (!worked && submitted == cases.size())
      break;
  }
  EXPECT_EQ(maxRunning, 3); // the batch was full and requests waited

  auto cancel = std::make_shared<std::atomic<bool>>(false);
  RequestResult cancelled;
  Request r;
  r.prompt = {1, 5, 9};
  r.options.maxTokens = 50;
  r.options.temperature = 0;
  r.options.ignoreStopTokens = true;
  r.cancelled = cancel;
  r.onDone = [&](const RequestResult &done) { cancelled = done; };
  scheduler.submit(std::move(r));
  for (int step = 0; step < 4; ++step)
    scheduler.step();
  cancel->store(true);
  scheduler.step();
  EXPECT_EQ(cancelled.finishReason, "cancelled");
  // Step 1 prefills (first token) and decodes (second); 3 more decodes.
  EXPECT_EQ(cancelled.tokens.size(), 5u);
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(results[i].finishReason, "length") << results[i].error;
    EXPECT_EQ(results[i].tokens, alone[i]) << "request " << i;
    EXPECT_EQ(streamed[i], alone[i]) << "request " << i;
  }
  SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.requestsTotal, 6);
  EXPECT_EQ(stats.kvBlocksInUse, 0);
  EXPECT_EQ((*decoder)->cache().openSequences(), 0u);
}

// Tests the warm-up `serve` and `bench-serve` run before their first
// request: it runs the model through the cache (whose pools it grew), it
// leaves no sequence, block or peak behind, a sequence decoded
// after it gets the logits a fresh decoder gives, and it refuses a cache
// that holds sequences.
TEST_P(DecoderTest, WarmUpLeavesTheCacheAsFound) {
  auto model = load(writeTeacher(root, {}), "");
  ASSERT_TRUE(model);
  auto decodeSteps = [&](Decoder &decoder) {
    std::vector<float> all;
    int64_t seq = decoder.cache().open();
    auto logits = decoder.prefill(seq, kPrompt);
    for (int32_t token : {3, 14, 15}) {
      EXPECT_TRUE((bool)logits) << llvm::toString(logits.takeError());
      if (!logits)
        return all;
      all.insert(all.end(), logits->data(), logits->data() + logits->numel());
      logits = decoder.decode({seq}, {token});
    }
    decoder.cache().close(seq);
    EXPECT_TRUE((bool)logits) << llvm::toString(logits.takeError());
    return all;
  };
  auto fresh = Decoder::create(*model, kSmallBlocks);
  ASSERT_TRUE((bool)fresh) << llvm::toString(fresh.takeError());
  auto warmed = Decoder::create(*model, kSmallBlocks);
  ASSERT_TRUE((bool)warmed) << llvm::toString(warmed.takeError());
  KvCache &cache = (*warmed)->cache();
  ASSERT_EQ(cache.bytesAllocated(), 0);
  auto seconds = (*warmed)->warmUp();
  ASSERT_TRUE((bool)seconds) << llvm::toString(seconds.takeError());
  EXPECT_GT(*seconds, 0.0);
  EXPECT_GT(cache.bytesAllocated(), 0);
  EXPECT_EQ(cache.openSequences(), 0u);
  EXPECT_EQ(cache.blocksInUse(), 0);
  EXPECT_EQ(cache.peakBytesInUse(), 0);
  EXPECT_EQ(decodeSteps(**warmed), decodeSteps(**fresh));

  int64_t seq = cache.open();
  auto refused = (*warmed)->warmUp();
  ASSERT_FALSE((bool)refused);
  EXPECT_EQ(llvm::toString(refused.takeError()), "warm-up: the KV cache holds sequences");
  cache.close(seq);
}

// Tests the errors a caller can meet: a full cache (prefill and the
// scheduler report it, nothing crashes, the blocks come back) and a block
// table naming a block outside the pool (the kernel's error names the op).
TEST_P(DecoderTest, ErrorsAreReportedNotFatal) {
  auto model = load(writeTeacher(root, {}), "");
  ASSERT_TRUE(model);
  auto decoder = Decoder::create(*model, {4, 8, /*maxBlocks=*/2});
  ASSERT_TRUE((bool)decoder) << llvm::toString(decoder.takeError());
  int64_t seq = (*decoder)->cache().open();
  auto logits = (*decoder)->prefill(seq, kPrompt);
  ASSERT_FALSE((bool)logits);
  EXPECT_NE(llvm::toString(logits.takeError()).find("the KV cache is full: all 2 blocks"),
            std::string::npos);
  (*decoder)->cache().close(seq);
  EXPECT_EQ((*decoder)->cache().blocksInUse(), 0);

  Scheduler scheduler(**decoder, nullptr);
  RequestResult result;
  Request r;
  r.prompt = kPrompt;
  r.onDone = [&](const RequestResult &done) { result = done; };
  scheduler.submit(std::move(r));
  while (scheduler.step()) {
  }
  // The scheduler refuses it before prefilling: its prompt and max_tokens
  // can never fit the capped cache.
  EXPECT_EQ(result.finishReason, "error");
  EXPECT_NE(result.error.find("KV-cache blocks of 4 tokens; the cache holds 2 (--kv-blocks)"),
            std::string::npos)
      << result.error;
  EXPECT_EQ(scheduler.stats().kvBlocksInUse, 0);

  // A pool too small for the table's block ids: the kernel names the op.
  auto small = Decoder::create(*model, kSmallBlocks);
  ASSERT_TRUE((bool)small);
  auto decode = (*small)->module().lookupSymbol<func::FuncOp>("decode");
  std::vector<Tensor> args = {Tensor::ints({5}), Tensor::ints({0})};
  args.push_back(Tensor::ints({7}).reshaped({1, 1}));
  for (const auto &pool : (*small)->cache().layout().pools)
    args.push_back(Tensor::zeros({4, pool.width}));
  auto bad = model->executor().run(decode, args, model->parameterStore());
  ASSERT_FALSE((bool)bad);
  std::string message = llvm::toString(bad.takeError());
  EXPECT_NE(message.find("attnedit.cache_write"), std::string::npos) << message;
  EXPECT_NE(message.find("maps to block 7, outside the pool of 1 blocks"), std::string::npos)
      << message;
}

// Tests admission under a capped cache (4 blocks of 4 tokens): a request
// whose client left while it waited for blocks leaves the queue at once
// rather than holding back a smaller one behind it, and a request
// reserves no block for its last token, which is never cached.
TEST_P(DecoderTest, CancelledWaitingRequestsLeaveTheQueue) {
  auto model = load(writeTeacher(root, {}), "");
  ASSERT_TRUE(model);
  auto decoder = Decoder::create(*model, {4, 8, /*maxBlocks=*/4});
  ASSERT_TRUE((bool)decoder) << llvm::toString(decoder.takeError());
  Scheduler scheduler(**decoder, nullptr);
  std::vector<RequestResult> results(4);
  auto submit = [&](size_t i, std::vector<int32_t> prompt, int64_t maxTokens,
                    bool cancelled = false) {
    Request r;
    r.prompt = std::move(prompt);
    r.options.maxTokens = maxTokens;
    r.options.ignoreStopTokens = true;
    r.cancelled = std::make_shared<std::atomic<bool>>(cancelled);
    r.onDone = [&, i](const RequestResult &done) { results[i] = done; };
    scheduler.submit(std::move(r));
  };
  submit(0, {1, 5, 9}, 10); // 12 tokens: 3 blocks
  scheduler.step();
  submit(1, {1, 7, 3}, 6, /*cancelled=*/true); // 2 blocks: does not fit beside 0
  submit(2, {1, 40}, 3);                        // 1 block: fits
  scheduler.step();
  EXPECT_EQ(results[1].finishReason, "cancelled");
  EXPECT_TRUE(results[1].tokens.empty());
  EXPECT_EQ(scheduler.stats().requestsRunning, 2);
  EXPECT_EQ(scheduler.stats().requestsWaiting, 0);
  while (scheduler.step()) {
  }
  // 3 prompt and 14 completion tokens: 16 cached, the whole cache.
  submit(3, {1, 5, 9}, 14);
  while (scheduler.step()) {
  }
  for (size_t i : {0, 2, 3})
    EXPECT_EQ(results[i].finishReason, "length") << "request " << i << ": " << results[i].error;
  EXPECT_EQ(results[3].tokens.size(), 14u);
  EXPECT_EQ(scheduler.stats().kvBlocksInUse, 0);
}

/// stories260K (llama2.c: interleaved RoPE, 8 heads / 4 KV heads), unedited
/// and edited both ways.
class Stories260KDecoderTest : public DecoderTest {
protected:
  std::string checkpoint() {
    std::string path = std::string(ATTNEDIT_SHARED_DATA) + "/stories260K/stories260K.bin";
    return fs::exists(path) ? path : "";
  }
};

TEST_P(Stories260KDecoderTest, CachedDecodingMatchesForward) {
  std::string path = checkpoint();
  if (path.empty())
    GTEST_SKIP() << "../shared/data/stories260K/stories260K.bin is absent";
  for (const char *edit : {"", "target=mla kv-lora-rank=16 qk-rope-head-dim=4 init=svd",
                           "target=gate-swa window=16 full-every=2 sinks=true"}) {
    SCOPED_TRACE(edit);
    auto model = load(path, edit);
    ASSERT_TRUE(model);
    // 1-token prompt, 48 tokens: three windows past a 16-token window.
    checkAgainstForward(*model, {1}, 48, {16, 64, 0});
    checkBatched(*model, {16, 64, 0}, 8);
  }
}

auto backendName = [](const ::testing::TestParamInfo<std::string> &info) { return info.param; };
INSTANTIATE_TEST_SUITE_P(Backends, DecoderTest, ::testing::Values("reference", "cpu"), backendName);
INSTANTIATE_TEST_SUITE_P(Backends, Stories260KDecoderTest, ::testing::Values("reference", "cpu"),
                         backendName);

} // namespace
