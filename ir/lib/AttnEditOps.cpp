//===- AttnEditOps.cpp - attnedit op verifiers -----------------------------===//
//
// Shape checks accept a dynamic dimension wherever a static one is expected:
// sequence length is dynamic in every imported model.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/IR/Limits.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/CheckedArithmetic.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>

using namespace mlir;
using namespace mlir::attnedit;

namespace {

bool compatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

bool compatible(ArrayRef<int64_t> a, ArrayRef<int64_t> b) {
  return a.size() == b.size() &&
         llvm::all_of(llvm::zip(a, b), [](auto p) {
           return compatible(std::get<0>(p), std::get<1>(p));
         });
}

ArrayRef<int64_t> shapeOf(Value v) {
  return cast<RankedTensorType>(v.getType()).getShape();
}

LogicalResult expectShape(Operation *op, StringRef what, ArrayRef<int64_t> actual,
                          ArrayRef<int64_t> expected) {
  if (compatible(actual, expected))
    return success();
  return op->emitOpError() << what << " has shape " << formatShape(actual)
                           << ", expected " << formatShape(expected);
}

LogicalResult expectRank(Operation *op, StringRef what, Value v, int64_t rank) {
  int64_t actual = shapeOf(v).size();
  if (actual == rank)
    return success();
  return op->emitOpError() << what << " must have rank " << rank << ", got "
                           << actual;
}

LogicalResult expectMinRank(Operation *op, StringRef what, Value v, int64_t rank) {
  int64_t actual = shapeOf(v).size();
  if (actual >= rank)
    return success();
  return op->emitOpError() << what << " must have rank >= " << rank << ", got " << actual;
}

/// `axis` must name a dimension of a rank-`rank` tensor: the lowerings index
/// shapes and affine maps with it unchecked.
LogicalResult expectAxis(Operation *op, int64_t axis, int64_t rank) {
  if (axis >= 0 && axis < rank)
    return success();
  return op->emitOpError() << "axis " << axis << " out of range for rank " << rank;
}

/// A loss averages over rows of its last axis ([rows..., width]); the
/// lowering views a rank-0 operand as [rows, width] and crashed on it.
LogicalResult expectLossInput(Operation *op, StringRef what, Value v) {
  return expectMinRank(op, what, v, 1);
}

int64_t mulDims(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b)
             ? ShapedType::kDynamic
             : a * b;
}

} // namespace

LogicalResult mlir::attnedit::verifyFiniteFloatAttributes(Operation *op) {
  for (NamedAttribute attr : op->getAttrs()) {
    SmallVector<double> values;
    if (auto f = dyn_cast<FloatAttr>(attr.getValue()))
      values.push_back(f.getValueAsDouble());
    else if (auto array = dyn_cast<DenseF64ArrayAttr>(attr.getValue()))
      values.assign(array.asArrayRef().begin(), array.asArrayRef().end());
    if (llvm::any_of(values, [](double v) { return !std::isfinite(v); }))
      return op->emitOpError() << "attribute '" << attr.getName().getValue()
                               << "' must be finite, not NaN or infinite";
  }
  return success();
}

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError("parameter name must not be empty");
  if (!getType().hasStaticShape())
    return emitOpError("parameter '") << getName() << "' must have a static shape";
  return success();
}

LogicalResult ConvertOp::verify() {
  return expectShape(*this, "result", getType().getShape(),
                     getInput().getType().getShape());
}

LogicalResult EmbeddingOp::verify() {
  if (failed(expectRank(*this, "table", getTable(), 2)))
    return failure();
  auto table = shapeOf(getTable());
  return expectShape(*this, "result", getType().getShape(),
                     {shapeOf(getIds())[0], table[1]});
}

