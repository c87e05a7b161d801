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

#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

namespace mlir::attnedit {

/// Deeper than any real config or tokenizer (tokenizer.json nests < 10).
constexpr int kMaxJsonDepth = 256;

/// llvm::json::parse, after checking that arrays and objects nest at most
/// kMaxJsonDepth deep.
llvm::Expected<llvm::json::Value> parseJson(llvm::StringRef text);

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_JSON_H
