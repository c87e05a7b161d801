//===- AttnEditInterfaces.td - attnedit op interfaces ------*- tablegen -*-===//
//
// Interfaces the passes dispatch on instead of switching over op kinds.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNEDIT_INTERFACES_TD
#define ATTNEDIT_INTERFACES_TD

include "mlir/IR/OpBase.td"

def AttnEdit_DecomposableOpInterface : OpInterface<"DecomposableOpInterface"> {
  let cppNamespace = "::mlir::attnedit";
  let description = [{
    A composite op that can be expanded into attnedit primitives with the same
    semantics. The expansion is the composite's definition: its reference
    kernel, raising passes and numerics tests are all checked against it.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds the primitive expansion at the builder's insertion point and
        returns the values that replace the op's results, in order. Must not
        erase or modify the op itself.
      }],
      "::mlir::FailureOr<::llvm::SmallVector<::mlir::Value>>", "decompose",
      (ins "::mlir::OpBuilder &":$builder)>,
  ];
}

def AttnEdit_DifferentiableOpInterface : OpInterface<"DifferentiableOpInterface"> {
  let cppNamespace = "::mlir::attnedit";
  let description = [{
    A primitive with a reverse-mode rule (VJP). --attnedit-autodiff chains
    these rules; composite ops are differentiated through their
    decomposition.
  }];
  let methods = [
    InterfaceMethod<[{
        Builds, at the builder's insertion point, the cotangent of each
        operand from the cotangent `grad` of the op's single result, reusing
        the op's operands and result as needed. Returns one value per
        operand, null for operands that take no gradient (token ids,
        positions); fails, with a diagnostic, when the rule needs a static
        size it does not have.
      }],
      "::mlir::FailureOr<::llvm::SmallVector<::mlir::Value>>", "buildVjp",
      (ins "::mlir::OpBuilder &":$builder, "::mlir::Value":$grad)>,
  ];
}

def AttnEdit_AttentionLikeOpInterface : OpInterface<"AttentionLikeOpInterface"> {
  let cppNamespace = "::mlir::attnedit";
  let description = [{
    A composite attention module. Analyses (the KV-cache report, the runtime's
    cache planning) ask it what decoding must keep per token instead of
    knowing every attention variant.
  }];
  let methods = [
    InterfaceMethod<[{
        A short name of the variant for reports ("mha", "gqa", "mqa", "mla",
        "swa", ...).
      }],
      "::llvm::StringRef", "getAttentionKind">,
    InterfaceMethod<[{
        Values cached per token for decoding: 2·Hkv·D for K and V heads, the
        latent plus the shared RoPE key for MLA.
      }],
      "int64_t", "getKvValuesPerToken">,
    InterfaceMethod<[{
        How many of the most recent tokens the cache keeps; 0 keeps all.
      }],
      "int64_t", "getKvWindow">,
  ];
}

#endif // ATTNEDIT_INTERFACES_TD
