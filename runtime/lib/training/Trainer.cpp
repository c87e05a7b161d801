//===- Trainer.cpp - data and the training loop ----------------------------===//

#include "attnedit/Runtime/Training/Trainer.h"
#include "SvgChart.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/Frontend/Tokenizer.h"
#include "attnedit/Runtime/Training/GradientProgram.h"
#include "attnedit/Runtime/Training/OptimizerKernels.h"
#include "attnedit/Runtime/Training/ProcessGroup.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <optional>
#include <random>
#include <thread>

#include <unistd.h>

using namespace mlir;
using namespace mlir::attnedit;
namespace fs = llvm::sys::fs;
namespace json = llvm::json;

//===----------------------------------------------------------------------===//
// Data
//===----------------------------------------------------------------------===//

llvm::Expected<std::vector<int32_t>> attnedit::readTokens(llvm::StringRef path,
                                                          const Tokenizer *tokenizer,
                                                          std::optional<int32_t> bos,
                                                          llvm::ArrayRef<int32_t> stopTokens,
                                                          int64_t vocabSize, bool bosFirst) {
  auto buffer = readInputFile(path, /*isText=*/false);
  if (!buffer)
    return makeError(path + ": cannot read: " + buffer.getError().message());
  llvm::StringRef bytes = (*buffer)->getBuffer();
  std::vector<int32_t> tokens;
  if (llvm::sys::path::extension(path).equals_insensitive(".bin")) {
    if (bytes.size() % 2)
      return makeError(path + ": a pre-tokenized .bin holds uint16 ids, but its size (" +
                       llvm::Twine(bytes.size()) + " bytes) is odd");
    tokens.resize(bytes.size() / 2);
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = (uint8_t)bytes[2 * i] | ((uint8_t)bytes[2 * i + 1] << 8);
      if (tokens[i] >= vocabSize)
        return makeError(path + ": token " + llvm::Twine(i) + " is id " +
                         llvm::Twine(tokens[i]) + ", outside the model's vocabulary of " +
                         llvm::Twine(vocabSize));
    }
    spdlog::info("{}: pre-tokenized .bin of uint16 ids, {} tokens", path.str(), tokens.size());
    return tokens;
  }
  if (!tokenizer)
    return makeError(path + ": text data needs the model's tokenizer, and the model has "
                            "none (give --tokenizer, or a pre-tokenized .bin)");
  // A binary file read as text trains on its bytes' tokens without a word.
  if (size_t nul = bytes.find('\0'); nul != llvm::StringRef::npos)
    return makeError(path + ": byte " + llvm::Twine(nul) +
                     " is NUL, so this is not text; pre-tokenized uint16 ids go in a file "
                     "named .bin");
  if (bos && bosFirst)
    tokens.push_back(*bos);
  if (llvm::sys::path::extension(path).equals_insensitive(".jsonl")) {
    // Documents apart, as `sample` writes them.
    std::optional<int32_t> separator = documentStartToken(bos, stopTokens, tokenizer);
    int64_t texts = 0;
    auto encodeText = [&](const json::Object &record) -> llvm::Error {
      std::optional<llvm::StringRef> text = record.getString("text");
      if (!text)
        return makeError("field 'text' is missing or not a string");
      if (texts++ && separator)
        tokens.push_back(*separator);
      std::vector<int32_t> encoded = tokenizer->encode(*text);
      tokens.insert(tokens.end(), encoded.begin(), encoded.end());
      return llvm::Error::success();
    };
    if (llvm::Error e = forEachJsonLine(path, bytes, encodeText))
      return std::move(e);
    spdlog::info("{}: JSON lines, {} texts, {} tokens with the model's tokenizer", path.str(),
                 texts, tokens.size() - (bos && bosFirst ? 1 : 0));
    return tokens;
  }
  std::vector<int32_t> encoded = tokenizer->encode(bytes);
  tokens.insert(tokens.end(), encoded.begin(), encoded.end());
  spdlog::info("{}: text ({} bytes), {} tokens with the model's tokenizer", path.str(),
               bytes.size(), encoded.size());
  return tokens;
}

llvm::Expected<std::unique_ptr<PackedTokens>>
PackedTokens::load(llvm::StringRef path, const Tokenizer *tokenizer, std::optional<int32_t> bos,
                   llvm::ArrayRef<int32_t> stopTokens, int64_t vocabSize, int64_t seqLen,
                   uint64_t seed, double until) {
  auto tokens = readTokens(path, tokenizer, bos, stopTokens, vocabSize);
  if (!tokens)
    return tokens.takeError();
  tokens->resize((size_t)(tokens->size() * until));
  if ((int64_t)tokens->size() < seqLen + 1)
    return makeError(path + ": " + llvm::Twine(tokens->size()) +
                     " training tokens, fewer than one sequence of seq_len + 1 = " +
                     llvm::Twine(seqLen + 1));
  std::unique_ptr<PackedTokens> packed(new PackedTokens());
  packed->stream = std::move(*tokens);
  packed->seqLen = seqLen;
  packed->seed = seed;
  return packed;
}

