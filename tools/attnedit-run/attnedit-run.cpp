//===- attnedit-run.cpp - run attnedit models ------------------------------===//
//
//   attnedit-run generate MODEL (--prompt TEXT [--tokenizer F] | --tokens 1,2,3)
//                         --max-tokens N --temperature T --top-k K --top-p P --seed S
//                         --repetition-penalty R --stop TEXT [--no-kv-cache]
//   attnedit-run forward MODEL --tokens 1,2,3 --logits-out FILE.npy
//   attnedit-run eval --teacher MODEL --student MODEL --data TEXT [--json-out F]
//   attnedit-run grad MODULE --tokens 1,2,3 --out-dir DIR [--func train_step_grad]
//   attnedit-run distill --teacher MODEL --edit "<pass options>" --data DATA --out DIR
//   attnedit-run train --config config.json --data DATA --out DIR
//   mpirun -np N attnedit-run distill|train|demo ...   (data-parallel, README)
//   attnedit-run demo --out DIR
//   attnedit-run tokenize [MODEL] [--tokenizer T] --text TEXT [--pieces]
//   attnedit-run detokenize [MODEL] [--tokenizer T] --ids 1,2,3
//   attnedit-run export MODULE.mlir --out DIR
//   attnedit-run convert --teacher MODEL --edit "<pass options>" --out DIR
//   attnedit-run sample MODEL --count N --out FILE [--temperature --top-k --top-p --seed
//                       --max-batch B --checkpoint-every N --resume]
//   attnedit-run serve MODEL [--port N] [--host H] [--model-name NAME]
//   attnedit-run bench-serve MODEL --concurrency C --prompt-len P --gen-len G [--json-out F]
//
// MODEL is a Hugging Face directory, a llama2.c .bin or an attnedit .mlir.
//
//===----------------------------------------------------------------------===//

#include "ToolVersion.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/Importer.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/Frontend/ModelConfig.h"
#include "attnedit/Frontend/WeightFile.h"
#include "attnedit/Runtime/Training/Distiller.h"
#include "attnedit/Runtime/Training/Evaluation.h"
#include "attnedit/Runtime/Training/Calibration.h"
#include "attnedit/Runtime/Training/Checkpoint.h"
#include "attnedit/Runtime/Training/Planner.h"
#include "attnedit/Runtime/Training/ProcessGroup.h"
#include "attnedit/Runtime/Execution/BlasSetup.h"
#include "attnedit/Runtime/Execution/Logging.h"
#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Runtime/Inference/Decoder.h"
#include "attnedit/Runtime/Inference/Generation.h"
#include "attnedit/Runtime/Inference/Scheduler.h"
#include "attnedit/Runtime/Inference/ServeBench.h"
#include "attnedit/Runtime/Inference/Server.h"
#include "attnedit/Runtime/Training/RecallTask.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace cl = llvm::cl;
using namespace mlir;
using namespace mlir::attnedit;

// --help lists these only (not the LLVM backend's options).
static cl::OptionCategory attneditOptions("attnedit-run options");

static cl::SubCommand generateCmd("generate", "sample text or tokens from a model");
static cl::SubCommand forwardCmd("forward", "write the logits of a token sequence");
static cl::SubCommand evalCmd("eval",
                              "perplexity of a model on held-out data; with --student, also "
                              "next-token KL, top-1 agreement and KV bytes against the teacher");

static cl::SubCommand gradCmd("grad", "write the loss and gradients of a training step "
                                     "(--attnedit-autodiff output) as .npy files");

static cl::SubCommand distillCmd("distill",
                                  "edit a teacher's attention and distil the student: "
                                  "layer-wise MSE, then model-level KL");
static cl::SubCommand trainCmd("train", "train a model from scratch on next-token loss");
// Every subcommand runs its functions through the executor this names:
// compiled code unless told otherwise (README "CPU backend": prefill about
// 2x the interpreter, a training step 1.5-2x).
static cl::opt<std::string> backendName(
    "backend", cl::desc("how functions run: cpu (compiled, backends/cpu; the default), "
                        "reference (the interpreter, the oracle) or ascend-sim (Ascend "
                        "kernels in the functional simulator, backends/ascend)"),
    cl::init(""), cl::sub(cl::SubCommand::getAll()), cl::cat(attneditOptions));
static cl::opt<std::string> ascendTarget(
    "ascend-target", cl::desc("--backend=ascend-sim: target description, a built-in name "
                              "(910b, 910a) or a .json path (default 910b)"),
    cl::init("910b"), cl::sub(cl::SubCommand::getAll()), cl::cat(attneditOptions));
static cl::opt<std::string> ascendDtype(
    "ascend-dtype", cl::desc("--backend=ascend-sim: Cube operand type, bf16, f16 or f32 "
                             "(default bf16)"),
    cl::init("bf16"), cl::sub(cl::SubCommand::getAll()), cl::cat(attneditOptions));

static cl::SubCommand demoCmd("demo", "the embedded demonstration: a recall teacher trained "
                                      "from scratch, converted to MLA and GateSWA, distilled");

static cl::SubCommand tokenizeCmd("tokenize", "text to token ids (and pieces)");
static cl::SubCommand detokenizeCmd("detokenize", "token ids to text");
static cl::SubCommand exportCmd("export", "write what a module's @forward computes as a "
                                          "loadable model directory");
static cl::SubCommand convertCmd("convert", "import, raise, edit and export, no training: the "
                                            "warm start as a model directory");
static cl::SubCommand sampleCmd("sample", "write N texts generated by a model (data for "
                                          "distilling it)");

static cl::SubCommand serveCmd("serve", "an OpenAI-compatible HTTP server (/v1/completions, "
                                        "/v1/chat/completions, /v1/models, /health, /metrics)");
static cl::SubCommand benchServeCmd("bench-serve",
                                    "time to first token, inter-token latency, decode tok/s and "
                                    "peak KV memory of C concurrent requests");

static cl::opt<std::string> modelPath(cl::Positional, cl::Required,
                                      cl::desc("<HF dir | llama2.c .bin | .mlir>"),
                                      cl::sub(generateCmd), cl::sub(forwardCmd),
                                      cl::sub(gradCmd), cl::sub(exportCmd), cl::sub(sampleCmd),
                                      cl::sub(serveCmd), cl::sub(benchServeCmd), cl::cat(attneditOptions));
static cl::opt<std::string> optionalModel(cl::Positional, cl::Optional,
                                          cl::desc("[HF dir | llama2.c .bin | .mlir]"),
                                          cl::sub(tokenizeCmd), cl::sub(detokenizeCmd),
                                          cl::sub(evalCmd), cl::cat(attneditOptions));
static cl::opt<std::string> textArg("text", cl::desc("the text to tokenize"),
                                    cl::sub(tokenizeCmd), cl::cat(attneditOptions));
static cl::opt<bool> showPieces("pieces", cl::desc("also print each id's piece"),
                                cl::sub(tokenizeCmd), cl::cat(attneditOptions));
