// RUN: attnedit-opt %s --attnedit-decompose --attnedit-raise-attention | FileCheck %s
// RUN: attnedit-opt %s > %t.expected
// RUN: attnedit-opt %s --attnedit-decompose --attnedit-raise-attention > %t.actual
// RUN: diff %t.expected %t.actual

// Tests that raising undoes decomposition: each attention configuration (GQA,
// MHA, MQA with partial RoPE, Qwen2 biases, Qwen3 q/k norms with their eps,
// llama2.c interleaved RoPE, Llama 3 scaling, a window, static T, stacked
// layers) comes back as the same op, operand for operand and attribute for
// attribute (the diff against the printed input).

// CHECK-LABEL: func.func @llama_gqa
// CHECK-NEXT: %[[V0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[V0]]
func.func @llama_gqa(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 500000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// CHECK-LABEL: func.func @mha
// CHECK-NEXT: %[[V0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[V0]]
func.func @mha(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<64x64xf32>, %wv: tensor<64x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// CHECK-LABEL: func.func @mqa
// CHECK-NEXT: %[[V0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[V0]]
func.func @mqa(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<16x64xf32>, %wv: tensor<16x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 4 : i64, num_kv_heads = 1 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 8 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<16x64xf32>, tensor<16x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// CHECK-LABEL: func.func @qwen2_bias
// CHECK-NEXT: %[[V0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) qkv_bias(%arg6, %arg7, %arg8) {head_dim = 16
// CHECK-NEXT: return %[[V0]]
func.func @qwen2_bias(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>, %bq: tensor<64xf32>, %bk: tensor<32xf32>, %bv: tensor<32xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) qkv_bias(%bq, %bk, %bv) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 1000000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>, tensor<64xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// CHECK-LABEL: func.func @qwen3_qk_norm
// CHECK-NEXT: %[[V0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) qk_norm(%arg6, %arg7) {head_dim = 32
// CHECK-NEXT: return %[[V0]]
func.func @qwen3_qk_norm(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %wv: tensor<64x64xf32>, %wo: tensor<64x128xf32>, %qn: tensor<32xf32>, %kn: tensor<32xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) qk_norm(%qn, %kn) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.17677669529663687 : f64, rope_theta = 1000000.0 : f64, rotary_dim = 32 : i64, rope_style = #attnedit<rope_style rotate_half>, norm_eps = 1.0e-05 : f64} : (tensor<?x64xf32>, tensor<?xi32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x128xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// CHECK-LABEL: func.func @llama2c_interleaved
// CHECK-NEXT: %[[V0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 8
// CHECK-NEXT: return %[[V0]]
func.func @llama2c_interleaved(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64, scale = 0.35355339059327373 : f64, rope_theta = 10000.0 : f64, rotary_dim = 8 : i64, rope_style = #attnedit<rope_style interleaved>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// CHECK-LABEL: func.func @llama3_scaling
// CHECK-NEXT: %[[V0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[V0]]
func.func @llama3_scaling(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 500000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>, llama3_scaling = array<f64: 8.0, 1.0, 4.0, 8192.0>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// CHECK-LABEL: func.func @window
// CHECK-NEXT: %[[V0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[V0]]
func.func @window(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>, window = 4 : i64} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// CHECK-LABEL: func.func @static_tokens
// CHECK-NEXT: %[[V0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[V0]]
func.func @static_tokens(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<6x64xf32>, tensor<6xi32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %0 : tensor<6x64xf32>
}

// CHECK-LABEL: func.func @two_layers
// CHECK-NEXT: %[[V0:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: %[[V1:.*]] = attnedit.add %arg0, %[[V0]]
// CHECK-NEXT: %[[V2:.*]] = attnedit.attention %[[V1]], %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16
// CHECK-NEXT: return %[[V2]]
func.func @two_layers(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %1 = attnedit.add %x, %0 : tensor<?x64xf32>
  %2 = attnedit.attention %1, %pos weights(%wq, %wk, %wv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %2 : tensor<?x64xf32>
}
