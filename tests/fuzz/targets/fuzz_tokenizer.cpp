//===- fuzz_tokenizer.cpp - tokenizer.json: load, encode, decode ----------===//
// Loads the input as a Hugging Face tokenizer.json; if it loads, encodes a
// few fixed strings and decodes every id around the vocabulary's edges.
#include "../FuzzInput.h"
#include "attnedit/Frontend/Tokenizer.h"

#include <climits>

using namespace mlir::attnedit;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  attnedit_fuzz::InputFile file(data, size);
  auto tok = loadHFTokenizer(file.path());
  if (!tok) {
    llvm::consumeError(tok.takeError());
    return 0;
  }
  for (const char *text : {"", "a b", "Hello, world! 123", "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80",
                           "  two  spaces\n\tand tabs", "\xff\xfe broken utf-8"}) {
    std::vector<int32_t> ids = (*tok)->encode(text);
    (void)(*tok)->decode(ids);
  }
  int64_t vocab = (*tok)->vocabSize();
  for (int64_t id : {int64_t(-1), int64_t(0), vocab - 1, vocab, int64_t(INT32_MAX),
                     int64_t(INT32_MIN)})
    (void)(*tok)->decodeToken(-1, (int32_t)id);
  return 0;
}
