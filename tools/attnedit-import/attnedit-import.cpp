//===- attnedit-import.cpp - checkpoint to attnedit module -----------------===//
//
//   attnedit-import MODEL [--config-only] -o OUT.mlir
//
// MODEL is a Hugging Face model directory or a llama2.c .bin checkpoint.
//
//===----------------------------------------------------------------------===//

#include "ToolVersion.h"
#include "attnedit/Frontend/Importer.h"
#include "attnedit/Runtime/Execution/Logging.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/ToolOutputFile.h"

namespace cl = llvm::cl;

using namespace mlir;

int main(int argc, char **argv) {
  // --help lists these and the generic options, not the hundreds that
  // LLVM's backends and passes register in the linked libraries.
  static cl::OptionCategory category("attnedit-import options");
  cl::opt<std::string> model(cl::Positional, cl::Required,
                             cl::desc("<HF model directory | llama2.c .bin>"), cl::cat(category));
  cl::opt<std::string> output("o", cl::desc("output .mlir (default: stdout)"),
                              cl::value_desc("file"), cl::init("-"), cl::cat(category));
  cl::opt<bool> configOnly(
      "config-only",
      cl::desc("read config.json alone and declare parameters without files (for analyses "
               "such as --attnedit-kv-report on a model whose weights are not at hand)"),
      cl::cat(category));
  cl::HideUnrelatedOptions(category);
  mlir::attnedit::setToolVersionPrinter("attnedit-import");
  cl::ParseCommandLineOptions(argc, argv, "attnedit checkpoint importer\n");
  attnedit::initLogging("attnedit-import");

  llvm::Expected<attnedit::Checkpoint> checkpoint = attnedit::openCheckpoint(model, configOnly);
  if (!checkpoint)
    return attnedit::reportError(checkpoint.takeError());
  mlir::MLIRContext context;
  auto module = attnedit::importCheckpoint(context, *checkpoint);
  if (!module)
    return attnedit::reportError(module.takeError());
  std::error_code ec;
  llvm::ToolOutputFile out(output, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return attnedit::reportError(llvm::createStringError(ec, "%s: cannot write: %s",
                                                         output.c_str(), ec.message().c_str()));
  (*module)->print(out.os());
  out.keep();
  return 0;
}
