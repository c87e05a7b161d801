//===- ParameterStore.cpp - named parameters to memory ---------------------===//

#include "attnedit/Runtime/Execution/ParameterStore.h"
#include "attnedit/Frontend/Error.h"
#include "attnedit/Frontend/ModelConfig.h"
#include "attnedit/IR/AttnEditDialect.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::attnedit;

llvm::Error ParameterStore::open(llvm::StringRef path, llvm::StringRef scope) {
  std::unique_ptr<WeightFile> file;
  if (llvm::sys::path::extension(path) == ".bin") {
    auto checkpoint = openLlama2c(path);
    if (!checkpoint)
      return checkpoint.takeError();
    file = std::move(checkpoint->weights);
  } else {
    auto opened = WeightFile::openSafetensors(path);
    if (!opened)
      return opened.takeError();
    file = std::move(*opened);
  }
  // Lookups take the first file holding a name: which one holds depends on
  // the order the module lists them in, as with a tensor in two HF shards.
  for (const auto &earlier : files[scope])
    for (const TensorInfo &info : file->tensors())
      if (earlier->find(info.name))
        return makeError(path, llvm::Twine("tensor '") + info.name + "' is also in " +
                                   earlier->path() +
                                   ": a module's parameter files must not share a tensor");
  add(std::move(file), scope);
  return llvm::Error::success();
}

void ParameterStore::add(std::unique_ptr<WeightFile> file, llvm::StringRef scope) {
  files[scope].push_back(std::move(file));
}

llvm::Error ParameterStore::openModuleFiles(ModuleOp module) {
  // The dialect's verifier has checked these attributes' kinds (every module
  // here was parsed, imported or transformed, and verified).
  auto openAll = [&](ArrayAttr paths, llvm::StringRef scope) -> llvm::Error {
    for (llvm::StringRef name : paths.getAsValueRange<StringAttr>())
      if (llvm::Error e = open(resolveModulePath(module, name), scope))
        return e;
    return llvm::Error::success();
  };
  Operation *op = module.getOperation();
  auto unscoped = op->getAttrOfType<ArrayAttr>(attrs::kParameterFiles);
  if (!unscoped) {
    llvm::StringRef file = moduleFileOf(op);
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "%s: module has no '%s' attribute naming its parameter files",
                                   file.empty() ? "module" : file.str().c_str(),
                                   attrs::kParameterFiles.data());
  }
  if (llvm::Error e = openAll(unscoped, ""))
    return e;
  if (auto scopes = op->getAttrOfType<DictionaryAttr>(attrs::kParameterScopes))
    for (NamedAttribute entry : scopes)
      if (llvm::Error e = openAll(cast<ArrayAttr>(entry.getValue()), entry.getName().getValue()))
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

/// The parameter `name` of `scope` in `files`, checked against `shape`: its
/// file and entry.
static llvm::Expected<std::pair<std::shared_ptr<WeightFile>, const TensorInfo *>>
locate(const llvm::StringMap<std::vector<std::shared_ptr<WeightFile>>> &files,
       llvm::StringRef name, llvm::ArrayRef<int64_t> shape, llvm::StringRef scope) {
  for (const auto &file : files.lookup(scope)) {
    const TensorInfo *info = file->find(name);
    if (!info)
      continue;
    if (llvm::ArrayRef<int64_t>(info->shape) != shape)
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(), "%s: tensor '%s' has shape %s, the IR expects %s",
          file->path().str().c_str(), name.str().c_str(), formatShape(info->shape).c_str(),
          formatShape(shape).c_str());
    return std::make_pair(file, info);
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

static llvm::Error differentShapes(llvm::StringRef name, const Tensor &value,
                                   llvm::ArrayRef<int64_t> shape) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 "parameter '%s' is used with shapes %s and %s",
                                 name.str().c_str(), value.shapeString().c_str(),
                                 formatShape(shape).c_str());
}

llvm::Error ParameterStore::check(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                                  llvm::StringRef scope) {
  std::lock_guard<std::mutex> lock(cacheMutex);
  auto cached = cache.find(cacheKey(name, scope));
  if (cached != cache.end())
    return cached->second.shape() == shape ? llvm::Error::success()
                                           : differentShapes(name, cached->second, shape);
  return locate(files, name, shape, scope).takeError();
}

llvm::Expected<Tensor> ParameterStore::get(llvm::StringRef name, llvm::ArrayRef<int64_t> shape,
                                           llvm::StringRef scope) {
  std::string key = cacheKey(name, scope);
  std::lock_guard<std::mutex> lock(cacheMutex);
  auto cached = cache.find(key);
  if (cached != cache.end()) {
    if (cached->second.shape() != shape)
      return differentShapes(name, cached->second, shape);
    return cached->second;
  }
  auto found = locate(files, name, shape, scope);
  if (!found)
    return found.takeError();
  auto [file, info] = *found;
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