LogicalResult LinearOp::verify() {
  if (failed(expectRank(*this, "weight", getWeight(), 2)))
    return failure();
  auto in = shapeOf(getInput());
  auto w = shapeOf(getWeight());
  // [..., K] with at least one row dim: the lowering's GEMM takes the
  // input as [rows, K] and emitted an invalid linalg.generic for a vector.
  if (in.size() < 2)
    return emitOpError() << "input must have rank >= 2 ([..., K]), got " << in.size();
  if (!compatible(in.back(), w[1]))
    return emitOpError() << "input features " << formatShape(in)
                         << " do not match weight " << formatShape(w)
                         << " (weight is [out, in])";
  if (Value bias = getBias())
    if (failed(expectShape(*this, "bias", shapeOf(bias), {w[0]})))
      return failure();
  SmallVector<int64_t> expected(in);
  expected.back() = w[0];
  return expectShape(*this, "result", getType().getShape(), expected);
}

LogicalResult RmsNormOp::verify() {
  auto in = shapeOf(getInput());
  if (in.empty())
    return emitOpError("input must have rank >= 1");
  if (getEps().convertToDouble() <= 0)
    return emitOpError("eps must be positive");
  if (failed(expectShape(*this, "weight", shapeOf(getWeight()), {in.back()})))
    return failure();
  return expectShape(*this, "result", getType().getShape(), in);
}

static LogicalResult verifyRopeConfig(Operation *op, int64_t headDim,
                                      int64_t rotaryDim, double theta,
                                      std::optional<ArrayRef<double>> scaling) {
  if (rotaryDim <= 0 || rotaryDim % 2 != 0 ||
      (!ShapedType::isDynamic(headDim) && rotaryDim > headDim))
    return op->emitOpError() << "rotary_dim " << rotaryDim
                             << " must be even and in (0, " << headDim << "]";
  if (theta <= 0)
    return op->emitOpError("rope theta must be positive");
  if (!scaling)
    return success();
  // Llama 3's rule divides by each, and by high - low.
  if (scaling->size() != 4 || llvm::any_of(*scaling, [](double v) { return v <= 0; }) ||
      (*scaling)[2] <= (*scaling)[1])
    return op->emitOpError("llama3_scaling must hold [factor, low_freq_factor, "
                           "high_freq_factor, original_max_position_embeddings], all positive, "
                           "high_freq_factor above low_freq_factor");
  return success();
}

LogicalResult RopeOp::verify() {
  if (failed(expectRank(*this, "input", getInput(), 3)))
    return failure();
  auto in = shapeOf(getInput());
  if (!compatible(in[0], shapeOf(getPositions())[0]))
    return emitOpError() << "positions " << formatShape(shapeOf(getPositions()))
                         << " do not match input tokens " << formatShape(in);
  if (failed(verifyRopeConfig(*this, in[2], getRotaryDim(),
                              getTheta().convertToDouble(), getLlama3Scaling())))
    return failure();
  return expectShape(*this, "result", getType().getShape(), in);
}

LogicalResult MatmulOp::verify() {
  auto a = shapeOf(getLhs());
  auto b = shapeOf(getRhs());
  if (a.size() < 2 || a.size() != b.size())
    return emitOpError() << "operands must have equal rank >= 2, got "
                         << formatShape(a) << " and " << formatShape(b);
  size_t r = a.size();
  SmallVector<int64_t> expected;
  for (size_t i = 0; i + 2 < r; ++i) {
    if (!compatible(a[i], b[i]))
      return emitOpError() << "batch dimensions differ: " << formatShape(a)
                           << " vs " << formatShape(b);
    expected.push_back(ShapedType::isDynamic(a[i]) ? b[i] : a[i]);
  }
  if (!compatible(a[r - 1], b[r - 2]))
    return emitOpError() << "contraction dimensions differ: " << formatShape(a)
                         << " x " << formatShape(b);
  expected.push_back(a[r - 2]);
  expected.push_back(b[r - 1]);
  return expectShape(*this, "result", getType().getShape(), expected);
}

LogicalResult SoftmaxOp::verify() {
  int64_t rank = getType().getRank();
  int64_t axis = getAxis();
  if (axis < 0 || axis >= rank)
    return emitOpError() << "axis " << axis << " out of range for rank "
                         << rank;
  if (!getSinks())
    return success();
  if (rank != 3 || axis != 2)
    return emitOpError("sinks need scores [H, Tq, Tk] normalised along axis 2");
  return expectShape(*this, "sinks", shapeOf(getSinks()), {getType().getDimSize(0)});
}

