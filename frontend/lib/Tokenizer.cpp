//===- Tokenizer.cpp - shared part of the tokenizer interface --------------===//
//
// The format-specific loaders live in Llama2cTokenizer.cpp and HFTokenizer.cpp;
// this file holds what every tokenizer shares.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/Tokenizer.h"

using namespace mlir::attnedit;

// Out of line so that the vtable has a home in this library.
Tokenizer::~Tokenizer() = default;

std::string Tokenizer::decode(llvm::ArrayRef<int32_t> ids) const {
  std::string text;
  int32_t prev = -1;
  for (int32_t id : ids) {
    text += decodeToken(prev, id);
    prev = id;
  }
  return text;
}
