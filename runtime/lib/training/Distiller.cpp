//===- Distiller.cpp - pretraining and progressive distillation ------------===//

#include "attnedit/Runtime/Training/Distiller.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"
#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Runtime/Execution/Executor.h"
#include "attnedit/Runtime/Training/Evidence.h"
#include "attnedit/Runtime/Training/ProcessGroup.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Support/xxhash.h"

#include <spdlog/spdlog.h>

#include <unistd.h>

using namespace mlir;
using namespace mlir::attnedit;
namespace json = llvm::json;

llvm::Error attnedit::runPipeline(ModuleOp module, llvm::StringRef pipeline,
                                  llvm::StringRef what) {
  static bool registered = (registerAttnEditPasses(), true);
  (void)registered;
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  llvm::StringSet<> warned;
  ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &d) {
    // A pass that succeeds may still warn (an edit dropping the teacher's
    // q/k/v biases): the user hears it as attnedit-opt's user would, once
    // rather than once per layer (the layer is in the location, not shown).
    if (d.getSeverity() == DiagnosticSeverity::Warning) {
      if (warned.insert(d.str()).second)
        warn(what.empty() ? d.str() : what + ": " + d.str());
    } else
      os << d << "\n";
    return success();
  });
  PassManager pm(module.getContext());
  if (failed(parsePassPipeline(pipeline, pm, os))) {
    if (what.empty())
      return makeError("bad pass pipeline '" + pipeline + "': " +
                       llvm::StringRef(diagnostics).rtrim());
    // Named as the user gave it: MLIR's "failed to add `pass` with options"
    // spells out the options the caller added (scratch paths). llvm::cl
    // prints a bad value's reason to stderr itself.
    std::string reason;
    llvm::SmallVector<llvm::StringRef> lines;
    llvm::StringRef(diagnostics).split(lines, '\n', -1, false);
    for (llvm::StringRef line : lines) {
      line = line.trim();
      line.consume_front("<Pass-Options-Parser>: ");
      if (!line.empty() && !line.starts_with("failed to add"))
        reason += (reason.empty() ? "" : "; ") + line.str();
    }
    return makeError(what + ": " + (reason.empty() ? "not valid (the reason is above)" : reason));
  }
  if (failed(pm.run(module)))
    return makeError((what.empty() ? pipeline : what) + " failed: " +
                     llvm::StringRef(diagnostics).rtrim());
  return llvm::Error::success();
}

llvm::Error attnedit::writeModule(ModuleOp module, llvm::StringRef path) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  return writeFileAtomically(path, text);
}

static OwningOpRef<ModuleOp> copyOf(ModuleOp module) {
  return OwningOpRef<ModuleOp>(cast<ModuleOp>(module->clone()));
}

llvm::Expected<OwningOpRef<ModuleOp>> attnedit::raisedCopy(ModuleOp teacher) {
  OwningOpRef<ModuleOp> copy = copyOf(teacher);
  if (llvm::Error e = runPipeline(*copy, "attnedit-raise-attention"))
    return std::move(e);
  return copy;
}

/// The exporter's view of `store`.
static ParameterReader readerOf(ParameterStore &store) {
  return [&store](llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                  llvm::StringRef scope) -> llvm::Expected<std::vector<float>> {
    auto t = scope.empty() ? store.get(name, shape) : store.get(name, shape, scope);
    if (!t)
      return t.takeError();
    return std::vector<float>(t->data(), t->data() + t->numel());
  };
}

/// Logits of `tokens` at positions 0..T-1 under `func` with `store`.
static llvm::Expected<Tensor> logitsOf(func::FuncOp func, ParameterStore &store,
                                       llvm::ArrayRef<int32_t> tokens) {
  std::vector<int32_t> positions(tokens.size());
  for (size_t i = 0; i < positions.size(); ++i)
    positions[i] = (int32_t)i;
  auto results =
      defaultExecutor().run(func, {Tensor::ints(tokens.vec()), Tensor::ints(positions)}, store);
  if (!results)
    return results.takeError();
  return results->front();
}

