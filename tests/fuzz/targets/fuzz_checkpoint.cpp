//===- fuzz_checkpoint.cpp - checkpoint.json ------------------------------===//
#include "../FuzzInput.h"
#include "attnedit/Runtime/Training/Checkpoint.h"

using namespace mlir::attnedit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  attnedit_fuzz::InputFile file(data, size);
  auto state = CheckpointState::read(file.path());
  if (!state) {
    llvm::consumeError(state.takeError());
    return 0;
  }
  (void)state->changes(llvm::json::Object{{"job", "distill"}}, llvm::json::Object{});
  (void)state->toJson();
  return 0;
}
