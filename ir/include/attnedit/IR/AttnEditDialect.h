//===- AttnEditDialect.h - attnedit dialect -------------------*- C++ -*-===//
#ifndef ATTNEDIT_IR_ATTNEDITDIALECT_H
#define ATTNEDIT_IR_ATTNEDITDIALECT_H

#include "mlir/IR/Dialect.h"

#include "attnedit/IR/AttnEditDialect.h.inc"

#endif // ATTNEDIT_IR_ATTNEDITDIALECT_H
