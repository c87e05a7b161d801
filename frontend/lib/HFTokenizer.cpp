//===- HFTokenizer.cpp - Hugging Face tokenizer.json BPE -------------------===//
//
// Encodes as the `tokenizers` library does for the BPE files that real models
// ship. Added tokens are cut out of the text first; the normalizer
// (HFNormalizer.cpp) runs on each stretch between them; the pre-tokenizer
// cuts it into words; merges apply lowest rank first within a word.
//  - Byte-level BPE (GPT-2, Qwen2/Qwen3, Llama 3): words come from the
//    model's split regex, and every byte of a word is one symbol of GPT-2's
//    printable byte alphabet. The split regexes are recognised by their exact
//    spelling and run by hand-written scanners, so no regex engine is needed;
//    their Unicode classes come from utf8proc's general categories.
//  - SentencePiece-style BPE (Llama-2, Mistral, TinyLlama): spaces become "▁"
//    (by a Prepend + Replace normalizer, or by the Metaspace pre-tokenizer),
//    every character is a symbol, and a character missing from the vocabulary
//    falls back to its UTF-8 bytes as <0xNN> tokens (byte_fallback).
// Decoding follows the decoder chain (ByteLevel, or Replace / ByteFallback /
// Fuse / Strip, or Metaspace) token by token, as streaming output needs.
//
//===----------------------------------------------------------------------===//

#include "HFNormalizer.h"
#include "Unicode.h"

#include "attnedit/Frontend/Json.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Tokenizer.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <array>
#include <limits>
#include <queue>
#include <utf8proc.h>

using namespace mlir::attnedit;
namespace unicode = mlir::attnedit::unicode;

namespace {

//===----------------------------------------------------------------------===//
// Character classes
//===----------------------------------------------------------------------===//

/// What the split regexes ask of a codepoint: \p{L}, \p{N}, \s, or none.
enum class CharClass : uint8_t { Letter, Number, Space, Other };

/// The classes as Oniguruma (the Rust library's regex engine) defines them
/// under Unicode: \p{L} is the L* general categories, \p{N} is Nd, Nl and
/// No, \s is White_Space. They are disjoint. Marks (Mn, Mc, Me) are none, so
/// an Indic or Arabic word is cut at its vowel signs and diacritics, as the
/// library cuts it.
CharClass classify(uint32_t cp) {
  switch (utf8proc_category(cp)) {
  case UTF8PROC_CATEGORY_LU:
  case UTF8PROC_CATEGORY_LL:
  case UTF8PROC_CATEGORY_LT:
  case UTF8PROC_CATEGORY_LM:
  case UTF8PROC_CATEGORY_LO:
    return CharClass::Letter;
  case UTF8PROC_CATEGORY_ND:
  case UTF8PROC_CATEGORY_NL:
  case UTF8PROC_CATEGORY_NO:
    return CharClass::Number;
  default:
    return unicode::isWhiteSpace(cp) ? CharClass::Space : CharClass::Other;
  }
}

struct CodeUnit {
  uint32_t cp;
  CharClass cls;
  uint32_t begin; // byte offset in the scanned text
};

/// Codepoints of `text` with their classes. Bytes that are not valid UTF-8
/// become one unit each, classified as Other (the Rust library never sees
/// them: its strings are valid UTF-8 by construction).
std::vector<CodeUnit> decodeUnits(llvm::StringRef text) {
  std::vector<CodeUnit> units;
  units.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp;
    if (size_t n = unicode::decode(text.substr(pos), cp)) {
      units.push_back({cp, classify(cp), uint32_t(pos)});
      pos += n;
    } else {
      units.push_back({0xFFFD, CharClass::Other, uint32_t(pos)});
      ++pos;
    }
  }
  return units;
}

//===----------------------------------------------------------------------===//
// Split patterns
//===----------------------------------------------------------------------===//

enum class SplitPattern { GPT2, Llama3, Qwen2 };

// The regexes we can run, spelled as in tokenizer.json files. Some converters
// write the case-insensitive group out as character classes; same language.
struct KnownPattern {
  llvm::StringLiteral regex;
  SplitPattern kind;
};
constexpr KnownPattern kKnownPatterns[] = {
    {R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)",
     SplitPattern::GPT2},
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     SplitPattern::Llama3},
    {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     SplitPattern::Llama3},
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     SplitPattern::Qwen2},
    {R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     SplitPattern::Qwen2},
};

/// Case folding as far as the contractions need it: ASCII, plus U+017F LATIN
/// SMALL LETTER LONG S, which Unicode folds to 's'.
uint32_t foldCase(uint32_t cp) {
  if (cp >= 'A' && cp <= 'Z')
    return cp + ('a' - 'A');
  return cp == 0x17F ? 's' : cp;
}

/// Length in units of the contraction ('s 't 're 've 'm 'll 'd) at `i`, or 0.
size_t matchContraction(llvm::ArrayRef<CodeUnit> u, size_t i,
                        bool ignoreCase) {
  if (u[i].cp != '\'' || i + 1 >= u.size())
    return 0;
  auto at = [&](size_t k) -> uint32_t {
    if (k >= u.size())
      return 0;
    return ignoreCase ? foldCase(u[k].cp) : u[k].cp;
  };
  uint32_t c1 = at(i + 1), c2 = at(i + 2);
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd')
    return 2;
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') ||
      (c1 == 'l' && c2 == 'l'))
    return 3;
  return 0;
}

size_t skipClass(llvm::ArrayRef<CodeUnit> u, size_t i, CharClass cls) {
  while (i < u.size() && u[i].cls == cls)
    ++i;
  return i;
}

bool isLineBreak(uint32_t cp) { return cp == '\r' || cp == '\n'; }

/// The whitespace alternatives shared by all patterns, at a whitespace unit
/// `i`: `\s+(?!\S)` gives the run minus its last unit when a non-space
/// follows (that unit then prefixes the next word), `\s+` the whole run.
size_t matchTrailingSpace(llvm::ArrayRef<CodeUnit> u, size_t i) {
  size_t end = skipClass(u, i, CharClass::Space);
  if (end == u.size() || end - i == 1)
    return end;
  return end - 1;
}

