//===- RecallDemo.cpp - the embedded end-to-end demonstration --------------===//
//
// Everything here goes through the same jobs a user runs: `pretrain` for the
// teacher, `distill` for each student, exported directories loaded back with
// Model::load for the evaluation.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Importer.h"
#include "attnedit/Runtime/Training/Distiller.h"
#include "attnedit/Runtime/Training/Evaluation.h"
#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Runtime/Training/RecallTask.h"
#include "attnedit/Runtime/Training/ProcessGroup.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <spdlog/spdlog.h>

#include <cmath>

using namespace mlir;
using namespace mlir::attnedit;
namespace json = llvm::json;

RecallTask::Sample RecallSequences::sample(uint64_t index) const {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + index);
  return task.sample(rng);
}

std::vector<int32_t> RecallSequences::sequence(uint64_t index) { return sample(index).tokens; }

llvm::Error RecallTask::writeTokenizer(llvm::StringRef path) const {
  std::vector<std::string> pieces = {"<s>", " ."};
  for (int64_t k = 0; k < numKeys; ++k)
    pieces.push_back(" K" + std::to_string(k));
  for (int64_t v = 0; v < numValues; ++v)
    pieces.push_back(" V" + std::to_string(v));
  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    auto i32 = [&](int32_t x) { os.write(reinterpret_cast<const char *>(&x), 4); };
    int32_t longest = 0;
    for (const std::string &p : pieces)
      longest = std::max<int32_t>(longest, p.size());
    i32(longest);
    for (const std::string &p : pieces) {
      float score = 0;
      os.write(reinterpret_cast<const char *>(&score), 4);
      i32(p.size());
      os << p;
    }
  });
}

llvm::json::Value RecallSequences::identity() const {
  return llvm::json::Object{{"task", "recall"},
                            {"keys", task.numKeys},
                            {"values", task.numValues},
                            {"pairs", task.pairs},
                            {"gap", task.gap},
                            {"seed", (int64_t)seed}};
}

std::vector<int32_t> RecallSequences::targets(uint64_t index,
                                              const std::vector<int32_t> &tokens) {
  std::vector<int32_t> targets(tokens.size() - 1, -1);
  for (int64_t q : sample(index).queryPositions)
    targets[q] = tokens[q + 1];
  return targets;
}

llvm::Expected<RecallScore> attnedit::scoreRecall(Model &teacher, Model &model,
                                                  const RecallTask &task, uint64_t heldOutSeed,
                                                  int64_t samples) {
  RecallScore score;
  int64_t hits = 0, positions = 0;
  double kl = 0;
  for (int64_t s = 0; s < samples; ++s) {
    std::mt19937_64 rng(heldOutSeed + s);
    RecallTask::Sample sample = task.sample(rng);
    auto logits = model.forward(sample.tokens);
    if (!logits)
      return logits.takeError();
    int64_t vocab = logits->dim(1);
    for (int64_t q : sample.queryPositions) {
      const float *row = logits->data() + q * vocab;
      hits += std::max_element(row, row + vocab) - row == sample.tokens[q + 1];
      ++score.queries;
    }
    if (&model == &teacher)
      continue;
    auto cmp = compareNextToken(teacher, model, sample.tokens, sample.tokens.size());
    if (!cmp)
      return cmp.takeError();
    kl += cmp->kl * cmp->positions;
    positions += cmp->positions;
  }
  score.recall = score.queries ? (double)hits / score.queries : 0;
  score.kl = positions ? kl / positions : 0;
  return score;
}

namespace {

struct Row {
  std::string name;
  double recall = 0, kl = 0, seconds = 0;
  int64_t kvBytesAtLength = 0;
};

llvm::Error evaluateRecall(Model &teacher, Model &model, const RecallTask &task,
                           uint64_t seed, int64_t samples, Row &row) {
  auto score = scoreRecall(teacher, model, task, seed, samples);
  if (!score)
    return score.takeError();
  row.recall = score->recall;
  row.kl = score->kl;
  row.kvBytesAtLength = kvCacheBytes(model.module(), task.sequenceLength());
  return llvm::Error::success();
}

Recipe recipe(uint64_t seed, int64_t seqLen, std::vector<StageRecipe> stages) {
  Recipe r;
  r.seed = seed;
  r.batch = 16;
  r.seqLen = seqLen;
  r.checkpointEvery = 100;
  r.stages = std::move(stages);
  return r;
}

StageRecipe stage(llvm::StringRef kind, int64_t steps, double lr, double scale) {
  StageRecipe s;
  s.stage = kind.str();
  s.steps = std::max<int64_t>(1, std::llround(steps * scale));
  s.lr = lr;
  s.warmup = std::max<int64_t>(1, s.steps / 20);
  s.weightDecay = kind == "lm" ? 0.1 : 0.0;
  return s;
}

} // namespace

