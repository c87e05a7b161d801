// RUN: attnedit-opt %s | attnedit-opt | FileCheck %s
// Tests that every attnedit op prints and parses back unchanged.

// CHECK-LABEL: func.func @primitives
func.func @primitives(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x16xf32> {
  // CHECK: attnedit.param "embed" : tensor<16x8xbf16>
  %e = attnedit.param "embed" : tensor<16x8xbf16>
  // CHECK: attnedit.param "w" trainable : tensor<8x8xf32>
  %w = attnedit.param "w" trainable : tensor<8x8xf32>
  %n = attnedit.param "n" : tensor<8xf32>
  %b = attnedit.param "b" : tensor<8xf32>
  // CHECK: attnedit.convert %{{.*}} : tensor<16x8xbf16> -> tensor<16x8xf32>
  %ef = attnedit.convert %e : tensor<16x8xbf16> -> tensor<16x8xf32>
  // CHECK: attnedit.embedding %{{.*}}[%{{.*}}]
  %x = attnedit.embedding %ef[%tokens] : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  // CHECK: attnedit.rms_norm {{.*}} {eps = 1.000000e-05 : f64}
  %h = attnedit.rms_norm %x, %n {eps = 1.0e-5 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  // CHECK: attnedit.linear %{{.*}}, %{{.*}}, %{{.*}} :
  %l = attnedit.linear %h, %w, %b : (tensor<?x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %r = attnedit.reshape %l : (tensor<?x8xf32>) -> tensor<?x2x4xf32>
  // CHECK: attnedit.rope {{.*}}llama3_scaling = array<f64: 8.000000e+00, 1.000000e+00, 4.000000e+00, 1.600000e+01>{{.*}}style = #attnedit<rope_style rotate_half>
  %q = attnedit.rope %r, %pos {theta = 10000.0 : f64, rotary_dim = 2 : i64, style = #attnedit<rope_style rotate_half>, llama3_scaling = array<f64: 8.0, 1.0, 4.0, 16.0>} : (tensor<?x2x4xf32>, tensor<?xi32>) -> tensor<?x2x4xf32>
  %qt = attnedit.transpose %q {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x4xf32>) -> tensor<2x?x4xf32>
  %kv = attnedit.slice %qt {axis = 0 : i64, offset = 0 : i64, size = 1 : i64} : (tensor<2x?x4xf32>) -> tensor<1x?x4xf32>
  // CHECK: attnedit.repeat_kv {{.*}} {repeats = 2 : i64}
  %k = attnedit.repeat_kv %kv {repeats = 2 : i64} : (tensor<1x?x4xf32>) -> tensor<2x?x4xf32>
  %kt = attnedit.transpose %k {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x4xf32>) -> tensor<2x4x?xf32>
  %s = attnedit.matmul %qt, %kt : (tensor<2x?x4xf32>, tensor<2x4x?xf32>) -> tensor<2x?x?xf32>
  %s2 = attnedit.scale %s {factor = 0.5 : f64} : tensor<2x?x?xf32>
  // CHECK: attnedit.causal_mask {{.*}} {segments = 2 : i64, window = 4 : i64}
  %m = attnedit.causal_mask %s2 {segments = 2 : i64, window = 4 : i64} : tensor<2x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<2x?x?xf32>
  %o = attnedit.matmul %p, %k : (tensor<2x?x?xf32>, tensor<2x?x4xf32>) -> tensor<2x?x4xf32>
  %ot = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<2x?x4xf32>) -> tensor<?x2x4xf32>
  %of = attnedit.reshape %ot : (tensor<?x2x4xf32>) -> tensor<?x8xf32>
  %a = attnedit.silu %of : tensor<?x8xf32>
  %c = attnedit.mul %a, %of : tensor<?x8xf32>
  %d = attnedit.add %c, %x : tensor<?x8xf32>
  // CHECK: attnedit.concat {{.*}} {axis = 1 : i64} : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x16xf32>
  %cat = attnedit.concat %d, %x {axis = 1 : i64} : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x16xf32>
  return %cat : tensor<?x16xf32>
}

// CHECK-LABEL: func.func @composite
func.func @composite(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<128x64xf32>, %wk: tensor<64x64xf32>, %wv: tensor<64x64xf32>, %wo: tensor<64x128xf32>, %bq: tensor<128xf32>, %bk: tensor<64xf32>, %bv: tensor<64xf32>, %qn: tensor<32xf32>, %kn: tensor<32xf32>) -> tensor<?x64xf32> {
  // CHECK: attnedit.attention %{{.*}}, %{{.*}} weights(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) qkv_bias(%{{.*}}, %{{.*}}, %{{.*}}) qk_norm(%{{.*}}, %{{.*}})
  %0 = attnedit.attention %x, %pos weights(%wq, %wk, %wv, %wo) qkv_bias(%bq, %bk, %bv) qk_norm(%qn, %kn) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 32 : i64, scale = 0.1767766952966369 : f64, rope_theta = 1000000.0 : f64, rotary_dim = 32 : i64, rope_style = #attnedit<rope_style rotate_half>, window = 0 : i64} : (tensor<?x64xf32>, tensor<?xi32>, tensor<128x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x128xf32>, tensor<128xf32>, tensor<64xf32>, tensor<64xf32>, tensor<32xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  return %0 : tensor<?x64xf32>
}

// An add or mul over compatible but unequal types prints them all: one type
// for all three read back with the operands disagreeing, and failed to parse.
// CHECK-LABEL: func.func @mixed_binary
// CHECK: attnedit.add %{{.*}}, %{{.*}} : (tensor<4x8xf32>, tensor<?x8xf32>) -> tensor<4x8xf32>
// CHECK: attnedit.mul %{{.*}}, %{{.*}} : tensor<4x8xf32>
func.func @mixed_binary(%a: tensor<4x8xf32>, %b: tensor<?x8xf32>) -> tensor<4x8xf32> {
  %0 = "attnedit.add"(%a, %b) : (tensor<4x8xf32>, tensor<?x8xf32>) -> tensor<4x8xf32>
  %1 = attnedit.mul %0, %a : tensor<4x8xf32>
  return %1 : tensor<4x8xf32>
}
