// RUN: attnedit-opt %s --split-input-file --attnedit-cpu-convert-to-linalg | FileCheck %s
// RUN: attnedit-opt %s --split-input-file --attnedit-cpu-convert-to-linalg=gemm=loops | FileCheck %s --check-prefix=LOOPS

// Tests that a GQA attention chain (as the decomposition builds it) becomes
// one fused attention call reading q, k and v in their projection layouts
// [T, H, D] (the transposes and repeat_kv folded away, nothing copied),
// with [scale, causal, window, segments] as constants, and that no H×T×T score tensor
// remains; with gemm=loops it lowers op by op.
// CHECK-LABEL: func.func @gqa
// CHECK-SAME: %[[Q:[^:]*]]: tensor<?x4x8xf32> {{.*}}, %[[K:[^:]*]]: tensor<?x2x8xf32> {{.*}}, %[[V:[^:]*]]: tensor<?x2x8xf32>
// CHECK-DAG: %[[P:.*]] = arith.constant dense<[{{.*}}, 1.000000e+00, 1.600000e+01, 1.000000e+00]> : tensor<4xf32>
// CHECK: %[[O:.*]] = linalg.generic {{.*}}library_call = "attnedit_cpu_attention"}
// CHECK-SAME: ins(%[[Q]], %[[K]], %[[V]], %[[P]] : tensor<?x4x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32>, tensor<4xf32>)
// CHECK: } -> tensor<?x4x8xf32>
// CHECK-NOT: tensor<4x?x?xf32>
// CHECK: return %[[O]]
// LOOPS-LABEL: func.func @gqa
// LOOPS-NOT: attnedit_cpu_attention
// LOOPS: tensor<4x?x?xf32>
func.func @gqa(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
  %qt = attnedit.transpose %q {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x8xf32>) -> tensor<4x?x8xf32>
  %kt = attnedit.transpose %k {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %vt = attnedit.transpose %v {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %kr = attnedit.repeat_kv %kt {repeats = 2 : i64} : (tensor<2x?x8xf32>) -> tensor<4x?x8xf32>
  %vr = attnedit.repeat_kv %vt {repeats = 2 : i64} : (tensor<2x?x8xf32>) -> tensor<4x?x8xf32>
  %kT = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x8xf32>) -> tensor<4x8x?xf32>
  %s = attnedit.matmul %qt, %kT : (tensor<4x?x8xf32>, tensor<4x8x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 0.35355339059327373 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss {window = 16 : i64} : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x8xf32>) -> tensor<4x?x8xf32>
  %ot = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x8xf32>) -> tensor<?x4x8xf32>
  return %ot : tensor<?x4x8xf32>
}

// -----

// Tests that attention sinks select the kernel that counts them.
// CHECK-LABEL: func.func @sinks
// CHECK: library_call = "attnedit_cpu_attention_sinks"
// CHECK-SAME: ins(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x2x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32>, tensor<2xf32>, tensor<4xf32>)
func.func @sinks(%q: tensor<?x2x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>, %sinks: tensor<2xf32>) -> tensor<?x2x8xf32> {
  %qt = attnedit.transpose %q {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %kt = attnedit.transpose %k {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %vt = attnedit.transpose %v {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %kT = attnedit.transpose %kt {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x8xf32>) -> tensor<2x8x?xf32>
  %s = attnedit.matmul %qt, %kT : (tensor<2x?x8xf32>, tensor<2x8x?xf32>) -> tensor<2x?x?xf32>
  %m = attnedit.causal_mask %s : tensor<2x?x?xf32>
  %p = attnedit.softmax %m sinks(%sinks : tensor<2xf32>) {axis = 2 : i64} : tensor<2x?x?xf32>
  %o = attnedit.matmul %p, %vt : (tensor<2x?x?xf32>, tensor<2x?x8xf32>) -> tensor<2x?x8xf32>
  %ot = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<2x?x8xf32>) -> tensor<?x2x8xf32>
  return %ot : tensor<?x2x8xf32>
}

// -----

// Tests that probabilities with a second user (a training forward keeping
// them for the backward pass) leave the chain op by op.
// CHECK-LABEL: func.func @kept
// CHECK-NOT: attnedit_cpu_attention
// CHECK: return
func.func @kept(%q: tensor<2x?x8xf32>, %kT: tensor<2x8x?xf32>, %v: tensor<2x?x8xf32>) -> (tensor<2x?x8xf32>, tensor<2x?x?xf32>) {
  %s = attnedit.matmul %q, %kT : (tensor<2x?x8xf32>, tensor<2x8x?xf32>) -> tensor<2x?x?xf32>
  %m = attnedit.causal_mask %s : tensor<2x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<2x?x?xf32>
  %o = attnedit.matmul %p, %v : (tensor<2x?x?xf32>, tensor<2x?x8xf32>) -> tensor<2x?x8xf32>
  return %o, %p : tensor<2x?x8xf32>, tensor<2x?x?xf32>
}
