//===- AscendDialect.h - ascend dialect -----------------------*- C++ -*-===//
#ifndef ATTNEDIT_ASCEND_ASCENDDIALECT_H
#define ATTNEDIT_ASCEND_ASCENDDIALECT_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Dialect.h"

#include "attnedit/Ascend/AscendDialect.h.inc"

#endif // ATTNEDIT_ASCEND_ASCENDDIALECT_H