llvm::Expected<CheckedExport> attnedit::exportChecked(ModuleOp module, ParameterStore &store,
                                                      llvm::StringRef dir,
                                                      const ExportOptions &options,
                                                      double tolerance) {
  auto raised = raisedCopy(module);
  if (!raised)
    return raised.takeError();
  CheckedExport result;
  ExportOptions withCheck = options;
  withCheck.check = [&](llvm::StringRef written, ModuleOp exported) -> llvm::Error {
    auto forward = exported.lookupSymbol<func::FuncOp>("forward");
    int64_t vocab = cast<RankedTensorType>(forward.getFunctionType().getResult(0)).getDimSize(1);
    std::vector<int32_t> tokens;
    for (int64_t i = 0; i < 8; ++i)
      tokens.push_back((int32_t)((1 + 37 * i) % vocab));
    auto expected = logitsOf(forward, store, tokens);
    if (!expected)
      return expected.takeError();
    auto loaded = Model::load(written);
    if (!loaded)
      return makeError("export: the written directory does not load back: " +
                       llvm::toString(loaded.takeError()));
    auto got = (*loaded)->forward(tokens);
    if (!got)
      return got.takeError();
    if (got->shape() != expected->shape())
      return makeError("export: the written directory computes logits of shape " +
                       got->shapeString() + ", the module " + expected->shapeString());
    double maxDiff = 0, maxRef = 0;
    for (int64_t i = 0; i < got->numel(); ++i) {
      maxDiff = std::max(maxDiff, (double)std::fabs(got->data()[i] - expected->data()[i]));
      maxRef = std::max(maxRef, (double)std::fabs(expected->data()[i]));
    }
    result.relativeError = maxDiff / std::max(maxRef, 1e-30);
    if (!(result.relativeError <= tolerance))
      return makeError(llvm::formatv("export: the written directory computes other logits "
                                     "than the module: max relative difference {0:e} > {1:e}",
                                     result.relativeError, tolerance)
                           .str());
    return llvm::Error::success();
  };
  auto summary = exportModel(**raised, readerOf(store), dir, withCheck);
  if (!summary)
    return summary.takeError();
  result.summary = std::move(*summary);
  if (result.summary.tokenizerFile.empty())
    spdlog::warn("export: the module names no tokenizer, so the model written has none (text "
                 "in and out will need --tokenizer)");
  return result;
}

llvm::Expected<llvm::StringMap<std::string>>
attnedit::editOptionValues(llvm::StringRef options) {
  llvm::StringMap<std::string> values;
  std::string all = options.str();
  while (!(options = options.ltrim()).empty()) {
    llvm::StringRef name = options.take_until([](char c) { return c == '=' || llvm::isSpace(c); });
    llvm::StringRef rest = options.drop_front(name.size()), value;
    if (rest.consume_front("=")) {
      if (!rest.empty() && (rest.front() == '"' || rest.front() == '\'')) {
        size_t end = rest.find(rest.front(), 1);
        value = rest.slice(1, end);
        rest = end == llvm::StringRef::npos ? "" : rest.drop_front(end + 1);
      } else {
        value = rest.take_until(llvm::isSpace);
        rest = rest.drop_front(value.size());
      }
    }
    if (!values.try_emplace(name, value.str()).second)
      return makeError("--edit \"" + all + "\": " + name + "= is given twice");
    options = rest;
  }
  return values;
}

llvm::Expected<OwningOpRef<ModuleOp>> attnedit::editedCopy(ModuleOp teacher,
                                                           llvm::StringRef editOptions,
                                                           llvm::StringRef paramsOut) {
  auto values = editOptionValues(editOptions);
  if (!values)
    return values.takeError();
  if (values->count("params-out"))
    return makeError("--edit \"" + editOptions +
                     "\": params-out is the command's to choose (the student's weights land "
                     "in its output directory)");
  OwningOpRef<ModuleOp> copy = copyOf(teacher);
  // Quoted: a path may hold spaces.
  std::string pipeline = ("attnedit-edit-attention{" + editOptions + " params-out=\"" +
                          paramsOut + "\"}")
                             .str();
  // The error names the user's options, not the scratch file added to them.
  if (llvm::Error e = runPipeline(*copy, pipeline, ("--edit \"" + editOptions + "\"").str()))
    return std::move(e);
  return copy;
}

