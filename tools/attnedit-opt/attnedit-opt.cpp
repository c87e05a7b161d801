//===- attnedit-opt.cpp - attnedit optimizer driver ------------------------===//
//
// Registers only the dialects attnedit modules use: InitAllDialects.h would
// cost a minute of build per translation unit.
//
//===----------------------------------------------------------------------===//

#include "ToolVersion.h"
#include "attnedit/Ascend/AscendDialect.h"
#include "attnedit/Ascend/Passes.h"
#include "attnedit/CPU/Passes.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MemoryBuffer.h"

#include <string>
#include <vector>

namespace {
/// A module names its weights and tokenizer relative to its own file, and
/// the printed output has no location to say where it came from: written
/// in another folder, relative names would read other files or none.
struct AnchorModulePaths : mlir::PassWrapper<AnchorModulePaths, mlir::OperationPass<>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(AnchorModulePaths)
  void runOnOperation() override { mlir::attnedit::anchorModulePaths(getOperation()); }
};
} // namespace

/// mlir-opt's main, with the module's paths anchored before the pipeline.
static mlir::LogicalResult optMain(int argc, char **argv, mlir::DialectRegistry &registry) {
  auto [inputFilename, outputFilename] =
      mlir::registerAndParseCLIOptions(argc, argv, "attnedit optimizer driver\n", registry);
  mlir::MlirOptMainConfig config = mlir::MlirOptMainConfig::createFromCLOptions();
  if (config.shouldShowDialects()) {
    llvm::outs() << "Available Dialects: ";
    llvm::interleaveComma(registry.getDialectNames(), llvm::outs());
    llvm::outs() << "\n";
    return mlir::success();
  }
  mlir::MlirOptMainConfig given = config;
  config.setPassPipelineSetupFn([given](mlir::PassManager &pm) {
    pm.addPass(std::make_unique<AnchorModulePaths>());
    return given.setupPassPipeline(pm);
  });
  // Read whole, not mapped, and written whole through a temporary: `-o` may be the input
  // (mlir-opt truncated a mapped input under itself: SIGBUS, and the file was gone), and a
  // failed pipeline leaves the old output.
  auto input = mlir::attnedit::readInputFile(inputFilename == "-" ? "/dev/stdin" : inputFilename,
                                             /*isText=*/false, /*requiresNullTerminator=*/true,
                                             /*isVolatile=*/true);
  if (!input) {
    llvm::errs() << "attnedit-opt: error: " << inputFilename << ": cannot read: "
                 << input.getError().message() << "\n";
    return mlir::failure();
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  if (mlir::failed(mlir::MlirOptMain(os, std::move(*input), registry, config)))
    return mlir::failure();
  if (outputFilename == "-") {
    llvm::outs() << text;
    return mlir::success();
  }
  if (llvm::Error e = mlir::attnedit::writeFileAtomically(outputFilename, text)) {
    llvm::errs() << "attnedit-opt: error: " << llvm::toString(std::move(e)) << "\n";
    return mlir::failure();
  }
  return mlir::success();
}

int main(int argc, char **argv) {
  // A pass error names its op and location; MLIR's default of dumping the
  // op too prints the whole module for module-level errors. The dump stays
  // one flag away: --mlir-print-op-on-diagnostic.
  std::vector<char *> args(argv, argv + argc);
  std::string quiet = "--mlir-print-op-on-diagnostic=false";
  if (llvm::none_of(args, [](llvm::StringRef a) {
        return a.contains("mlir-print-op-on-diagnostic");
      }))
    args.insert(args.begin() + 1, quiet.data());
  argc = args.size();
  argv = args.data();
  mlir::registerTransformsPasses();
  mlir::attnedit::registerAttnEditPasses();
  mlir::attnedit::cpu::registerCPUPasses();
  mlir::attnedit::ascend::registerAscendPassesAndPipelines();
  mlir::DialectRegistry registry;
  // The CPU backend's dialects: what attnedit-cpu-pipeline produces on the way.
  mlir::attnedit::cpu::registerCPUDialects(registry);
  // arith: other frontends spell attention's scale and mask with arith.constant.
  registry.insert<mlir::attnedit::AttnEditDialect, mlir::arith::ArithDialect,
                  mlir::func::FuncDialect>();
  // ascend kernels loop with scf.for over arith index math.
  registry.insert<mlir::attnedit::ascend::AscendDialect, mlir::scf::SCFDialect>();
  mlir::attnedit::setToolVersionPrinter("attnedit-opt");
  return mlir::asMainReturnCode(optMain(argc, argv, registry));
}
