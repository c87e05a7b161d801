//===- GradientProgram.cpp - run a training step's gradient ----------------===//

#include "attnedit/Runtime/Training/GradientProgram.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Training/ProcessGroup.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <omp.h>
#include <cmath>
#include <limits>
#include <random>
#include <thread>

using namespace mlir;
using namespace mlir::attnedit;

static std::pair<llvm::StringRef, llvm::StringRef> splitKey(llvm::StringRef key) {
  auto [scope, name] = key.split("::");
  return name.empty() ? std::pair{llvm::StringRef(), scope} : std::pair{scope, name};
}

llvm::Expected<GradientProgram> GradientProgram::create(func::FuncOp gradFunc,
                                                        ParameterStore &store, uint64_t seed) {
  auto names = gradFunc->getAttrOfType<ArrayAttr>("attnedit.gradients");
  if (!names)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "@%s is not a gradient function (run --attnedit-autodiff)",
                                   gradFunc.getName().str().c_str());
  // Shapes come from the param ops the gradients are for.
  llvm::StringMap<ArrayRef<int64_t>> shapes;
  llvm::StringSet<> teacherCopies;
  gradFunc.walk([&](ParamOp p) {
    std::string key = p.getScope() ? (*p.getScope() + "::" + p.getName()).str()
                                   : p.getName().str();
    shapes[key] = p.getType().getShape();
    if (p->hasAttr(attrs::kTeacherCopy))
      teacherCopies.insert(key);
  });
  GradientProgram program(gradFunc, store);
  for (llvm::StringRef key : names.getAsValueRange<StringAttr>()) {
    if (key.starts_with("arg"))
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "@%s differentiates an argument (%s); a training step "
                                     "only differentiates parameters",
                                     gradFunc.getName().str().c_str(), key.str().c_str());
    auto [scope, name] = splitKey(key);
    ArrayRef<int64_t> shape = shapes.lookup(key);
    Tensor value = Tensor::zeros(shape);
    // A value the store holds (a checkpoint's, the teacher's for a student
    // copy) must fit; only a parameter with no value anywhere starts random.
    llvm::StringRef from = store.contains(name, scope) ? scope : llvm::StringRef();
    if (store.contains(name, from)) {
      auto stored = store.get(name, shape, from);
      if (!stored)
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "trainable parameter '%s': %s", key.str().c_str(),
                                       llvm::toString(stored.takeError()).c_str());
      std::copy_n(stored->data(), stored->numel(), value.mutableData());
    } else if (name.contains("norm")) {
      std::fill_n(value.mutableData(), value.numel(), 1.0f);
    } else {
      // Chunks with generators of their own, seeded by (seed, tensor,
      // chunk), on every core: the values do not depend on the threads,
      // and a 125M-parameter model no longer spends seconds here.
      constexpr int64_t kChunk = 1 << 16;
      float *data = value.mutableData();
      int64_t n = value.numel(), tensor = program.names.size();
#pragma omp parallel for schedule(dynamic)
      for (int64_t chunk = 0; chunk < (n + kChunk - 1) / kChunk; ++chunk) {
        std::seed_seq seq{(uint32_t)seed, (uint32_t)(seed >> 32), (uint32_t)tensor,
                          (uint32_t)chunk};
        std::mt19937_64 rng(seq);
        std::normal_distribution<float> normal(0.0f, 0.02f);
        for (int64_t i = chunk * kChunk; i < std::min(n, (chunk + 1) * kChunk); ++i)
          data[i] = normal(rng);
      }
    }
    store.set(name, value, scope);
    program.names.push_back(key.str());
    program.teacherCopies.push_back(teacherCopies.contains(key));
    program.params.push_back(value);
    program.grads.push_back(Tensor::zeros(shape));
  }
  return program;
}

bool GradientProgram::ownsLane(size_t lane) const {
  return !group || (int)(lane % group->size()) == group->rank();
}

bool GradientProgram::ownsSequence(size_t k, size_t batchSize) const {
  return ownsLane(k % lanesFor(batchSize));
}

func::FuncOp GradientProgram::packedFunction(size_t count) {
  if (count == 1)
    return gradFunc;
  OwningOpRef<ModuleOp> &module = packedModules[count];
  if (!module) {
    module = cast<ModuleOp>(gradFunc->getParentOfType<ModuleOp>()->clone());
    module->walk([&](func::FuncOp f) {
      if (f.getName() != gradFunc.getName())
        return;
      Builder b(f.getContext());
      f.walk([&](CausalMaskOp mask) { mask.setSegmentsAttr(b.getI64IntegerAttr(count)); });
    });
  }
  return module->lookupSymbol<func::FuncOp>(gradFunc.getName());
}