llvm::Expected<OwningOpRef<ModuleOp>> attnedit::trainingCopy(ModuleOp student,
                                                             llvm::StringRef stageOptions) {
  OwningOpRef<ModuleOp> copy = copyOf(student);
  std::string pipeline = ("attnedit-build-distill{" + stageOptions +
                          "},attnedit-autodiff{func=train_step}")
                             .str();
  if (llvm::Error e = runPipeline(*copy, pipeline))
    return std::move(e);
  return copy;
}

//===----------------------------------------------------------------------===//
// Jobs
//===----------------------------------------------------------------------===//

/// Exports the trained model into work/export, then moves its files into
/// outDir, config.json last: a directory with a config.json is complete,
/// and the logs and work folder already in outDir stay.
static llvm::Error writeModelDir(ModuleOp module, ParameterStore &store,
                                 const JobOptions &options) {
  std::string staging = joinPath(joinPath(options.outDir, "work"), "export");
  auto exported = exportChecked(module, store, staging);
  if (!exported)
    return exported.takeError();
  const ExportSummary *summary = &exported->summary;
  // Everything the export wrote: the weights, config.json and the tokenizer
  // with its side files (tokenizer_config.json holds the chat template; a
  // fixed list of three lost it). config.json last: it marks the model whole.
  std::vector<std::string> files;
  std::error_code listed;
  for (llvm::sys::fs::directory_iterator it(staging, listed), end; it != end && !listed;
       it.increment(listed))
    if (llvm::sys::path::filename(it->path()) != "config.json")
      files.push_back(llvm::sys::path::filename(it->path()).str());
  if (listed)
    return makeError(staging + ": cannot list: " + listed.message());
  llvm::sort(files);
  files.push_back("config.json");
  for (const std::string &file : files)
    if (std::error_code ec = llvm::sys::fs::rename(joinPath(staging, file),
                                                   joinPath(options.outDir, file)))
      return makeError(joinPath(options.outDir, file) + ": cannot move into place: " +
                       ec.message());
  llvm::sys::fs::remove_directories(staging);
  spdlog::info("wrote {} ({}, {} tensors; reloaded logits within {:.1e} relative)",
               options.outDir, summary->architecture, summary->numTensors,
               exported->relativeError);
  return llvm::Error::success();
}

/// `path`'s size and xxh3 (-1 and "" when it cannot be read).
static json::Object fileIdentity(llvm::StringRef path) {
  auto buffer = readInputFile(path, /*isText=*/false, /*requiresNullTerminator=*/false);
  if (!buffer)
    return json::Object{{"bytes", -1}, {"xxh3", ""}};
  return json::Object{
      {"bytes", (int64_t)(*buffer)->getBufferSize()},
      {"xxh3", llvm::utohexstr(llvm::xxh3_64bits(
                   llvm::arrayRefFromStringRef((*buffer)->getBuffer())))}};
}

json::Value attnedit::moduleIdentity(ModuleOp module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module->print(os);
  json::Array files;
  if (auto names = module->getAttrOfType<ArrayAttr>(attrs::kParameterFiles))
    for (auto name : names.getAsValueRange<StringAttr>()) {
      json::Object file = fileIdentity(resolveModulePath(module, name));
      // As written, so that a resume from another folder is the same job.
      file["file"] = name;
      files.push_back(std::move(file));
    }
  return json::Object{{"module_xxh3", llvm::utohexstr(llvm::xxh3_64bits(text))},
                      {"parameter_files", std::move(files)}};
}

