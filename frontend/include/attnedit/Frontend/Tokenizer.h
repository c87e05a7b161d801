//===- Tokenizer.h - text <-> token ids -----------------------*- C++ -*-===//
//
// Three formats: llama2.c's tok.bin (SentencePiece-style BPE over scored
// pieces with byte fallback, encoded exactly as llama2.c's run.c does),
// Hugging Face tokenizer.json (byte-level and SentencePiece-style BPE, as
// Qwen2/Qwen3, Llama 2/3 and Gemma ship) and SentencePiece .model files
// through libsentencepiece.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_TOKENIZER_H
#define ATTNEDIT_FRONTEND_TOKENIZER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mlir::attnedit {

class Tokenizer {
public:
  virtual ~Tokenizer();

  /// Token ids of `text`, without BOS/EOS.
  virtual std::vector<int32_t> encode(llvm::StringRef text) const = 0;

  /// Bytes that token `id` prints when it follows token `prev`: at the start
  /// (`prev` = -1) and after BOS, SentencePiece-style tokenizers drop the
  /// dummy-prefix space encode added. Ids outside the vocabulary decode to
  /// an empty string.
  virtual std::string decodeToken(int32_t prev, int32_t id) const = 0;

  /// Whether `id` is a special token (tokenizer.json's added tokens marked
  /// "special": <|im_start|>, <|eot_id|>). SentencePiece's control tokens
  /// decode to nothing already; llama2.c's format marks none.
  virtual bool isSpecial(int32_t id) const { return false; }
  /// decodeToken, or nothing for a special token with `skipSpecial`: what
  /// generated text shows, as transformers' skip_special_tokens and vLLM
  /// leave special tokens out of it.
  std::string pieceOf(int32_t prev, int32_t id, bool skipSpecial) const {
    return skipSpecial && isSpecial(id) ? std::string() : decodeToken(prev, id);
  }

  /// Concatenated decodeToken over `ids`, the first taking `prev` = -1.
  std::string decode(llvm::ArrayRef<int32_t> ids, bool skipSpecial = false) const;

  virtual int64_t vocabSize() const = 0;
  virtual std::optional<int32_t> bosId() const = 0;
  virtual std::optional<int32_t> eosId() const = 0;
};

/// The token a document starts after: `bos`, else the end-of-text token a
/// model without BOS ends documents with: its first stop token
/// (config.json's eos_token_id, transformers' eos_token, which lm-eval
/// conditions an empty context on), else `tok`'s EOS. Training data, samples
/// and scored questions all start after it.
std::optional<int32_t> documentStartToken(std::optional<int32_t> bos,
                                          llvm::ArrayRef<int32_t> stopTokens,
                                          const Tokenizer *tok);

/// The byte a byte-fallback piece "<0xHH>" stands for (two hex digits, either
/// case, as SentencePiece and tokenizer.json's ByteFallback spell them), or
/// none for any other piece.
std::optional<uint8_t> parseBytePiece(llvm::StringRef piece);

/// Loads a llama2.c tok.bin, expecting `vocabSize` entries (the checkpoint's
/// vocabulary size, which the format does not store); without one, every
/// entry up to the end of the file.
llvm::Expected<std::unique_ptr<Tokenizer>>
loadLlama2cTokenizer(llvm::StringRef path, std::optional<int64_t> vocabSize);

/// Loads a Hugging Face tokenizer.json (model.type "BPE", byte-level).
llvm::Expected<std::unique_ptr<Tokenizer>> loadHFTokenizer(llvm::StringRef path);

/// Loads a SentencePiece model (tokenizer.model, llama2.c's tok*.model)
/// through libsentencepiece.
llvm::Expected<std::unique_ptr<Tokenizer>> loadSentencePieceTokenizer(llvm::StringRef path);

/// The tokenizer at `path` (tokenizer.json, a SentencePiece .model, or a
/// llama2.c tokenizer.bin) for
/// a model with `modelVocab` embedding rows: one whose ids do not all fit
/// the model is refused here, naming both sizes, rather than failing later
/// inside the embedding.
llvm::Expected<std::unique_ptr<Tokenizer>> loadTokenizer(llvm::StringRef path,
                                                         int64_t modelVocab);

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_TOKENIZER_H
