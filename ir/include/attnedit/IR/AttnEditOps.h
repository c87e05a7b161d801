//===- AttnEditOps.h - attnedit operations --------------------*- C++ -*-===//
#ifndef ATTNEDIT_IR_ATTNEDITOPS_H
#define ATTNEDIT_IR_ATTNEDITOPS_H

#include "attnedit/IR/AttnEditDialect.h"
#include "attnedit/IR/AttnEditInterfaces.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

namespace mlir::attnedit {
LogicalResult verifyFiniteFloatAttributes(Operation *op);

/// The AttnEdit_FiniteFloatAttributes trait of every attnedit op.
template <typename ConcreteType>
class FiniteFloatAttributes : public OpTrait::TraitBase<ConcreteType, FiniteFloatAttributes> {
public:
  static LogicalResult verifyTrait(Operation *op) { return verifyFiniteFloatAttributes(op); }
};
} // namespace mlir::attnedit

#include "attnedit/IR/AttnEditEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "attnedit/IR/AttnEditAttrs.h.inc"

#define GET_OP_CLASSES
#include "attnedit/IR/AttnEditOps.h.inc"

#endif // ATTNEDIT_IR_ATTNEDITOPS_H
