//===- AscendOps.td - ascend operations --------------------*- tablegen -*-===//
//
// Structure (kernel, launch), memory (alloc, slot), data movement (copy),
// Cube (mmad), Vector (v*), and synchronisation (set_flag, wait_flag,
// barrier, sync_all). Loops and index arithmetic inside a kernel are scf and
// arith ops; the simulator and cost model expand them per block index.
//
//===----------------------------------------------------------------------===//

#ifndef ASCEND_OPS_TD
#define ASCEND_OPS_TD

include "attnedit/Ascend/AscendBase.td"
include "attnedit/Ascend/AscendTypes.td"
include "attnedit/Ascend/AscendInterfaces.td"
include "mlir/IR/SymbolInterfaces.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Ascend_Buf : Type<CPred<"::llvm::isa<::mlir::attnedit::ascend::BufType>($_self)">,
                      "ascend buffer", "::mlir::attnedit::ascend::BufType">;

class Ascend_PipeOp<string mnemonic, list<Trait> traits = []>
    : Ascend_Op<mnemonic, !listconcat(traits, [DeclareOpInterfaceMethods<Ascend_PipeOpInterface>])>;

//===----------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------===//

def Ascend_KernelOp : Ascend_Op<"kernel", [Symbol, IsolatedFromAbove, SingleBlock, NoTerminator]> {
  let summary = "a per-core program over a block index";
  let description = [{
    The body runs once per block index in [0, block_dim), each on its own
    core (S24: blockDim cores). Its entry block takes the block index, then
    the GM tensors: the inputs, then the outputs. `target` is the target
    description the kernel was built for: a built-in's name
    (backends/ascend/targets/<target>.json) or the path of a JSON file of
    that form. The verifier checks every allocation's capacity and
    alignment, every copy's path and pipe, and event ids against it; the
    simulator and the cost model read the same description. `tiling` holds the matmul tiling in CANN's
    TCubeTiling field names (S20).

    A `mix` kernel's entry block takes a second index after the block
    index: which core of the block runs the body, 0 for the cube core (AIC)
    and 1 + GetSubBlockIdx() for its vector cores (S1, S24: one AIC and two
    AIVs per block on the 910B); the body branches on it (Ascend C's
    `ASCEND_IS_AIC` / `ASCEND_IS_AIV`). The cores of a block exchange data
    through GM, ordered by `cross_set` / `cross_wait`. `workspace` lists the
    GM arguments that are scratch of the kernel (the cube <-> vector ring):
    the cost model counts their traffic against L2, not HBM (S26: the
    AIC <-> AIV path is "L2 and GM").

    ```mlir
    ascend.kernel @k target "910b" blocks 24 core aic {
    ^bb0(%block: index, %a: !ascend.buf<gm, 256x128xbf16, nd>):
      %t = ascend.alloc offset 0 slots 2 : !ascend.buf<l1, 128x128xbf16, nz>
      ...
    }
    ```
  }];
  let arguments = (ins SymbolNameAttr:$sym_name, StrAttr:$target, I64Attr:$block_dim,
                       Ascend_CoreKind:$core, OptionalAttr<DictionaryAttr>:$tiling,
                       OptionalAttr<DenseI64ArrayAttr>:$workspace);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = [{
    $sym_name `target` $target `blocks` $block_dim `core` $core attr-dict-with-keyword $body
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    ::mlir::Value getBlockIndex() { return getBody().front().getArgument(0); }
    /// Arguments before the GM tensors: the block index, and for a mix
    /// kernel the core within the block.
    unsigned getNumIndexArgs() { return getCore() == CoreKind::Mix ? 2 : 1; }
    ::mlir::Block::BlockArgListType getTensorArgs() {
      return getBody().front().getArguments().drop_front(getNumIndexArgs());
    }
  }];
}

def Ascend_LaunchOp : Ascend_Op<"launch", [DeclareOpInterfaceMethods<SymbolUserOpInterface>]> {
  let summary = "runs a kernel on tensors";
  let description = [{
    Copies the `inputs` into the kernel's GM inputs, row-major, as the
    argument's shape (same element count) and element type (f32 rounds to
    f16/bf16, i32 positions convert exactly below 2^24), runs `block_dim`
    blocks of the kernel, and returns its GM outputs widened to f32.
    The kernel's `workspace` arguments are neither: the launch provides
    that scratch.
  }];
  let arguments = (ins FlatSymbolRefAttr:$kernel, Variadic<AnyRankedTensor>:$inputs);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let assemblyFormat = "$kernel `(` $inputs `)` attr-dict `:` functional-type($inputs, $results)";
}

//===----------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------===//

