//===- Json.h - JSON parsing with a nesting limit --------------*- C++ -*-===//
//
// llvm::json::parse recurses once per nesting level, so a crafted file of a
// few hundred thousand '[' overflows the stack. Every JSON attnedit reads
// (configs, safetensors headers, tokenizers, recipes, checkpoints, shard
// indexes) comes through parseJson, which rejects deep nesting first.
//
// JsonReader reads the fields of an object that a user wrote (config.json,
// recipes, edit plans), so that every such error names the file and the
// field the same way.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_JSON_H
#define ATTNEDIT_FRONTEND_JSON_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

namespace mlir::attnedit {

/// Deeper than any real config or tokenizer (tokenizer.json nests < 10).
constexpr int kMaxJsonDepth = 256;

/// llvm::json::parse, after checking that arrays and objects nest at most
/// kMaxJsonDepth deep; a leading UTF-8 byte order mark is skipped.
llvm::Expected<llvm::json::Value> parseJson(llvm::StringRef text);

/// `value` as formatv("{0:2}") writes it (keys sorted, indent 2), but each
/// fractional number in the shortest form that reads back the same (0.7,
/// 1e-06; Python's json writes the same digits, 1e-04 as 0.0001), not in 17
/// digits (0.69999999999999996): for the files people and transformers read.
std::string formatJsonShortest(const llvm::json::Value &value);

/// `object` without `key`. Not llvm::json::Object::erase: in LLVM 19 the
/// erased slot keeps its key's string (the tombstone is copy-assigned, which
/// leaves ObjectKey's owned string), and a copy of the object brings the key
/// back with its destroyed value.
llvm::json::Object withoutKey(const llvm::json::Object &object, llvm::StringRef key);

/// Calls `each(object)` for every non-blank line of the JSON Lines `text`
/// read from `path`, skipping a UTF-8 byte order mark before the first.
/// Every error, `each`'s too, is prefixed with `path:line: `.
llvm::Error forEachJsonLine(llvm::StringRef path, llvm::StringRef text,
                            llvm::function_ref<llvm::Error(const llvm::json::Object &)> each);

/// Reads fields of one JSON object into typed destinations. An absent field
/// leaves its destination as it was (the caller's default); a read of a
/// field of the wrong type or range returns false and keeps the error for
/// takeError(), so that reads chain with && (as llvm::json::ObjectMapper's
/// do). Errors read "FILE: field 'PATH' MSG", PATH the field's path from
/// the file's root ("stages[1].lr").
class JsonReader {
public:
  /// `nullIsMissing`: JSON null reads as an absent field (transformers
  /// writes null for "the default").
  JsonReader(llvm::StringRef file, const llvm::json::Object &object, bool nullIsMissing = false)
      : file(file.str()), fields(object), nullIsMissing(nullIsMissing) {}

  /// The reader of `object`, the value of this object's `field` (a name, or
  /// "layers[2]" for a list's entry).
  JsonReader nested(const llvm::Twine &field, const llvm::json::Object &object) const;

  const llvm::json::Object &object() const { return fields; }
  /// The field's value; null when it is absent (or JSON null, with nullIsMissing).
  const llvm::json::Value *get(llvm::StringRef field) const;
  /// "FILE: field 'PATH' msg", for the checks only the caller knows.
  llvm::Error error(const llvm::Twine &field, const llvm::Twine &msg) const;
  /// The error of the read that returned false.
  llvm::Error takeError();

  /// The field is present ("is missing" otherwise).
  [[nodiscard]] bool require(llvm::StringRef field);
  [[nodiscard]] bool integer(llvm::StringRef field, int64_t &dst);
  /// An integer in [1, max].
  [[nodiscard]] bool positive(llvm::StringRef field, int64_t &dst, int64_t max);
  [[nodiscard]] bool number(llvm::StringRef field, double &dst);
  [[nodiscard]] bool positiveNumber(llvm::StringRef field, double &dst);
  [[nodiscard]] bool flag(llvm::StringRef field, bool &dst);
  [[nodiscard]] bool string(llvm::StringRef field, std::string &dst);
  [[nodiscard]] bool integers(llvm::StringRef field, std::vector<int64_t> &dst);
  /// A list of exactly `count` entries, one per layer, of any kind: the
  /// caller checks them.
  [[nodiscard]] bool list(llvm::StringRef field, int64_t count,
                          std::vector<const llvm::json::Value *> &dst);
  /// Every field of the object is one of `known`; an other one "is not
  /// `what`". A typo in an optional field would otherwise pass for its default.
  [[nodiscard]] bool only(llvm::ArrayRef<llvm::StringRef> known, const llvm::Twine &what);

private:
  bool fail(const llvm::Twine &field, const llvm::Twine &msg);
  /// Reads `field` through `convert` (its value, or nullopt when the JSON
  /// value is not one), failing with `expected`.
  template <typename T, typename Convert>
  bool read(llvm::StringRef field, T &dst, const char *expected, Convert convert);

  std::string file;
  std::string prefix; // "stages[1]." in a nested reader
  const llvm::json::Object &fields;
  bool nullIsMissing;
  std::string failure;
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_JSON_H
