//===- Json.cpp - JSON parsing with a nesting limit ------------------------===//

#include "attnedit/Frontend/Json.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir::attnedit;

llvm::Expected<llvm::json::Value> mlir::attnedit::parseJson(llvm::StringRef text) {
  int depth = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        return llvm::createStringError(
            llvm::inconvertibleErrorCode(),
            llvm::formatv("arrays and objects nest deeper than {0} levels (at byte {1})",
                          kMaxJsonDepth, i)
                .str());
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return llvm::json::parse(text);
}

llvm::Error mlir::attnedit::forEachJsonLine(
    llvm::StringRef path, llvm::StringRef text,
    llvm::function_ref<llvm::Error(const llvm::json::Object &)> each) {
  // Editors on Windows write one; without this the first line would be
  // "not valid JSON [1:1]" with nothing visible at 1:1.
  text.consume_front("\xEF\xBB\xBF");
  auto fail = [&](int64_t line, const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   (path + ":" + llvm::Twine(line) + ": " + msg).str());
  };
  int64_t number = 0;
  while (!text.empty()) {
    auto [line, rest] = text.split('\n');
    text = rest;
    ++number;
    if (line.trim().empty())
      continue;
    auto parsed = parseJson(line);
    if (!parsed)
      return fail(number, "not valid JSON: " + llvm::toString(parsed.takeError()));
    const llvm::json::Object *object = parsed->getAsObject();
    if (!object)
      return fail(number, "each line must be a JSON object");
    if (llvm::Error e = each(*object))
      return fail(number, llvm::toString(std::move(e)));
  }
  return llvm::Error::success();
}
