//===- AscendBase.td - ascend dialect definition -----------*- tablegen -*-===//
//
// The dialect record, the enums naming the DaVinci AI core's memories, pipes
// and tile layouts, and the op base class. Names follow Ascend C / HIVM
// (research/ascend.md §1.6, §4.1) so a CANN user recognises them.
//
//===----------------------------------------------------------------------===//

#ifndef ASCEND_BASE_TD
#define ASCEND_BASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/EnumAttr.td"

def Ascend_Dialect : Dialect {
  let name = "ascend";
  let cppNamespace = "::mlir::attnedit::ascend";
  let summary = "Kernel schedules for Ascend DaVinci AI cores";
  let description = [{
    A kernel is a per-core program over a block index: data moves explicitly
    between global memory (GM) and the on-chip buffers (L1, L0A, L0B, L0C,
    UB) on the pipe that executes it (MTE2, MTE1, FIX, MTE3), matrix work
    runs on the Cube (`mmad`, pipe M), element-wise and row work on the
    Vector unit (pipe V), and pipes order their accesses with
    `set_flag`/`wait_flag` and `barrier`. Buffers carry their address space,
    planned offset and layout, so capacity and alignment are checked
    statically against a target description (backends/ascend/targets/*.json).
  }];
  let useDefaultTypePrinterParser = 1;
  let dependentDialects = ["::mlir::arith::ArithDialect", "::mlir::scf::SCFDialect"];
}

class Ascend_Op<string mnemonic, list<Trait> traits = []>
    : Op<Ascend_Dialect, mnemonic, traits>;

// Address spaces (S2, S4): GM is off-core; the rest are per-core buffers.
def Ascend_Space : I32EnumAttr<"Space", "memory of the AI core", [
    I32EnumAttrCase<"GM", 0, "gm">, I32EnumAttrCase<"L1", 1, "l1">,
    I32EnumAttrCase<"L0A", 2, "l0a">, I32EnumAttrCase<"L0B", 3, "l0b">,
    I32EnumAttrCase<"L0C", 4, "l0c">, I32EnumAttrCase<"UB", 5, "ub">]> {
  let cppNamespace = "::mlir::attnedit::ascend";
}

// Pipes (S2, S3, S22): in-order instruction queues that run concurrently.
def Ascend_Pipe : I32EnumAttr<"Pipe", "execution pipe", [
    I32EnumAttrCase<"S", 0, "s">, I32EnumAttrCase<"MTE1", 1, "mte1">,
    I32EnumAttrCase<"MTE2", 2, "mte2">, I32EnumAttrCase<"MTE3", 3, "mte3">,
    I32EnumAttrCase<"M", 4, "m">, I32EnumAttrCase<"V", 5, "v">,
    I32EnumAttrCase<"FIX", 6, "fix">]> {
  let cppNamespace = "::mlir::attnedit::ascend";
}

// Tile layouts (S7, S44): ND is row-major; the fractal layouts tile the
// matrix into 16 x C0 fractals (C0 = 32 bytes / element size). nz: fractal
// grid column-major, fractals row-major (L1, L0C); zz: both row-major (L0A);
// zn: grid row-major, fractals column-major (L0B, K innermost).
def Ascend_Layout : I32EnumAttr<"Layout", "tile layout", [
    I32EnumAttrCase<"ND", 0, "nd">, I32EnumAttrCase<"NZ", 1, "nz">,
    I32EnumAttrCase<"ZZ", 2, "zz">, I32EnumAttrCase<"ZN", 3, "zn">]> {
  let cppNamespace = "::mlir::attnedit::ascend";
}

// Which core type runs a kernel (S1, S24): a cube core (AIC), a vector core
// (AIV), a coupled core holding both (910A), or MIX: each block is one AIC
// and its vector cores (KERNEL_TYPE_MIX_AIC_1_2 on the 910B, S24).
def Ascend_CoreKind : I32EnumAttr<"CoreKind", "core type of a kernel", [
    I32EnumAttrCase<"AIC", 0, "aic">, I32EnumAttrCase<"AIV", 1, "aiv">,
    I32EnumAttrCase<"Coupled", 2, "coupled">, I32EnumAttrCase<"Mix", 3, "mix">]> {
  let cppNamespace = "::mlir::attnedit::ascend";
}

def Ascend_ReduceKind : I32EnumAttr<"ReduceKind", "row reduction", [
    I32EnumAttrCase<"Sum", 0, "sum">, I32EnumAttrCase<"Max", 1, "max">]> {
  let cppNamespace = "::mlir::attnedit::ascend";
}

#endif // ASCEND_BASE_TD
