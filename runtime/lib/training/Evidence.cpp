//===- Evidence.cpp - per-layer, per-stage conversion error ----------------===//

#include "attnedit/Runtime/Training/Evidence.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/Executor.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>

using namespace mlir;
using namespace mlir::attnedit;
namespace json = llvm::json;

json::Value StageEvidence::toJson() const {
  json::Array layers;
  for (size_t l = 0; l < relativeError.size(); ++l)
    layers.push_back(json::Object{{"layer", (int64_t)l},
                                  {"kind", layerKind[l]},
                                  {"attention_relative_error", relativeError[l]}});
  return json::Object{{"stage", stage}, {"kl", kl}, {"top1", top1},
                      {"positions", positions}, {"layers", std::move(layers)}};
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
  // Weights are parameters, possibly through converts: clone what defines them.
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
  Operation *copy = b.clone(*op, map);
  b.create<func::ReturnOp>(op->getLoc(), copy->getResult(0));
  return f;
}

static std::vector<int32_t> positionsOf(size_t n) {
  std::vector<int32_t> p(n);
  for (size_t i = 0; i < n; ++i)
    p[i] = (int32_t)i;
  return p;
}

llvm::Expected<StageEvidence>
attnedit::measureStage(ModuleOp teacher, ModuleOp student, ParameterStore &store,
                       const std::vector<std::vector<int32_t>> &sequences,
                       llvm::StringRef stage) {
  OwningOpRef<ModuleOp> t(cast<ModuleOp>(teacher->clone()));
  OwningOpRef<ModuleOp> s(cast<ModuleOp>(student->clone()));
  auto tForward = t->lookupSymbol<func::FuncOp>("forward");
  auto sForward = s->lookupSymbol<func::FuncOp>("forward");
  if (!tForward || !sForward)
    return makeError("evidence", "teacher and student need a func.func @forward");
  SmallVector<Operation *> studentOps = attentionOps(sForward);
  func::FuncOp probe = addProbe(*t, tForward);
  size_t layers = (probe.getNumResults() - 1) / 2;
  if (layers != studentOps.size())
    return makeError("evidence", llvm::formatv("the teacher has {0} attention layers, the "
                                               "student {1}",
                                               layers, studentOps.size())
                                     .str());
  StageEvidence ev;
  ev.stage = stage.str();
  SmallVector<func::FuncOp> layerFuncs;
  for (auto [l, op] : llvm::enumerate(studentOps)) {
    ev.layerKind.push_back(cast<AttentionLikeOpInterface>(op).getAttentionKind().str());
    layerFuncs.push_back(addLayer(*s, op, l));
  }
  std::vector<double> diff2(layers, 0), ref2(layers, 0);
  double klSum = 0;
  int64_t agree = 0;
  Executor &exec = defaultExecutor();
  for (const std::vector<int32_t> &seq : sequences) {
    Tensor ids = Tensor::ints(seq), pos = Tensor::ints(positionsOf(seq.size()));
    auto tOut = exec.run(probe, {ids, pos}, store);
    if (!tOut)
      return tOut.takeError();
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
    }
    auto sLogits = exec.run(sForward, {ids, pos}, store);
    if (!sLogits)
      return sLogits.takeError();
    const Tensor &tl = tOut->back(), &sl = sLogits->front();
    int64_t vocab = tl.shape()[1];
    for (int64_t i = 0; i < tl.shape()[0]; ++i) {
      const float *a = tl.data() + i * vocab, *b = sl.data() + i * vocab;
      double ma = -INFINITY, mb = -INFINITY;
      int64_t aa = 0, ab = 0;
      for (int64_t v = 0; v < vocab; ++v) {
        if (a[v] > ma)
          ma = a[v], aa = v;
        if (b[v] > mb)
          mb = b[v], ab = v;
      }
      double za = 0, zb = 0;
      for (int64_t v = 0; v < vocab; ++v)
        za += std::exp(a[v] - ma), zb += std::exp(b[v] - mb);
      double la = ma + std::log(za), lb = mb + std::log(zb), kl = 0;
      for (int64_t v = 0; v < vocab; ++v) {
        double lpa = a[v] - la, lpb = b[v] - lb;
        kl += std::exp(lpa) * (lpa - lpb);
      }
      klSum += kl;
      agree += aa == ab;
      ++ev.positions;
    }
  }
  for (size_t l = 0; l < layers; ++l)
    ev.relativeError.push_back(std::sqrt(diff2[l] / std::max(ref2[l], 1e-30)));
  ev.kl = ev.positions ? klSum / ev.positions : 0;
  ev.top1 = ev.positions ? (double)agree / ev.positions : 0;
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
  // One polyline per stage over the layers, on a log scale (errors span decades).
  size_t layers = stages.empty() ? 0 : stages.front().relativeError.size();
  double lo = 1e-4, hi = 1;
  for (const StageEvidence &s : stages)
    for (double e : s.relativeError)
      hi = std::max(hi, e);
  int w = 640, h = 360, left = 60, right = 200, top = 30, bottom = 40;
  auto x = [&](size_t l) {
    return left + (layers > 1 ? (double)l * (w - left - right) / (layers - 1) : 0.0);
  };
  auto y = [&](double e) {
    e = std::max(e, lo);
    return top + (h - top - bottom) * (std::log10(hi) - std::log10(e)) /
                     (std::log10(hi) - std::log10(lo));
  };
  const char *colors[] = {"#888888", "#d9822b", "#3a6ea5", "#2e8b57", "#a33"};
  std::string svg = llvm::formatv("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" "
                                  "height=\"{1}\" font-family=\"sans-serif\" font-size=\"12\">\n"
                                  "<text x=\"{2}\" y=\"18\">teacher-forced attention output "
                                  "error |s - t| / |t| per layer (log scale)</text>\n",
                                  w, h, left)
                        .str();
  for (double e = lo; e <= hi * 1.0001; e *= 10)
    svg += llvm::formatv("<line x1=\"{0}\" x2=\"{1}\" y1=\"{2:F1}\" y2=\"{2:F1}\" "
                         "stroke=\"#ddd\"/><text x=\"4\" y=\"{3:F1}\">{4}</text>\n",
                         left, w - right, y(e), y(e) + 4, e)
               .str();
  for (size_t l = 0; l < layers; ++l)
    svg += llvm::formatv("<text x=\"{0:F1}\" y=\"{1}\">{2}</text>\n", x(l) - 4, h - 20, l).str();
  for (auto [i, s] : llvm::enumerate(stages)) {
    const char *c = colors[i % 5];
    std::string points;
    for (size_t l = 0; l < s.relativeError.size(); ++l)
      points += llvm::formatv("{0:F1},{1:F1} ", x(l), y(s.relativeError[l])).str();
    svg += llvm::formatv("<polyline points=\"{0}\" fill=\"none\" stroke=\"{1}\" "
                         "stroke-width=\"2\"/>\n<text x=\"{2}\" y=\"{3}\" fill=\"{1}\">{4}: "
                         "KL {5:F4}</text>\n",
                         points, c, w - right + 10, top + 20 + 18 * i, s.stage, s.kl)
               .str();
  }
  svg += "</svg>\n";
  return writeFileAtomically(svgPath, svg);
}
