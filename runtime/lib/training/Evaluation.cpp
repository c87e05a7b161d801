//===- Evaluation.cpp - how close a student model is to its teacher --------===//

#include "attnedit/Runtime/Training/Evaluation.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/Frontend/Tokenizer.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"
#include "attnedit/Runtime/Execution/Kernels.h"

#include "mlir/Pass/PassManager.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>

using namespace mlir;
using namespace mlir::attnedit;

llvm::json::Value NextTokenComparison::toJson() const {
  return llvm::json::Object{{"positions", positions},
                            {"window", window},
                            {"kl_teacher_student", kl},
                            {"top1_agreement", top1},
                            {"teacher_nll", teacherNll},
                            {"student_nll", studentNll},
                            {"teacher_perplexity", std::exp(teacherNll)},
                            {"student_perplexity", std::exp(studentNll)},
                            {"teacher_kv_bytes_per_token",
                             double(teacherKvBytesAtContext) / kvContext},
                            {"student_kv_bytes_per_token",
                             double(studentKvBytesAtContext) / kvContext},
                            {"kv_context", kvContext},
                            {"teacher_kv_bytes_at_context", teacherKvBytesAtContext},
                            {"student_kv_bytes_at_context", studentKvBytesAtContext}};
}

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

llvm::Expected<NextTokenComparison>
attnedit::compareNextToken(Model &teacher, Model &student, llvm::ArrayRef<int32_t> tokens,
                           int64_t window) {
  if (teacher.vocabSize() != student.vocabSize())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "teacher and student vocabularies differ (%lld vs %lld)",
                                   (long long)teacher.vocabSize(),
                                   (long long)student.vocabSize());
  NextTokenComparison result;
  result.window = window;
  int64_t vocab = teacher.vocabSize(), total = tokens.size();
  // A model scored alone is passed as both.
  bool alone = &teacher == &student;
  std::vector<double> logT, logS;
  // Each window scores the tokens after its first: progress counts those.
  int64_t scored = 0;
  for (int64_t begin = 0; begin + 1 < total; begin += window)
    scored += std::min(window, total - begin) - 1;
  auto start = std::chrono::steady_clock::now();
  auto lastReport = start;
  for (int64_t begin = 0; begin + 1 < total; begin += window) {
    llvm::ArrayRef<int32_t> chunk = tokens.slice(begin, std::min(window, total - begin));
    auto t = teacher.forward(chunk);
    if (!t)
      return t.takeError();
    auto logitsOf = [&](const Tensor &x) { return llvm::ArrayRef(x.data(), x.numel()); };
    if (llvm::Error e = requireFiniteLogits(logitsOf(*t), vocab, alone ? "eval" : "teacher"))
      return e;
    Tensor s = *t;
    if (!alone) {
      auto got = student.forward(chunk);
      if (!got)
        return got.takeError();
      if (llvm::Error e = requireFiniteLogits(logitsOf(*got), vocab, "student"))
        return e;
      s = *got;
    }
    for (int64_t i = 0; i + 1 < (int64_t)chunk.size(); ++i) {
      kernels::logSoftmax(t->data() + i * vocab, vocab, 1.0, logT);
      kernels::logSoftmax(s.data() + i * vocab, vocab, 1.0, logS);
      result.kl += kernels::klDivergence(logT, logS);
      result.top1 += std::max_element(logT.begin(), logT.end()) - logT.begin() ==
                     std::max_element(logS.begin(), logS.end()) - logS.begin();
      result.teacherNll -= logT[chunk[i + 1]];
      result.studentNll -= logS[chunk[i + 1]];
      ++result.positions;
    }
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - start).count();
    int64_t done = result.positions;
    // Only comparisons long enough to wait for report progress.
    if (std::chrono::duration<double>(now - lastReport).count() > 2 ||
        (done == scored && elapsed > 2)) {
      double rate = done / std::max(elapsed, 1e-9);
      spdlog::info("compared {}/{} tokens, {:.0f} tok/s, ETA {:.0f} s", done, scored, rate,
                   (scored - done) / rate);
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

llvm::json::Value MultipleChoiceResult::toJson() const {
  return llvm::json::Object{{"questions", questions},
                            {"acc", accuracy},
                            {"acc_norm", normalizedAccuracy},
                            {"items", llvm::json::Array(items)}};
}

llvm::Expected<MultipleChoiceResult> attnedit::evaluateMultipleChoice(Model &model,
                                                                      llvm::StringRef path) {
  auto tok = model.tokenizer();
  if (!tok)
    return tok.takeError();
  if (!*tok)
    return makeError(path, "scoring text needs the model's tokenizer (give --tokenizer)");
  auto buffer = readInputFile(path, /*isText=*/true);
  if (!buffer)
    return makeError(path, "cannot read: " + buffer.getError().message());
  MultipleChoiceResult result;
  int64_t correct = 0, correctNorm = 0;
  auto score = [&](const llvm::json::Object &item) -> llvm::Error {
    std::optional<llvm::StringRef> question = item.getString("question");
    const llvm::json::Array *choices = item.getArray("choices");
    std::optional<int64_t> answer = item.getInteger("answer");
    if (!question)
      return makeError("field 'question' is missing or not a string");
    if (!choices || choices->size() < 2)
      return makeError("field 'choices' must be a list of at least two strings");
    if (!answer || *answer < 0 || *answer >= (int64_t)choices->size())
      return makeError("field 'answer' must be an index into 'choices'");
    // What the first token is predicted from: BOS, or for a model without one and an empty
    // question, its end-of-text token, as lm-eval conditions an empty context.
    std::optional<int32_t> first =
        question->empty() ? documentStartToken(model.bosToken(), model.stopTokens(), *tok)
                          : model.bosToken();
    if (!first && question->empty())
      return makeError("field 'question' is empty and the model has neither a BOS nor an EOS "
                       "token to predict a choice's first token from");
    std::vector<int32_t> context;
    if (first)
      context.push_back(*first);
    std::vector<int32_t> q = (*tok)->encode(*question);
    context.insert(context.end(), q.begin(), q.end());
    // lm-eval's target delimiter: one space between question and choice,
    // unless either side already has it (a choice " girl" scored with two).
    bool questionSpaced = question->empty() || llvm::isSpace(question->back());
    llvm::json::Array logLikelihoods;
    int64_t best = -1, bestNorm = -1;
    double bestLl = -INFINITY, bestPerCharacter = -INFINITY;
    for (auto [index, choice] : llvm::enumerate(*choices)) {
      std::optional<llvm::StringRef> text = choice.getAsString();
      if (!text || text->empty())
        return makeError(llvm::formatv("choices[{0}] must be a non-empty string", index));
      // The question and the choice encoded as one text, as the harness
      // does; the choice is what follows the question's own tokens.
      std::vector<int32_t> whole;
      if (first)
        whole.push_back(*first);
      bool space = !questionSpaced && !llvm::isSpace(text->front());
      std::vector<int32_t> all =
          (*tok)->encode((*question + (space ? " " : "") + *text).str());
      whole.insert(whole.end(), all.begin(), all.end());
      size_t start = 0;
      while (start < context.size() && start < whole.size() && context[start] == whole[start])
        ++start;
      start = std::max<size_t>(start, 1);
      if (start >= whole.size())
        return makeError(llvm::formatv("choices[{0}] adds no token to the question", index));
      if (model.maxPositions() > 0 && (int64_t)whole.size() > model.maxPositions())
        return makeError(llvm::formatv("question and choices[{0}] take {1} tokens, past the "
                                          "model's context of {2}",
                                          index, whole.size(), model.maxPositions()));
      auto logits = model.forward(whole);
      if (!logits)
        return logits.takeError();
      int64_t vocab = logits->dim(1);
      if (llvm::Error e = requireFiniteLogits(llvm::ArrayRef(logits->data(), logits->numel()),
                                              vocab, llvm::formatv("choices[{0}]", index).str()))
        return e;
      double ll = 0;
      std::vector<double> logP;
      for (size_t t = start; t < whole.size(); ++t) {
        kernels::logSoftmax(logits->data() + (t - 1) * vocab, vocab, 1.0, logP);
        ll += logP[whole[t]];
      }
      logLikelihoods.push_back(ll);
      // lm-eval's acc_norm: per character of the choice (Python's len), not per UTF-8 byte.
      int64_t characters = llvm::count_if(*text, [](char c) { return (c & 0xC0) != 0x80; });
      double perCharacter = ll / characters;
      if (ll > bestLl)
        bestLl = ll, best = index;
      if (perCharacter > bestPerCharacter)
        bestPerCharacter = perCharacter, bestNorm = index;
    }
    correct += best == *answer;
    correctNorm += bestNorm == *answer;
    result.items.push_back(llvm::json::Object{{"answer", *answer},
                                              {"predicted", best},
                                              {"predicted_norm", bestNorm},
                                              {"loglikelihoods", std::move(logLikelihoods)}});
    ++result.questions;
    return llvm::Error::success();
  };
  if (llvm::Error e = forEachJsonLine(path, (*buffer)->getBuffer(), score))
    return std::move(e);
  if (result.questions == 0)
    return makeError(path, "no questions");
  result.accuracy = (double)correct / result.questions;
  result.normalizedAccuracy = (double)correctNorm / result.questions;
  return result;
}
