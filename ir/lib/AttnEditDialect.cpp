//===- AttnEditDialect.cpp - attnedit dialect registration -----------------===//

#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/IR/AttnEditOps.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

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
  return success();
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

llvm::SmallVector<llvm::StringRef> mlir::attnedit::parameterFilesOf(Operation *module) {
  llvm::SmallVector<llvm::StringRef> files;
  if (auto names = module->getAttrOfType<ArrayAttr>(attrs::kParameterFiles))
    llvm::append_range(files, names.getAsValueRange<StringAttr>());
  if (auto scopes = module->getAttrOfType<DictionaryAttr>(attrs::kParameterScopes))
    for (NamedAttribute scope : scopes)
      if (auto names = dyn_cast<ArrayAttr>(scope.getValue()))
        llvm::append_range(files, names.getAsValueRange<StringAttr>());
  return files;
}
