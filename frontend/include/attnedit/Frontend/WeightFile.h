//===- WeightFile.h - memory-mapped checkpoint files ----------*- C++ -*-===//
//
// A checkpoint file mapped into memory and the named tensors it holds. Both
// safetensors and llama2.c .bin files open into this one shape, so the
// parameter store and the importer never care which format a tensor came from.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_FRONTEND_WEIGHTFILE_H
#define ATTNEDIT_FRONTEND_WEIGHTFILE_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mlir::attnedit {

enum class DType { F32, F16, BF16 };

/// Bytes per element.
size_t dtypeSize(DType dtype);
/// The safetensors spelling ("F32", "F16", "BF16").
llvm::StringRef dtypeName(DType dtype);

/// Widens `count` elements of `dtype` at `src` to f32 (exact for all three).
void convertToF32(DType dtype, const uint8_t *src, float *dst, size_t count);
/// Rounds an f32 to the nearest bf16 / f16 value (ties to even), kept as f32.
float roundToBF16(float value);
float roundToF16(float value);

struct TensorInfo {
  std::string name;
  DType dtype;
  llvm::SmallVector<int64_t, 4> shape;
  uint64_t offset; // absolute byte offset in the file
  uint64_t size;   // bytes

  int64_t numElements() const;
};

class WeightFile {
public:
  /// Maps a .safetensors file and validates its header: offsets inside the
  /// file and non-overlapping, sizes matching dtype x shape, known dtypes.
  static llvm::Expected<std::unique_ptr<WeightFile>> openSafetensors(llvm::StringRef path);

  /// Wraps an already-validated mapping (used by format readers).
  WeightFile(std::string path, std::unique_ptr<llvm::MemoryBuffer> buffer,
             std::vector<TensorInfo> tensors);
  ~WeightFile();

  llvm::StringRef path() const { return filePath; }
  llvm::ArrayRef<TensorInfo> tensors() const { return entries; }
  /// The whole file, header and data.
  llvm::StringRef contents() const { return buffer->getBuffer(); }
  const TensorInfo *find(llvm::StringRef name) const;
  const uint8_t *bytes(const TensorInfo &info) const {
    return reinterpret_cast<const uint8_t *>(buffer->getBufferStart()) + info.offset;
  }

private:
  std::string filePath;
  std::unique_ptr<llvm::MemoryBuffer> buffer;
  std::vector<TensorInfo> entries;
  llvm::StringMap<size_t> byName;
};

/// A tensor to write: `data` holds `dtype` elements in row-major order.
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  llvm::ArrayRef<uint8_t> data;
};

/// Writes a safetensors file atomically (temporary file, fsync, rename).
llvm::Error writeSafetensors(llvm::StringRef path, llvm::ArrayRef<TensorToWrite> tensors);

} // namespace mlir::attnedit

#endif // ATTNEDIT_FRONTEND_WEIGHTFILE_H
