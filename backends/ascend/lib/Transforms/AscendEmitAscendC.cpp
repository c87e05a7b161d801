//===- AscendEmitAscendC.cpp - --attnedit-ascend-emit-ascendc --------------===//

#include "attnedit/Ascend/AscendCEmitter.h"
#include "attnedit/Ascend/Passes.h"
#include "attnedit/Frontend/AtomicFile.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::attnedit::ascend {
#define GEN_PASS_DEF_ASCENDEMITASCENDCPASS
#include "attnedit/Ascend/Passes.h.inc"
} // namespace mlir::attnedit::ascend

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {

struct AscendEmitAscendCPass
    : mlir::attnedit::ascend::impl::AscendEmitAscendCPassBase<AscendEmitAscendCPass> {
  using Base::Base;

  void runOnOperation() override {
    std::string text;
    llvm::raw_string_ostream os(text);
    bool first = true;
    for (KernelOp kernel : getOperation().getOps<KernelOp>()) {
      if (!first)
        os << "\n";
      first = false;
      if (failed(emitAscendC(kernel, os)))
        return signalPassFailure();
    }
    if (this->file == "-") {
      llvm::outs() << text;
      return;
    }
    // Whole, through a temporary: a failed write leaves no truncated source.
    if (llvm::Error e = attnedit::writeFileAtomically(this->file, text)) {
      getOperation().emitError() << "attnedit-ascend-emit-ascendc: "
                                 << llvm::toString(std::move(e));
      return signalPassFailure();
    }
  }
};

} // namespace
