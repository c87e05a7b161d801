//===- AscendLowerVector.cpp - --attnedit-ascend-lower-vector --------------===//
//
// Row-wise ops of a decoder layer become double-buffered vector kernels,
// and so do the training step's row-wise backward ops (silu_grad,
// sigmoid_grad, softmax_grad, rms_norm_grad). What does not fit the row
// view (broadcasting element-wise ops, softmax with sinks or along another
// axis, reductions over a leading axis, dynamic shapes) stays as it is;
// --backend=ascend-sim lowers those at run time (OpSimulator).
//
//===----------------------------------------------------------------------===//

#include "LoweringSupport.h"
#include "attnedit/Ascend/Passes.h"
#include "attnedit/Ascend/VectorKernel.h"
#include "attnedit/IR/AttnEditOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/SymbolTable.h"

#include <cmath>

namespace mlir::attnedit::ascend {
#define GEN_PASS_DEF_ASCENDLOWERVECTORPASS
#include "attnedit/Ascend/Passes.h.inc"
} // namespace mlir::attnedit::ascend

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::ascend;

namespace {

struct Candidate {
  Operation *op;
  RowProblem problem;
  SmallVector<Value> inputs; // row inputs, then the weight
  Operation *fused = nullptr; // the silu folded into a silu·mul
};

bool staticF32(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && t.hasStaticShape() && t.getRank() >= 1 && t.getElementType().isF32() &&
         t.getNumElements() > 0;
}

std::optional<Candidate> match(Operation *op) {
  if (op->getNumResults() != 1 || !staticF32(op->getResult(0)))
    return std::nullopt;
  auto type = cast<RankedTensorType>(op->getResult(0).getType());
  Candidate c{op, {}, {}};
  c.problem.cols = type.getShape().back();
  c.problem.rows = type.getNumElements() / c.problem.cols;
  auto sameType = [&](Value v) { return v.getType() == type; };
  if (auto norm = dyn_cast<RmsNormOp>(op)) {
    auto w = cast<RankedTensorType>(norm.getWeight().getType());
    if (w.getRank() != 1 || w.getShape()[0] != c.problem.cols || !sameType(norm.getInput()))
      return std::nullopt;
    c.problem.op = RowOp::RmsNorm;
    c.problem.eps = norm.getEps().convertToDouble();
    c.inputs = {norm.getInput(), norm.getWeight()};
    return c;
  }
  if (auto rope = dyn_cast<RopeOp>(op)) {
    // Whole heads (rotate_half or interleaved pairs) without Llama-3
    // scaling; partial rotary needs a pass-through copy not built yet.
    auto in = cast<RankedTensorType>(rope.getInput().getType());
    auto pos = dyn_cast<RankedTensorType>(rope.getPositions().getType());
    if (in.getRank() != 3 || !pos || !pos.hasStaticShape() || rope.getLlama3Scaling() ||
        static_cast<int64_t>(rope.getRotaryDim()) != in.getShape()[2] || in.getShape()[2] % 2)
      return std::nullopt;
    c.problem.interleaved = rope.getStyle() == RopeStyle::Interleaved;
    c.problem.op = RowOp::Rope;
    c.problem.rows = in.getShape()[0];
    c.problem.heads = in.getShape()[1];
    c.problem.cols = in.getShape()[1] * in.getShape()[2];
    c.problem.inverse = rope.getInverse();
    c.problem.theta = rope.getTheta().convertToDouble();
    c.inputs = {rope.getInput(), rope.getPositions()};
    return c;
  }
  if (auto soft = dyn_cast<SoftmaxOp>(op)) {
    if (soft.getSinks() || static_cast<int64_t>(soft.getAxis()) != type.getRank() - 1)
      return std::nullopt;
    c.problem.op = RowOp::Softmax;
    c.inputs = {soft.getInput()};
    return c;
  }
  if (auto grad = dyn_cast<SoftmaxGradOp>(op)) {
    if (static_cast<int64_t>(grad.getAxis()) != type.getRank() - 1 ||
        !sameType(grad.getOutput()) || !sameType(grad.getGrad()))
      return std::nullopt;
    c.problem.op = RowOp::SoftmaxGrad;
    c.inputs = {grad.getOutput(), grad.getGrad()};
    return c;
  }
  if (auto grad = dyn_cast<RmsNormGradOp>(op)) {
    auto w = cast<RankedTensorType>(grad.getWeight().getType());
    if (w.getRank() != 1 || w.getShape()[0] != c.problem.cols || !sameType(grad.getInput()) ||
        !sameType(grad.getGrad()))
      return std::nullopt;
    c.problem.op = RowOp::RmsNormGrad;
    c.problem.eps = grad.getEps().convertToDouble();
    c.inputs = {grad.getInput(), grad.getGrad(), grad.getWeight()};
    return c;
  }
  // Element-wise ops may split a long row: [rows, cols] is viewed as
  // [rows·cols/w, w] with w the largest divisor of cols up to 4096 values
  // (16 KB of f32, research §9.2's transfer size), so wide MLP rows fit UB.
  auto splitRows = [&] {
    int64_t w = c.problem.cols;
    for (int64_t d = std::min<int64_t>(w, 4096); d >= 1 && w > 4096; --d)
      if (c.problem.cols % d == 0) {
        w = d;
        break;
      }
    c.problem.rows = c.problem.rows * c.problem.cols / w;
    c.problem.cols = w;
  };
  if (auto silu = dyn_cast<SiluOp>(op)) {
    if (!sameType(silu.getInput()))
      return std::nullopt;
    splitRows();
    c.problem.op = RowOp::Silu;
    c.inputs = {silu.getInput()};
    return c;
  }
  if (isa<SigmoidOp, SiluGradOp, SigmoidGradOp>(op)) {
    if (!llvm::all_of(op->getOperands(), sameType))
      return std::nullopt;
    splitRows();
    c.problem.op = isa<SigmoidOp>(op)    ? RowOp::Sigmoid
                   : isa<SiluGradOp>(op) ? RowOp::SiluGrad
                                         : RowOp::SigmoidGrad;
    c.inputs = llvm::to_vector(op->getOperands());
    return c;
  }
  if (isa<AddOp, MulOp>(op)) {
    splitRows();
    Value l = op->getOperand(0), r = op->getOperand(1);
    if (!sameType(l) || !sameType(r))
      return std::nullopt;
    if (isa<MulOp>(op))
      for (auto [g, u] : {std::pair(l, r), std::pair(r, l)})
        if (auto silu = g.getDefiningOp<SiluOp>(); silu && g.hasOneUse() && sameType(silu.getInput())) {
          c.problem.op = RowOp::SiluMul;
          c.inputs = {silu.getInput(), u};
          c.fused = silu;
          return c;
        }
    c.problem.op = isa<AddOp>(op) ? RowOp::Add : RowOp::Mul;
    c.inputs = {l, r};
    return c;
  }
  return std::nullopt;
}

struct AscendLowerVectorPass
    : mlir::attnedit::ascend::impl::AscendLowerVectorPassBase<AscendLowerVectorPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    std::shared_ptr<const TargetDescription> loaded =
        loadTargetOption(module, "attnedit-ascend-lower-vector", target);
    if (!loaded)
      return signalPassFailure();
    const TargetDescription &t = *loaded;
    SmallVector<Operation *> ops;
    module.walk([&](Operation *op) {
      if (isa<RmsNormOp, SoftmaxOp, SiluOp, AddOp, MulOp, RopeOp, SigmoidOp, SiluGradOp,
              SigmoidGradOp, SoftmaxGradOp, RmsNormGradOp>(op) &&
          !op->getParentOfType<KernelOp>())
        ops.push_back(op);
    });
    // Fused silu·mul first, so its silu is not lowered on its own.
    llvm::SmallPtrSet<Operation *, 8> fused;
    SmallVector<Operation *> work;
    for (Operation *op : ops)
      if (std::optional<Candidate> c = match(op); c && c->fused) {
        fused.insert(c->fused);
        work.push_back(op);
      }
    for (Operation *op : ops)
      if (!fused.count(op) && !llvm::is_contained(work, op))
        work.push_back(op);