llvm::Error attnedit::runRecallDemo(const RecallDemoOptions &options) {
  if (!(options.scale > 0 && options.scale <= 100))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "demo: --scale must be in (0, 100]");
  RecallTask task; // 8 pairs, then 24 fillers, then the 8 queries
  int64_t seqLen = task.sequenceLength() - 1;
  int64_t window = 8; // < the 24 + tokens between a pair and its query

  // The teacher: a 2-layer GQA Llama (4 query heads sharing 2 KV heads).
  ModelConfig config;
  config.architecture = "LlamaForCausalLM";
  config.hiddenSize = 64;
  config.intermediateSize = 128;
  config.numLayers = 2;
  config.numHeads = 4;
  config.numKvHeads = 2;
  config.headDim = 16;
  config.vocabSize = task.vocabSize();
  config.maxPositions = task.sequenceLength();
  config.rmsNormEps = 1e-5;
  config.bosTokenId = 0;
  Checkpoint checkpoint;
  checkpoint.source = "recall-teacher";
  checkpoint.config = config;
  checkpoint.configOnly = true;
  checkpoint.configOnlyDType = DType::F32;
  // The task's vocabulary travels with every model directory the demo writes.
  llvm::SmallString<256> tokenizer(joinPath(options.outDir, "recall-tokenizer.bin"));
  llvm::sys::fs::make_absolute(tokenizer);
  if (std::error_code ec = createOutputDirectories(options.outDir))
    return llvm::createStringError(ec, "%s: cannot create: %s", options.outDir.c_str(),
                                   ec.message().c_str());
  // Under mpirun, rank 0 writes and evaluates; every rank trains.
  ProcessGroup *group = processGroup();
  bool writer = !group || group->rank() == 0;
  if (writer)
    if (llvm::Error e = task.writeTokenizer(tokenizer))
      return e;
  if (group)
    if (llvm::Error e = group->barrier())
      return e;
  checkpoint.tokenizerPath = tokenizer.str().str();
  MLIRContext context;
  auto module = importCheckpoint(context, checkpoint);
  if (!module)
    return module.takeError();

  std::string teacherDir = joinPath(options.outDir, "teacher");
  RecallSequences data(task, options.seed);
  std::vector<Row> rows;
  spdlog::info("demo: training the teacher ({}) on multi-query associative recall",
               teacherDir);
  JobOptions teacherJob{teacherDir,
                        recipe(options.seed, seqLen, {stage("lm", 1500, 3e-3, options.scale)}),
                        options.resume};
  if (llvm::Error e = pretrain(**module, data, teacherJob))
    return e;
  rows.push_back({"teacher (GQA)"});

  auto teacher = Model::load(teacherDir);
  if (!teacher)
    return teacher.takeError();
  struct Student {
    const char *name, *dir;
    std::string edit;
  };
  Student students[] = {
      {"MLA (svd init)", "mla", "target=mla kv-lora-rank=16 qk-rope-head-dim=8 init=svd"},
      {"GateSWA", "gateswa",
       llvm::formatv("target=gate-swa window={0} full-layers=0 gate=headwise sinks=true",
                     window)
           .str()},
  };
  for (const Student &s : students) {
    spdlog::info("demo: distilling {} ({})", s.name, s.edit);
    JobOptions job{joinPath(options.outDir, s.dir),
                   recipe(options.seed + 1, seqLen,
                          {stage("layerwise", 300, 3e-3, options.scale),
                           stage("model", 600, 1e-3, options.scale)}),
                   options.resume};
    if (llvm::Error e = distill(**teacher, s.edit, data, job))
      return e;
    rows.push_back({s.name});
  }

  if (!writer)
    return llvm::Error::success();
  // Held-out samples come from another seed than any training sequence.
  uint64_t heldOut = recallHeldOutSeed(options.seed);
  const char *dirs[] = {"teacher", "mla", "gateswa"};
  json::Array report;
  for (auto [row, dir] : llvm::zip(rows, dirs)) {
    auto model = Model::load(joinPath(options.outDir, dir));
    if (!model)
      return model.takeError();
    // The job's log adds up its runs: a resumed demo reports them all.
    auto seconds = trainSeconds(joinPath(options.outDir, dir));
    if (!seconds)
      return seconds.takeError();
    row.seconds = *seconds;
    if (llvm::Error e = evaluateRecall(**teacher, **model, task, heldOut, 200, row))
      return e;
    report.push_back(json::Object{{"model", row.name},
                                  {"dir", joinPath(options.outDir, dir)},
                                  {"recall_accuracy", row.recall},
                                  {"kl_to_teacher", row.kl},
                                  {"kv_bytes_per_token",
                                   double(row.kvBytesAtLength) / task.sequenceLength()},
                                  {"kv_bytes_at_sequence_length", row.kvBytesAtLength},
                                  {"train_seconds", row.seconds}});
  }

  llvm::outs() << llvm::formatv("\nmulti-query associative recall: {0} pairs, {1} filler tokens "
                                "between the pairs and their queries, window {2}\n",
                                task.pairs, task.gap, window)
               << llvm::formatv("{0,-16} {1,8} {2,10} {3,12} {4,14} {5,9}\n", "model", "recall",
                                "KL(t||s)", "KV B/token",
                                llvm::formatv("KV B@{0} tok", task.sequenceLength()).str(),
                                "train s");
  for (const Row &r : rows)
    llvm::outs() << llvm::formatv("{0,-16} {1,8:P1} {2,10:F4} {3,12:F1} {4,14} {5,9:F1}\n",
                                  r.name, r.recall, r.kl,
                                  double(r.kvBytesAtLength) / task.sequenceLength(),
                                  r.kvBytesAtLength, r.seconds);
  llvm::outs() << "(bf16 KV cache over all layers, per token at the sequence's length; recall "
                  "= share of queries whose value is the model's top next token, on 200 held-out "
                  "sequences)\n";
  std::string reportPath = joinPath(options.outDir, "demo_report.json");
  if (llvm::Error e = writeFileAtomically(
          reportPath, llvm::formatv("{0:2}\n", json::Value(std::move(report))).str()))
    return e;
  llvm::outs() << "report: " << reportPath << "\n";
  return llvm::Error::success();
}