/// End of the leftmost-first match of GPT-2's pattern
/// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// starting at unit `i`.
size_t matchGPT2(llvm::ArrayRef<CodeUnit> u, size_t i) {
  if (size_t len = matchContraction(u, i, /*ignoreCase=*/false))
    return i + len;
  // ` ?X+` for the three classes: the space is taken only if X follows.
  size_t j = i;
  if (u[j].cp == ' ' && j + 1 < u.size() && u[j + 1].cls != CharClass::Space)
    ++j;
  if (u[j].cls != CharClass::Space)
    return skipClass(u, j, u[j].cls);
  return matchTrailingSpace(u, i);
}

/// End of the leftmost-first match of the Llama 3 (maxDigits 3) or Qwen2
/// (maxDigits 1) pattern
/// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
///  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
/// starting at unit `i`.
size_t matchLlama3(llvm::ArrayRef<CodeUnit> u, size_t i, size_t maxDigits) {
  if (size_t len = matchContraction(u, i, /*ignoreCase=*/true))
    return i + len;
  CharClass cls = u[i].cls;
  // [^\r\n\p{L}\p{N}]?\p{L}+ : any one non-letter, non-digit other than a
  // line break may lead a word.
  if (cls == CharClass::Letter)
    return skipClass(u, i, CharClass::Letter);
  if (cls != CharClass::Number && !isLineBreak(u[i].cp) && i + 1 < u.size() &&
      u[i + 1].cls == CharClass::Letter)
    return skipClass(u, i + 1, CharClass::Letter);
  if (cls == CharClass::Number) {
    size_t j = i;
    while (j < u.size() && j - i < maxDigits && u[j].cls == CharClass::Number)
      ++j;
    return j;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t j = i;
  if (u[j].cp == ' ' && j + 1 < u.size() && u[j + 1].cls == CharClass::Other)
    ++j;
  if (u[j].cls == CharClass::Other) {
    j = skipClass(u, j, CharClass::Other);
    while (j < u.size() && isLineBreak(u[j].cp))
      ++j;
    return j;
  }
  // \s*[\r\n]+ : backtracking leaves the run up to its last line break.
  size_t end = skipClass(u, i, CharClass::Space);
  for (size_t k = end; k > i; --k)
    if (isLineBreak(u[k - 1].cp))
      return k;
  return matchTrailingSpace(u, i);
}

/// Appends the pieces `pattern` cuts `text` into (behaviour "Isolated": every
/// match is a piece; the patterns match every character, so no gaps).
void splitByPattern(SplitPattern pattern, llvm::StringRef text,
                    std::vector<std::string> &out) {
  std::vector<CodeUnit> units = decodeUnits(text);
  for (size_t i = 0; i < units.size();) {
    size_t end = i + 1;
    switch (pattern) {
    case SplitPattern::GPT2:
      end = matchGPT2(units, i);
      break;
    case SplitPattern::Llama3:
      end = matchLlama3(units, i, 3);
      break;
    case SplitPattern::Qwen2:
      end = matchLlama3(units, i, 1);
      break;
    }
    // Defensive: every unit matches some alternative, but never loop forever.
    end = std::max(end, i + 1);
    size_t from = units[i].begin;
    size_t to = end < units.size() ? units[end].begin : text.size();
    out.push_back(text.slice(from, to).str());
    i = end;
  }
}

/// Appends the pieces a Split pre-tokenizer with a String pattern cuts `text`
/// into, as the library's NormalizedString::split: the occurrences of
/// `delimiter` (left to right, not overlapping) and the stretches between
/// them, combined per `behavior`; empty pieces are dropped.
template <typename Behavior>
void splitByString(llvm::StringRef text, llvm::StringRef delimiter, Behavior behavior,
                   std::vector<std::string> &out) {
  struct Span {
    size_t begin, end;
    bool match;
  };
  std::vector<Span> spans;
  for (size_t at = 0; at < text.size();) {
    size_t hit = text.find(delimiter, at);
    if (hit == llvm::StringRef::npos)
      hit = text.size();
    if (hit > at)
      spans.push_back({at, hit, false});
    if (hit < text.size())
      spans.push_back({hit, hit + delimiter.size(), true});
    at = hit + delimiter.size();
  }
  std::vector<Span> pieces;
  switch (behavior) {
  case Behavior::Removed:
    for (const Span &s : spans)
      if (!s.match)
        pieces.push_back(s);
    break;
  case Behavior::Isolated:
    pieces = spans;
    break;
  case Behavior::Contiguous:
    for (const Span &s : spans)
      if (s.match && !pieces.empty() && pieces.back().match)
        pieces.back().end = s.end;
      else
        pieces.push_back(s);
    break;
  case Behavior::MergedWithPrevious: {
    // A delimiter joins the piece before it unless that piece is one too.
    bool previousMatch = false;
    for (const Span &s : spans) {
      if (s.match && !previousMatch && !pieces.empty())
        pieces.back().end = s.end;
      else
        pieces.push_back(s);
      previousMatch = s.match;
    }
    break;
  }
  case Behavior::MergedWithNext: {
    // The mirror image: walk backwards, a delimiter joins the piece after it.
    bool previousMatch = false;
    for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
      if (it->match && !previousMatch && !pieces.empty())
        pieces.back().begin = it->begin;
      else
        pieces.push_back(*it);
      previousMatch = it->match;
    }
    std::reverse(pieces.begin(), pieces.end());
    break;
  }
  }
  for (const Span &s : pieces)
    if (s.end > s.begin)
      out.push_back(text.slice(s.begin, s.end).str());
}

//===----------------------------------------------------------------------===//
// GPT-2 byte alphabet
//===----------------------------------------------------------------------===//

/// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the
/// other 68 bytes (controls, space, DEL, NBSP, soft hyphen) are moved to
/// U+0100.. in byte order, so that every byte is a visible character.
uint32_t byteToCodepoint(uint8_t byte) {
  auto printable = [](unsigned b) {
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  };
  if (printable(byte))
    return byte;
  uint32_t shifted = 0;
  for (unsigned b = 0; b < byte; ++b)
    shifted += !printable(b);
  return 0x100 + shifted;
}

//===----------------------------------------------------------------------===//
// Tokenizer
//===----------------------------------------------------------------------===//

struct PreTokenStep {
  enum Kind { Split, SplitString, ByteLevel, Metaspace } kind;
  // SplitString: cut at each occurrence of `literal`; the delimiter is
  // dropped, its own word, joined to the word before or after, or (Contiguous)
  // one word per run of delimiters.
  enum Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous } behavior =
      Isolated;
  std::string literal;
  SplitPattern pattern = SplitPattern::GPT2; // Split, or ByteLevel's regex
  bool addPrefixSpace = false;               // ByteLevel
  bool useRegex = false;                     // ByteLevel
  // Metaspace: spaces become `replacement`, which is prepended to a word
  // (never; always; or only to the text's first word, at offset 0), and with
  // `split` every replacement starts a new word.
  enum Prepend { Never, Always, First } prepend = Always;
  std::string replacement;
  bool split = true;
};

/// One step of the decoder chain that acts on each token by itself.
struct DecodeStep {
  enum Kind {
    ByteLevel,    // GPT-2 byte alphabet -> bytes
    Replace,      // `from` -> `to` (Replace, and Metaspace's replacement -> " ")
    ByteFallback, // "<0xNN>" -> the byte
    Strip,        // up to `start` leading, `stop` trailing `from`s (before Fuse)
  } kind;
  std::string from, to;
  int64_t start = 0, stop = 0;
};

struct AddedToken {
  std::string content;
  int32_t id;
  bool lstrip, rstrip, special;
};

struct Merge {
  int32_t rank;
  int32_t merged;
};

uint64_t pairKey(int32_t a, int32_t b) {
  return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
}

class HFTokenizer final : public Tokenizer {
public:
  std::vector<int32_t> encode(llvm::StringRef text) const override;
  std::string decodeToken(int32_t prev, int32_t id) const override;
  bool isSpecial(int32_t id) const override { return specialIds.contains(id); }
  int64_t vocabSize() const override { return size; }
  std::optional<int32_t> bosId() const override { return bos; }
  std::optional<int32_t> eosId() const override { return eos; }

  /// Finishes construction once the fields below are filled in.
  void finalize();

  llvm::StringMap<int32_t> vocab;
  llvm::DenseMap<uint64_t, Merge> merges;
  std::vector<AddedToken> added;
  llvm::DenseSet<int32_t> specialIds;
  std::vector<PreTokenStep> steps;
  std::optional<int32_t> unkId, bos, eos;
  bool ignoreMerges = false;
  bool byteFallback = false;
  bool fuseUnk = false;
  int64_t size = 0;
  hf::Normalizer normalizer;
  std::vector<DecodeStep> decodeSteps;
  // Leading copies of `stripFirstChar` that the decoder removes from the
  // decoded text's start (Strip after Fuse, Metaspace's prefix).
  int64_t stripFirst = 0;
  std::string stripFirstChar;

  /// Whether words are spelled in GPT-2's byte alphabet (a ByteLevel
  /// pre-tokenizer) rather than by their characters.
  bool byteLevel() const {
    return llvm::any_of(steps, [](const PreTokenStep &s) { return s.kind == PreTokenStep::ByteLevel; });
  }

private:
  /// The added token that starts at `pos`, longest first, or null.
  const AddedToken *addedTokenAt(llvm::StringRef text, size_t pos) const;
  /// `atStart`: the segment begins the text (Metaspace's prepend "first").
  void encodeSegment(llvm::StringRef segment, bool atStart, std::vector<int32_t> &ids) const;
  void encodeWord(llvm::StringRef word, std::vector<int32_t> &ids) const;
  /// The word's initial symbols when words are spelled by characters.
  void spellCharacters(llvm::StringRef word, std::vector<int32_t> &symbols) const;
  /// Appends the <0xNN> ids of `bytes` if all exist; false otherwise.
  bool appendByteFallback(llvm::StringRef bytes, std::vector<int32_t> &symbols) const;
  /// `piece` through the per-token decoder steps. Added tokens go through
  /// them too (Gemma's whitespace runs "▁▁" are added tokens), except the
  /// byte alphabet, which they are not spelled in.
  std::string decodePiece(llvm::StringRef piece, bool addedToken) const;

  // Byte -> its alphabet character (UTF-8), and that character's id or -1.
  std::array<std::string, 256> byteSymbols;
  std::array<int32_t, 256> byteIds;
  // Byte alphabet codepoint -> byte, -1 if not in the alphabet.
  std::array<int16_t, 0x200> codepointToByte;
  // Added tokens by first byte, longest first, for leftmost-longest matching
  // as the library's Aho-Corasick automaton does.
  std::array<std::vector<uint32_t>, 256> addedByFirstByte;
  llvm::DenseMap<int32_t, std::string> decoded;
};

void HFTokenizer::finalize() {
  codepointToByte.fill(-1);
  for (unsigned b = 0; b < 256; ++b) {
    uint32_t cp = byteToCodepoint(b);
    codepointToByte[cp] = b;
    unicode::appendCodepoint(byteSymbols[b], cp);
    auto it = vocab.find(byteSymbols[b]);
    byteIds[b] = it == vocab.end() ? -1 : it->second;
  }

  for (const auto &entry : vocab) {
    std::string &bytes = decoded[entry.second];
    if (!bytes.empty())
      continue; // two spellings for one id: keep the first seen
    bytes = decodePiece(entry.first(), /*addedToken=*/false);
  }

  for (uint32_t i = 0; i < added.size(); ++i) {
    decoded[added[i].id] = decodePiece(added[i].content, /*addedToken=*/true);
    addedByFirstByte[static_cast<uint8_t>(added[i].content[0])].push_back(i);
  }
  for (auto &bucket : addedByFirstByte)
    llvm::stable_sort(bucket, [&](uint32_t a, uint32_t b) {
      return added[a].content.size() > added[b].content.size();
    });
}

