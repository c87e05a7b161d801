//===- Json.h - JSON parsing with a nesting limit --------------*- C++ -*-===//
//
// llvm::json::parse recurses once per nesting level, so a crafted file of a
// few hundred thousand '[' overflows the stack. Every JSON attnedit reads
// (configs, safetensors headers, tokenizers, recipes, checkpoints, shard
// indexes) comes through parseJson, which rejects deep nesting first.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_JSON_H
#define ATTNEDIT_FRONTEND_JSON_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

namespace mlir::attnedit {

/// Deeper than any real config or tokenizer (tokenizer.json nests < 10).
constexpr int kMaxJsonDepth = 256;

/// llvm::json::parse, after checking that arrays and objects nest at most
/// kMaxJsonDepth deep.
llvm::Expected<llvm::json::Value> parseJson(llvm::StringRef text);

/// Calls `each(object)` for every non-blank line of the JSON Lines `text`
/// read from `path`, skipping a UTF-8 byte order mark before the first.
/// Every error, `each`'s too, is prefixed with `path:line: `.
llvm::Error forEachJsonLine(llvm::StringRef path, llvm::StringRef text,
                            llvm::function_ref<llvm::Error(const llvm::json::Object &)> each);

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_JSON_H
