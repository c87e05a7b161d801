//===- Evaluator.cpp - reference interpreter for attnedit IR ---------------===//

#include "attnedit/Runtime/Execution/Evaluator.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/Executor.h"
#include "attnedit/Runtime/Execution/Kernels.h"
#include "attnedit/Runtime/Inference/CacheKernels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir::attnedit;
using namespace mlir;

namespace {

class Interpreter {
public:
  Interpreter(ParameterStore &parameters, EvaluatorOptions options)
      : parameters(parameters), options(options) {}

  llvm::Expected<std::vector<Tensor>> run(func::FuncOp func, llvm::ArrayRef<Tensor> args);

private:
  llvm::Error error(Operation *op, const llvm::Twine &msg) {
    std::string text;
    llvm::raw_string_ostream os(text);
    os << op->getName();
    // The training steps the passes build have no source locations: their
    // function is what tells the user which step failed.
    if (!isa<UnknownLoc>(op->getLoc()))
      os << " at " << op->getLoc();
    if (auto func = op->getParentOfType<func::FuncOp>())
      os << " in @" << func.getSymName();
    os << ": " << msg;
    return llvm::createStringError(llvm::inconvertibleErrorCode(), text);
  }

  /// Checks a runtime tensor against its IR type (dynamic dims match anything).
  llvm::Error check(Operation *op, Value value, const Tensor &t) {
    auto type = cast<RankedTensorType>(value.getType());
    bool ok = type.getRank() == t.rank();
    for (int64_t i = 0; ok && i < t.rank(); ++i)
      ok = type.isDynamicDim(i) || type.getDimSize(i) == t.dim(i);
    if (ok)
      return llvm::Error::success();
    std::string want;
    llvm::raw_string_ostream(want) << type;
    return error(op, "value of shape " + t.shapeString() + " does not fit type " + want);
  }

  llvm::Expected<Tensor> step(Operation *op);
  /// options.runOp's result, else the reference kernel's.
  llvm::Expected<Tensor> dispatch(Operation *op) {
    if (!options.runOp)
      return step(op);
    llvm::SmallVector<const Tensor *, 4> operands;
    for (Value v : op->getOperands())
      operands.push_back(&in(v));
    std::optional<llvm::Expected<Tensor>> other = options.runOp(op, operands);
    if (!other)
      return step(op);
    if (!*other)
      return error(op, llvm::toString(other->takeError()));
    return std::move(**other);
  }
  template <typename AttentionLike>
  llvm::Expected<Tensor> attention(AttentionLike op, const Tensor *gate, const Tensor *sinks);
  llvm::Expected<Tensor> mla(attnedit::MlaOp op);
  llvm::Expected<Tensor> lossOrError(Operation *op, llvm::Expected<Tensor> value) {
    if (!value)
      return error(op, llvm::toString(value.takeError()));
    return value;
  }
  llvm::Error checkPositions(Operation *op, Value input, Value positions) {
    if (in(positions).dim(0) == in(input).dim(0))
      return llvm::Error::success();
    return error(op, "positions " + in(positions).shapeString() + " do not match input " +
                         in(input).shapeString());
  }
  /// Elementwise operands whose dynamic sizes differ at run time.
  llvm::Error checkSameShape(Operation *op, const Tensor &a, const Tensor &b) {
    if (a.shape() == b.shape())
      return llvm::Error::success();
    return error(op, "operands " + a.shapeString() + " and " + b.shapeString() + " differ");
  }
  /// A static result larger than this machine's memory: its allocation would
  /// end the process (bad_alloc, or the OOM killer once overcommitted pages
  /// are touched), where the CPU backend refuses the call.
  llvm::Error checkResultFits(Operation *op) {
    for (Type type : op->getResultTypes()) {
      auto shaped = dyn_cast<RankedTensorType>(type);
      if (!shaped || !shaped.hasStaticShape())
        continue;
      double bytes = 4;
      for (int64_t d : shaped.getShape())
        bytes *= d;
      if (bytes <= physicalMemoryBytes())
        continue;
      std::string text;
      llvm::raw_string_ostream(text)
          << "its result " << shaped << " needs " << llvm::formatv("{0:F1}", bytes / (1 << 30))
          << " GiB, more than this machine's memory ("
          << llvm::formatv("{0:F1}", physicalMemoryBytes() / (1 << 30)) << " GiB)";
      return error(op, text);
    }
    return llvm::Error::success();
  }
  const Tensor &in(Value v) { return values.find(v)->second; }

