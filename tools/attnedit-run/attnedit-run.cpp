//===- attnedit-run.cpp - run attnedit models ------------------------------===//
//
//   attnedit-run generate MODEL (--prompt TEXT [--tokenizer F] | --tokens 1,2,3)
//                         --max-tokens N --temperature T --seed S
//   attnedit-run forward MODEL --tokens 1,2,3 --logits-out FILE.npy
//   attnedit-run eval --teacher MODEL --student MODEL --data TEXT [--json-out F]
//   attnedit-run grad MODULE --tokens 1,2,3 --out-dir DIR [--func train_step_grad]
//   attnedit-run distill --teacher MODEL --edit "<pass options>" --data DATA --out DIR
//   attnedit-run train --config config.json --data DATA --out DIR
//   attnedit-run demo --out DIR
//
// MODEL is a Hugging Face directory, a llama2.c .bin or an attnedit .mlir.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/Importer.h"
#include "attnedit/Runtime/Training/Distiller.h"
#include "attnedit/Runtime/Training/Evaluation.h"
#include "attnedit/Runtime/Execution/Logging.h"
#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Runtime/Inference/Generation.h"
#include "attnedit/Runtime/Training/RecallTask.h"

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

static cl::SubCommand generateCmd("generate", "sample text or tokens from a model");
static cl::SubCommand forwardCmd("forward", "write the logits of a token sequence");
static cl::SubCommand evalCmd("eval",
                              "perplexities, next-token KL, top-1 agreement and KV bytes of a "
                              "student and its teacher on held-out text");

static cl::SubCommand gradCmd("grad", "write the loss and gradients of a training step "
                                     "(--attnedit-autodiff output) as .npy files");

static cl::SubCommand distillCmd("distill",
                                  "edit a teacher's attention and distil the student: "
                                  "layer-wise MSE, then model-level KL");
static cl::SubCommand trainCmd("train", "train a model from scratch on next-token loss");
// Every subcommand runs its functions through the executor this names.
static cl::opt<std::string> backendName(
    "backend", cl::desc("how functions run: cpu (compiled, backends/cpu) or reference "
                        "(the interpreter, the oracle)"),
    cl::init("reference"), cl::sub(cl::SubCommand::getAll()));

static cl::SubCommand demoCmd("demo", "the embedded demonstration: a recall teacher trained "
                                      "from scratch, converted to MLA and GateSWA, distilled");

static cl::opt<std::string> modelPath(cl::Positional, cl::Required,
                                      cl::desc("<HF dir | llama2.c .bin | .mlir>"),
                                      cl::sub(generateCmd), cl::sub(forwardCmd),
                                      cl::sub(gradCmd));
static cl::opt<std::string> gradFunc("func", cl::desc("the gradient function"),
                                     cl::init("train_step_grad"), cl::sub(gradCmd));
static cl::opt<std::string> outDir("out-dir", cl::desc("directory for the .npy files"),
                                   cl::sub(gradCmd));
static cl::opt<bool> mlaAbsorbed("mla-absorbed",
                                 cl::desc("run MLA in its absorbed (latent-space) form"),
                                 cl::sub(generateCmd), cl::sub(forwardCmd),
                                 cl::sub(evalCmd));
static cl::opt<std::string> teacherPath("teacher", cl::desc("the teacher model"),
                                        cl::sub(evalCmd), cl::sub(distillCmd));
static cl::opt<std::string> editOptions("edit",
                                        cl::desc("options of --attnedit-edit-attention, e.g. "
                                                 "\"target=mla kv-lora-rank=16 init=svd\""),
                                        cl::sub(distillCmd));
static cl::opt<std::string> configPath("config",
                                       cl::desc("HF config.json giving the model's shape"),
                                       cl::sub(trainCmd));
static cl::opt<std::string> outPath("out", cl::desc("output model directory"),
                                    cl::sub(distillCmd), cl::sub(trainCmd), cl::sub(demoCmd));
static cl::opt<std::string> recipePath("recipe", cl::desc("recipe.json (stages, steps, lr, ...)"),
                                       cl::sub(distillCmd), cl::sub(trainCmd));
static cl::opt<bool> resume("resume", cl::desc("continue from the last checkpoint in --out"),
                            cl::sub(distillCmd), cl::sub(trainCmd), cl::sub(demoCmd));
static cl::opt<double> dataUntil("data-until",
                                 cl::desc("train on the data before this fraction of it "
                                          "(default 0.9: eval's held-out tail stays unseen)"),
                                 cl::init(0.9), cl::sub(distillCmd), cl::sub(trainCmd));
static cl::opt<uint64_t> demoSeed("seed", cl::desc("seed of the data and initialisation"),
                                  cl::init(0), cl::sub(demoCmd));
