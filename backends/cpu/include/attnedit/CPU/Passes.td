//===- Passes.td - CPU backend passes ----------------------*- tablegen -*-===//
//
// File organization: the one conversion out of the attnedit dialect; the
// pipeline that follows it (bufferization, loops, LLVM) is built from
// upstream passes in Pipeline.cpp and registered as `attnedit-cpu-pipeline`.
//
//===----------------------------------------------------------------------===//

#ifndef ATTNEDIT_CPU_PASSES
#define ATTNEDIT_CPU_PASSES

include "mlir/Pass/PassBase.td"

def ConvertToLinalgPass : Pass<"attnedit-cpu-convert-to-linalg", "mlir::ModuleOp"> {
  let summary = "lowers attnedit primitives to linalg on tensors and GEMM library calls";
  let description = [{
    Every `attnedit.param` becomes a trailing argument of its function,
    annotated `attnedit.param = "name"` (and `attnedit.scope`), read-only
    (`bufferization.writable = false`): the runtime binds it to the parameter
    store's memory, weights are never copied into the module.

    Elementwise ops and reductions become `linalg.generic` (reductions of
    RMSNorm, softmax and sums accumulate in f64, as the reference kernels do,
    so parity holds at 1e-5). GEMMs (`linear`, `matmul`, with a transposed
    operand folded into the access map, never materialised) become a
    `linalg.generic` contraction carrying `library_call =
    "attnedit_cpu_{b,}gemm_{n,t}{n,t}"`; `attnedit-cpu-library-calls` turns it
    into a call of the BLAS shim in GemmLibrary.cpp, and with
    `gemm=loops` the same generic lowers to plain loops instead.

    ```mlir
    %y = attnedit.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
    // becomes
    %y = linalg.generic {indexing_maps = [(m,n,k)->(m,k), (m,n,k)->(n,k), (m,n,k)->(m,n)],
                         library_call = "attnedit_cpu_gemm_nt"} ins(%x, %w) outs(%zero)
    ```

    With `gemm=blas`, each attention chain `matmul(q, kᵀ) → scale →
    causal_mask → softmax(+sinks) → matmul(·, v)` whose probabilities feed
    only the value product becomes one opaque generic carrying `library_call
    = "attnedit_cpu_attention[_sinks]"`: the flash-attention kernel of
    AttentionLibrary.cpp (tiles, online softmax, no T×T buffer, future key
    blocks skipped). Functions that compute gradients (`loss_grad`) lower op
    by op, bit for bit as the reference.

    The paged KV-cache ops become library calls too (CacheLibrary.cpp):
    `cache_write` as a generic whose output is its pool, so bufferization
    writes into the pool argument in place (the argument is marked
    writable), and `paged_attention`. A result that is a pool argument
    after its writes is dropped from the function; `attnedit.donated_results`
    on the function lists, per original result, the argument it is (-1:
    computed), for the runtime to hand back.

    Composite attention ops must be decomposed first
    (`--attnedit-decompose`); any attnedit op left without a lowering is an
    error naming it.
  }];
  let options = [
    Option<"gemm", "gemm", "std::string", /*default=*/"\"blas\"",
           "GEMM implementation: blas (library call) or loops (generated) (default blas)">,
  ];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::func::FuncDialect",
    "mlir::linalg::LinalgDialect", "mlir::math::MathDialect",
    "mlir::tensor::TensorDialect", "mlir::bufferization::BufferizationDialect",
    "mlir::scf::SCFDialect",
  ];
}