std::string HFTokenizer::decodePiece(llvm::StringRef piece, bool addedToken) const {
  std::string text = piece.str();
  for (const DecodeStep &step : decodeSteps) {
    switch (step.kind) {
    case DecodeStep::ByteLevel: {
      if (addedToken)
        break;
      std::string bytes;
      std::vector<CodeUnit> units = decodeUnits(text);
      for (size_t i = 0; i < units.size(); ++i) {
        uint32_t cp = units[i].cp;
        if (cp < codepointToByte.size() && codepointToByte[cp] >= 0) {
          bytes.push_back(static_cast<char>(codepointToByte[cp]));
          continue;
        }
        // Not a byte-alphabet character: keep the spelling as is.
        size_t end = i + 1 < units.size() ? units[i + 1].begin : text.size();
        bytes += llvm::StringRef(text).slice(units[i].begin, end);
      }
      text = std::move(bytes);
      break;
    }
    case DecodeStep::Replace: {
      std::string out;
      llvm::StringRef rest = text;
      for (size_t hit; (hit = rest.find(step.from)) != llvm::StringRef::npos;
           rest = rest.drop_front(hit + step.from.size()))
        out += (rest.take_front(hit) + step.to).str();
      text = out + rest.str();
      break;
    }
    case DecodeStep::ByteFallback:
      if (std::optional<uint8_t> byte = parseBytePiece(text))
        text = std::string(1, static_cast<char>(*byte));
      break;
    case DecodeStep::Strip: {
      llvm::StringRef ref = text;
      for (int64_t i = 0; i < step.start && ref.starts_with(step.from); ++i)
        ref = ref.drop_front(step.from.size());
      for (int64_t i = 0; i < step.stop && ref.ends_with(step.from); ++i)
        ref = ref.drop_back(step.from.size());
      text = ref.str();
      break;
    }
    }
  }
  return text;
}

const AddedToken *HFTokenizer::addedTokenAt(llvm::StringRef text,
                                            size_t pos) const {
  for (uint32_t index : addedByFirstByte[static_cast<uint8_t>(text[pos])])
    if (text.substr(pos).starts_with(added[index].content))
      return &added[index];
  return nullptr;
}

std::vector<int32_t> HFTokenizer::encode(llvm::StringRef text) const {
  std::vector<int32_t> ids;
  // The length of the White_Space codepoint (Rust's char::is_whitespace)
  // that starts at `at`, 0 if another one does.
  auto spaceAt = [&](size_t at) -> size_t {
    uint32_t cp;
    size_t n = unicode::decode(text.substr(at), cp);
    return n && unicode::isWhiteSpace(cp) ? n : 0;
  };
  size_t segmentBegin = 0;
  for (size_t pos = 0; pos < text.size();) {
    const AddedToken *token = addedTokenAt(text, pos);
    if (!token) {
      ++pos;
      continue;
    }
    // lstrip/rstrip let the token swallow neighbouring whitespace.
    size_t begin = pos, end = pos + token->content.size();
    if (token->lstrip)
      while (begin > segmentBegin) {
        size_t lead = begin - 1;
        while (lead > segmentBegin && (text[lead] & 0xC0) == 0x80)
          --lead;
        if (spaceAt(lead) != begin - lead)
          break;
        begin = lead;
      }
    if (token->rstrip)
      while (size_t n = spaceAt(end))
        end += n;
    encodeSegment(text.slice(segmentBegin, begin), segmentBegin == 0, ids);
    ids.push_back(token->id);
    segmentBegin = pos = end;
  }
  encodeSegment(text.substr(segmentBegin), segmentBegin == 0, ids);
  return ids;
}

void HFTokenizer::encodeSegment(llvm::StringRef rawSegment, bool atStart,
                                std::vector<int32_t> &ids) const {
  // The library normalizes the text between added tokens, each stretch by
  // itself (so Llama-2's Prepend("▁") also starts the text after "<s>").
  // Added tokens are matched in the raw text, which is exact for those marked
  // "normalized": false, as special tokens are.
  std::string segment = normalizer.apply(rawSegment);
  if (segment.empty())
    return;
  std::vector<std::string> pieces{segment}, next;
  for (const PreTokenStep &step : steps) {
    next.clear();
    for (size_t index = 0; index < pieces.size(); ++index) {
      std::string &piece = pieces[index];
      if (step.kind == PreTokenStep::Split) {
        splitByPattern(step.pattern, piece, next);
        continue;
      }
      if (step.kind == PreTokenStep::SplitString) {
        splitByString(piece, step.literal, step.behavior, next);
        continue;
      }
      if (step.kind == PreTokenStep::Metaspace) {
        std::string word;
        for (char c : piece)
          word += c == ' ' ? step.replacement : std::string(1, c);
        // "first": only the word at the text's offset 0 gets the prefix.
        bool prepend = step.prepend == PreTokenStep::Always ||
                       (step.prepend == PreTokenStep::First && atStart && index == 0);
        if (prepend && !llvm::StringRef(word).starts_with(step.replacement))
          word.insert(0, step.replacement);
        if (step.split) // each replacement starts a word
          splitByString(word, step.replacement, PreTokenStep::MergedWithNext, next);
        else
          next.push_back(std::move(word));
        continue;
      }
      if (step.addPrefixSpace && !llvm::StringRef(piece).starts_with(" "))
        piece.insert(piece.begin(), ' ');
      if (step.useRegex)
        splitByPattern(step.pattern, piece, next);
      else
        next.push_back(std::move(piece));
    }
    pieces.swap(next);
  }
  for (const std::string &piece : pieces)
    encodeWord(piece, ids);
}

