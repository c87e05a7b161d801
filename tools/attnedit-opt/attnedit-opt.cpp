//===- attnedit-opt.cpp - attnedit optimizer driver ------------------------===//
//
// Registers only the dialects attnedit modules use: InitAllDialects.h would
// cost a minute of build per translation unit.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Ascend/AscendDialect.h"
#include "attnedit/Ascend/Passes.h"
#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  mlir::attnedit::registerAttnEditPasses();
  mlir::attnedit::ascend::registerAscendPassesAndPipelines();
  mlir::DialectRegistry registry;
  // arith: other frontends spell attention's scale and mask with arith.constant.
  registry.insert<mlir::attnedit::AttnEditDialect, mlir::arith::ArithDialect,
                  mlir::func::FuncDialect>();
  // ascend kernels loop with scf.for over arith index math.
  registry.insert<mlir::attnedit::ascend::AscendDialect, mlir::scf::SCFDialect>();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "attnedit optimizer driver\n", registry));
}
