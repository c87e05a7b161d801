//===- ModelExportTest.cpp - exported directories compute the module -------===//
//
// Edits tiny random teachers (HF Llama/Qwen2/Qwen3 with rotate-half RoPE,
// llama2.c with interleaved RoPE) into MLA and GateSWA students, gives every
// student parameter "trained" values through ParameterStore::set (as a
// trainer does), exports, loads the directory back with Model::load and
// compares logits with the student module's. DeepSeek exports are also
// checked against an independent PyTorch DeepSeek-V2 implementation
// (tests/e2e/deepseek_reference.py) when Debian's python3-torch is present,
// which pins the scale fold and the RoPE row permutation to DeepSeek's code.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/Importer.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Training/Distiller.h"
#include "attnedit/Runtime/Execution/Evaluator.h"
#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Frontend/ModelExport.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>

using namespace mlir;
using namespace mlir::attnedit;
namespace fs = llvm::sys::fs;
namespace path = llvm::sys::path;

namespace {

const std::vector<int32_t> kTokens = {1, 5, 9, 23, 42, 7, 17, 3, 30, 11};

std::string join(llvm::StringRef dir, llvm::StringRef name) {
  llvm::SmallString<256> p(dir);
  path::append(p, name);
  return p.str().str();
}

/// The source tree, from this file's path (tests/unit/runtime/...).
std::string sourceDir() { return ATTNEDIT_SOURCE_DIR; }

bool haveTorch() {
  static bool have = std::system("/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null") == 0;
  return have;
}

/// Reads a float32 .npy written by writeNpy or numpy.
std::vector<float> readNpy(const std::string &file) {
  auto buffer = llvm::MemoryBuffer::getFile(file);
  if (!buffer)
    return {};
  llvm::StringRef data = (*buffer)->getBuffer();
  uint16_t len = (uint8_t)data[8] | ((uint8_t)data[9] << 8);
  size_t begin = 10 + len;
  std::vector<float> out((data.size() - begin) / 4);
  memcpy(out.data(), data.data() + begin, out.size() * 4);
  return out;
}

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

/// A tiny teacher's shape.
struct TinySpec {
  std::string arch = "LlamaForCausalLM"; // or Qwen2/Qwen3ForCausalLM, or "llama2.c"
  int64_t hidden = 32, ffn = 48, layers = 2, heads = 4, kvHeads = 2, headDim = 8, vocab = 48;
  bool tied = false;
  double eps = 1e-5;
  uint32_t seed = 1;
};

class Rng {
public:
  explicit Rng(uint32_t seed) : gen(seed) {}
  std::vector<float> normal(int64_t n, float scale, float mean = 0) {
    std::normal_distribution<float> d(mean, scale);
    std::vector<float> v(n);
    for (float &x : v)
      x = d(gen);
    return v;
  }

private:
  std::mt19937 gen;
};

/// Writes a tiny random teacher: an HF directory or a llama2.c .bin (whose
/// interleaved-pair RoPE is the case the exporter must permute).
std::string writeTeacher(const std::string &root, const TinySpec &s) {
  Rng rng(s.seed);
  int64_t h = s.hidden, d = s.headDim;
  std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> w;
  auto mat = [&](const std::string &name, int64_t rows, int64_t cols) {
    w[name] = {{rows, cols}, rng.normal(rows * cols, 0.25f)};
  };
  auto vec = [&](const std::string &name, int64_t n, float mean, float scale) {
    w[name] = {{n}, rng.normal(n, scale, mean)};
  };
  mat("model.embed_tokens.weight", s.vocab, h);
  vec("model.norm.weight", h, 1.0f, 0.1f);
  if (!s.tied)
    mat("lm_head.weight", s.vocab, h);
  for (int64_t l = 0; l < s.layers; ++l) {
    std::string p = llvm::formatv("model.layers.{0}.", l).str();
    vec(p + "input_layernorm.weight", h, 1.0f, 0.1f);
    vec(p + "post_attention_layernorm.weight", h, 1.0f, 0.1f);
    mat(p + "self_attn.q_proj.weight", s.heads * d, h);
    mat(p + "self_attn.k_proj.weight", s.kvHeads * d, h);
    mat(p + "self_attn.v_proj.weight", s.kvHeads * d, h);
    mat(p + "self_attn.o_proj.weight", h, s.heads * d);
    if (s.arch == "Qwen2ForCausalLM")
      for (auto [proj, n] : {std::pair{"q_proj", s.heads * d}, {"k_proj", s.kvHeads * d},
                             {"v_proj", s.kvHeads * d}})
        vec(p + "self_attn." + proj + ".bias", n, 0.0f, 0.2f);
    if (s.arch == "Qwen3ForCausalLM") {
      vec(p + "self_attn.q_norm.weight", d, 1.0f, 0.1f);
      vec(p + "self_attn.k_norm.weight", d, 1.0f, 0.1f);
    }
    mat(p + "mlp.gate_proj.weight", s.ffn, h);
    mat(p + "mlp.up_proj.weight", s.ffn, h);
    mat(p + "mlp.down_proj.weight", h, s.ffn);
  }

  if (s.arch == "llama2.c") {
    std::string file = join(root, "teacher.bin");
    std::ofstream os(file, std::ios::binary);
    int32_t header[7] = {(int32_t)h,        (int32_t)s.ffn,     (int32_t)s.layers,
                         (int32_t)s.heads,  (int32_t)s.kvHeads, (int32_t)(s.tied ? s.vocab : -s.vocab),
                         64};
    os.write(reinterpret_cast<const char *>(header), sizeof header);
    auto put = [&](const std::string &name) {
      const auto &values = w[name].second;
      os.write(reinterpret_cast<const char *>(values.data()), values.size() * 4);
    };
    auto perLayer = [&](const char *name) {
      for (int64_t l = 0; l < s.layers; ++l)
        put(llvm::formatv("model.layers.{0}.{1}", l, name).str());
    };
    put("model.embed_tokens.weight");
    for (const char *name : {"input_layernorm.weight", "self_attn.q_proj.weight",
                             "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                             "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                             "mlp.gate_proj.weight", "mlp.down_proj.weight", "mlp.up_proj.weight"})
      perLayer(name);
    put("model.norm.weight");
    std::vector<float> freqs(64 * d, 0.0f); // freq_cis_real and _imag, unused
    os.write(reinterpret_cast<const char *>(freqs.data()), freqs.size() * 4);
    if (!s.tied)
      put("lm_head.weight");
    return file;
  }

  std::string dir = join(root, "teacher");
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
                            {"rms_norm_eps", s.eps},
                            {"rope_theta", 10000.0},
                            {"max_position_embeddings", 64},
                            {"tie_word_embeddings", s.tied},
                            {"bos_token_id", 1},
                            {"eos_token_id", 2}};
  std::ofstream(join(dir, "config.json"))
      << llvm::formatv("{0}", llvm::json::Value(std::move(config))).str();
  return dir;
}

