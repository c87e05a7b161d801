//===- TrainerTest.cpp - recipes, schedules and data packing ---------------===//

#include "attnedit/Frontend/Importer.h"
#include "attnedit/Runtime/Training/Distiller.h"
#include "attnedit/Runtime/Training/GradientProgram.h"
#include "attnedit/Runtime/Training/OptimizerKernels.h"
#include "attnedit/Runtime/Training/Trainer.h"

#include "mlir/IR/MLIRContext.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <cblas.h>
#include <cmath>
#include <cstring>
#include <omp.h>
#include <random>
#include <set>

using namespace mlir::attnedit;

namespace {

// Tests that the optimizer kernels (the clone this CPU dispatches to:
// AVX-512 or AVX2 vectors here) give the bits of plain scalar loops, which
// this file compiles for baseline x86-64: no fused multiply-add, correctly
// rounded sqrt and divide, the norm's eight running sums in their order.
// A contracted FMA or a reordered sum changes some of these 1000 elements.
TEST(OptimizerKernelsTest, ClonesGiveTheScalarLoopsBits) {
  constexpr int64_t n = 1000; // not a multiple of any vector width
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> p(n), g(n), m(n), v(n);
  for (int64_t j = 0; j < n; ++j) {
    p[j] = normal(rng);
    g[j] = 0.1f * normal(rng);
    m[j] = 0.01f * normal(rng);
    v[j] = 1e-4f * std::abs(normal(rng));
  }
  AdamWStep s{0.7f, 0.9f, 0.95f, 0.1f, 0.05f, 0.9999f, 3e-3f, 0.4f, 1e-8f};
  std::vector<float> pr = p, mr = m, vr = v;
  for (int64_t j = 0; j < n; ++j) {
    float gj = g[j] * s.gradScale;
    mr[j] = s.beta1 * mr[j] + s.oneMinusBeta1 * gj;
    vr[j] = s.beta2 * vr[j] + s.oneMinusBeta2 * gj * gj;
    pr[j] = pr[j] * s.decay -
            s.stepSize * mr[j] / (std::sqrt(vr[j]) / s.rootBiasCorrection2 + s.eps);
  }
  adamwUpdate(p.data(), g.data(), m.data(), v.data(), n, s);
  EXPECT_EQ(std::memcmp(m.data(), mr.data(), n * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(v.data(), vr.data(), n * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(p.data(), pr.data(), n * sizeof(float)), 0);

  double sums[32] = {};
  for (int64_t j = 0; j < n; ++j)
    sums[j < n / 32 * 32 ? j % 32 : 0] += (double)g[j] * g[j];
  for (int width = 16; width > 0; width /= 2)
    for (int k = 0; k < width; ++k)
      sums[k] += sums[k + width];
  double expected = sums[0];
  EXPECT_EQ(sumOfSquares(g.data(), n), expected);
}

TEST(TrainerTest, WarmupIsLinearThenCosineDecaysToTheFloor) {
  StageRecipe s;
  s.lr = 1e-3;
  s.steps = 110;
  s.warmup = 10;
  s.minLrRatio = 0.1;
  EXPECT_DOUBLE_EQ(s.learningRate(0), 1e-4);
  EXPECT_DOUBLE_EQ(s.learningRate(9), 1e-3);
  EXPECT_DOUBLE_EQ(s.learningRate(10), 1e-3);
  // Halfway through the decay the cosine is at the midpoint of lr and floor.
  EXPECT_NEAR(s.learningRate(60), (1e-3 + 1e-4) / 2, 1e-12);
  EXPECT_NEAR(s.learningRate(110), 1e-4, 1e-12);
  for (int64_t t = 11; t < 110; ++t)
    EXPECT_LE(s.learningRate(t), s.learningRate(t - 1));
}

// lr_rest gives the teacher's other weights (train=all's copies) their own
// peak rate on the stage's schedule; the edited attention keeps lr. Unset,
// every weight follows lr, and the recipe's JSON (a checkpoint's identity)
// is what it was before the field existed.
TEST(TrainerTest, LrRestIsTheTeacherCopiesPeakOnTheSameSchedule) {
  StageRecipe s;
  s.stage = "model";
  s.train = "all";
  s.lr = 3e-3;
  s.steps = 110;
  s.warmup = 10;
  EXPECT_FALSE(s.lrRest);
  for (int64_t t : {0, 5, 10, 60, 110})
    EXPECT_EQ(s.learningRate(t, /*teacherCopy=*/true), s.learningRate(t));
  EXPECT_FALSE(s.toJson().getAsObject()->get("lr_rest"));
  s.lrRest = 1e-3;
  for (int64_t t : {0, 5, 10, 60, 110})
    EXPECT_NEAR(s.learningRate(t, true), s.learningRate(t) / 3, 1e-15) << "step " << t;
  EXPECT_DOUBLE_EQ(s.learningRate(10), 3e-3);
  EXPECT_DOUBLE_EQ(s.learningRate(10, true), 1e-3);
  EXPECT_EQ(s.toJson().getAsObject()->getNumber("lr_rest"), 1e-3);
}

std::string writeTemp(llvm::StringRef text, llvm::StringRef suffix) {
  llvm::SmallString<128> path;
  EXPECT_FALSE(llvm::sys::fs::createTemporaryFile("trainer-test", suffix, path));
  std::error_code ec;
  llvm::raw_fd_ostream os(path, ec);
  os << text;
  return path.str().str();
}

TEST(TrainerTest, RecipeFieldsOverrideDefaultsAndBadFieldsAreNamed) {
  Recipe defaults;
  StageRecipe layerwise;
  defaults.stages = {layerwise};
  std::string good = writeTemp(
      R"({"seed": 7, "batch": 4, "stages": [{"stage": "model", "steps": 3,
          "feature_layers": [0, 2], "feature_weight": 0.5}]})",
      "json");
  auto r = Recipe::parse(good, defaults);
  ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
  EXPECT_EQ(r->seed, 7u);
  EXPECT_EQ(r->batch, 4);
  EXPECT_EQ(r->seqLen, defaults.seqLen);
  ASSERT_EQ(r->stages.size(), 1u);
  EXPECT_EQ(r->stages[0].steps, 3);
  EXPECT_EQ(r->stages[0].lr, layerwise.lr);
  EXPECT_EQ(r->stages[0].buildOptions(),
            "stage=model temperature=1 feature-weight=0.5 train=attention feature-layers=0,2");
  EXPECT_FALSE(r->stages[0].lrRest);
  std::string split = writeTemp(
      R"({"stages": [{"stage": "model", "lr": 3e-3, "train": "all", "lr_rest": 1e-3}]})",
      "json");
  auto r2 = Recipe::parse(split, defaults);
  ASSERT_TRUE(bool(r2)) << llvm::toString(r2.takeError());
  ASSERT_TRUE(r2->stages[0].lrRest);
  EXPECT_EQ(*r2->stages[0].lrRest, 1e-3);
  // A stage listed alone starts from the default stage of its kind, not
  // from the first default (distill's stage 2 alone ran at stage 1's rate).
  Recipe twoStages;
  StageRecipe model;
  model.stage = "model";
  model.lr = 3e-3;
  layerwise.lr = 1e-2;
  twoStages.stages = {layerwise, model};
  auto alone = Recipe::parse(writeTemp(R"({"stages": [{"stage": "model", "steps": 5}]})", "json"),
                             twoStages);
  ASSERT_TRUE(bool(alone)) << llvm::toString(alone.takeError());
  EXPECT_EQ(alone->stages[0].lr, 3e-3);
  EXPECT_EQ(alone->stages[0].steps, 5);

  auto expectError = [&](llvm::StringRef json, llvm::StringRef message) {
    std::string path = writeTemp(json, "json");
    auto bad = Recipe::parse(path, defaults);
    ASSERT_FALSE(bool(bad)) << json.str();
    std::string text = llvm::toString(bad.takeError());
    EXPECT_NE(text.find(path), std::string::npos) << text;
    EXPECT_NE(text.find(message.str()), std::string::npos) << text;
  };
  expectError(R"({"batch": 0})", "field 'batch' must be in [1, 4096]");
  expectError(R"({"btach": 2})", "field 'btach' is not a recipe field");
  expectError(R"({"stages": [{"stage": "lm", "lr": 2}]})", "field 'stages[0].lr' must be in (0, 1)");
  expectError(R"({"stages": [{"stage": "distill"}]})", "field 'stages[0].stage' must be");
  expectError(R"({"stages": [{"steps": "ten"}]})", "field 'stages[0].steps' must be an integer");
  expectError(R"({"stages": [{"steps": 12345678901234567890}]})",
              "field 'stages[0].steps' is 12345678901234567890, outside the 64-bit integers");
  expectError(R"({"batch": 1e300})",
              "field 'batch' is 1.000000e+300, outside the 64-bit integers");
  expectError(R"({"stages": []})", "field 'stages' must list at least one stage");
  expectError(R"({"stages": [{"stage": "model", "lr_rest": 1e-3}]})",
              "field 'stages[0].lr_rest' is the rate of the teacher's other weights, which "
              "only a stage model with train all trains");
  expectError(R"({"stages": [{"stage": "layerwise", "train": "all", "lr_rest": 1e-3}]})",
              "field 'stages[0].train' applies only to stage model, not layerwise");
  // Their defaults, as training_log.json writes every stage's, read back.
  auto logged = Recipe::parse(
      writeTemp(R"({"stages": [{"stage": "layerwise", "temperature": 1, "feature_weight": 0,
                  "train": "attention"}]})",
                "json"),
      defaults);
  EXPECT_TRUE(bool(logged)) << llvm::toString(logged.takeError());
  // Saved by a Windows editor: the byte order mark was "not valid JSON [1:1]".
  auto marked = Recipe::parse(writeTemp("\xEF\xBB\xBF{\"batch\": 2}", "json"), defaults);
  ASSERT_TRUE(bool(marked)) << llvm::toString(marked.takeError());
  EXPECT_EQ(marked->batch, 2);
  expectError(R"({"stages": [{"stage": "lm", "temperature": 2}]})",
              "field 'stages[0].temperature' applies only to stage model, not lm");
  expectError(R"({"stages": [{"stage": "layerwise", "feature_weight": 0.1}]})",
              "field 'stages[0].feature_weight' applies only to stage model, not layerwise");
  expectError(R"({"batch": 2, "lanes": 4})",
              "field 'lanes' is 4, more than the batch's 2 sequences");
  expectError(R"({"stages": [{"stage": "model", "train": "all", "lr_rest": 0}]})",
              "field 'stages[0].lr_rest' must be in (0, 1)");
  expectError(R"({"stages": [{"stage": "model", "train": "all", "lr_rest": "low"}]})",
              "field 'stages[0].lr_rest' must be a number");
  expectError(R"({"stages": [{"stage": "model", "feature_layers": [1, 0, 1], "feature_weight": 0.1}]})",
              "field 'stages[0].feature_layers[2]' repeats layer 1");
  expectError(R"({"stages": [{"stage": "layerwise", "feature_layers": [1]}]})",
              "field 'stages[0].feature_layers' applies only to stage model");
  expectError(R"({"stages": [{"stage": "model", "feature_layers": [1]}]})",
              "field 'stages[0].feature_layers' needs feature_weight > 0");
  expectError(R"({"stages": [{"stage": "model", "feature_weight": 0.5}]})",
              "field 'stages[0].feature_weight' needs feature_layers");
  expectError(R"({"stages": [{"stage": "model", "temperature": 1e-9}]})",
              "field 'stages[0].temperature' must be in [0.001, 100]");
  expectError(R"([1, 2])", "a recipe is a JSON object");
  expectError(R"({"seed": )", "not valid JSON");
}