LogicalResult CausalMaskOp::verify() {
  auto in = getType().getShape();
  if (in.size() < 2)
    return emitOpError("input must be [..., Tq, Tk]");
  if ((int64_t)getWindow() < 0 || (int64_t)getWindow() > kMaxConfigSize)
    return emitOpError() << "window must be in [0, " << kMaxConfigSize << "]";
  int64_t tq = in[in.size() - 2], tk = in.back();
  if (!ShapedType::isDynamic(tq) && !ShapedType::isDynamic(tk) && tq > tk)
    return emitOpError() << "more queries (" << tq << ") than keys (" << tk << ")";
  int64_t segments = getSegments();
  if (segments < 1)
    return emitOpError("segments must be >= 1");
  if (!ShapedType::isDynamic(tq) && !ShapedType::isDynamic(tk) &&
      !segmentsFit(segments, tq, tk))
    return emitOpError() << segments << " segments need as many queries as keys, a multiple of "
                         << segments << " (got " << tq << " x " << tk << ")";
  return success();
}

LogicalResult RepeatKvOp::verify() {
  if (failed(expectRank(*this, "input", getInput(), 3)))
    return failure();
  if ((int64_t)getRepeats() < 1 || (int64_t)getRepeats() > kMaxConfigSize)
    return emitOpError() << "repeats must be in [1, " << kMaxConfigSize << "]";
  auto in = shapeOf(getInput());
  return expectShape(*this, "result", getType().getShape(),
                     {mulDims(in[0], getRepeats()), in[1], in[2]});
}

/// The product of the static sizes of \p shape, or nullopt if it overflows
/// int64 (ShapedType::getNumElements wraps).
static std::optional<int64_t> staticElementCount(ArrayRef<int64_t> shape) {
  if (llvm::is_contained(shape, 0))
    return 0;
  std::optional<int64_t> count = 1;
  for (int64_t s : shape)
    if (!ShapedType::isDynamic(s) && count)
      count = llvm::checkedMul(*count, s);
  return count;
}

LogicalResult ReshapeOp::verify() {
  auto in = getInput().getType();
  auto out = getType();
  if (llvm::count_if(out.getShape(), ShapedType::isDynamic) > 1)
    return emitOpError("result may have at most one dynamic dimension");
  std::optional<int64_t> inCount = staticElementCount(in.getShape());
  std::optional<int64_t> outCount = staticElementCount(out.getShape());
  if (!inCount || !outCount)
    return emitOpError() << "the element count of "
                         << formatShape((inCount ? out : in).getShape()) << " overflows int64";
  if (in.hasStaticShape() && out.hasStaticShape() && *inCount != *outCount)
    return emitOpError() << "cannot reshape " << formatShape(in.getShape()) << " (" << *inCount
                         << " elements) to " << formatShape(out.getShape()) << " ("
                         << *outCount << " elements)";
  // The lowering sizes the one dynamic result dim as the element count over
  // the static dims: they must divide it, or the count silently truncated.
  if (in.hasStaticShape() && !out.hasStaticShape() && *outCount != 0 &&
      *inCount % *outCount != 0)
    return emitOpError() << "cannot reshape " << formatShape(in.getShape()) << " (" << *inCount
                         << " elements) to " << formatShape(out.getShape()) << ": "
                         << *outCount << " does not divide the element count";
  return success();
}

LogicalResult TransposeOp::verify() {
  auto in = shapeOf(getInput());
  ArrayRef<int64_t> perm = getPermutation();
  SmallVector<bool> seen(in.size(), false);
  if (perm.size() != in.size())
    return emitOpError() << "permutation has " << perm.size()
                         << " entries for rank " << in.size();
  SmallVector<int64_t> expected;
  for (int64_t p : perm) {
    if (p < 0 || p >= (int64_t)in.size() || seen[p])
      return emitOpError("permutation is not a permutation of the axes");
    seen[p] = true;
    expected.push_back(in[p]);
  }
  return expectShape(*this, "result", getType().getShape(), expected);
}

