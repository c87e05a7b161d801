//===- Checkpoint.cpp - a job's claim on its output and its state ----------===//

#include "attnedit/Runtime/Training/Checkpoint.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"

#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <set>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace mlir;
using namespace mlir::attnedit;
namespace fs = llvm::sys::fs;
namespace json = llvm::json;

/// Locks `path` for `output`, a `kind` ("directory", "file") that one job
/// writes at a time.
llvm::Expected<JobLock> JobLock::lock(const std::string &path, llvm::StringRef output,
                                      llvm::StringRef kind, bool removeOnRelease) {
  for (;;) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return makeError(path + ": cannot open: " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      char holder[512] = {0};
      ssize_t n = ::pread(fd, holder, sizeof(holder) - 1, 0);
      ::close(fd);
      std::string who = n > 0 ? llvm::StringRef(holder, n).trim().str() : "unknown";
      return makeError(output + ": another job is using this " + kind + " (" + who +
                       "); wait for it to end or choose another output " + kind);
    }
    // A lock file its holder removed on release, between our open and our
    // flock, locks nothing: the next job creates a new one.
    struct stat opened, named;
    if (removeOnRelease &&
        (::fstat(fd, &opened) != 0 || ::stat(path.c_str(), &named) != 0 ||
         opened.st_ino != named.st_ino || opened.st_dev != named.st_dev)) {
      ::close(fd);
      continue;
    }
    std::string me = llvm::formatv("pid {0}, started {1:%Y-%m-%d %H:%M:%S}",
                                   llvm::sys::Process::getProcessId(),
                                   std::chrono::system_clock::now())
                         .str();
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0)
      spdlog::warn("{}: cannot record the lock holder: {}", path, std::strerror(errno));
    return JobLock(fd, removeOnRelease ? path : "");
  }
}

llvm::Expected<JobLock> JobLock::acquire(llvm::StringRef dir) {
  if (std::error_code ec = createOutputDirectories(dir))
    return makeError(dir + ": cannot create: " + ec.message());
  auto held = lock(joinPath(dir, "job.lock"), dir, "directory", /*removeOnRelease=*/false);
  if (!held)
    return held.takeError();
  // Temporaries of a killed or failed job: an interrupted atomic write
  // (`*.tmp`) or export (`*.tmp-PID`, `*.old-PID`). They may hold the space
  // a full disk needs back.
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; it != end && !ec; it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (name.ends_with(".tmp"))
      fs::remove(it->path());
    else if (name.contains(".tmp-") || name.contains(".old-"))
      fs::remove_directories(it->path());
  }
  return held;
}

llvm::Expected<JobLock> JobLock::acquireFile(llvm::StringRef file) {
  return lock((file + ".lock").str(), file, "file", /*removeOnRelease=*/true);
}

JobLock::~JobLock() {
  if (fd < 0)
    return;
  // Removed while still held, so that no job locks the file on its way out.
  if (!removeOnRelease.empty())
    fs::remove(removeOnRelease);
  ::close(fd); // releases the flock
}

/// Where `was` and `now` differ, one line "path: was -> now" per leaf.
static void diffJson(const json::Value &was, const json::Value &now, const std::string &path,
                     std::vector<std::string> &out) {
  const json::Object *a = was.getAsObject(), *b = now.getAsObject();
  if (a && b) {
    std::set<std::string> keys;
    for (const auto &kv : *a)
      keys.insert(kv.first.str());
    for (const auto &kv : *b)
      keys.insert(kv.first.str());
    for (const std::string &key : keys) {
      const json::Value *x = a->get(key), *y = b->get(key);
      std::string sub = path.empty() ? key : path + "." + key;
      if (!x || !y)
        out.push_back(sub + (x ? " was set, now absent" : " was absent, now set"));
      else
        diffJson(*x, *y, sub, out);
    }
    return;
  }
  const json::Array *p = was.getAsArray(), *q = now.getAsArray();
  if (p && q) {
    // Entry by entry, so a stage added to a recipe reads as that stage, not
    // as two printouts of the whole list cut at the same prefix.
    if (p->size() != q->size())
      out.push_back(path + ": " + std::to_string(p->size()) + " entries -> " +
                    std::to_string(q->size()));
    for (size_t i = 0; i < std::max(p->size(), q->size()); ++i) {
      std::string sub = path + "[" + std::to_string(i) + "]";
      if (i >= p->size() || i >= q->size())
        out.push_back(sub + (i < p->size() ? " was set, now absent" : " was absent, now set"));
      else
        diffJson((*p)[i], (*q)[i], sub, out);
    }
    return;
  }
  if (was == now)
    return;
  auto show = [](const json::Value &v) {
    std::string text;
    // llvm::json prints 17 digits: 0.003 would read 0.0030000000000000001.
    if (v.kind() == json::Value::Number && !v.getAsInteger()) {
      char digits[32];
      text.assign(digits, std::to_chars(digits, std::end(digits), *v.getAsNumber()).ptr);
    } else {
      llvm::raw_string_ostream(text) << v;
    }
    return text.size() > 80 ? text.substr(0, 77) + "..." : text;
  };
  out.push_back(path + ": " + show(was) + " -> " + show(now));
}

