// RUN: attnedit-opt %s --split-input-file --attnedit-raise-attention | FileCheck %s

// Spellings of attention other frontends emit (scale as a multiply or on q,
// mask added as a bias, grouped matmul instead of repeat_kv) raise like the
// importer's. Sequence length is static here: the grouped form reshapes
// [Hkv, G*T, T] to [Hq, T, T] (two dynamic dims are not a valid reshape) and
// a broadcast only fills static dimensions.

// Tests that the scale as a multiply by a broadcast splat constant raises,
// and that the constant and its broadcast go with the subgraph.
// CHECK-LABEL: func.func @scale_multiply
// CHECK-NEXT: %[[A:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope_style = #attnedit<rope_style rotate_half>, rope_theta = 1.000000e+04 : f64, rotary_dim = 16 : i64, scale = 2.500000e-01 : f64}
// CHECK-NEXT: return %[[A]]
func.func @scale_multiply(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
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
  %c = arith.constant dense<2.500000e-01> : tensor<1x1x1xf32>
  %cb = attnedit.broadcast %c : (tensor<1x1x1xf32>) -> tensor<4x6x6xf32>
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

// Tests that the constant may be the left operand of the multiply; the
// scale is the f32 constant's exact value.
// CHECK-LABEL: func.func @scale_multiply_lhs
// CHECK-NEXT: %[[A:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope_style = #attnedit<rope_style rotate_half>, rope_theta = 1.000000e+04 : f64, rotary_dim = 16 : i64, scale = 0.30000001192092896 : f64}
// CHECK-NEXT: return %[[A]]
func.func @scale_multiply_lhs(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
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
  %c = arith.constant dense<3.000000e-01> : tensor<1x1x1xf32>
  %cb = attnedit.broadcast %c : (tensor<1x1x1xf32>) -> tensor<4x6x6xf32>
  %ss = attnedit.mul %cb, %s : tensor<4x6x6xf32>
  %m = attnedit.causal_mask %ss : tensor<4x6x6xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x6x6xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x6x6xf32>, tensor<4x6x16xf32>) -> tensor<4x6x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %y : tensor<6x64xf32>
}

// -----

// Tests that the scale applied to q [H, T, D] before the score matmul is
// the same attention.
// CHECK-LABEL: func.func @scale_on_q
// CHECK-NEXT: %[[A:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope_style = #attnedit<rope_style rotate_half>, rope_theta = 1.000000e+04 : f64, rotary_dim = 16 : i64, scale = 2.500000e-01 : f64}
// CHECK-NEXT: return %[[A]]
func.func @scale_on_q(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
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
  %qs = attnedit.scale %q {factor = 2.500000e-01 : f64} : tensor<4x6x16xf32>
  %s = attnedit.matmul %qs, %kt : (tensor<4x6x16xf32>, tensor<4x16x6xf32>) -> tensor<4x6x6xf32>
  %m = attnedit.causal_mask %s : tensor<4x6x6xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x6x6xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x6x6xf32>, tensor<4x6x16xf32>) -> tensor<4x6x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %y : tensor<6x64xf32>
}

// -----

// Tests that scores without any scale are attention with scale 1 (a
// frontend that folded the scale into q_proj).
// CHECK-LABEL: func.func @unscaled
// CHECK-NEXT: %[[A:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope_style = #attnedit<rope_style rotate_half>, rope_theta = 1.000000e+04 : f64, rotary_dim = 16 : i64, scale = 1.000000e+00 : f64}
// CHECK-NEXT: return %[[A]]
func.func @unscaled(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
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
  %m = attnedit.causal_mask %s : tensor<4x6x6xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x6x6xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x6x6xf32>, tensor<4x6x16xf32>) -> tensor<4x6x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %y : tensor<6x64xf32>
}

// -----

