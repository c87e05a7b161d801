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