def FuseElementwisePass : Pass<"attnedit-cpu-fuse-elementwise"> {
  let summary = "fuses producer-consumer elementwise linalg ops, never into a GEMM";
  let description = [{
    Upstream's elementwise fusion (`populateElementwiseOpsFusionPatterns`)
    with one restriction: a `linalg.generic` carrying a `library_call` (the
    GEMMs of attnedit-cpu-convert-to-linalg) is neither a consumer nor a
    producer, so RMSNorm, RoPE, SiLU·mul and residual chains fuse into single
    loops while GEMMs still reach the BLAS call unchanged.

    It also rewrites the gradient of a concatenation, which autodiff writes
    as a sum of zero-padded parts (one slice VJP each), into the parts
    inserted into one tensor when they are disjoint and cover it: MLA's
    backward had three fills and a full-size add per concatenation. A slice
    put back at its own place in an empty tensor of its source's shape is
    that source: a concatenation starting with it (MLA's query) writes the
    other parts into the source rather than copying the slice.
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect", "mlir::tensor::TensorDialect"];
}

def HoistSizeChecksPass : Pass<"attnedit-cpu-hoist-size-checks", "mlir::func::FuncOp"> {
  let summary = "run each run-time size check as early as its sizes are known";
  let description = [{
    The lowering checks sizes the verifier saw as dynamic (an elementwise
    op's operands, a slice's end, softmax sinks) where the op runs: an
    `scf.if` calling `attnedit_cpu_refuse_call`. Canonicalization then takes
    the sizes the checked op assumes equal as equal everywhere: a static
    size of one operand flows back into the other's producers (an embedding
    of 3 ids became one of 1 id, writing 3 rows into a 1-row buffer before
    the check ran). This pass moves each check, with the pure ops computing
    its sizes (mostly `tensor.dim` of the function's arguments), to just
    after the last op it depends on, and no earlier than the check before
    it, so the call is refused before such a producer runs.
  }];
}

def UnshareFillsPass : Pass<"attnedit-cpu-unshare-fills"> {
  let summary = "each op that writes into a filled tensor gets a fill of its own";
  let description = [{
    CSE merges the identical zero fills every GEMM, reduction and bias
    accumulates into, so one filled tensor feeds many destinations. One-shot
    bufferization then fills one buffer and copies it into each
    destination: a 512-token forward of the issue's medium model ran 105
    such copies. Run just before bufferization, this pass gives every
    destination-style use of a `linalg.fill` (and of the `tensor.empty` it
    fills) its own clone, placed right before the user, so each buffer is
    filled in place.

    ```mlir
    %z = linalg.fill ins(%c0 : f32) outs(%e : tensor<8x4xf32>) -> tensor<8x4xf32>
    %a = linalg.generic ... outs(%z : tensor<8x4xf32>)
    %b = linalg.generic ... outs(%z : tensor<8x4xf32>)
    // becomes
    %z0 = linalg.fill ins(%c0 : f32) outs(%e0 : tensor<8x4xf32>) -> tensor<8x4xf32>
    %a = linalg.generic ... outs(%z0 : tensor<8x4xf32>)
    %z1 = linalg.fill ins(%c0 : f32) outs(%e1 : tensor<8x4xf32>) -> tensor<8x4xf32>
    %b = linalg.generic ... outs(%z1 : tensor<8x4xf32>)
    ```
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect", "mlir::tensor::TensorDialect"];
}

def StridedCopiesPass : Pass<"attnedit-cpu-strided-copies"> {
  let summary = "copies between non-contiguous memrefs become loops, not memrefCopy calls";
  let description = [{
    `finalize-memref-to-llvm` lowers a `memref.copy` whose operands are
    both contiguous to a `memcpy`, and any other to a call of MLIR's generic
    runtime function `memrefCopy`, which copies one element at a time through
    `memcpy`. Bufferization writes such copies wherever a tensor is inserted
    into a slice (MLA's concatenated query and key heads, GateSWA's gated
    halves): in a distillation step `memrefCopy` and the `memcpy` calls it
    makes were 3-5% of the samples. This pass, run after bufferization,
    turns each of those copies into a `linalg.copy`, which the later passes
    outline, parallelize and lower to a vectorizable loop nest like any other
    elementwise op; copies `memcpy` serves are left alone.

    ```mlir
    memref.copy %a, %b : memref<?x4x8xf32> to memref<?x4x8xf32, strided<[96, 24, 1], offset: 16>>
    // becomes
    linalg.copy ins(%a : memref<?x4x8xf32>) outs(%b : memref<?x4x8xf32, strided<[96, 24, 1], offset: 16>>)
    ```
  }];
  let dependentDialects = ["mlir::linalg::LinalgDialect"];
}

def LibraryCallsPass : Pass<"attnedit-cpu-library-calls", "mlir::ModuleOp"> {
  let summary = "bufferized linalg.generic ops with a library_call become calls";
  let description = [{
    Upstream's `convert-linalg-to-std` rewrites every linalg op, including
    those with no library (`op_has_no_registered_library_name`); this pass
    rewrites only generics carrying `library_call` and leaves the rest to
    `convert-linalg-to-loops`. Each operand is cast to a fully dynamic
    strided layout and the callee is declared `llvm.emit_c_interface`, so
    the shim receives StridedMemRefType pointers.

    ```mlir
    linalg.generic {library_call = "attnedit_cpu_gemm_nt", ...} ins(%a, %b : ...) outs(%c : ...)
    // becomes
    func.call @attnedit_cpu_gemm_nt(%a2, %b2, %c2) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, ...) -> ()
    ```

    A GEMM whose destination was last written by a zero `linalg.fill`, with
    nothing touching it in between, calls the `_overwrite` form of its shim
    (BLAS beta = 0) and the fill is erased: the library zeroes C within the
    call, one loop and one parallel region fewer per GEMM.
  }];
  let dependentDialects = ["mlir::func::FuncDialect", "mlir::memref::MemRefDialect"];
}

def OutlineLoopsPass : Pass<"attnedit-cpu-outline-loops", "mlir::ModuleOp"> {
  let summary = "each bufferized linalg op becomes a call of its own noinline function";
  let description = [{
    A whole model's step is one function of thousands of loops, and LLVM's
    per-function passes (dominators, SCEV, register allocation) grow faster
    than linearly with a function's size: a stories260K-sized training step
    spent most of its 25 s cold compile there. Each linalg op left after
    `attnedit-cpu-library-calls` moves into a private function
    `@<caller>__loop<N>` taking the op's operands (constants used inside its
    body are cloned in, other captured values become arguments) and marked
    `noinline`, so LLVM optimises many small functions. Ops whose functions
    would be identical (every layer repeats the same loops on the same
    shapes) share one, so a 12-layer model compiles its loops once. One call
    per op per step costs nothing beside the loops it runs.

    ```mlir
    linalg.generic {...} ins(%a : memref<4xf32>) outs(%b : memref<4xf32>) {...}
    // becomes
    func.call @step__loop0(%a, %b) : (memref<4xf32>, memref<4xf32>) -> ()
    ```
  }];
  let dependentDialects = ["mlir::func::FuncDialect", "mlir::LLVM::LLVMDialect"];
}

def ParallelLoopsPass : Pass<"attnedit-cpu-parallel-loops", "mlir::func::FuncOp"> {
  let summary = "a bufferized linalg op's outer parallel loop runs on every core (OpenMP)";
  let description = [{
    A batch of one sequence runs in one lane, so its fused elementwise loops
    (norms, RoPE, SiLU·mul, softmax, their backward forms) would run on one
    core while OpenBLAS's GEMMs use all of them. Each bufferized linalg op
    whose first iterator is parallel (rows, heads) is lowered to loops here,
    and its outer loop becomes an `omp.wsloop` (static schedule) inside an
    `omp.parallel`, taken when the op's work -- the outer trip count times
    the static trip counts inside it -- reaches `min-work` iterations; below
    it the plain loop runs: a decode step's single row, or a small vector,
    stays on the calling thread without calling into the OpenMP runtime at
    all. Ops whose work is static and below the bound are left to
    `convert-linalg-to-loops`. Inside an enclosing parallel region (a
    training batch's lanes) the OpenMP runtime runs the region on the
    calling thread.

    ```mlir
    linalg.generic {iterator_types = ["parallel", "parallel"]} ins(%a : memref<?x64xf32>) ...
    // becomes
    scf.if %work_is_large {
      omp.parallel {
        omp.wsloop { omp.loop_nest (%i) : index = (%c0) to (%rows) step (%c1) {
          scf.for %j = %c0 to %c64 step %c1 { ... } omp.yield } omp.terminator }
        omp.terminator }
    } else {
      scf.for %i = %c0 to %rows step %c1 { scf.for %j ... }
    }
    ```
  }];
  let options = [
    Option<"minWork", "min-work", "int64_t", /*default=*/"32768",
           "iterations below which an op runs on the calling thread (default 32768)">,
  ];
  let dependentDialects = ["mlir::omp::OpenMPDialect", "mlir::scf::SCFDialect",
                           "mlir::arith::ArithDialect"];
}

def PlanArenaPass : Pass<"attnedit-cpu-plan-arena", "mlir::ModuleOp"> {
  let summary = "static memory plan: intermediate buffers become views of one arena";
  let description = [{
    Runs between one-shot bufferization and deallocation. In each function
    with a body, every `memref.alloc` of its entry block with a static shape
    whose buffer (or any view of it) does not reach `func.return` gets an
    offset in one arena from its live range: from the alloc to the last use
    of the buffer or its aliases, counting a use inside a nested region at
    its enclosing op. Buffers are placed largest first at the lowest
    64-byte-aligned offset free over their live range (the greedy-by-size
    placement of TFLite's arena planner and XLA's heap simulator). The
    alloc becomes a `memref.view` of a new last argument `memref<Nxi8>`
    (argument attribute `attnedit.arena`), and the function gets
    `attnedit.arena_bytes = N`. The caller passes that arena, reused from
    call to call, so a step allocates only its results.

    ```mlir
    %b = memref.alloc() {alignment = 64 : i64} : memref<8x4xf32>
    // becomes
    %b = memref.view %arena[%c128][] : memref<256xi8> to memref<8x4xf32>
    ```
  }];
  let dependentDialects = ["mlir::arith::ArithDialect", "mlir::memref::MemRefDialect"];
}

#endif // ATTNEDIT_CPU_PASSES
