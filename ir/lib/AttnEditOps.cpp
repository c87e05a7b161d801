//===- AttnEditOps.cpp - attnedit op verifiers -----------------------------===//
//
// Shape checks accept a dynamic dimension wherever a static one is expected:
// sequence length is dynamic in every imported model.
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::attnedit;

namespace {

std::string formatShape(ArrayRef<int64_t> shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "[";
  llvm::interleaveComma(shape, os, [&](int64_t d) {
    if (ShapedType::isDynamic(d))
      os << "?";
    else
      os << d;
  });
  os << "]";
  return text;
}

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

int64_t mulDims(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b)
             ? ShapedType::kDynamic
             : a * b;
}

} // namespace

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
  if (in.empty())
    return emitOpError("input must have rank >= 1");
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
  if (scaling && scaling->size() != 4)
    return op->emitOpError("llama3_scaling must hold [factor, low_freq_factor, "
                           "high_freq_factor, original_max_position_embeddings]");
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
  return success();
}

LogicalResult CausalMaskOp::verify() {
  auto in = getType().getShape();
  if (in.size() < 2)
    return emitOpError("input must be [..., Tq, Tk]");
  if ((int64_t)getWindow() < 0)
    return emitOpError("window must be >= 0");
  int64_t tq = in[in.size() - 2], tk = in.back();
  if (!ShapedType::isDynamic(tq) && !ShapedType::isDynamic(tk) && tq > tk)
    return emitOpError() << "more queries (" << tq << ") than keys (" << tk << ")";
  return success();
}

LogicalResult RepeatKvOp::verify() {
  if (failed(expectRank(*this, "input", getInput(), 3)))
    return failure();
  if ((int64_t)getRepeats() < 1)
    return emitOpError("repeats must be >= 1");
  auto in = shapeOf(getInput());
  return expectShape(*this, "result", getType().getShape(),
                     {mulDims(in[0], getRepeats()), in[1], in[2]});
}

LogicalResult ReshapeOp::verify() {
  auto in = getInput().getType();
  auto out = getType();
  if (llvm::count_if(out.getShape(), ShapedType::isDynamic) > 1)
    return emitOpError("result may have at most one dynamic dimension");
  if (in.hasStaticShape() && out.hasStaticShape() &&
      in.getNumElements() != out.getNumElements())
    return emitOpError() << "cannot reshape " << formatShape(in.getShape())
                         << " (" << in.getNumElements() << " elements) to "
                         << formatShape(out.getShape()) << " ("
                         << out.getNumElements() << " elements)";
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
  if (!ShapedType::isDynamic(in[axis]) && offset + size > in[axis])
    return emitOpError() << "slice [" << getOffset() << ", "
                         << getOffset() + getSize() << ") exceeds dimension "
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

LogicalResult AttentionOp::verify() {
  if (failed(expectRank(*this, "input", getInput(), 2)))
    return failure();
  int64_t hq = getNumHeads(), hkv = getNumKvHeads(), d = getHeadDim();
  if (hq < 1 || hkv < 1 || d < 1 || hq % hkv != 0)
    return emitOpError() << "num_heads (" << hq << ") must be a positive multiple of "
                         << "num_kv_heads (" << hkv << "), head_dim " << d;
  auto in = shapeOf(getInput());
  int64_t hidden = in[1];
  if (failed(expectShape(*this, "positions", shapeOf(getPositions()), {in[0]})) ||
      failed(expectShape(*this, "q_weight", shapeOf(getQWeight()), {hq * d, hidden})) ||
      failed(expectShape(*this, "k_weight", shapeOf(getKWeight()), {hkv * d, hidden})) ||
      failed(expectShape(*this, "v_weight", shapeOf(getVWeight()), {hkv * d, hidden})) ||
      failed(expectShape(*this, "o_weight", shapeOf(getOWeight()), {hidden, hq * d})))
    return failure();
  auto bias = getQkvBias();
  if (!bias.empty()) {
    if (bias.size() != 3)
      return emitOpError("qkv_bias holds either no bias or exactly three (q, k, v)");
    if (failed(expectShape(*this, "q bias", shapeOf(bias[0]), {hq * d})) ||
        failed(expectShape(*this, "k bias", shapeOf(bias[1]), {hkv * d})) ||
        failed(expectShape(*this, "v bias", shapeOf(bias[2]), {hkv * d})))
      return failure();
  }
  auto norms = getQkNorm();
  if (!norms.empty()) {
    if (norms.size() != 2)
      return emitOpError("qk_norm holds either no norm or exactly two (q, k)");
    if (failed(expectShape(*this, "q norm", shapeOf(norms[0]), {d})) ||
        failed(expectShape(*this, "k norm", shapeOf(norms[1]), {d})))
      return failure();
  }
  if ((int64_t)getWindow() < 0)
    return emitOpError("window must be >= 0");
  if (failed(verifyRopeConfig(*this, d, getRotaryDim(),
                              getRopeTheta().convertToDouble(),
                              getLlama3Scaling())))
    return failure();
  return expectShape(*this, "result", getType().getShape(), in);
}

#define GET_OP_CLASSES
#include "attnedit/IR/AttnEditOps.cpp.inc"
