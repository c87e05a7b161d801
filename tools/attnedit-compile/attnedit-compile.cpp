//===- attnedit-compile.cpp - a model compiled ahead of time -----------------===//
//
//   attnedit-compile MODEL -o OUT.aex [--block-size 16] [--max-chunk 64] [--no-decode]
//
// MODEL is anything attnedit-run loads (an attnedit module, a Hugging Face
// directory, a llama2.c .bin). Its @forward and, unless --no-decode, the
// @prefill / @decode functions over a paged KV cache are compiled for this
// CPU into the directory OUT.aex: one object per function, the module (its
// parameter files and tokenizer named by absolute path: the weights stay
// where they are) and a flatbuffers manifest. `attnedit-run
// forward|generate|eval|serve OUT.aex` then runs it without compiling.
//
//===----------------------------------------------------------------------===//

#include "ToolVersion.h"
#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Runtime/Execution/BlasSetup.h"
#include "attnedit/Runtime/Execution/Logging.h"
#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Runtime/Inference/Decoder.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace cl = llvm::cl;

using namespace mlir;
using namespace mlir::attnedit;

int main(int argc, char **argv) {
  configureMathLibraries(argv);
  // --help lists these and the generic options, not the hundreds that
  // LLVM's backends and passes register in the linked libraries.
  static cl::OptionCategory category("attnedit-compile options");
  cl::opt<std::string> model(cl::Positional, cl::Required,
                             cl::desc("<attnedit .mlir | HF model directory | llama2.c .bin>"),
                             cl::cat(category));
  cl::opt<std::string> output("o", cl::Required, cl::desc("the artifact directory to write"),
                              cl::value_desc("OUT.aex"), cl::cat(category));
  cl::opt<int64_t> blockSize("block-size", cl::desc("KV-cache block size in tokens (default 16)"),
                             cl::init(16), cl::cat(category));
  cl::opt<int64_t> maxChunk("max-chunk",
                            cl::desc("most prompt tokens one @prefill call takes (default 64)"),
                            cl::init(64), cl::cat(category));
  cl::opt<bool> noDecode("no-decode", cl::desc("compile @forward alone (no KV-cache functions)"),
                         cl::cat(category));
  cl::HideUnrelatedOptions(category);
  mlir::attnedit::setToolVersionPrinter("attnedit-compile");
  cl::ParseCommandLineOptions(argc, argv, "attnedit ahead-of-time compiler\n");
  initLogging("attnedit-compile");

  if (output.empty())
    return reportError(llvm::createStringError(
        llvm::inconvertibleErrorCode(), "-o is empty: give the artifact directory to write"));
  // Before loading and compiling: the artifact's directory would otherwise
  // be created (or written among a model's files) only after the work.
  if (llvm::Error e = checkCompiledModelOutput(output))
    return reportError(llvm::createStringError(llvm::inconvertibleErrorCode(), "-o %s",
                                               llvm::toString(std::move(e)).c_str()));

  if (isCompiledModel(model))
    return reportError(llvm::createStringError(llvm::inconvertibleErrorCode(),
                                               "%s is already compiled", model.c_str()));
  auto loaded = Model::load(model);
  if (!loaded)
    return reportError(loaded.takeError());
  // Before compiling: a parameter the module types otherwise than its file
  // holds would be found only when the artifact runs.
  llvm::Error params = llvm::Error::success();
  (*loaded)->module().walk([&](ParamOp p) {
    params = (*loaded)->parameterStore().check(p.getName(), p.getType().getShape(),
                                               p.getScope().value_or(""));
    return params ? WalkResult::interrupt() : WalkResult::advance();
  });
  if (params)
    return reportError(std::move(params));
  auto start = std::chrono::steady_clock::now();
  std::unique_ptr<Decoder> decoder;
  ModuleOp module = (*loaded)->module();
  if (!noDecode) {
    auto built = Decoder::create(**loaded, {blockSize, maxChunk, 0});
    if (!built)
      return reportError(built.takeError());
    decoder = std::move(*built);
    module = decoder->module();
  }
  // The artifact's copy of the module lives elsewhere.
  anchorModulePaths(module);
  // A model directory's config.json shaped the module: the artifact
  // refuses to run once it changes.
  std::vector<std::string> configFiles;
  llvm::SmallString<256> config(model);
  llvm::sys::path::append(config, "config.json");
  llvm::sys::fs::make_absolute(config);
  if (llvm::sys::fs::is_directory(model) && llvm::sys::fs::exists(config))
    configFiles.push_back(config.str().str());
  if (llvm::Error e = writeCompiledModel(module, output, configFiles))
    return reportError(std::move(e));
  spdlog::info("wrote {} in {:.1f} s", output.getValue(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