llvm::json::Value PackedTokens::identity() const {
  llvm::ArrayRef<uint8_t> bytes(reinterpret_cast<const uint8_t *>(stream.data()),
                                stream.size() * sizeof(int32_t));
  return json::Object{{"tokens", (int64_t)stream.size()},
                      {"xxh3", llvm::utohexstr(llvm::xxh3_64bits(bytes))}};
}

std::vector<int32_t> PackedTokens::sequence(uint64_t index) {
  int64_t chunks = stream.size() / (seqLen + 1);
  int64_t epoch = index / chunks;
  if (epoch != cachedEpoch) {
    order.resize(chunks);
    std::iota(order.begin(), order.end(), 0);
    std::mt19937_64 rng(seed * 1000003 + epoch);
    std::shuffle(order.begin(), order.end(), rng);
    cachedEpoch = epoch;
  }
  auto begin = stream.begin() + order[index % chunks] * (seqLen + 1);
  return std::vector<int32_t>(begin, begin + seqLen + 1);
}

//===----------------------------------------------------------------------===//
// Checkpoints
//===----------------------------------------------------------------------===//

/// Fails unless every rank was given this rank's job and recipe, naming
/// what differs. Ranks of one job (mpirun -np N, or a node's own copy of the
/// data) would otherwise average the gradients of different jobs without a
/// word.
static llvm::Error sameJobOnEveryRank(ProcessGroup &group, const json::Object &job,
                                      const Recipe &recipe, llvm::StringRef workDir) {
  // The work directory too: rank 0 alone writes there, so a rank given
  // another --out left an empty one and could never resume. And the backend:
  // ranks computing in other precisions averaged gradients of other models.
  // A fixed list, so that every rank gathers as many values.
  const std::pair<const char *, std::vector<llvm::StringRef>> jobFields[] = {
      {"the command", {"job"}},
      {"the model", {"teacher", "model"}},
      {"--config", {"config"}},
      {"--edit (and the files it names)", {"edit", "edit_files"}},
      {"--data", {"data"}}};
  std::vector<std::pair<const char *, std::string>> parts;
  json::Object rest = job;
  for (const auto &[what, keys] : jobFields) {
    std::string text;
    for (llvm::StringRef key : keys) {
      if (const json::Value *v = job.get(key))
        text += llvm::formatv("{0}", *v).str();
      text += "\n";
      rest.erase(key);
    }
    parts.emplace_back(what, std::move(text));
  }
  parts.emplace_back("the job's other settings",
                     llvm::formatv("{0}", json::Value(std::move(rest))).str());
  parts.emplace_back("the recipe", llvm::formatv("{0}", recipe.toJson()).str());
  parts.emplace_back("--out", workDir.str());
  parts.emplace_back("--backend (and its options)", defaultBackendName());
  std::vector<double> mine;
  for (const auto &part : parts) {
    uint64_t hash = llvm::xxh3_64bits(part.second);
    // Two halves: a double holds 32 bits exactly.
    mine.push_back(double(hash >> 32));
    mine.push_back(double(hash & 0xffffffffu));
  }
  auto all = group.gather(mine, "the jobs' hashes");
  if (!all)
    return all.takeError();
  for (int r = 1; r < group.size(); ++r) {
    std::vector<std::string> differ;
    for (size_t p = 0; p < parts.size(); ++p)
      if (!std::equal(all->begin() + r * mine.size() + 2 * p,
                      all->begin() + r * mine.size() + 2 * p + 2, all->begin() + 2 * p))
        differ.push_back(parts[p].first);
    if (!differ.empty())
      return makeError(llvm::formatv("rank {0} was given another job than rank 0: {1} "
                                     "differ{2} (a node's own copy of a file may differ); "
                                     "every rank must run the same command on the same files",
                                     r, llvm::join(differ, ", "), differ.size() == 1 ? "s" : "")
                           .str());
  }
  return llvm::Error::success();
}

/// Fails unless every rank resumes from the same checkpoint as rank 0, which
/// alone writes them: a rank whose --out is not rank 0's (no shared file
/// system) would start over while the others go on, and their collectives
/// would no longer pair up.
static llvm::Error sameResumeOnEveryRank(ProcessGroup &group, int64_t stage, int64_t step,
                                         llvm::StringRef statePath) {
  auto text = readInputFile(statePath);
  uint64_t hash = text ? llvm::xxh3_64bits((*text)->getBuffer()) : 0;
  auto all = group.gather({double(stage), double(step),
                           double(hash >> 32), double(hash & 0xffffffffu)},
                          "the ranks' checkpoints");
  if (!all)
    return all.takeError();
  auto where = [&](int r) {
    return (*all)[4 * r] < 0 ? std::string("the first step")
                             : llvm::formatv("stage {0}, step {1}", (int64_t)(*all)[4 * r] + 1,
                                             (int64_t)(*all)[4 * r + 1])
                                   .str();
  };
  for (int r = 1; r < group.size(); ++r)
    if (!std::equal(all->begin() + 4 * r, all->begin() + 4 * r + 4, all->begin()))
      return makeError(llvm::formatv("rank {0} would resume from another checkpoint than rank "
                                     "0 ({1} against {2}): only rank 0 writes checkpoints, so "
                                     "every rank needs rank 0's --out (a shared file system); "
                                     "rank {3} read {4}",
                                     r, where(r), where(0), group.rank(), statePath)
                           .str());
  return llvm::Error::success();
}

