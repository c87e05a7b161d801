//===- fuzz_llama2c.cpp - llama2.c checkpoints ----------------------------===//
// Opens the input as a llama2.c .bin and reads the first and last float of
// every tensor it accepts (all of them must lie inside the file).
#include "../FuzzInput.h"
#include "attnedit/Frontend/ModelConfig.h"

#include <cstring>

using namespace mlir::attnedit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  attnedit_fuzz::InputFile file(data, size);
  auto checkpoint = openLlama2c(file.path());
  if (!checkpoint) {
    llvm::consumeError(checkpoint.takeError());
    return 0;
  }
  volatile float sink = 0;
  for (const TensorInfo &info : checkpoint->weights->tensors()) {
    if (info.size < 4)
      continue;
    float first, last;
    std::memcpy(&first, checkpoint->weights->bytes(info), 4);
    std::memcpy(&last, checkpoint->weights->bytes(info) + info.size - 4, 4);
    sink = sink + first + last;
  }
  return 0;
}
