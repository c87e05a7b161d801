// RUN: attnedit-opt %s --split-input-file --attnedit-decompose | FileCheck %s

// Tests that GQA attention with Qwen3 q/k norms expands into the primitive
// subgraph: projections, per-head norms, RoPE, repeat-kv, scores, mask,
// softmax, weighted sum, output projection.
// CHECK-LABEL: func.func @gqa_qk_norm
// CHECK-NOT: attnedit.attention
// CHECK: %[[Q:.*]] = attnedit.linear %arg0, %arg2 : (tensor<?x64xf32>, tensor<128x64xf32>) -> tensor<?x128xf32>
// CHECK: %[[QH:.*]] = attnedit.reshape %[[Q]] : (tensor<?x128xf32>) -> tensor<?x4x32xf32>
// CHECK: attnedit.linear %arg0, %arg3
// CHECK: attnedit.linear %arg0, %arg4
// CHECK: %[[QN:.*]] = attnedit.rms_norm %[[QH]], %arg6 {eps = 9.9999999999999995E-7 : f64}
// CHECK: %[[KN:.*]] = attnedit.rms_norm %{{.*}}, %arg7
// CHECK: %[[QR:.*]] = attnedit.rope %[[QN]], %arg1 {rotary_dim = 32 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+06 : f64}
// CHECK: attnedit.transpose %[[QR]] {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x32xf32>) -> tensor<4x?x32xf32>
// CHECK: attnedit.rope %[[KN]], %arg1
// CHECK: %[[K:.*]] = attnedit.repeat_kv %{{.*}} {repeats = 2 : i64} : (tensor<2x?x32xf32>) -> tensor<4x?x32xf32>
// CHECK: %[[V:.*]] = attnedit.repeat_kv
// CHECK: %[[KT:.*]] = attnedit.transpose %[[K]] {permutation = array<i64: 0, 2, 1>}
// CHECK: %[[S:.*]] = attnedit.matmul %{{.*}}, %[[KT]] : (tensor<4x?x32xf32>, tensor<4x32x?xf32>) -> tensor<4x?x?xf32>
// CHECK: %[[SS:.*]] = attnedit.scale %[[S]] {factor = 0.17677669529663687 : f64}
// CHECK: %[[M:.*]] = attnedit.causal_mask %[[SS]] : tensor<4x?x?xf32>
// CHECK: %[[P:.*]] = attnedit.softmax %[[M]] {axis = 2 : i64}
// CHECK: attnedit.matmul %[[P]], %[[V]]
// CHECK: attnedit.reshape %{{.*}} : (tensor<?x4x32xf32>) -> tensor<?x128xf32>
// CHECK: %[[O:.*]] = attnedit.linear %{{.*}}, %arg5 : (tensor<?x128xf32>, tensor<64x128xf32>) -> tensor<?x64xf32>
// CHECK: return %[[O]]
func.func @gqa_qk_norm(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %wv: tensor<64x64xf32>, %wo: tensor<64x128xf32>, %qn: tensor<32xf32>, %kn: tensor<32xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) qk_norm(%qn, %kn) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.17677669529663687 : f64, rope_theta = 1000000.0 : f64, rotary_dim = 32 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x128xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// -----

// Tests that MHA has no repeat_kv, that Qwen2 biases reach the projections,
// and that a sliding window reaches the mask.
// CHECK-LABEL: func.func @mha_bias_window
// CHECK: attnedit.linear %arg0, %arg2, %arg6
// CHECK: attnedit.linear %arg0, %arg3, %arg7
// CHECK: attnedit.linear %arg0, %arg4, %arg8
// CHECK-NOT: attnedit.repeat_kv
// CHECK: attnedit.causal_mask %{{.*}} {window = 16 : i64}
func.func @mha_bias_window(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<64x64xf32>, %wv: tensor<64x64xf32>, %wo: tensor<64x64xf32>, %bq: tensor<64xf32>, %bk: tensor<64xf32>, %bv: tensor<64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) qkv_bias(%bq, %bk, %bv) {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style interleaved>, window = 16 : i64} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}