static std::string contentHash(llvm::StringRef bytes) {
  return llvm::utohexstr(llvm::xxh3_64bits(llvm::arrayRefFromStringRef(bytes)));
}

llvm::Expected<Trainer> Trainer::create(const Recipe &recipe, TrainingRun run,
                                        ParameterStore &store) {
  ProcessGroup *group = processGroup();
  if (group && group->size() > 1)
    if (llvm::Error e = sameJobOnEveryRank(*group, run.job, recipe, run.workDir))
      return std::move(e);
  std::string statePath = joinPath(run.workDir, "checkpoint.json");
  auto trainer = resumed(recipe, std::move(run), store, statePath);
  if (trainer && group && group->size() > 1)
    if (llvm::Error e =
            sameResumeOnEveryRank(*group, trainer->resumeStage, trainer->resumeStep, statePath))
      return std::move(e);
  return trainer;
}

llvm::Expected<Trainer> Trainer::resumed(const Recipe &recipe, TrainingRun run,
                                         ParameterStore &store, llvm::StringRef statePath) {
  if (std::error_code ec = createOutputDirectories(run.workDir))
    return makeError(run.workDir + ": cannot create: " + ec.message());
  Trainer trainer(recipe, run, store);
  ProcessGroup *group = processGroup();
  bool writer = !group || group->rank() == 0;
  std::string stepLog = joinPath(trainer.run.workDir, CheckpointState::kStepLog);
  if (!fs::exists(statePath)) {
    // Steps of a start killed before its first checkpoint.
    if (writer)
      fs::remove(stepLog);
    // --resume on a first run is how a restart loop starts: not an error,
    // but the user should know nothing was resumed.
    if (run.resume)
      spdlog::info("{}: no checkpoint to resume; starting from the first step", statePath);
    return trainer;
  }
  if (!run.resume)
    return makeError(statePath + ": a checkpoint is already there; pass --resume to continue "
                                 "it, or choose another output directory");
  auto state = CheckpointState::read(statePath);
  if (!state)
    return state.takeError();
  // Resuming another job or recipe would not continue the run the
  // checkpoint holds: it would train something else from its weights.
  std::vector<std::string> changes =
      state->changes(json::Value(json::Object(run.job)), recipe.toJson());
  if (!changes.empty())
    return makeError(statePath + ": the checkpoint belongs to another job or recipe; changed: " +
                     llvm::join(changes, "; ") +
                     ". Resume with the same options, or choose another output directory");
  if (state->stage >= (int64_t)recipe.stages.size() ||
      state->step > recipe.stages[state->stage].steps)
    return makeError(statePath + ": corrupt checkpoint: stage/step out of range");
  // Accepted (the backends agree to rounding), but a resume is bit for bit only on one.
  if (!state->backend.empty() && state->backend != defaultBackendName())
    spdlog::warn("{}: written on --backend={}, resumed on {}: the weights will match an "
                 "uninterrupted run's to rounding, not bit for bit",
                 statePath.str(), state->backend, defaultBackendName());
  trainer.resumeStage = state->stage;
  trainer.resumeStep = state->step;
  trainer.checkpointFile = joinPath(run.workDir, state->file);
  trainer.curves = std::move(state->log);
  trainer.logBytes = state->logBytes;
  trainer.logPoints = state->logPoints;
  trainer.earlierSeconds = state->seconds;
  // Lines past the checkpoint's are of steps it trains again (from a
  // checkpoint without the file, all of them: its log is rewritten there).
  if (writer && fs::exists(stepLog) && ::truncate(stepLog.c_str(), trainer.logBytes) != 0)
    return makeError(stepLog + ": cannot truncate to the checkpoint's steps: " +
                     std::strerror(errno));

  auto weights = WeightFile::openSafetensors(trainer.checkpointFile);
  if (!weights)
    return weights.takeError();
  std::shared_ptr<WeightFile> owner = std::move(*weights);
  // A damaged byte in the weights would train on from wrong values.
  if (!state->xxh3.empty() && contentHash(owner->contents()) != state->xxh3)
    return makeError(trainer.checkpointFile + ": corrupt checkpoint: its bytes do not match the "
                     "xxh3 " + statePath + " recorded; start again, or resume from a copy");
  for (const TensorInfo &info : owner->tensors()) {
    llvm::StringRef key = info.name;
    if (!key.consume_front("param/"))
      continue;
    auto [scope, name] = key.split("::");
    if (name.empty())
      std::swap(scope, name);
    Tensor value = Tensor::zeros(info.shape);
    convertToF32(info.dtype, owner->bytes(info), value.mutableData(), value.numel());
    store.set(name, value, scope);
  }
  spdlog::info("resuming from {} (stage {}, step {})", trainer.checkpointFile,
               trainer.resumeStage + 1, trainer.resumeStep);
  if (!writer)
    return trainer;
  // A kill between checkpoint.json naming a new file and the old one's
  // removal left the old one: parameters and moments no checkpoint names.
  std::error_code ec;
  for (fs::directory_iterator it(trainer.run.workDir, ec), end; it != end && !ec;
       it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (name.starts_with("checkpoint-") && name.ends_with(".safetensors") &&
        name != state->file)
      fs::remove(it->path());
  }
  // A kill after a stage's last checkpoint and before its log was written
  // (the log is written at a stage's end) left it behind the checkpoint;
  // its training time is the checkpoint's, this run having trained nothing.
  if (trainer.resumeStep == recipe.stages[trainer.resumeStage].steps)
    if (llvm::Error e = trainer.writeLog(trainer.earlierSeconds))
      return std::move(e);
  return trainer;
}

