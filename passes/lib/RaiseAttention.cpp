// In progress.
#include "attnedit/Passes/Passes.h"
#include "attnedit/IR/AttnEditOps.h"
namespace mlir::attnedit {
#define GEN_PASS_DEF_RAISEATTENTIONPASS
#include "attnedit/Passes/Passes.h.inc"
namespace {
struct RaiseAttentionPass : impl::RaiseAttentionPassBase<RaiseAttentionPass> {
  using Base::Base;
  void runOnOperation() override { signalPassFailure(); }
};
} // namespace
} // namespace mlir::attnedit