LogicalResult SliceOp::verify() {
  auto in = shapeOf(getInput());
  int64_t axis = getAxis();
  if (axis < 0 || axis >= (int64_t)in.size())
    return emitOpError() << "axis " << axis << " out of range for rank " << in.size();
  int64_t offset = getOffset(), size = getSize();
  if (offset < 0 || size < 1)
    return emitOpError("offset must be >= 0 and size >= 1");
  // Checked: offset + size wrapped negative and passed the bound below.
  std::optional<int64_t> end = llvm::checkedAdd(offset, size);
  if (!end)
    return emitOpError() << "slice offset " << offset << " + size " << size
                         << " overflows int64";
  if (!ShapedType::isDynamic(in[axis]) && *end > in[axis])
    return emitOpError() << "slice [" << offset << ", " << *end << ") exceeds dimension "
                         << in[axis];
  SmallVector<int64_t> expected(in);
  expected[axis] = size;
  return expectShape(*this, "result", getType().getShape(), expected);
}

LogicalResult ConcatOp::verify() {
  if (getInputs().empty())
    return emitOpError("needs at least one input");
  auto first = shapeOf(getInputs().front());
  int64_t axis = getAxis();
  if (axis < 0 || axis >= (int64_t)first.size())
    return emitOpError() << "axis " << axis << " out of range for rank "
                         << first.size();
  SmallVector<int64_t> expected(first);
  expected[axis] = 0;
  for (Value input : getInputs()) {
    auto s = shapeOf(input);
    if (s.size() != first.size())
      return emitOpError("inputs must have equal rank");
    for (size_t i = 0; i < s.size(); ++i)
      if ((int64_t)i != axis && !compatible(s[i], first[i]))
        return emitOpError() << "input " << formatShape(s) << " differs from "
                             << formatShape(first) << " off the concat axis";
    expected[axis] = ShapedType::isDynamic(s[axis]) ? ShapedType::kDynamic
                     : ShapedType::isDynamic(expected[axis])
                         ? expected[axis]
                         : expected[axis] + s[axis];
  }
  return expectShape(*this, "result", getType().getShape(), expected);
}

/// Checks what attention and gate_swa share: heads, projection shapes,
/// biases, q/k norms, window and RoPE.
template <typename AttentionLike>
static LogicalResult verifyAttentionCore(AttentionLike op) {
  if (failed(expectRank(op, "input", op.getInput(), 2)))
    return failure();
  int64_t hq = op.getNumHeads(), hkv = op.getNumKvHeads(), d = op.getHeadDim();
  if (hq < 1 || hkv < 1 || d < 1 || hq % hkv != 0)
    return op.emitOpError() << "num_heads (" << hq << ") must be a positive multiple of "
                            << "num_kv_heads (" << hkv << "), head_dim " << d;
  // Checked: a wrapped product matched the weights' rows for absurd heads.
  std::optional<int64_t> qRows = llvm::checkedMul(hq, d), kvRows = llvm::checkedMul(hkv, d);
  if (!qRows || !kvRows)
    return op.emitOpError() << "num_heads (" << hq << ") x head_dim (" << d
                            << ") overflows int64";
  int64_t qDim = *qRows, kvDim = *kvRows;
  auto in = shapeOf(op.getInput());
  int64_t hidden = in[1];
  if (failed(expectShape(op, "positions", shapeOf(op.getPositions()), {in[0]})) ||
      failed(expectShape(op, "q_weight", shapeOf(op.getQWeight()), {qDim, hidden})) ||
      failed(expectShape(op, "k_weight", shapeOf(op.getKWeight()), {kvDim, hidden})) ||
      failed(expectShape(op, "v_weight", shapeOf(op.getVWeight()), {kvDim, hidden})) ||
      failed(expectShape(op, "o_weight", shapeOf(op.getOWeight()), {hidden, qDim})))
    return failure();
  auto bias = op.getQkvBias();
  if (!bias.empty()) {
    if (bias.size() != 3)
      return op.emitOpError("qkv_bias holds either no bias or exactly three (q, k, v)");
    if (failed(expectShape(op, "q bias", shapeOf(bias[0]), {qDim})) ||
        failed(expectShape(op, "k bias", shapeOf(bias[1]), {kvDim})) ||
        failed(expectShape(op, "v bias", shapeOf(bias[2]), {kvDim})))
      return failure();
  }
  auto norms = op.getQkNorm();
  if (!norms.empty()) {
    if (norms.size() != 2)
      return op.emitOpError("qk_norm holds either no norm or exactly two (q, k)");
    if (failed(expectShape(op, "q norm", shapeOf(norms[0]), {d})) ||
        failed(expectShape(op, "k norm", shapeOf(norms[1]), {d})))
      return failure();
  }
  // As the edit and the importer bound it: decoding sizes its ring by it.
  if ((int64_t)op.getWindow() < 0 || (int64_t)op.getWindow() > kMaxConfigSize)
    return op.emitOpError() << "window must be in [0, " << kMaxConfigSize << "]";
  if (op.getNormEps().convertToDouble() <= 0)
    return op.emitOpError("norm_eps must be positive");
  if (failed(verifyRopeConfig(op, d, op.getRotaryDim(), op.getRopeTheta().convertToDouble(),
                              op.getLlama3Scaling())))
    return failure();
  return expectShape(op, "result", op.getType().getShape(), in);
}