bool Trainer::finished(size_t index) const {
  return (int64_t)index < resumeStage || resumedAtEndOf(index);
}

static llvm::ArrayRef<uint8_t> bytesOf(const Tensor &t) {
  return {reinterpret_cast<const uint8_t *>(t.data()), (size_t)t.numel() * sizeof(float)};
}

llvm::Error Trainer::writeCheckpoint(size_t stage, int64_t step, bool final,
                                     llvm::ArrayRef<std::string> names,
                                     llvm::ArrayRef<Tensor> params, llvm::ArrayRef<Tensor> m,
                                     llvm::ArrayRef<Tensor> v) {
  // Every rank holds the same weights; one copy is written.
  if (ProcessGroup *group = processGroup(); group && group->rank() != 0)
    return llvm::Error::success();
  std::vector<TensorToWrite> tensors;
  for (size_t i = 0; i < names.size(); ++i)
    for (auto [prefix, t] : {std::pair{"param/", &params[i]}, {"adam_m/", &m[i]},
                             {"adam_v/", &v[i]}})
      tensors.push_back({prefix + names[i], DType::F32,
                         std::vector<int64_t>(t->shape().begin(), t->shape().end()),
                         bytesOf(*t)});
  std::string file = CheckpointState::fileName(stage, step);
  std::string path = joinPath(run.workDir, file);
  if (llvm::Error e = writeSafetensors(path, tensors))
    return e;
  // Until checkpoint.json names it, the file is only space taken (on a full disk, the space
  // the resume needs).
  auto unreferenced = llvm::make_scope_exit([&] {
    if (path != checkpointFile)
      fs::remove(path);
  });
  auto written = readInputFile(path, /*isText=*/false, /*requiresNullTerminator=*/false);
  if (!written)
    return makeError(path + ": cannot read back: " + written.getError().message());
  // The steps since the last checkpoint join the log before checkpoint.json
  // counts them.
  // Stages the log holds whole are skipped, not walked: each checkpoint
  // costs its new steps.
  std::string lines;
  int64_t points = 0;
  for (auto [index, curve] : llvm::enumerate(curves)) {
    const json::Array &steps = *curve.getAsObject()->getArray("steps");
    for (size_t i = std::max<int64_t>(logPoints - points, 0); i < steps.size(); ++i)
      lines += CheckpointState::stepLine(index, *steps[i].getAsObject());
    points += steps.size();
  }
  if (llvm::Error e = appendDurably(joinPath(run.workDir, CheckpointState::kStepLog), lines))
    return e;
  logBytes += lines.size();
  logPoints = points;
  CheckpointState state;
  state.stage = stage;
  state.step = step;
  state.file = file;
  state.xxh3 = contentHash((*written)->getBuffer());
  // One time for the checkpoint and the log: a resume reads the
  // checkpoint's, and the log said a little more.
  double seconds = trainSeconds();
  state.seconds = seconds;
  state.backend = defaultBackendName();
  state.recipe = recipe.toJson();
  state.job = json::Object(run.job);
  // checkpoint.json names the stages; their steps are the step log's.
  for (const json::Value &curve : curves)
    state.log.push_back(json::Object{{"stage", *curve.getAsObject()->get("stage")}});
  state.logBytes = logBytes;
  state.logPoints = logPoints;
  if (llvm::Error e = writeFileAtomically(joinPath(run.workDir, "checkpoint.json"),
                                          llvm::formatv("{0:2}", state.toJson()).str()))
    return e;
  unreferenced.release();
  // Only now is the previous file unreferenced.
  if (!checkpointFile.empty() && checkpointFile != path)
    fs::remove(checkpointFile);
  checkpointFile = path;
  // training_log.json and the plot hold every step: rewritten at every
  // checkpoint, they made each cost the run so far (checkpointing every
  // step, step 4000 took 60x step 100). At a stage's end or a stop they are
  // written; between, once the time since the last write is 20 times what
  // it took.
  auto now = std::chrono::steady_clock::now();
  if (!final && std::chrono::duration<double>(now - lastLogWrite).count() < 20 * lastLogCost)
    return llvm::Error::success();
  if (llvm::Error e = writeLog(seconds))
    return e;
  lastLogWrite = std::chrono::steady_clock::now();
  lastLogCost = std::chrono::duration<double>(lastLogWrite - now).count();
  return llvm::Error::success();
}