class ModelExportTest : public ::testing::Test {
protected:
  void SetUp() override {
    context.loadDialect<AttnEditDialect, func::FuncDialect>();
    llvm::SmallString<128> dir;
    ASSERT_FALSE(fs::createUniqueDirectory("attnedit-export", dir));
    root = dir.str().str();
  }
  void TearDown() override {
    if (!HasFailure())
      fs::remove_directories(root);
  }

  /// Imports `model`, raises it and, unless `edit` is empty, edits it.
  OwningOpRef<ModuleOp> student(const std::string &model, const std::string &edit) {
    auto checkpoint = openCheckpoint(model);
    if (!checkpoint) {
      ADD_FAILURE() << llvm::toString(checkpoint.takeError());
      return nullptr;
    }
    auto teacher = importCheckpoint(context, *checkpoint);
    if (!teacher) {
      ADD_FAILURE() << llvm::toString(teacher.takeError());
      return nullptr;
    }
    if (edit.empty())
      return std::move(*teacher);

    auto raised = raisedCopy(**teacher);
    if (!raised) {
      ADD_FAILURE() << llvm::toString(raised.takeError());
      return nullptr;
    }
    auto edited = editedCopy(**raised, edit, join(root, "student.safetensors"));
    if (!edited) {
      ADD_FAILURE() << llvm::toString(edited.takeError());
      return nullptr;
    }
    return std::move(*edited);
  }