static cl::opt<std::string> idsArg("ids", cl::desc("comma-separated token ids"),
                                   cl::sub(detokenizeCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> sampleCount("count", cl::desc("how many texts (default 100)"),
                                    cl::init(100), cl::sub(sampleCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> sampleCheckpointEvery(
    "checkpoint-every",
    cl::desc("save the finished samples every N of them to FILE.partial, which --resume "
             "continues (default 1000)"),
    cl::init(1000), cl::sub(sampleCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> topK("top-k", cl::desc("sample among the k likeliest tokens; 0 = all "
                                               "(default 0)"),
                             cl::init(0), cl::sub(generateCmd), cl::sub(sampleCmd), cl::cat(attneditOptions));
static cl::opt<double> topP("top-p", cl::desc("nucleus: the fewest tokens whose mass reaches p "
                                              "(default 1)"),
                            cl::init(1.0), cl::sub(generateCmd), cl::sub(sampleCmd), cl::cat(attneditOptions));
static cl::opt<std::string> gradFunc("func", cl::desc("the gradient function"),
                                     cl::init("train_step_grad"), cl::sub(gradCmd), cl::cat(attneditOptions));
static cl::opt<std::string> outDir("out-dir", cl::desc("directory for the .npy files"),
                                   cl::sub(gradCmd), cl::cat(attneditOptions));
static cl::opt<bool> mlaAbsorbed("mla-absorbed",
                                 cl::desc("run MLA in its absorbed (latent-space) form"),
                                 cl::sub(generateCmd), cl::sub(forwardCmd),
                                 cl::sub(evalCmd), cl::cat(attneditOptions));
static cl::opt<std::string> teacherPath("teacher", cl::desc("the teacher model"),
                                        cl::sub(evalCmd), cl::sub(distillCmd),
                                        cl::sub(convertCmd), cl::cat(attneditOptions));
static cl::opt<std::string> editOptions("edit",
                                        cl::desc("options of --attnedit-edit-attention, e.g. "
                                                 "\"target=mla kv-lora-rank=16 init=svd\""),
                                        cl::sub(distillCmd), cl::sub(convertCmd), cl::cat(attneditOptions));
static cl::opt<std::string> configPath("config",
                                       cl::desc("HF config.json giving the model's shape"),
                                       cl::sub(trainCmd), cl::cat(attneditOptions));
static cl::opt<std::string> outPath("out", cl::desc("output model directory"),
                                    cl::sub(distillCmd), cl::sub(trainCmd), cl::sub(demoCmd),
                                    cl::sub(exportCmd), cl::sub(convertCmd), cl::cat(attneditOptions));
static cl::opt<std::string> sampleOut("out", cl::desc("the file of samples: .bin = uint16 ids, "
                                                      "anything else text"),
                                      cl::sub(sampleCmd), cl::cat(attneditOptions));
static cl::opt<std::string> recipePath("recipe", cl::desc("recipe.json (stages, steps, lr, ...)"),
                                       cl::sub(distillCmd), cl::sub(trainCmd), cl::cat(attneditOptions));
static cl::opt<bool> resume("resume", cl::desc("continue from the last checkpoint in --out "
                                                "(sample: --out's FILE.partial)"),
                            cl::sub(distillCmd), cl::sub(trainCmd), cl::sub(demoCmd),
                            cl::sub(sampleCmd), cl::cat(attneditOptions));
static cl::opt<unsigned> trainThreads("threads",
                                      cl::desc("threads per process computing a batch (default: "
                                               "the cores, shared among mpirun's ranks)"),
                                      cl::init(0), cl::sub(distillCmd), cl::sub(trainCmd),
                                      cl::cat(attneditOptions));
static cl::opt<double> dataUntil("data-until",
                                 cl::desc("train on the data before this fraction of it "
                                          "(default 0.9: eval's held-out tail stays unseen)"),
                                 cl::init(0.9), cl::sub(distillCmd), cl::sub(trainCmd), cl::cat(attneditOptions));
static cl::opt<uint64_t> demoSeed("seed", cl::desc("seed of the data and initialisation"),
                                  cl::init(0), cl::sub(demoCmd), cl::cat(attneditOptions));
static cl::opt<double> demoScale("scale", cl::desc("multiplies every stage's steps"),
                                 cl::init(1.0), cl::sub(demoCmd), cl::cat(attneditOptions));
static cl::opt<std::string> studentPath("student", cl::desc("the student model"),
                                        cl::sub(evalCmd), cl::cat(attneditOptions));
static cl::opt<std::string> textPath("data",
                                     cl::desc("text (encoded with the model's tokenizer), or a "
                                              ".bin of uint16 token ids"),
                                     cl::sub(evalCmd), cl::sub(distillCmd), cl::sub(trainCmd), cl::cat(attneditOptions));
static cl::opt<std::string> taskArg("task",
                                    cl::desc("multiple-choice: score --data as JSONL questions "
                                             "(question, choices, answer); recall: the demo's "
                                             "associative-recall task (no --data)"),
                                    cl::sub(evalCmd), cl::cat(attneditOptions));
static cl::opt<uint64_t> recallSeed("recall-seed",
                                    cl::desc("--task recall: the task seed whose held-out "
                                             "sequences are scored (default 0)"),
                                    cl::init(0), cl::sub(evalCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> recallSamples("recall-samples",
                                      cl::desc("--task recall: held-out sequences (default 200)"),
                                      cl::init(200), cl::sub(evalCmd), cl::cat(attneditOptions));
static cl::opt<double> textFrom("data-from",
                                cl::desc("score the data's tokens from this fraction on (the "
                                         "held-out tail that training leaves; default 0.9)"),
                                cl::init(0.9), cl::sub(evalCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> maxPositions("max-positions",
                                     cl::desc("compare at most this many tokens (default 2048)"),
                                     cl::init(2048), cl::sub(evalCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> window("window",
                               cl::desc("tokens per forward pass, at most the models' context "
                                        "(default 256, or the context if shorter)"),
                               cl::init(256), cl::sub(evalCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> kvContext("kv-context",
                                  cl::desc("report KV-cache bytes at this many tokens "
                                           "(default: the teacher's context length)"),
                                  cl::init(0), cl::sub(evalCmd), cl::cat(attneditOptions));
static cl::opt<std::string> jsonOut("json-out", cl::desc("also write the report as JSON"),
                                    cl::sub(evalCmd), cl::sub(benchServeCmd), cl::cat(attneditOptions));
static cl::opt<std::string> tokensArg("tokens", cl::desc("comma-separated token ids"),
                                      cl::sub(generateCmd), cl::sub(forwardCmd),
                                      cl::sub(gradCmd), cl::cat(attneditOptions));
static cl::opt<std::string> prompt("prompt", cl::desc("text to continue"), cl::sub(generateCmd), cl::cat(attneditOptions));
static cl::opt<std::string> tokenizerPath("tokenizer",
                                          cl::desc("tokenizer.json or llama2.c tok.bin (default: "
                                                   "the one beside the model)"),
                                          cl::sub(generateCmd), cl::sub(trainCmd),
                                          cl::sub(tokenizeCmd), cl::sub(detokenizeCmd),
                                          cl::sub(sampleCmd), cl::sub(exportCmd),
                                          cl::sub(convertCmd), cl::sub(evalCmd),
                                          cl::sub(distillCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> maxTokens("max-tokens", cl::desc("new tokens at most (default 256)"),
                                  cl::init(256), cl::sub(generateCmd), cl::sub(sampleCmd), cl::cat(attneditOptions));
static cl::opt<double> temperature("temperature", cl::desc("0 = greedy (default 1)"),
                                   cl::init(1.0), cl::sub(generateCmd), cl::sub(sampleCmd), cl::cat(attneditOptions));
static cl::opt<uint64_t> seed("seed", cl::desc("sampling seed (default 0)"), cl::init(0),
                              cl::sub(generateCmd), cl::sub(sampleCmd), cl::cat(attneditOptions));
static cl::opt<double> repetitionPenalty("repetition-penalty",
                                         cl::desc("> 1 discourages tokens already in the "
                                                  "context (default 1 = off)"),
                                         cl::init(1.0), cl::sub(generateCmd), cl::sub(sampleCmd),
                                         cl::cat(attneditOptions));
static cl::list<std::string> stopStrings("stop",
                                         cl::desc("stop before the text contains this "
                                                  "(repeatable)"),
                                         cl::sub(generateCmd), cl::cat(attneditOptions));
static cl::opt<bool> noKvCache("no-kv-cache",
                               cl::desc("recompute the whole prefix for every token instead "
                                        "of prefill + decode over a KV cache"),
                               cl::sub(generateCmd), cl::cat(attneditOptions));
// serve and bench-serve
static cl::opt<std::string> serveHost("host", cl::desc("address to listen on (default 127.0.0.1)"),
                                      cl::init("127.0.0.1"), cl::sub(serveCmd), cl::cat(attneditOptions));
static cl::opt<int> servePort("port", cl::desc("TCP port; 0 = any free one (default 8080)"),
                              cl::init(8080), cl::sub(serveCmd), cl::cat(attneditOptions));
static cl::opt<std::string> portFile("port-file",
                                     cl::desc("write the bound port here once listening"),
                                     cl::sub(serveCmd), cl::cat(attneditOptions));
static cl::opt<std::string> modelName("model-name",
                                      cl::desc("the model id clients ask for (default: the "
                                               "model path's file name)"),
                                      cl::sub(serveCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> maxBatch("max-batch", cl::desc("sequences decoded together (default 32)"),
                                 cl::init(32), cl::sub(serveCmd), cl::sub(benchServeCmd),
                                 cl::sub(sampleCmd),
                                 cl::cat(attneditOptions));
static cl::opt<int64_t> prefillBudget("prefill-budget",
                                      cl::desc("prompt tokens prefilled per scheduler step "
                                               "(chunked prefill; default 256)"),
                                      cl::init(256), cl::sub(serveCmd), cl::sub(benchServeCmd),
                                      cl::cat(attneditOptions));
static cl::opt<int64_t> blockSize("block-size", cl::desc("tokens per KV-cache block (default 16)"),
                                  cl::init(16), cl::sub(serveCmd), cl::sub(benchServeCmd),
                                  cl::cat(attneditOptions));
static cl::opt<int64_t> maxChunk("max-chunk",
                                 cl::desc("prompt tokens per @prefill call (default 64)"),
                                 cl::init(64), cl::sub(serveCmd), cl::sub(benchServeCmd),
                                 cl::cat(attneditOptions));
static cl::opt<int64_t> kvBlocks("kv-blocks",
                                 cl::desc("cap on KV-cache blocks per cache group (default 0 = "
                                          "grow as needed)"),
                                 cl::init(0), cl::sub(serveCmd), cl::sub(benchServeCmd),
                                 cl::cat(attneditOptions));
static cl::opt<int64_t> concurrency("concurrency", cl::desc("concurrent requests (default 1)"),
                                    cl::init(1), cl::sub(benchServeCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> promptLen("prompt-len", cl::desc("prompt tokens per request (default 128)"),
                                  cl::init(128), cl::sub(benchServeCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> genLen("gen-len", cl::desc("generated tokens per request (default 128)"),
                               cl::init(128), cl::sub(benchServeCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> uncachedTokens("uncached-tokens",
                                       cl::desc("also decode this many tokens of one sequence "
                                                "without the KV cache (default 0 = skip)"),
                                       cl::init(0), cl::sub(benchServeCmd), cl::cat(attneditOptions));
static cl::opt<bool> kvOnly("kv-only",
                            cl::desc("only walk the KV pool's block allocations to the "
                                     "context (memory at long contexts; no model calls)"),
                            cl::sub(benchServeCmd), cl::cat(attneditOptions));
static cl::opt<std::string> logitsOut("logits-out", cl::desc("float32 .npy of shape [T, vocab]"),
                                      cl::sub(forwardCmd), cl::cat(attneditOptions));

static llvm::Error usage(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg.str());
}

/// Comma-separated ids from `option` (--tokens or --ids), each in the
/// vocabulary.
static llvm::Expected<std::vector<int32_t>> parseTokens(llvm::StringRef text, int64_t vocab,
                                                        llvm::StringRef option = "--tokens") {
  std::vector<int32_t> ids;
  if (text.trim().empty())
    return usage(option + ": no token ids given");
  llvm::SmallVector<llvm::StringRef> parts;
  text.split(parts, ',');
  for (llvm::StringRef part : parts) {
    int64_t id;
    if (part.trim().getAsInteger(10, id))
      return usage(option + ": '" + part + "' is not a token id");
    if (id < 0 || id >= vocab)
      return usage(option + ": id " + llvm::Twine(id) + " is outside the vocabulary [0, " +
                   llvm::Twine(vocab) + ")");
    ids.push_back((int32_t)id);
  }
  return ids;
}

/// Prints a piece as run.c's safe_printf does: lone control bytes are dropped.
static void printPiece(llvm::StringRef piece) {
  if (piece.size() == 1 && (unsigned char)piece[0] < 0x20 && !llvm::isSpace(piece[0]))
    return;
  llvm::outs() << piece;
  llvm::outs().flush();
}

/// --max-tokens, --temperature, --top-k, --top-p and --seed, checked.
static llvm::Expected<GenerationOptions> samplingOptions() {
  if (maxTokens < 0 || maxTokens > kMaxConfigSize)
    return usage(llvm::formatv("--max-tokens must be in [0, {0}]", kMaxConfigSize).str());
  if (!(temperature >= 0 && temperature <= 100))
    return usage("--temperature must be in [0, 100] (0 = greedy)");
  if (topK < 0 || topK > kMaxConfigSize)
    return usage(llvm::formatv("--top-k must be in [0, {0}] (0 = all)", kMaxConfigSize).str());
  if (!(topP > 0 && topP <= 1))
    return usage("--top-p must be in (0, 1]");
  if (!(repetitionPenalty > 0 && repetitionPenalty <= 100))
    return usage("--repetition-penalty must be in (0, 100] (1 = off)");
  GenerationOptions options;
  options.maxTokens = maxTokens;
  options.temperature = temperature;
  options.seed = seed;
  options.topK = topK;
  options.topP = topP;
  options.repetitionPenalty = repetitionPenalty;
  options.stopStrings.assign(stopStrings.begin(), stopStrings.end());
  options.useCache = !noKvCache;
  return options;
}

static llvm::Error runGenerate(Model &model) {
  auto sampling = samplingOptions();
  if (!sampling)
    return sampling.takeError();
  if (!tokensArg.empty() && !prompt.empty())
    return usage("give either --prompt or --tokens, not both");
  llvm::Expected<const Tokenizer *> loaded = model.tokenizer();
  if (!loaded)
    return loaded.takeError();
  const Tokenizer *tok = *loaded;
  std::vector<int32_t> ids;
  if (!tokensArg.empty()) {
    auto parsed = parseTokens(tokensArg, model.vocabSize());
    if (!parsed)
      return parsed.takeError();
    ids = *parsed;
  } else {
    if (!prompt.empty() && !tok)
      return usage("--prompt needs a tokenizer: none was found beside the model; pass "
                   "--tokenizer");
    if (model.bosToken())
      ids.push_back(*model.bosToken());
    if (!prompt.empty()) {
      std::vector<int32_t> text = tok->encode(prompt);
      ids.insert(ids.end(), text.begin(), text.end());
    }
    if (ids.empty())
      return usage("the model has no BOS token: give --prompt or --tokens");
  }
  int64_t context = model.maxPositions();
  if (context > 0 && (int64_t)ids.size() >= context)
    return usage(llvm::formatv("the prompt has {0} tokens; the model's context is {1}, so at "
                               "most {2} fit with room for a new one",
                               ids.size(), context, context - 1)
                     .str());
  if (tokensArg.empty() && tok)
    for (size_t i = 1; i < ids.size(); ++i)
      printPiece(tok->decodeToken(ids[i - 1], ids[i]));
  auto start = std::chrono::steady_clock::now();
  auto generated = generate(model, ids, *sampling, [&](int32_t prev, int32_t next) {
    if (tok)
      printPiece(tok->decodeToken(prev, next));
  });
  if (!generated)
    return generated.takeError();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (tok)
    llvm::outs() << "\n";
  if (!tokensArg.empty()) {
    llvm::outs() << "ids: ";
    llvm::interleave(*generated, llvm::outs(), ",");
    llvm::outs() << "\n";
  }
  // The output ends before the log lines on stderr.
  llvm::outs().flush();
  if (context > 0 && (int64_t)(ids.size() + generated->size()) >= context &&
      (int64_t)generated->size() < sampling->maxTokens)
    spdlog::info("stopped at the model's context of {} tokens", context);
  spdlog::info("{} tokens in {:.2f} s ({:.1f} tok/s)", generated->size(), seconds,
               generated->size() / std::max(seconds, 1e-9));
  return llvm::Error::success();
}

static llvm::Error runForward(Model &model) {
  if (tokensArg.empty())
    return usage("forward needs --tokens");
  if (logitsOut.empty())
    return usage("forward needs --logits-out FILE.npy");
  auto ids = parseTokens(tokensArg, model.vocabSize());
  if (!ids)
    return ids.takeError();
  if (model.maxPositions() > 0 && (int64_t)ids->size() > model.maxPositions())
    return usage(llvm::formatv("--tokens: {0} ids exceed the model's context of {1} tokens",
                               ids->size(), model.maxPositions())
                     .str());
  auto logits = model.forward(*ids);
  if (!logits)
    return logits.takeError();
  return writeNpy(logitsOut, *logits);
}

/// eval --task recall: the demo's associative-recall accuracy of a model (a
/// student: also its KL to the teacher) on held-out task sequences.
static llvm::Error runEvalRecall() {
  if (teacherPath.empty())
    return usage("eval --task recall needs MODEL (or --teacher MODEL --student MODEL)");
  if (recallSamples < 1 || recallSamples > kMaxConfigSize)
    return usage("--recall-samples must be in [1, 16777216]");
  auto teacher = Model::load(teacherPath, tokenizerPath);
  if (!teacher)
    return teacher.takeError();
  std::unique_ptr<Model> student;
  if (!studentPath.empty()) {
    auto loaded = Model::load(studentPath, tokenizerPath);
    if (!loaded)
      return loaded.takeError();
    student = std::move(*loaded);
  }
  Model &model = student ? *student : **teacher;
  RecallTask task;
  if (model.vocabSize() != task.vocabSize())
    return makeError(llvm::formatv("{0}: vocabulary of {1} tokens, the recall task has {2}",
                                   studentPath.empty() ? teacherPath : studentPath,
                                   model.vocabSize(), task.vocabSize())
                         .str());
  auto score = scoreRecall(**teacher, model, task, recallHeldOutSeed(recallSeed), recallSamples);
  if (!score)
    return score.takeError();
  int64_t bytes = kvBytesPerToken(model.module());
  int64_t atLength = kvCacheBytes(model.module(), task.sequenceLength());
  llvm::outs() << llvm::formatv("{0,-28} {1,12:F4}\n", "recall", score->recall)
               << llvm::formatv("{0,-28} {1,12}\n", "queries", score->queries)
               << llvm::formatv("{0,-28} {1,12:F5}\n", "kl", score->kl)
               << llvm::formatv("{0,-28} {1,12}\n", "kv_bytes_per_token", bytes)
               << llvm::formatv("{0,-28} {1,12}\n", "kv_bytes_at_sequence_length", atLength);
  llvm::json::Object report{{"recall_accuracy", score->recall},
                      {"queries", score->queries},
                      {"kl_to_teacher", score->kl},
                      {"kv_bytes_per_token", bytes},
                      {"sequence_length", task.sequenceLength()},
                      {"kv_bytes_at_sequence_length", atLength}};
  return jsonOut.empty() ? llvm::Error::success()
                         : writeFileAtomically(
                               jsonOut, llvm::formatv("{0:2}\n", llvm::json::Value(std::move(report)))
                                            .str());
}

static llvm::Error runEval() {
  // One model is positional; two are --teacher and --student.
  if (!optionalModel.empty() && (!teacherPath.empty() || !studentPath.empty()))
    return usage("eval takes MODEL alone, or --teacher MODEL --student MODEL");
  if (!optionalModel.empty())
    teacherPath = optionalModel.getValue();
  else if (!teacherPath.empty() && studentPath.empty())
    return usage("eval --teacher needs --student; to score one model give it as MODEL");
  if (taskArg == "recall")
    return runEvalRecall();
  if (teacherPath.empty() || textPath.empty())
    return usage("eval needs MODEL (or --teacher MODEL --student MODEL) and --data FILE");
  if (!taskArg.empty()) {
    if (taskArg != "multiple-choice")
      return usage("--task must be multiple-choice or recall, not '" + taskArg + "'");
    if (!studentPath.empty())
      return usage("--task multiple-choice scores one model: eval MODEL --task ...");
    auto model = Model::load(teacherPath, tokenizerPath);
    if (!model)
      return model.takeError();
    auto result = evaluateMultipleChoice(**model, textPath);
    if (!result)
      return result.takeError();
    llvm::outs() << llvm::formatv("{0,-28} {1,12}\n", "questions", result->questions)
                 << llvm::formatv("{0,-28} {1,12:F4}\n", "acc", result->accuracy)
                 << llvm::formatv("{0,-28} {1,12:F4}\n", "acc_norm",
                                  result->normalizedAccuracy);
    return jsonOut.empty() ? llvm::Error::success()
                           : writeFileAtomically(
                                 jsonOut, llvm::formatv("{0:2}\n", result->toJson()).str());
  }
  if (!(textFrom >= 0 && textFrom < 1) || maxPositions < 2 || window < 2 || kvContext < 0 ||
      maxPositions > kMaxConfigSize || window > kMaxConfigSize || kvContext > kMaxConfigSize)
    return usage(llvm::formatv("eval needs 0 <= --data-from < 1, and --max-positions, --window "
                               "in [2, {0}], --kv-context in [0, {0}]",
                               kMaxConfigSize)
                     .str());
  auto teacher = Model::load(teacherPath, studentPath.empty() ? tokenizerPath.getValue()
                                                              : std::string());
  if (!teacher)
    return teacher.takeError();
  // Without --student the teacher is scored alone (compared with itself,
  // loaded once).
  std::unique_ptr<Model> ownStudent;
  if (!studentPath.empty()) {
    auto loaded = Model::load(studentPath, tokenizerPath);
    if (!loaded)
      return loaded.takeError();
    ownStudent = std::move(*loaded);
  }
  Model &student = ownStudent ? *ownStudent : **teacher;
  // A pass longer than a model's context would read positions it was never
  // trained at.
  int64_t context = 0;
  for (Model *m : {teacher->get(), &student})
    if (m->maxPositions() > 0)
      context = context ? std::min(context, m->maxPositions()) : m->maxPositions();
  int64_t passTokens = window;
  if (context > 0 && passTokens > context) {
    if (window.getNumOccurrences())
      return usage(llvm::formatv("--window {0} exceeds the model's context of {1} tokens",
                                 passTokens, context)
                       .str());
    passTokens = context;
  }
  if (mlaAbsorbed)
    student.setEvaluatorOptions(EvaluatorOptions{mlaAbsorbed});
  auto tok = student.tokenizer();
  if (!tok)
    return tok.takeError();
  auto all = readTokens(textPath, *tok, std::nullopt, student.vocabSize());
  if (!all)
    return all.takeError();
  // The held-out tail, by tokens as training splits its data.
  size_t from = (size_t)(all->size() * textFrom);
  std::vector<int32_t> tokens;
  if (student.bosToken())
    tokens.push_back(*student.bosToken());
  tokens.insert(tokens.end(), all->begin() + from, all->end());
  if ((int64_t)tokens.size() > maxPositions)
    tokens.resize(maxPositions);
  size_t scored = tokens.size() - (student.bosToken() ? 1 : 0);
  if (tokens.size() < 2)
    return usage(textPath + ": no tokens to score from --data-from " +
                 llvm::formatv("{0}", textFrom.getValue()).str() + " on (" +
                 llvm::Twine(all->size()) + " tokens in the file)");
  spdlog::info("{}: scoring tokens [{}, {}) of {} (--data-from {}, --max-positions {})",
               textPath.getValue(), from, from + scored, all->size(), textFrom.getValue(),
               maxPositions.getValue());
  auto result = compareNextToken(**teacher, student, tokens, passTokens);
  if (!result)
    return result.takeError();
  result->teacherKvBytesPerToken = kvBytesPerToken((*teacher)->module());
  result->studentKvBytesPerToken = kvBytesPerToken(student.module());
  result->kvContext = kvContext > 0                  ? (int64_t)kvContext
                      : (*teacher)->maxPositions() > 0 ? (*teacher)->maxPositions()
                                                       : 4096;
  result->teacherKvBytesAtContext = kvCacheBytes((*teacher)->module(), result->kvContext);
  result->studentKvBytesAtContext = kvCacheBytes(student.module(), result->kvContext);
  if (studentPath.empty()) {
    llvm::outs() << llvm::formatv("{0,-28} {1,12}\n", "positions", result->positions)
                 << llvm::formatv("{0,-28} {1,12:F3}\n", "perplexity",
                                  std::exp(result->teacherNll))
                 << llvm::formatv("{0,-28} {1,12}\n", "KV bytes/token (bf16)",
                                  result->teacherKvBytesPerToken);
    llvm::json::Value json = llvm::json::Object{
        {"positions", result->positions},
        {"nll", result->teacherNll},
        {"perplexity", std::exp(result->teacherNll)},
        {"kv_bytes_per_token", result->teacherKvBytesPerToken}};
    return jsonOut.empty() ? llvm::Error::success()
                           : writeFileAtomically(jsonOut, llvm::formatv("{0:2}\n", json).str());
  }
  llvm::outs() << llvm::formatv("{0,-28} {1,12}\n", "positions", result->positions)
               << llvm::formatv("{0,-28} {1,12:F4}\n", "KL(teacher||student) nats", result->kl)
               << llvm::formatv("{0,-28} {1,12:F4}\n", "top-1 agreement", result->top1)
               << llvm::formatv("{0,-28} {1,12:F3}\n", "teacher perplexity",
                                std::exp(result->teacherNll))
               << llvm::formatv("{0,-28} {1,12:F3}\n", "student perplexity",
                                std::exp(result->studentNll))
               << llvm::formatv("{0,-28} {1,12}\n", "teacher KV bytes/token (bf16)",
                                result->teacherKvBytesPerToken)
               << llvm::formatv("{0,-28} {1,12}\n", "student KV bytes/token (bf16)",
                                result->studentKvBytesPerToken)
               << llvm::formatv("{0,-28} {1,12}\n",
                                llvm::formatv("teacher KV bytes @{0} tokens", result->kvContext),
                                result->teacherKvBytesAtContext)
               << llvm::formatv("{0,-28} {1,12}\n",
                                llvm::formatv("student KV bytes @{0} tokens", result->kvContext),
                                result->studentKvBytesAtContext);
  llvm::json::Value json = result->toJson();
  if (jsonOut.empty())
    return llvm::Error::success();
  return writeFileAtomically(jsonOut, llvm::formatv("{0:2}\n", json).str());
}

static llvm::Error runGrad(Model &model) {
  if (tokensArg.empty() || outDir.empty())
    return usage("grad needs --tokens and --out-dir");
  auto ids = parseTokens(tokensArg, model.vocabSize());
  if (!ids)
    return ids.takeError();
  auto func = model.module().lookupSymbol<func::FuncOp>(gradFunc);
  auto names = func ? func->getAttrOfType<ArrayAttr>("attnedit.gradients") : ArrayAttr();
  if (!names)
    return usage("@" + gradFunc + " is not a gradient function (run --attnedit-autodiff)");
  auto results = model.call(gradFunc, *ids);
  if (!results)
    return results.takeError();
  if (std::error_code ec = llvm::sys::fs::create_directories(outDir))
    return usage(outDir + ": cannot create: " + ec.message());
  auto write = [&](llvm::StringRef name, const Tensor &t) {
    llvm::SmallString<256> path(outDir);
    llvm::sys::path::append(path, name.str() + ".npy");
    return writeNpy(path, t);
  };
  if (llvm::Error e = write("loss", results->front()))
    return e;
  for (auto [name, tensor] :
       llvm::zip(names.getAsValueRange<StringAttr>(), llvm::drop_begin(*results))) {
    std::string file = name.str();
    for (size_t at; (at = file.find("::")) != std::string::npos;)
      file.replace(at, 2, "__");
    if (llvm::Error e = write(file, tensor))
      return e;
  }
  llvm::outs() << "loss " << results->front().data()[0] << ", " << names.size()
               << " gradients in " << outDir << "\n";
  return llvm::Error::success();
}

/// The recipe from --recipe, or `defaults`; sequences never exceed the
/// model's context.
static llvm::Expected<Recipe> loadRecipe(const Recipe &defaults, int64_t maxPositions) {
  llvm::Expected<Recipe> recipe =
      recipePath.empty() ? Recipe(defaults) : Recipe::parse(recipePath, defaults);
  if (!recipe)
    return recipe.takeError();
  if (maxPositions > 0 && recipe->seqLen > maxPositions)
    return usage((recipePath.empty() ? llvm::Twine("the default recipe") : recipePath) +
                 ": seq_len " + llvm::Twine(recipe->seqLen) +
                 " exceeds the model's context of " + llvm::Twine(maxPositions) + " tokens");
  return recipe;
}

static llvm::Expected<std::string> outputDirectory() {
  if (outPath.empty())
    return usage("give the output directory: --out DIR");
  llvm::SmallString<256> dir(outPath);
  llvm::sys::fs::make_absolute(dir);
  return dir.str().str();
}

static StageRecipe defaultStage(llvm::StringRef kind, int64_t steps, double lr) {
  StageRecipe s;
  s.stage = kind.str();
  s.steps = steps;
  s.lr = lr;
  s.warmup = steps / 20;
  return s;
}

static llvm::Error runDistill() {
  if (teacherPath.empty() || editOptions.empty() || textPath.empty())
    return usage("distill needs --teacher MODEL, --edit \"<pass options>\" and --data FILE");
  if (!(dataUntil > 0 && dataUntil <= 1))
    return usage("--data-until must be in (0, 1]");
  auto out = outputDirectory();
  if (!out)
    return out.takeError();
  if (llvm::sys::fs::equivalent(teacherPath, *out))
    return usage("--out " + *out + " is the teacher's directory: the student would replace it");
  auto teacher = Model::load(teacherPath, tokenizerPath);
  if (!teacher)
    return teacher.takeError();
  Recipe defaults;
  // Learning rates from bench/recipe_defaults.py (stories260K, 200 + 200
  // steps): MLA's held-out perplexity ratio 1.140 against 1.346 with the
  // earlier 1e-3 / 3e-4; GateSWA 1.086 against 1.083.
  defaults.stages = {defaultStage("layerwise", 200, 1e-2), defaultStage("model", 200, 3e-3)};
  defaults.seqLen = std::min<int64_t>(128, (*teacher)->maxPositions() > 0
                                                ? (*teacher)->maxPositions()
                                                : 128);
  auto recipe = loadRecipe(defaults, (*teacher)->maxPositions());
  if (!recipe)
    return recipe.takeError();
  auto tok = (*teacher)->tokenizer();
  if (!tok)
    return tok.takeError();
  auto data = PackedTokens::load(textPath, *tok, (*teacher)->bosToken(),
                                 (*teacher)->vocabSize(), recipe->seqLen, recipe->seed,
                                 dataUntil);
  if (!data)
    return data.takeError();
  spdlog::info("{}: {} training tokens", textPath.getValue(), (*data)->numTokens());
  return distill(**teacher, editOptions, **data,
                 JobOptions{*out, *recipe, resume, trainThreads});
}

static llvm::Error runTrain() {
  if (configPath.empty() || textPath.empty())
    return usage("train needs --config config.json and --data FILE");
  if (!(dataUntil > 0 && dataUntil <= 1))
    return usage("--data-until must be in (0, 1]");
  auto out = outputDirectory();
  if (!out)
    return out.takeError();
  auto config = parseHFConfig(configPath);
  if (!config)
    return config.takeError();
  Checkpoint checkpoint;
  checkpoint.source = configPath;
  checkpoint.config = *config;
  checkpoint.configOnly = true;
  checkpoint.configOnlyDType = DType::F32;
  checkpoint.tokenizerPath = tokenizerPath;
  MLIRContext context;
  auto module = importCheckpoint(context, checkpoint);
  if (!module)
    return module.takeError();
  Recipe defaults;
  defaults.stages = {defaultStage("lm", 1000, 1e-3)};
  defaults.stages.front().weightDecay = 0.1;
  defaults.seqLen = std::min<int64_t>(128, config->maxPositions);
  auto recipe = loadRecipe(defaults, config->maxPositions);
  if (!recipe)
    return recipe.takeError();
  std::unique_ptr<Tokenizer> tok;
  if (!tokenizerPath.empty()) {
    auto loaded = loadTokenizer(tokenizerPath, config->vocabSize);
    if (!loaded)
      return loaded.takeError();
    tok = std::move(*loaded);
  }
  auto data = PackedTokens::load(textPath, tok.get(), config->bosTokenId, config->vocabSize,
                                 recipe->seqLen, recipe->seed, dataUntil);
  if (!data)
    return data.takeError();
  spdlog::info("{}: {} training tokens", textPath.getValue(), (*data)->numTokens());
  return pretrain(**module, **data, JobOptions{*out, *recipe, resume, trainThreads});
}


/// The tokenizer of [MODEL] (or --tokenizer, checked against it).
static llvm::Expected<std::pair<std::unique_ptr<Model>, const Tokenizer *>> tokenizerOnly(
    std::unique_ptr<Tokenizer> &owned) {
  if (optionalModel.empty()) {
    if (tokenizerPath.empty())
      return usage("give a MODEL or --tokenizer FILE");
    llvm::StringRef ext = llvm::sys::path::extension(tokenizerPath);
    if (ext != ".json" && ext != ".model")
      return usage(tokenizerPath + ": a llama2.c tokenizer does not store its size; give the "
                                   "MODEL it belongs to");
    auto tok = ext == ".json" ? loadHFTokenizer(tokenizerPath)
                              : loadSentencePieceTokenizer(tokenizerPath);
    if (!tok)
      return tok.takeError();
    owned = std::move(*tok);
    return std::make_pair(std::unique_ptr<Model>(), (const Tokenizer *)owned.get());
  }
  auto model = Model::load(optionalModel, tokenizerPath);
  if (!model)
    return model.takeError();
  auto tok = (*model)->tokenizer();
  if (!tok)
    return tok.takeError();
  if (!*tok)
    return usage(optionalModel + ": the model has no tokenizer; pass --tokenizer");
  return std::make_pair(std::move(*model), *tok);
}

static llvm::Error runTokenize() {
  if (textArg.getNumOccurrences() == 0)
    return usage("tokenize needs --text TEXT");
  std::unique_ptr<Tokenizer> owned;
  auto loaded = tokenizerOnly(owned);
  if (!loaded)
    return loaded.takeError();
  const Tokenizer *tok = loaded->second;
  std::vector<int32_t> ids = tok->encode(textArg);
  llvm::interleave(ids, llvm::outs(), ",");
  llvm::outs() << "\n";
  if (showPieces) {
    int32_t prev = -1;
    for (int32_t id : ids) {
      llvm::outs() << id << "\t" << llvm::json::Value(tok->decodeToken(prev, id)) << "\n";
      prev = id;
    }
  }
  return llvm::Error::success();
}

static llvm::Error runDetokenize() {
  std::unique_ptr<Tokenizer> owned;
  auto loaded = tokenizerOnly(owned);
  if (!loaded)
    return loaded.takeError();
  const Tokenizer *tok = loaded->second;
  int64_t vocab = loaded->first ? loaded->first->vocabSize() : tok->vocabSize();
  auto ids = parseTokens(idsArg, vocab, "--ids");
  if (!ids)
    return ids.takeError();
  llvm::outs() << tok->decode(*ids) << "\n";
  return llvm::Error::success();
}

static llvm::Error runExport(Model &model) {
  auto out = outputDirectory();
  if (!out)
    return out.takeError();
  if (llvm::Error e = checkExportTarget(*out))
    return e;
  ExportOptions options;
  options.tokenizerPath = tokenizerPath;
  auto exported = exportChecked(model.module(), model.parameterStore(), *out, options);
  if (!exported)
    return exported.takeError();
  llvm::outs() << llvm::formatv("wrote {0}: {1}, {2} tensors{3}; reloaded logits within "
                                "{4:e1} relative\n",
                                *out, exported->summary.architecture,
                                exported->summary.numTensors,
                                exported->summary.tokenizerFile.empty()
                                    ? std::string(", no tokenizer")
                                    : ", " + exported->summary.tokenizerFile,
                                exported->relativeError);
  return llvm::Error::success();
}

static llvm::Error runConvert() {
  if (teacherPath.empty() || editOptions.empty())
    return usage("convert needs --teacher MODEL and --edit \"<pass options>\"");
  auto out = outputDirectory();
  if (!out)
    return out.takeError();
  if (llvm::sys::fs::equivalent(teacherPath, *out))
    return usage("--out " + *out + " is the teacher's directory: the student would replace it");
  if (llvm::Error e = checkExportTarget(*out))
    return e;
  auto teacher = Model::load(teacherPath, tokenizerPath);
  if (!teacher)
    return teacher.takeError();
  // The edited module and its new weights live in a scratch directory until
  // the export has copied them into the model directory.
  llvm::SmallString<256> work;
  if (std::error_code ec = llvm::sys::fs::createUniqueDirectory("attnedit-convert", work))
    return usage("cannot create a scratch directory: " + ec.message());
  auto cleanup = llvm::make_scope_exit([&] { llvm::sys::fs::remove_directories(work); });
  auto raised = raisedCopy((*teacher)->module());
  if (!raised)
    return raised.takeError();
  std::string weights = (work + "/student_init.safetensors").str();
  auto student = editedCopy(**raised, editOptions, weights);
  if (!student)
    return student.takeError();
  std::string modulePath = (work + "/student.mlir").str();
  if (llvm::Error e = writeModule(**student, modulePath))
    return e;
  ParameterStore store;
  if (llvm::Error e = store.openModuleFiles(**student, modulePath))
    return e;
  ExportOptions options;
  options.tokenizerPath = tokenizerPath;
  auto exported = exportChecked(**student, store, *out, options);
  if (!exported)
    return exported.takeError();
  llvm::outs() << llvm::formatv("wrote {0}: {1}, {2} tensors; reloaded logits within {3:e1} "
                                "relative\n",
                                *out, exported->summary.architecture,
                                exported->summary.numTensors, exported->relativeError);
  return llvm::Error::success();
}

static llvm::Expected<std::unique_ptr<Decoder>> decoderFor(Model &model) {
  for (auto [name, value] : {std::pair{"--block-size", blockSize.getValue()},
                             {"--max-chunk", maxChunk.getValue()},
                             {"--max-batch", maxBatch.getValue()},
                             {"--prefill-budget", prefillBudget.getValue()}})
    if (value < 1 || value > kMaxConfigSize)
      return usage(llvm::formatv("{0} must be in [1, {1}]", name, kMaxConfigSize).str());
  if (kvBlocks < 0)
    return usage("--kv-blocks must be >= 0");
  return Decoder::create(model, DecoderOptions{blockSize, maxChunk, kvBlocks});
}

/// A killed `sample` run's complete samples so far (the first ones in
/// order) and the job they belong to: one JSON line, then per sample its
/// length and ids as int32.
static constexpr llvm::StringLiteral kSampleCheckpointMagic = "attnedit-sample-checkpoint";

static llvm::Error writeSampleCheckpoint(llvm::StringRef path, const llvm::json::Value &job,
                                         llvm::ArrayRef<std::vector<int32_t>> samples) {
  std::string bytes;
  llvm::raw_string_ostream os(bytes);
  os << kSampleCheckpointMagic << "\n"
     << llvm::json::Object{{"job", job}, {"samples", (int64_t)samples.size()}} << "\n";
  for (const std::vector<int32_t> &sample : samples) {
    int32_t n = sample.size();
    os.write(reinterpret_cast<const char *>(&n), sizeof n);
    os.write(reinterpret_cast<const char *>(sample.data()), n * sizeof(int32_t));
  }
  return writeFileAtomically(path, os.str());
}

/// The samples of the checkpoint at `path`, refused when it belongs to
/// another job than `job` (of `total` samples) or does not parse (errors
/// name the file).
static llvm::Expected<std::vector<std::vector<int32_t>>>
readSampleCheckpoint(llvm::StringRef path, const llvm::json::Value &job, int64_t total,
                     int64_t vocab) {
  auto buffer = llvm::MemoryBuffer::getFile(path);
  if (!buffer)
    return makeError(path, buffer.getError().message());
  llvm::StringRef rest = (*buffer)->getBuffer();
  auto corrupt = [&](const llvm::Twine &why) {
    return makeError(path, "not a sample checkpoint (" + why +
                               "); delete it to sample from the start");
  };
  auto [magic, afterMagic] = rest.split('\n');
  auto [header, data] = afterMagic.split('\n');
  if (magic != kSampleCheckpointMagic)
    return corrupt("no header line");
  auto parsed = parseJson(header);
  if (!parsed)
    return corrupt(llvm::toString(parsed.takeError()));
  const llvm::json::Object *object = parsed->getAsObject();
  const llvm::json::Value *savedJob = object ? object->get("job") : nullptr;
  std::optional<int64_t> count = object ? object->getInteger("samples") : std::nullopt;
  if (!savedJob || !count || *count < 0)
    return corrupt("no job or sample count");
  std::vector<std::string> changes = jsonChanges(*savedJob, job);
  if (!changes.empty())
    return makeError(path, "the checkpoint belongs to another sample run; changed: " +
                               llvm::join(changes, "; ") +
                               ". Resume with the same options, or delete it");
  if (*count > total)
    return corrupt(llvm::formatv("{0} samples of a run of {1}", *count, total).str());
  std::vector<std::vector<int32_t>> samples;
  for (int64_t i = 0; i < *count; ++i) {
    int32_t n;
    if (data.size() < sizeof n)
      return corrupt(llvm::formatv("sample {0} of {1} is missing", i, *count).str());
    std::memcpy(&n, data.data(), sizeof n);
    data = data.drop_front(sizeof n);
    if (n < 0 || data.size() < (size_t)n * sizeof(int32_t))
      return corrupt(llvm::formatv("sample {0} has {1} ids, the file fewer", i, n).str());
    std::vector<int32_t> &sample = samples.emplace_back(n);
    std::memcpy(sample.data(), data.data(), n * sizeof(int32_t));
    data = data.drop_front(n * sizeof(int32_t));
    if (llvm::any_of(sample, [&](int32_t id) { return id < 0 || id >= vocab; }))
      return corrupt(llvm::formatv("sample {0} has an id outside the vocabulary", i).str());
  }
  if (!data.empty())
    return corrupt("bytes after the last sample");
  return samples;
}

static llvm::Error runSample(Model &model) {
  if (sampleOut.empty())
    return usage("sample needs --out FILE (.bin: uint16 ids, anything else: text)");
  if (sampleCount < 1 || sampleCount > kMaxConfigSize)
    return usage(llvm::formatv("--count must be in [1, {0}]", kMaxConfigSize).str());
  if (sampleCheckpointEvery < 1)
    return usage("--checkpoint-every must be >= 1");
  if (llvm::sys::fs::is_directory(sampleOut))
    return usage("--out " + sampleOut + " is a directory; sample writes a file");
  auto sampling = samplingOptions();
  if (!sampling)
    return sampling.takeError();
  if (!model.bosToken())
    return usage("the model has no BOS token to start a sample from");
  bool ids = llvm::sys::path::extension(sampleOut) == ".bin";
  if (ids && model.vocabSize() > 65536)
    return usage("a .bin holds uint16 ids, but the vocabulary has " +
                 llvm::Twine(model.vocabSize()) + " entries; write text instead");
  auto loaded = model.tokenizer();
  if (!loaded)
    return loaded.takeError();
  const Tokenizer *tok = *loaded;
  if (!ids && !tok)
    return usage("text samples need the model's tokenizer; pass --tokenizer, or write a .bin");
  auto decoder = decoderFor(model);
  if (!decoder)
    return decoder.takeError();
  // What the samples depend on (not --max-batch, which only changes the
  // logits' rounding): a checkpoint of anything else is not resumed.
  llvm::json::Value job = llvm::json::Object{
      {"model", moduleIdentity(model.module())},
      {"backend", backendName.getValue()},
      {"count", (int64_t)sampleCount},
      {"seed", (int64_t)sampling->seed},
      {"max_tokens", sampling->maxTokens},
      {"temperature", sampling->temperature},
      {"top_k", sampling->topK},
      {"top_p", sampling->topP},
      {"repetition_penalty", sampling->repetitionPenalty}};
  std::string checkpoint = sampleOut + ".partial";
  std::vector<std::vector<int32_t>> samples(sampleCount);
  int64_t resumed = 0;
  if (llvm::sys::fs::exists(checkpoint)) {
    if (!resume)
      return makeError(checkpoint, "a killed sample run left this checkpoint; pass --resume "
                                   "to continue it, or delete it");
    auto saved = readSampleCheckpoint(checkpoint, job, sampleCount, model.vocabSize());
    if (!saved)
      return saved.takeError();
    resumed = saved->size();
    std::move(saved->begin(), saved->end(), samples.begin());
    spdlog::info("resuming {}: {} of {} samples done", checkpoint, resumed,
                 sampleCount.getValue());
  } else if (resume) {
    spdlog::info("{}: no checkpoint to resume; starting from the first sample", checkpoint);
  }
  std::vector<bool> done(sampleCount, false);
  std::fill(done.begin(), done.begin() + resumed, true);
  std::optional<std::string> failure;
  int64_t finished = resumed, tokens = 0, saved = resumed, prefix = resumed, next = resumed;
  auto start = std::chrono::steady_clock::now();
  double lastReport = -1;
  // Samples are independent requests, decoded maxBatch at a time (one
  // Decoder for all: building its functions costs more than a sample),
  // submitted a few batches ahead so that memory does not grow with --count.
  Scheduler scheduler(**decoder, tok, maxBatch);
  auto submit = [&](int64_t i) {
    Request request;
    request.prompt = {*model.bosToken()};
    request.options = *sampling;
    request.options.seed = sampling->seed * 1000003 + i; // each sample its own stream
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
      if (seconds < lastReport + 1 && finished < sampleCount)
        return;
      lastReport = seconds;
      double eta = seconds / (finished - resumed) * (sampleCount - finished);
      llvm::errs() << llvm::formatv("sample {0}/{1}  {2:F0} tok/s  ETA {3}m{4:D2}s\n",
                                    finished, sampleCount.getValue(),
                                    tokens / std::max(seconds, 1e-9), (int64_t)eta / 60,
                                    (int64_t)eta % 60);
    };
    scheduler.submit(std::move(request));
  };
  for (;;) {
    for (; next < sampleCount && next - finished < 4 * maxBatch; ++next)
      submit(next);
    if (failure || !scheduler.step())
      break;
    // The samples complete from the first on, once there are
    // --checkpoint-every more of them.
    while (prefix < sampleCount && done[prefix])
      ++prefix;
    if (prefix - saved < sampleCheckpointEvery || prefix == sampleCount)
      continue;
    if (llvm::Error e = writeSampleCheckpoint(
            checkpoint, job, llvm::ArrayRef(samples).take_front(prefix)))
      return e;
    saved = prefix;
  }
  if (failure)
    return makeError("sample", *failure);
  std::string text;
  std::vector<uint16_t> stream;
  for (const std::vector<int32_t> &sample : samples) {
    // Each sample opens with BOS, as the trainer's packed data expects.
    stream.push_back(*model.bosToken());
    stream.insert(stream.end(), sample.begin(), sample.end());
    if (tok)
      text += tok->decode(sample) + "\n";
  }
  llvm::Error written =
      ids ? writeFileAtomically(sampleOut, llvm::StringRef(reinterpret_cast<const char *>(
                                                             stream.data()),
                                                         stream.size() * 2))
          : writeFileAtomically(sampleOut, text);
  if (written)
    return written;
  if (std::error_code ec = llvm::sys::fs::remove(checkpoint))
    return makeError(checkpoint, "cannot remove: " + ec.message());
  spdlog::info("wrote {}: {} samples, {} tokens ({})", sampleOut.getValue(),
               sampleCount.getValue(), stream.size() - sampleCount,
               ids ? "uint16 ids, BOS first" : "text");
  return llvm::Error::success();
}

static llvm::Error runServe(Model &model) {
  if (servePort < 0 || servePort > 65535)
    return usage("--port must be in [0, 65535]");
  auto decoder = decoderFor(model);
  if (!decoder)
    return decoder.takeError();
  ServerOptions options;
  options.host = serveHost;
  options.port = servePort;
  options.portFile = portFile;
  options.maxBatch = maxBatch;
  options.prefillBudget = prefillBudget;
  options.modelName = modelName.empty()
                          ? llvm::sys::path::filename(llvm::StringRef(modelPath).rtrim('/')).str()
                          : modelName.getValue();
  return serve(**decoder, options);
}

static llvm::Error runBenchServe(Model &model) {
  auto decoder = decoderFor(model);
  if (!decoder)
    return decoder.takeError();
  ServeBenchOptions options;
  options.concurrency = concurrency;
  options.promptLength = promptLen;
  options.genLength = genLen;
  options.maxBatch = maxBatch;
  options.prefillBudget = prefillBudget;
  options.uncachedTokens = uncachedTokens;
  options.kvOnly = kvOnly;
  auto result = benchServe(**decoder, options);
  if (!result)
    return result.takeError();
  llvm::outs() << result->table();
  if (!jsonOut.empty())
    return writeFileAtomically(jsonOut, llvm::formatv("{0:2}\n", result->toJson()).str());
  return llvm::Error::success();
}

static llvm::Error runDemo() {
  auto out = outputDirectory();
  if (!out)
    return out.takeError();
  return runRecallDemo(RecallDemoOptions{*out, demoSeed, resume, demoScale});
}

// plan-edits: its options are its own (declared here, apart from the others).
static cl::SubCommand planCmd("plan-edits",
                              "choose each layer's edit (keep, sliding window, MLA) under a KV "
                              "budget from measured damage; write the plan JSON that "
                              "--edit \"plan=FILE\" applies");
static cl::opt<std::string> planTeacher("teacher", cl::desc("the teacher model"), cl::sub(planCmd),
                                        cl::cat(attneditOptions));
static cl::opt<std::string> planData("data", cl::desc("calibration text or .bin of uint16 ids"),
                                     cl::sub(planCmd), cl::cat(attneditOptions));
static cl::opt<std::string> planOut("out", cl::desc("the plan JSON to write"), cl::sub(planCmd),
                                    cl::cat(attneditOptions));
static cl::opt<double> planBudget("kv-budget",
                                  cl::desc("bf16 KV bytes per token at --context (> 1), or a "
                                           "fraction of the teacher's (<= 1) (default 0.25)"),
                                  cl::init(0.25), cl::sub(planCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> planContext("context", cl::desc("context the budget holds at (default 512)"),
                                    cl::init(512), cl::sub(planCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> planWindow("swa-window", cl::desc("candidate sliding window (default 32)"),
                                   cl::init(32), cl::sub(planCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> planRank("kv-lora-rank", cl::desc("candidate MLA rank (default 16)"),
                                 cl::init(16), cl::sub(planCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> planRope("qk-rope-head-dim",
                                 cl::desc("candidate MLA RoPE dims (default 4)"), cl::init(4),
                                 cl::sub(planCmd), cl::cat(attneditOptions));
static cl::opt<std::string> planEdit("edit",
                                     cl::desc("other edit options of every candidate (default "
                                              "\"init=svd\")"),
                                     cl::init("init=svd"), cl::sub(planCmd),
                                     cl::cat(attneditOptions));
static cl::opt<int64_t> planTokens("calibration-tokens",
                                   cl::desc("calibration tokens from the start of --data "
                                            "(default 2048)"),
                                   cl::init(2048), cl::sub(planCmd), cl::cat(attneditOptions));

static llvm::Error runPlanEdits() {
  if (planTeacher.empty() || planData.empty() || planOut.empty())
    return usage("plan-edits needs --teacher MODEL, --data FILE and --out PLAN.json");
  if (planTokens < 2 || planTokens > kMaxConfigSize)
    return usage("--calibration-tokens must be in [2, 16777216]");
  auto teacher = Model::load(planTeacher);
  if (!teacher)
    return teacher.takeError();
  auto tok = (*teacher)->tokenizer();
  if (!tok)
    return tok.takeError();
  auto all = readTokens(planData, *tok, std::nullopt, (*teacher)->vocabSize());
  if (!all)
    return all.takeError();
  // The start of the data: eval's held-out tail (the last 10%) stays unseen.
  // BOS first, unless the data starts with it (recall-data's and sample's
  // .bin files do), so that windows stay aligned with its sequences.
  std::vector<int32_t> tokens;
  if ((*teacher)->bosToken() && (all->empty() || all->front() != *(*teacher)->bosToken()))
    tokens.push_back(*(*teacher)->bosToken());
  size_t n = std::min<size_t>(all->size() * 9 / 10, (size_t)planTokens);
  tokens.insert(tokens.end(), all->begin(), all->begin() + n);
  PlanOptions options;
  options.budget = planBudget;
  options.context = planContext;
  options.window = planWindow;
  options.kvLoraRank = planRank;
  options.qkRopeHeadDim = planRope;
  options.editOptions = planEdit;
  options.workDir = planOut + ".work";
  if ((*teacher)->maxPositions() > 0)
    options.evalWindow = std::min<int64_t>(options.evalWindow, (*teacher)->maxPositions());
  auto plan = planEdits(**teacher, tokens, options);
  if (!plan)
    return plan.takeError();
  for (auto [l, e] : llvm::enumerate(plan->layers))
    llvm::outs() << llvm::formatv("layer {0,3}: {1}\n", l, e.toJson());
  llvm::outs() << llvm::formatv("KV bytes/token at context {0}: {1:F1} of budget {2:F1} (teacher "
                                "{3:F1}); calibration KL {4:F5}\n",
                                (int64_t)planContext,
                                *plan->extra.getNumber("bytes_per_token"),
                                *plan->extra.getNumber("budget_bytes_per_token"),
                                *plan->extra.getNumber("teacher_bytes_per_token"),
                                *plan->extra.getNumber("measured_kl"));
  return writeFileAtomically(planOut, llvm::formatv("{0:2}\n", plan->toJson()).str());
}

// calibrate-sinks: its options are its own too.
static cl::SubCommand sinksCmd("calibrate-sinks",
                               "GateSWA sink logits that give each head's sink the teacher's "
                               "attention mass outside the window (for --edit "
                               "\"sink-logits=FILE\")");
static cl::opt<std::string> sinksTeacher("teacher", cl::desc("the teacher model"),
                                         cl::sub(sinksCmd), cl::cat(attneditOptions));
static cl::opt<std::string> sinksData("data", cl::desc("calibration text or .bin of uint16 ids"),
                                      cl::sub(sinksCmd), cl::cat(attneditOptions));
static cl::opt<std::string> sinksOut("out", cl::desc("the JSON to write"), cl::sub(sinksCmd),
                                     cl::cat(attneditOptions));
static cl::opt<int64_t> sinksWindow("swa-window", cl::desc("the GateSWA window (default 32)"),
                                    cl::init(32), cl::sub(sinksCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> sinksTokens("calibration-tokens",
                                    cl::desc("calibration tokens from the start of --data "
                                             "(default 2048)"),
                                    cl::init(2048), cl::sub(sinksCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> sinksChunk("chunk", cl::desc("tokens per forward pass (default 256)"),
                                   cl::init(256), cl::sub(sinksCmd), cl::cat(attneditOptions));
static cl::opt<std::string> sinksObjective(
    "objective",
    cl::desc("outside-mass: the sink takes the teacher's mass outside the window (default); "
             "output-error: the sink minimises the teacher-forced error of each head's output"),
    cl::init("outside-mass"), cl::sub(sinksCmd), cl::cat(attneditOptions));

/// The first `count` tokens of `path` (BOS first), within its first 90%, so
/// eval's held-out tail stays unseen.
static llvm::Expected<std::vector<int32_t>> calibrationTokens(Model &teacher,
                                                              llvm::StringRef path,
                                                              int64_t count) {
  auto tok = teacher.tokenizer();
  if (!tok)
    return tok.takeError();
  auto all = readTokens(path, *tok, std::nullopt, teacher.vocabSize());
  if (!all)
    return all.takeError();
  std::vector<int32_t> tokens;
  if (teacher.bosToken())
    tokens.push_back(*teacher.bosToken());
  size_t n = std::min<size_t>(all->size() * 9 / 10, (size_t)count);
  tokens.insert(tokens.end(), all->begin(), all->begin() + n);
  return tokens;
}

static llvm::Error runCalibrateSinks() {
  if (sinksTeacher.empty() || sinksData.empty() || sinksOut.empty())
    return usage("calibrate-sinks needs --teacher MODEL, --data FILE and --out FILE.json");
  if (sinksTokens < 2 || sinksTokens > kMaxConfigSize || sinksChunk < 2 ||
      sinksChunk > kMaxConfigSize)
    return usage("--calibration-tokens and --chunk must be in [2, 16777216]");
  auto teacher = Model::load(sinksTeacher);
  if (!teacher)
    return teacher.takeError();
  auto tokens = calibrationTokens(**teacher, sinksData, sinksTokens);
  if (!tokens)
    return tokens.takeError();
  if (sinksObjective != "outside-mass" && sinksObjective != "output-error")
    return usage("--objective must be outside-mass or output-error, not '" + sinksObjective +
                 "'");
  auto sinks = calibrateSinkLogits(**teacher, *tokens, sinksWindow, sinksChunk,
                                   sinksObjective == "output-error" ? SinkObjective::OutputError
                                                                    : SinkObjective::OutsideMass);
  if (!sinks)
    return sinks.takeError();
  for (auto [l, row] : llvm::enumerate(*sinks->getAsObject()->getArray("outside_mass")))
    llvm::outs() << llvm::formatv("layer {0,3}: outside mass {1:F4}  sink logits {2}\n", l,
                                  [&] {
                                    double sum = 0;
                                    for (auto &m : *row.getAsArray())
                                      sum += *m.getAsNumber();
                                    return sum / row.getAsArray()->size();
                                  }(),
                                  (*sinks->getAsObject()->getArray("layers"))[l]);
  return writeFileAtomically(sinksOut, llvm::formatv("{0:2}\n", *sinks).str());
}

static cl::SubCommand activationsCmd("calibrate-activations",
                                     "each layer's attention-input covariance, for the "
                                     "activation-aware MLA start (--edit \"activations=FILE\")");
static cl::opt<std::string> actTeacher("teacher", cl::desc("the teacher model"),
                                       cl::sub(activationsCmd), cl::cat(attneditOptions));
static cl::opt<std::string> actData("data", cl::desc("calibration text or .bin of uint16 ids"),
                                    cl::sub(activationsCmd), cl::cat(attneditOptions));
static cl::opt<std::string> actOut("out", cl::desc("the .safetensors to write"),
                                   cl::sub(activationsCmd), cl::cat(attneditOptions));
static cl::opt<int64_t> actTokens("calibration-tokens",
                                  cl::desc("calibration tokens from the start of --data "
                                           "(default 2048)"),
                                  cl::init(2048), cl::sub(activationsCmd),
                                  cl::cat(attneditOptions));

static llvm::Error runCalibrateActivations() {
  if (actTeacher.empty() || actData.empty() || actOut.empty())
    return usage("calibrate-activations needs --teacher MODEL, --data FILE and --out "
                 "FILE.safetensors");
  if (actTokens < 2 || actTokens > kMaxConfigSize)
    return usage("--calibration-tokens must be in [2, 16777216]");
  auto teacher = Model::load(actTeacher);
  if (!teacher)
    return teacher.takeError();
  auto tokens = calibrationTokens(**teacher, actData, actTokens);
  if (!tokens)
    return tokens.takeError();
  int64_t chunk = (*teacher)->maxPositions() > 0 ? std::min<int64_t>(256, (*teacher)->maxPositions())
                                                 : 256;
  auto cov = attentionInputCovariance(**teacher, *tokens, chunk);
  if (!cov)
    return cov.takeError();
  std::vector<TensorToWrite> list;
  for (auto [l, c] : llvm::enumerate(*cov)) {
    int64_t h = (int64_t)std::lround(std::sqrt((double)c.size()));
    list.push_back({llvm::formatv("model.layers.{0}.self_attn.input_covariance", l).str(),
                    DType::F32, {h, h},
                    llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t *>(c.data()),
                                            c.size() * sizeof(float))});
  }
  if (llvm::Error e = writeSafetensors(actOut, list))
    return e;
  llvm::outs() << llvm::formatv("wrote {0}: {1} layers, {2} tokens\n", actOut.getValue(),
                                list.size(), tokens->size());
  return llvm::Error::success();
}

// recall-data: the demo's task as a token file for distill and plan-edits.
static cl::SubCommand recallDataCmd("recall-data",
                                    "write sequences of the demo's associative-recall task as a "
                                    ".bin of uint16 ids, back to back (distill with seq_len = "
                                    "the sequence length - 1 trains on whole sequences)");
static cl::opt<int64_t> recallDataCount("count", cl::desc("sequences (default 1000)"),
                                        cl::init(1000), cl::sub(recallDataCmd),
                                        cl::cat(attneditOptions));
static cl::opt<uint64_t> recallDataSeed("seed",
                                        cl::desc("task seed: the demo's teacher trains on seed "
                                                 "--seed's sequences (default 0)"),
                                        cl::init(0), cl::sub(recallDataCmd),
                                        cl::cat(attneditOptions));
static cl::opt<std::string> recallDataOut("out", cl::desc("the .bin to write"),
                                          cl::sub(recallDataCmd), cl::cat(attneditOptions));

static llvm::Error runRecallData() {
  if (recallDataOut.empty() || !llvm::StringRef(recallDataOut).ends_with(".bin"))
    return usage("recall-data needs --out FILE.bin");
  if (recallDataCount < 1 || recallDataCount > kMaxConfigSize)
    return usage("--count must be in [1, 16777216]");
  RecallTask task;
  RecallSequences data(task, recallDataSeed);
  if (llvm::Error e = writeFileAtomically(recallDataOut, [&](llvm::raw_ostream &os) {
        for (int64_t i = 0; i < recallDataCount; ++i)
          for (int32_t id : data.sequence(i)) {
            uint16_t v = (uint16_t)id;
            os.write(reinterpret_cast<const char *>(&v), 2);
          }
      }))
    return e;
  llvm::outs() << llvm::formatv("wrote {0}: {1} sequences of {2} tokens\n",
                                recallDataOut.getValue(), (int64_t)recallDataCount,
                                task.sequenceLength());
  return llvm::Error::success();
}

int main(int argc, char **argv) {
  configureMathLibraries(argv);
  cl::HideUnrelatedOptions(attneditOptions);
  for (cl::SubCommand *sub : cl::getRegisteredSubcommands())
    cl::HideUnrelatedOptions(attneditOptions, *sub);
  mlir::attnedit::setToolVersionPrinter("attnedit-run");
  cl::ParseCommandLineOptions(argc, argv,
                              "attnedit runtime: run, evaluate, train, distill and convert "
                              "models\n\n  attnedit-run COMMAND --help shows a command's "
                              "options\n");
  initLogging("attnedit-run");
  if (llvm::Error e = initProcessGroup(argc, argv))
    return reportError(std::move(e));
  auto finalize = llvm::make_scope_exit(finalizeProcessGroup);
  ProcessGroup *group = processGroup();
  if (group && group->rank() > 0) {
    // Rank 0 reports progress; the others speak only of trouble, saying who.
    spdlog::default_logger()->set_pattern(
        llvm::formatv("%n[rank {0}]: %^%l%$: %v", group->rank()).str());
    spdlog::set_level(spdlog::level::warn);
  }
  // An error on one rank would leave the others waiting in a collective:
  // it ends the whole job (mpirun then stops every rank).
  auto fail = [&](llvm::Error e) {
    int code = reportError(std::move(e));
    if (group && group->size() > 1)
      group->abort(code);
    return code;
  };
  std::string backend = backendName.empty() ? "cpu" : backendName.getValue();
  if (llvm::Error e = setDefaultBackend(backend, {ascendTarget, ascendDtype}))
    return reportError(std::move(e));
  // An artifact carries its compiled code and nothing else to run.
  if (backend != "cpu")
    for (const std::string *path : {&modelPath.getValue(), &optionalModel.getValue(),
                                    &teacherPath.getValue(), &studentPath.getValue()})
      if (!path->empty() && isCompiledModel(*path))
        return reportError(usage(*path + " is an attnedit-compile artifact, which runs only its "
                                         "compiled code: --backend=" + backend +
                                         " needs the model it was compiled from"));
  if (evalCmd || distillCmd || trainCmd || demoCmd || tokenizeCmd || detokenizeCmd ||
      convertCmd || planCmd || sinksCmd || activationsCmd || recallDataCmd) {
    llvm::Error result = planCmd         ? runPlanEdits()
                         : recallDataCmd ? runRecallData()
                         : activationsCmd ? runCalibrateActivations()
                         : sinksCmd      ? runCalibrateSinks()
                         : evalCmd       ? runEval()
                         : distillCmd    ? runDistill()
                         : trainCmd      ? runTrain()
                         : tokenizeCmd   ? runTokenize()
                         : detokenizeCmd ? runDetokenize()
                         : convertCmd    ? runConvert()
                                         : runDemo();
    return result ? fail(std::move(result)) : 0;
  }
  if (!generateCmd && !forwardCmd && !gradCmd && !exportCmd && !sampleCmd && !serveCmd &&
      !benchServeCmd)
    return reportError(usage("give a command (attnedit-run --help lists them)"));
  auto model = Model::load(modelPath, tokenizerPath);
  if (!model)
    return reportError(model.takeError());
  if (mlaAbsorbed)
    (*model)->setEvaluatorOptions(EvaluatorOptions{mlaAbsorbed});
  llvm::Error result = generateCmd ? runGenerate(**model)
                       : forwardCmd ? runForward(**model)
                       : exportCmd  ? runExport(**model)
                       : sampleCmd  ? runSample(**model)
                       : serveCmd   ? runServe(**model)
                       : benchServeCmd ? runBenchServe(**model)
                                    : runGrad(**model);
  return result ? reportError(std::move(result)) : 0;
}