static StringRef kvHeadsKind(int64_t heads, int64_t kvHeads) {
  return kvHeads == heads ? "mha" : kvHeads == 1 ? "mqa" : "gqa";
}

LogicalResult AttentionOp::verify() { return verifyAttentionCore(*this); }

StringRef AttentionOp::getAttentionKind() {
  return getWindow() ? "swa" : kvHeadsKind(getNumHeads(), getNumKvHeads());
}
int64_t AttentionOp::getKvValuesPerToken() { return 2 * getNumKvHeads() * getHeadDim(); }
int64_t AttentionOp::getKvWindow() { return getWindow(); }

LogicalResult GateSwaOp::verify() {
  if (failed(verifyAttentionCore(*this)))
    return failure();
  int64_t hq = getNumHeads(), hidden = shapeOf(getInput())[1];
  Value gate = getGateWeight();
  if ((getGate() == GateKind::None) != !gate)
    return emitOpError("gate_weight must be given exactly when gate is not none");
  if (gate) {
    int64_t rows = getGate() == GateKind::Headwise ? hq : hq * (int64_t)getHeadDim();
    if (failed(expectShape(*this, "gate_weight", shapeOf(gate), {rows, hidden})))
      return failure();
  }
  if (getSinks() && failed(expectShape(*this, "sinks", shapeOf(getSinks()), {hq})))
    return failure();
  return success();
}

StringRef GateSwaOp::getAttentionKind() { return getWindow() ? "swa" : "full"; }
int64_t GateSwaOp::getKvValuesPerToken() { return 2 * getNumKvHeads() * getHeadDim(); }
int64_t GateSwaOp::getKvWindow() { return getWindow(); }