  ParameterStore &parameters;
  EvaluatorOptions options;
  llvm::DenseMap<Value, Tensor> values;
};

} // namespace

/// The concrete result shape of a reshape: its one dynamic dim takes what the
/// element count leaves.
static std::optional<llvm::SmallVector<int64_t, 4>> reshapeTarget(RankedTensorType type,
                                                                  int64_t elements) {
  llvm::SmallVector<int64_t, 4> shape(type.getShape());
  int64_t known = 1, dynamicAt = -1;
  for (int64_t i = 0; i < (int64_t)shape.size(); ++i) {
    if (ShapedType::isDynamic(shape[i]))
      dynamicAt = i;
    else
      known *= shape[i];
  }
  if (dynamicAt >= 0) {
    if (known == 0 || elements % known != 0)
      return std::nullopt;
    shape[dynamicAt] = elements / known;
  } else if (known != elements) {
    return std::nullopt;
  }
  return shape;
}

static kernels::RopeConfig ropeConfig(double theta, int64_t rotaryDim, RopeStyle style,
                                      std::optional<ArrayRef<double>> scaling,
                                      bool inverse = false) {
  kernels::RopeConfig config{theta, rotaryDim, style == RopeStyle::Interleaved, std::nullopt,
                             inverse};
  if (scaling)
    config.llama3Scaling = std::array<double, 4>{(*scaling)[0], (*scaling)[1], (*scaling)[2],
                                                 (*scaling)[3]};
  return config;
}

template <typename AttentionLike>
llvm::Expected<Tensor> Interpreter::attention(AttentionLike op, const Tensor *gate,
                                              const Tensor *sinks) {
  if (llvm::Error e = checkPositions(op, op.getInput(), op.getPositions()))
    return std::move(e);
  kernels::AttentionWeights w{&in(op.getQWeight()), &in(op.getKWeight()),
                              &in(op.getVWeight()), &in(op.getOWeight())};
  if (auto bias = op.getQkvBias(); !bias.empty()) {
    w.qBias = &in(bias[0]);
    w.kBias = &in(bias[1]);
    w.vBias = &in(bias[2]);
  }
  if (auto norms = op.getQkNorm(); !norms.empty()) {
    w.qNorm = &in(norms[0]);
    w.kNorm = &in(norms[1]);
  }
  w.gate = gate;
  w.sinks = sinks;
  kernels::AttentionConfig config{
      (int64_t)op.getNumHeads(), (int64_t)op.getNumKvHeads(), (int64_t)op.getHeadDim(),
      op.getScale().convertToDouble(),
      ropeConfig(op.getRopeTheta().convertToDouble(), op.getRotaryDim(), op.getRopeStyle(),
                 op.getLlama3Scaling()),
      op.getNormEps().convertToDouble(), (int64_t)op.getWindow()};
  if constexpr (std::is_same_v<AttentionLike, attnedit::GateSwaOp>)
    config.gate = op.getGate();
  return kernels::attention(in(op.getInput()), in(op.getPositions()), w, config);
}

llvm::Expected<Tensor> Interpreter::mla(attnedit::MlaOp op) {
  if (llvm::Error e = checkPositions(op, op.getInput(), op.getPositions()))
    return std::move(e);
  auto opt = [&](Value v) { return v ? &in(v) : nullptr; };
  kernels::MlaWeights w{opt(op.getQProj()),     opt(op.getQAProj()),
                        opt(op.getQALayernorm()), opt(op.getQBProj()),
                        &in(op.getKvAProj()),   &in(op.getKvALayernorm()),
                        &in(op.getKvBProj()),   &in(op.getOProj())};
  int64_t rope = op.getQkRopeHeadDim();
  kernels::MlaConfig config{(int64_t)op.getNumHeads(), (int64_t)op.getKvLoraRank(),
                            (int64_t)op.getQkNopeHeadDim(), rope, (int64_t)op.getVHeadDim(),
                            op.getScale().convertToDouble(),
                            ropeConfig(op.getRopeTheta().convertToDouble(), rope,
                                       op.getRopeStyle(), op.getLlama3Scaling()),
                            op.getNormEps().convertToDouble()};
  return kernels::mla(in(op.getInput()), in(op.getPositions()), w, config,
                      options.absorbMla);
}

