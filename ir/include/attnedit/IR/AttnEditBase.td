//===- AttnEditBase.td - attnedit dialect definition -------*- tablegen -*-===//
//
// The dialect record, its enums and the op base class.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNEDIT_BASE_TD
#define ATTNEDIT_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def AttnEdit_Dialect : Dialect {
  let name = "attnedit";
  let cppNamespace = "::mlir::attnedit";
  let summary = "Decoder-LLM graphs for attention editing";
  let description = [{
    Holds a trained decoder language model (Llama, Qwen2, Qwen3, llama2.c) as a
    graph of primitive tensor ops over named, external parameters, plus composite
    attention ops that passes raise to, edit, and decompose back. Activations are
    f32; parameters keep their stored element type until `attnedit.convert`.
  }];
  let useDefaultAttributePrinterParser = 1;
  // The module attributes naming weight files are read with casts by passes
  // and the runtime; a hand-written one of another kind had crashed them.
  let hasOperationAttrVerify = 1;
}

// Every float attribute (eps, theta, scales, temperatures) is finite: a NaN
// passed the ordered comparisons of the verifiers, and the backends read it
// differently (all NaN on one, zeros on the other).
def AttnEdit_FiniteFloatAttributes : NativeOpTrait<"FiniteFloatAttributes"> {
  let cppNamespace = "::mlir::attnedit";
}

class AttnEdit_Op<string mnemonic, list<Trait> traits = []>
    : Op<AttnEdit_Dialect, mnemonic, !listconcat(traits, [AttnEdit_FiniteFloatAttributes])>;

// How RoPE pairs the dimensions it rotates: HF's rotate_half pairs (i, i + d/2);
// llama2.c and Meta's original code pair adjacent dimensions (2i, 2i + 1).
def AttnEdit_RopeStyle : I32EnumAttr<"RopeStyle", "RoPE pairing convention", [
    I32EnumAttrCase<"RotateHalf", 0, "rotate_half">,
    I32EnumAttrCase<"Interleaved", 1, "interleaved">]> {
  let cppNamespace = "::mlir::attnedit";
  let genSpecializedAttr = 0;
}
def AttnEdit_RopeStyleAttr : EnumAttr<AttnEdit_Dialect, AttnEdit_RopeStyle, "rope_style">;

// Where GateSWA's output gate σ(x·Wgᵀ) multiplies the attention output: one
// scalar per head, one per head feature, or no gate.
def AttnEdit_GateKind : I32EnumAttr<"GateKind", "output gate granularity", [
    I32EnumAttrCase<"None", 0, "none">,
    I32EnumAttrCase<"Headwise", 1, "headwise">,
    I32EnumAttrCase<"Elementwise", 2, "elementwise">]> {
  let cppNamespace = "::mlir::attnedit";
  let genSpecializedAttr = 0;
}
def AttnEdit_GateKindAttr : EnumAttr<AttnEdit_Dialect, AttnEdit_GateKind, "gate_kind">;

// The loss a loss_grad differentiates: one enum from the IR to every
// executor (the reference kernels, the CPU lowering, the Ascend simulator).
def AttnEdit_LossKind : I32EnumAttr<"LossKind", "loss function", [
    I32EnumAttrCase<"Mse", 0, "mse">,
    I32EnumAttrCase<"Kl", 1, "kl">,
    I32EnumAttrCase<"CrossEntropy", 2, "cross_entropy">,
    I32EnumAttrCase<"Cosine", 3, "cosine">]> {
  let cppNamespace = "::mlir::attnedit";
  let genSpecializedAttr = 0;
}
def AttnEdit_LossKindAttr : EnumAttr<AttnEdit_Dialect, AttnEdit_LossKind, "loss_kind">;

#endif // ATTNEDIT_BASE_TD
