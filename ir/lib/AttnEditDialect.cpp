//===- AttnEditDialect.cpp - attnedit dialect registration -----------------===//

#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/IR/Limits.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

#include <cmath>

using namespace mlir;
using namespace mlir::attnedit;

#include "attnedit/IR/AttnEditDialect.cpp.inc"
#include "attnedit/IR/AttnEditEnums.cpp.inc"
#include "attnedit/IR/AttnEditInterfaces.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "attnedit/IR/AttnEditAttrs.cpp.inc"

void AttnEditDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "attnedit/IR/AttnEditOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "attnedit/IR/AttnEditAttrs.cpp.inc"
      >();
}

LogicalResult AttnEditDialect::verifyOperationAttribute(Operation *op, NamedAttribute attr) {
  auto isPathList = [](Attribute a) {
    auto list = dyn_cast<ArrayAttr>(a);
    return list && llvm::all_of(list, llvm::IsaPred<StringAttr>);
  };
  if (attr.getName() == attrs::kParameterFiles && !isPathList(attr.getValue()))
    return op->emitError() << "'" << attrs::kParameterFiles
                           << "' must be an array of file paths (strings)";
  if (attr.getName() == attrs::kParameterScopes) {
    auto scopes = dyn_cast<DictionaryAttr>(attr.getValue());
    if (!scopes || !llvm::all_of(scopes, [&](NamedAttribute scope) {
          return isPathList(scope.getValue());
        }))
      return op->emitError() << "'" << attrs::kParameterScopes
                             << "' must be a dictionary {scope = [file paths]}";
  }
  // What runs the module reads these; a wrong kind was read as absent (no
  // context limit, no stop token, no tokenizer).
  auto name = attr.getName().getValue();
  auto integer = dyn_cast<IntegerAttr>(attr.getValue());
  if (name == attrs::kMaxPositions &&
      (!integer || integer.getType().isIndex() || integer.getInt() < 1 ||
       integer.getInt() > kMaxConfigSize))
    return op->emitError() << "'" << name << "' must be an integer in [1, " << kMaxConfigSize
                           << "] (the model's context in tokens)";
  if ((name == attrs::kBosToken || name == attrs::kConfigBosToken) &&
      (!integer || integer.getInt() < 0))
    return op->emitError() << "'" << name << "' must be a non-negative integer (a token id)";
  if (name == attrs::kStopTokens) {
    auto ids = dyn_cast<DenseI32ArrayAttr>(attr.getValue());
    if (!ids || llvm::any_of(ids.asArrayRef(), [](int32_t id) { return id < 0; }))
      return op->emitError() << "'" << name
                             << "' must be an array<i32: ...> of non-negative token ids";
  }
  if (name == attrs::kSamplingDefaults) {
    auto settings = dyn_cast<DictionaryAttr>(attr.getValue());
    if (!settings)
      return op->emitError() << "'" << name << "' must be a dictionary of sampling settings";
    for (NamedAttribute setting : settings) {
      llvm::StringRef key = setting.getName().getValue();
      Attribute value = setting.getValue();
      if (key == "do_sample") {
        if (!isa<BoolAttr>(value))
          return op->emitError() << "'" << name << "': do_sample must be true or false";
        continue;
      }
      bool integral = isIntegerSamplingSetting(key);
      std::optional<double> number;
      if (auto f = dyn_cast<FloatAttr>(value); f && !integral)
        number = f.getValueAsDouble();
      if (auto i = dyn_cast<IntegerAttr>(value); i && !i.getType().isInteger(1))
        number = (double)i.getInt();
      std::optional<std::string> wrong =
          number ? checkSamplingSetting(key, *number)
                 : std::optional<std::string>(integral ? "must be an integer" : "must be a number");
      if (wrong)
        return op->emitError() << "'" << name << "': " << key << " " << *wrong;
    }
  }
  if ((name == attrs::kTokenizer || name == attrs::kArchitecture) &&
      !isa<StringAttr>(attr.getValue()))
    return op->emitError() << "'" << name << "' must be a string";
  return success();
}

