// RUN: attnedit-opt %s --split-input-file --attnedit-raise-attention | FileCheck %s
// RUN: attnedit-opt %s --split-input-file > %t.before
// RUN: attnedit-opt %s --split-input-file --attnedit-raise-attention > %t.after
// RUN: diff %t.before %t.after

// Near misses: one change each to the importer's subgraph makes it something
// other than attnedit.attention, and the pass leaves the IR exactly as it was
// (the diff). A static T is used where the change needs it to type-check.

// Tests that attention without a causal mask (an encoder) is left alone.
// CHECK-LABEL: func.func @non_causal
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @non_causal(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %p = attnedit.softmax %ss {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that an added mask that is not causal_mask(0), here a bias from the
// caller, is left alone.
// CHECK-LABEL: func.func @caller_mask
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @caller_mask(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>, %bias: tensor<4x?x?xf32>) -> tensor<?x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.add %ss, %bias : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that an added causal bias over a non-zero constant is not the 0/-inf
// mask.
// CHECK-LABEL: func.func @mask_bias_not_zero
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @mask_bias_not_zero(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<6x64xf32>) -> tensor<6x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<6x64xf32>, tensor<32x64xf32>) -> tensor<6x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<6x32xf32>) -> tensor<6x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<6x64xf32>, tensor<32x64xf32>) -> tensor<6x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<6x32xf32>) -> tensor<6x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<6x4x16xf32>, tensor<6xi32>) -> tensor<6x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<6x4x16xf32>) -> tensor<4x6x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<6x2x16xf32>, tensor<6xi32>) -> tensor<6x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<6x2x16xf32>) -> tensor<2x6x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<6x2x16xf32>) -> tensor<2x6x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x6x16xf32>) -> tensor<4x6x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x6x16xf32>) -> tensor<4x6x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x6x16xf32>) -> tensor<4x16x6xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x6x16xf32>, tensor<4x16x6xf32>) -> tensor<4x6x6xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x6x6xf32>
  %one = arith.constant dense<1.000000e+00> : tensor<1x1x1xf32>
  %ob = attnedit.broadcast %one : (tensor<1x1x1xf32>) -> tensor<4x6x6xf32>
  %bias = attnedit.causal_mask %ob : tensor<4x6x6xf32>
  %m = attnedit.add %ss, %bias : tensor<4x6x6xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x6x6xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x6x6xf32>, tensor<4x6x16xf32>) -> tensor<4x6x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %y : tensor<6x64xf32>
}

// -----

// Tests that a softmax over the query axis is not attention.
// CHECK-LABEL: func.func @softmax_axis_1
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @softmax_axis_1(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 1 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that a softmax with sinks is not plain attention.
// CHECK-LABEL: func.func @softmax_sinks
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @softmax_sinks(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>, %sinks: tensor<4xf32>) -> tensor<?x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss : tensor<4x?x?xf32>
  %p = attnedit.softmax %m sinks(%sinks : tensor<4xf32>) {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that scores against k instead of kT (identity permutation; T = D
// keeps the shapes valid) are not attention.
// CHECK-LABEL: func.func @k_not_transposed
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @k_not_transposed(%x: tensor<16x64xf32>, %pos: tensor<16xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<16x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<16x64xf32>, tensor<64x64xf32>) -> tensor<16x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<16x64xf32>) -> tensor<16x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<16x64xf32>, tensor<32x64xf32>) -> tensor<16x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<16x32xf32>) -> tensor<16x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<16x64xf32>, tensor<32x64xf32>) -> tensor<16x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<16x32xf32>) -> tensor<16x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<16x4x16xf32>, tensor<16xi32>) -> tensor<16x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<16x4x16xf32>) -> tensor<4x16x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<16x2x16xf32>, tensor<16xi32>) -> tensor<16x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<16x2x16xf32>) -> tensor<2x16x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<16x2x16xf32>) -> tensor<2x16x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x16x16xf32>) -> tensor<4x16x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x16x16xf32>) -> tensor<4x16x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 1, 2>} : (tensor<4x16x16xf32>) -> tensor<4x16x16xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x16x16xf32>, tensor<4x16x16xf32>) -> tensor<4x16x16xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x16x16xf32>
  %m = attnedit.causal_mask %ss : tensor<4x16x16xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x16x16xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x16x16xf32>, tensor<4x16x16xf32>) -> tensor<4x16x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x16x16xf32>) -> tensor<16x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<16x4x16xf32>) -> tensor<16x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<16x64xf32>, tensor<64x64xf32>) -> tensor<16x64xf32>
  return %y : tensor<16x64xf32>
}

// -----

// Tests that heads not moved back to token-major order before o_proj (T = Hq
// keeps the shapes valid) are not attention.
// CHECK-LABEL: func.func @heads_not_transposed_back
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @heads_not_transposed_back(%x: tensor<4x64xf32>, %pos: tensor<4xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<4x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<4x64xf32>, tensor<64x64xf32>) -> tensor<4x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<4x64xf32>) -> tensor<4x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<4x64xf32>, tensor<32x64xf32>) -> tensor<4x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<4x32xf32>) -> tensor<4x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<4x64xf32>, tensor<32x64xf32>) -> tensor<4x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<4x32xf32>) -> tensor<4x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<4x4x16xf32>, tensor<4xi32>) -> tensor<4x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<4x4x16xf32>) -> tensor<4x4x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<4x2x16xf32>, tensor<4xi32>) -> tensor<4x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<4x2x16xf32>) -> tensor<2x4x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<4x2x16xf32>) -> tensor<2x4x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x4x16xf32>) -> tensor<4x4x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x4x16xf32>) -> tensor<4x4x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x4x16xf32>) -> tensor<4x16x4xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x4x16xf32>, tensor<4x16x4xf32>) -> tensor<4x4x4xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x4x4xf32>
  %m = attnedit.causal_mask %ss : tensor<4x4x4xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x4x4xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x4x4xf32>, tensor<4x4x16xf32>) -> tensor<4x4x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 0, 1, 2>} : (tensor<4x4x16xf32>) -> tensor<4x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<4x4x16xf32>) -> tensor<4x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<4x64xf32>, tensor<64x64xf32>) -> tensor<4x64xf32>
  return %y : tensor<4x64xf32>
}