/// The files --edit's options name (a plan, calibrated sink logits or
/// activations), by content: a resume after one changed would rebuild
/// another student under the checkpoint's trained values.
static json::Object editFiles(const llvm::StringMap<std::string> &options) {
  json::Object files;
  for (llvm::StringRef key : {"plan", "sink-logits", "activations"})
    if (auto it = options.find(key); it != options.end() && !it->second.empty())
      files[key] = fileIdentity(it->second);
  return files;
}

/// The `layers=` of this rank's share of a layer-parallel stage 1: the
/// edited attention layers of `model` (by attention-op index), dealt out
/// round robin, so that ranks get neighbouring layers of similar cost.
static llvm::Expected<std::string> layerShare(ModuleOp model, const ProcessGroup &group) {
  std::vector<int64_t> edited;
  int64_t index = 0;
  auto forward = model.lookupSymbol<func::FuncOp>("forward");
  if (forward)
    forward.walk([&](AttentionLikeOpInterface op) {
      if (!isa<AttentionOp>(op.getOperation()))
        edited.push_back(index);
      ++index;
    });
  if ((int64_t)edited.size() < group.size())
    return makeError(llvm::formatv("layer-parallel stage: {0} ranks but {1} edited attention "
                                   "layers; run at most {1} ranks, or \"parallel\": \"data\"",
                                   group.size(), edited.size())
                         .str());
  std::string layers;
  for (size_t j = group.rank(); j < edited.size(); j += group.size())
    layers += (layers.empty() ? "" : ",") + std::to_string(edited[j]);
  return " layers=" + layers;
}

/// Trains `model`'s parameters in `store` through `trainer`'s stages, each
/// built with the stage's options plus `stageOptions`, then writes the model.
/// `afterStage`, when given, is called before the first stage ("edited")
/// unless resuming, and after each stage that runs.
static llvm::Error
trainAndWrite(ModuleOp model, ParameterStore &store, Trainer &trainer, TokenSource &data,
              const JobOptions &options, llvm::StringRef stageOptions,
              const std::function<llvm::Error(llvm::StringRef)> &afterStage = nullptr) {
  ProcessGroup *group = processGroup();
  // Not on a resume: the store holds trained values then, not the edit's.
  if (afterStage && !options.recipe.stages.empty() && !trainer.resumed())
    if (llvm::Error e = afterStage("edited"))
      return e;
  for (size_t i = 0; i < options.recipe.stages.size(); ++i) {
    auto stageDone = [&]() -> llvm::Error {
      if (!afterStage)
        return llvm::Error::success();
      return afterStage(
          llvm::formatv("stage {0} ({1})", i + 1, options.recipe.stages[i].stage).str());
    };
    if (trainer.finished(i)) {
      // Resumed at this stage's last checkpoint: a kill may have come
      // before its after-stage work (its evidence), which is done again
      // from the same weights.
      if (trainer.resumedAtEndOf(i))
        if (llvm::Error e = stageDone())
          return e;
      continue;
    }
    const StageRecipe &stage = options.recipe.stages[i];
    auto training = trainingCopy(model, stage.buildOptions() + stageOptions.str());
    if (!training)
      return training.takeError();
    // Layer-parallel: this rank's share of the layers as a step of its own.
    OwningOpRef<ModuleOp> share;
    if (stage.parallel == "layers" && group && group->size() > 1) {
      auto layers = layerShare(model, *group);
      if (!layers)
        return layers.takeError();
      auto built = trainingCopy(model, stage.buildOptions() + stageOptions.str() + *layers);
      if (!built)
        return built.takeError();
      share = std::move(*built);
    }
    if (llvm::Error e = trainer.runStage(
            i, (*training)->lookupSymbol<func::FuncOp>("train_step_grad"), data,
            share ? (*share).lookupSymbol<func::FuncOp>("train_step_grad") : func::FuncOp()))
      return e;
    if (llvm::Error e = stageDone())
      return e;
  }
  if (!group)
    return writeModelDir(model, store, options);
  // Rank 0 writes; the others wait, so that the directory is there for all
  // when the job returns (the demo loads it next).
  if (group->rank() == 0)
    if (llvm::Error e = writeModelDir(model, store, options))
      return e;
  return group->barrier();
}

