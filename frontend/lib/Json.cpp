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