// -----

// Tests that q and k rotated with different RoPE thetas are left alone.
// CHECK-LABEL: func.func @rope_theta_differs
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @rope_theta_differs(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 5.000000e+05 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that q and k rotated at different positions are left alone.
// CHECK-LABEL: func.func @rope_positions_differ
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @rope_positions_differ(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>, %pos2: tensor<?xi32>) -> tensor<?x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos2 {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that projections reading different inputs (cross attention) are
// left alone.
// CHECK-LABEL: func.func @different_inputs
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @different_inputs(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>, %x2: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x2, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that the probabilities also returned keep the subgraph as it is.
// CHECK-LABEL: func.func @probs_also_returned
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @probs_also_returned(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> (tensor<?x64xf32>, tensor<4x?x?xf32>) {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y, %p : tensor<?x64xf32>, tensor<4x?x?xf32>
}

// -----

// Tests that the rotated keys also returned (a KV cache) keep the subgraph as
// it is.
// CHECK-LABEL: func.func @keys_also_returned
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @keys_also_returned(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> (tensor<?x64xf32>, tensor<2x?x16xf32>) {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y, %k : tensor<?x64xf32>, tensor<2x?x16xf32>
}

// -----

// Tests that a per-head scale (a broadcast of a non-splat constant) is not
// one scale.
// CHECK-LABEL: func.func @scale_not_splat
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @scale_not_splat(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<6x64xf32>) -> tensor<6x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<6x64xf32>, tensor<32x64xf32>) -> tensor<6x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<6x32xf32>) -> tensor<6x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<6x64xf32>, tensor<32x64xf32>) -> tensor<6x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<6x32xf32>) -> tensor<6x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<6x4x16xf32>, tensor<6xi32>) -> tensor<6x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<6x4x16xf32>) -> tensor<4x6x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<6x2x16xf32>, tensor<6xi32>) -> tensor<6x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<6x2x16xf32>) -> tensor<2x6x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<6x2x16xf32>) -> tensor<2x6x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x6x16xf32>) -> tensor<4x6x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x6x16xf32>) -> tensor<4x6x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x6x16xf32>) -> tensor<4x16x6xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x6x16xf32>, tensor<4x16x6xf32>) -> tensor<4x6x6xf32>
  %c = arith.constant dense<[[[2.500000e-01]], [[2.500000e-01]], [[5.000000e-01]], [[2.500000e-01]]]> : tensor<4x1x1xf32>
  %cb = attnedit.broadcast %c : (tensor<4x1x1xf32>) -> tensor<4x6x6xf32>
  %ss = attnedit.mul %s, %cb : tensor<4x6x6xf32>
  %m = attnedit.causal_mask %ss : tensor<4x6x6xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x6x6xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x6x6xf32>, tensor<4x6x16xf32>) -> tensor<4x6x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %y : tensor<6x64xf32>
}

// -----

// Tests that k with 2 heads repeated and v with 4 heads (inconsistent KV
// head counts) is left alone.
// CHECK-LABEL: func.func @kv_heads_differ
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @kv_heads_differ(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<64x64xf32>, %wo: tensor<64x64xf32>) -> tensor<?x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %v : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that an o_proj with a bias is not attnedit.attention's output
// projection.
// CHECK-LABEL: func.func @o_proj_bias
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @o_proj_bias(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>, %bo: tensor<64xf32>) -> tensor<?x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %q2 = attnedit.rope %q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo, %bo : (tensor<?x64xf32>, tensor<64x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that an RMSNorm on q alone (no k norm) is left alone.
// CHECK-LABEL: func.func @q_norm_only
// CHECK: attnedit.softmax
// CHECK-NOT: attnedit.attention
// CHECK: return
func.func @q_norm_only(%x: tensor<?x64xf32>, %pos: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>, %qn: tensor<16xf32>) -> tensor<?x64xf32> {
  %q0 = attnedit.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  %q1 = attnedit.reshape %q0 : (tensor<?x64xf32>) -> tensor<?x4x16xf32>
  %k0 = attnedit.linear %x, %wk : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %k1 = attnedit.reshape %k0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %v0 = attnedit.linear %x, %wv : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %v1 = attnedit.reshape %v0 : (tensor<?x32xf32>) -> tensor<?x2x16xf32>
  %qn1 = attnedit.rms_norm %q1, %qn {eps = 1.000000e-06 : f64} : (tensor<?x4x16xf32>, tensor<16xf32>) -> tensor<?x4x16xf32>
  %q2 = attnedit.rope %qn1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x4x16xf32>, tensor<?xi32>) -> tensor<?x4x16xf32>
  %q = attnedit.transpose %q2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %k2 = attnedit.rope %k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<?x2x16xf32>, tensor<?xi32>) -> tensor<?x2x16xf32>
  %k = attnedit.transpose %k2 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %v = attnedit.transpose %v1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<?x4x16xf32>) -> tensor<?x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