/// The curves of stages `names` from the first `bytes` of the step log
/// `path`, and the steps they hold.
static llvm::Expected<std::pair<std::vector<json::Value>, int64_t>>
readStepLog(llvm::StringRef path, const json::Array &names, uint64_t bytes) {
  std::vector<json::Value> curves;
  for (const json::Value &name : names) {
    if (!name.getAsString())
      return makeError(path + ": corrupt checkpoint: 'log_stages' must list stage names");
    curves.push_back(json::Object{{"stage", name}, {"steps", json::Array()}});
  }
  if (bytes == 0)
    return std::make_pair(std::move(curves), int64_t(0));
  auto buffer = readInputFile(path, /*isText=*/true);
  if (!buffer)
    return makeError(path + ": cannot read the step log: " + buffer.getError().message());
  llvm::StringRef text = (*buffer)->getBuffer();
  if (text.size() < bytes)
    return makeError(path + ": corrupt checkpoint: the step log holds " +
                     llvm::Twine(text.size()) + " bytes, fewer than the " + llvm::Twine(bytes) +
                     " checkpoint.json recorded");
  llvm::SmallVector<llvm::StringRef> lines;
  text.take_front(bytes).split(lines, '\n', -1, /*KeepEmpty=*/false);
  int64_t points = 0, lastStage = 0;
  for (llvm::StringRef line : lines) {
    llvm::Expected<json::Value> parsed = parseJson(line);
    if (!parsed)
      return makeError(path + ": corrupt step log: line " + llvm::Twine(points + 1) + ": " +
                       llvm::toString(parsed.takeError()));
    json::Object *point = parsed->getAsObject();
    std::optional<int64_t> stage = point ? point->getInteger("stage_index") : std::nullopt;
    if (!stage || *stage < 0 || *stage >= (int64_t)curves.size())
      return makeError(path + ": corrupt step log: line " + llvm::Twine(points + 1) +
                       " has no 'stage_index' of the checkpoint's stages");
    // In order, each step once: an edited or reordered line would be
    // reported as the run's.
    json::Array &steps = *curves[*stage].getAsObject()->getArray("steps");
    bool stageInOrder = *stage == lastStage || (*stage > lastStage && steps.empty());
    if (!stageInOrder || point->getInteger("step") != (int64_t)steps.size() + 1)
      return makeError(path + ": corrupt step log: line " + llvm::Twine(points + 1) +
                       " is not step " + llvm::Twine(steps.size() + 1) + " of stage " +
                       llvm::Twine(*stage + 1) + ", the next");
    lastStage = *stage;
    steps.push_back(withoutKey(*point, "stage_index"));
    ++points;
  }
  return std::make_pair(std::move(curves), points);
}

