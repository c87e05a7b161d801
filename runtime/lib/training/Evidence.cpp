//===- Evidence.cpp - per-layer, per-stage conversion error ----------------===//

#include "attnedit/Runtime/Training/Evidence.h"
#include "SvgChart.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/Executor.h"
#include "attnedit/Runtime/Execution/Kernels.h"
#include "attnedit/Runtime/Inference/Decoder.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::attnedit;
namespace json = llvm::json;

json::Value StageEvidence::toJson() const {
  json::Array layers;
  for (size_t l = 0; l < relativeError.size(); ++l)
    layers.push_back(json::Object{{"layer", (int64_t)l},
                                  {"kind", layerKind[l]},
                                  {"attention_relative_error", relativeError[l]},
                                  {"single_layer_kl", layerKl[l]}});
  return json::Object{{"stage", stage},
                      {"kl", kl},
                      {"top1", top1},
                      {"positions", positions},
                      {"free_running",
                       json::Object{{"kl", freeKl},
                                    {"top1", freeTop1},
                                    {"continuation_match", continuationMatch},
                                    {"positions", freePositions}}},
                      {"layers", std::move(layers)}};
}

llvm::Expected<std::vector<StageEvidence>> attnedit::readEvidence(llvm::StringRef jsonPath) {
  auto buffer = readInputFile(jsonPath);
  if (!buffer)
    return makeError(jsonPath, "cannot read: " + buffer.getError().message());
  auto parsed = parseJson((*buffer)->getBuffer());
  if (!parsed)
    return makeError(jsonPath, "not valid JSON: " + llvm::toString(parsed.takeError()));
  auto bad = [&] { return makeError(jsonPath, "is not what writeEvidence writes"); };
  const json::Object *root = parsed->getAsObject();
  const json::Array *rows = root ? root->getArray("stages") : nullptr;
  if (!rows)
    return bad();
  std::vector<StageEvidence> stages;
  for (const json::Value &row : *rows) {
    const json::Object *o = row.getAsObject();
    const json::Object *free = o ? o->getObject("free_running") : nullptr;
    const json::Array *layers = o ? o->getArray("layers") : nullptr;
    if (!free || !layers || !o->getString("stage"))
      return bad();
    StageEvidence s;
    s.stage = o->getString("stage")->str();
    s.kl = o->getNumber("kl").value_or(0);
    s.top1 = o->getNumber("top1").value_or(0);
    s.positions = o->getInteger("positions").value_or(0);
    s.freeKl = free->getNumber("kl").value_or(0);
    s.freeTop1 = free->getNumber("top1").value_or(0);
    s.continuationMatch = free->getNumber("continuation_match").value_or(0);
    s.freePositions = free->getInteger("positions").value_or(0);
    for (const json::Value &layer : *layers) {
      const json::Object *l = layer.getAsObject();
      if (!l || !l->getString("kind"))
        return bad();
      s.layerKind.push_back(l->getString("kind")->str());
      s.relativeError.push_back(l->getNumber("attention_relative_error").value_or(0));
      s.layerKl.push_back(l->getNumber("single_layer_kl").value_or(0));
    }
    stages.push_back(std::move(s));
  }
  return stages;
}

static SmallVector<Operation *> attentionOps(func::FuncOp f) {
  SmallVector<Operation *> ops;
  f.walk([&](AttentionLikeOpInterface op) { ops.push_back(op); });
  return ops;
}

/// Adds @evidence_probe: @forward's arguments, returning every attention
/// op's input and output (2 per layer) and the logits.
static func::FuncOp addProbe(ModuleOp module, func::FuncOp forward) {
  auto probe = cast<func::FuncOp>(forward->clone());
  probe.setSymName("evidence_probe");
  module.push_back(probe);
  SmallVector<Value> values;
  Operation *ret = probe.getBody().back().getTerminator();
  for (Operation *op : attentionOps(probe)) {
    values.push_back(op->getOperand(0));
    values.push_back(op->getResult(0));
  }
  values.push_back(ret->getOperand(0));
  SmallVector<Type> types;
  for (Value v : values)
    types.push_back(v.getType());
  OpBuilder b(ret);
  b.create<func::ReturnOp>(ret->getLoc(), values);
  ret->erase();
  probe.setType(b.getFunctionType(probe.getArgumentTypes(), types));
  return probe;
}

/// Clones `op` at `b`, first cloning what defines its operands that `map`
/// does not already map (weights are parameters, possibly through converts).
static Operation *cloneWithWeights(OpBuilder &b, Operation *op, IRMapping &map) {
  std::function<void(Value)> clone = [&](Value v) {
    if (map.contains(v))
      return;
    Operation *def = v.getDefiningOp();
    for (Value operand : def->getOperands())
      clone(operand);
    b.clone(*def, map);
  };
  for (Value operand : op->getOperands())
    clone(operand);
  return b.clone(*op, map);
}

