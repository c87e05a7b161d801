//===- LowerCache.cpp - the paged KV-cache ops to library calls -----------===//
//
// `cache_write` and `paged_attention` become opaque library-call generics
// (CacheLibrary.cpp implements them). A cache_write's pool is its
// generic's output, so one-shot bufferization writes the rows straight into
// the pool argument's buffer, which donateCachePools made writable: the
// runtime's cache memory is updated in place, as the op's contract says.
// Returning that pool would make the deallocation pipeline clone it on
// every step (the result must own its buffer), so the result is dropped and
// the executor hands back the argument instead.
//
//===----------------------------------------------------------------------===//

#include "Lowering.h"

using namespace mlir;
using namespace mlir::attnedit;
using namespace mlir::attnedit::cpu::detail;

FailureOr<Value> Lowering::lower(attnedit::CacheWriteOp op) {
  Value params = paramsConstant(b, loc, {(float)op.getBlockSize(), op.getRing() ? 1.0f : 0.0f});
  return libraryCall(b, loc, "attnedit_cpu_cache_write",
                     {op.getRows(), op.getBlockTable(), op.getPositions(), params},
                     {op.getPool()})[0];
}

FailureOr<Value> Lowering::lower(attnedit::PagedAttentionOp op) {
  Value params = paramsConstant(
      b, loc,
      {(float)op.getScale().convertToDouble(), (float)op.getWindow(), (float)op.getBlockSize(),
       op.getRing() ? 1.0f : 0.0f, (float)op.getNumKvHeads(), (float)op.getVHeadDim()});
  SmallVector<Value> inputs{op.getQuery(), op.getKPool(), op.getVPool(), op.getBlockTable(),
                            op.getPositions()};
  if (op.getSinks())
    inputs.push_back(op.getSinks());
  inputs.push_back(params);
  RankedTensorType type = tensorType(op.getResult());
  SmallVector<Value> sizes;
  if (type.isDynamicDim(0))
    sizes.push_back(dimOf(b, loc, op.getQuery(), 0));
  return libraryCall(b, loc,
                     op.getSinks() ? "attnedit_cpu_paged_attention_sinks"
                                   : "attnedit_cpu_paged_attention",
                     inputs, {empty(b, loc, type, sizes)})[0];
}

void cpu::detail::donateCachePools(func::FuncOp func) {
  MLIRContext *ctx = func.getContext();
  func.walk([&](attnedit::CacheWriteOp write) {
    if (auto arg = dyn_cast<BlockArgument>(write.getPool()))
      if (arg.getOwner()->isEntryBlock() && arg.getOwner()->getParentOp() == func)
        func.setArgAttr(arg.getArgNumber(), bufferization::BufferizationDialect::kWritableAttrName,
                        BoolAttr::get(ctx, true));
  });
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  SmallVector<int64_t> donated;
  llvm::BitVector dropped(ret.getNumOperands());
  for (OpOperand &result : ret->getOpOperands()) {
    Value v = result.get();
    bool written = false;
    while (auto write = v.getDefiningOp<attnedit::CacheWriteOp>()) {
      v = write.getPool();
      written = true;
    }
    auto arg = dyn_cast<BlockArgument>(v);
    bool isArg = arg && arg.getOwner() == &func.getBody().front() &&
                 (written || func.getArgAttr(arg.getArgNumber(), "attnedit.kv_cache"));
    donated.push_back(isArg ? (int64_t)arg.getArgNumber() : -1);
    if (isArg)
      dropped.set(result.getOperandNumber());
  }
  if (dropped.none())
    return;
  ret->eraseOperands(dropped);
  func.eraseResults(dropped);
  func->setAttr("attnedit.donated_results", DenseI64ArrayAttr::get(ctx, donated));
}