// BPE on one pre-token, as the library's Word::merge_all: repeatedly merge
// the adjacent pair with the lowest merge rank, the leftmost on ties. A
// min-heap over a linked list keeps long pre-tokens (runs of spaces or
// punctuation) from going quadratic.
void HFTokenizer::encodeWord(llvm::StringRef word,
                             std::vector<int32_t> &ids) const {
  if (word.empty())
    return;
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  bool bytes = byteLevel();
  std::string spelled;
  if (bytes)
    for (char c : word)
      spelled += byteSymbols[static_cast<uint8_t>(c)];
  if (ignoreMerges) {
    // Llama 3 sets ignore_merges: a pre-token that is a whole vocabulary
    // entry maps to it directly.
    auto it = vocab.find(bytes ? llvm::StringRef(spelled) : word);
    if (it != vocab.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  if (!bytes) {
    spellCharacters(word, symbols);
  } else {
    for (size_t i = 0; i < word.size(); ++i) {
      uint8_t byte = static_cast<uint8_t>(word[i]);
      if (byteIds[byte] >= 0)
        symbols.push_back(byteIds[byte]);
      else if (!(byteFallback && appendByteFallback(word.substr(i, 1), symbols)) && unkId)
        symbols.push_back(*unkId); // without an unk token the library drops it
    }
  }

  size_t n = symbols.size();
  std::vector<int64_t> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = int64_t(i) - 1;
    next[i] = i + 1 < n ? int64_t(i) + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int64_t left, right;
    int32_t leftId, rightId, merged;
  };
  auto worse = [](const Candidate &a, const Candidate &b) {
    if (a.rank != b.rank)
      return a.rank > b.rank;
    return a.left > b.left;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(
      worse);
  auto consider = [&](int64_t left, int64_t right) {
    if (left < 0 || right < 0)
      return;
    auto it = merges.find(pairKey(symbols[left], symbols[right]));
    if (it == merges.end())
      return;
    heap.push({it->second.rank, left, right, symbols[left], symbols[right],
               it->second.merged});
  };
  for (size_t i = 0; i + 1 < n; ++i)
    consider(i, i + 1);
  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    if (symbols[c.right] < 0 || next[c.left] != c.right ||
        symbols[c.left] != c.leftId || symbols[c.right] != c.rightId)
      continue;
    symbols[c.left] = c.merged;
    symbols[c.right] = -1;
    next[c.left] = next[c.right];
    if (next[c.left] >= 0)
      prev[next[c.left]] = c.left;
    consider(prev[c.left], c.left);
    consider(c.left, next[c.left]);
  }
  for (int64_t i = n ? 0 : -1; i >= 0; i = next[i])
    ids.push_back(symbols[i]);
}

bool HFTokenizer::appendByteFallback(llvm::StringRef bytes,
                                     std::vector<int32_t> &symbols) const {
  size_t before = symbols.size();
  for (char c : bytes) {
    // Spelled as Rust's format!("<{:#04X}>", byte): "<0x0A>".
    std::string piece = "<0x";
    piece += llvm::hexdigit(static_cast<uint8_t>(c) >> 4);
    piece += llvm::hexdigit(static_cast<uint8_t>(c) & 15);
    piece += '>';
    auto it = vocab.find(piece);
    if (it == vocab.end()) {
      symbols.resize(before);
      return false;
    }
    symbols.push_back(it->second);
  }
  return true;
}

// The library's BPE::merge_word for character-spelled words: each character
// that is a vocabulary entry is a symbol; one that is not becomes its UTF-8
// bytes as <0xNN> tokens when byte_fallback is set and all exist, else the
// unk token (consecutive unks fused into one with fuse_unk), else nothing.
void HFTokenizer::spellCharacters(llvm::StringRef word, std::vector<int32_t> &symbols) const {
  std::vector<CodeUnit> units = decodeUnits(word);
  bool lastWasUnk = false;
  for (size_t i = 0; i < units.size(); ++i) {
    size_t end = i + 1 < units.size() ? units[i + 1].begin : word.size();
    llvm::StringRef ch = word.slice(units[i].begin, end);
    auto it = vocab.find(ch);
    if (it != vocab.end()) {
      symbols.push_back(it->second);
      lastWasUnk = false;
      continue;
    }
    if (byteFallback && appendByteFallback(ch, symbols)) {
      lastWasUnk = false;
      continue;
    }
    if (unkId && !(fuseUnk && lastWasUnk))
      symbols.push_back(*unkId);
    lastWasUnk = unkId.has_value();
  }
}

std::string HFTokenizer::decodeToken(int32_t prev, int32_t id) const {
  // INT32_MAX and INT32_MIN are the DenseMap's empty and tombstone keys.
  if (id < 0 || id >= size)
    return std::string();
  auto it = decoded.find(id);
  if (it == decoded.end())
    return std::string();
  // The decoder strips the prefix from the start of the decoded text; when
  // decoding token by token that is the first token, or the first after BOS
  // (what skip_special_tokens decodes, and what SentencePiece's decoder does).
  llvm::StringRef text = it->second;
  if (stripFirst > 0 && (prev < 0 || (bos && prev == *bos)))
    for (int64_t i = 0; i < stripFirst && text.starts_with(stripFirstChar); ++i)
      text = text.drop_front(stripFirstChar.size());
  return text.str();
}

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

/// Builds errors that name the file, so a caller loading several models can
/// tell which one is broken.
class Loader {
public:
  explicit Loader(llvm::StringRef path) : path(path) {}

  llvm::Expected<std::unique_ptr<Tokenizer>> load();

private:
  llvm::Error fail(const llvm::Twine &what) const {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   (path + ": " + what).str());
  }
  llvm::Expected<int32_t> parseId(const llvm::json::Value *value,
                                  const llvm::Twine &field) const;
  llvm::Error loadModel(const llvm::json::Object &model, HFTokenizer &tok);
  llvm::Error loadAddedTokens(const llvm::json::Object &root,
                              HFTokenizer &tok);
  llvm::Error loadPreTokenizer(const llvm::json::Value *value,
                               const llvm::Twine &field, HFTokenizer &tok);
  llvm::Error parseMetaspace(const llvm::json::Object &object, const llvm::Twine &field,
                             PreTokenStep &step) const;
  llvm::Error loadDecoder(const llvm::json::Value *value, const llvm::Twine &field,
                          HFTokenizer &tok, bool &fused);

  llvm::StringRef path;
};

