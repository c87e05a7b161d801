//===- ConvertAttention.cpp - raise + edit as one pass ---------------------===//
//
// --attnedit-convert: the conversion a user of an imported model wants, with
// the ordering (raise before edit) built in.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Passes/Passes.h"

#include "mlir/Pass/PassManager.h"

namespace mlir::attnedit {
#define GEN_PASS_DEF_CONVERTATTENTIONPASS
#include "attnedit/Passes/Passes.h.inc"
} // namespace mlir::attnedit

using namespace mlir;
using namespace mlir::attnedit;

namespace {

struct ConvertAttentionPass
    : attnedit::impl::ConvertAttentionPassBase<ConvertAttentionPass> {
  using Base::Base;
  friend llvm::StringRef attnedit::optionForOtherTarget<>(ConvertAttentionPass &);

  void runOnOperation() override {
    // The edit pass below gets values, not which of them the user gave.
    if (llvm::StringRef other = optionForOtherTarget(*this); !other.empty()) {
      getOperation().emitError() << "attnedit-convert: " << other
                                 << " is not an option of target=" << target;
      return signalPassFailure();
    }
    std::vector<int64_t> layerList(layers.begin(), layers.end());
    std::vector<int64_t> fullList(fullLayers.begin(), fullLayers.end());
    EditAttentionPassOptions edit;
    edit.target = target;
    edit.layers = layerList;
    edit.paramsOut = paramsOut;
    edit.seed = seed;
    edit.plan = plan;
    edit.kvLoraRank = kvLoraRank;
    edit.qLoraRank = qLoraRank;
    edit.qkRopeHeadDim = qkRopeHeadDim;
    edit.ropeStride = ropeStride;
    edit.qkNopeHeadDim = qkNopeHeadDim;
    edit.vHeadDim = vHeadDim;
    edit.init = init;
    edit.activations = activations;
    edit.window = window;
    edit.fullLayers = fullList;
    edit.fullEvery = fullEvery;
    edit.gate = gate;
    edit.sinks = sinks;
    edit.sinkLogitsFile = sinkLogitsFile;
    OpPassManager pm(ModuleOp::getOperationName());
    pm.addPass(createRaiseAttentionPass());
    pm.addPass(createEditAttentionPass(edit));
    if (failed(runPipeline(pm, getOperation())))
      signalPassFailure();
  }
};

} // namespace