std::optional<std::vector<Tensor>>
GradientProgram::packed(llvm::ArrayRef<std::vector<Tensor>> batch, size_t lane,
                        size_t numLanes) const {
  const std::vector<Tensor> &first = batch[lane];
  if (first.empty() || first[0].rank() != 1)
    return std::nullopt;
  int64_t length = first[0].dim(0);
  std::optional<size_t> targets;
  for (size_t i = 0; i < first.size(); ++i)
    if (auto name = func::FuncOp(gradFunc).getArgAttrOfType<StringAttr>(i, "attnedit.name");
        name && name.getValue() == "targets")
      targets = i;
  auto supervised = [&](const Tensor &t) {
    return std::count_if(t.intValues(), t.intValues() + t.numel(), [](int32_t v) { return v != -1; });
  };
  for (size_t k = lane; k < batch.size(); k += numLanes) {
    if (batch[k].size() != first.size())
      return std::nullopt;
    for (size_t i = 0; i < first.size(); ++i)
      if (!batch[k][i].isInt() || batch[k][i].rank() != 1 || batch[k][i].dim(0) != length)
        return std::nullopt;
    if (targets && supervised(batch[k][*targets]) != supervised(first[*targets]))
      return std::nullopt;
  }
  std::vector<Tensor> args;
  for (size_t i = 0; i < first.size(); ++i) {
    std::vector<int32_t> values;
    for (size_t k = lane; k < batch.size(); k += numLanes)
      values.insert(values.end(), batch[k][i].intValues(), batch[k][i].intValues() + length);
    args.push_back(Tensor::ints(std::move(values)));
  }
  return args;
}

llvm::Error GradientProgram::sumAcrossRanks(llvm::ArrayRef<std::vector<Tensor>> laneSums,
                                            llvm::ArrayRef<float> laneWeights) {
  size_t n = 0;
  for (const Tensor &g : grads)
    n += g.numel();
  std::vector<size_t> mine;
  for (size_t lane = 0; lane < laneSums.size(); ++lane)
    if (ownsLane(lane))
      mine.push_back(lane);
  // This rank's lanes, each flattened, then room for the sum.
  flat.resize((mine.size() + 1) * n);
  std::vector<const float *> owned;
  for (size_t i = 0; i < mine.size(); ++i) {
    float *dst = flat.data() + i * n;
    owned.push_back(dst);
    float weight = laneWeights[mine[i]];
    for (const Tensor &t : laneSums[mine[i]]) {
      std::transform(t.data(), t.data() + t.numel(), dst, [=](float g) { return weight * g; });
      dst += t.numel();
    }
  }
  float *sum = flat.data() + mine.size() * n;
  if (llvm::Error e = group->sumLanes(owned, laneSums.size(), n, sum))
    return e;
  for (Tensor &g : grads) {
    std::copy_n(sum, g.numel(), g.mutableData());
    sum += g.numel();
  }
  return llvm::Error::success();
}

