//===- attnedit-import.cpp - checkpoint to attnedit module -----------------===//
//
//   attnedit-import MODEL [--config-only] -o OUT.mlir
//
// MODEL is a Hugging Face model directory or a llama2.c .bin checkpoint.
//
//===----------------------------------------------------------------------===//

#include "ToolVersion.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/Importer.h"
#include "attnedit/Runtime/Execution/Logging.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

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
  if (output != "-" &&
      (attnedit::sameFile(output, model) || attnedit::isReadByModelLoad(model, output)))
    return attnedit::reportError(llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "-o %s is a file of the model %s: writing it would destroy it", output.c_str(),
        model.c_str()));

  llvm::Expected<attnedit::Checkpoint> checkpoint = attnedit::openCheckpoint(model, configOnly);
  if (!checkpoint)
    return attnedit::reportError(checkpoint.takeError());
  mlir::MLIRContext context;
  auto module = attnedit::importCheckpoint(context, *checkpoint);
  if (!module)
    return attnedit::reportError(module.takeError());
  std::string text;
  llvm::raw_string_ostream os(text);
  (*module)->print(os);
  if (output == "-") {
    llvm::outs() << text;
    return 0;
  }
  // Whole or not at all: a full disk left a torn module behind.
  if (llvm::Error e = attnedit::writeFileAtomically(output, text))
    return attnedit::reportError(std::move(e));
  return 0;
}
