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
#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/STLExtras.h"

#include <string>
#include <vector>

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
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "attnedit optimizer driver\n", registry));
}
