//===- Json.cpp - JSON parsing with a nesting limit, and field reading ----===//

#include "attnedit/Frontend/Json.h"
#include "attnedit/Frontend/Error.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <charconv>
#include <cmath>

using namespace mlir::attnedit;

static void writeShortest(llvm::json::OStream &out, const llvm::json::Value &value) {
  switch (value.kind()) {
  case llvm::json::Value::Object: {
    const llvm::json::Object &object = *value.getAsObject();
    std::vector<llvm::StringRef> keys;
    for (const auto &entry : object)
      keys.push_back(entry.first);
    llvm::sort(keys);
    out.objectBegin();
    for (llvm::StringRef key : keys) {
      out.attributeBegin(key);
      writeShortest(out, *object.get(key));
      out.attributeEnd();
    }
    out.objectEnd();
    return;
  }
  case llvm::json::Value::Array:
    out.arrayBegin();
    for (const llvm::json::Value &element : *value.getAsArray())
      writeShortest(out, element);
    out.arrayEnd();
    return;
  case llvm::json::Value::Number:
    if (value.getAsInteger() || value.getAsUINT64() || !std::isfinite(*value.getAsNumber()))
      break;
    out.rawValue([&](llvm::raw_ostream &os) {
      char text[32];
      auto result = std::to_chars(text, text + sizeof text, *value.getAsNumber());
      os << llvm::StringRef(text, result.ptr - text);
    });
    return;
  default:
    break;
  }
  out.value(value);
}

std::string mlir::attnedit::formatJsonShortest(const llvm::json::Value &value) {
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::json::OStream out(os, /*IndentSize=*/2);
  writeShortest(out, value);
  return text;
}

llvm::Expected<llvm::json::Value> mlir::attnedit::parseJson(llvm::StringRef text) {
  // Editors on Windows write one (RFC 8259 lets a parser ignore it); without
  // this the file would be "not valid JSON [1:1]" with nothing visible at 1:1.
  text.consume_front("\xEF\xBB\xBF");
  auto fail = [](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), msg.str());
  };
  // One per open array or object; an object's keys so far. llvm::json keeps
  // one of two equal keys where Python's json keeps the last: a config.json
  // naming a field twice would be read other than transformers reads it.
  struct Level {
    bool object;
    bool expectKey;
    llvm::DenseSet<llvm::StringRef> keys;
  };
  llvm::SmallVector<Level> open;
  bool inString = false;
  size_t keyStart = llvm::StringRef::npos;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        inString = false;
        if (keyStart != llvm::StringRef::npos &&
            !open.back().keys.insert(text.slice(keyStart, i)).second)
          return fail(llvm::formatv("duplicate key \"{0}\" (at byte {1})",
                                    text.slice(keyStart, i), keyStart - 1));
      }
    } else if (c == '"') {
      inString = true;
      keyStart = llvm::StringRef::npos;
      if (!open.empty() && open.back().object && open.back().expectKey) {
        open.back().expectKey = false;
        keyStart = i + 1;
      }
    } else if (c == '[' || c == '{') {
      if (open.size() == kMaxJsonDepth)
        return fail(llvm::formatv(
            "arrays and objects nest deeper than {0} levels (at byte {1})", kMaxJsonDepth, i));
      open.push_back({c == '{', c == '{', {}});
    } else if (c == ']' || c == '}') {
      if (!open.empty())
        open.pop_back();
    } else if (c == ',' && !open.empty() && open.back().object) {
      open.back().expectKey = true;
    }
  }
  return llvm::json::parse(text);
}

