//===- cpu_forward.cpp - prefill on the compiled CPU backend vs the machine --===//
//
//   attnedit-bench-cpu MODEL [--tokens N] [--reps R] [--only cpu|reference|machine]
//   attnedit-bench-cpu --gemm
//
// Prints one JSON object: the JIT compile time, the median forward time of
// N tokens on the compiled backend and on the reference evaluator (same
// process; the evaluator's GEMMs are OpenBLAS's), the model's GEMM FLOPs
// per forward, the sgemm rate (2048³, this process's threads) of the GEMM
// the backend calls and of OpenBLAS, and the fp32 FMA peak of the cores (a
// register-resident AVX-512 FMA loop on 1 and on all threads).
// bench/cpu_backend.py runs it beside PyTorch. With --only cpu|reference,
// just that backend's forward runs (for profilers); with --only machine,
// just the machine's figures (the drivers measure them every round).
// Figures not measured are 0.
//
// With --gemm, the GEMMs of the training steps bench/train_step.py times,
// each through the shim compiled code calls (the packed AVX-512 kernel where
// it applies) and through OpenBLAS directly, interleaved, best of up to 50
// (bench/gemm.py runs it).
//
//===----------------------------------------------------------------------===//

#include "attnedit/CPU/JitModule.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/BlasSetup.h"
#include "attnedit/Runtime/Execution/Executor.h"
#include "attnedit/Runtime/Execution/Logging.h"
#include "attnedit/Runtime/Execution/Model.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"
#include "llvm/ADT/StringExtras.h"
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

/// GFLOP/s of row-major C[m, n] = op(A) op(B) through the shim compiled
/// code calls and through cblas_sgemm, interleaved, each its best of `reps`.
static std::pair<double, double> gemmRates(bool transA, bool transB, int64_t m, int64_t n,
                                           int64_t k, int reps) {
  std::string name = std::string("_mlir_ciface_attnedit_cpu_gemm_") + (transA ? "t" : "n") +
                     (transB ? "t" : "n") + "_overwrite";
  using Shim = void (*)(StridedMemRefType<float, 2> *, StridedMemRefType<float, 2> *,
                        StridedMemRefType<float, 2> *);
  auto shim = reinterpret_cast<Shim>(cpu::librarySymbol(name));
  std::vector<float> a(m * k), b(k * n), c(m * n);
  for (size_t i = 0; i < a.size(); ++i)
    a[i] = float(i % 7) * 0.1f - 0.3f;
  for (size_t i = 0; i < b.size(); ++i)
    b[i] = float(i % 5) * 0.1f - 0.2f;
  int64_t aRows = transA ? k : m, aCols = transA ? m : k;
  int64_t bRows = transB ? n : k, bCols = transB ? k : n;
  StridedMemRefType<float, 2> am{a.data(), a.data(), 0, {aRows, aCols}, {aCols, 1}};
  StridedMemRefType<float, 2> bm{b.data(), b.data(), 0, {bRows, bCols}, {bCols, 1}};
  StridedMemRefType<float, 2> cm{c.data(), c.data(), 0, {m, n}, {n, 1}};
  double best[2] = {1e30, 1e30};
  for (int rep = 0; rep <= reps; ++rep) {
    auto start = std::chrono::steady_clock::now();
    shim(&am, &bm, &cm);
    double ours = seconds(start);
    start = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a.data(), aCols, b.data(),
                bCols, 0.0f, c.data(), n);
    double theirs = seconds(start);
    if (rep > 0) { // the first is warm-up (page faults, buffers)
      best[0] = std::min(best[0], ours);
      best[1] = std::min(best[1], theirs);
    }
  }
  double flops = 2.0 * m * n * k;
  return {flops / best[0] / 1e9, flops / best[1] / 1e9};
}