/// Under mpirun, the directory of rank > 0's own copies of the modules a
/// job builds (a unique temporary directory, removed with the object): only
/// rank 0 writes into the output directory. Empty otherwise.
namespace {
class RankScratch {
public:
  static llvm::Expected<RankScratch> create() {
    RankScratch scratch;
    ProcessGroup *group = processGroup();
    if (!group || group->rank() == 0)
      return scratch;
    // Named by host and process, so that the next job's rank of this number
    // on this machine removes the one a killed rank left (MPI_Abort,
    // mpirun's SIGTERM and SIGKILL end a rank without its destructor); a
    // live rank elsewhere, sharing $TMPDIR, keeps its own.
    llvm::SmallString<128> tmp;
    llvm::sys::path::system_temp_directory(/*ErasedOnReboot=*/true, tmp);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    std::string dir =
        scratchBeside(joinPath(tmp, llvm::formatv("attnedit-rank{0}", group->rank()).str()),
                      "-" + std::string(host) + "-");
    if (std::error_code ec = llvm::sys::fs::create_directories(dir))
      return makeError("cannot create a temporary directory for rank " +
                       llvm::Twine(group->rank()) + ": " + dir + ": " + ec.message());
    scratch.dir = dir;
    return scratch;
  }
  RankScratch(RankScratch &&other) : dir(std::move(other.dir)) { other.dir.clear(); }
  ~RankScratch() {
    if (!dir.empty())
      llvm::sys::fs::remove_directories(dir);
  }
  /// `dir` for rank 0 (and without mpirun), the scratch directory otherwise.
  llvm::StringRef dirFor(llvm::StringRef shared) const { return dir.empty() ? shared : dir; }

private:
  RankScratch() = default;
  std::string dir;
};
} // namespace

/// The reports a job writes beside its `work` as it trains.
static constexpr const char *kReports[] = {"training_log.json", "training_loss.svg",
                                           "evidence.json", "evidence.svg"};

/// The job's lock on `work`: rank 0's (and a lone process's), since ranks of
/// one job share the directory.
static llvm::Expected<std::optional<JobLock>> lockOf(llvm::StringRef work) {
  if (ProcessGroup *group = processGroup(); group && group->rank() != 0)
    return std::optional<JobLock>();
  auto lock = JobLock::acquire(work);
  if (!lock)
    return lock.takeError();
  // The temporaries of the reports a killed job was replacing beside `work`
  // (acquire removed those in it).
  llvm::StringRef outDir = llvm::sys::path::parent_path(work);
  for (const char *report : kReports)
    llvm::sys::fs::remove(joinPath(outDir, report) + ".tmp");
  return std::optional<JobLock>(std::move(*lock));
}

/// Removes what a job's start wrote, `work` and an `outDir` left empty, when
/// the job created them and fails before it trains: a bad `--edit` would
/// otherwise leave a job.lock and a teacher.mlir that look like a job. Made
/// once the job holds the lock on `work` (and destroyed before it lets go),
/// so that it never removes another job's folder.
class FreshStart {
public:
  FreshStart(std::string outDir, std::string work, bool outExisted, bool workExisted)
      : outDir(std::move(outDir)), work(std::move(work)), outExisted(outExisted),
        workExisted(workExisted) {}
  FreshStart(const FreshStart &) = delete;
  void trainingStarts() { failed = false; }
  ~FreshStart() {
    ProcessGroup *group = processGroup();
    if (!failed || (group && group->rank() != 0))
      return;
    if (!workExisted)
      llvm::sys::fs::remove_directories(work);
    if (!outExisted)
      llvm::sys::fs::remove(outDir); // only if empty
  }

private:
  std::string outDir, work;
  bool outExisted, workExisted, failed = true;
};