llvm::Error mlir::attnedit::forEachJsonLine(
    llvm::StringRef path, llvm::StringRef text,
    llvm::function_ref<llvm::Error(const llvm::json::Object &)> each) {
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

JsonReader JsonReader::nested(const llvm::Twine &field, const llvm::json::Object &object) const {
  JsonReader inner(file, object, nullIsMissing);
  inner.prefix = (prefix + field + ".").str();
  return inner;
}

const llvm::json::Value *JsonReader::get(llvm::StringRef field) const {
  const llvm::json::Value *v = fields.get(field);
  if (v && nullIsMissing && v->kind() == llvm::json::Value::Null)
    return nullptr;
  return v;
}

llvm::Error JsonReader::error(const llvm::Twine &field, const llvm::Twine &msg) const {
  return makeError(file + ": field '" + prefix + field + "' " + msg);
}

llvm::Error JsonReader::takeError() {
  assert(!failure.empty() && "no read has failed");
  return makeError(std::exchange(failure, {}));
}

bool JsonReader::fail(const llvm::Twine &field, const llvm::Twine &msg) {
  failure = llvm::toString(error(field, msg));
  return false;
}

bool JsonReader::require(llvm::StringRef field) { return get(field) || fail(field, "is missing"); }

template <typename T, typename Convert>
bool JsonReader::read(llvm::StringRef field, T &dst, const char *expected, Convert convert) {
  const llvm::json::Value *v = get(field);
  if (!v)
    return true;
  std::optional<T> value = convert(*v);
  if (!value)
    return fail(field, expected);
  dst = std::move(*value);
  return true;
}

/// A whole number beyond int64 (JSON keeps it as uint64 or double), as
/// written, or none: "must be an integer" would tell the user it was not one.
static std::optional<std::string> beyondInt64(const llvm::json::Value *v) {
  if (!v || v->getAsInteger())
    return std::nullopt;
  if (std::optional<uint64_t> u = v->getAsUINT64())
    return std::to_string(*u);
  std::optional<double> d = v->getAsNumber();
  if (d && std::isfinite(*d) && *d == std::trunc(*d))
    return llvm::formatv("{0:e}", *d).str();
  return std::nullopt;
}

bool JsonReader::integer(llvm::StringRef field, int64_t &dst) {
  if (std::optional<std::string> n = beyondInt64(get(field)))
    return fail(field, "is " + *n + ", outside the 64-bit integers");
  return read(field, dst, "must be an integer",
              [](const llvm::json::Value &v) { return v.getAsInteger(); });
}

bool JsonReader::positive(llvm::StringRef field, int64_t &dst, int64_t max) {
  if (std::optional<std::string> n = beyondInt64(get(field)); n && !llvm::StringRef(*n).starts_with("-"))
    return fail(field, llvm::formatv("is {0}, above the largest accepted value {1}", *n, max));
  int64_t n = 0; // stays 0 when the field is absent
  if (!read(field, n, "must be a positive integer", [](const llvm::json::Value &v) {
        std::optional<int64_t> n = v.getAsInteger();
        return n && *n > 0 ? n : std::nullopt;
      }))
    return false;
  if (n > max)
    return fail(field, llvm::formatv("is {0}, above the largest accepted value {1}", n, max));
  if (n)
    dst = n;
  return true;
}

bool JsonReader::number(llvm::StringRef field, double &dst) {
  return read(field, dst, "must be a number",
              [](const llvm::json::Value &v) { return v.getAsNumber(); });
}

bool JsonReader::positiveNumber(llvm::StringRef field, double &dst) {
  return read(field, dst, "must be a positive number", [](const llvm::json::Value &v) {
    std::optional<double> n = v.getAsNumber();
    return n && *n > 0 ? n : std::nullopt;
  });
}

bool JsonReader::flag(llvm::StringRef field, bool &dst) {
  return read(field, dst, "must be true or false",
              [](const llvm::json::Value &v) { return v.getAsBoolean(); });
}

bool JsonReader::string(llvm::StringRef field, std::string &dst) {
  return read(field, dst, "must be a string",
              [](const llvm::json::Value &v) -> std::optional<std::string> {
                if (std::optional<llvm::StringRef> s = v.getAsString())
                  return s->str();
                return std::nullopt;
              });
}

bool JsonReader::integers(llvm::StringRef field, std::vector<int64_t> &dst) {
  return read(field, dst, "must be a list of integers",
              [](const llvm::json::Value &v) -> std::optional<std::vector<int64_t>> {
                const llvm::json::Array *array = v.getAsArray();
                if (!array)
                  return std::nullopt;
                std::vector<int64_t> out;
                for (const llvm::json::Value &x : *array) {
                  std::optional<int64_t> n = x.getAsInteger();
                  if (!n)
                    return std::nullopt;
                  out.push_back(*n);
                }
                return out;
              });
}

bool JsonReader::list(llvm::StringRef field, int64_t count,
                      std::vector<const llvm::json::Value *> &dst) {
  const llvm::json::Value *v = get(field);
  if (!v)
    return true;
  const llvm::json::Array *array = v->getAsArray();
  if (!array || (int64_t)array->size() != count)
    return fail(field, llvm::formatv("must be a list of {0} entries, one per layer", count));
  dst.clear();
  for (const llvm::json::Value &x : *array)
    dst.push_back(&x);
  return true;
}

bool JsonReader::only(llvm::ArrayRef<llvm::StringRef> known, const llvm::Twine &what) {
  for (const auto &kv : fields)
    if (!llvm::is_contained(known, llvm::StringRef(kv.first)))
      return fail(llvm::StringRef(kv.first), "is not " + what);
  return true;
}

llvm::json::Object mlir::attnedit::withoutKey(const llvm::json::Object &object,
                                              llvm::StringRef key) {
  llvm::json::Object out;
  for (const auto &[name, value] : object)
    if (llvm::StringRef(name) != key)
      out[name] = value;
  return out;
}