  /// What a trainer does: every student parameter gets new values through
  /// store.set(name, tensor, "student"), and (train=all) so do two teacher
  /// weights, which @forward still names unscoped.
  void train(ModuleOp module, ParameterStore &store, uint32_t seed) {
    Rng rng(seed);
    auto perturb = [&](ParamOp p, llvm::StringRef scope, llvm::StringRef readScope) {
      auto shape = p.getType().getShape();
      auto old = store.get(p.getName(), shape, readScope);
      ASSERT_TRUE((bool)old) << llvm::toString(old.takeError());
      Tensor t = Tensor::zeros(shape);
      std::vector<float> noise = rng.normal(t.numel(), 0.1f);
      bool sinks = p.getName().ends_with("sinks");
      for (int64_t i = 0; i < t.numel(); ++i)
        t.mutableData()[i] = sinks ? noise[i] * 10 : old->data()[i] + noise[i];
      store.set(p.getName(), t, scope);
    };
    auto forward = module.lookupSymbol<func::FuncOp>("forward");
    forward.walk([&](ParamOp p) {
      if (p.getScope())
        perturb(p, *p.getScope(), *p.getScope());
      else if (p.getName() == "model.layers.0.mlp.up_proj.weight" ||
               p.getName() == "model.norm.weight")
        perturb(p, "student", "");
    });
  }

  /// Logits of the trained student: @forward with the two teacher weights
  /// explicitly read from the student scope.
  Tensor studentLogits(ModuleOp module, ParameterStore &store) {
    OwningOpRef<ModuleOp> copy(cast<ModuleOp>(module->clone()));
    Builder b(&context);
    copy->walk([&](ParamOp p) {
      if (p.getName() == "model.layers.0.mlp.up_proj.weight" || p.getName() == "model.norm.weight")
        p.setScopeAttr(b.getStringAttr("student"));
    });
    std::vector<int32_t> positions(kTokens.size());
    for (size_t i = 0; i < positions.size(); ++i)
      positions[i] = i;
    auto results = evaluate(copy->lookupSymbol<func::FuncOp>("forward"),
                            {Tensor::ints(kTokens), Tensor::ints(positions)}, store);
    EXPECT_TRUE((bool)results) << (results ? "" : llvm::toString(results.takeError()));
    return results ? results->front() : Tensor();
  }

  llvm::json::Object readConfig(const std::string &dir) {
    auto buffer = llvm::MemoryBuffer::getFile(join(dir, "config.json"));
    EXPECT_TRUE((bool)buffer);
    auto json = llvm::json::parse((*buffer)->getBuffer());
    EXPECT_TRUE((bool)json);
    return *json->getAsObject();
  }

  /// Edits, trains, exports, reloads; returns the export dir.
  std::string roundTrip(const std::string &model, const std::string &edit,
                        llvm::StringRef architecture, bool torchCheck = false) {
    OwningOpRef<ModuleOp> module = student(model, edit);
    if (!module)
      return "";
    ParameterStore store;
    EXPECT_FALSE((bool)store.openModuleFiles(*module));
    train(*module, store, 5);
    Tensor expected = studentLogits(*module, store);

    std::string dir = join(root, "exported");
    auto summary = exportChecked(*module, store, dir);
    if (!summary) {
      ADD_FAILURE() << llvm::toString(summary.takeError());
      return "";
    }
    EXPECT_EQ(summary->summary.architecture, architecture);
    EXPECT_LT(summary->relativeError, 1e-5);
    EXPECT_FALSE(fs::exists(dir + ".tmp-" + std::to_string(::getpid())));
    llvm::json::Object config = readConfig(dir);
    EXPECT_EQ(config.getArray("architectures")->front().getAsString(), architecture);

    auto loaded = Model::load(dir);
    if (!loaded) {
      ADD_FAILURE() << llvm::toString(loaded.takeError());
      return "";
    }
    auto logits = (*loaded)->forward(kTokens);
    EXPECT_TRUE((bool)logits);
    EXPECT_EQ(logits->shape(), expected.shape());
    double rel = relativeDiff(logits->data(), expected.data(), expected.numel());
    EXPECT_LT(rel, 1e-5) << "exported " << architecture.str() << " vs the student module";

    if (torchCheck) {
      if (!haveTorch()) {
        std::cout << "[  NOTE    ] python3-torch is absent: the PyTorch DeepSeek-V2 check "
                     "is skipped\n";
      } else {
        std::string npy = join(root, "torch.npy");
        std::string tokens;
        for (int32_t t : kTokens)
          tokens += (tokens.empty() ? "" : ",") + std::to_string(t);
        std::string cmd = "/usr/bin/python3 " + sourceDir() + "/tests/e2e/deepseek_reference.py " +
                          dir + " --tokens " + tokens + " --logits-out " + npy;
        EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
        std::vector<float> ref = readNpy(npy);
        EXPECT_EQ((int64_t)ref.size(), expected.numel());
        if ((int64_t)ref.size() == expected.numel()) {
          EXPECT_LT(relativeDiff(logits->data(), ref.data(), ref.size()), 1e-5)
              << "exported DeepSeek dir: attnedit vs PyTorch DeepSeek-V2";
        }
      }
    }
    return dir;
  }