// Tests that a mask added as a 0/-inf bias (causal_mask of a broadcast
// splat zero) raises, keeping its window.
// CHECK-LABEL: func.func @added_mask
// CHECK-NEXT: %[[A:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope_style = #attnedit<rope_style rotate_half>, rope_theta = 1.000000e+04 : f64, rotary_dim = 16 : i64, scale = 2.500000e-01 : f64, window = 3 : i64}
// CHECK-NEXT: return %[[A]]
func.func @added_mask(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
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
  %z = arith.constant dense<0.000000e+00> : tensor<1x1x1xf32>
  %zb = attnedit.broadcast %z : (tensor<1x1x1xf32>) -> tensor<4x6x6xf32>
  %bias = attnedit.causal_mask %zb {window = 3 : i64} : tensor<4x6x6xf32>
  %m = attnedit.add %ss, %bias : tensor<4x6x6xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x6x6xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x6x6xf32>, tensor<4x6x16xf32>) -> tensor<4x6x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %y : tensor<6x64xf32>
}

// -----

// Tests the grouped matmul spelling of GQA, without repeat_kv. Canonical form
// (G = Hq / Hkv query heads per KV head):
//   q [Hq, T, D] -reshape-> [Hkv, G*T, D]; matmul with kT [Hkv, D, T]
//   -> [Hkv, G*T, T] -reshape-> scores [Hq, T, T]; scale, mask, softmax
//   probs -reshape-> [Hkv, G*T, T]; matmul with v [Hkv, T, D]
//   -> [Hkv, G*T, D] -reshape-> [Hq, T, D]
// A reshape is row-major, so query head h = kv*G + g lands in rows
// [g*T, (g+1)*T) of group kv: the G heads of a group are contiguous and each
// reads KV head h / G, as repeat_kv.
// CHECK-LABEL: func.func @grouped_matmul
// CHECK-NEXT: %[[A:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope_style = #attnedit<rope_style rotate_half>, rope_theta = 1.000000e+04 : f64, rotary_dim = 16 : i64, scale = 2.500000e-01 : f64}
// CHECK-NEXT: return %[[A]]
func.func @grouped_matmul(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
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
  %kt = attnedit.transpose %k {permutation = array<i64: 0, 2, 1>} : (tensor<2x6x16xf32>) -> tensor<2x16x6xf32>
  %qg = attnedit.reshape %q : (tensor<4x6x16xf32>) -> tensor<2x12x16xf32>
  %sg = attnedit.matmul %qg, %kt : (tensor<2x12x16xf32>, tensor<2x16x6xf32>) -> tensor<2x12x6xf32>
  %s = attnedit.reshape %sg : (tensor<2x12x6xf32>) -> tensor<4x6x6xf32>
  %ss = attnedit.scale %s {factor = 2.500000e-01 : f64} : tensor<4x6x6xf32>
  %m = attnedit.causal_mask %ss : tensor<4x6x6xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x6x6xf32>
  %pg = attnedit.reshape %p : (tensor<4x6x6xf32>) -> tensor<2x12x6xf32>
  %og = attnedit.matmul %pg, %v : (tensor<2x12x6xf32>, tensor<2x6x16xf32>) -> tensor<2x12x16xf32>
  %o = attnedit.reshape %og : (tensor<2x12x16xf32>) -> tensor<4x6x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %y : tensor<6x64xf32>
}

// -----

