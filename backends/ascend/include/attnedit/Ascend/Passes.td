//===- Passes.td - Ascend backend passes -------------------*- tablegen -*-===//
//
// File organization: lowering from the attnedit dialect first, then the
// passes that check and time a schedule. Each pass lives in
// backends/ascend/lib/Transforms/<Name>.cpp; the pipeline
// `attnedit-ascend-pipeline` (Passes.cpp) chains them.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNEDIT_ASCEND_PASSES_TD
#define ATTNEDIT_ASCEND_PASSES_TD

include "mlir/Pass/PassBase.td"

//===----------------------------------------------------------------------===//
// Lowering
//===----------------------------------------------------------------------===//

def AscendLowerMatmulPass : Pass<"attnedit-ascend-lower-matmul", "::mlir::ModuleOp"> {
  let summary = "Lower attnedit.linear / attnedit.matmul to tiled multi-core Cube kernels";
  let description = [{
    Replaces each statically shaped `attnedit.linear` (x·Wᵀ) and 2-D or
    batched `attnedit.matmul` by an `ascend.launch` of a new `ascend.kernel`:
    C[M, N] is cut into baseM x baseN tiles dealt round-robin to the cube
    cores (task = block + i·block_dim); each task loops over K in L1 blocks
    of stepK·baseK (MTE2, ND2NZ, two L1 slots per operand), each split into
    baseK slices moved to L0A/L0B (MTE1, two slots each), multiplied and
    accumulated in L0C (M, fp32), and written back through FixPipe (f32 ->
    `dtype`), or through UB on targets without FixPipe. Every cross-pipe
    dependency gets a set_flag/wait_flag pair and every same-pipe one a
    barrier (S22, S55).

    The tile sizes are chosen by replaying each candidate tiling that fits
    the target's L1/L0A/L0B/L0C capacities in the cost model and keeping the
    fastest. The chosen tiling is recorded in TCubeTiling field names (S20).

    With `fuse-shared-input` (default), linears of one block that read the
    same input (a layer's q/k/v or gate/up projections) become one kernel
    over their weights side by side along N: one launch taking x and each
    weight and returning each output (the weights are not concatenated; a
    tile reads the weight of the part its columns fall in). A narrow
    projection (k/v: N = 1024 of a 4096-token prefill) alone has 128 tiles
    for 24 cube cores and re-reads x only N/baseN times through L2; fused
    with q it shares q's tiles and x's L2 reuse.

    Before:
    ```mlir
    %y = attnedit.linear %x, %w : (tensor<64x128xf32>, tensor<96x128xf32>) -> tensor<64x96xf32>
    ```
    After:
    ```mlir
    %y = ascend.launch @linear_0(%x, %w) : (tensor<64x128xf32>, tensor<96x128xf32>) -> tensor<64x96xf32>
    ascend.kernel @linear_0 target "910b" blocks 1 core aic {...}
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", "\"910b\"",
           "target description: a built-in name (910b, 910a) or a JSON file (default 910b)">,
    Option<"dtype", "dtype", "std::string", "\"bf16\"",
           "element type of the GM operands and result: f16 or bf16 (default bf16)">,
    Option<"tiling", "tiling", "std::string", "\"\"",
           "force a tiling baseM,baseN,baseK,stepK instead of searching">,
    Option<"fuseSharedInput", "fuse-shared-input", "bool", "true",
           "linears reading the same input as one kernel (weights side by side along N)"
           " (default true)">,
  ];
  let dependentDialects = ["::mlir::attnedit::ascend::AscendDialect",
                           "::mlir::arith::ArithDialect", "::mlir::scf::SCFDialect"];
}

def AscendLowerVectorPass : Pass<"attnedit-ascend-lower-vector", "::mlir::ModuleOp"> {
  let summary = "Lower rms_norm, silu·mul, silu, sigmoid, add, mul, softmax and their row-wise gradients to Vector kernels";
  let description = [{
    Replaces statically shaped row-wise ops by launches of vector-core
    kernels: the tensor is viewed as [rows, last dim], rows are dealt in
    tiles to the vector cores (48 AIV on the 910B), and each tile goes
    GM -> UB (MTE2), through whole-tile vector ops (V), and UB -> GM (MTE3),
    with two UB slots per stream so the three pipes overlap (Ascend C's
    CopyIn / Compute / CopyOut with InitBuffer(que, 2, len), S17). The tile
    height is the largest that fits UB. `mul(silu(g), u)` becomes one fused
    kernel (SwiGLU). Softmax along the last axis only, without sinks;
    element-wise ops only on equal shapes. The training step's softmax_grad,
    rms_norm_grad, silu_grad and sigmoid_grad become row kernels the same
    way.

    Before:
    ```mlir
    %y = attnedit.rms_norm %x, %w {eps = 1.0e-6 : f64} : (tensor<64x256xf32>, tensor<256xf32>) -> tensor<64x256xf32>
    ```
    After:
    ```mlir
    %w2 = attnedit.reshape %w : (tensor<256xf32>) -> tensor<1x256xf32>
    %y = ascend.launch @rms_norm_0(%x, %w2) : (tensor<64x256xf32>, tensor<1x256xf32>) -> tensor<64x256xf32>
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", "\"910b\"",
           "target description: a built-in name (910b, 910a) or a JSON file (default 910b)">,
  ];
  let dependentDialects = ["::mlir::attnedit::ascend::AscendDialect",
                           "::mlir::arith::ArithDialect", "::mlir::scf::SCFDialect"];
}

def AscendLowerAttentionPass : Pass<"attnedit-ascend-lower-attention", "::mlir::ModuleOp"> {
  let summary = "Lower decomposed attention chains to flash-attention mix kernels";
  let description = [{
    Replaces each statically shaped chain
    `[repeat_kv] → transpose(k, 0 2 1) → matmul(q, ·) → scale → causal_mask
    → softmax(+sinks) → matmul(·, [repeat_kv] v) → transpose(·, 1 0 2)`
    (the decomposition of every attention kind) whose intermediates have no
    other use by one `ascend.launch` of a MIX kernel (catlass
    FlashAttentionInfer's plan, S30): per block the cube core computes QKᵀ
    tiles into a GM ring (FixPipe), its two vector cores run the online
    softmax on half the rows each and write P back, the cube computes P·V,
    the vector cores rescale O; cross_set / cross_wait order the cores, QKᵀ
    runs ahead of PV by the ring depth minus one. K and V are read per KV
    head in place (no repeat_kv), only the KV tiles a query tile's causal or
    sliding window overlaps are loaded, sinks start the running max and sum.
    The mask tiles come from a compressed mask constant (CANN's sparse modes
    3 and 4, S29). The tiling is the fastest of the fitting candidates in
    the cost model.

    Before:
    ```mlir
    %kt = attnedit.transpose %k {permutation = array<i64: 0, 2, 1>} : ...
    %s = attnedit.matmul %q, %kt : ...
    %s1 = attnedit.scale %s {factor = 0.125 : f64} : ...
    %s2 = attnedit.causal_mask %s1 : ...
    %p = attnedit.softmax %s2 {axis = 2 : i64} : ...
    %o = attnedit.matmul %p, %v : ...
    %y = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : ...
    ```
    After:
    ```mlir
    %y0 = ascend.launch @attention_0(%q3, %k, %v, %mask) : (...) -> tensor<Tqx(H·Dv)xf32>
    %y = attnedit.reshape %y0 : ...
    ascend.kernel @attention_0 target "910b" blocks 4 core mix {...}
    ```
  }];
  let options = [
    Option<"target", "target", "std::string", "\"910b\"",
           "target description: a built-in name (910b) or a JSON file (default 910b)">,
    Option<"dtype", "dtype", "std::string", "\"bf16\"",
           "element type of Q, K, V and P as the Cube reads them: f16 or bf16 (default bf16)">,
  ];
  let dependentDialects = ["::mlir::attnedit::ascend::AscendDialect",
                           "::mlir::arith::ArithDialect", "::mlir::scf::SCFDialect"];
}

//===----------------------------------------------------------------------===//
// Checking and timing
//===----------------------------------------------------------------------===//

def AscendSimulatePass : Pass<"attnedit-ascend-simulate", "::mlir::ModuleOp"> {
  let summary = "Execute every ascend.kernel in the functional simulator";
  let description = [{
    Runs each kernel on seeded random GM inputs with the hardware's numerics
    and checks every access: capacity, alignment, path legality, races
    between pipes without happens-before (vector clocks over the pipes;
    set_flag/wait_flag and barrier create the order), the flag protocol and
    deadlock. The first violation is an error at the offending op. With
    `check-reference`, kernels produced from attnedit.linear/matmul are also
    compared with an f32 reference within the dtype's tolerance.
  }];
  let options = [
    Option<"seed", "seed", "uint64_t", "0", "seed of the random inputs (default 0)">,
    Option<"checkReference", "check-reference", "bool", "true",
           "compare outputs with an f32 matmul of the same (rounded) inputs (default true)">,
  ];
}

def AscendEstimatePass : Pass<"attnedit-ascend-estimate", "::mlir::ModuleOp"> {
  let summary = "Time every ascend.kernel with the event-driven cost model";
  let description = [{
    Replays each core's per-pipe instruction streams with their flag
    dependencies on the target's rates and attaches `ascend.estimate` to the
    kernel: estimated time, per-pipe utilisation, the bounding pipe, and the
    roofline (max of Cube time at peak and GM time at full bandwidth).
    `report` writes a JSON report, `trace` a Chrome trace (one track per core
    and pipe), `tiling` the TCubeTiling JSON of each matmul kernel.
  }];
  let options = [
    Option<"report", "report", "std::string", "\"\"",
           "JSON report file to write ('-' = stdout)">,
    Option<"trace", "trace", "std::string", "\"\"", "Chrome trace JSON file to write">,
    Option<"tiling", "tcube-tiling", "std::string", "\"\"",
           "TCubeTiling JSON file to write (the matmul lowering's tiling= forces a "
           "tiling)">,
    Option<"sensitivity", "sensitivity", "bool", "false",
           "add to the report each [E] number's effect at 0.5x and 1.5x (research 11.4)">,
  ];
}

//===----------------------------------------------------------------------===//
// Emission
//===----------------------------------------------------------------------===//

def AscendEmitAscendCPass : Pass<"attnedit-ascend-emit-ascendc", "::mlir::ModuleOp"> {
  let summary = "Write every ascend.kernel as Ascend C-like kernel source";
  let description = [{
    Renders each kernel as an `extern "C" __global__ __aicore__` Ascend C
    function: GlobalTensor arguments, static LocalTensors at the planned
    offsets and TPositions (A1, A2, B2, CO1, VECCALC), DataCopy with
    Nd2NzParams, LoadData, Mmad, Fixpipe, vector intrinsics, and the
    schedule's SetFlag / WaitFlag / PipeBarrier, with the TCubeTiling and
    the cost model's estimate in its header comment. The IR is unchanged.
  }];
  let options = [
    Option<"file", "file", "std::string", "\"-\"", "output file ('-' = stdout) (default -)">,
  ];
}

def AscendExportSchedulePass : Pass<"attnedit-ascend-export-schedule", "::mlir::ModuleOp"> {
  let summary = "Write the expanded schedules of all kernels as one flatbuffer";
  let description = [{
    Expands every ascend.kernel per block index and writes the schedules in
    the runtime/schema/ascend_schedule.fbs format (file identifier "AESC"):
    per core, the instructions in issue order with their pipe, buffer
    windows (space, byte offset, layout) and flags. The IR is unchanged.
  }];
  let options = [
    Option<"file", "file", "std::string", "\"\"", "output file">,
  ];
}

#endif // ATTNEDIT_ASCEND_PASSES_TD