def Ascend_AllocOp : Ascend_Op<"alloc", [Pure]> {
  let summary = "a planned on-chip buffer: `slots` copies of its type from `offset`";
  let description = [{
    Slot i occupies [offset + i·bytes, offset + (i+1)·bytes) of its space,
    `bytes` being the type's padded size. Several slots make a multi-buffer
    (ping-pong, S17); `ascend.slot` picks one.
  }];
  let arguments = (ins I64Attr:$offset, I64Attr:$slots);
  let results = (outs Ascend_Buf:$result);
  let assemblyFormat = "`offset` $offset `slots` $slots attr-dict `:` qualified(type($result))";
  let hasVerifier = 1;
}

def Ascend_SlotOp : Ascend_Op<"slot", [Pure, AllTypesMatch<["buffer", "result"]>]> {
  let summary = "slot (index mod slots) of a multi-buffer";
  let arguments = (ins Ascend_Buf:$buffer, Index:$index);
  let results = (outs Ascend_Buf:$result);
  let assemblyFormat = "$buffer `[` $index `]` attr-dict `:` qualified(type($buffer))";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

def Ascend_CopyOp : Ascend_PipeOp<"copy", [AttrSizedOperandSegments]> {
  let summary = "moves a rows x cols window between buffers on one pipe";
  let description = [{
    Reads the window of `sizes` = [rows, cols] (in destination orientation)
    at `src_offsets` and writes it at `dst_offsets`. The offsets index every
    dimension of their buffer; the window spans the last two. Reads past the
    end of a GM tensor return zero (ND2NZ padding of tails), writes past its
    end are dropped (FixPipe writes the valid part). `transpose` swaps rows
    and columns (LoadData with transpose, MTE1 only, S8). The element type
    may change only out of L0C (FixPipe's f32 -> f16/bf16, S36). Which
    (source, destination, pipe) triples exist is the target's path table.

    Data-dependent addressing (a gather or scatter of rows): with `index`,
    the value of element `index_offsets` of that f32 UB tile, read when the
    copy executes, is added to the offset of dimension `index_dim` of the
    copy's GM side, as an Ascend C kernel does with `GetValue` on a
    LocalTensor of ids feeding a `DataCopy`'s GM address (S62). The value
    must be a whole number inside that dimension; the read is an access of
    the index tile like any other (its writer must be ordered before it).
  }];
  let arguments = (ins Ascend_Pipe:$pipe, Ascend_Buf:$src, Variadic<Index>:$src_offsets,
                       Ascend_Buf:$dst, Variadic<Index>:$dst_offsets,
                       DenseI64ArrayAttr:$sizes, UnitAttr:$transpose,
                       Optional<Ascend_Buf>:$index, Variadic<Index>:$index_offsets,
                       OptionalAttr<I64Attr>:$index_dim);
  let assemblyFormat = [{
    $pipe $src `[` $src_offsets `]` `->` $dst `[` $dst_offsets `]` `sizes` $sizes
    (`transpose` $transpose^)?
    (`offset` `by` $index^ `[` $index_offsets `]` `:` qualified(type($index)) `at` `dim` $index_dim)?
    attr-dict `:` qualified(type($src)) `->` qualified(type($dst))
  }];
  let builders = [
    OpBuilder<(ins "Pipe":$pipe, "Value":$src, "ValueRange":$srcOffsets, "Value":$dst,
                   "ValueRange":$dstOffsets, "ArrayRef<int64_t>":$sizes, "bool":$transpose), [{
      build($_builder, $_state, pipe, src, srcOffsets, dst, dstOffsets, sizes, transpose,
            /*index=*/Value(), /*index_offsets=*/ValueRange(), /*index_dim=*/IntegerAttr());
    }]>
  ];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Cube
//===----------------------------------------------------------------------===//

def Ascend_MmadOp : Ascend_PipeOp<"mmad"> {
  let summary = "C (+)= A · B on the Cube";
  let description = [{
    A [m, k] in L0A, B [k, n] in L0B, both f16 or bf16 (or f32 where the
    target's cube has an f32 rate); C [m, n] f32 in L0C. `init` true
    overwrites C, false accumulates (S3, S20: fp32 accumulation in L0C).
  }];
  let arguments = (ins Ascend_Buf:$a, Ascend_Buf:$b, Ascend_Buf:$c, I1:$init);
  let assemblyFormat = "$a `,` $b `->` $c `init` $init attr-dict `:` qualified(type($a)) `,` qualified(type($b)) `->` qualified(type($c))";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Vector (tile-level, on UB)
//===----------------------------------------------------------------------===//

class Ascend_VBinaryOp<string mnemonic, string what>
    : Ascend_PipeOp<mnemonic, [AllTypesMatch<["lhs", "rhs", "dst"]>]> {
  let summary = "element-wise " # what # " of two UB tiles";
  let arguments = (ins Ascend_Buf:$lhs, Ascend_Buf:$rhs, Ascend_Buf:$dst);
  let assemblyFormat = "$lhs `,` $rhs `->` $dst attr-dict `:` qualified(type($dst))";
  let hasVerifier = 1;
}
def Ascend_VAddOp : Ascend_VBinaryOp<"vadd", "sum">;
def Ascend_VSubOp : Ascend_VBinaryOp<"vsub", "difference">;
def Ascend_VMulOp : Ascend_VBinaryOp<"vmul", "product">;
def Ascend_VDivOp : Ascend_VBinaryOp<"vdiv", "quotient">;
def Ascend_VMaxOp : Ascend_VBinaryOp<"vmax", "maximum">;

class Ascend_VUnaryOp<string mnemonic, string what>
    : Ascend_PipeOp<mnemonic, [AllTypesMatch<["src", "dst"]>]> {
  let summary = "element-wise " # what # " of a UB tile";
  let arguments = (ins Ascend_Buf:$src, Ascend_Buf:$dst);
  let assemblyFormat = "$src `->` $dst attr-dict `:` qualified(type($dst))";
  let hasVerifier = 1;
}
def Ascend_VExpOp : Ascend_VUnaryOp<"vexp", "exp">;
def Ascend_VSqrtOp : Ascend_VUnaryOp<"vsqrt", "square root">;
def Ascend_VRecOp : Ascend_VUnaryOp<"vrec", "reciprocal">;
def Ascend_VSinOp : Ascend_VUnaryOp<"vsin", "sine">;
def Ascend_VCosOp : Ascend_VUnaryOp<"vcos", "cosine">;
// Ascend C Ln (HIVM lists v.ln, S37): the losses' log-softmax.
def Ascend_VLnOp : Ascend_VUnaryOp<"vln", "natural logarithm">;

class Ascend_VScalarOp<string mnemonic, string what>
    : Ascend_PipeOp<mnemonic, [AllTypesMatch<["src", "dst"]>]> {
  let summary = "element-wise " # what # " of a UB tile and a scalar";
  let arguments = (ins Ascend_Buf:$src, F64Attr:$scalar, Ascend_Buf:$dst);
  let assemblyFormat = "$src `,` $scalar `->` $dst attr-dict `:` qualified(type($dst))";
  let hasVerifier = 1;
}
def Ascend_VAddsOp : Ascend_VScalarOp<"vadds", "sum">;
def Ascend_VMulsOp : Ascend_VScalarOp<"vmuls", "product">;

def Ascend_VDupOp : Ascend_PipeOp<"vdup"> {
  let summary = "fills a UB tile with a scalar";
  let arguments = (ins F64Attr:$scalar, Ascend_Buf:$dst);
  let assemblyFormat = "$scalar `->` $dst attr-dict `:` qualified(type($dst))";
  let hasVerifier = 1;
}

def Ascend_VCastOp : Ascend_PipeOp<"vcast"> {
  let summary = "element type conversion of a UB tile (round to nearest even)";
  let arguments = (ins Ascend_Buf:$src, Ascend_Buf:$dst);
  let assemblyFormat = "$src `->` $dst attr-dict `:` qualified(type($src)) `->` qualified(type($dst))";
  let hasVerifier = 1;
}

def Ascend_VReduceOp : Ascend_PipeOp<"vreduce"> {
  let summary = "row reduction of a UB tile [r, c] into a column [r, 1]";
  let arguments = (ins Ascend_ReduceKind:$kind, Ascend_Buf:$src, Ascend_Buf:$dst);
  let assemblyFormat = "$kind $src `->` $dst attr-dict `:` qualified(type($src)) `->` qualified(type($dst))";
  let hasVerifier = 1;
}

def Ascend_VBrcbOp : Ascend_PipeOp<"vbrcb"> {
  let summary = "broadcast of a UB column [r, 1] along rows into [r, c]";
  let arguments = (ins Ascend_Buf:$src, Ascend_Buf:$dst);
  let assemblyFormat = "$src `->` $dst attr-dict `:` qualified(type($src)) `->` qualified(type($dst))";
  let hasVerifier = 1;
}

def Ascend_VGatherOp : Ascend_PipeOp<"vgather"> {
  let summary = "columns of a UB tile picked by an index row: dst[r, j] = src[r, index[0, j]]";
  let description = [{
    Ascend C's Gather (V pipe; CANN API reference atlasascendc_api_07_0092:
    dst[i] = src[srcOffset[i]], offsets in a LocalTensor<uint32_t> of bytes),
    applied to every row. The model keeps the offsets as element indices in
    an f32 tile (buffers hold f32/f16/bf16 here); interleaved RoPE uses it to
    swap the elements of each pair.
  }];
  let arguments = (ins Ascend_Buf:$src, Ascend_Buf:$index, Ascend_Buf:$dst);
  let assemblyFormat = "$src `[` $index `]` `->` $dst attr-dict `:` qualified(type($src)) `,` qualified(type($index)) `->` qualified(type($dst))";
  let hasVerifier = 1;
}

def Ascend_VTransposeOp : Ascend_PipeOp<"vtranspose"> {
  let summary = "transpose of a UB tile: dst[c, r] = src[r, c]";
  let description = [{
    HIVM's `vtranspose` (S37); on the device Ascend C's TransDataTo5HD
    (vnchwconv: 16 blocks of 32 bytes per repeat) or Transpose for 16x16
    2-byte tiles. The model takes any shape and charges it like an
    element-wise op over the source.
  }];
  let arguments = (ins Ascend_Buf:$src, Ascend_Buf:$dst);
  let assemblyFormat = "$src `->` $dst attr-dict `:` qualified(type($src)) `->` qualified(type($dst))";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Synchronisation
//===----------------------------------------------------------------------===//

def Ascend_SetFlagOp : Ascend_PipeOp<"set_flag"> {
  let summary = "signals `dst_pipe` once every earlier `src_pipe` instruction is done";
  let description = [{
    SetFlag<HardEvent::SRC_DST>(event) (S22): queued on `src_pipe`, it fires
    when the instructions issued before it on that pipe have completed. A
    second set of the same (src, dst, event) before its wait is illegal.
  }];
  let arguments = (ins Ascend_Pipe:$src_pipe, Ascend_Pipe:$dst_pipe, Index:$event);
  let assemblyFormat = "$src_pipe `->` $dst_pipe `,` $event attr-dict";
  let hasVerifier = 1;
}

def Ascend_WaitFlagOp : Ascend_PipeOp<"wait_flag"> {
  let summary = "blocks `dst_pipe` until the matching set_flag has fired";
  let arguments = (ins Ascend_Pipe:$src_pipe, Ascend_Pipe:$dst_pipe, Index:$event);
  let assemblyFormat = "$src_pipe `->` $dst_pipe `,` $event attr-dict";
  let hasVerifier = 1;
}

def Ascend_BarrierOp : Ascend_PipeOp<"barrier"> {
  let summary = "orders the instructions of one pipe";
  let description = [{
    PipeBarrier<PIPE_X> (S55): needed between data-dependent instructions of
    the same pipe, whose issue order alone does not order them; forbidden on
    the scalar pipe.
  }];
  let arguments = (ins Ascend_Pipe:$pipe);
  let assemblyFormat = "$pipe attr-dict";
  let hasVerifier = 1;
}

def Ascend_CrossSetOp : Ascend_PipeOp<"cross_set"> {
  let summary = "signals the other cores of this block once every earlier `pipe` instruction is done";
  let description = [{
    CrossCoreSetFlag<2, pipe>(flag) (S23, mode 2: the AIC and the AIVs of
    one AI core). Each flag id is a counter per receiving core: a set by the
    cube core increments it on both vector cores; a set by a vector core
    increments the cube core's count from that vector core. The set is
    queued on `pipe` and fires when the instructions issued before it on
    that pipe have completed, so it publishes exactly what that pipe wrote
    (the idiom: FIX after FixPipe's GM write, MTE3 after the vector's
    UB -> GM copy; S28, S30, S31). At most 16 sets of one id may be pending.
  }];
  let arguments = (ins Ascend_Pipe:$pipe, Index:$flag);
  let assemblyFormat = "$pipe `,` $flag attr-dict";
  let hasVerifier = 1;
}

def Ascend_CrossWaitOp : Ascend_PipeOp<"cross_wait"> {
  let summary = "blocks this core until a matching cross_set has fired, then consumes it";
  let description = [{
    CrossCoreWaitFlag(flag) (S23): the scalar unit stalls until the flag's
    counter is positive, then decrements it, so no instruction after it in
    program order starts before the set it consumed. On the cube core it
    needs a set from each of its vector cores.
  }];
  let arguments = (ins Index:$flag);
  let assemblyFormat = "$flag attr-dict";
}

def Ascend_SyncAllOp : Ascend_Op<"sync_all"> {
  let summary = "all pipes of all cores of the kernel drain and meet (SyncAll, S24)";
  let assemblyFormat = "attr-dict";
}

#endif // ASCEND_OPS_TD
