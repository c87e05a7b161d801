//===- Distiller.cpp - the conversion pipeline up to training --------------===//

#include "attnedit/Runtime/Distiller.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::attnedit;

static llvm::Error makeError(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg.str());
}

llvm::Error attnedit::runPipeline(ModuleOp module, llvm::StringRef pipeline) {
  static bool registered = (registerAttnEditPasses(), true);
  (void)registered;
  std::string diagnostics;
  llvm::raw_string_ostream os(diagnostics);
  ScopedDiagnosticHandler handler(module.getContext(), [&](Diagnostic &d) {
    os << d << "\n";
    return success();
  });
  PassManager pm(module.getContext());
  if (failed(parsePassPipeline(pipeline, pm, os)))
    return makeError("bad pass pipeline '" + pipeline + "': " + diagnostics);
  if (failed(pm.run(module)))
    return makeError(pipeline + " failed: " + diagnostics);
  return llvm::Error::success();
}

llvm::Error attnedit::writeModule(ModuleOp module, llvm::StringRef path) {
  std::string temp = (path + ".tmp").str();
  std::error_code ec;
  {
    llvm::raw_fd_ostream os(temp, ec, llvm::sys::fs::OF_Text);
    if (ec)
      return makeError(temp + ": cannot write: " + ec.message());
    module->print(os);
    os.close();
    if (os.has_error())
      return makeError(temp + ": write failed");
  }
  if (std::error_code rc = llvm::sys::fs::rename(temp, path))
    return makeError(path + ": cannot replace: " + rc.message());
  return llvm::Error::success();
}

static OwningOpRef<ModuleOp> copyOf(ModuleOp module) {
  return OwningOpRef<ModuleOp>(cast<ModuleOp>(module->clone()));
}

llvm::Expected<OwningOpRef<ModuleOp>> attnedit::raisedCopy(ModuleOp teacher) {
  OwningOpRef<ModuleOp> copy = copyOf(teacher);
  if (llvm::Error e = runPipeline(*copy, "builtin.module(attnedit-raise-attention)"))
    return std::move(e);
  return copy;
}

llvm::Expected<OwningOpRef<ModuleOp>> attnedit::editedCopy(ModuleOp teacher,
                                                           llvm::StringRef editOptions,
                                                           llvm::StringRef paramsOut) {
  OwningOpRef<ModuleOp> copy = copyOf(teacher);
  std::string pipeline = ("builtin.module(attnedit-edit-attention{" + editOptions +
                          " params-out=" + paramsOut + "})")
                             .str();
  if (llvm::Error e = runPipeline(*copy, pipeline))
    return std::move(e);
  return copy;
}

llvm::Expected<OwningOpRef<ModuleOp>> attnedit::trainingCopy(ModuleOp student,
                                                             llvm::StringRef stageOptions) {
  OwningOpRef<ModuleOp> copy = copyOf(student);
  std::string pipeline = ("builtin.module(attnedit-build-distill{" + stageOptions +
                          "},attnedit-autodiff{func=train_step})")
                             .str();
  if (llvm::Error e = runPipeline(*copy, pipeline))
    return std::move(e);
  return copy;
}
