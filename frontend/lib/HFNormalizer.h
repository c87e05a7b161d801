//===- HFNormalizer.h - tokenizer.json normalizers -------------*- C++ -*-===//
//
// The "normalizer" of a Hugging Face tokenizer.json, applied as the
// tokenizers library applies it to the text between added tokens. Private to
// the frontend library: HFTokenizer.cpp is its only user.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_LIB_HFNORMALIZER_H
#define ATTNEDIT_FRONTEND_LIB_HFNORMALIZER_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <string>
#include <vector>

namespace mlir::attnedit::hf {

class Normalizer {
public:
  /// Parses `value` (the "normalizer" field, null or absent meaning none).
  /// Errors name the offending field, spelled from `field`.
  static llvm::Expected<Normalizer> parse(const llvm::json::Value *value,
                                          llvm::StringRef field);

  /// `text` normalized. Text that is not valid UTF-8 passes the Unicode
  /// forms unchanged (the Rust library only ever sees valid UTF-8).
  std::string apply(llvm::StringRef text) const;

  bool empty() const { return steps.empty(); }

private:
  struct Step {
    enum Kind { NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Prepend, Replace } kind;
    std::string from, to; // Replace: from -> to; Prepend: to
    bool left = false, right = false; // Strip
  };
  llvm::Error parseInto(const llvm::json::Value &value, const std::string &field);

  std::vector<Step> steps;
};

} // namespace mlir::attnedit::hf

#endif // ATTNEDIT_FRONTEND_LIB_HFNORMALIZER_H