/// Adds @evidence_layer<l>(x, positions): attention op `op` alone, with its
/// weights (the ops defining its other operands, cloned).
static func::FuncOp addLayer(ModuleOp module, Operation *op, int64_t layer) {
  OpBuilder b(module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  Value input = op->getOperand(0), positions = op->getOperand(1);
  auto f = b.create<func::FuncOp>(
      op->getLoc(), llvm::formatv("evidence_layer{0}", layer).str(),
      b.getFunctionType({input.getType(), positions.getType()}, {op->getResult(0).getType()}));
  Block *body = f.addEntryBlock();
  b.setInsertionPointToStart(body);
  IRMapping map;
  map.map(input, body->getArgument(0));
  map.map(positions, body->getArgument(1));
  Operation *copy = cloneWithWeights(b, op, map);
  b.create<func::ReturnOp>(op->getLoc(), copy->getResult(0));
  return f;
}

/// Adds @evidence_only<l> to the teacher's module: its @forward with
/// attention layer `layer` replaced by the student's `studentOp` (the
/// single-layer edit whose KL the planner calls a layer's damage).
static func::FuncOp addSingleEdit(ModuleOp module, func::FuncOp forward, Operation *studentOp,
                                  int64_t layer) {
  auto f = cast<func::FuncOp>(forward->clone());
  f.setSymName(llvm::formatv("evidence_only{0}", layer).str());
  module.push_back(f);
  Operation *target = attentionOps(f)[layer];
  OpBuilder b(target);
  IRMapping map;
  map.map(studentOp->getOperand(0), target->getOperand(0));
  map.map(studentOp->getOperand(1), target->getOperand(1));
  Operation *copy = cloneWithWeights(b, studentOp, map);
  target->getResult(0).replaceAllUsesWith(copy->getResult(0));
  target->erase();
  return f;
}

static std::vector<int32_t> positionsOf(size_t n) {
  std::vector<int32_t> p(n);
  for (size_t i = 0; i < n; ++i)
    p[i] = (int32_t)i;
  return p;
}

static int64_t argmax(const float *row, int64_t n) {
  return std::max_element(row, row + n) - row;
}

/// Next-token KL(teacher || student) and top-1 agreement summed over rows.
struct RowComparison {
  double kl = 0;
  int64_t agree = 0, rows = 0;
  std::vector<double> logA, logB;

  /// Compares `count` rows of each, from the teacher's row `teacherRow` and
  /// the student's row `studentRow` on.
  void add(const Tensor &teacher, int64_t teacherRow, const Tensor &student, int64_t studentRow,
           int64_t count) {
    int64_t vocab = teacher.shape()[1];
    for (int64_t r = 0; r < count; ++r) {
      const float *a = teacher.data() + (teacherRow + r) * vocab;
      const float *b = student.data() + (studentRow + r) * vocab;
      kernels::logSoftmax(a, vocab, 1.0, logA);
      kernels::logSoftmax(b, vocab, 1.0, logB);
      kl += kernels::klDivergence(logA, logB);
      agree += argmax(a, vocab) == argmax(b, vocab);
      ++rows;
    }
  }
  double meanKl() const { return rows ? kl / rows : 0; }
  double top1() const { return rows ? (double)agree / rows : 0; }
};

static llvm::Expected<Tensor> logitsOf(Executor &exec, func::FuncOp forward,
                                       const std::vector<int32_t> &tokens,
                                       ParameterStore &store) {
  auto out = exec.run(forward, {Tensor::ints(tokens), Tensor::ints(positionsOf(tokens.size()))},
                      store);
  if (!out)
    return out.takeError();
  return out->back();
}

/// Logits of `tokens` padded with token 0 to `length` rows. A causal model's
/// row i reads only tokens 0..i, so the rows of the real tokens are those of
/// `tokens` alone; the padding keeps every call at one input shape, which the
/// compiled backend would otherwise specialise (and compile) once per length.
static llvm::Expected<Tensor> paddedLogitsOf(Executor &exec, func::FuncOp forward,
                                             std::vector<int32_t> tokens, size_t length,
                                             ParameterStore &store) {
  tokens.resize(std::max(length, tokens.size()), 0);
  return logitsOf(exec, forward, tokens, store);
}

/// Appends `count` greedy tokens to `tokens`, decoding on a KV cache (a
/// forward over the whole prefix per token cost ~60% of a short distillation
/// run), and returns the logits that chose them [count, vocab].
static llvm::Expected<Tensor> continueGreedily(Decoder &decoder, std::vector<int32_t> &tokens,
                                               int64_t count) {
  int64_t seq = decoder.cache().open();
  auto closeSeq = llvm::make_scope_exit([&] { decoder.cache().close(seq); });
  auto logits = decoder.prefill(seq, tokens);
  if (!logits)
    return logits.takeError();
  int64_t vocab = logits->shape()[1];
  Tensor chose = Tensor::zeros({count, vocab});
  const float *row = logits->data() + (logits->shape()[0] - 1) * vocab;
  for (int64_t i = 0; i < count; ++i) {
    std::copy_n(row, vocab, chose.mutableData() + i * vocab);
    tokens.push_back((int32_t)argmax(row, vocab));
    if (i + 1 == count)
      break;
    logits = decoder.decode({seq}, {tokens.back()});
    if (!logits)
      return logits.takeError();
    row = logits->data();
  }
  return chose;
}

llvm::Expected<StageEvidence>
attnedit::measureStage(ModuleOp teacher, ModuleOp student, ParameterStore &store,
                       const std::vector<std::vector<int32_t>> &sequences,
                       llvm::StringRef stage, bool attentionErrorOnly) {
  OwningOpRef<ModuleOp> t(cast<ModuleOp>(teacher->clone()));
  OwningOpRef<ModuleOp> s(cast<ModuleOp>(student->clone()));
  auto tForward = t->lookupSymbol<func::FuncOp>("forward");
  auto sForward = s->lookupSymbol<func::FuncOp>("forward");
  if (!tForward || !sForward)
    return makeError("evidence", "teacher and student need a func.func @forward");
  SmallVector<Operation *> studentOps = attentionOps(sForward);
  size_t layers = attentionOps(tForward).size();
  if (layers != studentOps.size())
    return makeError("evidence", llvm::formatv("the teacher has {0} attention layers, the "
                                               "student {1}",
                                               layers, studentOps.size())
                                     .str());
  func::FuncOp probe = addProbe(*t, tForward);
  StageEvidence ev;
  ev.stage = stage.str();
  SmallVector<func::FuncOp> layerFuncs, singleEdits;
  for (auto [l, op] : llvm::enumerate(studentOps)) {
    ev.layerKind.push_back(cast<AttentionLikeOpInterface>(op).getAttentionKind().str());
    layerFuncs.push_back(addLayer(*s, op, l));
    if (!attentionErrorOnly)
      singleEdits.push_back(addSingleEdit(*t, tForward, op, l));
  }
  std::vector<double> diff2(layers, 0), ref2(layers, 0);
  std::vector<RowComparison> single(layers);
  RowComparison forced, free;
  int64_t matched = 0;
  Executor &exec = defaultExecutor();
  std::unique_ptr<Decoder> tDecoder, sDecoder;
  if (!attentionErrorOnly) {
    auto t = Decoder::create(teacher, exec, store);
    if (!t)
      return t.takeError();
    auto s = Decoder::create(student, exec, store);
    if (!s)
      return s.takeError();
    tDecoder = std::move(*t);
    sDecoder = std::move(*s);
  }
  // What runs below, compiled several at a time (the first evidence of a
  // cold distillation compiles 23 functions of the bench teacher here).
  SmallVector<func::FuncOp> used{probe};
  llvm::append_range(used, layerFuncs);
  llvm::append_range(used, singleEdits);
  if (!attentionErrorOnly)
    used.append({sForward, tForward});
  exec.prepare(used);
  for (const std::vector<int32_t> &seq : sequences) {
    Tensor ids = Tensor::ints(seq), pos = Tensor::ints(positionsOf(seq.size()));
    auto tOut = exec.run(probe, {ids, pos}, store);
    if (!tOut)
      return tOut.takeError();
    const Tensor &tl = tOut->back();
    // Non-finite teacher logits make every KL NaN and every argmax agree: nothing to distil.
    if (const float *bad = std::find_if_not(tl.data(), tl.data() + tl.numel(),
                                            [](float x) { return std::isfinite(x); });
        bad != tl.data() + tl.numel())
      return makeError("evidence",
                       llvm::formatv("the teacher's logits hold {0} (position {1} of an evidence "
                                     "sequence): its weights give values float32 cannot hold",
                                     *bad, (bad - tl.data()) / tl.shape()[1])
                           .str());
    for (size_t l = 0; l < layers; ++l) {
      auto y = exec.run(layerFuncs[l], {(*tOut)[2 * l], pos}, store);
      if (!y)
        return y.takeError();
      const Tensor &ref = (*tOut)[2 * l + 1];
      for (int64_t i = 0; i < ref.numel(); ++i) {
        double d = (double)y->front().data()[i] - ref.data()[i];
        diff2[l] += d * d;
        ref2[l] += (double)ref.data()[i] * ref.data()[i];
      }
      if (attentionErrorOnly)
        continue;
      auto hybrid = logitsOf(exec, singleEdits[l], seq, store);
      if (!hybrid)
        return hybrid.takeError();
      single[l].add(tl, 0, *hybrid, 0, tl.shape()[0]);
    }
    if (attentionErrorOnly)
      continue;
    auto sLogits = logitsOf(exec, sForward, seq, store);
    if (!sLogits)
      return sLogits.takeError();
    forced.add(tl, 0, *sLogits, 0, tl.shape()[0]);

    // Free running from the first half of the sequence.
    int64_t prompt = seq.size() / 2;
    int64_t count = std::min<int64_t>(StageEvidence::kFreeRunTokens, seq.size() - prompt);
    if (prompt < 1 || count < 1)
      continue;
    std::vector<int32_t> byStudent(seq.begin(), seq.begin() + prompt), byTeacher = byStudent;
    auto sChose = continueGreedily(*sDecoder, byStudent, count);
    if (!sChose)
      return sChose.takeError();
    if (auto tChose = continueGreedily(*tDecoder, byTeacher, count); !tChose)
      return tChose.takeError();
    for (int64_t i = prompt; i < prompt + count; ++i)
      matched += byStudent[i] == byTeacher[i];
    // The teacher reads the student's continuation (the last token needs no row).
    byStudent.pop_back();
    auto tOnStudent = paddedLogitsOf(exec, tForward, byStudent, seq.size(), store);
    if (!tOnStudent)
      return tOnStudent.takeError();
    free.add(*tOnStudent, prompt - 1, *sChose, 0, count);
  }
  for (size_t l = 0; l < layers; ++l) {
    ev.relativeError.push_back(std::sqrt(diff2[l] / std::max(ref2[l], 1e-30)));
    ev.layerKl.push_back(single[l].meanKl());
  }
  ev.kl = forced.meanKl();
  ev.top1 = forced.top1();
  ev.positions = forced.rows;
  ev.freeKl = free.meanKl();
  ev.freeTop1 = free.top1();
  ev.freePositions = free.rows;
  ev.continuationMatch = free.rows ? (double)matched / free.rows : 0;
  return ev;
}

llvm::Error attnedit::writeEvidence(llvm::ArrayRef<StageEvidence> stages,
                                    llvm::StringRef jsonPath, llvm::StringRef svgPath) {
  json::Array rows;
  for (const StageEvidence &s : stages)
    rows.push_back(s.toJson());
  if (llvm::Error e = writeFileAtomically(
          jsonPath,
          llvm::formatv("{0:2}\n", json::Value(json::Object{{"stages", std::move(rows)}})).str()))
    return e;
  // Two panels, one polyline per stage over the layers: attention-output
  // error, single-layer KL.
  size_t layers = stages.empty() ? 0 : stages.front().relativeError.size();
  const double width = 720, panelH = 260, left = 60, right = 280, top = 30, bottom = 40;
  const char *colors[] = {"#888888", "#d9822b", "#3a6ea5", "#2e8b57", "#a33"};
  SvgChart chart(width, 2 * panelH);
  auto panel = [&](double y0, llvm::StringRef title, double low,
                   std::vector<double> StageEvidence::*series) {
    double high = 10 * low;
    for (const StageEvidence &s : stages)
      for (double e : s.*series)
        high = std::max(high, e);
    SvgChart::Panel p{left, y0 + top, width - left - right, panelH - top - bottom};
    p.xHigh = layers > 1 ? (double)layers - 1 : 0;
    p.yLow = low;
    p.yHigh = std::pow(10, std::ceil(std::log10(high)));
    chart.text(left, y0 + 18, title);
    for (double e = low; e <= p.yHigh * 1.0001; e *= 10)
      chart.gridLine(p, e, llvm::formatv("{0:E0}", e).str());
    for (size_t l = 0; l < layers; ++l)
      chart.text(p.px(l) - 4, y0 + panelH - 20, llvm::Twine(l));
    for (auto [i, s] : llvm::enumerate(stages)) {
      std::vector<std::pair<double, double>> points;
      for (auto [l, e] : llvm::enumerate(s.*series))
        points.push_back({(double)l, e});
      chart.polyline(p, points, colors[i % 5], 2);
    }
  };
  panel(0, "teacher-forced attention output error |s - t| / |t| per layer", 1e-4,
        &StageEvidence::relativeError);
  panel(panelH, "next-token KL of the teacher with only that layer edited", 1e-5,
        &StageEvidence::layerKl);
  for (auto [i, s] : llvm::enumerate(stages))
    chart.text(width - right + 10, top + 20 + 18 * i,
               llvm::formatv("{0}: KL {1:F4}, free running {2:F4}", s.stage, s.kl, s.freeKl),
               llvm::formatv("fill='{0}'", colors[i % 5]).str());
  return chart.write(svgPath);
}
