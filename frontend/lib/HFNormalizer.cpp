//===- HFNormalizer.cpp - tokenizer.json normalizers -----------------------===//
//
// The normalizers that real tokenizer.json files declare: the Unicode forms
// (Qwen2/Qwen3 declare NFC), Llama-2/Mistral's Sequence of Prepend("▁") and
// Replace(" " -> "▁"), and Lowercase, Strip, StripAccents. Unicode data come
// from utf8proc (Debian's libutf8proc), as ARCHITECTURE.md asks: no
// hand-written tables. Semantics follow the Rust library's normalizers/
// (utils.rs, unicode.rs, strip.rs, replace.rs, prepend.rs).
//
//===----------------------------------------------------------------------===//

#include "HFNormalizer.h"
#include "Unicode.h"

#include "llvm/Support/FormatVariadic.h"

#include <cstdlib>
#include <utf8proc.h>

using namespace mlir::attnedit::hf;
namespace unicode = mlir::attnedit::unicode;

namespace {

llvm::Error failAt(const llvm::Twine &field, const llvm::Twine &what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), (field + what).str());
}

std::string unicodeForm(llvm::StringRef text, int options) {
  utf8proc_uint8_t *mapped = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(text.data()),
                                    text.size(), &mapped, utf8proc_option_t(options));
  if (n < 0)
    return text.str();
  std::string out(reinterpret_cast<const char *>(mapped), n);
  std::free(mapped);
  return out;
}

std::string lowercase(llvm::StringRef text) {
  std::string out;
  out.reserve(text.size());
  bool valid = unicode::forEachCodepoint(text, [&](uint32_t cp, llvm::StringRef) {
    // Rust's char::to_lowercase is the full mapping; the only codepoint whose
    // full lowercase differs from the simple one utf8proc gives is U+0130
    // (SpecialCasing.txt: LATIN CAPITAL LETTER I WITH DOT ABOVE -> i + U+0307).
    if (cp == 0x130) {
      out += "i\xCC\x87";
      return;
    }
    unicode::appendCodepoint(out, utf8proc_tolower(cp));
  });
  return valid ? out : text.str();
}

std::string stripAccents(llvm::StringRef text) {
  std::string out;
  bool valid = unicode::forEachCodepoint(text, [&](uint32_t cp, llvm::StringRef bytes) {
    utf8proc_category_t cat = utf8proc_category(cp);
    if (cat != UTF8PROC_CATEGORY_MN && cat != UTF8PROC_CATEGORY_MC &&
        cat != UTF8PROC_CATEGORY_ME)
      out += bytes;
  });
  return valid ? out : text.str();
}

std::string strip(llvm::StringRef text, bool left, bool right) {
  // Byte offsets of the first and one past the last non-whitespace codepoint.
  size_t begin = text.size(), end = 0, at = 0;
  bool valid = unicode::forEachCodepoint(text, [&](uint32_t cp, llvm::StringRef bytes) {
    if (!unicode::isWhiteSpace(cp)) {
      begin = std::min(begin, at);
      end = at + bytes.size();
    }
    at += bytes.size();
  });
  if (!valid)
    return text.str();
  if (begin > end) // all whitespace
    return (left || right) ? std::string() : text.str();
  return text.slice(left ? begin : 0, right ? end : text.size()).str();
}

std::string replaceAll(llvm::StringRef text, llvm::StringRef from, llvm::StringRef to) {
  std::string out;
  out.reserve(text.size());
  for (size_t at = 0;;) {
    size_t hit = text.find(from, at);
    if (hit == llvm::StringRef::npos) {
      out += text.substr(at);
      return out;
    }
    out += text.slice(at, hit);
    out += to;
    at = hit + from.size();
  }
}

} // namespace

llvm::Expected<Normalizer> Normalizer::parse(const llvm::json::Value *value,
                                             llvm::StringRef field) {
  Normalizer normalizer;
  if (!value || value->kind() == llvm::json::Value::Null)
    return normalizer;
  if (llvm::Error err = normalizer.parseInto(*value, field.str()))
    return std::move(err);
  return normalizer;
}

llvm::Error Normalizer::parseInto(const llvm::json::Value &value, const std::string &field) {
  const llvm::json::Object *object = value.getAsObject();
  std::optional<llvm::StringRef> type = object ? object->getString("type") : std::nullopt;
  if (!type)
    return failAt(field, " is not an object with a \"type\"");

  if (*type == "Sequence") {
    const llvm::json::Array *list = object->getArray("normalizers");
    if (!list)
      return failAt(field, ".normalizers is missing or not an array");
    for (size_t i = 0; i < list->size(); ++i)
      if (llvm::Error err =
              parseInto((*list)[i], llvm::formatv("{0}.normalizers[{1}]", field, i).str()))
        return err;
    return llvm::Error::success();
  }

  Step step{Step::NFC};
  if (*type == "NFC" || *type == "NFD" || *type == "NFKC" || *type == "NFKD") {
    step.kind = *type == "NFC"    ? Step::NFC
                : *type == "NFD"  ? Step::NFD
                : *type == "NFKC" ? Step::NFKC
                                  : Step::NFKD;
  } else if (*type == "Lowercase") {
    step.kind = Step::Lowercase;
  } else if (*type == "StripAccents") {
    step.kind = Step::StripAccents;
  } else if (*type == "Strip") {
    step.kind = Step::Strip;
    // The library's defaults for absent fields.
    step.left = object->getBoolean("strip_left").value_or(true);
    step.right = object->getBoolean("strip_right").value_or(true);
  } else if (*type == "Prepend") {
    step.kind = Step::Prepend;
    std::optional<llvm::StringRef> prepend = object->getString("prepend");
    if (!prepend)
      return failAt(field, ".prepend is missing or not a string");
    step.to = prepend->str();
  } else if (*type == "Replace") {
    step.kind = Step::Replace;
    const llvm::json::Object *pattern = object->getObject("pattern");
    std::optional<llvm::StringRef> from = pattern ? pattern->getString("String") : std::nullopt;
    std::optional<llvm::StringRef> content = object->getString("content");
    if (pattern && pattern->get("Regex"))
      return failAt(field, ".pattern is a Regex; only {\"String\": ...} patterns are supported");
    if (!from || from->empty())
      return failAt(field, ".pattern.String is missing or empty");
    if (!content)
      return failAt(field, ".content is missing or not a string");
    step.from = from->str();
    step.to = content->str();
  } else {
    return failAt(field, ".type \"" + *type +
                             "\" is not supported; expected NFC, NFD, NFKC, NFKD, Lowercase, "
                             "Strip, StripAccents, Prepend, Replace or Sequence");
  }
  steps.push_back(std::move(step));
  return llvm::Error::success();
}

std::string Normalizer::apply(llvm::StringRef input) const {
  std::string text = input.str();
  for (const Step &step : steps) {
    switch (step.kind) {
    case Step::NFC:
      text = unicodeForm(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
      break;
    case Step::NFD:
      text = unicodeForm(text, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
      break;
    case Step::NFKC:
      text = unicodeForm(text, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
      break;
    case Step::NFKD:
      text = unicodeForm(text, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
      break;
    case Step::Lowercase:
      text = lowercase(text);
      break;
    case Step::StripAccents:
      text = stripAccents(text);
      break;
    case Step::Strip:
      text = strip(text, step.left, step.right);
      break;
    case Step::Prepend:
      // prepend.rs: only non-empty text gets the prefix.
      if (!text.empty())
        text = step.to + text;
      break;
    case Step::Replace:
      text = replaceAll(text, step.from, step.to);
      break;
    }
  }
  return text;
}