/// A job starting afresh writes its model, logs and plots into `outDir` at the end: anything
/// else there (another model, a user's files) is not its to replace. Its own logs and `work`
/// may be there from a start that was killed before its first checkpoint.
static llvm::Error refuseForeignOutput(llvm::StringRef outDir) {
  if (llvm::sys::fs::exists(joinPath(joinPath(outDir, "work"), "checkpoint.json")))
    return llvm::Error::success();
  if (!llvm::sys::fs::exists(outDir))
    return llvm::Error::success();
  if (!llvm::sys::fs::is_directory(outDir))
    return makeError(outDir + " exists and is not a directory (--out names the directory of "
                              "the model to write)");
  auto foreign = foreignEntries(outDir, [](llvm::StringRef name) {
    return name == "work" || llvm::is_contained(kReports, name);
  });
  if (!foreign)
    return makeError(outDir + ": cannot list: " + foreign.getError().message());
  if (!foreign->empty())
    return makeError(outDir + " holds '" + foreign->front() +
                     "', which this job did not write; not writing into it (choose a new output "
                     "directory, or remove it)");
  return llvm::Error::success();
}

/// The run of a job writing to options.outDir, identified by `job`.
static TrainingRun runOf(const JobOptions &options, json::Object job) {
  return TrainingRun{joinPath(options.outDir, "work"),
                     joinPath(options.outDir, "training_log.json"),
                     joinPath(options.outDir, "training_loss.svg"), options.resume,
                     std::move(job), options.threads};
}

llvm::Expected<double> attnedit::trainSeconds(llvm::StringRef outDir) {
  std::string path = joinPath(outDir, "training_log.json");
  auto buffer = readInputFile(path, /*isText=*/true);
  if (!buffer)
    return makeError(path, "cannot read: " + buffer.getError().message());
  auto log = parseJson((*buffer)->getBuffer());
  if (!log)
    return makeError(path, llvm::toString(log.takeError()));
  const json::Object *object = log->getAsObject();
  std::optional<double> seconds = object ? object->getNumber("train_seconds") : std::nullopt;
  if (!seconds)
    return makeError(path, "no train_seconds");
  return *seconds;
}

llvm::Error attnedit::pretrain(ModuleOp model, TokenSource &data, const JobOptions &options,
                               json::Value config) {
  for (const StageRecipe &stage : options.recipe.stages)
    if (stage.stage != "lm")
      return makeError("train: every stage of the recipe must be 'lm', not '" + stage.stage +
                       "'");
  if (ProcessGroup *group = processGroup())
    if (llvm::Error e = options.recipe.checkRanks(group->size()))
      return e;
  // Before the lock, which makes `work` in the directory refused.
  if (llvm::Error e = refuseForeignOutput(options.outDir))
    return e;
  auto lock = lockOf(joinPath(options.outDir, "work"));
  if (!lock)
    return lock.takeError();
  ParameterStore store;
  json::Object job{{"job", "train"}, {"model", moduleIdentity(model)}, {"data", data.identity()}};
  if (config.kind() != json::Value::Null)
    job["config"] = std::move(config);
  auto trainer = Trainer::create(options.recipe, runOf(options, std::move(job)), store);
  if (!trainer)
    return trainer.takeError();
  return trainAndWrite(model, store, *trainer, data, options, "");
}

