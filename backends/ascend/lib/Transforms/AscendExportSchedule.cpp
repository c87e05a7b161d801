//===- AscendExportSchedule.cpp - --attnedit-ascend-export-schedule --------===//

#include "attnedit/Ascend/AscendOps.h"
#include "attnedit/Ascend/Passes.h"
#include "attnedit/Ascend/ScheduleBuilder.h"
#include "attnedit/Ascend/ScheduleFlatbuffer.h"
#include "attnedit/Frontend/AtomicFile.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::attnedit::ascend {
#define GEN_PASS_DEF_ASCENDEXPORTSCHEDULEPASS
#include "attnedit/Ascend/Passes.h.inc"
} // namespace mlir::attnedit::ascend

using namespace mlir;
using namespace mlir::attnedit::ascend;

namespace {

struct AscendExportSchedulePass
    : mlir::attnedit::ascend::impl::AscendExportSchedulePassBase<AscendExportSchedulePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (file.empty()) {
      module.emitError("attnedit-ascend-export-schedule: needs file=<path>");
      return signalPassFailure();
    }
    std::vector<Schedule> schedules;
    for (KernelOp kernel : module.getOps<KernelOp>()) {
      llvm::Expected<Schedule> s = buildSchedule(kernel);
      if (!s) {
        kernel.emitError() << llvm::toString(s.takeError());
        return signalPassFailure();
      }
      schedules.push_back(std::move(*s));
    }
    std::vector<const Schedule *> refs;
    for (const Schedule &s : schedules)
      refs.push_back(&s);
    std::vector<uint8_t> bytes = serializeSchedules(refs);
    if (llvm::Error e = attnedit::writeFileAtomically(
            file, llvm::StringRef(reinterpret_cast<const char *>(bytes.data()), bytes.size()))) {
      module.emitError() << "attnedit-ascend-export-schedule: " << llvm::toString(std::move(e));
      return signalPassFailure();
    }
  }
};

} // namespace
