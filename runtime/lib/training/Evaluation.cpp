//===- Evaluation.cpp - how close a student model is to its teacher --------===//

#include "attnedit/Runtime/Training/Evaluation.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Pass/PassManager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

using namespace mlir;
using namespace mlir::attnedit;

llvm::json::Value NextTokenComparison::toJson() const {
  return llvm::json::Object{{"positions", positions},
                            {"kl_teacher_student", kl},
                            {"top1_agreement", top1},
                            {"teacher_nll", teacherNll},
                            {"student_nll", studentNll},
                            {"teacher_perplexity", std::exp(teacherNll)},
                            {"student_perplexity", std::exp(studentNll)},
                            {"teacher_kv_bytes_per_token", teacherKvBytesPerToken},
                            {"student_kv_bytes_per_token", studentKvBytesPerToken},
                            {"kv_context", kvContext},
                            {"teacher_kv_bytes_at_context", teacherKvBytesAtContext},
                            {"student_kv_bytes_at_context", studentKvBytesAtContext}};
}

int64_t attnedit::kvBytesPerToken(ModuleOp module) { return kvCacheBytes(module, 1); }

int64_t attnedit::kvCacheBytes(ModuleOp module, int64_t context) {
  auto sum = [&](ModuleOp m) {
    int64_t values = 0;
    m.walk([&](AttentionLikeOpInterface op) {
      int64_t window = op.getKvWindow();
      values += op.getKvValuesPerToken() * (window ? std::min(window, context) : context);
    });
    return values * 2;
  };
  if (int64_t bytes = sum(module))
    return bytes;
  OwningOpRef<ModuleOp> copy = cast<ModuleOp>(module->clone());
  PassManager pm(module.getContext());
  pm.addPass(createRaiseAttentionPass());
  if (failed(pm.run(*copy)))
    return 0;
  return sum(*copy);
}

/// log-softmax of one row of logits, in double.
static void logSoftmax(const float *logits, int64_t n, std::vector<double> &out) {
  double maxv = *std::max_element(logits, logits + n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i)
    sum += std::exp(logits[i] - maxv);
  double logSum = maxv + std::log(sum);
  out.resize(n);
  for (int64_t i = 0; i < n; ++i)
    out[i] = logits[i] - logSum;
}

llvm::Expected<NextTokenComparison>
attnedit::compareNextToken(Model &teacher, Model &student, llvm::ArrayRef<int32_t> tokens,
                           int64_t window) {
  if (teacher.vocabSize() != student.vocabSize())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "teacher and student vocabularies differ (%lld vs %lld)",
                                   (long long)teacher.vocabSize(),
                                   (long long)student.vocabSize());
  NextTokenComparison result;
  int64_t vocab = teacher.vocabSize(), total = tokens.size();
  std::vector<double> logT, logS;
  auto start = std::chrono::steady_clock::now();
  auto lastReport = start;
  for (int64_t begin = 0; begin + 1 < total; begin += window) {
    llvm::ArrayRef<int32_t> chunk = tokens.slice(begin, std::min(window, total - begin));
    auto t = teacher.forward(chunk);
    if (!t)
      return t.takeError();
    auto s = student.forward(chunk);
    if (!s)
      return s.takeError();
    for (int64_t i = 0; i + 1 < (int64_t)chunk.size(); ++i) {
      logSoftmax(t->data() + i * vocab, vocab, logT);
      logSoftmax(s->data() + i * vocab, vocab, logS);
      double kl = 0;
      for (int64_t v = 0; v < vocab; ++v)
        kl += std::exp(logT[v]) * (logT[v] - logS[v]);
      result.kl += kl;
      result.top1 += std::max_element(logT.begin(), logT.end()) - logT.begin() ==
                     std::max_element(logS.begin(), logS.end()) - logS.begin();
      result.teacherNll -= logT[chunk[i + 1]];
      result.studentNll -= logS[chunk[i + 1]];
      ++result.positions;
    }
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - start).count();
    int64_t done = std::min(begin + window, total);
    // Only comparisons long enough to wait for report progress.
    if (std::chrono::duration<double>(now - lastReport).count() > 2 ||
        (done == total && elapsed > 2)) {
      double rate = done / std::max(elapsed, 1e-9);
      spdlog::info("compared {}/{} tokens, {:.0f} tok/s, ETA {:.0f} s", done, total, rate,
                   (total - done) / rate);
      lastReport = now;
    }
  }
  if (result.positions) {
    result.kl /= result.positions;
    result.top1 /= result.positions;
    result.teacherNll /= result.positions;
    result.studentNll /= result.positions;
  }
  return result;
}
