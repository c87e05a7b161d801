//===- Safetensors.cpp - safetensors reader and writer ---------------------===//
//
// Format: u64 little-endian header length N, N bytes of JSON mapping tensor
// names to {dtype, shape, data_offsets: [begin, end)} relative to the byte
// after the header, then the data. Every field is checked before any tensor is
// exposed: a lying header must give an error, never an out-of-bounds read.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/WeightFile.h"
#include "attnedit/Frontend/AtomicFile.h"
#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/Json.h"
#include "MappedFileFaults.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstring>
#include <unistd.h>

using namespace mlir;
using namespace mlir::attnedit;
using llvm::createStringError;
using llvm::inconvertibleErrorCode;

size_t attnedit::dtypeSize(DType dtype) { return dtype == DType::F32 ? 4 : 2; }

llvm::StringRef attnedit::dtypeName(DType dtype) {
  switch (dtype) {
  case DType::F32:
    return "F32";
  case DType::F16:
    return "F16";
  case DType::BF16:
    return "BF16";
  }
  llvm_unreachable("unknown dtype");
}

static float halfToFloat(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else { // subnormal: renormalise
    int shift = 0;
    while (!(mant & 0x400)) {
      mant <<= 1;
      ++shift;
    }
    bits = sign | ((uint32_t)(113 - shift) << 23) | ((mant & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void attnedit::convertToF32(DType dtype, const uint8_t *src, float *dst, size_t count) {
  switch (dtype) {
  case DType::F32:
    if (count) // a zero-element tensor may have no data pointer at all
      std::memcpy(dst, src, count * 4);
    return;
  case DType::BF16:
    for (size_t i = 0; i < count; ++i) {
      uint32_t bits = (uint32_t)(src[2 * i] | (src[2 * i + 1] << 8)) << 16;
      std::memcpy(&dst[i], &bits, 4);
    }
    return;
  case DType::F16:
    for (size_t i = 0; i < count; ++i)
      dst[i] = halfToFloat((uint16_t)(src[2 * i] | (src[2 * i + 1] << 8)));
    return;
  }
}

float attnedit::roundToBF16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  if ((bits & 0x7f800000) != 0x7f800000)
    bits += 0x7fff + ((bits >> 16) & 1);
  bits &= 0xffff0000;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

float attnedit::roundToF16(float value) {
  // f16 has 11 significant bits and exponents down to 2^-24 (subnormal step);
  // rounding at that granularity in f32 arithmetic is exact.
  if (!std::isfinite(value))
    return value;
  float mag = std::fabs(value);
  if (mag >= 65520.0f)
    return std::copysign(INFINITY, value);
  int exp;
  std::frexp(mag, &exp);
  float step = std::ldexp(1.0f, std::max(exp - 11, -24));
  return std::copysign(std::nearbyint(mag / step) * step, value);
}

int64_t TensorInfo::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

WeightFile::WeightFile(std::string path, std::unique_ptr<llvm::MemoryBuffer> buffer,
                       std::vector<TensorInfo> tensors)
    : filePath(std::move(path)), buffer(std::move(buffer)), entries(std::move(tensors)) {
  for (size_t i = 0; i < entries.size(); ++i)
    byName[entries[i].name] = i;
  if (this->buffer->getBufferKind() == llvm::MemoryBuffer::MemoryBuffer_MMap)
    watchMapping(this->buffer->getBufferStart(), this->buffer->getBufferSize(), filePath);
}

WeightFile::~WeightFile() { unwatchMapping(buffer->getBufferStart()); }

const TensorInfo *WeightFile::find(llvm::StringRef name) const {
  auto it = byName.find(name);
  return it == byName.end() ? nullptr : &entries[it->second];
}

static std::optional<DType> parseDType(llvm::StringRef s) {
  return llvm::StringSwitch<std::optional<DType>>(s)
      .Case("F32", DType::F32)
      .Case("F16", DType::F16)
      .Case("BF16", DType::BF16)
      .Default(std::nullopt);
}

static bool isKnownButUnsupported(llvm::StringRef s) {
  return llvm::is_contained({"F64", "I64", "I32", "I16", "I8", "U8", "U16", "U32",
                             "U64", "BOOL", "F8_E4M3", "F8_E5M2"},
                            s);
}

llvm::Expected<std::unique_ptr<WeightFile>>
WeightFile::openSafetensors(llvm::StringRef path) {
  auto fail = [&](const llvm::Twine &msg) {
    return createStringError(inconvertibleErrorCode(), "%s: %s", path.str().c_str(),
                             msg.str().c_str());
  };
  auto bufferOrErr = readInputFile(path, /*isText=*/false, /*requiresNullTerminator=*/false);
  if (!bufferOrErr)
    return fail("cannot open: " + bufferOrErr.getError().message());
  std::unique_ptr<llvm::MemoryBuffer> buffer = std::move(*bufferOrErr);
  uint64_t fileSize = buffer->getBufferSize();
  if (fileSize < 8)
    return fail(llvm::formatv("truncated: {0} bytes, too short for the 8-byte header length",
                              fileSize));
  uint64_t headerLen;
  std::memcpy(&headerLen, buffer->getBufferStart(), 8);
  if (headerLen > fileSize - 8)
    return fail(llvm::formatv("header length {0} runs past the end of the file ({1} bytes)",
                              headerLen, fileSize));
  llvm::StringRef headerText(buffer->getBufferStart() + 8, headerLen);
  llvm::Expected<llvm::json::Value> header = parseJson(headerText);
  if (!header)
    return fail("header is not valid JSON: " + llvm::toString(header.takeError()));
  const llvm::json::Object *object = header->getAsObject();
  if (!object)
    return fail("header is not a JSON object");

  uint64_t dataStart = 8 + headerLen, dataSize = fileSize - dataStart;
  std::vector<TensorInfo> tensors;
  for (const auto &[key, value] : *object) {
    llvm::StringRef name = key;
    if (name == "__metadata__")
      continue;
    const llvm::json::Object *entry = value.getAsObject();
    if (!entry)
      return fail("tensor '" + name + "': entry is not an object");
    std::optional<llvm::StringRef> dtypeText = entry->getString("dtype");
    if (!dtypeText)
      return fail("tensor '" + name + "': missing string field 'dtype'");
    std::optional<DType> dtype = parseDType(*dtypeText);
    if (!dtype)
      return fail("tensor '" + name + "': " +
                  (isKnownButUnsupported(*dtypeText) ? "unsupported" : "unknown") +
                  " dtype '" + *dtypeText + "' (supported: F32, F16, BF16)");
    const llvm::json::Array *shape = entry->getArray("shape");
    const llvm::json::Array *offsets = entry->getArray("data_offsets");
    if (!shape)
      return fail("tensor '" + name + "': missing array field 'shape'");
    if (!offsets || offsets->size() != 2)
      return fail("tensor '" + name + "': 'data_offsets' must be [begin, end]");
    TensorInfo info{name.str(), *dtype, {}, 0, 0};
    uint64_t elements = 1;
    for (const llvm::json::Value &d : *shape) {
      std::optional<int64_t> dim = d.getAsInteger();
      if (!dim || *dim < 0)
        return fail("tensor '" + name + "': shape entries must be non-negative integers");
      info.shape.push_back(*dim);
      if (*dim != 0 && elements > (uint64_t(1) << 48) / (uint64_t)*dim)
        return fail("tensor '" + name + "': shape is implausibly large");
      elements *= *dim;
    }
    std::optional<int64_t> begin = (*offsets)[0].getAsInteger();
    std::optional<int64_t> end = (*offsets)[1].getAsInteger();
    if (!begin || !end || *begin < 0 || *end < *begin)
      return fail("tensor '" + name + "': 'data_offsets' must be integers with 0 <= begin <= end");
    if ((uint64_t)*end > dataSize)
      return fail(llvm::formatv("tensor '{0}': data_offsets [{1}, {2}) run past the end of the "
                                "data ({3} bytes; file truncated?)",
                                name, *begin, *end, dataSize));
    uint64_t expected = elements * dtypeSize(*dtype);
    if ((uint64_t)(*end - *begin) != expected)
      return fail(llvm::formatv("tensor '{0}': data_offsets span {1} bytes but {2} x shape "
                                "needs {3}",
                                name, *end - *begin, *dtypeText, expected));
    info.offset = dataStart + *begin;
    info.size = expected;
    tensors.push_back(std::move(info));
  }
  std::vector<const TensorInfo *> byOffset;
  for (const TensorInfo &t : tensors)
    byOffset.push_back(&t);
  llvm::sort(byOffset, [](auto *a, auto *b) { return a->offset < b->offset; });
  for (size_t i = 1; i < byOffset.size(); ++i)
    if (byOffset[i]->offset < byOffset[i - 1]->offset + byOffset[i - 1]->size)
      return fail("tensors '" + byOffset[i - 1]->name + "' and '" + byOffset[i]->name +
                  "' overlap");
  return std::make_unique<WeightFile>(path.str(), std::move(buffer), std::move(tensors));
}

llvm::Error attnedit::writeSafetensors(llvm::StringRef path,
                                       llvm::ArrayRef<TensorToWrite> tensors) {
  // transformers' load_state_dict reads the format from the metadata (some
  // versions fail without it), as torch's save_file writes it.
  llvm::json::Object header{{"__metadata__", llvm::json::Object{{"format", "pt"}}}};
  uint64_t offset = 0;
  for (const TensorToWrite &t : tensors) {
    int64_t elements = 1;
    for (int64_t d : t.shape)
      elements *= d;
    if ((uint64_t)elements * dtypeSize(t.dtype) != t.data.size())
      return createStringError(inconvertibleErrorCode(),
                               "%s: tensor '%s' has %zu bytes, shape needs %zu",
                               path.str().c_str(), t.name.c_str(), t.data.size(),
                               (size_t)(elements * dtypeSize(t.dtype)));
    llvm::json::Array shape(t.shape);
    header[t.name] = llvm::json::Object{
        {"dtype", dtypeName(t.dtype)},
        {"shape", std::move(shape)},
        {"data_offsets", llvm::json::Array{offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  std::string headerText;
  llvm::raw_string_ostream(headerText) << llvm::json::Value(std::move(header));
  // Pad with spaces so the data starts 8-byte aligned and f32 tensors can be
  // used in place from the mapping.
  headerText.append((8 - headerText.size() % 8) % 8, ' ');

  return writeFileAtomically(path, [&](llvm::raw_ostream &os) {
    uint64_t len = headerText.size();
    os.write(reinterpret_cast<const char *>(&len), 8);
    os << headerText;
    for (const TensorToWrite &t : tensors)
      os.write(reinterpret_cast<const char *>(t.data.data()), t.data.size());
  });
}