static cl::opt<double> demoScale("scale", cl::desc("multiplies every stage's steps"),
                                 cl::init(1.0), cl::sub(demoCmd));
static cl::opt<std::string> studentPath("student", cl::desc("the student model"),
                                        cl::sub(evalCmd));
static cl::opt<std::string> textPath("data",
                                     cl::desc("text file, or (train, distill) a .bin of uint16 "
                                              "token ids"),
                                     cl::sub(evalCmd), cl::sub(distillCmd), cl::sub(trainCmd));
static cl::opt<double> textFrom("data-from",
                                cl::desc("use the text from this fraction of the file on "
                                         "(the held-out tail; default 0.9)"),
                                cl::init(0.9), cl::sub(evalCmd));
static cl::opt<int64_t> maxPositions("max-positions",
                                     cl::desc("compare at most this many tokens"),
                                     cl::init(2048), cl::sub(evalCmd));
static cl::opt<int64_t> window("window", cl::desc("tokens per forward pass"), cl::init(256),
                               cl::sub(evalCmd));
static cl::opt<int64_t> kvContext("kv-context",
                                  cl::desc("report KV-cache bytes at this many tokens "
                                           "(default: the teacher's context length)"),
                                  cl::init(0), cl::sub(evalCmd));
static cl::opt<std::string> jsonOut("json-out", cl::desc("also write the report as JSON"),
                                    cl::sub(evalCmd));
static cl::opt<std::string> tokensArg("tokens", cl::desc("comma-separated token ids"),
                                      cl::sub(generateCmd), cl::sub(forwardCmd),
                                      cl::sub(gradCmd));
static cl::opt<std::string> prompt("prompt", cl::desc("text to continue"), cl::sub(generateCmd));
static cl::opt<std::string> tokenizerPath("tokenizer",
                                          cl::desc("tokenizer.json or llama2.c tok.bin"),
                                          cl::sub(generateCmd), cl::sub(trainCmd));
static cl::opt<int64_t> maxTokens("max-tokens", cl::desc("new tokens at most"), cl::init(256),
                                  cl::sub(generateCmd));
static cl::opt<double> temperature("temperature", cl::desc("0 = greedy"), cl::init(1.0),
                                   cl::sub(generateCmd));
static cl::opt<uint64_t> seed("seed", cl::desc("sampling seed"), cl::init(0),
                              cl::sub(generateCmd));
static cl::opt<std::string> logitsOut("logits-out", cl::desc("float32 .npy of shape [T, vocab]"),
                                      cl::sub(forwardCmd));

static llvm::Error usage(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg.str());
}

static llvm::Expected<std::vector<int32_t>> parseTokens(llvm::StringRef text, int64_t vocab) {
  std::vector<int32_t> ids;
  llvm::SmallVector<llvm::StringRef> parts;
  text.split(parts, ',', -1, /*KeepEmpty=*/false);
  for (llvm::StringRef part : parts) {
    int64_t id;
    if (part.trim().getAsInteger(10, id))
      return usage("--tokens: '" + part + "' is not a token id");
    if (id < 0 || id >= vocab)
      return usage("--tokens: id " + llvm::Twine(id) + " is outside the vocabulary [0, " +
                   llvm::Twine(vocab) + ")");
    ids.push_back((int32_t)id);
  }
  if (ids.empty())
    return usage("--tokens: no token ids given");
  return ids;
}

/// Prints a piece as run.c's safe_printf does: lone control bytes are dropped.
static void printPiece(llvm::StringRef piece) {
  if (piece.size() == 1 && (unsigned char)piece[0] < 0x20 && !llvm::isSpace(piece[0]))
    return;
  llvm::outs() << piece;
  llvm::outs().flush();
}

