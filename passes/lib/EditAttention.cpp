// In progress.
#include "attnedit/Passes/Passes.h"
#include "attnedit/IR/AttnEditOps.h"
namespace mlir::attnedit {
#define GEN_PASS_DEF_EDITATTENTIONPASS
#include "attnedit/Passes/Passes.h.inc"
namespace {
struct EditAttentionPass : impl::EditAttentionPassBase<EditAttentionPass> {
  using Base::Base;
  void runOnOperation() override { signalPassFailure(); }
};
} // namespace
} // namespace mlir::attnedit
