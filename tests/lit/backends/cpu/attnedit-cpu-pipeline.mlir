// RUN: attnedit-opt %s --attnedit-cpu-pipeline | FileCheck %s
// RUN: attnedit-opt %s --attnedit-cpu-pipeline | FileCheck %s --check-prefix=NOCOPY
// RUN: attnedit-opt %s --attnedit-cpu-pipeline=gemm=loops | FileCheck %s --check-prefix=LOOPS

// Tests that a whole attention layer (a composite, decomposed by the
// pipeline) reaches the LLVM dialect with its projections as calls of the
// BLAS shims and its core as one call of the fused attention kernel, through
// their C interface, and with gemm=loops as no call at all. No buffer is
// copied: each projection writes into its own buffer and the head split
// views it (a shared zero fill and tensor.reshape had made copies); and no
// buffer is zeroed for a projection, which overwrites it (BLAS beta = 0).
// CHECK-LABEL: llvm.func @layer
// CHECK-DAG: llvm.call @attnedit_cpu_gemm_nt_overwrite
// CHECK-DAG: llvm.call @attnedit_cpu_attention
// CHECK-DAG: llvm.func @_mlir_ciface_attnedit_cpu_gemm_nt_overwrite(!llvm.ptr, !llvm.ptr, !llvm.ptr)
// CHECK-NOT: attnedit.
// NOCOPY-NOT: memcpy
// NOCOPY-NOT: memrefCopy
// NOCOPY-NOT: llvm.call @attnedit_cpu_gemm_nt(
// LOOPS-LABEL: llvm.func @layer
// LOOPS-NOT: attnedit_cpu_
func.func @layer(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  %wq = attnedit.param "q" : tensor<64x64xf32>
  %wk = attnedit.param "k" : tensor<64x64xf32>
  %wv = attnedit.param "v" : tensor<64x64xf32>
  %wo = attnedit.param "o" : tensor<64x64xf32>
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style interleaved>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}
