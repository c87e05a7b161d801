//===- fuzz_safetensors.cpp - the safetensors reader ----------------------===//
// Opens the input as a .safetensors file and widens every tensor it accepts.
#include "../FuzzInput.h"
#include "attnedit/Frontend/WeightFile.h"

#include <vector>

using namespace mlir::attnedit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  attnedit_fuzz::InputFile file(data, size);
  auto weights = WeightFile::openSafetensors(file.path());
  if (!weights) {
    llvm::consumeError(weights.takeError());
    return 0;
  }
  for (const TensorInfo &info : (*weights)->tensors()) {
    std::vector<float> values(info.numElements());
    convertToF32(info.dtype, (*weights)->bytes(info), values.data(), values.size());
  }
  return 0;
}
