//===- cpu_forward.cpp - prefill on the compiled CPU backend vs the machine --===//
//
//   attnedit-bench-cpu MODEL [--tokens N] [--reps R] [--only cpu|reference|machine]
//
// Prints one JSON object: the JIT compile time, the median forward time of
// N tokens on the compiled backend and on the reference evaluator (same
// process, same OpenBLAS kernel), the model's GEMM FLOPs per forward, the
// sgemm rate of the BLAS the backend calls (2048³, this process's threads)
// and the fp32 FMA peak of the cores (a register-resident AVX-512 FMA loop
// on 1 and on all threads). bench/cpu_backend.py runs it beside PyTorch.
// With --only cpu|reference, just that backend's forward runs (for
// profilers); with --only machine, just the machine's figures (the drivers
// measure them every round). Figures not measured are 0.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/BlasSetup.h"
#include "attnedit/Runtime/Execution/Executor.h"
#include "attnedit/Runtime/Execution/Logging.h"
#include "attnedit/Runtime/Execution/Model.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace mlir;
using namespace mlir::attnedit;

static double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

/// FLOPs of one thread's 12 independent chains of 512-bit FMAs (12 > the
/// 4-cycle latency × 2 ports, so the ports stay busy), `iters` times.
__attribute__((target("avx512f"))) static double fmaLoop(int64_t iters) {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i)
    acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
  for (int64_t n = 0; n < iters; ++n)
    for (int i = 0; i < 12; ++i)
      acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  __m512 s = acc[0];
  for (int i = 1; i < 12; ++i)
    s = _mm512_add_ps(s, acc[i]);
  // Stored, not _mm512_reduce_add_ps: GCC 12 warns inside that intrinsic.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  volatile float sink = lanes[0];
  (void)sink;
  return 2.0 * 16 * 12 * iters;
}

static double fmaPeak(unsigned threads) {
  int64_t iters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&] { fmaLoop(iters); });
    for (auto &t : pool)
      t.join();
    best = std::max(best, 2.0 * 16 * 12 * iters * threads / seconds(start) / 1e9);
  }
  return best;
}

static double sgemmRate(int n) {
  std::vector<float> a(n * n, 1.0f), b(n * n, 0.5f), c(n * n);
  double best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    auto start = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(), n,
                0.0f, c.data(), n);
    best = std::min(best, seconds(start));
  }
  return 2.0 * n * n * n / best / 1e9;
}

/// The model's GEMM FLOPs per forward and the median forward times of the
/// backends `only` selects (all when empty); 0 for those not run.
struct ForwardTimes {
  double flops = 0, cpuFirst = 0, cpu = 0, refFirst = 0, reference = 0;
};

static llvm::Expected<ForwardTimes> timeForwards(const char *path, int64_t tokens, int64_t reps,
                                                 const std::string &only) {
  auto model = Model::load(path);
  if (!model)
    return model.takeError();
  std::vector<int32_t> ids(tokens);
  for (int64_t i = 0; i < tokens; ++i)
    ids[i] = (int32_t)((i * 7919 + 1) % (*model)->vocabSize());
  std::vector<int32_t> positions(tokens);
  for (int64_t i = 0; i < tokens; ++i)
    positions[i] = (int32_t)i;
  std::vector<Tensor> args = {Tensor::ints(ids), Tensor::ints(positions)};
  auto forward = (*model)->module().lookupSymbol<func::FuncOp>("forward");

  ForwardTimes t;
  // GEMM FLOPs: 2·M·N·K of every linear and matmul at this T.
  forward.walk([&](Operation *op) {
    auto shapeOf = [](Value v) { return cast<RankedTensorType>(v.getType()).getShape(); };
    auto dim = [&](int64_t d) { return ShapedType::isDynamic(d) ? tokens : d; };
    if (auto l = dyn_cast<attnedit::LinearOp>(op)) {
      auto w = shapeOf(l.getWeight());
      t.flops += 2.0 * tokens * w[0] * w[1];
    } else if (auto m = dyn_cast<attnedit::MatmulOp>(op)) {
      auto a = shapeOf(m.getLhs()), b = shapeOf(m.getRhs());
      double batch = 1;
      for (size_t i = 0; i + 2 < a.size(); ++i)
        batch *= dim(a[i]);
      t.flops += 2.0 * batch * dim(a[a.size() - 2]) * dim(a.back()) * dim(b.back());
    }
  });

  auto time = [&](Executor &executor, int64_t n, double &first) -> double {
    std::vector<double> times;
    for (int64_t r = 0; r < n; ++r) {
      auto start = std::chrono::steady_clock::now();
      auto out = executor.run(forward, args, (*model)->parameterStore());
      double elapsed = seconds(start);
      if (!out) {
        reportError(out.takeError());
        std::exit(1);
      }
      if (r == 0)
        first = elapsed;
      times.push_back(elapsed);
    }
    std::sort(times.begin() + (n > 1 ? 1 : 0), times.end());
    return times[n > 1 ? 1 + (n - 1) / 2 : 0];
  };
  std::unique_ptr<Executor> cpu = createCompiledExecutor(), reference = createReferenceExecutor();
  if (only.empty() || only == "cpu")
    t.cpu = time(*cpu, reps + 1, t.cpuFirst);
  if (only.empty() || only == "reference")
    t.reference = time(*reference, std::max<int64_t>(2, reps / 2), t.refFirst);
  return t;
}

int main(int argc, char **argv) {
  configureMathLibraries(argv);
  initLogging("attnedit-bench-cpu");
  if (argc < 2) {
    llvm::errs() << "usage: attnedit-bench-cpu MODEL [--tokens N] [--reps R] [--only cpu|reference|machine]\n";
    return 2;
  }
  int64_t tokens = 512, reps = 5;
  std::string only;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tokens"))
      tokens = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps"))
      reps = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--only"))
      only = argv[i + 1];
  }
  if (!only.empty() && only != "cpu" && only != "reference" && only != "machine") {
    llvm::errs() << "attnedit-bench-cpu: --only '" << only
                 << "' is not one of cpu, reference, machine\n";
    return 2;
  }
  // --only machine times no forward: the model is not even loaded.
  ForwardTimes times;
  if (only != "machine") {
    auto timed = timeForwards(argv[1], tokens, reps, only);
    if (!timed)
      return reportError(timed.takeError());
    times = *timed;
  }
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  bool machine = only.empty() || only == "machine";
  llvm::outs() << llvm::formatv(
      "{{\"tokens\": {0}, \"gemm_gflop_per_forward\": {1:f3}, \"cpu_first_call_s\": {2:f3}, "
      "\"cpu_forward_s\": {3:f4}, \"reference_forward_s\": {4:f4}, \"openblas_coretype\": \"{5}\", "
      "\"sgemm_2048_gflops\": {6:f1}, \"fma_peak_gflops_1thread\": {7:f1}, "
      "\"fma_peak_gflops_all\": {8:f1}, \"threads\": {9}}\n",
      tokens, times.flops / 1e9, times.cpuFirst, times.cpu, times.reference,
      std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "",
      machine ? sgemmRate(2048) : 0.0, machine ? fmaPeak(1) : 0.0,
      machine ? fmaPeak(threads) : 0.0, threads);
  return 0;
}