LogicalResult MlaOp::verify() {
  if (failed(expectRank(*this, "input", getInput(), 2)))
    return failure();
  int64_t h = getNumHeads(), qRank = getQLoraRank(), kvRank = getKvLoraRank();
  int64_t n = getQkNopeHeadDim(), r = getQkRopeHeadDim(), dv = getVHeadDim();
  if (h < 1 || qRank < 0 || kvRank < 1 || n < 0 || r < 2 || r % 2 || dv < 1)
    return emitOpError() << "needs num_heads >= 1, q_lora_rank >= 0, kv_lora_rank >= 1, "
                            "qk_nope_head_dim >= 0, an even qk_rope_head_dim >= 2 and "
                            "v_head_dim >= 1";
  if (getNormEps().convertToDouble() <= 0)
    return emitOpError("norm_eps must be positive");
  // Checked: a wrapped product matched the projections for absurd sizes.
  std::optional<int64_t> qkDim = llvm::checkedAdd(n, r), kvDim = llvm::checkedAdd(n, dv);
  std::optional<int64_t> qRows = qkDim ? llvm::checkedMul(h, *qkDim) : std::nullopt;
  std::optional<int64_t> kvRows = kvDim ? llvm::checkedMul(h, *kvDim) : std::nullopt;
  std::optional<int64_t> oCols = llvm::checkedMul(h, dv), kvA = llvm::checkedAdd(kvRank, r);
  if (!qRows || !kvRows || !oCols || !kvA)
    return emitOpError() << "projection sizes overflow int64 (num_heads " << h
                         << ", qk_nope_head_dim " << n << ", qk_rope_head_dim " << r
                         << ", v_head_dim " << dv << ", kv_lora_rank " << kvRank << ")";
  auto in = shapeOf(getInput());
  int64_t hidden = in[1];
  if (failed(expectShape(*this, "positions", shapeOf(getPositions()), {in[0]})))
    return failure();
  if (qRank == 0) {
    if (!getQProj() || getQAProj())
      return emitOpError("q_lora_rank 0 takes q_proj and no q_lora operands");
    if (failed(expectShape(*this, "q_proj", shapeOf(getQProj()), {*qRows, hidden})))
      return failure();
  } else {
    if (getQProj() || !getQAProj())
      return emitOpError("q_lora_rank > 0 takes q_lora operands and no q_proj");
    if (failed(expectShape(*this, "q_a_proj", shapeOf(getQAProj()), {qRank, hidden})) ||
        failed(expectShape(*this, "q_a_layernorm", shapeOf(getQALayernorm()), {qRank})) ||
        failed(expectShape(*this, "q_b_proj", shapeOf(getQBProj()), {*qRows, qRank})))
      return failure();
  }
  if (failed(expectShape(*this, "kv_a_proj_with_mqa", shapeOf(getKvAProj()),
                         {*kvA, hidden})) ||
      failed(expectShape(*this, "kv_a_layernorm", shapeOf(getKvALayernorm()), {kvRank})) ||
      failed(expectShape(*this, "kv_b_proj", shapeOf(getKvBProj()), {*kvRows, kvRank})) ||
      failed(expectShape(*this, "o_proj", shapeOf(getOProj()), {hidden, *oCols})))
    return failure();
  if (failed(verifyRopeConfig(*this, r, r, getRopeTheta().convertToDouble(),
                              getLlama3Scaling())))
    return failure();
  return expectShape(*this, "result", getType().getShape(), in);
}

StringRef MlaOp::getAttentionKind() { return "mla"; }
int64_t MlaOp::getKvValuesPerToken() { return getKvLoraRank() + getQkRopeHeadDim(); }
int64_t MlaOp::getKvWindow() { return 0; }

LogicalResult ReduceSumOp::verify() {
  auto in = shapeOf(getInput());
  int64_t axis = getAxis();
  if (axis < 0 || axis >= (int64_t)in.size())
    return emitOpError() << "axis " << axis << " out of range for rank " << in.size();
  SmallVector<int64_t> expected(in);
  if (getKeepDims())
    expected[axis] = 1;
  else
    expected.erase(expected.begin() + axis);
  return expectShape(*this, "result", getType().getShape(), expected);
}

LogicalResult PadOp::verify() {
  auto in = shapeOf(getInput());
  int64_t axis = getAxis();
  if (axis < 0 || axis >= (int64_t)in.size() || (int64_t)getBefore() < 0 ||
      (int64_t)getAfter() < 0)
    return emitOpError("needs an axis in range and before, after >= 0");
  // Checked: the padded size wrapped and matched a smaller result.
  int64_t before = getBefore(), after = getAfter();
  std::optional<int64_t> padding = llvm::checkedAdd(before, after);
  std::optional<int64_t> padded =
      !padding ? std::nullopt
      : ShapedType::isDynamic(in[axis]) ? padding
                                        : llvm::checkedAdd(in[axis], *padding);
  if (!padded)
    return emitOpError() << "padding dimension " << formatShape(in) << "[" << axis
                         << "] by before " << before << ", after " << after
                         << " overflows int64";
  if (!staticElementCount(getType().getShape()))
    return emitOpError() << "the element count of " << formatShape(getType().getShape())
                         << " overflows int64";
  SmallVector<int64_t> expected(in);
  if (!ShapedType::isDynamic(in[axis]))
    expected[axis] = *padded;
  return expectShape(*this, "result", getType().getShape(), expected);
}