  MLIRContext context;
  std::string root;
};

TEST_F(ModelExportTest, MlaFromRotateHalfLlamaMatchesDeepseekV2) {
  TinySpec s;
  std::string dir = roundTrip(writeTeacher(root, s),
                              "target=mla kv-lora-rank=12 qk-rope-head-dim=4 init=svd",
                              "DeepseekV2ForCausalLM", /*torchCheck=*/true);
  if (dir.empty())
    return;
  llvm::json::Object c = readConfig(dir);
  EXPECT_EQ(c.getString("model_type"), "deepseek_v2");
  EXPECT_EQ(c.getInteger("kv_lora_rank"), 12);
  EXPECT_EQ(c.getInteger("qk_rope_head_dim"), 4);
  EXPECT_EQ(c.getInteger("qk_nope_head_dim"), 8);
  EXPECT_EQ(c.getInteger("num_key_value_heads"), 4);
  EXPECT_EQ(c.getInteger("first_k_dense_replace"), 2);
  EXPECT_TRUE(c.get("q_lora_rank")->getAsNull());
  EXPECT_TRUE(c.get("n_routed_experts")->getAsNull());
  EXPECT_TRUE(c.get("rope_scaling")->getAsNull());
}

TEST_F(ModelExportTest, MlaWithQueryLoraFromLlama2cMatchesDeepseekV2) {
  TinySpec s;
  s.arch = "llama2.c";
  s.kvHeads = 4;
  s.tied = true;
  roundTrip(writeTeacher(root, s),
            "target=mla kv-lora-rank=16 q-lora-rank=12 qk-rope-head-dim=4 init=svd",
            "DeepseekV2ForCausalLM", /*torchCheck=*/true);
}

TEST_F(ModelExportTest, MlaFromQwen3MatchesDeepseekV2) {
  TinySpec s;
  s.arch = "Qwen3ForCausalLM";
  s.headDim = 16;
  s.eps = 1e-6;
  s.tied = true;
  roundTrip(writeTeacher(root, s),
            "target=mla kv-lora-rank=16 qk-rope-head-dim=8 qk-nope-head-dim=8 v-head-dim=12 "
            "init=random",
            "DeepseekV2ForCausalLM", /*torchCheck=*/true);
}

TEST_F(ModelExportTest, GateSwaFromLlama2cWithSinksAndHeadwiseGate) {
  TinySpec s;
  s.arch = "llama2.c";
  std::string dir = roundTrip(writeTeacher(root, s),
                              "target=gate-swa window=3 full-every=2 gate=headwise sinks=true",
                              "GateSwaForCausalLM");
  if (dir.empty())
    return;
  llvm::json::Object c = readConfig(dir);
  EXPECT_EQ(c.getString("base_architecture"), "LlamaForCausalLM");
  EXPECT_EQ(c.getInteger("sliding_window"), 3);
  EXPECT_EQ(c.getString("attention_gate"), "headwise");
  EXPECT_EQ(c.getBoolean("attention_sinks"), true);
  const llvm::json::Array *types = c.getArray("layer_types");
  ASSERT_TRUE(types && types->size() == 2);
  EXPECT_EQ((*types)[0].getAsString(), "sliding_attention");
  EXPECT_EQ((*types)[1].getAsString(), "full_attention");
}

TEST_F(ModelExportTest, GateSwaFromQwen2ElementwiseOnSomeLayers) {
  TinySpec s;
  s.arch = "Qwen2ForCausalLM";
  s.layers = 3;
  s.tied = true;
  std::string dir = roundTrip(writeTeacher(root, s),
                              "target=gate-swa layers=0,2 window=4 gate=elementwise sinks=true",
                              "GateSwaForCausalLM");
  if (dir.empty())
    return;
  llvm::json::Object c = readConfig(dir);
  const llvm::json::Array *gates = c.getArray("layer_gates");
  ASSERT_TRUE(gates && gates->size() == 3);
  EXPECT_EQ((*gates)[1].getAsBoolean(), false);
  // Qwen tokenizers never prepend BOS; the export must not start to.
  auto loaded = Model::load(dir);
  ASSERT_TRUE((bool)loaded);
  EXPECT_FALSE((*loaded)->bosToken().has_value());
}