llvm::Expected<Tensor> Interpreter::step(Operation *op) {
  using R = llvm::Expected<Tensor>;
  return llvm::TypeSwitch<Operation *, R>(op)
      .Case([&](attnedit::ParamOp p) -> R {
        return parameters.get(p.getName(), p.getType().getShape(),
                              p.getScope().value_or(""));
      })
      .Case([&](attnedit::ConvertOp c) -> R {
        Type to = c.getType().getElementType();
        const Tensor &x = in(c.getInput());
        if (to.isF32())
          return x;
        Tensor out = Tensor::zeros(x.shape());
        for (int64_t i = 0; i < x.numel(); ++i)
          out.mutableData()[i] = to.isBF16() ? roundToBF16(x.data()[i]) : roundToF16(x.data()[i]);
        return out;
      })
      .Case([&](attnedit::EmbeddingOp e) -> R {
        auto out = kernels::embedding(in(e.getTable()), in(e.getIds()));
        if (!out)
          return error(op, llvm::toString(out.takeError()));
        return out;
      })
      .Case([&](attnedit::LinearOp l) -> R {
        return kernels::linear(in(l.getInput()), in(l.getWeight()),
                               l.getBias() ? &in(l.getBias()) : nullptr);
      })
      .Case([&](attnedit::RmsNormOp n) -> R {
        return kernels::rmsNorm(in(n.getInput()), in(n.getWeight()),
                                n.getEps().convertToDouble());
      })
      .Case([&](attnedit::RopeOp r) -> R {
        if (llvm::Error e = checkPositions(op, r.getInput(), r.getPositions()))
          return std::move(e);
        return kernels::rope(in(r.getInput()), in(r.getPositions()),
                             ropeConfig(r.getTheta().convertToDouble(), r.getRotaryDim(),
                                        r.getStyle(), r.getLlama3Scaling(), r.getInverse()));
      })
      .Case([&](attnedit::MatmulOp m) -> R {
        const Tensor &a = in(m.getLhs()), &b = in(m.getRhs());
        if (a.dim(-1) != b.dim(-2) || a.numel() / (a.dim(-1) * std::max<int64_t>(1, a.dim(-2))) !=
                                          b.numel() / (b.dim(-1) * std::max<int64_t>(1, b.dim(-2))))
          return error(op, "operands " + a.shapeString() + " x " + b.shapeString() +
                               " do not multiply");
        return kernels::matmul(a, b);
      })
      .Case([&](attnedit::SoftmaxOp s) -> R {
        if (s.getSinks() && in(s.getSinks()).numel() != in(s.getInput()).dim(0))
          return error(op, "sinks " + in(s.getSinks()).shapeString() + " for scores " +
                               in(s.getInput()).shapeString() + ": one per head");
        return kernels::softmax(in(s.getInput()), s.getAxis(),
                                s.getSinks() ? &in(s.getSinks()) : nullptr);
      })
      .Case([&](attnedit::CausalMaskOp c) -> R {
        const Tensor &x = in(c.getInput());
        if (x.dim(-2) > x.dim(-1))
          return error(op, "more queries than keys in " + x.shapeString());
        int64_t segments = c.getSegments();
        if (!attnedit::CausalMaskOp::segmentsFit(segments, x.dim(-2), x.dim(-1)))
          return error(op, std::to_string(segments) + " segments need as many queries as keys, "
                               "a multiple of " + std::to_string(segments) + ", not " +
                               x.shapeString());
        return kernels::causalMask(x, c.getWindow(), c.getZeroFill(), segments);
      })
      .Case([&](attnedit::RepeatKvOp r) -> R {
        return kernels::repeatKv(in(r.getInput()), r.getRepeats());
      })
      .Case([&](attnedit::SiluOp s) -> R { return kernels::silu(in(s.getInput())); })
      .Case([&](attnedit::SigmoidOp s) -> R { return kernels::sigmoid(in(s.getInput())); })
      .Case([&](attnedit::BroadcastOp b) -> R {
        const Tensor &x = in(b.getInput());
        llvm::SmallVector<int64_t, 4> shape(b.getType().getShape());
        for (int64_t i = 0; i < x.rank(); ++i)
          if (ShapedType::isDynamic(shape[i]))
            shape[i] = x.dim(i);
          else if (x.dim(i) != 1 && x.dim(i) != shape[i])
            return error(op, "cannot broadcast " + x.shapeString());
        return kernels::broadcast(x, shape);
      })
      .Case([&](attnedit::ReduceSumOp r) -> R {
        return kernels::reduceSum(in(r.getInput()), r.getAxis(), r.getKeepDims());
      })
      .Case([&](attnedit::PadOp p) -> R {
        return kernels::pad(in(p.getInput()), p.getAxis(), p.getBefore(), p.getAfter());
      })
      .Case([&](attnedit::EmbeddingGradOp e) -> R {
        return kernels::embeddingGrad(in(e.getGrad()), in(e.getIds()),
                                      e.getType().getDimSize(0));
      })
      .Case([&](attnedit::RmsNormGradOp n) -> R {
        return kernels::rmsNormGrad(in(n.getInput()), in(n.getWeight()), in(n.getGrad()),
                                    n.getEps().convertToDouble());
      })
      .Case([&](attnedit::RmsNormWeightGradOp n) -> R {
        return kernels::rmsNormWeightGrad(in(n.getInput()), in(n.getGrad()),
                                          n.getEps().convertToDouble());
      })
      .Case([&](attnedit::SoftmaxGradOp s) -> R {
        return kernels::softmaxGrad(in(s.getOutput()), in(s.getGrad()), s.getAxis());
      })
      .Case([&](attnedit::SinkGradOp s) -> R {
        return kernels::sinkGrad(in(s.getOutput()), in(s.getGrad()));
      })
      .Case([&](attnedit::SiluGradOp s) -> R {
        return kernels::siluGrad(in(s.getInput()), in(s.getGrad()));
      })
      .Case([&](attnedit::SigmoidGradOp s) -> R {
        return kernels::sigmoidGrad(in(s.getOutput()), in(s.getGrad()));
      })
      .Case([&](attnedit::MseLossOp l) -> R {
        return lossOrError(op, kernels::loss(LossKind::Mse, in(l.getInput()),
                                             in(l.getTarget())));
      })
      .Case([&](attnedit::KlLossOp l) -> R {
        return lossOrError(op, kernels::loss(LossKind::Kl, in(l.getTeacher()),
                                             in(l.getStudent()),
                                             l.getTemperature().convertToDouble()));
      })
      .Case([&](attnedit::CrossEntropyLossOp l) -> R {
        return lossOrError(op, kernels::loss(LossKind::CrossEntropy, in(l.getLogits()),
                                             in(l.getTargets())));
      })
      .Case([&](attnedit::CosineLossOp l) -> R {
        return lossOrError(op, kernels::loss(LossKind::Cosine, in(l.getLhs()),
                                             in(l.getRhs())));
      })
      .Case([&](attnedit::LossGradOp l) -> R {
        return lossOrError(op, kernels::lossGrad(l.getKind(), in(l.getLhs()), in(l.getRhs()),
                                                 in(l.getGrad()), l.getOperand(),
                                                 l.getTemperature().convertToDouble()));
      })
      .Case([&](arith::ConstantOp c) -> R {
        auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
        auto type = dyn_cast<RankedTensorType>(c.getType());
        if (!dense || !type || !type.getElementType().isF32())
          return error(op, "only f32 tensor constants are supported");
        Tensor out = Tensor::zeros(type.getShape());
        auto values = dense.getValues<float>();
        std::copy(values.begin(), values.end(), out.mutableData());
        return out;
      })
      .Case([&](attnedit::AttentionOp a) -> R { return attention(a, nullptr, nullptr); })
      .Case([&](attnedit::GateSwaOp g) -> R {
        return attention(g, g.getGateWeight() ? &in(g.getGateWeight()) : nullptr,
                         g.getSinks() ? &in(g.getSinks()) : nullptr);
      })
      .Case([&](attnedit::MlaOp m) -> R { return mla(m); })
      .Case([&](attnedit::CacheWriteOp w) -> R {
        return lossOrError(op, kernels::cacheWrite(in(w.getPool()), in(w.getRows()),
                                                   in(w.getBlockTable()), in(w.getPositions()),
                                                   {(int64_t)w.getBlockSize(), w.getRing()}));
      })
      .Case([&](attnedit::PagedAttentionOp a) -> R {
        kernels::PagedAttentionConfig config{
            (int64_t)a.getNumKvHeads(), (int64_t)a.getVHeadDim(),
            a.getScale().convertToDouble(), (int64_t)a.getWindow(),
            {(int64_t)a.getBlockSize(), a.getRing()}};
        return lossOrError(op, kernels::pagedAttention(
                                   in(a.getQuery()), in(a.getKPool()), in(a.getVPool()),
                                   in(a.getBlockTable()), in(a.getPositions()),
                                   a.getSinks() ? &in(a.getSinks()) : nullptr, config));
      })
      .Case([&](attnedit::AddOp a) -> R {
        if (llvm::Error e = checkSameShape(op, in(a.getLhs()), in(a.getRhs())))
          return std::move(e);
        return kernels::add(in(a.getLhs()), in(a.getRhs()));
      })
      .Case([&](attnedit::MulOp m) -> R {
        if (llvm::Error e = checkSameShape(op, in(m.getLhs()), in(m.getRhs())))
          return std::move(e);
        return kernels::mul(in(m.getLhs()), in(m.getRhs()));
      })
      .Case([&](attnedit::ScaleOp s) -> R {
        return kernels::scale(in(s.getInput()), s.getFactor().convertToDouble());
      })
      .Case([&](attnedit::ReshapeOp r) -> R {
        const Tensor &x = in(r.getInput());
        auto shape = reshapeTarget(r.getType(), x.numel());
        if (!shape)
          return error(op, "cannot reshape " + x.shapeString() + " to the result type");
        return x.reshaped(*shape);
      })
      .Case([&](attnedit::TransposeOp t) -> R {
        return kernels::transpose(in(t.getInput()), t.getPermutation());
      })
      .Case([&](attnedit::SliceOp s) -> R {
        const Tensor &x = in(s.getInput());
        int64_t axis = s.getAxis(), offset = s.getOffset(), size = s.getSize();
        if (offset + size > x.dim(axis))
          return error(op, "slice past the end of " + x.shapeString());
        return kernels::slice(x, axis, offset, size);
      })
      .Case([&](attnedit::ConcatOp c) -> R {
        std::vector<Tensor> xs;
        for (Value v : c.getInputs()) {
          xs.push_back(in(v));
          llvm::SmallVector<int64_t, 4> first(xs.front().shape()), next(xs.back().shape());
          first[c.getAxis()] = next[c.getAxis()] = 0;
          if (first != next)
            return error(op, "inputs " + xs.front().shapeString() + " and " +
                                 xs.back().shapeString() + " differ outside axis " +
                                 llvm::Twine(c.getAxis()));
        }
        return kernels::concat(xs, c.getAxis());
      })
      .Default([&](Operation *) -> R {
        return error(op, "is not supported by the reference evaluator (run "
                         "--attnedit-decompose first for composite ops)");
      });
}