LogicalResult EmbeddingGradOp::verify() {
  if (failed(expectRank(*this, "grad", getGrad(), 2)))
    return failure();
  auto g = shapeOf(getGrad());
  if (failed(expectShape(*this, "ids", shapeOf(getIds()), {g[0]})))
    return failure();
  return expectShape(*this, "result", getType().getShape(),
                     {getType().getDimSize(0), g[1]});
}

LogicalResult MseLossOp::verify() { return expectLossInput(*this, "input", getInput()); }

LogicalResult CosineLossOp::verify() { return expectLossInput(*this, "lhs", getLhs()); }

LogicalResult KlLossOp::verify() {
  if (failed(expectLossInput(*this, "teacher", getTeacher())))
    return failure();
  if (getTemperature().convertToDouble() <= 0)
    return emitOpError("temperature must be positive");
  return success();
}

LogicalResult LossGradOp::verify() {
  LossKind kind = getKind();
  int64_t operand = getOperand();
  // The executors take any index but 0 as the rhs: a gradient for the
  // targets of cross_entropy or for kl's teacher (frozen, so the executors
  // return the student's) would be wrong, an out-of-range index more so.
  int64_t first = kind == LossKind::Kl ? 1 : 0;
  int64_t last = kind == LossKind::CrossEntropy ? 0 : 1;
  if (operand < first || operand > last)
    return emitOpError() << "operand " << operand << " has no gradient: "
                         << stringifyLossKind(kind) << " loss differentiates operand"
                         << (first == last ? " " + std::to_string(first) : "s 0 and 1")
                         << " only";
  if (kind == LossKind::CrossEntropy) {
    // The operands of cross_entropy_loss: logits [T, V] and i32 targets [T].
    if (failed(expectRank(*this, "logits", getLhs(), 2)))
      return failure();
    auto targets = cast<RankedTensorType>(getRhs().getType());
    if (targets.getRank() != 1 || !targets.getElementType().isInteger(32))
      return emitOpError() << "targets must be a 1-D tensor of i32, got " << targets;
    if (failed(expectShape(*this, "targets", targets.getShape(), {shapeOf(getLhs())[0]})))
      return failure();
  } else {
    if (failed(expectLossInput(*this, "lhs", getLhs())))
      return failure();
    if (getRhs().getType() != getLhs().getType())
      return emitOpError() << "rhs type " << getRhs().getType() << " differs from lhs type "
                           << getLhs().getType();
  }
  if (kind == LossKind::Kl && getTemperature().convertToDouble() <= 0)
    return emitOpError("temperature must be positive");
  return expectShape(*this, "result", getType().getShape(),
                     shapeOf(operand == 0 ? getLhs() : getRhs()));
}

LogicalResult RmsNormGradOp::verify() {
  // rms_norm's own checks: the lowering reads weight along the last axis.
  if (failed(expectMinRank(*this, "input", getInput(), 1)))
    return failure();
  if (getEps().convertToDouble() <= 0)
    return emitOpError("eps must be positive");
  return expectShape(*this, "weight", shapeOf(getWeight()), {shapeOf(getInput()).back()});
}

LogicalResult RmsNormWeightGradOp::verify() {
  if (failed(expectMinRank(*this, "input", getInput(), 1)))
    return failure();
  if (getEps().convertToDouble() <= 0)
    return emitOpError("eps must be positive");
  // One gradient per weight: the input's last dim.
  return expectShape(*this, "result", getType().getShape(), {shapeOf(getInput()).back()});
}

LogicalResult SoftmaxGradOp::verify() {
  return expectAxis(*this, getAxis(), getType().getRank());
}

LogicalResult SinkGradOp::verify() {
  // Probabilities [H, Tq, Tk] of a softmax with sinks; one gradient per head.
  if (failed(expectRank(*this, "output", getOutput(), 3)))
    return failure();
  return expectShape(*this, "result", getType().getShape(), {shapeOf(getOutput())[0]});
}

LogicalResult CrossEntropyLossOp::verify() {
  auto logits = shapeOf(getLogits());
  if (logits.size() != 2)
    return emitOpError("logits must be [T, V]");
  return expectShape(*this, "targets", shapeOf(getTargets()), {logits[0]});
}

