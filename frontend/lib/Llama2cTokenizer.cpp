//===- Llama2cTokenizer.cpp - llama2.c tok.bin tokenizer -------------------===//
//
// Reads llama2.c's tokenizer export and encodes exactly as run.c's encode()
// does, so that prompts tokenize to the ids the reference implementation feeds
// its model. File layout (little-endian): int32 max_token_length, then per id
// float32 score, int32 byte length, that many bytes. The vocabulary size is
// not stored; it comes from the checkpoint.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/Tokenizer.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/InputFile.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstring>
#include <limits>
#include <queue>

using namespace mlir::attnedit;

namespace {

// llama2.c's sentencepiece export reserves ids 0-2 for <unk>, <s>, </s>.
constexpr int32_t kUnkId = 0;
constexpr int32_t kBosId = 1;
constexpr int32_t kEosId = 2;
// Byte-fallback pieces <0x00>..<0xFF> follow the three specials.
constexpr int32_t kFirstByteId = 3;
// run.c starts its best-score search at -1e10, so a merge whose score is not
// strictly greater never happens (NaN scores never merge either).
constexpr float kMinMergeScore = -1e10f;

class Llama2cTokenizer final : public Tokenizer {
public:
  Llama2cTokenizer(std::vector<std::string> pieces, std::vector<float> scores)
      : pieces(std::move(pieces)), scores(std::move(scores)) {
    // run.c finds pieces by bsearch over a strcmp-sorted copy; which id it
    // returns for a duplicated piece is unspecified, we take the first.
    for (size_t id = 0; id < this->pieces.size(); ++id)
      index.try_emplace(this->pieces[id], static_cast<int32_t>(id));
  }

  std::vector<int32_t> encode(llvm::StringRef text) const override;
  std::string decodeToken(int32_t prev, int32_t id) const override;
  int64_t vocabSize() const override { return pieces.size(); }
  std::optional<int32_t> bosId() const override {
    return vocabSize() > kBosId ? std::optional<int32_t>(kBosId) : std::nullopt;
  }
  std::optional<int32_t> eosId() const override {
    return vocabSize() > kEosId ? std::optional<int32_t>(kEosId) : std::nullopt;
  }

private:
  /// Id of the piece spelled `s`, or -1.
  int32_t lookup(llvm::StringRef s) const {
    auto it = index.find(s);
    return it == index.end() ? -1 : it->second;
  }

  /// Byte-fallback id of `byte`. run.c assumes the 256 byte pieces exist; in a
  /// smaller vocabulary it would read out of bounds, we emit <unk> instead.
  int32_t byteId(uint8_t byte) const {
    int64_t id = int64_t(byte) + kFirstByteId;
    return id < vocabSize() ? static_cast<int32_t>(id) : kUnkId;
  }

  void mergePairs(std::vector<int32_t> &tokens) const;

  std::vector<std::string> pieces;
  std::vector<float> scores;
  llvm::StringMap<int32_t> index;
};

std::vector<int32_t> Llama2cTokenizer::encode(llvm::StringRef text) const {
  std::vector<int32_t> tokens;
  if (text.empty())
    return tokens;

  // SentencePiece's add_dummy_prefix: run.c prepends the id of " ". A
  // vocabulary without a " " piece would make run.c emit id -1; we fall back
  // to the byte piece of ' ', as for any other missing codepoint.
  int32_t space = lookup(" ");
  tokens.push_back(space >= 0 ? space : byteId(' '));

  // run.c's UTF-8 split: a unit is any byte plus the continuation bytes
  // (10xxxxxx) after it, at most 4 bytes in all. It does not validate the
  // leading byte, so stray continuation bytes join whatever precedes them.
  size_t size = text.size();
  for (size_t begin = 0; begin < size;) {
    size_t len = 1;
    while (begin + len < size && len < 4 &&
           (static_cast<uint8_t>(text[begin + len]) & 0xC0) == 0x80)
      ++len;
    llvm::StringRef unit = text.substr(begin, len);
    int32_t id = lookup(unit);
    if (id >= 0) {
      tokens.push_back(id);
    } else {
      for (char byte : unit)
        tokens.push_back(byteId(static_cast<uint8_t>(byte)));
    }
    begin += len;
  }

  mergePairs(tokens);
  return tokens;
}

// run.c rescans the whole sequence after every merge and takes the adjacent
// pair whose concatenated piece has the highest score, the leftmost one on
// ties. That is quadratic; a max-heap keyed by (score, left position) over a
// linked list makes the same choice at every step in O(n log n): only the two
// pairs touching a merge change, and positions keep their left-to-right order.
void Llama2cTokenizer::mergePairs(std::vector<int32_t> &tokens) const {
  size_t n = tokens.size();
  if (n < 2)
    return;
  std::vector<int32_t> ids = tokens;
  std::vector<int64_t> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = int64_t(i) - 1;
    next[i] = i + 1 < n ? int64_t(i) + 1 : -1;
  }

