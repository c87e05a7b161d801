//===- Pipeline.cpp - attnedit to the LLVM dialect --------------------------===//
//
// The order follows ../shared/research/cpu-codegen.md §1 (verified on
// Debian's MLIR 19): linalg on tensors, one-shot bufferization with identity
// layouts at function boundaries (torch-mlir's refbackend choice), ownership
// based deallocation, library calls, loops, then upstream's
// test-lower-to-llvm sequence rebuilt here (it is a test pipeline, absent
// from libMLIR).
//
//===----------------------------------------------------------------------===//

#include "attnedit/CPU/Passes.h"
#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Arith/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/Arith/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/FuncBufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/ControlFlow/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/ControlFlow/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/Linalg/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/AllocationOpInterfaceImpl.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/OpenMP/OpenMPDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/SCF/Transforms/BufferDeallocationOpInterfaceImpl.h"
#include "mlir/Dialect/SCF/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/BufferizableOpInterfaceImpl.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/OpenMP/OpenMPToLLVMIRTranslation.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::attnedit;

std::string cpu::toLinalgPipelineText(const PipelineOptions &options) {
  return "attnedit-decompose,"
         "attnedit-cpu-convert-to-linalg{gemm=" + options.gemm + "},"
         "canonicalize,cse,"
         "func.func(attnedit-cpu-fuse-elementwise),"
         "canonicalize,cse,"
         // After the last tensor canonicalization, which propagates the
         // sizes a check compares into the ops before it.
         "func.func(attnedit-cpu-hoist-size-checks)";
}

std::string cpu::toLLVMPipelineText(const PipelineOptions &options) {
  return
      // Each destination filled in place rather than copied from one fill.
      "func.func(attnedit-cpu-unshare-fills),"
      // Identity layouts at the boundary: the runtime passes dense row-major
      // buffers and gets dense results back.
      "one-shot-bufferize{bufferize-function-boundaries allow-return-allocs-from-loops "
      "function-boundary-type-conversion=identity-layout-map}," +
      std::string(options.resultsAsArguments
                      // A result computed into a fresh buffer is computed
                      // into the caller's instead.
                      ? "buffer-results-to-out-params{hoist-static-allocs=true},"
                      : "") +
      // Intermediates become views of one arena the caller passes.
      "attnedit-cpu-plan-arena,"
      "buffer-deallocation-pipeline,"
      "convert-bufferization-to-memref,"
      // Copies into slices as loops, not element-by-element memrefCopy.
      "func.func(attnedit-cpu-strided-copies),"
      // GEMM generics carrying library_call become calls of the BLAS shim.
      "attnedit-cpu-library-calls,"
      // Many small functions for LLVM instead of one of thousands of loops.
      "attnedit-cpu-outline-loops,"
      // Outer parallel loops of large ops on every core.
      "func.func(attnedit-cpu-parallel-loops),"
      "func.func(convert-linalg-to-loops),"
      "lower-affine,convert-scf-to-cf,canonicalize,cse,"
      "expand-strided-metadata,lower-affine,"
      "finalize-memref-to-llvm,"
      "func.func(convert-math-to-llvm),"
      "convert-arith-to-llvm,convert-index-to-llvm,convert-cf-to-llvm,"
      "convert-func-to-llvm,"
      "convert-openmp-to-llvm,"
      "reconcile-unrealized-casts";
}

std::string cpu::pipelineText(const PipelineOptions &options) {
  return toLinalgPipelineText(options) + "," + toLLVMPipelineText(options);
}

namespace {
struct PipelineCLOptions : public PassPipelineOptions<PipelineCLOptions> {
  Option<std::string> gemm{*this, "gemm",
                           llvm::cl::desc("GEMMs: blas (library call) or loops (generated)"),
                           llvm::cl::init("blas")};
  Option<bool> resultsAsArguments{
      *this, "results-as-arguments",
      llvm::cl::desc("results become caller-allocated arguments (static shapes only)"),
      llvm::cl::init(false)};
};
} // namespace

void cpu::registerCPUPasses() {
  registerConvertToLinalgPass();
  registerFuseElementwisePass();
  registerHoistSizeChecksPass();
  registerLibraryCallsPass();
  registerOutlineLoopsPass();
  registerParallelLoopsPass();
  registerPlanArenaPass();
  registerStridedCopiesPass();
  registerUnshareFillsPass();
  registerTransformsPasses();
  registerLinalgPasses();
  bufferization::registerBufferizationPasses();
  bufferization::registerBufferizationPipelines();
  memref::registerMemRefPasses();
  registerConversionPasses();
  PassPipelineRegistration<PipelineCLOptions>(
      "attnedit-cpu-pipeline",
      "attnedit (composites allowed) to the LLVM dialect, ready for the JIT",
      [](OpPassManager &pm, const PipelineCLOptions &cl) {
        PipelineOptions options;
        options.gemm = cl.gemm;
        options.resultsAsArguments = cl.resultsAsArguments;
        if (failed(parsePassPipeline(pipelineText(options), pm)))
          llvm::report_fatal_error("attnedit-cpu-pipeline: bad pipeline text");
      });
}

void cpu::registerCPUDialects(DialectRegistry &registry) {
  registry.insert<AttnEditDialect, arith::ArithDialect, bufferization::BufferizationDialect,
                  cf::ControlFlowDialect, func::FuncDialect, LLVM::LLVMDialect,
                  linalg::LinalgDialect, math::MathDialect, memref::MemRefDialect,
                  omp::OpenMPDialect,
                  scf::SCFDialect, tensor::TensorDialect>();
  arith::registerBufferizableOpInterfaceExternalModels(registry);
  arith::registerBufferDeallocationOpInterfaceExternalModels(registry);
  bufferization::func_ext::registerBufferizableOpInterfaceExternalModels(registry);
  cf::registerBufferizableOpInterfaceExternalModels(registry);
  cf::registerBufferDeallocationOpInterfaceExternalModels(registry);
  linalg::registerBufferizableOpInterfaceExternalModels(registry);
  memref::registerAllocationOpInterfaceExternalModels(registry);
  scf::registerBufferizableOpInterfaceExternalModels(registry);
  scf::registerBufferDeallocationOpInterfaceExternalModels(registry);
  tensor::registerBufferizableOpInterfaceExternalModels(registry);
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  registerOpenMPDialectTranslation(registry);
}