LogicalResult BroadcastOp::verify() {
  auto in = shapeOf(getInput());
  auto out = getType().getShape();
  if (in.size() != out.size())
    return emitOpError() << "keeps the rank: input " << formatShape(in) << ", result "
                         << formatShape(out);
  for (auto [i, o] : llvm::zip(in, out)) {
    if (i != 1 && !compatible(i, o))
      return emitOpError() << "cannot broadcast " << formatShape(in) << " to "
                           << formatShape(out);
    // Nothing says how far a static 1 stretches to a dynamic size.
    if (ShapedType::isDynamic(o) && !ShapedType::isDynamic(i))
      return emitOpError() << "cannot broadcast " << formatShape(in) << " to "
                           << formatShape(out)
                           << ": a dynamic result size needs a dynamic input size";
  }
  // A result that outgrows its input: a wrapped count sized its buffers
  // small (a segfault on both backends).
  if (!staticElementCount(out))
    return emitOpError() << "the element count of " << formatShape(out) << " overflows int64";
  return success();
}

LogicalResult CacheWriteOp::verify() {
  if (getBlockSize() <= 0)
    return emitOpError("block_size must be positive");
  if (!getPool().hasOneUse())
    return emitOpError("pool operand must have no other use: it is updated in place");
  auto rows = shapeOf(getRows());
  if (failed(expectShape(*this, "rows", rows, {shapeOf(getPositions())[0],
                                                shapeOf(getPool())[1]})))
    return failure();
  return success();
}

LogicalResult PagedAttentionOp::verify() {
  if (failed(expectRank(*this, "query", getQuery(), 3)))
    return failure();
  auto q = shapeOf(getQuery());
  int64_t kvHeads = getNumKvHeads(), dv = getVHeadDim();
  if (getBlockSize() <= 0 || kvHeads <= 0 || dv <= 0 || getWindow() < 0 ||
      getWindow() > kMaxConfigSize)
    return emitOpError() << "block_size, num_kv_heads and v_head_dim must be positive, window "
                            "in [0, "
                         << kMaxConfigSize << "]";
  if (!ShapedType::isDynamic(q[1]) && q[1] % kvHeads != 0)
    return emitOpError() << q[1] << " query heads are not a multiple of " << kvHeads
                         << " KV heads";
  if (failed(expectShape(*this, "k_pool", shapeOf(getKPool()),
                         {ShapedType::kDynamic, mulDims(kvHeads, q[2])})))
    return failure();
  int64_t vWidth = shapeOf(getVPool())[1];
  if (!ShapedType::isDynamic(vWidth) && (vWidth % kvHeads != 0 || vWidth / kvHeads < dv))
    return emitOpError() << "v_pool rows of " << vWidth << " do not hold " << kvHeads
                         << " KV heads of " << dv << " values";
  if (failed(expectShape(*this, "positions", shapeOf(getPositions()), {q[0]})))
    return failure();
  if (getSinks() && failed(expectShape(*this, "sinks", shapeOf(getSinks()), {q[1]})))
    return failure();
  return expectShape(*this, "result", getType().getShape(), {q[0], q[1], dv});
}

/// SameOperandsAndResultType accepts compatible types (tensor<4x8xf32> with
/// tensor<?x8xf32>): written as one type, such an add read back with its
/// operands' types disagreeing and did not parse.
static ParseResult parseBinaryTypes(OpAsmParser &parser, Type &lhs, Type &rhs, Type &result) {
  if (failed(parser.parseOptionalLParen())) {
    if (parser.parseType(lhs))
      return failure();
    rhs = result = lhs;
    return success();
  }
  return failure(parser.parseType(lhs) || parser.parseComma() || parser.parseType(rhs) ||
                 parser.parseRParen() || parser.parseArrow() || parser.parseType(result));
}

static void printBinaryTypes(OpAsmPrinter &printer, Operation *, Type lhs, Type rhs,
                             Type result) {
  if (lhs == rhs && rhs == result)
    printer << lhs;
  else
    printer << '(' << lhs << ", " << rhs << ") -> " << result;
}

#define GET_OP_CLASSES
#include "attnedit/IR/AttnEditOps.cpp.inc"