  struct Candidate {
    float score;
    int64_t left, right;
    int32_t leftId, rightId, merged;
  };
  auto worse = [](const Candidate &a, const Candidate &b) {
    if (a.score != b.score)
      return a.score < b.score;
    return a.left > b.left;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(worse)> heap(
      worse);
  std::string joined;
  auto consider = [&](int64_t left, int64_t right) {
    if (left < 0 || right < 0)
      return;
    joined = pieces[ids[left]];
    joined += pieces[ids[right]];
    int32_t merged = lookup(joined);
    if (merged < 0 || !(scores[merged] > kMinMergeScore))
      return;
    heap.push({scores[merged], left, right, ids[left], ids[right], merged});
  };
  for (size_t i = 0; i + 1 < n; ++i)
    consider(i, i + 1);

  while (!heap.empty()) {
    Candidate c = heap.top();
    heap.pop();
    // Skip candidates that a previous merge invalidated: the right symbol was
    // absorbed, or either side now holds a different piece.
    if (ids[c.right] < 0 || next[c.left] != c.right ||
        ids[c.left] != c.leftId || ids[c.right] != c.rightId)
      continue;
    ids[c.left] = c.merged;
    ids[c.right] = -1;
    next[c.left] = next[c.right];
    if (next[c.left] >= 0)
      prev[next[c.left]] = c.left;
    consider(prev[c.left], c.left);
    consider(c.left, next[c.left]);
  }

  tokens.clear();
  for (int64_t i = 0; i >= 0; i = next[i])
    tokens.push_back(ids[i]);
}

std::string Llama2cTokenizer::decodeToken(int32_t prev, int32_t id) const {
  if (id < 0 || id >= vocabSize())
    return {};
  llvm::StringRef piece = pieces[id];
  // At the start and after BOS, SentencePiece's decoder drops the
  // dummy-prefix space (as our other tokenizers do).
  if ((prev < 0 || prev == kBosId) && piece.starts_with(" "))
    piece = piece.drop_front();
  // run.c matches with sscanf("<0x%02hhX>"), which also accepts malformed
  // spellings; only the byte-fallback pieces have this prefix in real
  // vocabularies, so the exact form is enough.
  if (std::optional<uint8_t> byte = parseBytePiece(piece))
    return std::string(1, static_cast<char>(*byte));
  return piece.str();
}

} // namespace

llvm::Expected<std::unique_ptr<Tokenizer>>
mlir::attnedit::loadLlama2cTokenizer(llvm::StringRef path,
                                     std::optional<int64_t> vocabSize) {
  if (vocabSize && (*vocabSize <= 0 || *vocabSize > std::numeric_limits<int32_t>::max()))
    return makeError(path, llvm::formatv("invalid vocabulary size {0}; it "
                                         "must be in [1, 2^31)",
                                         *vocabSize));
  auto buffer = readInputFile(path, /*isText=*/false, /*requiresNullTerminator=*/false);
  if (!buffer)
    return makeError(path, "cannot read tokenizer: " +
                               buffer.getError().message());
  llvm::StringRef data = (*buffer)->getBuffer();

  size_t offset = 0;
  auto readI32 = [&] {
    int32_t v = llvm::support::endian::read32le(data.data() + offset);
    offset += 4;
    return v;
  };
  auto readF32 = [&] {
    uint32_t bits = llvm::support::endian::read32le(data.data() + offset);
    offset += 4;
    float v;
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  };

  if (data.size() < 4)
    return makeError(path, llvm::formatv("truncated: {0} bytes, too short for "
                                         "the int32 max_token_length header",
                                         data.size()));
  int32_t maxTokenLength = readI32();
  if (maxTokenLength < 0)
    return makeError(path, llvm::formatv("negative max_token_length {0}",
                                         maxTokenLength));

  std::vector<std::string> pieces;
  std::vector<float> scores;
  // Each entry takes at least 8 bytes: a bogus vocabulary size must not make
  // us reserve more than the file could hold.
  size_t plausible = std::min<size_t>(vocabSize.value_or(SIZE_MAX), data.size() / 8);
  pieces.reserve(plausible);
  scores.reserve(plausible);
  std::string ofSize = vocabSize ? llvm::formatv(" of {0}", *vocabSize).str() : "";
  for (int64_t i = 0; vocabSize ? i < *vocabSize : offset < data.size(); ++i) {
    if (i >= std::numeric_limits<int32_t>::max())
      return makeError(path, "more than 2^31 - 1 entries");
    if (data.size() - offset < 8)
      return makeError(path,
                       llvm::formatv("truncated at entry {0}{1} (offset {2}){3}", i, ofSize,
                                     offset, vocabSize ? "; is the vocabulary size right?" : ""));
    float score = readF32();
    int32_t length = readI32();
    if (length < 0)
      return makeError(path, llvm::formatv("entry {0} has negative length {1}",
                                           i, length));
    if (length > maxTokenLength)
      return makeError(path, llvm::formatv("entry {0} has length {1}, more "
                                           "than max_token_length {2}",
                                           i, length, maxTokenLength));
    if (data.size() - offset < size_t(length))
      return makeError(path,
                       llvm::formatv("truncated at entry {0}{1}: its {2} "
                                     "bytes run past the end of the file",
                                     i, ofSize, length));
    pieces.push_back(data.substr(offset, length).str());
    scores.push_back(score);
    offset += length;
  }
  if (offset != data.size())
    return makeError(path,
                     llvm::formatv("{0} trailing bytes after {1} entries; the "
                                   "file holds more entries than the "
                                   "vocabulary size {1}",
                                   data.size() - offset, *vocabSize));

  return std::make_unique<Llama2cTokenizer>(std::move(pieces),
                                            std::move(scores));
}