// Packing visits every chunk once per epoch, in another order each epoch,
// and a sequence is a function of its index alone.
TEST(TrainerTest, PackingCoversEveryChunkOncePerEpoch) {
  std::string text;
  for (int i = 0; i < 40; ++i)
    text += (char)i, text += '\0';
  std::string path = writeTemp(text, "bin");
  auto packed = PackedTokens::load(path, nullptr, std::nullopt, {}, 64, 3, /*seed=*/5, 1.0);
  ASSERT_TRUE(bool(packed)) << llvm::toString(packed.takeError());
  std::set<int32_t> firsts;
  std::vector<int32_t> epoch0, epoch1;
  for (uint64_t i = 0; i < 10; ++i) {
    std::vector<int32_t> seq = (*packed)->sequence(i);
    ASSERT_EQ(seq.size(), 4u);
    EXPECT_EQ(seq[0] % 4, 0);
    for (int k = 1; k < 4; ++k)
      EXPECT_EQ(seq[k], seq[0] + k);
    firsts.insert(seq[0]);
    epoch0.push_back(seq[0]);
    epoch1.push_back((*packed)->sequence(i + 10)[0]);
  }
  EXPECT_EQ(firsts.size(), 10u);
  EXPECT_NE(epoch0, epoch1);
  EXPECT_EQ((*packed)->sequence(3), (*packed)->sequence(3));

  auto tooShort = PackedTokens::load(path, nullptr, std::nullopt, {}, 64, 64, 5, 1.0);
  EXPECT_FALSE(bool(tooShort));
  llvm::consumeError(tooShort.takeError());
  auto outOfVocab = PackedTokens::load(path, nullptr, std::nullopt, {}, 16, 3, 5, 1.0);
  ASSERT_FALSE(bool(outOfVocab));
  EXPECT_NE(llvm::toString(outOfVocab.takeError()).find("outside the model's vocabulary of 16"),
            std::string::npos);
  std::string odd = writeTemp("abc", "bin");
  auto oddSize = PackedTokens::load(odd, nullptr, std::nullopt, {}, 64, 1, 5, 1.0);
  ASSERT_FALSE(bool(oddSize));
  EXPECT_NE(llvm::toString(oddSize.takeError()).find("is odd"), std::string::npos);
  std::string txt = writeTemp("hello", "txt");
  auto noTokenizer = PackedTokens::load(txt, nullptr, std::nullopt, {}, 64, 1, 5, 1.0);
  ASSERT_FALSE(bool(noTokenizer));
  EXPECT_NE(llvm::toString(noTokenizer.takeError()).find("needs the model's tokenizer"),
            std::string::npos);
}

} // namespace