llvm::Expected<double> GradientProgram::computeBatch(llvm::ArrayRef<std::vector<Tensor>> batch,
                                                     unsigned threads) {
  auto start = std::chrono::steady_clock::now();
  size_t numLanes = lanesFor(batch.size());
  if (group && (size_t)group->size() > numLanes)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "%d ranks, but a batch of %zu sequences runs in %zu lanes (fixed, so that results "
        "do not depend on the number of ranks): run at most %zu ranks",
        group->size(), batch.size(), numLanes, numLanes);
  std::vector<size_t> mine; // the lanes this rank runs
  for (size_t lane = 0; lane < numLanes; ++lane)
    if (ownsLane(lane))
      mine.push_back(lane);
  laneBuffers.resize(std::max(laneBuffers.size(), numLanes));
  std::vector<std::vector<Tensor>> laneSums(numLanes);
  std::vector<double> losses(batch.size());
  std::vector<std::string> errors(numLanes);
  // A packed lane's results are its sequences' mean: it weighs as many.
  std::vector<float> laneWeights(numLanes, 1.0f);
  std::vector<std::optional<std::vector<Tensor>>> laneCalls(numLanes);
  std::vector<func::FuncOp> laneFuncs(numLanes, gradFunc);
  lastPackedLanes = 0;
  bool pack = defaultExecutor().prefersPackedSequences();
  for (size_t lane : mine) {
    size_t count = (batch.size() - lane + numLanes - 1) / numLanes;
    if (pack && count > 1 && (laneCalls[lane] = packed(batch, lane, numLanes))) {
      laneFuncs[lane] = packedFunction(count);
      laneWeights[lane] = (float)count;
      ++lastPackedLanes;
    }
  }
  auto runLane = [&](size_t lane) {
    std::vector<Tensor> &sum = laneSums[lane];
    if (laneCalls[lane]) {
      auto results = defaultExecutor().run(laneFuncs[lane], *laneCalls[lane], *store);
      if (!results) {
        errors[lane] = llvm::toString(results.takeError());
        return;
      }
      for (size_t k = lane; k < batch.size(); k += numLanes)
        losses[k] = results->front().data()[0];
      sum.assign(results->begin() + 1, results->end());
      return;
    }
    for (size_t k = lane; k < batch.size(); k += numLanes) {
      auto results = defaultExecutor().run(gradFunc, batch[k], *store);
      if (!results) {
        errors[lane] = llvm::toString(results.takeError());
        return;
      }
      losses[k] = results->front().data()[0];
      if (k == lane) {
        sum.assign(results->begin() + 1, results->end());
        continue;
      }
      std::vector<Tensor> &buffers = laneBuffers[lane];
      if (buffers.empty())
        for (const Tensor &g : grads)
          buffers.push_back(Tensor::zeros(g.shape()));
      for (size_t i = 0; i < grads.size(); ++i) {
        const float *a = sum[i].data(), *g = (*results)[i + 1].data();
        float *acc = buffers[i].mutableData();
        for (int64_t j = 0, n = buffers[i].numel(); j < n; ++j)
          acc[j] = a[j] + g[j];
        sum[i] = buffers[i];
      }
    }
  };
  // Threads run whole lanes; OpenBLAS then runs single-threaded inside each,
  // which on small matrices beats splitting every GEMM across cores.
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  // `threads` bounds every parallel region of the step, not only the lanes:
  // with one lane at a time, OpenBLAS, the compiled loops and the attention
  // kernels had taken every core (two `--threads 1` distillations side by
  // side each ran 2.5x slower; MPI ranks sharing a machine oversubscribed it).
  omp_set_num_threads((int)threads);
  openblas_set_num_threads((int)threads);
  size_t numThreads = std::min<size_t>(mine.size(), threads);
  if (numThreads <= 1) {
    for (size_t lane : mine)
      runLane(lane);
  } else {
    // The OpenMP runtime's workers outlive the step: threads made per step each took a
    // fresh malloc arena and page-faulted every buffer in again (perf: ~120k
    // faults a step of 8 x 256 tokens, none with one thread).
#pragma omp parallel num_threads(numThreads)
    {
      // OpenBLAS's OpenMP build reads the calling thread's OpenMP setting.
      openblas_set_num_threads(1);
      for (size_t i = omp_get_thread_num(); i < mine.size(); i += numThreads)
        runLane(mine[i]);
    }
    // The workers' setting is OpenBLAS's global one: the step's count again.
    openblas_set_num_threads((int)threads);
  }
  for (const std::string &e : errors)
    if (!e.empty())
      return llvm::createStringError(llvm::inconvertibleErrorCode(), e);
  auto computed = std::chrono::steady_clock::now();
  lastCompute = std::chrono::duration<double>(computed - start).count();
  float inverse = 1.0f / batch.size();
  if (group) {
    // Another rank's sequences count -inf here; the max is exact.
    for (size_t k = 0; k < batch.size(); ++k)
      if (!ownsLane(k % numLanes))
        losses[k] = -std::numeric_limits<double>::infinity();
    if (llvm::Error e = group->maxInPlace(losses))
      return std::move(e);
    if (llvm::Error e = sumAcrossRanks(laneSums, laneWeights))
      return std::move(e);
    lastCommunication =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - computed).count();
    for (Tensor &g : grads) {
      float *out = g.mutableData();
      for (int64_t j = 0, n = g.numel(); j < n; ++j)
        out[j] *= inverse;
    }
  }
  // A batch in one call (one sequence, or one packed lane): its mean
  // gradients are the executor's results, taken as they are (a copy of 125M
  // parameters' gradients was 3.5% of the medium step).
  bool oneCall = !group && numLanes == 1 && (batch.size() == 1 || laneCalls[0]);
  for (size_t i = 0; oneCall && i < grads.size(); ++i)
    grads[i] = laneSums[0][i];
  // The lanes' sum in lane order, one pass per gradient on every core: each
  // element adds the same numbers in the same order whatever the threads.
  for (size_t i = 0; !group && !oneCall && i < grads.size(); ++i) {
    float *out = grads[i].mutableData();
    std::vector<const float *> from;
    for (const std::vector<Tensor> &sum : laneSums)
      from.push_back(sum[i].data());
    int64_t n = grads[i].numel();
    const float *weights = laneWeights.data();
#pragma omp parallel for simd schedule(static) if (n >= (1 << 16))
    for (int64_t j = 0; j < n; ++j) {
      float total = weights[0] * from[0][j];
      for (size_t lane = 1; lane < from.size(); ++lane)
        total += weights[lane] * from[lane][j];
      out[j] = total * inverse;
    }
  }
  double loss = 0;
  for (double l : losses)
    loss += l;
  return loss / batch.size();
}
