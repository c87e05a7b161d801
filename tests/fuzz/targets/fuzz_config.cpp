//===- fuzz_config.cpp - Hugging Face config.json (Llama, Qwen, DeepSeek) -===//
#include "../FuzzInput.h"
#include "attnedit/Frontend/ModelConfig.h"

using namespace mlir::attnedit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  attnedit_fuzz::InputFile file(data, size);
  auto config = parseHFConfig(file.path());
  if (!config)
    llvm::consumeError(config.takeError());
  return 0;
}
