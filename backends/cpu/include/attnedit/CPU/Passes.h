//===- Passes.h - CPU backend passes and pipeline ---------------*- C++ -*-===//
#ifndef ATTNEDIT_CPU_PASSES_H
#define ATTNEDIT_CPU_PASSES_H

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

#include <string>

namespace mlir::attnedit::cpu {

#define GEN_PASS_DECL
#define GEN_PASS_REGISTRATION
#include "attnedit/CPU/Passes.h.inc"

struct PipelineOptions {
  /// "blas": GEMMs call the BLAS shim; "loops": generated loops.
  std::string gemm = "blas";
  /// Results become arguments the caller allocates (every result must have
  /// a static shape): the caller keeps them from call to call.
  bool resultsAsArguments = false;
};

/// The textual pass pipeline from attnedit (composites allowed) to the LLVM
/// dialect; `attnedit-opt --attnedit-cpu-pipeline` runs the same.
std::string pipelineText(const PipelineOptions &options = {});
/// The prefix of pipelineText() that ends at linalg on tensors.
std::string toLinalgPipelineText(const PipelineOptions &options = {});
/// The rest: bufferization, loops, LLVM.
std::string toLLVMPipelineText(const PipelineOptions &options = {});

/// Registers the pass, `attnedit-cpu-pipeline`, and the upstream passes the
/// pipeline text names.
void registerCPUPasses();

/// Dialects and external models (bufferization, LLVM translation) the
/// pipeline and the JIT need.
void registerCPUDialects(DialectRegistry &registry);

} // namespace mlir::attnedit::cpu

#endif // ATTNEDIT_CPU_PASSES_H