llvm::Error attnedit::distill(Model &teacher, llvm::StringRef editOptions, TokenSource &data,
                              const JobOptions &options) {
  for (const StageRecipe &stage : options.recipe.stages)
    if (stage.stage == "lm")
      return makeError("distill: recipe stages must be 'layerwise' or 'model', not 'lm'");
  // Raised first, to check the recipe's layer indices against the teacher's
  // layers before anything is written (build-distill would only find them
  // after the edit, with a partial job on disk).
  auto raised = raisedCopy(teacher.module());
  if (!raised)
    return raised.takeError();
  int64_t layers = 0;
  if (auto forward = (*raised)->lookupSymbol<func::FuncOp>("forward"))
    forward.walk([&](AttentionLikeOpInterface) { ++layers; });
  if (llvm::Error e = options.recipe.validateForModel(layers))
    return e;
  if (ProcessGroup *group = processGroup())
    if (llvm::Error e = options.recipe.checkRanks(group->size()))
      return e;
  std::string work = joinPath(options.outDir, "work");
  bool outExisted = llvm::sys::fs::exists(options.outDir);
  bool workExisted = llvm::sys::fs::exists(work);
  if (llvm::Error e = refuseForeignOutput(options.outDir))
    return e;
  auto lock = lockOf(work);
  if (!lock)
    return lock.takeError();
  FreshStart start(options.outDir, work, outExisted, workExisted);
  auto scratch = RankScratch::create();
  if (!scratch)
    return scratch.takeError();
  // Before anything in `work` is written: a resume of another job is
  // refused here, and a fresh job over an old checkpoint too.
  json::Object job{{"job", "distill"},
                   {"teacher", moduleIdentity(teacher.module())},
                   {"edit", editOptions},
                   {"data", data.identity()}};
  // Only when there are some: checkpoints from before had no such field.
  auto editValues = editOptionValues(editOptions);
  if (!editValues)
    return editValues.takeError();
  if (json::Object files = editFiles(*editValues); !files.empty())
    job["edit_files"] = std::move(files);
  ParameterStore store;
  auto trainer = Trainer::create(options.recipe, runOf(options, std::move(job)), store);
  if (!trainer)
    return trainer.takeError();
  std::string teacherModule = joinPath(scratch->dirFor(work), "teacher.mlir");
  if (llvm::Error e = writeModule(**raised, teacherModule))
    return e;
  // The edit is deterministic, so a resumed run rebuilds the same student;
  // trained values then come from the checkpoint, which the store already
  // holds and which take precedence over the files opened now.
  std::string studentModule = joinPath(scratch->dirFor(work), "student.mlir");
  auto student = editedCopy(**raised, editOptions,
                            joinPath(scratch->dirFor(work), "student_init.safetensors"));
  if (!student)
    return student.takeError();
  if (llvm::Error e = writeModule(**student, studentModule))
    return e;
  if (llvm::Error e = store.openModuleFiles(**student))
    return e;
  // A student the export cannot write would otherwise fail after training.
  if (llvm::Error e = checkExportable(**student, readerOf(store)))
    return makeError("distill: the edited model cannot be written as a model directory, so "
                     "the job would fail after training: " +
                     llvm::toString(std::move(e)));
  // Evidence: per-layer teacher-forced attention error and next-token KL of
  // the edited student and after each stage, on the first training sequences.
  std::vector<std::vector<int32_t>> evidenceData;
  for (uint64_t i = 0; i < 4; ++i)
    evidenceData.push_back(data.sequence(i));
  std::string evidencePath = joinPath(options.outDir, "evidence.json");
  std::vector<StageEvidence> evidence;
  // A resumed job measures the stages it runs; the earlier ones were
  // measured by the run it resumes (and the edited student is gone).
  if (options.resume && llvm::sys::fs::exists(evidencePath)) {
    auto earlier = readEvidence(evidencePath);
    if (!earlier)
      spdlog::warn("{}; the evidence starts again", llvm::toString(earlier.takeError()));
    else
      evidence = std::move(*earlier);
  }
  auto measure = [&](llvm::StringRef stage) -> llvm::Error {
    // Rank 0 writes, as it writes the model.
    if (ProcessGroup *group = processGroup(); group && group->rank() != 0)
      return llvm::Error::success();
    auto ev = measureStage(**raised, **student, store, evidenceData, stage);
    if (!ev)
      return ev.takeError();
    spdlog::info("evidence, {}: next-token KL {:.5f}, top-1 {:.3f}; free running KL {:.5f}, "
                 "top-1 {:.3f}",
                 stage.str(), ev->kl, ev->top1, ev->freeKl, ev->freeTop1);
    llvm::erase_if(evidence, [&](const StageEvidence &s) { return s.stage == stage; });
    evidence.push_back(std::move(*ev));
    return writeEvidence(evidence, evidencePath,
                         joinPath(options.outDir, "evidence.svg"));
  };
  start.trainingStarts();
  return trainAndWrite(**student, store, *trainer, data, options,
                       " teacher=\"" + teacherModule + "\"", measure);
}