TEST_F(ModelExportTest, PlainLlama2cTeacherExportsAsRotateHalfLlama) {
  TinySpec s;
  s.arch = "llama2.c";
  std::string dir = roundTrip(writeTeacher(root, s), "", "LlamaForCausalLM");
  if (dir.empty())
    return;
  llvm::json::Object c = readConfig(dir);
  EXPECT_EQ(c.getString("model_type"), "llama");
  EXPECT_EQ(c.getInteger("eos_token_id"), 1);
  EXPECT_EQ(c.getInteger("bos_token_id"), 1);
  // HF's llama2.c permute: per head, row p·D/2 + i is llama2.c's row 2i + p.
  auto exported = WeightFile::openSafetensors(join(dir, "model.safetensors"));
  auto original = openLlama2c(join(root, "teacher.bin"));
  ASSERT_TRUE((bool)exported && (bool)original);
  const char *name = "model.layers.1.self_attn.k_proj.weight";
  const TensorInfo *a = (*exported)->find(name), *b = original->weights->find(name);
  ASSERT_TRUE(a && b);
  const float *x = reinterpret_cast<const float *>((*exported)->bytes(*a));
  const float *y = reinterpret_cast<const float *>(original->weights->bytes(*b));
  int64_t d = s.headDim, cols = s.hidden;
  for (int64_t head = 0; head < s.kvHeads; ++head)
    for (int64_t i = 0; i < d / 2; ++i)
      for (int64_t p = 0; p < 2; ++p)
        EXPECT_EQ(x[(head * d + p * d / 2 + i) * cols + 3], y[(head * d + 2 * i + p) * cols + 3]);
}

TEST_F(ModelExportTest, PlainQwen3AndQwen2TeachersExport) {
  for (const char *arch : {"Qwen3ForCausalLM", "Qwen2ForCausalLM"}) {
    TinySpec s;
    s.arch = arch;
    s.eps = 1e-6;
    std::string sub = join(root, arch);
    fs::create_directories(sub);
    roundTrip(writeTeacher(sub, s), "", arch);
    fs::remove_directories(join(root, "exported"));
  }
}

TEST_F(ModelExportTest, ExportReplacesOnlyAPreviousExport) {
  TinySpec s;
  std::string model = writeTeacher(root, s);
  OwningOpRef<ModuleOp> module = student(model, "");
  ASSERT_TRUE(module);
  ParameterStore store;
  ASSERT_FALSE((bool)store.openModuleFiles(*module));
  std::string dir = join(root, "out");
  for (int i = 0; i < 2; ++i) {
    auto summary = exportChecked(*module, store, dir);
    ASSERT_TRUE((bool)summary) << llvm::toString(summary.takeError());
  }
  std::string other = join(root, "not-a-model");
  fs::create_directories(other);
  std::ofstream(join(other, "notes.txt")) << "keep me";
  auto refused = exportChecked(*module, store, other);
  ASSERT_FALSE((bool)refused);
  EXPECT_NE(llvm::toString(refused.takeError())
                .find("holds 'notes.txt', which an export does not write"),
            std::string::npos);
  EXPECT_TRUE(fs::exists(join(other, "notes.txt")));
  // A model directory with more than an export writes (a hub checkpoint's
  // README.md, a job's logs) would lose it with the swap.
  std::ofstream(join(dir, "README.md")) << "keep me too";
  auto withReadme = exportChecked(*module, store, dir);
  ASSERT_FALSE((bool)withReadme);
  EXPECT_NE(llvm::toString(withReadme.takeError()).find("holds 'README.md'"), std::string::npos);
  EXPECT_TRUE(fs::exists(join(dir, "README.md")));
}

