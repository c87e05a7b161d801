//===- AscendOps.h - ascend types and operations --------------*- C++ -*-===//
#ifndef ATTNEDIT_ASCEND_ASCENDOPS_H
#define ATTNEDIT_ASCEND_ASCENDOPS_H

#include "attnedit/Ascend/AscendDialect.h"
#include "attnedit/Ascend/AscendEnums.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#define GET_TYPEDEF_CLASSES
#include "attnedit/Ascend/AscendTypes.h.inc"

#include "attnedit/Ascend/AscendInterfaces.h.inc"

#define GET_OP_CLASSES
#include "attnedit/Ascend/AscendOps.h.inc"

#endif // ATTNEDIT_ASCEND_ASCENDOPS_H
