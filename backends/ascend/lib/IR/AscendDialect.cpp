//===- AscendDialect.cpp - ascend dialect registration -------------------===//

#include "attnedit/Ascend/AscendDialect.h"
#include "attnedit/Ascend/AscendOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"

#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::attnedit::ascend;

#include "attnedit/Ascend/AscendDialect.cpp.inc"
#include "attnedit/Ascend/AscendEnums.cpp.inc"
#include "attnedit/Ascend/AscendInterfaces.cpp.inc"

#define GET_TYPEDEF_CLASSES
#include "attnedit/Ascend/AscendTypes.cpp.inc"

void AscendDialect::initialize() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "attnedit/Ascend/AscendTypes.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "attnedit/Ascend/AscendOps.cpp.inc"
      >();
}