/// A planned edit mixing MLA, a sliding window and a kept layer exports as
/// GateSwaForCausalLM naming each layer's kind, from rotate-half (Llama,
/// Qwen3 with q/k norms) and interleaved (llama2.c) teachers; roundTrip
/// checks the reloaded logits.
TEST_F(ModelExportTest, MixedPlanExportsAsGateSwaWithMlaLayers) {
  for (const char *arch : {"LlamaForCausalLM", "Qwen3ForCausalLM", "llama2.c"}) {
    SCOPED_TRACE(arch);
    std::string sub = join(root, arch);
    fs::create_directories(sub);
    TinySpec s;
    s.arch = arch;
    s.layers = 3;
    std::string plan = join(sub, "plan.json");
    std::ofstream(plan) << R"({"layers": [{"kind": "mla", "kv_lora_rank": 8, "qk_rope_head_dim": 4},
                                          {"kind": "swa", "window": 4}, {"kind": "keep"}]})";
    std::string dir = roundTrip(writeTeacher(sub, s), "plan=" + plan, "GateSwaForCausalLM");
    ASSERT_FALSE(dir.empty());
    llvm::json::Object config = readConfig(dir);
    const llvm::json::Array *types = config.getArray("layer_types");
    ASSERT_TRUE(types && types->size() == 3);
    EXPECT_EQ((*types)[0].getAsString(), "mla");
    EXPECT_EQ((*types)[1].getAsString(), "sliding_attention");
    EXPECT_EQ((*types)[2].getAsString(), "full_attention");
    EXPECT_EQ(config.getInteger("kv_lora_rank"), 8);
  }
}

/// MLA layers of different sizes (a plan's per-layer ranks; rope-stride=1
/// gives each RoPE width its own rope_theta) export as DeepSeek-V2 with
/// per-layer lists, which reload exactly (and, with python3-torch, compute
/// what the PyTorch reference computes reading entry l for layer l).
TEST_F(ModelExportTest, MlaLayersOfDifferentSizesExportPerLayerLists) {
  TinySpec s;
  s.layers = 3;
  std::string plan = join(root, "plan.json");
  std::ofstream(plan) << R"({"layers": [{"kind": "mla", "kv_lora_rank": 12, "qk_rope_head_dim": 4},
                                        {"kind": "mla", "kv_lora_rank": 6, "qk_rope_head_dim": 2},
                                        {"kind": "mla", "kv_lora_rank": 8, "qk_rope_head_dim": 4}]})";
  std::string dir = roundTrip(writeTeacher(root, s), "plan=" + plan + " rope-stride=1 init=svd",
                              "DeepseekV2ForCausalLM", /*torchCheck=*/true);
  ASSERT_FALSE(dir.empty());
  llvm::json::Object c = readConfig(dir);
  auto list = [&](llvm::StringRef key) {
    std::vector<double> out;
    if (const llvm::json::Array *a = c.getArray(key))
      for (const llvm::json::Value &v : *a)
        out.push_back(v.getAsNumber().value_or(-1));
    return out;
  };
  EXPECT_EQ(list("kv_lora_rank"), (std::vector<double>{12, 6, 8}));
  EXPECT_EQ(list("qk_rope_head_dim"), (std::vector<double>{4, 2, 4}));
  // theta^(r/D) with D = 8: 10000^(1/2), 10000^(1/4).
  EXPECT_EQ(list("rope_theta"), (std::vector<double>{100, 10, 100}));
  // The fields every layer agrees on stay single values.
  EXPECT_EQ(c.getInteger("qk_nope_head_dim"), 8);
  EXPECT_EQ(c.getInteger("v_head_dim"), 8);
}

/// A plan with MLA of two sizes beside a kept layer: GateSWA's format, whose
/// lists hold null for the layer that is not MLA; rope-stride=1 gives the MLA
/// layers rope_theta 100 beside the kept layer's 10000, which it still reads.
TEST_F(ModelExportTest, MixedPlanWithTwoMlaSizesListsNullForOtherLayers) {
  TinySpec s;
  s.layers = 3;
  std::string plan = join(root, "plan.json");
  std::ofstream(plan) << R"({"layers": [{"kind": "mla", "kv_lora_rank": 8}, {"kind": "keep"},
                                        {"kind": "mla", "kv_lora_rank": 4}]})";
  std::string dir = roundTrip(writeTeacher(root, s), "plan=" + plan + " qk-rope-head-dim=4 rope-stride=1 init=random",
                              "GateSwaForCausalLM");
  ASSERT_FALSE(dir.empty());
  llvm::json::Object c = readConfig(dir);
  const llvm::json::Array *ranks = c.getArray("kv_lora_rank");
  ASSERT_TRUE(ranks && ranks->size() == 3);
  EXPECT_EQ((*ranks)[0].getAsInteger(), 8);
  EXPECT_TRUE((*ranks)[1].getAsNull());
  EXPECT_EQ((*ranks)[2].getAsInteger(), 4);
  EXPECT_EQ(c.getInteger("qk_rope_head_dim"), 4);
  const llvm::json::Array *theta = c.getArray("rope_theta");
  ASSERT_TRUE(theta && theta->size() == 3);
  EXPECT_EQ((*theta)[0].getAsNumber(), 100.0);
  EXPECT_EQ((*theta)[1].getAsNumber(), 10000.0);
  EXPECT_EQ((*theta)[2].getAsNumber(), 100.0);
}