namespace {
/// A one-layer Llama of 16 wide, vocabulary 20, imported from its config
/// alone: parameters without files (they start random).
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>> tinyLlama(mlir::MLIRContext &context) {
  ModelConfig config;
  config.architecture = "LlamaForCausalLM";
  config.hiddenSize = 16;
  config.intermediateSize = 24;
  config.numLayers = 1;
  config.numHeads = 2;
  config.numKvHeads = 1;
  config.headDim = 8;
  config.vocabSize = 20;
  config.maxPositions = 16;
  Checkpoint checkpoint;
  checkpoint.config = config;
  checkpoint.configOnly = true;
  checkpoint.configOnlyDType = DType::F32;
  return importCheckpoint(context, checkpoint);
}

/// @train_step_grad of next-token loss on tinyLlama.
struct TinyLmStep {
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> training;
  mlir::func::FuncOp gradFunc;

  TinyLmStep() {
    auto module = tinyLlama(context);
    EXPECT_TRUE(bool(module)) << llvm::toString(module.takeError());
    auto copy = trainingCopy(**module, "stage=lm");
    EXPECT_TRUE(bool(copy)) << llvm::toString(copy.takeError());
    training = std::move(*copy);
    gradFunc = training->lookupSymbol<mlir::func::FuncOp>("train_step_grad");
  }
};

/// Sequences `count` of `length` tokens; sequence `unsupervised` (if any)
/// has its first target ignored (-1).
std::vector<std::vector<Tensor>> tinyBatch(int count, int length, int unsupervised = -1) {
  std::vector<std::vector<Tensor>> batch;
  for (int b = 0; b < count; ++b) {
    std::vector<int32_t> tokens, targets, positions;
    for (int t = 0; t < length; ++t) {
      tokens.push_back((b * 7 + t * 3) % 20);
      targets.push_back(b == unsupervised && t == 0 ? -1 : (b * 5 + t * 11 + 1) % 20);
      positions.push_back(t);
    }
    batch.push_back({Tensor::ints(tokens), Tensor::ints(positions), Tensor::ints(targets)});
  }
  return batch;
}
} // namespace

