//===- Unicode.h - UTF-8 and Unicode properties for tokenizers --*- C++ -*-===//
//
// The UTF-8 decoding and encoding and the Unicode properties that the
// tokenizer.json normalizers and pre-tokenizers share, all from utf8proc, so
// that both read text the same way. Private to the frontend library.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_LIB_UNICODE_H
#define ATTNEDIT_FRONTEND_LIB_UNICODE_H

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>

namespace mlir::attnedit::unicode {

/// Byte length of the well-formed UTF-8 sequence that starts `text`, with
/// its codepoint in `cp`; 0 if `text` is empty or does not start with one
/// (overlong forms, surrogates and codepoints past U+10FFFF are not).
size_t decode(llvm::StringRef text, uint32_t &cp);

/// Calls `fn(codepoint, bytes)` for each codepoint of `text`; false, after
/// the valid prefix, if `text` is not valid UTF-8.
template <typename Fn> bool forEachCodepoint(llvm::StringRef text, Fn fn) {
  while (!text.empty()) {
    uint32_t cp;
    size_t n = decode(text, cp);
    if (n == 0)
      return false;
    fn(cp, text.take_front(n));
    text = text.drop_front(n);
  }
  return true;
}

/// Appends the UTF-8 encoding of `cp`.
void appendCodepoint(std::string &out, uint32_t cp);

/// Unicode's White_Space property: what Rust's char::is_whitespace tests and
/// what Oniguruma's \s matches under Unicode (U+0009..U+000D, U+0085 and the
/// Zs, Zl, Zp categories, which is the same set).
bool isWhiteSpace(uint32_t cp);

} // namespace mlir::attnedit::unicode

#endif // ATTNEDIT_FRONTEND_LIB_UNICODE_H