TEST_F(ModelExportTest, RefusesWhatTheFormatCannotExpress) {
  TinySpec s;
  s.layers = 3;
  std::string model = writeTeacher(root, s);
  std::string plan = join(root, "plan.json");
  std::ofstream(plan) << R"({"layers": [{"kind": "swa", "window": 4}, {"kind": "keep"},
                                        {"kind": "swa", "window": 6}]})";
  OwningOpRef<ModuleOp> mixed = student(model, "plan=" + plan + " init=random");
  ASSERT_TRUE(mixed);
  ParameterStore store;
  ASSERT_FALSE((bool)store.openModuleFiles(*mixed));
  auto refused = exportChecked(*mixed, store, join(root, "out"));
  ASSERT_FALSE((bool)refused);
  EXPECT_NE(llvm::toString(refused.takeError())
                .find("layers have windows 4 and 6; the format has one sliding_window"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(join(root, "out")));
}

/// The real stories260K (llama2.c): MLA and GateSWA students export, load,
/// and generate through attnedit-run with the copied tok512.bin.
TEST_F(ModelExportTest, Stories260K) {
  std::string model = ATTNEDIT_SHARED_DATA "/stories260K/stories260K.bin";
  if (!fs::exists(model))
    GTEST_SKIP() << model << " is absent";
  // MLA of each layer's own size (issue 12's per-layer plans).
  std::string plan = join(root, "ranks.json");
  std::ofstream(plan) << R"({"layers": [{"kind": "mla", "kv_lora_rank": 24, "qk_rope_head_dim": 6},
      {"kind": "mla", "kv_lora_rank": 16, "qk_rope_head_dim": 4},
      {"kind": "mla", "kv_lora_rank": 16, "qk_rope_head_dim": 4},
      {"kind": "mla", "kv_lora_rank": 12, "qk_rope_head_dim": 4},
      {"kind": "mla", "kv_lora_rank": 8, "qk_rope_head_dim": 2}]})";
  std::string ranks = "plan=" + plan + " rope-stride=1 init=svd";
  struct Case {
    const char *edit, *arch;
  } cases[] = {{"target=mla kv-lora-rank=16 qk-rope-head-dim=4 init=svd", "DeepseekV2ForCausalLM"},
               {ranks.c_str(), "DeepseekV2ForCausalLM"},
               {"target=gate-swa window=4 full-every=2 gate=headwise sinks=true",
                "GateSwaForCausalLM"},
               {"", "LlamaForCausalLM"}};
  std::string run = ATTNEDIT_BINARY_DIR "/bin/attnedit-run";
  for (const Case &c : cases) {
    SCOPED_TRACE(c.arch);
    std::string dir = roundTrip(model, c.edit, c.arch, llvm::StringRef(c.arch).starts_with("Deep"));
    ASSERT_FALSE(dir.empty());
    EXPECT_TRUE(fs::exists(join(dir, "tokenizer.bin")));
    if (fs::exists(run)) {
      std::string out = join(root, "generate.txt");
      std::string cmd = run + " generate " + dir +
                        " --prompt 'Once upon a time' --temperature 0 --max-tokens 16 > " + out;
      EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
      auto text = llvm::MemoryBuffer::getFile(out);
      ASSERT_TRUE((bool)text);
      EXPECT_GT((*text)->getBuffer().size(), 16u) << (*text)->getBuffer().str();
    } else {
      std::cout << "[  NOTE    ] " << run << " is not built: generate is not checked\n";
    }
    fs::remove_directories(dir);
  }
}

} // namespace