namespace {
// A batch's mean gradient does not depend on how many threads computed it.
TEST(TrainerTest, BatchGradientIsTheSameOnOneOrTwoThreads) {
  TinyLmStep step;
  ASSERT_TRUE(step.gradFunc);
  mlir::func::FuncOp gradFunc = step.gradFunc;

  std::vector<std::vector<Tensor>> batch = tinyBatch(7, 6);
  std::vector<std::vector<float>> grads[2];
  double losses[2];
  for (unsigned threads : {1u, 2u}) {
    ParameterStore store;
    auto program = GradientProgram::create(gradFunc, store, /*seed=*/3);
    ASSERT_TRUE(bool(program)) << llvm::toString(program.takeError());
    auto loss = program->computeBatch(batch, threads);
    ASSERT_TRUE(bool(loss)) << llvm::toString(loss.takeError());
    losses[threads - 1] = *loss;
    for (size_t i = 0; i < program->size(); ++i) {
      const Tensor &g = program->gradient(i);
      grads[threads - 1].emplace_back(g.data(), g.data() + g.numel());
    }
  }
  EXPECT_EQ(losses[0], losses[1]);
  EXPECT_EQ(grads[0], grads[1]);
  EXPECT_FALSE(grads[0].empty());
}

// A step's thread count bounds every parallel region in the process, not
// only its lanes: OpenMP's (the compiled loops, the attention kernels,
// AdamW) and OpenBLAS's, which run one lane at a time would otherwise take
// every core.
TEST(TrainerTest, ThreadsBoundOpenMPAndOpenBLAS) {
  TinyLmStep step;
  ASSERT_TRUE(step.gradFunc);
  ParameterStore store;
  auto program = GradientProgram::create(step.gradFunc, store, /*seed=*/3);
  ASSERT_TRUE(bool(program)) << llvm::toString(program.takeError());
  for (unsigned threads : {1u, 2u, 1u}) {
    auto loss = program->computeBatch(tinyBatch(2, 6), threads);
    ASSERT_TRUE(bool(loss)) << llvm::toString(loss.takeError());
    EXPECT_EQ(omp_get_max_threads(), (int)threads);
    EXPECT_EQ(openblas_get_num_threads(), (int)threads);
  }
}
} // namespace