/// The GEMMs of bench/train_step.py's steps (forward NT, input gradient NN,
/// weight gradient TN) on both shapes, and 2048³.
static int benchGemms() {
  struct Shape {
    bool transA, transB;
    int64_t m, n, k;
  };
  const Shape shapes[] = {
      // medium: 512 tokens, hidden 768, intermediate 2048, vocab 32000
      {false, true, 512, 768, 768}, {false, true, 512, 256, 768},
      {false, true, 512, 2048, 768}, {false, true, 512, 768, 2048},
      {false, true, 512, 32000, 768}, {false, false, 512, 768, 2048},
      {false, false, 512, 768, 32000}, {true, false, 2048, 768, 512},
      {true, false, 768, 768, 512}, {true, false, 32000, 768, 512},
      // small: 8 × 256 tokens, hidden 256, intermediate 688, vocab 8192
      {false, true, 2048, 256, 256}, {false, true, 2048, 688, 256},
      {false, true, 2048, 8192, 256}, {false, false, 2048, 256, 8192},
      {true, false, 8192, 256, 2048}, {true, false, 256, 256, 2048},
      {false, true, 2048, 2048, 2048}};
  llvm::outs() << "{\"gemm\": [";
  const char *sep = "";
  for (const Shape &s : shapes) {
    double flops = 2.0 * s.m * s.n * s.k;
    int reps = (int)std::clamp(4e10 / flops, 3.0, 50.0);
    auto [ours, theirs] = gemmRates(s.transA, s.transB, s.m, s.n, s.k, reps);
    llvm::outs() << llvm::formatv(
        "{0}\n {{\"op\": \"{1}{2}\", \"m\": {3}, \"n\": {4}, \"k\": {5}, "
        "\"attnedit_gflops\": {6:f1}, \"openblas_gflops\": {7:f1}}",
        sep, s.transA ? "T" : "N", s.transB ? "T" : "N", s.m, s.n, s.k, ours, theirs);
    sep = ",";
  }
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  llvm::outs() << llvm::formatv("],\n \"fma_peak_gflops_all\": {0:f1}, \"threads\": {1}}\n",
                                fmaPeak(threads), threads);
  return 0;
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
  if ((*model)->maxPositions() > 0 && tokens > (*model)->maxPositions())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "--tokens %lld is past %s's context of %lld",
                                   (long long)tokens, path,
                                   (long long)(*model)->maxPositions());
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
  const char *usage =
      "usage: attnedit-bench-cpu MODEL [--tokens N (1-16777216, default 512)] "
      "[--reps R (1-1000, default 5)] [--only cpu|reference|machine]\n"
      "       attnedit-bench-cpu --gemm\n";
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    llvm::errs() << usage;
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--gemm"))
    return benchGemms();
  int64_t tokens = 512, reps = 5;
  std::string only;
  auto bad = [&](const llvm::Twine &msg) {
    llvm::errs() << "attnedit-bench-cpu: " << msg << "\n" << usage;
    return 2;
  };
  for (int i = 2; i < argc; i += 2) {
    llvm::StringRef option = argv[i];
    if (option != "--tokens" && option != "--reps" && option != "--only")
      return bad("unknown option '" + option + "'");
    if (i + 1 == argc)
      return bad(option + " needs a value");
    llvm::StringRef value = argv[i + 1];
    if (option == "--only") {
      only = value.str();
      continue;
    }
    int64_t n;
    int64_t max = option == "--tokens" ? 16777216 : 1000;
    if (!llvm::to_integer(value, n, 10) || n < 1 || n > max)
      return bad(option + " must be an integer in [1, " + llvm::Twine(max) + "], not '" +
                 value + "'");
    (option == "--tokens" ? tokens : reps) = n;
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
  auto [sgemm, openblasSgemm] =
      machine ? gemmRates(false, true, 2048, 2048, 2048, 3) : std::pair<double, double>{};
  llvm::outs() << llvm::formatv(
      "{{\"tokens\": {0}, \"gemm_gflop_per_forward\": {1:f3}, \"cpu_first_call_s\": {2:f3}, "
      "\"cpu_forward_s\": {3:f4}, \"reference_forward_s\": {4:f4}, \"openblas_coretype\": \"{5}\", "
      "\"sgemm_2048_gflops\": {6:f1}, \"fma_peak_gflops_1thread\": {7:f1}, "
      "\"fma_peak_gflops_all\": {8:f1}, \"threads\": {9}, \"openblas_sgemm_2048_gflops\": {10:f1}}\n",
      tokens, times.flops / 1e9, times.cpuFirst, times.cpu, times.reference,
      std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "",
      sgemm, machine ? fmaPeak(1) : 0.0, machine ? fmaPeak(threads) : 0.0, threads,
      openblasSgemm);
  return 0;
}
