//===- AttnEditInterfaces.h - attnedit op interfaces ----------*- C++ -*-===//
#ifndef ATTNEDIT_IR_ATTNEDITINTERFACES_H
#define ATTNEDIT_IR_ATTNEDITINTERFACES_H

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpDefinition.h"

#include "attnedit/IR/AttnEditInterfaces.h.inc"

#endif // ATTNEDIT_IR_ATTNEDITINTERFACES_H
