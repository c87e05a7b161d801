//===- ParameterStore.cpp - named parameters to memory ---------------------===//

#include "attnedit/Runtime/ParameterStore.h"
#include "attnedit/Frontend/ModelConfig.h"

#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::attnedit;

llvm::Error ParameterStore::open(llvm::StringRef path) {
  if (llvm::sys::path::extension(path) == ".bin") {
    auto checkpoint = openLlama2c(path);
    if (!checkpoint)
      return checkpoint.takeError();
    add(std::move(checkpoint->weights));
    return llvm::Error::success();
  }
  auto file = WeightFile::openSafetensors(path);
  if (!file)
    return file.takeError();
  add(std::move(*file));
  return llvm::Error::success();
}

void ParameterStore::add(std::unique_ptr<WeightFile> file) {
  files.push_back(std::move(file));
}

llvm::Expected<Tensor> ParameterStore::get(llvm::StringRef name,
                                           llvm::ArrayRef<int64_t> shape) {
  auto cached = cache.find(name);
  if (cached != cache.end()) {
    if (cached->second.shape() != shape)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "parameter '%s' is used with shapes %s and %s",
                                     name.str().c_str(), cached->second.shapeString().c_str(),
                                     formatShape(shape).c_str());
    return cached->second;
  }
  for (const auto &file : files) {
    const TensorInfo *info = file->find(name);
    if (!info)
      continue;
    if (llvm::ArrayRef<int64_t>(info->shape) != shape)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(), "%s: tensor '%s' has shape %s, the IR expects %s",
          file->path().str().c_str(), name.str().c_str(), formatShape(info->shape).c_str(),
          formatShape(shape).c_str());
    const uint8_t *bytes = file->bytes(*info);
    Tensor tensor;
    if (info->dtype == DType::F32 && reinterpret_cast<uintptr_t>(bytes) % alignof(float) == 0) {
      tensor = Tensor::view(shape, reinterpret_cast<const float *>(bytes), file);
    } else {
      tensor = Tensor::zeros(shape);
      convertToF32(info->dtype, bytes, tensor.mutableData(), tensor.numel());
    }
    cache[name] = tensor;
    return tensor;
  }
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "parameter '%s' is in none of the parameter files",
                                 name.str().c_str());
}
