//===- FuseElementwise.cpp - elementwise fusion that leaves GEMMs alone ----===//

#include "attnedit/CPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::attnedit::cpu {
#define GEN_PASS_DEF_FUSEELEMENTWISEPASS
#include "attnedit/CPU/Passes.h.inc"
} // namespace mlir::attnedit::cpu

using namespace mlir;

namespace {

bool isLibraryCall(Operation *op) {
  auto generic = dyn_cast_or_null<linalg::GenericOp>(op);
  return generic && generic.getLibraryCallAttr();
}

/// Whether `v` is a linalg.fill of +0.
bool isZeroFill(Value v) {
  auto fill = v.getDefiningOp<linalg::FillOp>();
  return fill && matchPattern(fill.getInputs().front(), m_PosZeroFloat());
}

/// Whether `op` yields the sum of its inputs, each added once, its init unread.
bool sumsItsInputs(linalg::GenericOp op) {
  Block &body = op.getRegion().front();
  SmallVector<Value> pending{body.getTerminator()->getOperand(0)};
  llvm::SmallPtrSet<Value, 4> leaves;
  while (!pending.empty()) {
    Value v = pending.pop_back_val();
    if (auto add = v.getDefiningOp<arith::AddFOp>()) {
      pending.append({add.getLhs(), add.getRhs()});
      continue;
    }
    auto arg = dyn_cast<BlockArgument>(v);
    if (!arg || arg.getArgNumber() >= op.getNumDpsInputs() || !leaves.insert(v).second)
      return false;
  }
  return (int64_t)leaves.size() == op.getNumDpsInputs() &&
         (int64_t)body.getOperations().size() == op.getNumDpsInputs();
}

/// The sum of zero tensors each with one slice set, where the slices are
/// disjoint and cover the whole, is those slices put together: autodiff
/// writes it for the gradient of a concatenation (MLA's [q_nope; q_pe],
/// [k_nope; v], [c_kv; k_pe]), each slice's gradient padded with zeros.
/// Three fills and an add of the full tensor become the slices' copies; a
/// slice read from a tensor of the result's shape at its own place (the
/// part of a gradient that passes through unchanged) becomes the base the
/// others are inserted into, so it need not be copied at all.
struct ConcatDisjointSlices : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(linalg::GenericOp op, PatternRewriter &rewriter) const override {
    if (op.getNumDpsInputs() < 2 || op.getNumResults() != 1 || !op.hasPureTensorSemantics() ||
        !llvm::all_of(op.getIndexingMapsArray(), [](AffineMap m) { return m.isIdentity(); }) ||
        !sumsItsInputs(op))
      return failure();
    auto type = cast<RankedTensorType>(op.getResult(0).getType());
    if (!type.hasStaticShape())
      return failure();
    SmallVector<tensor::InsertSliceOp> slices;
    int64_t covered = 0;
    for (Value in : op.getDpsInputs()) {
      auto slice = in.getDefiningOp<tensor::InsertSliceOp>();
      if (!slice || !slice.hasUnitStride() || !isZeroFill(slice.getDest()) ||
          slice.getDestType() != type || !slice.getSourceType().hasStaticShape() ||
          ShapedType::isDynamicShape(slice.getStaticOffsets()))
        return failure();
      covered += slice.getSourceType().getNumElements();
      slices.push_back(slice);
    }
    auto overlap = [](tensor::InsertSliceOp a, tensor::InsertSliceOp b) {
      for (auto [oa, sa, ob, sb] : llvm::zip(a.getStaticOffsets(), a.getStaticSizes(),
                                             b.getStaticOffsets(), b.getStaticSizes()))
        if (oa + sa <= ob || ob + sb <= oa)
          return false;
      return true;
    };
    for (size_t i = 0; i < slices.size(); ++i)
      for (size_t j = i + 1; j < slices.size(); ++j)
        if (overlap(slices[i], slices[j]))
          return failure();
    // Disjoint, so covering the whole iff their sizes add up to it.
    if (covered != type.getNumElements())
      return failure();
    Value base;
    auto inPlace = llvm::find_if(slices, [&](tensor::InsertSliceOp s) {
      auto read = s.getSource().getDefiningOp<tensor::ExtractSliceOp>();
      return read && read.getSourceType() == type && read.hasUnitStride() &&
             read.getStaticOffsets() == s.getStaticOffsets() &&
             read.getStaticSizes() == s.getStaticSizes();
    });
    if (inPlace != slices.end()) {
      base = inPlace->getSource().getDefiningOp<tensor::ExtractSliceOp>().getSource();
      slices.erase(inPlace);
    } else {
      base = rewriter.create<tensor::EmptyOp>(op.getLoc(), type.getShape(), type.getElementType());
    }
    for (tensor::InsertSliceOp s : slices)
      base = rewriter.create<tensor::InsertSliceOp>(op.getLoc(), s.getSource(), base,
                                                    s.getMixedOffsets(), s.getMixedSizes(),
                                                    s.getMixedStrides());
    rewriter.replaceOp(op, base);
    return success();
  }
};

/// A slice of X put back at its own place in an empty tensor of X's type is
/// X itself: the rest of the empty tensor is undefined, so X's values there
/// are as good (the concatenations the slices go on to fill then write
/// into X). MLA's query, [q_nope; rope(q_pe)], copied q_nope out of the
/// projection's result into a fresh buffer; now only q_pe's part is written.
struct ReinsertedSlice : OpRewritePattern<tensor::InsertSliceOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(tensor::InsertSliceOp op, PatternRewriter &rewriter) const override {
    auto read = op.getSource().getDefiningOp<tensor::ExtractSliceOp>();
    if (!read || !op.getDest().getDefiningOp<tensor::EmptyOp>() ||
        !tensor::CastOp::areCastCompatible(read.getSourceType(), op.getDestType()) ||
        read.getMixedOffsets() != op.getMixedOffsets() ||
        read.getMixedSizes() != op.getMixedSizes() ||
        read.getMixedStrides() != op.getMixedStrides())
      return failure();
    // Its sizes may be known where X's are not (a batch's rows).
    rewriter.replaceOpWithNewOp<tensor::CastOp>(op, op.getDestType(), read.getSource());
    return success();
  }
};

struct FuseElementwisePass
    : attnedit::cpu::impl::FuseElementwisePassBase<FuseElementwisePass> {
  void runOnOperation() override {
    MLIRContext *ctx = &getContext();
    RewritePatternSet patterns(ctx);
    linalg::ControlFusionFn control = [](OpOperand *fused) {
      Operation *producer = fused->get().getDefiningOp();
      Operation *consumer = fused->getOwner();
      // Fusing into a producer used elsewhere would recompute it per use.
      return !isLibraryCall(producer) && !isLibraryCall(consumer) &&
             producer->hasOneUse();
    };
    linalg::populateElementwiseOpsFusionPatterns(patterns, control);
    patterns.add<ConcatDisjointSlices, ReinsertedSlice>(ctx);
    linalg::populateEraseUnusedOperandsAndResultsPatterns(patterns);
    if (failed(applyPatternsAndFoldGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
