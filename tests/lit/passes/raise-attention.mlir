// RUN: attnedit-opt %s --split-input-file --attnedit-raise-attention | FileCheck %s

// Primitive subgraphs exactly as AttentionOp::decompose (and so the importer)
// emits them; each raises to one attnedit.attention and nothing else is left
// (CHECK-NEXT from the function entry to the return).

// Tests that Llama grouped-query attention (4 query heads sharing 2 KV heads
// through repeat_kv) raises to one attnedit.attention and no primitive is left.
// CHECK-LABEL: func.func @llama_gqa
// CHECK-NEXT: %[[A0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[A0]]
func.func @llama_gqa(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<64x64xf32>, %arg3: tensor<32x64xf32>, %arg4: tensor<32x64xf32>, %arg5: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.linear %arg0, %arg2 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %1 = attnedit.reshape %0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %2 = attnedit.linear %arg0, %arg3 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %3 = attnedit.reshape %2 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %4 = attnedit.linear %arg0, %arg4 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %5 = attnedit.reshape %4 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %6 = attnedit.rope %1, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 5.000000e+05 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %7 = attnedit.transpose %6 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %8 = attnedit.rope %3, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 5.000000e+05 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %10 = attnedit.transpose %5 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %11 = attnedit.repeat_kv %9 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %12 = attnedit.repeat_kv %10 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %13 = attnedit.transpose %11 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %14 = attnedit.matmul %7, %13 : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %15 = attnedit.scale %14 {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %16 = attnedit.causal_mask %15 : tensor<4x?x?xf32>
  %17 = attnedit.softmax %16 {axis = 2 : i64} : tensor<4x?x?xf32>
  %18 = attnedit.matmul %17, %12 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %19 = attnedit.transpose %18 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %20 = attnedit.reshape %19 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %21 = attnedit.linear %20, %arg5 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %21 : tensor<?x64xf32>
}

// -----

// Tests that multi-head attention (no repeat_kv) raises with num_kv_heads =
// num_heads.
// CHECK-LABEL: func.func @mha
// CHECK-NEXT: %[[A0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[A0]]
func.func @mha(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<64x64xf32>, %arg3: tensor<64x64xf32>, %arg4: tensor<64x64xf32>, %arg5: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.linear %arg0, %arg2 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %1 = attnedit.reshape %0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %2 = attnedit.linear %arg0, %arg3 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %3 = attnedit.reshape %2 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %4 = attnedit.linear %arg0, %arg4 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %5 = attnedit.reshape %4 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %6 = attnedit.rope %1, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %7 = attnedit.transpose %6 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %8 = attnedit.rope %3, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %10 = attnedit.transpose %5 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %11 = attnedit.transpose %9 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %12 = attnedit.matmul %7, %11 : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %13 = attnedit.scale %12 {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %14 = attnedit.causal_mask %13 : tensor<4x?x?xf32>
  %15 = attnedit.softmax %14 {axis = 2 : i64} : tensor<4x?x?xf32>
  %16 = attnedit.matmul %15, %10 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %17 = attnedit.transpose %16 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %18 = attnedit.reshape %17 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %19 = attnedit.linear %18, %arg5 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %19 : tensor<?x64xf32>
}

// -----

// Tests that multi-query attention (one KV head) raises, keeping a partial
// rotary_dim.
// CHECK-LABEL: func.func @mqa
// CHECK-NEXT: %[[A0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[A0]]
func.func @mqa(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<64x64xf32>, %arg3: tensor<16x64xf32>, %arg4: tensor<16x64xf32>, %arg5: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.linear %arg0, %arg2 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %1 = attnedit.reshape %0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %2 = attnedit.linear %arg0, %arg3 : (tensor<?x64xf32>, tensor<16x64xf32>) -> tensor<?x16xf32>
  %3 = attnedit.reshape %2 : (tensor<?x16xf32>) -> tensor<?x1x16xf32>
  %4 = attnedit.linear %arg0, %arg4 : (tensor<?x64xf32>, tensor<16x64xf32>) -> tensor<?x16xf32>
  %5 = attnedit.reshape %4 : (tensor<?x16xf32>) -> tensor<?x1x16xf32>
  %6 = attnedit.rope %1, %arg1 {rotary_dim = 8 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %7 = attnedit.transpose %6 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %8 = attnedit.rope %3, %arg1 {rotary_dim = 8 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x1x16xf32>, tensor<?xi32>) -> tensor<?x1x16xf32>
  %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<?x1x16xf32>) -> tensor<1x?x16xf32>
  %10 = attnedit.transpose %5 {permutation = array<i64: 1, 0, 2>} : (tensor<?x1x16xf32>) -> tensor<1x?x16xf32>
  %11 = attnedit.repeat_kv %9 {repeats = 4 : i64} : (tensor<1x?x16xf32>) -> tensor<4x?x16xf32>
  %12 = attnedit.repeat_kv %10 {repeats = 4 : i64} : (tensor<1x?x16xf32>) -> tensor<4x?x16xf32>
  %13 = attnedit.transpose %11 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %14 = attnedit.matmul %7, %13 : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %15 = attnedit.scale %14 {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %16 = attnedit.causal_mask %15 : tensor<4x?x?xf32>
  %17 = attnedit.softmax %16 {axis = 2 : i64} : tensor<4x?x?xf32>
  %18 = attnedit.matmul %17, %12 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %19 = attnedit.transpose %18 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %20 = attnedit.reshape %19 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %21 = attnedit.linear %20, %arg5 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %21 : tensor<?x64xf32>
}

// -----

// Tests that the q/k/v biases of Qwen2 become the qkv_bias operands.
// CHECK-LABEL: func.func @qwen2_bias
// CHECK-NEXT: %[[A0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) qkv_bias(%arg6, %arg7, %arg8) {head_dim = 16
// CHECK-NEXT: return %[[A0]]
func.func @qwen2_bias(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<64x64xf32>, %arg3: tensor<32x64xf32>, %arg4: tensor<32x64xf32>, %arg5: tensor<64x64xf32>, %arg6: tensor<64xf32>, %arg7: tensor<32xf32>, %arg8: tensor<32xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.linear %arg0, %arg2, %arg6 : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  %1 = attnedit.reshape %0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %2 = attnedit.linear %arg0, %arg3, %arg7 : (tensor<?x64xf32>, tensor<32x64xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %3 = attnedit.reshape %2 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %4 = attnedit.linear %arg0, %arg4, %arg8 : (tensor<?x64xf32>, tensor<32x64xf32>, tensor<32xf32>) -> tensor<?x32xf32>
  %5 = attnedit.reshape %4 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %6 = attnedit.rope %1, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+06 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %7 = attnedit.transpose %6 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %8 = attnedit.rope %3, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+06 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %10 = attnedit.transpose %5 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %11 = attnedit.repeat_kv %9 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %12 = attnedit.repeat_kv %10 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %13 = attnedit.transpose %11 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %14 = attnedit.matmul %7, %13 : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %15 = attnedit.scale %14 {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %16 = attnedit.causal_mask %15 : tensor<4x?x?xf32>
  %17 = attnedit.softmax %16 {axis = 2 : i64} : tensor<4x?x?xf32>
  %18 = attnedit.matmul %17, %12 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %19 = attnedit.transpose %18 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %20 = attnedit.reshape %19 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %21 = attnedit.linear %20, %arg5 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %21 : tensor<?x64xf32>
}

// -----

// Tests that Qwen3 per-head q/k RMSNorm before RoPE becomes qk_norm with its
// eps, with head_dim independent of hidden / num_heads (4 x 32 != 64).
// CHECK-LABEL: func.func @qwen3_qk_norm
// CHECK-NEXT: %[[A0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) qk_norm(%arg6, %arg7) {head_dim = 32
// CHECK-NEXT: return %[[A0]]
func.func @qwen3_qk_norm(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<128x64xf32>, %arg3: tensor<64x64xf32>, %arg4: tensor<64x64xf32>, %arg5: tensor<64x128xf32>, %arg6: tensor<32xf32>, %arg7: tensor<32xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.linear %arg0, %arg2 : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
  %1 = attnedit.reshape %0 : (tensor<?x128xf32>) -> tensor<?x4x32xf32>
  %2 = attnedit.linear %arg0, %arg3 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %3 = attnedit.reshape %2 : (tensor<?x64xf32>) -> tensor<?x2x32xf32>
  %4 = attnedit.linear %arg0, %arg4 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %5 = attnedit.reshape %4 : (tensor<?x64xf32>) -> tensor<?x2x32xf32>
  %6 = attnedit.rms_norm %1, %arg6 {eps = 1.000000e-05 : f64} : (tensor<?x4x32xf32>, tensor<32xf32>) -> tensor<?x4x32xf32>
  %7 = attnedit.rms_norm %3, %arg7 {eps = 1.000000e-05 : f64} : (tensor<?x2x32xf32>, tensor<32xf32>) -> tensor<?x2x32xf32>
  %8 = attnedit.rope %6, %arg1 {rotary_dim = 32 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+06 : f64} : (tensor<?x4x32xf32>, tensor<?xi32>) -> tensor<?x4x32xf32>
  %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x32xf32>) -> tensor<4x?x32xf32>
  %10 = attnedit.rope %7, %arg1 {rotary_dim = 32 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+06 : f64} : (tensor<?x2x32xf32>, tensor<?xi32>) -> tensor<?x2x32xf32>
  %11 = attnedit.transpose %10 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x32xf32>) -> tensor<2x?x32xf32>
  %12 = attnedit.transpose %5 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x32xf32>) -> tensor<2x?x32xf32>
  %13 = attnedit.repeat_kv %11 {repeats = 2 : i64} : (tensor<2x?x32xf32>) -> tensor<4x?x32xf32>
  %14 = attnedit.repeat_kv %12 {repeats = 2 : i64} : (tensor<2x?x32xf32>) -> tensor<4x?x32xf32>
  %15 = attnedit.transpose %13 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x32xf32>) -> tensor<4x32x?xf32>
  %16 = attnedit.matmul %9, %15 : (tensor<4x?x32xf32>, tensor<4x32x?xf32>) -> tensor<4x?x?xf32>
  %17 = attnedit.scale %16 {factor = 0.17677669529663687 : f64} : tensor<4x?x?xf32>
  %18 = attnedit.causal_mask %17 : tensor<4x?x?xf32>
  %19 = attnedit.softmax %18 {axis = 2 : i64} : tensor<4x?x?xf32>
  %20 = attnedit.matmul %19, %14 : (tensor<4x?x?xf32>, tensor<4x?x32xf32>) -> tensor<4x?x32xf32>
  %21 = attnedit.transpose %20 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x32xf32>) -> tensor<?x4x32xf32>
  %22 = attnedit.reshape %21 : (tensor<?x4x32xf32>) -> tensor<?x128xf32>
  %23 = attnedit.linear %22, %arg5 : (tensor<?x128xf32>, tensor<64x128xf32>) -> tensor<?x64xf32>
  return %23 : tensor<?x64xf32>
}

