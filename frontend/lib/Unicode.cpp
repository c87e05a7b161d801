//===- Unicode.cpp - UTF-8 and Unicode properties for tokenizers -----------===//
//
// Thin wrappers over utf8proc (Debian's libutf8proc): Unicode data come from
// there, as ARCHITECTURE.md asks, not from hand-written tables.
//
//===----------------------------------------------------------------------===//

#include "Unicode.h"

#include <utf8proc.h>

using namespace mlir::attnedit;

size_t unicode::decode(llvm::StringRef text, uint32_t &cp) {
  utf8proc_int32_t decoded;
  utf8proc_ssize_t n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t *>(text.data()),
                                        text.size(), &decoded);
  if (n <= 0)
    return 0;
  cp = decoded;
  return n;
}

void unicode::appendCodepoint(std::string &out, uint32_t cp) {
  utf8proc_uint8_t buf[4];
  utf8proc_ssize_t n = utf8proc_encode_char(cp, buf);
  out.append(reinterpret_cast<const char *>(buf), n);
}

bool unicode::isWhiteSpace(uint32_t cp) {
  if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85)
    return true;
  utf8proc_category_t cat = utf8proc_category(cp);
  return cat == UTF8PROC_CATEGORY_ZS || cat == UTF8PROC_CATEGORY_ZL ||
         cat == UTF8PROC_CATEGORY_ZP;
}
