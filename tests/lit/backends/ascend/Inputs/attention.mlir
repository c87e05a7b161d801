func.func @gqa(%q: tensor<4x24x8xf32>, %k: tensor<2x24x8xf32>, %v: tensor<2x24x8xf32>) -> tensor<24x4x8xf32> {
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x24x8xf32>) -> tensor<4x24x8xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x24x8xf32>) -> tensor<4x24x8xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x24x8xf32>) -> tensor<4x8x24xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x24x8xf32>, tensor<4x8x24xf32>) -> tensor<4x24x24xf32>
  %s1 = attnedit.scale %s {factor = 0.35355 : f64} : tensor<4x24x24xf32>
  %s2 = attnedit.causal_mask %s1 : tensor<4x24x24xf32>
  %p = attnedit.softmax %s2 {axis = 2 : i64} : tensor<4x24x24xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x24x24xf32>, tensor<4x24x8xf32>) -> tensor<4x24x8xf32>
  %y = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x24x8xf32>) -> tensor<24x4x8xf32>
  return %y : tensor<24x4x8xf32>
}