// Tests all variants at once: grouped matmul, scale multiply on q and an
// added mask.
// CHECK-LABEL: func.func @all_variants
// CHECK-NEXT: %[[A:.*]] = attnedit.attention %arg0, %arg1 weights(%arg2, %arg3, %arg4, %arg5) {head_dim = 16 : i64, num_heads = 4 : i64, num_kv_heads = 2 : i64, rope_style = #attnedit<rope_style rotate_half>, rope_theta = 1.000000e+04 : f64, rotary_dim = 16 : i64, scale = 2.500000e-01 : f64}
// CHECK-NEXT: return %[[A]]
func.func @all_variants(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
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
  %kt = attnedit.transpose %k {permutation = array<i64: 0, 2, 1>} : (tensor<2x6x16xf32>) -> tensor<2x16x6xf32>
  %c = arith.constant dense<2.500000e-01> : tensor<1x1x1xf32>
  %cb = attnedit.broadcast %c : (tensor<1x1x1xf32>) -> tensor<4x6x16xf32>
  %qs = attnedit.mul %q, %cb : tensor<4x6x16xf32>
  %qg = attnedit.reshape %qs : (tensor<4x6x16xf32>) -> tensor<2x12x16xf32>
  %sg = attnedit.matmul %qg, %kt : (tensor<2x12x16xf32>, tensor<2x16x6xf32>) -> tensor<2x12x6xf32>
  %s = attnedit.reshape %sg : (tensor<2x12x6xf32>) -> tensor<4x6x6xf32>
  %z = arith.constant dense<0.000000e+00> : tensor<1x1x1xf32>
  %zb = attnedit.broadcast %z : (tensor<1x1x1xf32>) -> tensor<4x6x6xf32>
  %bias = attnedit.causal_mask %zb : tensor<4x6x6xf32>
  %m = attnedit.add %bias, %s : tensor<4x6x6xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x6x6xf32>
  %pg = attnedit.reshape %p : (tensor<4x6x6xf32>) -> tensor<2x12x6xf32>
  %og = attnedit.matmul %pg, %v : (tensor<2x12x6xf32>, tensor<2x6x16xf32>) -> tensor<2x12x16xf32>
  %o = attnedit.reshape %og : (tensor<2x12x16xf32>) -> tensor<4x6x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %y : tensor<6x64xf32>
}

// -----

// Tests that a mask bias shared by two layers is a constant operand, not an
// intermediate: both layers raise and the bias goes with the last one.
// CHECK-LABEL: func.func @shared_mask_bias
// CHECK-NEXT: %[[A1:.*]] = attnedit.attention %arg0, %arg1
// CHECK-NEXT: %[[A2:.*]] = attnedit.attention %[[A1]], %arg1
// CHECK-NEXT: return %[[A2]]
func.func @shared_mask_bias(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> tensor<6x64xf32> {
  %z = arith.constant dense<0.000000e+00> : tensor<1x1x1xf32>
  %zb = attnedit.broadcast %z : (tensor<1x1x1xf32>) -> tensor<4x6x6xf32>
  %bias = attnedit.causal_mask %zb : tensor<4x6x6xf32>
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
  %m = attnedit.add %ss, %bias : tensor<4x6x6xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x6x6xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x6x6xf32>, tensor<4x6x16xf32>) -> tensor<4x6x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  %l2_q0 = attnedit.linear %y, %wq : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  %l2_q1 = attnedit.reshape %l2_q0 : (tensor<6x64xf32>) -> tensor<6x4x16xf32>
  %l2_k0 = attnedit.linear %y, %wk : (tensor<6x64xf32>, tensor<32x64xf32>) -> tensor<6x32xf32>
  %l2_k1 = attnedit.reshape %l2_k0 : (tensor<6x32xf32>) -> tensor<6x2x16xf32>
  %l2_v0 = attnedit.linear %y, %wv : (tensor<6x64xf32>, tensor<32x64xf32>) -> tensor<6x32xf32>
  %l2_v1 = attnedit.reshape %l2_v0 : (tensor<6x32xf32>) -> tensor<6x2x16xf32>
  %l2_q2 = attnedit.rope %l2_q1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<6x4x16xf32>, tensor<6xi32>) -> tensor<6x4x16xf32>
  %l2_q = attnedit.transpose %l2_q2 {permutation = array<i64: 1, 0, 2>} : (tensor<6x4x16xf32>) -> tensor<4x6x16xf32>
  %l2_k2 = attnedit.rope %l2_k1, %pos {rotary_dim = 16 : i64, style = #attnedit<rope_style rotate_half>, theta = 1.000000e+04 : f64} : (tensor<6x2x16xf32>, tensor<6xi32>) -> tensor<6x2x16xf32>
  %l2_k = attnedit.transpose %l2_k2 {permutation = array<i64: 1, 0, 2>} : (tensor<6x2x16xf32>) -> tensor<2x6x16xf32>
  %l2_v = attnedit.transpose %l2_v1 {permutation = array<i64: 1, 0, 2>} : (tensor<6x2x16xf32>) -> tensor<2x6x16xf32>
  %l2_kr = attnedit.repeat_kv %l2_k {repeats = 2 : i64} : (tensor<2x6x16xf32>) -> tensor<4x6x16xf32>
  %l2_vr = attnedit.repeat_kv %l2_v {repeats = 2 : i64} : (tensor<2x6x16xf32>) -> tensor<4x6x16xf32>
  %l2_kt = attnedit.transpose %l2_kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x6x16xf32>) -> tensor<4x16x6xf32>
  %l2_s = attnedit.matmul %l2_q, %l2_kt : (tensor<4x6x16xf32>, tensor<4x16x6xf32>) -> tensor<4x6x6xf32>
  %l2_ss = attnedit.scale %l2_s {factor = 2.500000e-01 : f64} : tensor<4x6x6xf32>
  %l2_m = attnedit.add %l2_ss, %bias : tensor<4x6x6xf32>
  %l2_p = attnedit.softmax %l2_m {axis = 2 : i64} : tensor<4x6x6xf32>
  %l2_o = attnedit.matmul %l2_p, %l2_vr : (tensor<4x6x6xf32>, tensor<4x6x16xf32>) -> tensor<4x6x16xf32>
  %l2_o1 = attnedit.transpose %l2_o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %l2_o2 = attnedit.reshape %l2_o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %l2_y = attnedit.linear %l2_o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %l2_y : tensor<6x64xf32>
}