    SymbolTable symbols(module);
    int64_t counter = 0;
    for (Operation *op : work) {
      // Matched again now: earlier rewrites replaced some operands.
      std::optional<Candidate> matched = match(op);
      if (!matched)
        continue;
      Candidate &c = *matched;
      int64_t r = rowsPerTile(c.problem, t);
      // A softmax row too long for UB goes through in column chunks.
      for (int64_t w = std::min<int64_t>(c.problem.cols, 4096);
           r < 1 && c.problem.op == RowOp::Softmax && w >= 8; --w)
        if (c.problem.cols % w == 0) {
          c.problem.chunk = w;
          r = rowsPerTile(c.problem, t);
        }
      if (r < 1) {
        c.op->emitWarning() << "a row of " << c.problem.cols << " values does not fit the "
                            << t.name << "'s UB; left for another backend";
        continue;
      }
      OpBuilder builder(module.getBodyRegion());
      builder.setInsertionPointToEnd(module.getBody());
      std::string name = freshKernelName(symbols, (rowOpName(c.problem.op) + "_").str(), counter);
      KernelOp kernel = buildRowKernel(builder, c.op->getLoc(), name, c.problem, r, t);
      symbols.insert(kernel);

      builder.setInsertionPoint(c.op);
      Location loc = c.op->getLoc();
      auto args = kernel.getTensorArgs();
      SmallVector<Value> inputs = c.inputs;
      if (c.problem.op == RowOp::Rope) {
        // The inverse frequencies theta^(-2i/d) as a constant input; the
        // launch converts the i32 positions to the kernel's f32 column.
        // Interleaved: the signed frequencies [-f0, f0, ...] and the
        // pair-swap index row [1, 0, 3, 2, ...] (VectorKernel.h).
        int64_t d = c.problem.cols / c.problem.heads;
        SmallVector<float> inv, index;
        for (int64_t i = 0; i < d / 2; ++i) {
          auto f = static_cast<float>(std::pow(c.problem.theta, -2.0 * i / d));
          if (!c.problem.interleaved) {
            inv.push_back(f);
            continue;
          }
          inv.append({-f, f});
          index.append({float(2 * i + 1), float(2 * i)});
        }
        for (ArrayRef<float> row : {ArrayRef<float>(inv), ArrayRef<float>(index)}) {
          if (row.empty())
            continue;
          auto type = RankedTensorType::get({1, (int64_t)row.size()}, builder.getF32Type());
          inputs.push_back(builder.create<arith::ConstantOp>(
              loc, type, DenseElementsAttr::get(type, row)));
        }
      }
      SmallVector<Value> launchArgs;
      for (auto [k, v] : llvm::enumerate(inputs)) {
        auto want = cast<BufType>(args[k].getType());
        auto have = cast<RankedTensorType>(v.getType());
        // Same shape, or non-f32 (positions): the launch views it row-major.
        launchArgs.push_back(have.getShape() == want.getShape() || !have.getElementType().isF32()
                                 ? v
                                 : builder.create<ReshapeOp>(loc, RankedTensorType::get(want.getShape(), have.getElementType()), v)
                                       .getResult());
      }
      auto resultType = cast<RankedTensorType>(c.op->getResult(0).getType());
      auto flat = RankedTensorType::get({c.problem.rows, c.problem.cols}, resultType.getElementType());
      Value y = builder.create<LaunchOp>(loc, TypeRange{flat}, kernel.getSymName(), launchArgs)
                    .getResult(0);
      if (flat != resultType)
        y = builder.create<ReshapeOp>(loc, resultType, y);
      c.op->getResult(0).replaceAllUsesWith(y);
      c.op->erase();
      if (c.fused)
        c.fused->erase();
    }
  }
};

} // namespace