namespace {
// On the compiled backend a lane's sequences run packed in one call (causal
// masks with segments) and give what they give one by one: 6 sequences in
// 1, 2 and 6 lanes; with one sequence less supervised than the others, its
// lane runs unpacked. The interpreter never packs.
TEST(TrainerTest, PackedLanesGiveTheSequencesMeanGradient) {
  TinyLmStep step;
  ASSERT_TRUE(step.gradFunc);
  {
    ParameterStore store;
    auto program = GradientProgram::create(step.gradFunc, store, /*seed=*/3);
    ASSERT_TRUE(bool(program)) << llvm::toString(program.takeError());
    program->setLanes(1);
    auto loss = program->computeBatch(tinyBatch(2, 7), 1);
    ASSERT_TRUE(bool(loss)) << llvm::toString(loss.takeError());
    EXPECT_EQ(program->packedLanes(), 0u);
  }
  ASSERT_FALSE(bool(setDefaultBackend("cpu")));
  struct Restore {
    ~Restore() { llvm::consumeError(setDefaultBackend("reference")); }
  } restore;
  for (int unsupervised : {-1, 4}) {
    std::vector<std::vector<Tensor>> batch = tinyBatch(6, 7, unsupervised);
    std::vector<std::vector<float>> grads[3];
    double losses[3];
    size_t packedLanes[3];
    size_t lanes[3] = {6, 2, 1};
    for (int run = 0; run < 3; ++run) {
      ParameterStore store;
      auto program = GradientProgram::create(step.gradFunc, store, /*seed=*/3);
      ASSERT_TRUE(bool(program)) << llvm::toString(program.takeError());
      program->setLanes(lanes[run]);
      auto loss = program->computeBatch(batch, 1);
      ASSERT_TRUE(bool(loss)) << llvm::toString(loss.takeError());
      losses[run] = *loss;
      packedLanes[run] = program->packedLanes();
      for (size_t i = 0; i < program->size(); ++i) {
        const Tensor &g = program->gradient(i);
        grads[run].emplace_back(g.data(), g.data() + g.numel());
      }
    }
    EXPECT_EQ(packedLanes[0], 0u);
    EXPECT_EQ(packedLanes[1], unsupervised < 0 ? 2u : 1u); // sequence 4 is in lane 0
    EXPECT_EQ(packedLanes[2], unsupervised < 0 ? 1u : 0u);
    for (int run = 1; run < 3; ++run) {
      EXPECT_NEAR(losses[run], losses[0], 1e-6 * std::abs(losses[0])) << lanes[run] << " lanes";
      ASSERT_EQ(grads[run].size(), grads[0].size());
      for (size_t i = 0; i < grads[0].size(); ++i) {
        float scale = 0;
        for (float g : grads[0][i])
          scale = std::max(scale, std::abs(g));
        for (size_t j = 0; j < grads[0][i].size(); ++j)
          ASSERT_NEAR(grads[run][i][j], grads[0][i][j], 1e-5f * scale)
              << "gradient " << i << " element " << j << ", " << lanes[run] << " lanes";
      }
    }
  }
}
} // namespace