double Trainer::trainSeconds() const {
  return earlierSeconds +
         std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

llvm::Error Trainer::writeLog(double seconds) const {
  if (ProcessGroup *group = processGroup(); group && group->rank() != 0)
    return llvm::Error::success();
  json::Value curvesJson = log();
  if (!run.logPath.empty())
    if (llvm::Error e = writeFileAtomically(
            run.logPath,
            llvm::formatv("{0:2}", json::Value(json::Object{{"job", json::Object(run.job)},
                                                            {"backend", defaultBackendName()},
                                                            {"recipe", recipe.toJson()},
                                                            {"train_seconds", seconds},
                                                            {"stages", curvesJson}}))
                .str()))
      return e;
  return run.plotPath.empty() ? llvm::Error::success() : writeLossPlot(curvesJson, run.plotPath);
}

//===----------------------------------------------------------------------===//
// The loop
//===----------------------------------------------------------------------===//

namespace {
/// A one-line progress report on stderr: redrawn in place on a terminal,
/// a line every few seconds otherwise (logs, CI).
class ProgressLine {
public:
  /// `later` names the job's stages after this one, which the ETA leaves
  /// out (their steps cost another time each).
  ProgressLine(std::string label, int64_t tokensPerStep, std::string later)
      : label(std::move(label)), later(std::move(later)), tokensPerStep(tokensPerStep),
        tty(llvm::sys::Process::StandardErrIsDisplayed()) {}
  ~ProgressLine() {
    if (tty && drawn)
      llvm::errs() << "\n";
  }
  /// After step `step` of `steps`. The rate is wall time over the steps
  /// since this run's first: that one compiles the step's functions, which
  /// the remaining steps do not repeat, while the checkpoints they write
  /// are part of their cost.
  void update(int64_t step, int64_t steps, double loss, double lr, llvm::StringRef ranks = "") {
    auto now = std::chrono::steady_clock::now();
    if (!firstStep) {
      firstStep = step;
      firstDone = now;
    }
    bool last = step == steps;
    if (!last && std::chrono::duration<double>(now - lastDraw).count() < (tty ? 0.2 : 10.0))
      return;
    lastDraw = now;
    std::string rate = "-- tok/s  ETA --";
    if (step > *firstStep) {
      double secondsPerStep =
          std::chrono::duration<double>(now - firstDone).count() / (step - *firstStep);
      double eta = (steps - step) * secondsPerStep;
      rate = llvm::formatv("{0:F0} tok/s  ETA {1}m{2:D2}s", tokensPerStep / secondsPerStep,
                           (int64_t)eta / 60, (int64_t)eta % 60);
    }
    // Fixed-point keeps a small KL's digits; an exponent keeps a diverging loss short.
    std::string lossText = std::abs(loss) < 1e4 ? llvm::formatv("{0:F5}", loss).str()
                                                : llvm::formatv("{0:E3}", loss).str();
    std::string line = llvm::formatv("{0} step {1}/{2}  loss {3}  lr {4:E2}  {5}{6}{7}", label,
                                     step, steps, lossText, lr, rate, later, ranks)
                           .str();
    if (tty)
      llvm::errs() << "\r\033[K" << line;
    else
      llvm::errs() << line << "\n";
    drawn = true;
  }

private:
  std::string label, later;
  int64_t tokensPerStep;
  bool tty, drawn = false;
  std::optional<int64_t> firstStep;
  std::chrono::steady_clock::time_point firstDone, lastDraw;
};

} // namespace

namespace {
std::atomic<bool> stopRequested{false};

extern "C" void requestStop(int signal) {
  stopRequested = true;
  // A second Ctrl-C stops at once.
  std::signal(signal, SIG_DFL);
}

/// While a stage trains alone (not under MPI, whose ranks would stop at
/// different steps): Ctrl-C or SIGTERM lets the running step finish, writes
/// a checkpoint and stops the job, rather than losing up to checkpoint_every
/// steps.
class StopOnSignal {
public:
  explicit StopOnSignal(bool enabled) : enabled(enabled) {
    stopRequested = false;
    if (enabled) {
      previousInt = std::signal(SIGINT, requestStop);
      previousTerm = std::signal(SIGTERM, requestStop);
    }
  }
  ~StopOnSignal() {
    if (enabled) {
      std::signal(SIGINT, previousInt);
      std::signal(SIGTERM, previousTerm);
    }
  }
  bool requested() const { return enabled && stopRequested; }

private:
  bool enabled;
  void (*previousInt)(int) = SIG_DFL;
  void (*previousTerm)(int) = SIG_DFL;
};
} // namespace

llvm::Error Trainer::runStage(size_t index, func::FuncOp gradFunc, TokenSource &data,
                              func::FuncOp shareFunc) {
  const StageRecipe &stage = recipe.stages[index];
  if (!gradFunc)
    return makeError("internal error: stage " + llvm::Twine(index + 1) +
                     " has no gradient function");
  auto created = GradientProgram::create(gradFunc, *store, recipe.seed + index);
  if (!created)
    return created.takeError();
  GradientProgram &program = *created;
  std::vector<std::string> names;
  std::vector<Tensor> m, v;
  for (size_t i = 0; i < program.size(); ++i) {
    names.push_back(program.name(i).str());
    m.push_back(Tensor::zeros(program.parameter(i).shape()));
    v.push_back(Tensor::zeros(program.parameter(i).shape()));
  }
  int64_t start = 0;
  if ((int64_t)index == resumeStage && resumeStep > 0) {
    auto file = WeightFile::openSafetensors(checkpointFile);
    if (!file)
      return file.takeError();
    for (size_t i = 0; i < names.size(); ++i)
      for (auto [prefix, t] : {std::pair{"adam_m/", &m[i]}, {"adam_v/", &v[i]}}) {
        const TensorInfo *info = (*file)->find(prefix + names[i]);
        if (!info || info->numElements() != t->numel() || info->dtype != DType::F32)
          return makeError(checkpointFile + ": corrupt checkpoint: no F32 '" + prefix +
                           names[i] + "' of shape " + t->shapeString());
        convertToF32(DType::F32, (*file)->bytes(*info), t->mutableData(), t->numel());
      }
    start = resumeStep;
  }
  if (curves.size() <= index)
    curves.push_back(json::Object{{"stage", stage.stage}, {"steps", json::Array()}});
  json::Array &points = *curves[index].getAsObject()->getArray("steps");

  int64_t parameterCount = 0;
  for (size_t i = 0; i < program.size(); ++i)
    parameterCount += program.parameter(i).numel();
  spdlog::info("stage {}/{} ({}): {} steps from step {}, {} trainable tensors, {} parameters",
               index + 1, recipe.stages.size(), stage.stage, stage.steps, start, program.size(),
               parameterCount);

  ProcessGroup *group = processGroup();
  // Layer-parallel: `share` runs this rank's layers over the whole batch and
  // its tensors are `program`'s (aliased), at program indices `global`;
  // owner[i] is the rank that trains program tensor i.
  std::optional<GradientProgram> share;
  std::vector<size_t> global;
  std::vector<int> owner;
  if (shareFunc) {
    if (!group)
      return makeError("internal error: a layer-parallel stage without a process group");
    auto createdShare = GradientProgram::create(shareFunc, *store, recipe.seed + index);
    if (!createdShare)
      return createdShare.takeError();
    share.emplace(std::move(*createdShare));
    llvm::StringMap<size_t> indexOf;
    for (size_t i = 0; i < program.size(); ++i)
      indexOf[program.name(i)] = i;
    std::vector<double> owners(program.size(), -INFINITY);
    for (size_t j = 0; j < share->size(); ++j) {
      auto it = indexOf.find(share->name(j));
      if (it == indexOf.end())
        return makeError("internal error: layer-parallel tensor '" + share->name(j) +
                         "' is not in the stage's step");
      global.push_back(it->second);
      program.parameter(it->second) = share->parameter(j);
      owners[it->second] = group->rank();
    }
    if (llvm::Error e = group->maxInPlace(owners))
      return e;
    for (size_t i = 0; i < program.size(); ++i) {
      if (owners[i] < 0)
        return makeError("internal error: no rank trains '" + program.name(i) + "'");
      owner.push_back((int)owners[i]);
    }
    spdlog::info("stage {}: layer-parallel over {} ranks, rank 0 trains {} of the {} tensors",
                 index + 1, group->size(), share->size(), program.size());
  } else {
    for (size_t i = 0; i < program.size(); ++i)
      global.push_back(i);
  }
  GradientProgram &runner = share ? *share : program;
  StopOnSignal signals(!group);
  runner.distribute(share ? nullptr : group);
  runner.setLanes(recipe.lanes);
  // Layer-parallel: every tensor from the rank that trains it, so that all
  // hold the whole step's weights and moments (for the checkpoint, the next
  // stage and the export).
  auto gatherLayers = [&]() -> llvm::Error {
    for (size_t i = 0; share && i < program.size(); ++i)
      for (Tensor *t : {&program.parameter(i), &m[i], &v[i]})
        if (llvm::Error e = group->broadcast(t->mutableData(), t->numel(), owner[i]))
          return e;
    return llvm::Error::success();
  };
  // The cores of this machine, shared by the job's ranks on it.
  unsigned threads =
      run.threads ? run.threads
                  : std::max(1u, std::thread::hardware_concurrency() /
                                     (group ? (unsigned)group->localSize() : 1u));
  bool lm = stage.stage == "lm";
  std::vector<int32_t> positions(recipe.seqLen);
  std::iota(positions.begin(), positions.end(), 0);
  Tensor positionTensor = Tensor::ints(positions);
  int64_t laterSteps = 0;
  for (size_t i = index + 1; i < recipe.stages.size(); ++i)
    laterSteps += recipe.stages[i].steps;
  std::string later =
      index + 1 == recipe.stages.size() ? ""
      : index + 2 == recipe.stages.size()
          ? llvm::formatv(" + stage {0} ({1} steps)", index + 2, laterSteps).str()
          : llvm::formatv(" + stages {0}-{1} ({2} steps)", index + 2, recipe.stages.size(),
                          laterSteps)
                .str();
  ProgressLine progress(llvm::formatv("stage {0} ({1})", index + 1, stage.stage).str(),
                        recipe.batch * recipe.seqLen, later);
  auto stageStart = std::chrono::steady_clock::now();
  // A resumed stage's clock goes on from its last logged step's, so a plot
  // against time has no teeth (the time lost to the kill is not counted).
  double elapsedBefore =
      points.empty() ? 0 : points.back().getAsObject()->getNumber("elapsed_s").value_or(0);
  for (int64_t step = start; step < stage.steps; ++step) {
    auto stepStart = std::chrono::steady_clock::now();
    std::vector<std::vector<Tensor>> batch;
    for (int64_t b = 0; b < recipe.batch; ++b) {
      if (!runner.ownsSequence(b, recipe.batch)) {
        batch.emplace_back(); // another rank's
        continue;
      }
      // Each stage draws from its own part of the sequence index space.
      uint64_t sequenceIndex =
          ((uint64_t)index << 40) + (uint64_t)step * recipe.batch + (uint64_t)b;
      std::vector<int32_t> seq = data.sequence(sequenceIndex);
      std::vector<Tensor> args{
          Tensor::ints(std::vector<int32_t>(seq.begin(), seq.begin() + recipe.seqLen)),
          positionTensor};
      if (lm)
        args.push_back(Tensor::ints(data.targets(sequenceIndex, seq)));
      batch.push_back(std::move(args));
    }
    auto computed = runner.computeBatch(batch, threads);
    if (!computed)
      return computed.takeError();
    double loss = *computed;
    double commSeconds = runner.communicationSeconds();
    auto commStart = std::chrono::steady_clock::now();
    if (share) {
      // The shares' losses add up to the step's (in rank order).
      auto losses = group->gather({loss}, "the shares' losses");
      if (!losses)
        return losses.takeError();
      loss = 0;
      for (double l : *losses)
        loss += l;
    }
    // Before the update, so that the weights and the last checkpoint stay finite. At a stage's
    // first step the model it starts from computes them: a smaller rate would not help.
    auto notFinite = [&](llvm::StringRef what, double value) {
      return makeError(llvm::formatv("stage {0} ({1}): {2} is {3} at step {4}; {5}", index + 1,
                                     stage.stage, what, value, step + 1,
                                     step == 0 ? "before any update of this stage: the "
                                                 "weights it starts from give values float32 "
                                                 "cannot hold (check them)"
                                               : llvm::formatv("lower the learning rate (lr {0})",
                                                               stage.lr)
                                                     .str())
                           .str());
    };
    if (!std::isfinite(loss))
      return notFinite("the loss", loss);
    // Per tensor, in the step's order, whichever rank computed it: the
    // norm, and so the clipping, of one process.
    std::vector<double> squares(program.size(), share ? -INFINITY : 0.0);
    // One thread per tensor, so each sum is the same whatever the threads.
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t j = 0; j < runner.size(); ++j)
      squares[global[j]] =
          sumOfSquares(runner.gradient(j).data(), runner.gradient(j).numel());
    if (share) {
      if (llvm::Error e = group->maxInPlace(squares))
        return e;
      commSeconds += std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                   commStart)
                         .count();
    }
    double norm2 = 0;
    for (double s2 : squares)
      norm2 += s2;
    double gradNorm = std::sqrt(norm2);
    if (!std::isfinite(gradNorm))
      return notFinite(llvm::formatv("the gradient norm (loss {0:e})", loss).str(), gradNorm);
    float clipScale = stage.clip > 0 && gradNorm > stage.clip ? stage.clip / gradNorm : 1.0;

    // AdamW (Loshchilov & Hutter), as torch.optim.AdamW.
    double lr = stage.learningRate(step);
    int64_t t = step + 1;
    double c1 = 1 - std::pow(stage.beta1, t), c2 = 1 - std::pow(stage.beta2, t);
    for (size_t j = 0; j < runner.size(); ++j) {
      size_t i = global[j];
      // A teacher weight's copy at lr_rest's rate when the recipe sets one.
      double rate = stage.learningRate(step, program.isTeacherCopy(i));
      Tensor &p = runner.parameter(j);
      const float *g = runner.gradient(j).data();
      float *pd = p.mutableData(), *md = m[i].mutableData(), *vd = v[i].mutableData();
      // In float with the step's constants folded in double, as
      // torch.optim.AdamW does for f32 parameters.
      AdamWStep constants{clipScale,
                          (float)stage.beta1,
                          (float)stage.beta2,
                          (float)(1 - stage.beta1),
                          (float)(1 - stage.beta2),
                          p.rank() >= 2 ? (float)(1 - rate * stage.weightDecay) : 1.0f,
                          (float)(rate / c1),
                          (float)std::sqrt(c2),
                          (float)stage.eps};
      constexpr int64_t kChunk = 1 << 14;
      int64_t n = p.numel(), chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= 4 * kChunk)
      for (int64_t c = 0; c < chunks; ++c) {
        int64_t lo = c * kChunk;
        adamwUpdate(pd + lo, g + lo, md + lo, vd + lo, std::min(kChunk, n - lo), constants);
      }
    }

    auto now = std::chrono::steady_clock::now();
    double stepSeconds = std::chrono::duration<double>(now - stepStart).count();
    double tokensPerSecond = recipe.batch * recipe.seqLen / std::max(stepSeconds, 1e-9);
    json::Object point{{"step", step + 1},
                       {"loss", loss},
                       {"lr", lr},
                       {"grad_norm", gradNorm},
                       {"tokens_per_s", tokensPerSecond},
                       {"elapsed_s",
                        elapsedBefore + std::chrono::duration<double>(now - stageStart).count()},
                       {"ranks", group ? group->size() : 1}};
    std::string ranks;
    if (group) {
      // Per rank: its tokens over its compute time, and its time in
      // collectives (which includes waiting for slower ranks).
      int64_t mine = 0;
      for (int64_t b = 0; b < recipe.batch; ++b)
        mine += runner.ownsSequence(b, recipe.batch);
      auto stats = group->gather({(double)(mine * recipe.seqLen), runner.computeSeconds(),
                                  commSeconds},
                                 "the step statistics");
      if (!stats)
        return stats.takeError();
      json::Array rankRates, rankComm;
      double slowest = INFINITY, fastest = 0;
      for (int r = 0; r < group->size(); ++r) {
        double rate = (*stats)[3 * r] / std::max((*stats)[3 * r + 1], 1e-9);
        rankRates.push_back(rate);
        rankComm.push_back((*stats)[3 * r + 2]);
        slowest = std::min(slowest, rate);
        fastest = std::max(fastest, rate);
      }
      double comm = commSeconds;
      point["rank_tokens_per_s"] = std::move(rankRates);
      point["rank_comm_s"] = std::move(rankComm);
      point["comm_share"] = comm / std::max(stepSeconds, 1e-9);
      ranks = llvm::formatv("  {0} ranks {1:F0}-{2:F0} tok/s each, comm {3:P0}",
                            group->size(), slowest, fastest,
                            comm / std::max(stepSeconds, 1e-9))
                  .str();
    }
    points.push_back(std::move(point));
    if (!group || group->rank() == 0)
      progress.update(step + 1, stage.steps, loss, lr, ranks);
    bool stop = signals.requested();
    if ((step + 1) % recipe.checkpointEvery == 0 || step + 1 == stage.steps || stop) {
      if (llvm::Error e = gatherLayers())
        return e;
      if (llvm::Error e = writeCheckpoint(index, step + 1, step + 1 == stage.steps || stop,
                                          names, program.parameters(), m, v))
        return e;
    }
    if (stop)
      return makeError(llvm::formatv("stopped by a signal after stage {0} step {1}/{2}: the "
                                     "checkpoint is written; run the same command with "
                                     "--resume to continue",
                                     index + 1, step + 1, stage.steps)
                           .str());
  }
  if (stage.steps == 0)
    return writeCheckpoint(index, 0, /*final=*/true, names, program.parameters(), m, v);
  return llvm::Error::success();
}