static llvm::Error runGenerate(Model &model) {
  if (maxTokens < 0)
    return usage("--max-tokens must be >= 0");
  if (!(temperature >= 0))
    return usage("--temperature must be >= 0");
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
    if (tok)
      for (size_t i = 1; i < ids.size(); ++i)
        printPiece(tok->decodeToken(ids[i - 1], ids[i]));
  }
  auto start = std::chrono::steady_clock::now();
  GenerationOptions options{maxTokens, temperature, seed};
  auto generated = generate(model, ids, options, [&](int32_t prev, int32_t next) {
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
  auto logits = model.forward(*ids);
  if (!logits)
    return logits.takeError();
  return writeNpy(logitsOut, *logits);
}

static llvm::Error runEval() {
  if (teacherPath.empty() || studentPath.empty() || textPath.empty())
    return usage("eval needs --teacher MODEL, --student MODEL and --data FILE");
  if (!(textFrom >= 0 && textFrom < 1) || maxPositions < 2 || window < 2 || kvContext < 0)
    return usage("eval needs 0 <= --data-from < 1, --max-positions >= 2, --window >= 2, "
                 "--kv-context >= 0");
  auto teacher = Model::load(teacherPath);
  if (!teacher)
    return teacher.takeError();
  auto loaded = Model::load(studentPath);
  if (!loaded)
    return loaded.takeError();
  Model &student = **loaded;
  if (mlaAbsorbed)
    student.setEvaluatorOptions(EvaluatorOptions{mlaAbsorbed});
  auto tok = student.tokenizer();
  if (!tok)
    return tok.takeError();
  if (!*tok)
    return usage("eval needs the student's tokenizer to encode --data");
  auto text = llvm::MemoryBuffer::getFile(textPath, /*IsText=*/true);
  if (!text)
    return usage(textPath + ": cannot read: " + text.getError().message());
  llvm::StringRef all = (*text)->getBuffer();
  llvm::StringRef heldOut = all.drop_front((size_t)(all.size() * textFrom));
  std::vector<int32_t> tokens;
  if (student.bosToken())
    tokens.push_back(*student.bosToken());
  std::vector<int32_t> encoded = (*tok)->encode(heldOut);
  tokens.insert(tokens.end(), encoded.begin(), encoded.end());
  if ((int64_t)tokens.size() > maxPositions)
    tokens.resize(maxPositions);
  auto result = compareNextToken(**teacher, student, tokens, window);
  if (!result)
    return result.takeError();
  result->teacherKvBytesPerToken = kvBytesPerToken((*teacher)->module());
  result->studentKvBytesPerToken = kvBytesPerToken(student.module());
  result->kvContext = kvContext > 0                  ? (int64_t)kvContext
                      : (*teacher)->maxPositions() > 0 ? (*teacher)->maxPositions()
                                                       : 4096;
  result->teacherKvBytesAtContext = kvCacheBytes((*teacher)->module(), result->kvContext);
  result->studentKvBytesAtContext = kvCacheBytes(student.module(), result->kvContext);
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
  llvm::outs() << llvm::formatv("{0:2}", json) << "\n";
  if (jsonOut.empty())
    return llvm::Error::success();
  std::error_code ec;
  llvm::raw_fd_ostream os(jsonOut, ec);
  if (ec)
    return usage(jsonOut + ": cannot write: " + ec.message());
  os << llvm::formatv("{0:2}", json) << "\n";
  return llvm::Error::success();
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
  auto teacher = Model::load(teacherPath);
  if (!teacher)
    return teacher.takeError();
  Recipe defaults;
  defaults.stages = {defaultStage("layerwise", 200, 1e-3), defaultStage("model", 200, 3e-4)};
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
  return distill(**teacher, editOptions, **data, JobOptions{*out, *recipe, resume});
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
    auto loaded = llvm::sys::path::extension(tokenizerPath) == ".json"
                      ? loadHFTokenizer(tokenizerPath)
                      : loadLlama2cTokenizer(tokenizerPath, config->vocabSize);
    if (!loaded)
      return loaded.takeError();
    tok = std::move(*loaded);
  }
  auto data = PackedTokens::load(textPath, tok.get(), config->bosTokenId, config->vocabSize,
                                 recipe->seqLen, recipe->seed, dataUntil);
  if (!data)
    return data.takeError();
  spdlog::info("{}: {} training tokens", textPath.getValue(), (*data)->numTokens());
  return pretrain(**module, **data, JobOptions{*out, *recipe, resume});
}

static llvm::Error runDemo() {
  auto out = outputDirectory();
  if (!out)
    return out.takeError();
  return runRecallDemo(RecallDemoOptions{*out, demoSeed, resume, demoScale});
}

int main(int argc, char **argv) {
  cl::ParseCommandLineOptions(argc, argv, "attnedit runtime\n");
  initLogging("attnedit-run");
  if (llvm::Error e = setDefaultBackend(backendName))
    return reportError(std::move(e));
  if (evalCmd || distillCmd || trainCmd || demoCmd) {
    llvm::Error result = evalCmd      ? runEval()
                         : distillCmd ? runDistill()
                         : trainCmd   ? runTrain()
                                      : runDemo();
    return result ? reportError(std::move(result)) : 0;
  }
  if (!generateCmd && !forwardCmd && !gradCmd)
    return reportError(usage("give a command: generate, forward, eval, grad, distill, train "
                             "or demo (see --help)"));
  auto model = Model::load(modelPath, generateCmd ? tokenizerPath : std::string());
  if (!model)
    return reportError(model.takeError());
  if (mlaAbsorbed)
    (*model)->setEvaluatorOptions(EvaluatorOptions{mlaAbsorbed});
  llvm::Error result = generateCmd ? runGenerate(**model)
                       : forwardCmd ? runForward(**model)
                                    : runGrad(**model);
  return result ? reportError(std::move(result)) : 0;
}