// -----

// Tests that llama2.c's interleaved RoPE keeps its style.
// CHECK-LABEL: func.func @llama2c_interleaved
// CHECK-NEXT: %[[A0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 8
// CHECK-NEXT: return %[[A0]]
func.func @llama2c_interleaved(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<64x64xf32>, %arg3: tensor<32x64xf32>, %arg4: tensor<32x64xf32>, %arg5: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.linear %arg0, %arg2 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %1 = attnedit.reshape %0 : (tensor<?x64xf32>) -> tensor<?x8x8xf32>
  %2 = attnedit.linear %arg0, %arg3 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %3 = attnedit.reshape %2 : (tensor<?x32xf32>) -> tensor<?x4x8xf32>
  %4 = attnedit.linear %arg0, %arg4 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %5 = attnedit.reshape %4 : (tensor<?x32xf32>) -> tensor<?x4x8xf32>
  %6 = attnedit.rope %1, %arg1 {rotary_dim = 8 : i64, style = #attnedit<rope_style interleaved>, theta = 1.000000e+04 : f64} : (tensor<?x8x8xf32>, tensor<?xi32>) -> tensor<?x8x8xf32>
  %7 = attnedit.transpose %6 {permutation = array<i64: 1, 0, 2>} : (tensor<?x8x8xf32>) -> tensor<8x?x8xf32>
  %8 = attnedit.rope %3, %arg1 {rotary_dim = 8 : i64, style = #attnedit<rope_style interleaved>, theta = 1.000000e+04 : f64} : (tensor<?x4x8xf32>, tensor<?xi32>) -> tensor<?x4x8xf32>
  %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x8xf32>) -> tensor<4x?x8xf32>
  %10 = attnedit.transpose %5 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x8xf32>) -> tensor<4x?x8xf32>
  %11 = attnedit.repeat_kv %9 {repeats = 2 : i64} : (tensor<4x?x8xf32>) -> tensor<8x?x8xf32>
  %12 = attnedit.repeat_kv %10 {repeats = 2 : i64} : (tensor<4x?x8xf32>) -> tensor<8x?x8xf32>
  %13 = attnedit.transpose %11 {permutation = array<i64: 0, 2, 1>} : (tensor<8x?x8xf32>) -> tensor<8x8x?xf32>
  %14 = attnedit.matmul %7, %13 : (tensor<8x?x8xf32>, tensor<8x8x?xf32>) -> tensor<8x?x?xf32>
  %15 = attnedit.scale %14 {factor = 0.35355339059327373 : f64} : tensor<8x?x?xf32>
  %16 = attnedit.causal_mask %15 : tensor<8x?x?xf32>
  %17 = attnedit.softmax %16 {axis = 2 : i64} : tensor<8x?x?xf32>
  %18 = attnedit.matmul %17, %12 : (tensor<8x?x?xf32>, tensor<8x?x8xf32>) -> tensor<8x?x8xf32>
  %19 = attnedit.transpose %18 {permutation = array<i64: 1, 0, 2>} : (tensor<8x?x8xf32>) -> tensor<?x8x8xf32>
  %20 = attnedit.reshape %19 : (tensor<?x8x8xf32>) -> tensor<?x64xf32>
  %21 = attnedit.linear %20, %arg5 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %21 : tensor<?x64xf32>
}