llvm::Expected<CheckpointState> CheckpointState::read(llvm::StringRef path) {
  auto buffer = readInputFile(path, /*isText=*/true);
  if (!buffer)
    return makeError(path + ": cannot read: " + buffer.getError().message());
  llvm::Expected<json::Value> parsed = parseJson((*buffer)->getBuffer());
  if (!parsed)
    return makeError(path + ": corrupt checkpoint: " + llvm::toString(parsed.takeError()));
  const json::Object *object = parsed->getAsObject();
  std::optional<int64_t> stage = object ? object->getInteger("stage") : std::nullopt;
  std::optional<int64_t> step = object ? object->getInteger("step") : std::nullopt;
  std::optional<llvm::StringRef> file = object ? object->getString("file") : std::nullopt;
  const json::Array *stages = object ? object->getArray("log_stages") : nullptr;
  std::optional<int64_t> logBytes = object ? object->getInteger("log_bytes") : std::nullopt;
  const json::Array *inlineLog = object ? object->getArray("log") : nullptr;
  const json::Value *recipe = object ? object->get("recipe") : nullptr;
  const json::Value *job = object ? object->get("job") : nullptr;
  if (!stage || !step || !file || !((stages && logBytes && *logBytes >= 0) || inlineLog) ||
      !recipe || !job)
    return makeError(path + ": corrupt checkpoint: needs stage, step, file, log_stages, "
                            "log_bytes, recipe, job");
  if (*stage < 0 || *step < 0)
    return makeError(path + ": corrupt checkpoint: negative stage or step");
  // The weights live beside checkpoint.json, named by the step they hold: another file (an
  // edited step, a path elsewhere) would resume from other weights.
  if (*file != fileName(*stage, *step))
    return makeError(path + ": corrupt checkpoint: 'file' is '" + *file + "', not '" +
                     fileName(*stage, *step) + "', the weights of its stage and step");
  CheckpointState state;
  if (inlineLog) {
    state.log.assign(inlineLog->begin(), inlineLog->end());
  } else {
    auto curves = readStepLog(joinPath(llvm::sys::path::parent_path(path), kStepLog), *stages,
                              *logBytes);
    if (!curves)
      return curves.takeError();
    state.log = std::move(curves->first);
    state.logPoints = curves->second;
    state.logBytes = *logBytes;
  }
  // The log holds every step before the checkpoint's, the last stage's
  // `step`; a shorter one would lose them from training_log.json.
  if ((int64_t)state.log.size() != *stage + 1)
    return makeError(path + ": corrupt checkpoint: its log holds " +
                     llvm::Twine(state.log.size()) + " stages, not " + llvm::Twine(*stage + 1));
  const json::Array *steps = state.log.back().getAsObject()
                                 ? state.log.back().getAsObject()->getArray("steps")
                                 : nullptr;
  if (!steps || (int64_t)steps->size() != *step)
    return makeError(path + ": corrupt checkpoint: the log of its stage holds " +
                     llvm::Twine(steps ? (int64_t)steps->size() : 0) + " steps, not " +
                     llvm::Twine(*step));
  state.stage = *stage;
  state.step = *step;
  state.file = file->str();
  // Checkpoints written before it was recorded count from their resume.
  state.seconds = object->getNumber("seconds").value_or(0);
  state.xxh3 = object->getString("xxh3").value_or("").str();
  state.backend = object->getString("backend").value_or("").str();
  state.recipe = *recipe;
  state.job = *job;
  return state;
}

std::string CheckpointState::fileName(int64_t stage, int64_t step) {
  return llvm::formatv("checkpoint-{0}-{1}.safetensors", stage, step).str();
}

std::string CheckpointState::stepLine(size_t stageIndex, const json::Object &point) {
  json::Object line(point);
  line["stage_index"] = (int64_t)stageIndex;
  std::string text;
  llvm::raw_string_ostream(text) << json::Value(std::move(line));
  return text + "\n";
}

json::Value CheckpointState::toJson() const {
  json::Array stages;
  for (const json::Value &curve : log)
    stages.push_back(*curve.getAsObject()->get("stage"));
  return json::Object{{"stage", stage},         {"step", step},
                      {"file", file},           {"xxh3", xxh3},
                      {"seconds", seconds},     {"backend", backend},
                      {"recipe", recipe},       {"job", job},
                      {"log_stages", std::move(stages)}, {"log_bytes", (int64_t)logBytes}};
}

std::vector<std::string> CheckpointState::changes(const json::Value &newJob,
                                                  const json::Value &newRecipe) const {
  std::vector<std::string> out = jsonChanges(job, newJob);
  // How often checkpoints are written does not change what is trained: a
  // resume may write them more or less often.
  auto withoutCadence = [](const json::Value &v) {
    const json::Object *o = v.getAsObject();
    return o ? json::Value(withoutKey(*o, "checkpoint_every")) : v;
  };
  for (std::string &line : jsonChanges(withoutCadence(recipe), withoutCadence(newRecipe),
                                       "recipe"))
    out.push_back(std::move(line));
  return out;
}

std::vector<std::string> attnedit::jsonChanges(const json::Value &was, const json::Value &now,
                                               const std::string &path) {
  std::vector<std::string> out;
  diffJson(was, now, path, out);
  return out;
}
