//===- StopStringScannerTest.cpp - where a stop string ends the output ----===//
//
// The output ends where a stop string begins (or after it, included), inside
// a token if need be, as OpenAI's and vLLM's do: the tokens wholly before
// that point are settled and the rest of the text is the tail. Text a stop
// string may begin with is held until it is clear. Tokens spell fixed text
// here, so that each case reads as the text it streams.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Runtime/Inference/Generation.h"

#include <gtest/gtest.h>

using namespace mlir::attnedit;

namespace {

/// Token i spells pieces[i], whatever comes before it; a piece in <|...|>
/// is a special token.
class PieceTokenizer : public Tokenizer {
public:
  explicit PieceTokenizer(std::vector<std::string> pieces) : pieces(std::move(pieces)) {}
  std::vector<int32_t> encode(llvm::StringRef) const override { return {}; }
  std::string decodeToken(int32_t, int32_t id) const override { return pieces.at(id); }
  bool isSpecial(int32_t id) const override {
    return llvm::StringRef(pieces.at(id)).starts_with("<|");
  }
  int64_t vocabSize() const override { return pieces.size(); }
  std::optional<int32_t> bosId() const override { return std::nullopt; }
  std::optional<int32_t> eosId() const override { return std::nullopt; }

private:
  std::vector<std::string> pieces;
};

GenerationOptions withStops(std::vector<std::string> stops, bool include = false) {
  GenerationOptions options;
  options.stopStrings = std::move(stops);
  options.includeStopString = include;
  return options;
}

/// What a scan of `pieces` (as tokens 0, 1, ...) under `stops` gives: the
/// settled tokens' text, then "|" and the tail once a stop string ended it.
std::string scan(std::vector<std::string> pieces, std::vector<std::string> stops,
                 bool include = false, size_t minTokens = 0, bool skipSpecial = true) {
  PieceTokenizer tok(pieces);
  GenerationOptions options = withStops(std::move(stops), include);
  options.skipSpecialTokens = skipSpecial;
  StopStringScanner scanner(&tok, options);
  std::vector<int32_t> generated;
  for (int32_t id = 0; id < (int32_t)pieces.size(); ++id) {
    bool stopped = scanner.append(id - 1, id, generated.size() >= minTokens);
    generated.push_back(id);
    if (stopped) {
      std::string text;
      for (size_t i = 0; i < scanner.settled(); ++i)
        text += tok.pieceOf(-1, i, skipSpecial);
      return text + "|" + scanner.tail();
    }
  }
  return tok.decode(generated, skipSpecial);
}

TEST(StopStringScanner, EndsWhereTheStopBegins) {
  EXPECT_EQ(scan({"ab", "cd", "ef"}, {"cd"}), "ab|");
  EXPECT_EQ(scan({"he", "llo wor", "ld"}, {"wor"}), "he|llo ");
  EXPECT_EQ(scan({"a", " pa", "rk", "!"}, {"park"}), "a| ");
  EXPECT_EQ(scan({"a", " pa", "rk", "!"}, {"ark"}), "a| p");
  EXPECT_EQ(scan({"stop"}, {"stop"}), "|");
}

TEST(StopStringScanner, IncludesTheStopWhenAsked) {
  EXPECT_EQ(scan({"he", "llo wor", "ld"}, {"wor"}, /*include=*/true), "hello wor|");
  EXPECT_EQ(scan({"ab", "cd", "ef"}, {"cd"}, /*include=*/true), "abcd|");
}

TEST(StopStringScanner, TheStopEndingTheOutputFirstWins) {
  EXPECT_EQ(scan({"a li", "ttle"}, {"ttle", " li"}), "|a");
  EXPECT_EQ(scan({"a li", "ttle"}, {"ttle", "li"}, /*include=*/true), "a li|");
  EXPECT_EQ(scan({"a li", "ttle"}, {"ttle", "a li"}, /*include=*/true), "a li|");
  EXPECT_EQ(scan({"a little"}, {"ttle", "a li"}, /*include=*/true), "|a li");
}

TEST(StopStringScanner, HoldsWhatAStopMayBeginWith) {
  PieceTokenizer tok({"x", " pa", "ty", "rk"});
  StopStringScanner scanner(&tok, withStops({"park"}));
  EXPECT_FALSE(scanner.append(-1, 0));
  EXPECT_EQ(scanner.settled(), 1u);
  EXPECT_FALSE(scanner.append(0, 1));
  EXPECT_EQ(scanner.settled(), 1u); // " pa" may begin "park"
  EXPECT_FALSE(scanner.append(1, 2));
  EXPECT_EQ(scanner.settled(), 3u); // " paty" cannot
  EXPECT_EQ(scanner.tail(), "");
}

TEST(StopStringScanner, LooksForStopsOnlyAfterMinTokens) {
  // "cd" ends in the second token, before two tokens came: passed over.
  EXPECT_EQ(scan({"ab", "cd", "ef", "cd"}, {"cd"}, false, /*minTokens=*/2), "abcdef|");
  // A stop ending after them counts, though it begins before.
  EXPECT_EQ(scan({"ab", "c", "d"}, {"bcd"}, false, /*minTokens=*/2), "|a");
}

TEST(StopStringScanner, EmptyAndByteTokens) {
  EXPECT_EQ(scan({"a", "", "b", "", "c"}, {"bc"}), "a|");
  // "é" spelled by two byte tokens.
  EXPECT_EQ(scan({"caf", "\xc3", "\xa9", "!"}, {"\xc3\xa9"}), "caf|");
  EXPECT_EQ(scan({"no stop"}, {"xyz"}), "no stop");
}

TEST(StopStringScanner, MatchesTheTextShownWithoutSpecialTokens) {
  EXPECT_EQ(scan({"a", "<|x|>", "b"}, {"ab"}), "|");
  EXPECT_EQ(scan({"a", "<|x|>", "b"}, {"x|"}), "ab");
  EXPECT_EQ(scan({"a", "<|x|>", "b"}, {"x|"}, false, 0, /*skipSpecial=*/false), "a|<|");
}

TEST(StopStringScanner, ReleasesSettledTokensWithTheirPredecessor) {
  PieceTokenizer tok({"a", "b", "c"});
  StopStringScanner scanner(&tok, withStops({}));
  std::vector<std::pair<int32_t, int32_t>> seen;
  std::vector<int32_t> generated;
  for (int32_t id = 0; id < 3; ++id) {
    scanner.append(id ? id - 1 : 7, id);
    generated.push_back(id);
    scanner.release({7}, generated, scanner.settled(),
                    [&](int32_t prev, int32_t next) { seen.emplace_back(prev, next); });
  }
  EXPECT_EQ(seen, (std::vector<std::pair<int32_t, int32_t>>{{7, 0}, {0, 1}, {1, 2}}));
}

} // namespace
