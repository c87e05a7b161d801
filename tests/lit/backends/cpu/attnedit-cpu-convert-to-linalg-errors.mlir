// RUN: attnedit-opt %s --attnedit-cpu-convert-to-linalg -verify-diagnostics -split-input-file
// RUN: not attnedit-opt %s --attnedit-cpu-convert-to-linalg=gemm=mkl 2>&1 | FileCheck %s --check-prefix=GEMM

// Tests that a composite left undecomposed is an error naming it and the
// remedy, and that an unknown GEMM choice is refused.
// GEMM: gemm must be blas or loops, not 'mkl'
func.func @composite(%x: tensor<?x64xf32>, %pos: tensor<?xi32>) -> tensor<?x64xf32> {
  %wq = attnedit.param "q" : tensor<64x64xf32>
  %wk = attnedit.param "k" : tensor<64x64xf32>
  %wv = attnedit.param "v" : tensor<64x64xf32>
  %wo = attnedit.param "o" : tensor<64x64xf32>
  // expected-error @+1 {{attnedit-cpu: no CPU lowering for 'attnedit.attention' (composites need --attnedit-decompose first)}}
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style interleaved>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// -----
// A parameter read with two shapes is refused, as the reference refuses it
// (the second read took the first's argument and ran with changed logits).
func.func @two_shapes(%x: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x32xf32>) {
  %w = attnedit.param "w" : tensor<64x64xf32>
  // expected-error @+1 {{parameter 'w' is used with shapes [64, 64] and [32, 64]}}
  %w2 = attnedit.param "w" : tensor<32x64xf32>
  %0 = attnedit.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %1 = attnedit.linear %x, %w2 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %0, %1 : tensor<?x64xf32>, tensor<?x32xf32>
}

// -----
// Another dialect's op (a module lowered for Ascend, say) is named; it
// reached bufferization, which said only "op was not bufferized".
func.func @foreign(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{attnedit-cpu: 'memref.alloc' is not an op the CPU pipeline lowers: it takes attnedit modules}}
  %m = memref.alloc() : memref<4xf32>
  return %x : tensor<4xf32>
}
