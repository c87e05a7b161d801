//===- ParameterStore.cpp - named parameters to memory ---------------------===//

#include "attnedit/Runtime/Execution/ParameterStore.h"
#include "attnedit/Frontend/ModelConfig.h"
#include "attnedit/IR/AttnEditDialect.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::attnedit;

llvm::Error ParameterStore::open(llvm::StringRef path, llvm::StringRef scope) {
  if (llvm::sys::path::extension(path) == ".bin") {
    auto checkpoint = openLlama2c(path);
    if (!checkpoint)
      return checkpoint.takeError();
    add(std::move(checkpoint->weights), scope);
    return llvm::Error::success();
  }
  auto file = WeightFile::openSafetensors(path);
  if (!file)
    return file.takeError();
  add(std::move(*file), scope);
  return llvm::Error::success();
}

void ParameterStore::add(std::unique_ptr<WeightFile> file, llvm::StringRef scope) {
  files[scope].push_back(std::move(file));
}

static llvm::Error moduleError(llvm::StringRef modulePath, const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: %s",
                                 modulePath.str().c_str(), msg.str().c_str());
}

llvm::Error ParameterStore::openModuleFiles(ModuleOp module, llvm::StringRef modulePath) {
  auto openAll = [&](Attribute list, llvm::StringRef scope,
                     llvm::StringRef attrName) -> llvm::Error {
    auto paths = dyn_cast_or_null<ArrayAttr>(list);
    if (!paths)
      return moduleError(modulePath, attrName + " must be an array of file names");
    for (Attribute a : paths) {
      auto name = dyn_cast<StringAttr>(a);
      if (!name)
        return moduleError(modulePath, attrName + " must hold strings");
      llvm::SmallString<256> file(name.getValue());
      if (llvm::sys::path::is_relative(file)) {
        llvm::SmallString<256> dir(modulePath);
        llvm::sys::path::remove_filename(dir);
        llvm::sys::path::append(dir, file);
        file = dir;
      }
      if (llvm::Error e = open(file, scope))
        return e;
    }
    return llvm::Error::success();
  };
  Operation *op = module.getOperation();
  Attribute unscoped = op->getAttr(attrs::kParameterFiles);
  if (!unscoped)
    return moduleError(modulePath, llvm::Twine("module has no '") + attrs::kParameterFiles +
                                       "' attribute naming its parameter files");
  if (llvm::Error e = openAll(unscoped, "", attrs::kParameterFiles))
    return e;
  Attribute scoped = op->getAttr(attrs::kParameterScopes);
  if (!scoped)
    return llvm::Error::success();
  auto scopes = dyn_cast<DictionaryAttr>(scoped);
  if (!scopes)
    return moduleError(modulePath, llvm::Twine(attrs::kParameterScopes) +
                                       " must be a dictionary {scope = [files]}");
  for (NamedAttribute entry : scopes)
    if (llvm::Error e = openAll(entry.getValue(), entry.getName().getValue(),
                                (llvm::Twine(attrs::kParameterScopes) + "." +
                                 entry.getName().getValue()).str()))
      return e;
  return llvm::Error::success();
}

static std::string cacheKey(llvm::StringRef name, llvm::StringRef scope) {
  return scope.empty() ? name.str() : (scope + "::" + name).str();
}

void ParameterStore::set(llvm::StringRef name, Tensor value, llvm::StringRef scope) {
  std::lock_guard<std::mutex> lock(cacheMutex);
  cache[cacheKey(name, scope)] = std::move(value);
}

bool ParameterStore::contains(llvm::StringRef name, llvm::StringRef scope) {
  {
    std::lock_guard<std::mutex> lock(cacheMutex);
    if (cache.count(cacheKey(name, scope)))
      return true;
  }
  return llvm::any_of(files.lookup(scope), [&](const auto &file) { return file->find(name); });
}

llvm::Expected<Tensor> ParameterStore::get(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                                           llvm::StringRef scope) {
  std::string key = cacheKey(name, scope);
  std::lock_guard<std::mutex> lock(cacheMutex);
  auto cached = cache.find(key);
  if (cached != cache.end()) {
    if (cached->second.shape() != shape)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "parameter '%s' is used with shapes %s and %s",
                                     name.str().c_str(), cached->second.shapeString().c_str(),
                                     formatShape(shape).c_str());
    return cached->second;
  }
  for (const auto &file : files.lookup(scope)) {
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
    cache[key] = tensor;
    return tensor;
  }
  if (!scope.empty() && !files.count(scope))
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "parameter '%s' is in scope '%s', which names no "
                                   "parameter files (was the edit run without params-out?)",
                                   name.str().c_str(), scope.str().c_str());
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "parameter '%s' is in none of the parameter files%s",
                                 name.str().c_str(),
                                 scope.empty() ? "" : (" of scope '" + scope + "'").str().c_str());
}
