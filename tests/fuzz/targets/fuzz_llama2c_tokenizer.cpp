//===- fuzz_llama2c_tokenizer.cpp - llama2.c tokenizer.bin ----------------===//
// The first input byte picks the vocabulary size the loader expects; the
// rest is the file. If it loads: encode and decode.
#include "../FuzzInput.h"
#include "attnedit/Frontend/Tokenizer.h"

using namespace mlir::attnedit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  int64_t vocab = 1 + data[0] * 3;
  attnedit_fuzz::InputFile file(data + 1, size - 1);
  auto tok = loadLlama2cTokenizer(file.path(), vocab);
  if (!tok) {
    llvm::consumeError(tok.takeError());
    return 0;
  }
  for (const char *text : {"", "a b", "Once upon a time", "caf\xc3\xa9 \xf0\x9f\x98\x80 \xff"}) {
    std::vector<int32_t> ids = (*tok)->encode(text);
    (void)(*tok)->decode(ids);
  }
  for (int32_t id = -1; id <= vocab; ++id)
    (void)(*tok)->decodeToken(1, id);
  return 0;
}
