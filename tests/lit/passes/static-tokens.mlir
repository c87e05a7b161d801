// RUN: attnedit-opt %s --attnedit-static-tokens=tokens=64 | FileCheck %s
// RUN: not attnedit-opt %s --attnedit-static-tokens=tokens=0 2>&1 | FileCheck %s --check-prefix=ZERO

// Tests that every dynamic size (an imported model's token count) becomes
// the given count in arguments, results and op results; a reshape that folds
// the token count with heads gets its own size, from its input's elements.
// CHECK-LABEL: func.func @forward(%{{.*}}: tensor<64xi32>, %{{.*}}: tensor<64x32xf32>, %{{.*}}: tensor<32x32xf32>) -> tensor<256x8xf32>
// CHECK: attnedit.linear {{.*}} -> tensor<64x32xf32>
// CHECK: attnedit.reshape {{.*}} : (tensor<64x32xf32>) -> tensor<64x4x8xf32>
// CHECK: attnedit.transpose {{.*}} -> tensor<4x64x8xf32>
// CHECK: attnedit.reshape {{.*}} : (tensor<4x64x8xf32>) -> tensor<256x8xf32>
// CHECK: return {{.*}} : tensor<256x8xf32>
func.func @forward(%t: tensor<?xi32>, %x: tensor<?x32xf32>, %w: tensor<32x32xf32>) -> tensor<?x8xf32> {
  %0 = attnedit.linear %x, %w : (tensor<?x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  %1 = attnedit.reshape %0 : (tensor<?x32xf32>) -> tensor<?x4x8xf32>
  %2 = attnedit.transpose %1 {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x8xf32>) -> tensor<4x?x8xf32>
  %3 = attnedit.reshape %2 : (tensor<4x?x8xf32>) -> tensor<?x8xf32>
  return %3 : tensor<?x8xf32>
}

// A sum over a folded size keeps it: repeat_kv's VJP sums [Hkv, r, T*D]
// over r (autodiff's training steps failed here, given [Hkv, T]).
// CHECK-LABEL: func.func @repeat_kv_grad(%{{.*}}: tensor<8x64x8xf32>) -> tensor<4x64x8xf32>
// CHECK: attnedit.reduce_sum {{.*}} : (tensor<4x2x512xf32>) -> tensor<4x512xf32>
// CHECK: attnedit.reduce_sum {{.*}} : (tensor<4x2x512xf32>) -> tensor<4x1x512xf32>
func.func @repeat_kv_grad(%g: tensor<8x?x8xf32>) -> tensor<4x?x8xf32> {
  %0 = attnedit.reshape %g : (tensor<8x?x8xf32>) -> tensor<4x2x?xf32>
  %1 = attnedit.reduce_sum %0 {axis = 1 : i64} : (tensor<4x2x?xf32>) -> tensor<4x?xf32>
  %2 = attnedit.reduce_sum %0 {axis = 1 : i64, keep_dims} : (tensor<4x2x?xf32>) -> tensor<4x1x?xf32>
  %3 = attnedit.reshape %1 : (tensor<4x?xf32>) -> tensor<4x?x8xf32>
  return %3 : tensor<4x?x8xf32>
}

// ZERO: error: attnedit-static-tokens: tokens must be in [1, 2^32], got 0