// -----

// Tests that Llama 3 RoPE frequency scaling is carried over.
// CHECK-LABEL: func.func @llama3_scaling
// CHECK-NEXT: %[[A0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[A0]]
func.func @llama3_scaling(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<64x64xf32>, %arg3: tensor<32x64xf32>, %arg4: tensor<32x64xf32>, %arg5: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.linear %arg0, %arg2 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %1 = attnedit.reshape %0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %2 = attnedit.linear %arg0, %arg3 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %3 = attnedit.reshape %2 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %4 = attnedit.linear %arg0, %arg4 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %5 = attnedit.reshape %4 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %6 = attnedit.rope %1, %arg1 {llama3_scaling = array<f64: 8.000000e+00, 1.000000e+00, 4.000000e+00, 8.192000e+03>, rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 5.000000e+05 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %7 = attnedit.transpose %6 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %8 = attnedit.rope %3, %arg1 {llama3_scaling = array<f64: 8.000000e+00, 1.000000e+00, 4.000000e+00, 8.192000e+03>, rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 5.000000e+05 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %10 = attnedit.transpose %5 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %11 = attnedit.repeat_kv %9 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %12 = attnedit.repeat_kv %10 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %13 = attnedit.transpose %11 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %14 = attnedit.matmul %7, %13 : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %15 = attnedit.scale %14 {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %16 = attnedit.causal_mask %15 : tensor<4x?x?xf32>
  %17 = attnedit.softmax %16 {axis = 2 : i64} : tensor<4x?x?xf32>
  %18 = attnedit.matmul %17, %12 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %19 = attnedit.transpose %18 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %20 = attnedit.reshape %19 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %21 = attnedit.linear %20, %arg5 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %21 : tensor<?x64xf32>
}

// -----

// Tests that a windowed causal mask becomes the window attribute.
// CHECK-LABEL: func.func @window
// CHECK-NEXT: %[[A0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[A0]]
func.func @window(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<64x64xf32>, %arg3: tensor<32x64xf32>, %arg4: tensor<32x64xf32>, %arg5: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.linear %arg0, %arg2 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %1 = attnedit.reshape %0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %2 = attnedit.linear %arg0, %arg3 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %3 = attnedit.reshape %2 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %4 = attnedit.linear %arg0, %arg4 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %5 = attnedit.reshape %4 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %6 = attnedit.rope %1, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %7 = attnedit.transpose %6 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %8 = attnedit.rope %3, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %10 = attnedit.transpose %5 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %11 = attnedit.repeat_kv %9 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %12 = attnedit.repeat_kv %10 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %13 = attnedit.transpose %11 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %14 = attnedit.matmul %7, %13 : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %15 = attnedit.scale %14 {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %16 = attnedit.causal_mask %15 {window = 4 : i64} : tensor<4x?x?xf32>
  %17 = attnedit.softmax %16 {axis = 2 : i64} : tensor<4x?x?xf32>
  %18 = attnedit.matmul %17, %12 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %19 = attnedit.transpose %18 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %20 = attnedit.reshape %19 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %21 = attnedit.linear %20, %arg5 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %21 : tensor<?x64xf32>
}

// -----

// Tests that a static sequence length raises as well as a dynamic one.
// CHECK-LABEL: func.func @static_tokens
// CHECK-NEXT: %[[A0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[A0]]
func.func @static_tokens(%arg0: tensor<6x64xf32>, %arg1: tensor<6xi32>, %arg2: tensor<64x64xf32>, %arg3: tensor<32x64xf32>, %arg4: tensor<32x64xf32>, %arg5: tensor<64x64xf32>) -> tensor<6x64xf32> {
  %0 = attnedit.linear %arg0, %arg2 : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  %1 = attnedit.reshape %0 : (tensor<6x64xf32>) -> tensor<6x4x16xf32>
  %2 = attnedit.linear %arg0, %arg3 : (tensor<6x64xf32>, tensor<32x64xf32>) -> tensor<6x32xf32>
  %3 = attnedit.reshape %2 : (tensor<6x32xf32>) -> tensor<6x2x16xf32>
  %4 = attnedit.linear %arg0, %arg4 : (tensor<6x64xf32>, tensor<32x64xf32>) -> tensor<6x32xf32>
  %5 = attnedit.reshape %4 : (tensor<6x32xf32>) -> tensor<6x2x16xf32>
  %6 = attnedit.rope %1, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<6x4x16xf32>, tensor<6xi32>) -> tensor<6x4x16xf32>
  %7 = attnedit.transpose %6 {permutation = array<i64: 1, 0, 2>} : (tensor<6x4x16xf32>) -> tensor<4x6x16xf32>
  %8 = attnedit.rope %3, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<6x2x16xf32>, tensor<6xi32>) -> tensor<6x2x16xf32>
  %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<6x2x16xf32>) -> tensor<2x6x16xf32>
  %10 = attnedit.transpose %5 {permutation = array<i64: 1, 0, 2>} : (tensor<6x2x16xf32>) -> tensor<2x6x16xf32>
  %11 = attnedit.repeat_kv %9 {repeats = 2 : i64} : (tensor<2x6x16xf32>) -> tensor<4x6x16xf32>
  %12 = attnedit.repeat_kv %10 {repeats = 2 : i64} : (tensor<2x6x16xf32>) -> tensor<4x6x16xf32>
  %13 = attnedit.transpose %11 {permutation = array<i64: 0, 2, 1>} : (tensor<4x6x16xf32>) -> tensor<4x16x6xf32>
  %14 = attnedit.matmul %7, %13 : (tensor<4x6x16xf32>, tensor<4x16x6xf32>) -> tensor<4x6x6xf32>
  %15 = attnedit.scale %14 {factor = 2.500000e-01 : f64} : tensor<4x6x6xf32>
  %16 = attnedit.causal_mask %15 : tensor<4x6x6xf32>
  %17 = attnedit.softmax %16 {axis = 2 : i64} : tensor<4x6x6xf32>
  %18 = attnedit.matmul %17, %12 : (tensor<4x6x6xf32>, tensor<4x6x16xf32>) -> tensor<4x6x16xf32>
  %19 = attnedit.transpose %18 {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %20 = attnedit.reshape %19 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %21 = attnedit.linear %20, %arg5 : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %21 : tensor<6x64xf32>
}

// -----

// Tests that consecutive layers raise independently, the first one's
// result feeding the second through the residual add.
// CHECK-LABEL: func.func @two_layers
// CHECK-NEXT: %[[A0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: %[[A1:.*]] = attnedit.add %arg0, %[[A0]]
// CHECK-NEXT: %[[A2:.*]] = attnedit.attention %[[A1]], %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[A2]]
func.func @two_layers(%arg0: tensor<?x64xf32>, %arg1: tensor<?xi32>, %arg2: tensor<64x64xf32>, %arg3: tensor<32x64xf32>, %arg4: tensor<32x64xf32>, %arg5: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.linear %arg0, %arg2 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %1 = attnedit.reshape %0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %2 = attnedit.linear %arg0, %arg3 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %3 = attnedit.reshape %2 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %4 = attnedit.linear %arg0, %arg4 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %5 = attnedit.reshape %4 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %6 = attnedit.rope %1, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %7 = attnedit.transpose %6 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %8 = attnedit.rope %3, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %9 = attnedit.transpose %8 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %10 = attnedit.transpose %5 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %11 = attnedit.repeat_kv %9 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %12 = attnedit.repeat_kv %10 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %13 = attnedit.transpose %11 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %14 = attnedit.matmul %7, %13 : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %15 = attnedit.scale %14 {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %16 = attnedit.causal_mask %15 : tensor<4x?x?xf32>
  %17 = attnedit.softmax %16 {axis = 2 : i64} : tensor<4x?x?xf32>
  %18 = attnedit.matmul %17, %12 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %19 = attnedit.transpose %18 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %20 = attnedit.reshape %19 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %21 = attnedit.linear %20, %arg5 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %22 = attnedit.add %arg0, %21 : tensor<?x64xf32>
  %23 = attnedit.linear %22, %arg2 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %24 = attnedit.reshape %23 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %25 = attnedit.linear %22, %arg3 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %26 = attnedit.reshape %25 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %27 = attnedit.linear %22, %arg4 : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %28 = attnedit.reshape %27 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %29 = attnedit.rope %24, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %30 = attnedit.transpose %29 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %31 = attnedit.rope %26, %arg1 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %32 = attnedit.transpose %31 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %33 = attnedit.transpose %28 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %34 = attnedit.repeat_kv %32 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %35 = attnedit.repeat_kv %33 {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %36 = attnedit.transpose %34 {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %37 = attnedit.matmul %30, %36 : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %38 = attnedit.scale %37 {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %39 = attnedit.causal_mask %38 : tensor<4x?x?xf32>
  %40 = attnedit.softmax %39 {axis = 2 : i64} : tensor<4x?x?xf32>
  %41 = attnedit.matmul %40, %35 : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %42 = attnedit.transpose %41 {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %43 = attnedit.reshape %42 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %44 = attnedit.linear %43, %arg5 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %44 : tensor<?x64xf32>
}

