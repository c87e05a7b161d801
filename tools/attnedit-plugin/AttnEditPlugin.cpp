//===- AttnEditPlugin.cpp - attnedit as an mlir-opt plugin -----------------===//
//
// Lets an upstream mlir-opt-19 load the attnedit dialect and passes:
//   mlir-opt-19 --load-dialect-plugin=AttnEditPlugin.so ...
//
//===----------------------------------------------------------------------===//

#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Tools/Plugins/DialectPlugin.h"
#include "mlir/Tools/Plugins/PassPlugin.h"
#include "llvm/Config/llvm-config.h"

extern "C" LLVM_ATTRIBUTE_WEAK mlir::DialectPluginLibraryInfo
mlirGetDialectPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "AttnEdit", LLVM_VERSION_STRING,
          [](mlir::DialectRegistry *registry) {
            registry->insert<mlir::attnedit::AttnEditDialect>();
            mlir::attnedit::registerAttnEditPasses();
          }};
}

extern "C" LLVM_ATTRIBUTE_WEAK mlir::PassPluginLibraryInfo mlirGetPassPluginInfo() {
  return {MLIR_PLUGIN_API_VERSION, "AttnEditPasses", LLVM_VERSION_STRING,
          []() { mlir::attnedit::registerAttnEditPasses(); }};
}
