//===- ParallelLoops.cpp - outer parallel loops on every core --------------===//
//
// OpenMP (LLVM's libomp, which also serves the GOMP entry points OpenBLAS
// and our GCC-compiled kernels call, so one pool of workers runs them all)
// rather than a thread pool of our own. The ops are built here rather than
// through scf.parallel and convert-scf-to-openmp: that conversion has no
// condition, and every small loop of a decode step would pay a fork.
//
//===----------------------------------------------------------------------===//

#include "attnedit/CPU/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::attnedit::cpu {
#define GEN_PASS_DEF_PARALLELLOOPSPASS
#include "attnedit/CPU/Passes.h.inc"
} // namespace mlir::attnedit::cpu

using namespace mlir;

namespace {

/// `outer` as an OpenMP worksharing loop in a parallel region when
/// `runParallel` holds, and as it is otherwise. A branch rather than the
/// region's `if` clause: a region not taken still calls into libomp
/// (serialized region, static-schedule init), and Debian's libomp formats
/// debug strings in its loop init -- 7% of a small model's decode step.
/// The loop's body is compiled twice for it.
void distribute(RewriterBase &rewriter, scf::ForOp outer, Value runParallel) {
  Location loc = outer.getLoc();
  rewriter.setInsertionPoint(outer);
  auto branch = rewriter.create<scf::IfOp>(loc, runParallel, /*withElseRegion=*/true);
  rewriter.setInsertionPoint(branch.elseBlock()->getTerminator());
  rewriter.clone(*outer);
  rewriter.setInsertionPoint(branch.thenBlock()->getTerminator());
  auto parallel = rewriter.create<omp::ParallelOp>(loc, omp::ParallelClauseOps{});
  rewriter.createBlock(&parallel.getRegion());
  auto wsloop = rewriter.create<omp::WsloopOp>(loc, omp::WsloopClauseOps{});
  rewriter.create<omp::TerminatorOp>(loc);
  rewriter.createBlock(&wsloop.getRegion());
  omp::LoopNestClauseOps nestClauses;
  nestClauses.loopLBVar = {outer.getLowerBound()};
  nestClauses.loopUBVar = {outer.getUpperBound()};
  nestClauses.loopStepVar = {outer.getStep()};
  auto nest = rewriter.create<omp::LoopNestOp>(loc, nestClauses);
  rewriter.create<omp::TerminatorOp>(loc);
  Block *body = rewriter.createBlock(&nest.getRegion(), {}, {rewriter.getIndexType()}, {loc});
  rewriter.mergeBlocks(outer.getBody(), body, body->getArguments());
  Operation *yield = body->getTerminator();
  rewriter.setInsertionPoint(yield);
  rewriter.replaceOpWithNewOp<omp::YieldOp>(yield, ValueRange());
  rewriter.eraseOp(outer);
}

struct ParallelLoopsPass : attnedit::cpu::impl::ParallelLoopsPassBase<ParallelLoopsPass> {
  using ParallelLoopsPassBase::ParallelLoopsPassBase;

  void runOnOperation() override {
    if (minWork < 0) {
      getOperation()->emitError() << "attnedit-cpu-parallel-loops: min-work must be 0 or more, "
                                     "got "
                                  << (int64_t)minWork;
      return signalPassFailure();
    }
    SmallVector<linalg::LinalgOp> ops;
    getOperation().walk([&](linalg::LinalgOp op) {
      if (op.hasPureBufferSemantics() && op.getNumLoops() > 0 &&
          op.getIteratorTypesArray().front() == utils::IteratorType::parallel)
        ops.push_back(op);
    });
    IRRewriter rewriter(&getContext());
    for (linalg::LinalgOp op : ops) {
      SmallVector<int64_t> ranges = op.getStaticLoopRanges();
      // Iterations per outer iteration; a dynamic inner range counts as
      // enough on its own (it is a sequence length or a vocabulary).
      int64_t inner = 1;
      bool dynamicInner = false;
      for (int64_t r : llvm::drop_begin(ranges)) {
        dynamicInner |= ShapedType::isDynamic(r);
        inner = ShapedType::isDynamic(r) ? inner : inner * r;
      }
      if (!ShapedType::isDynamic(ranges[0]) && !dynamicInner && ranges[0] * inner < minWork)
        continue;
      if (ranges[0] == 1)
        continue;
      rewriter.setInsertionPoint(op);
      FailureOr<linalg::LinalgLoops> loops = linalg::linalgOpToLoops(rewriter, op);
      if (failed(loops)) {
        op->emitError("attnedit-cpu-parallel-loops: cannot lower the op to loops");
        return signalPassFailure();
      }
      auto outer = cast<scf::ForOp>(loops->front());
      rewriter.setInsertionPoint(outer);
      Location loc = op.getLoc();
      // Loops from linalg start at 0 with step 1: the trip count is the bound.
      Value trips = outer.getUpperBound();
      Value runParallel =
          dynamicInner
              ? rewriter.create<arith::CmpIOp>(
                    loc, arith::CmpIPredicate::sge, trips,
                    rewriter.create<arith::ConstantIndexOp>(loc, 2))
              : rewriter.create<arith::CmpIOp>(
                    loc, arith::CmpIPredicate::sge,
                    rewriter.create<arith::MulIOp>(
                        loc, trips, rewriter.create<arith::ConstantIndexOp>(loc, inner)),
                    rewriter.create<arith::ConstantIndexOp>(loc, minWork));
      rewriter.eraseOp(op);
      distribute(rewriter, outer, runParallel);
    }
  }
};

} // namespace