namespace {
// A value the store holds for a trainable parameter (a checkpoint's) must
// have the parameter's shape: issue 8 found a mismatch silently replaced by
// a random initialisation.
TEST(TrainerTest, StoredValueOfAnotherShapeIsAnErrorNotARandomStart) {
  TinyLmStep step;
  ASSERT_TRUE(step.gradFunc);
  mlir::func::FuncOp gradFunc = step.gradFunc;
  ParameterStore store;
  store.set("model.norm.weight", Tensor::zeros({8}));
  auto program = GradientProgram::create(gradFunc, store, /*seed=*/3);
  ASSERT_FALSE(bool(program));
  std::string message = llvm::toString(program.takeError());
  EXPECT_NE(message.find("trainable parameter 'model.norm.weight'"), std::string::npos)
      << message;
  EXPECT_NE(message.find("[8]"), std::string::npos) << message;
}
} // namespace

namespace {
// feature_layers entries are checked against the model's layers before a
// job starts, naming the recipe, the entry and the range: an entry past the
// last layer was found only inside the pass pipeline, after the job had
// written its work directory.
TEST(TrainerTest, FeatureLayersOutsideTheModelAreNamed) {
  Recipe defaults;
  defaults.stages = {StageRecipe()};
  std::string path =
      writeTemp(R"({"stages": [{"stage": "model", "feature_layers": [0, 5], "feature_weight": 0.1}]})", "json");
  auto r = Recipe::parse(path, defaults);
  ASSERT_TRUE(bool(r)) << llvm::toString(r.takeError());
  if (llvm::Error e = r->validateForModel(6))
    ADD_FAILURE() << llvm::toString(std::move(e));
  EXPECT_EQ(llvm::toString(r->validateForModel(5)),
            path + ": field 'stages[0].feature_layers[1]' is 5; the model has 5 layers, so "
                   "it must be in [0, 5)");
  defaults.stages[0].featureLayers = {-1};
  EXPECT_EQ(llvm::toString(defaults.validateForModel(5)),
            "the default recipe: field 'stages[0].feature_layers[0]' is -1; the model has 5 "
            "layers, so it must be in [0, 5)");
}

// A failing build-distill's error reaches trainingCopy's caller: the pass
// once kept its teacher parser's diagnostic handler installed, which
// printed its own errors (with the whole module) to stderr and left the
// returned error ending in "failed: " with no reason.
TEST(TrainerTest, TrainingCopyErrorsCarryThePassMessage) {
  mlir::MLIRContext context;
  auto module = tinyLlama(context);
  ASSERT_TRUE(bool(module)) << llvm::toString(module.takeError());
  auto raised = raisedCopy(**module);
  ASSERT_TRUE(bool(raised)) << llvm::toString(raised.takeError());
  std::string teacher = writeTemp("", "mlir");
  if (llvm::Error e = writeModule(**raised, teacher))
    FAIL() << llvm::toString(std::move(e));
  auto copy = trainingCopy(**raised, "stage=model feature-layers=3 feature-weight=0.1 teacher=\"" +
                                         teacher + "\"");
  ASSERT_FALSE(bool(copy));
  std::string message = llvm::toString(copy.takeError());
  EXPECT_NE(message.find("attnedit-build-distill: feature layer 3 is out of range"),
            std::string::npos)
      << message;
}
} // namespace