std::optional<std::string> mlir::attnedit::checkSamplingSetting(llvm::StringRef key,
                                                               double value) {
  // The ranges generate's and sample's options take.
  auto within = [&](bool ok, const llvm::Twine &range) -> std::optional<std::string> {
    if (ok)
      return std::nullopt;
    return ("must be in " + range).str();
  };
  if (key == "temperature")
    return within(value >= 0 && value <= 100, "[0, 100] (0 = greedy)");
  if (isIntegerSamplingSetting(key)) {
    if (value != std::floor(value))
      return std::string("must be an integer");
    if (key == "max_new_tokens")
      return within(value >= 1 && value <= kMaxConfigSize,
                    "[1, " + llvm::Twine(kMaxConfigSize) + "]");
    return within(value >= 0 && value <= kMaxConfigSize,
                  "[0, " + llvm::Twine(kMaxConfigSize) + "] (0 = all)");
  }
  if (key == "top_p")
    return within(value > 0 && value <= 1, "(0, 1]");
  if (key == "min_p")
    return within(value >= 0 && value <= 1, "[0, 1]");
  if (key == "repetition_penalty")
    return within(value > 0 && value <= 100, "(0, 100] (1 = off)");
  return std::string("is not a sampling setting attnedit applies");
}

std::string mlir::attnedit::formatShape(llvm::ArrayRef<int64_t> shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "[";
  llvm::interleaveComma(shape, os, [&](int64_t d) {
    if (ShapedType::isDynamic(d))
      os << "?";
    else
      os << d;
  });
  os << "]";
  return text;
}

llvm::StringRef mlir::attnedit::moduleFileOf(Operation *module) {
  auto file = module->getLoc()->findInstanceOf<FileLineColLoc>();
  return file ? file.getFilename().getValue() : "";
}

std::string mlir::attnedit::resolveModulePath(Operation *module, llvm::StringRef path) {
  if (!llvm::sys::path::is_relative(path))
    return path.str();
  llvm::SmallString<256> resolved(llvm::sys::path::parent_path(moduleFileOf(module)));
  llvm::sys::path::append(resolved, path);
  return resolved.str().str();
}

void mlir::attnedit::anchorModulePaths(Operation *module) {
  MLIRContext *ctx = module->getContext();
  auto anchored = [&](StringAttr path) {
    llvm::SmallString<256> file(resolveModulePath(module, path.getValue()));
    llvm::sys::fs::make_absolute(file);
    return StringAttr::get(ctx, file);
  };
  // The dialect's verifier has checked these attributes' kinds.
  auto anchoredList = [&](Attribute files) -> Attribute {
    return ArrayAttr::get(ctx, llvm::map_to_vector(cast<ArrayAttr>(files), [&](Attribute a) {
                            return (Attribute)anchored(cast<StringAttr>(a));
                          }));
  };
  if (Attribute files = module->getAttr(attrs::kParameterFiles))
    module->setAttr(attrs::kParameterFiles, anchoredList(files));
  if (auto scopes = module->getAttrOfType<DictionaryAttr>(attrs::kParameterScopes)) {
    NamedAttrList out;
    for (NamedAttribute entry : scopes)
      out.append(entry.getName(), anchoredList(entry.getValue()));
    module->setAttr(attrs::kParameterScopes, out.getDictionary(ctx));
  }
  if (auto tokenizer = module->getAttrOfType<StringAttr>(attrs::kTokenizer))
    module->setAttr(attrs::kTokenizer, anchored(tokenizer));
}

llvm::SmallVector<std::string> mlir::attnedit::parameterFilesOf(Operation *module) {
  llvm::SmallVector<std::string> files;
  auto add = [&](ArrayAttr names) {
    for (llvm::StringRef name : names.getAsValueRange<StringAttr>())
      files.push_back(resolveModulePath(module, name));
  };
  if (auto names = module->getAttrOfType<ArrayAttr>(attrs::kParameterFiles))
    add(names);
  if (auto scopes = module->getAttrOfType<DictionaryAttr>(attrs::kParameterScopes))
    for (NamedAttribute scope : scopes)
      if (auto names = dyn_cast<ArrayAttr>(scope.getValue()))
        add(names);
  return files;
}