llvm::Expected<std::vector<Tensor>> Interpreter::run(func::FuncOp func,
                                                     llvm::ArrayRef<Tensor> args) {
  Block &body = func.getBody().front();
  if (args.size() != body.getNumArguments())
    return error(func, llvm::Twine("expects ") + llvm::Twine(body.getNumArguments()) +
                           " arguments, got " + llvm::Twine(args.size()));
  for (auto [arg, tensor] : llvm::zip(body.getArguments(), args)) {
    if (llvm::Error e = check(func, arg, tensor))
      return std::move(e);
    values[arg] = tensor;
  }
  // Drop each intermediate after its last use: a whole model's activations
  // would otherwise stay alive until the function returns.
  llvm::DenseMap<Value, Operation *> lastUse;
  for (Operation &op : body)
    for (Value operand : op.getOperands())
      lastUse[operand] = &op;
  for (Operation &op : body) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      std::vector<Tensor> results;
      for (Value v : ret.getOperands())
        results.push_back(in(v));
      return results;
    }
    if (llvm::Error e = checkResultFits(&op))
      return std::move(e);
    llvm::Expected<Tensor> result = dispatch(&op);
    if (!result)
      return result.takeError();
    if (op.getNumResults() != 1)
      return error(&op, "must have exactly one result");
    if (llvm::Error e = check(&op, op.getResult(0), *result))
      return std::move(e);
    values[op.getResult(0)] = std::move(*result);
    for (Value operand : op.getOperands())
      if (lastUse.lookup(operand) == &op)
        values.erase(operand);
  }
  return error(func, "has no return");
}

llvm::Expected<std::vector<Tensor>> attnedit::evaluate(func::FuncOp func,
                                                       llvm::ArrayRef<Tensor> args,
                                                       ParameterStore &parameters,
                                                       EvaluatorOptions options) {
  return Interpreter(parameters, options).run(func, args);
}
