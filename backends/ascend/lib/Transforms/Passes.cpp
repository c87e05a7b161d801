//===- Passes.cpp - Ascend pass registration and pipeline -----------------===//

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/Passes.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {
struct PipelineOptions : public PassPipelineOptions<PipelineOptions> {
  Option<std::string> target{*this, "target",
                             llvm::cl::desc("target description (910b, 910a or a .json file)"),
                             llvm::cl::init("910b")};
  Option<std::string> dtype{*this, "dtype", llvm::cl::desc("GM element type: f16 or bf16"),
                            llvm::cl::init("bf16")};
  Option<int64_t> tokens{*this, "tokens",
                         llvm::cl::desc("first give every dynamic size this token count "
                                        "(--attnedit-static-tokens): kernels take fixed shapes"),
                         llvm::cl::init(0)};
  Option<std::string> report{
      *this, "report", llvm::cl::desc("cost-model report JSON file to write"), llvm::cl::init("")};
  Option<std::string> trace{*this, "trace", llvm::cl::desc("Chrome trace JSON file to write"),
                            llvm::cl::init("")};
  Option<std::string> tiling{*this, "tcube-tiling",
                             llvm::cl::desc("TCubeTiling JSON file to write"), llvm::cl::init("")};
  Option<std::string> ascendc{
      *this, "ascendc", llvm::cl::desc("Ascend C-like source file to write"), llvm::cl::init("")};
  Option<std::string> schedule{
      *this, "schedule",
      llvm::cl::desc("flatbuffer schedule file to write (runtime/schema/ascend_schedule.fbs)"),
      llvm::cl::init("")};
  Option<bool> fuseAttention{*this, "fuse-attention",
                             llvm::cl::desc("attention chains as flash-attention mix kernels "
                                            "(on targets with separated AI cores)"),
                             llvm::cl::init(true)};
  Option<bool> fuseSharedInput{*this, "fuse-shared-input",
                               llvm::cl::desc("linears reading the same input as one Cube kernel"),
                               llvm::cl::init(true)};
  Option<bool> sensitivity{*this, "sensitivity",
                           llvm::cl::desc("report each [E] number's effect at 0.5x and 1.5x"),
                           llvm::cl::init(false)};
};
} // namespace

void mlir::attnedit::ascend::registerAscendPassesAndPipelines() {
  registerAttnEditAscendPasses();
  PassPipelineRegistration<PipelineOptions>(
      "attnedit-ascend-pipeline",
      "Lower attnedit GEMMs to Cube kernels and row-wise ops to Vector kernels, and time them",
      [](OpPassManager &pm, const PipelineOptions &o) {
        if (o.tokens.getNumOccurrences())
          pm.addPass(createStaticTokensPass({o.tokens}));
        // The lowerings match primitives: an edited model's attnedit.mla or
        // gate_swa (or a raised attention) stayed whole on the host, unreported.
        pm.addPass(createDecomposePass());
        // Attention chains first, before their matmuls and softmax are
        // taken one by one. Tile sizes are searched with the cost model
        // under the target's buffer capacities; the kernels' verifiers then
        // re-check them.
        if (o.fuseAttention)
          pm.addPass(createAscendLowerAttentionPass({o.target, o.dtype}));
        pm.addPass(createAscendLowerMatmulPass({o.target, o.dtype, "", o.fuseSharedInput}));
        // Row-wise ops after the GEMMs: a silu·mul then sees its launches' results.
        pm.addPass(createAscendLowerVectorPass({o.target}));
        // Folds the index math the builder spells out (x*1, constants per loop).
        pm.addNestedPass<KernelOp>(createCanonicalizerPass());
        pm.addNestedPass<KernelOp>(createCSEPass());
        pm.addPass(createAscendEstimatePass({o.report, o.trace, o.tiling, o.sensitivity}));
        if (!o.ascendc.empty())
          pm.addPass(createAscendEmitAscendCPass({o.ascendc}));
        if (!o.schedule.empty())
          pm.addPass(createAscendExportSchedulePass({o.schedule}));
      });
}