llvm::Expected<int32_t> Loader::parseId(const llvm::json::Value *value,
                                        const llvm::Twine &field) const {
  std::optional<int64_t> id = value ? value->getAsInteger() : std::nullopt;
  if (!id)
    return fail(field + " is missing or not an integer");
  if (*id < 0 || *id >= std::numeric_limits<int32_t>::max())
    return fail(llvm::formatv("{0} is {1}, outside [0, 2^31-1)", field.str(),
                              *id));
  return static_cast<int32_t>(*id);
}

llvm::Error Loader::loadModel(const llvm::json::Object &model,
                              HFTokenizer &tok) {
  std::optional<llvm::StringRef> type = model.getString("type");
  if (!type)
    return fail("model.type is missing; only \"BPE\" is supported");
  if (*type != "BPE")
    return fail("model.type is \"" + *type + "\"; only \"BPE\" is supported");

  for (llvm::StringRef field : {"continuing_subword_prefix",
                                "end_of_word_suffix"}) {
    std::optional<llvm::StringRef> affix = model.getString(field);
    if (affix && !affix->empty())
      return fail("model." + field + " \"" + *affix + "\" is not supported");
  }
  tok.ignoreMerges = model.getBoolean("ignore_merges").value_or(false);
  tok.byteFallback = model.getBoolean("byte_fallback").value_or(false);
  tok.fuseUnk = model.getBoolean("fuse_unk").value_or(false);

  const llvm::json::Object *vocab = model.getObject("vocab");
  if (!vocab)
    return fail("model.vocab is missing or not an object");
  for (const auto &entry : *vocab) {
    llvm::StringRef token = entry.first;
    llvm::Expected<int32_t> id =
        parseId(&entry.second, "model.vocab[\"" + token + "\"]");
    if (!id)
      return id.takeError();
    tok.vocab[token] = *id;
    tok.size = std::max<int64_t>(tok.size, int64_t(*id) + 1);
  }

  if (std::optional<llvm::StringRef> unk = model.getString("unk_token")) {
    auto it = tok.vocab.find(*unk);
    if (it == tok.vocab.end())
      return fail("model.unk_token \"" + *unk + "\" is not in model.vocab");
    tok.unkId = it->second;
  }

  const llvm::json::Array *merges = model.getArray("merges");
  if (!merges)
    return fail("model.merges is missing or not an array");
  tok.merges.reserve(merges->size());
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    const llvm::json::Value &entry = (*merges)[rank];
    std::string field = llvm::formatv("model.merges[{0}]", rank).str();
    llvm::StringRef left, right;
    if (std::optional<llvm::StringRef> line = entry.getAsString()) {
      std::tie(left, right) = line->split(' ');
      if (left.empty() || right.empty() || right.contains(' '))
        return fail(field + " \"" + *line +
                    "\" is not two tokens separated by one space");
    } else if (const llvm::json::Array *pair = entry.getAsArray();
               pair && pair->size() == 2 && (*pair)[0].getAsString() &&
               (*pair)[1].getAsString()) {
      left = *(*pair)[0].getAsString();
      right = *(*pair)[1].getAsString();
    } else {
      return fail(field + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    auto lookup = [&](llvm::StringRef token) -> llvm::Expected<int32_t> {
      auto it = tok.vocab.find(token);
      if (it == tok.vocab.end())
        return fail(llvm::Twine(field) + ": \"" + token +
                    "\" is not in model.vocab");
      return it->second;
    };
    llvm::Expected<int32_t> a = lookup(left);
    if (!a)
      return a.takeError();
    llvm::Expected<int32_t> b = lookup(right);
    if (!b)
      return b.takeError();
    llvm::Expected<int32_t> merged = lookup((left + right).str());
    if (!merged)
      return merged.takeError();
    // The first rank wins if a pair is listed twice.
    tok.merges.try_emplace(pairKey(*a, *b), Merge{int32_t(rank), *merged});
  }
  return llvm::Error::success();
}

llvm::Error Loader::loadAddedTokens(const llvm::json::Object &root,
                                    HFTokenizer &tok) {
  const llvm::json::Value *value = root.get("added_tokens");
  if (!value || value->kind() == llvm::json::Value::Null)
    return llvm::Error::success();
  const llvm::json::Array *tokens = value->getAsArray();
  if (!tokens)
    return fail("added_tokens is not an array");
  for (size_t i = 0; i < tokens->size(); ++i) {
    std::string field = llvm::formatv("added_tokens[{0}]", i).str();
    const llvm::json::Object *object = (*tokens)[i].getAsObject();
    if (!object)
      return fail(field + " is not an object");
    llvm::Expected<int32_t> id = parseId(object->get("id"), field + ".id");
    if (!id)
      return id.takeError();
    std::optional<llvm::StringRef> content = object->getString("content");
    if (!content || content->empty())
      return fail(field + ".content is missing or empty");
    // single_word and normalized are not modelled: no shipped tokenizer we
    // target sets single_word, and all are matched in the raw text, which
    // is what "normalized": false (every special token) asks.
    tok.added.push_back({content->str(), *id,
                         object->getBoolean("lstrip").value_or(false),
                         object->getBoolean("rstrip").value_or(false),
                         object->getBoolean("special").value_or(false)});
    if (tok.added.back().special)
      tok.specialIds.insert(*id);
    tok.size = std::max<int64_t>(tok.size, int64_t(*id) + 1);
  }

  // BOS/EOS are not part of tokenizer.json (they live in tokenizer_config.json
  // and generation_config.json); guess them from the usual special-token
  // names, first match wins. Qwen and GPT-2 use no BOS; "<|endoftext|>" is
  // their end-of-document token, and "<|im_end|>" ends a chat turn.
  auto find = [&](std::initializer_list<llvm::StringRef> names)
      -> std::optional<int32_t> {
    for (llvm::StringRef name : names)
      for (const AddedToken &token : tok.added)
        if (token.content == name)
          return token.id;
    return std::nullopt;
  };
  tok.bos = find({"<|begin_of_text|>", "<s>"});
  tok.eos = find({"<|end_of_text|>", "<|endoftext|>", "</s>", "<|im_end|>"});
  return llvm::Error::success();
}

llvm::Error Loader::loadPreTokenizer(const llvm::json::Value *value,
                                     const llvm::Twine &field,
                                     HFTokenizer &tok) {
  if (!value || value->kind() == llvm::json::Value::Null)
    return llvm::Error::success(); // Llama-2: the normalizer did the work
  const llvm::json::Object *object = value->getAsObject();
  if (!object)
    return fail(field + " is not an object");
  std::optional<llvm::StringRef> type = object->getString("type");
  if (!type)
    return fail(field + ".type is missing");

  if (*type == "Sequence") {
    const llvm::json::Array *list = object->getArray("pretokenizers");
    if (!list)
      return fail(field + ".pretokenizers is missing or not an array");
    for (size_t i = 0; i < list->size(); ++i)
      if (llvm::Error err = loadPreTokenizer(
              &(*list)[i], field + ".pretokenizers[" + llvm::Twine(i) + "]",
              tok))
        return err;
    return llvm::Error::success();
  }

  if (*type == "ByteLevel") {
    PreTokenStep step{PreTokenStep::ByteLevel};
    // The library's defaults when a field is absent.
    step.addPrefixSpace = object->getBoolean("add_prefix_space").value_or(true);
    step.useRegex = object->getBoolean("use_regex").value_or(true);
    step.pattern = SplitPattern::GPT2;
    tok.steps.push_back(step);
    return llvm::Error::success();
  }

  if (*type == "Split") {
    const llvm::json::Object *pattern = object->getObject("pattern");
    std::optional<llvm::StringRef> regex =
        pattern ? pattern->getString("Regex") : std::nullopt;
    const llvm::json::Value *literal = pattern ? pattern->get("String") : nullptr;
    if (object->getBoolean("invert").value_or(false))
      return fail(field + ".invert true is not supported");
    if (literal) {
      // Gemma 3: split on a plain string, with any delimiter behaviour.
      PreTokenStep step{PreTokenStep::SplitString};
      std::optional<llvm::StringRef> behavior = object->getString("behavior");
      static const std::pair<llvm::StringRef, PreTokenStep::Behavior> kBehaviors[] = {
          {"Removed", PreTokenStep::Removed},
          {"Isolated", PreTokenStep::Isolated},
          {"MergedWithPrevious", PreTokenStep::MergedWithPrevious},
          {"MergedWithNext", PreTokenStep::MergedWithNext},
          {"Contiguous", PreTokenStep::Contiguous}};
      const auto *known = llvm::find_if(
          kBehaviors, [&](const auto &b) { return behavior && b.first == *behavior; });
      if (known == std::end(kBehaviors))
        return fail(field + ".behavior \"" + behavior.value_or("") +
                    "\" is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, "
                    "Contiguous");
      if (!literal->getAsString() || literal->getAsString()->empty())
        return fail(field + ".pattern.String is not a non-empty string");
      step.behavior = known->second;
      step.literal = literal->getAsString()->str();
      tok.steps.push_back(step);
      return llvm::Error::success();
    }
    if (!regex)
      return fail(field + ".pattern has neither Regex nor String");
    const KnownPattern *known =
        llvm::find_if(kKnownPatterns,
                      [&](const KnownPattern &k) { return k.regex == *regex; });
    if (known == std::end(kKnownPatterns))
      return fail(field + ".pattern.Regex \"" + *regex +
                  "\" is not one of the GPT-2, Llama 3 or Qwen2 patterns");
    std::optional<llvm::StringRef> behavior = object->getString("behavior");
    if (behavior.value_or("") != "Isolated")
      return fail(field + ".behavior \"" + behavior.value_or("") +
                  "\" is not supported; expected \"Isolated\"");
    PreTokenStep step{PreTokenStep::Split};
    step.pattern = known->kind;
    tok.steps.push_back(step);
    return llvm::Error::success();
  }

  if (*type == "Metaspace") {
    PreTokenStep step{PreTokenStep::Metaspace};
    if (llvm::Error err = parseMetaspace(*object, field, step))
      return err;
    tok.steps.push_back(step);
    return llvm::Error::success();
  }

  return fail(field + ".type \"" + *type +
              "\" is not supported; expected ByteLevel, Split, Metaspace or Sequence");
}

llvm::Error Loader::parseMetaspace(const llvm::json::Object &object, const llvm::Twine &field,
                                   PreTokenStep &step) const {
  step.replacement = object.getString("replacement").value_or("\xE2\x96\x81").str(); // ▁
  if (step.replacement.empty())
    return fail(field + ".replacement is empty");
  step.split = object.getBoolean("split").value_or(true);
  // Files written before prepend_scheme existed say add_prefix_space.
  step.prepend = object.getBoolean("add_prefix_space").value_or(true) ? PreTokenStep::Always
                                                                       : PreTokenStep::Never;
  if (std::optional<llvm::StringRef> scheme = object.getString("prepend_scheme")) {
    if (*scheme == "always")
      step.prepend = PreTokenStep::Always;
    else if (*scheme == "first")
      step.prepend = PreTokenStep::First;
    else if (*scheme == "never")
      step.prepend = PreTokenStep::Never;
    else
      return fail(field + ".prepend_scheme \"" + *scheme +
                  "\" is not one of \"always\", \"first\", \"never\"");
  }
  return llvm::Error::success();
}

llvm::Error Loader::loadDecoder(const llvm::json::Value *value, const llvm::Twine &field,
                                HFTokenizer &tok, bool &fused) {
  const llvm::json::Object *object = value ? value->getAsObject() : nullptr;
  std::optional<llvm::StringRef> type = object ? object->getString("type") : std::nullopt;
  if (!type)
    return fail(field + " is not an object with a \"type\"");

  if (*type == "Sequence") {
    const llvm::json::Array *list = object->getArray("decoders");
    if (!list)
      return fail(field + ".decoders is missing or not an array");
    for (size_t i = 0; i < list->size(); ++i)
      if (llvm::Error err = loadDecoder(&(*list)[i], field + ".decoders[" + llvm::Twine(i) + "]",
                                        tok, fused))
        return err;
    return llvm::Error::success();
  }
  if (*type == "ByteLevel") {
    tok.decodeSteps.push_back({DecodeStep::ByteLevel});
    return llvm::Error::success();
  }
  if (*type == "ByteFallback") {
    tok.decodeSteps.push_back({DecodeStep::ByteFallback});
    return llvm::Error::success();
  }
  if (*type == "Fuse") {
    // Concatenation, which is what decoding token by token does anyway; what
    // follows it acts on the whole text.
    fused = true;
    return llvm::Error::success();
  }
  if (*type == "Replace") {
    const llvm::json::Object *pattern = object->getObject("pattern");
    std::optional<llvm::StringRef> from = pattern ? pattern->getString("String") : std::nullopt;
    std::optional<llvm::StringRef> content = object->getString("content");
    if (!from || from->empty() || !content)
      return fail(field + " needs pattern.String (non-empty) and content; Regex patterns are "
                          "not supported");
    tok.decodeSteps.push_back({DecodeStep::Replace, from->str(), content->str()});
    return llvm::Error::success();
  }
  if (*type == "Strip") {
    std::optional<llvm::StringRef> content = object->getString("content");
    std::optional<int64_t> start = object->getInteger("start");
    std::optional<int64_t> stop = object->getInteger("stop");
    if (!content || content->empty() || !start || !stop || *start < 0 || *stop < 0 ||
        *start > 1024 || *stop > 1024)
      return fail(field + " needs a content character and start/stop counts in [0, 1024]");
    if (!fused) {
      tok.decodeSteps.push_back({DecodeStep::Strip, content->str(), "", *start, *stop});
      return llvm::Error::success();
    }
    // After Fuse, Strip acts on the whole text: its start is the first
    // token's. The end of a streamed text is not known, so no `stop`.
    if (*stop != 0)
      return fail(field + ".stop " + llvm::Twine(*stop) +
                  " after Fuse is not supported (a streamed text has no known end)");
    if (tok.stripFirst > 0 && tok.stripFirstChar != *content)
      return fail(field + ": a second leading strip of another character is not supported");
    tok.stripFirst += *start;
    tok.stripFirstChar = content->str();
    return llvm::Error::success();
  }
  if (*type == "Metaspace") {
    PreTokenStep step{PreTokenStep::Metaspace};
    if (llvm::Error err = parseMetaspace(*object, field, step))
      return err;
    tok.decodeSteps.push_back({DecodeStep::Replace, step.replacement, " "});
    // The first token loses the space its prefix became.
    if (step.prepend != PreTokenStep::Never) {
      if (tok.stripFirst > 0 && tok.stripFirstChar != " ")
        return fail(field + ": a second leading strip of another character is not supported");
      tok.stripFirst = std::max<int64_t>(tok.stripFirst, 1);
      tok.stripFirstChar = " ";
    }
    return llvm::Error::success();
  }
  return fail(field + ".type \"" + *type +
              "\" is not supported; expected ByteLevel, Metaspace, Replace, ByteFallback, "
              "Fuse, Strip or Sequence");
}

llvm::Expected<std::unique_ptr<Tokenizer>> Loader::load() {
  auto buffer = readInputFile(path, /*isText=*/false, /*requiresNullTerminator=*/false);
  if (!buffer)
    return fail("cannot read tokenizer: " + buffer.getError().message());
  llvm::Expected<llvm::json::Value> json =
      parseJson((*buffer)->getBuffer());
  if (!json)
    return fail("not valid JSON: " + llvm::toString(json.takeError()));
  const llvm::json::Object *root = json->getAsObject();
  if (!root)
    return fail("the top level is not a JSON object");

  auto tok = std::make_unique<HFTokenizer>();
  const llvm::json::Object *model = root->getObject("model");
  if (!model)
    return fail("model is missing or not an object");
  if (llvm::Error err = loadModel(*model, *tok))
    return err;
  if (llvm::Error err = loadAddedTokens(*root, *tok))
    return err;
  llvm::Expected<hf::Normalizer> normalizer =
      hf::Normalizer::parse(root->get("normalizer"), "normalizer");
  if (!normalizer)
    return fail(llvm::toString(normalizer.takeError()));
  tok->normalizer = std::move(*normalizer);
  if (llvm::Error err =
          loadPreTokenizer(root->get("pre_tokenizer"), "pre_tokenizer", *tok))
    return err;
  const llvm::json::Value *decoder = root->get("decoder");
  bool fused = false;
  if (decoder && decoder->kind() != llvm::json::Value::Null) {
    if (llvm::Error err = loadDecoder(decoder, "decoder", *tok, fused))
      return err;
  } else if (tok->byteLevel()) {
    // Files that predate the decoder field still decode their byte alphabet.
    tok->decodeSteps.push_back({DecodeStep::ByteLevel});
  }
  tok->finalize();
  return std::unique_ptr<Tokenizer>(std::move(tok));
}

} // namespace

llvm::Expected<std::unique_ptr<Tokenizer>>
mlir::attnedit::loadHFTokenizer(llvm::StringRef path) {
  return Loader(path).load();
}
