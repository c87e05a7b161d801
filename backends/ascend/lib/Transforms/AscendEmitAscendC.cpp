//===- AscendEmitAscendC.cpp - --attnedit-ascend-emit-ascendc --------------===//

#include "attnedit/Ascend/AscendCEmitter.h"
#include "attnedit/Ascend/Passes.h"

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
    std::error_code ec;
    std::unique_ptr<llvm::raw_fd_ostream> file;
    if (this->file != "-") {
      file = std::make_unique<llvm::raw_fd_ostream>(this->file, ec, llvm::sys::fs::OF_Text);
      if (ec) {
        getOperation().emitError() << "attnedit-ascend-emit-ascendc: cannot write '" << this->file
                                   << "': " << ec.message();
        return signalPassFailure();
      }
    }
    llvm::raw_ostream &os = file ? *file : llvm::outs();
    bool first = true;
    for (KernelOp kernel : getOperation().getOps<KernelOp>()) {
      if (!first)
        os << "\n";
      first = false;
      if (failed(emitAscendC(kernel, os)))
        return signalPassFailure();
    }
  }
};

} // namespace