// -----

// Tests that a mask bias also used outside the subgraph stays while the
// attention raises.
// CHECK-LABEL: func.func @bias_also_returned
// CHECK: %[[Z:.*]] = arith.constant dense<0.000000e+00> : tensor<1x1x1xf32>
// CHECK-NEXT: %[[ZB:.*]] = attnedit.broadcast %[[Z]]
// CHECK-NEXT: %[[B:.*]] = attnedit.causal_mask %[[ZB]]
// CHECK-NEXT: %[[A:.*]] = attnedit.attention %arg0, %arg1
// CHECK-NEXT: return %[[A]], %[[B]]
func.func @bias_also_returned(%x: tensor<6x64xf32>, %pos: tensor<6xi32>, %wq: tensor<64x64xf32>, %wk: tensor<32x64xf32>, %wv: tensor<32x64xf32>, %wo: tensor<64x64xf32>) -> (tensor<6x64xf32>, tensor<4x6x6xf32>) {
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
  %z = arith.constant dense<0.000000e+00> : tensor<1x1x1xf32>
  %zb = attnedit.broadcast %z : (tensor<1x1x1xf32>) -> tensor<4x6x6xf32>
  %bias = attnedit.causal_mask %zb : tensor<4x6x6xf32>
  %m = attnedit.add %ss, %bias : tensor<4x6x6xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x6x6xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x6x6xf32>, tensor<4x6x16xf32>) -> tensor<4x6x16xf32>
  %o1 = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x6x16xf32>) -> tensor<6x4x16xf32>
  %o2 = attnedit.reshape %o1 : (tensor<6x4x16xf32>) -> tensor<6x64xf32>
  %y = attnedit.linear %o2, %wo : (tensor<6x64xf32>, tensor<64x64xf32>) -> tensor<6x64xf32>
  return %y, %bias : tensor<6x64xf32>, tensor<4x6x6xf32>
}