//===----------------------------------------------------------------------===//
// The plot
//===----------------------------------------------------------------------===//

llvm::Error attnedit::writeLossPlot(const json::Value &curves, llvm::StringRef path) {
  const json::Array *stages = curves.getAsArray();
  if (!stages)
    return makeError("writeLossPlot: curves must be a list of stages");
  const double panelW = 420, panelH = 260, margin = 56;
  size_t panels = std::max<size_t>(stages->size(), 1);
  SvgChart chart(panels * (panelW + margin) + margin, panelH + 2 * margin);
  for (auto [k, stageValue] : llvm::enumerate(*stages)) {
    const json::Object *stage = stageValue.getAsObject();
    const json::Array *points = stage ? stage->getArray("steps") : nullptr;
    if (!points)
      continue;
    std::vector<std::pair<double, double>> xy;
    for (const json::Value &p : *points) {
      const json::Object *o = p.getAsObject();
      std::optional<double> step = o->getNumber("step"), loss = o->getNumber("loss");
      if (step && loss && *loss > 0)
        xy.push_back({*step, *loss});
    }
    SvgChart::Panel panel{margin + k * (panelW + margin), margin, panelW, panelH};
    std::string name = stage->getString("stage").value_or("?").str();
    chart.text(panel.left, panel.top - 12, llvm::formatv("stage {0}: {1} loss", k + 1, name),
               "font-size='14'");
    chart.frame(panel);
    if (xy.empty())
      continue;
    // The y range in quarter decades, the x range the steps logged.
    double low = std::log10(xy.front().second), high = low;
    for (auto [x, y] : xy) {
      low = std::min(low, std::log10(y));
      high = std::max(high, std::log10(y));
    }
    low = std::floor(low * 4) / 4;
    high = std::max(std::ceil(high * 4) / 4, low + 0.25);
    panel.xLow = xy.front().first;
    panel.xHigh = std::max(xy.back().first, panel.xLow + 1);
    panel.yLow = std::pow(10, low);
    panel.yHigh = std::pow(10, high);
    for (int i = 0; i <= 4; ++i) {
      // Three significant digits keep ticks 10^(1/16) apart distinct at any
      // scale (formatv has no %g: its default printed 0.00 for every tick of
      // a loss below 0.005).
      double y = std::pow(10, low + i * (high - low) / 4);
      char tick[32];
      std::snprintf(tick, sizeof(tick), "%.3g", y);
      chart.gridLine(panel, y, tick);
    }
    double below = panel.top + panelH + 16;
    chart.text(panel.left, below, llvm::Twine((int64_t)panel.xLow), "text-anchor='middle'");
    chart.text(panel.left + panelW, below, llvm::Twine((int64_t)panel.xHigh),
               "text-anchor='middle'");
    chart.text(panel.left + panelW / 2, below + 16, "step", "text-anchor='middle'");
    chart.polyline(panel, xy, "#1f77b4", 1.5);
  }
  return chart.write(path);
}
