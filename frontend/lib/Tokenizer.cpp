//===- Tokenizer.cpp - shared part of the tokenizer interface --------------===//
//
// The format-specific loaders live in Llama2cTokenizer.cpp and HFTokenizer.cpp;
// this file holds what every tokenizer shares.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/Tokenizer.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

using namespace mlir::attnedit;

// Out of line so that the vtable has a home in this library.
Tokenizer::~Tokenizer() = default;

std::string Tokenizer::decode(llvm::ArrayRef<int32_t> ids, bool skipSpecial) const {
  std::string text;
  int32_t prev = -1;
  for (int32_t id : ids) {
    text += pieceOf(prev, id, skipSpecial);
    prev = id;
  }
  return text;
}

std::optional<int32_t> mlir::attnedit::documentStartToken(std::optional<int32_t> bos,
                                                         llvm::ArrayRef<int32_t> stopTokens,
                                                         const Tokenizer *tok) {
  if (bos)
    return bos;
  if (!stopTokens.empty())
    return stopTokens.front();
  return tok ? tok->eosId() : std::nullopt;
}

std::optional<uint8_t> mlir::attnedit::parseBytePiece(llvm::StringRef piece) {
  if (piece.size() != 6 || !piece.starts_with("<0x") || !piece.ends_with(">"))
    return std::nullopt;
  unsigned value;
  if (piece.substr(3, 2).getAsInteger(16, value))
    return std::nullopt;
  return static_cast<uint8_t>(value);
}

llvm::Expected<std::unique_ptr<Tokenizer>> mlir::attnedit::loadTokenizer(llvm::StringRef path,
                                                                         int64_t modelVocab) {
  llvm::StringRef ext = llvm::sys::path::extension(path);
  auto loaded = ext == ".json"    ? loadHFTokenizer(path)
                : ext == ".model" ? loadSentencePieceTokenizer(path)
                                  : loadLlama2cTokenizer(path, modelVocab);
  if (!loaded)
    return loaded.takeError();
  // Models often pad their embedding past the tokenizer (Qwen: 151936 rows,
  // 151665 ids); the other way round, some ids would index past it.
  if ((*loaded)->vocabSize() > modelVocab)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        llvm::formatv("{0}: the tokenizer has ids up to {1}, but the model's vocabulary has "
                      "only {2} entries; this tokenizer belongs to another model",
                      path, (*loaded)->vocabSize() - 1, modelVocab)
            .str());
  return loaded;
}
