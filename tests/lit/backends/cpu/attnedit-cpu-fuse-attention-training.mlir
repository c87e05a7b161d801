// RUN: attnedit-opt %s --split-input-file --attnedit-autodiff --attnedit-cpu-convert-to-linalg | FileCheck %s

// Tests that in a training step an attention chain and the backward ops
// autodiff writes for it become two library calls: the forward keeping each
// row's log-sum-exp ([H, T]) instead of the probabilities, and the
// FlashAttention-2 backward reading q, k, v, the output, the log-sum-exp and
// the output's gradient, giving dQ, dK and dV per query head. No H×T×T
// tensor is left in the gradient function. Both calls read the mask's
// [scale, causal, window, segments]: three packed sequences here. dQ, read
// only token-major ([T, H, D], q's layout), is written so through a
// permuted map; dK and dV, which GQA sums over each group head-major, stay
// [H, T, D].
// CHECK-LABEL: func.func @loss_grad
// CHECK-SAME: %[[Q:[^:]*]]: tensor<?x4x16xf32> {{.*}}, %[[K:[^:]*]]: tensor<?x2x16xf32> {{.*}}, %[[V:[^:]*]]: tensor<?x2x16xf32>
// CHECK-NOT: tensor<4x?x?xf32>
// CHECK: %[[P:.*]] = arith.constant dense<[2.500000e-01, 1.000000e+00, 7.000000e+01, 3.000000e+00]> : tensor<4xf32>
// CHECK-NOT: tensor<4x?x?xf32>
// CHECK: %[[F:.*]]:2 = linalg.generic {{.*}}library_call = "attnedit_cpu_attention_train"}
// CHECK-SAME: ins(%[[Q]], %[[K]], %[[V]], %[[P]] : tensor<?x4x16xf32>, tensor<?x2x16xf32>, tensor<?x2x16xf32>, tensor<4xf32>)
// CHECK-SAME: outs({{.*}} : tensor<?x4x16xf32>, tensor<4x?xf32>)
// CHECK-NOT: tensor<4x?x?xf32>
// CHECK: %[[G:.*]]:3 = linalg.generic {{.*}}library_call = "attnedit_cpu_attention_backward"}
// CHECK-SAME: ins(%[[Q]], %[[K]], %[[V]], %[[F]]#0, %[[F]]#1, %{{.*}}, %[[P]] :
// CHECK: } -> (tensor<?x4x16xf32>, tensor<4x?x16xf32>, tensor<4x?x16xf32>)
// CHECK-NOT: tensor<4x?x?xf32>
// CHECK: return {{.*}}, %[[G]]#0,
func.func @loss(%q: tensor<?x4x16xf32> {attnedit.wrt}, %k: tensor<?x2x16xf32> {attnedit.wrt}, %v: tensor<?x2x16xf32> {attnedit.wrt}, %t: tensor<?x4x16xf32>) -> tensor<f32> {
  %qt = attnedit.transpose %q {permutation = array<i64: 1, 0, 2>} : (tensor<?x4x16xf32>) -> tensor<4x?x16xf32>
  %kt = attnedit.transpose %k {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %vt = attnedit.transpose %v {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x16xf32>) -> tensor<2x?x16xf32>
  %kr = attnedit.repeat_kv %kt {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %vr = attnedit.repeat_kv %vt {repeats = 2 : i64} : (tensor<2x?x16xf32>) -> tensor<4x?x16xf32>
  %kT = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x16xf32>) -> tensor<4x16x?xf32>
  %s = attnedit.matmul %qt, %kT : (tensor<4x?x16xf32>, tensor<4x16x?xf32>) -> tensor<4x?x?xf32>
  %ss = attnedit.scale %s {factor = 0.25 : f64} : tensor<4x?x?xf32>
  %m = attnedit.causal_mask %ss {segments = 3 : i64, window = 70 : i64} : tensor<4x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<4x?x?xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x?x?xf32>, tensor<4x?x16xf32>) -> tensor<4x?x16xf32>
  %ot = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x?x16xf32>) -> tensor<?x4x16xf32>
  %l = attnedit.mse_loss %ot, %t : tensor<?x4x16xf32>
  return %l : tensor<f32>
}

// -----

// Tests that a chain with sinks (GateSWA) fuses too, the sinks read by both
// calls and their gradient ([H]) the backward's fourth result. Without GQA,
// dQ, dK and dV are all written token-major and returned untransposed.
// CHECK-LABEL: func.func @loss_grad
// CHECK-SAME: %[[Q:[^:]*]]: tensor<?x2x8xf32> {{.*}}, %[[K:[^:]*]]: tensor<?x2x8xf32> {{.*}}, %[[V:[^:]*]]: tensor<?x2x8xf32> {{.*}}, %[[S:[^:]*]]: tensor<2xf32>
// CHECK: library_call = "attnedit_cpu_attention_train_sinks"}
// CHECK-SAME: ins(%[[Q]], %[[K]], %[[V]], %[[S]], %{{.*}} :
// CHECK: %[[G:.*]]:4 = linalg.generic {{.*}}library_call = "attnedit_cpu_attention_backward_sinks"}
// CHECK-SAME: ins(%[[Q]], %[[K]], %[[V]], %[[S]],
// CHECK: } -> (tensor<?x2x8xf32>, tensor<?x2x8xf32>, tensor<?x2x8xf32>, tensor<2xf32>)
// CHECK-NOT: linalg.transpose
// CHECK: return {{.*}}, %[[G]]#0, %[[G]]#1, %[[G]]#2, %[[G]]#3 :
func.func @loss(%q: tensor<?x2x8xf32> {attnedit.wrt}, %k: tensor<?x2x8xf32> {attnedit.wrt}, %v: tensor<?x2x8xf32> {attnedit.wrt}, %sinks: tensor<2xf32> {attnedit.wrt}, %t: tensor<?x2x8xf32>) -> tensor<f32> {
  %qt = attnedit.transpose %q {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %kt = attnedit.transpose %k {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %vt = attnedit.transpose %v {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %kT = attnedit.transpose %kt {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x8xf32>) -> tensor<2x8x?xf32>
  %s = attnedit.matmul %qt, %kT : (tensor<2x?x8xf32>, tensor<2x8x?xf32>) -> tensor<2x?x?xf32>
  %m = attnedit.causal_mask %s : tensor<2x?x?xf32>
  %p = attnedit.softmax %m sinks(%sinks : tensor<2xf32>) {axis = 2 : i64} : tensor<2x?x?xf32>
  %o = attnedit.matmul %p, %vt : (tensor<2x?x?xf32>, tensor<2x?x8xf32>) -> tensor<2x?x8xf32>
  %ot = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<2x?x8xf32>) -> tensor<?x2x8xf32>
  %l = attnedit.mse_loss %ot, %t : tensor<?x2x8xf32>
  return %l : tensor<f32>
}

// -----

// Tests that a frozen chain in a training step (a distillation teacher's
// attention: nothing it reads is differentiated, so autodiff writes no
// backward ops for it) becomes the inference kernel's call, no log-sum-exp
// kept, while the trained chain beside it becomes the training pair. Before,
// the frozen chain stayed decomposed: a T×T score tensor per head, and on a
// packed lane the scores between sequences were computed and then masked.
// CHECK-LABEL: func.func @loss_grad
// CHECK-SAME: %[[Q:[^:]*]]: tensor<?x2x8xf32> {{.*}}, %[[K:[^:]*]]: tensor<?x2x8xf32> {{.*}}, %[[V:[^:]*]]: tensor<?x2x8xf32> {{.*}}, %[[TQ:[^:]*]]: tensor<?x2x8xf32> {{.*}}, %[[TK:[^:]*]]: tensor<?x2x8xf32> {{.*}}, %[[TV:[^:]*]]: tensor<?x2x8xf32>
// CHECK-NOT: tensor<2x?x?xf32>
// CHECK-DAG: library_call = "attnedit_cpu_attention_train"}
// CHECK-DAG: library_call = "attnedit_cpu_attention"}
// CHECK-SAME: ins(%[[TQ]], %[[TK]], %[[TV]], %{{.*}} :
// CHECK: library_call = "attnedit_cpu_attention_backward"}
// CHECK-NOT: tensor<2x?x?xf32>
// CHECK: return
func.func @loss(%q: tensor<?x2x8xf32> {attnedit.wrt}, %k: tensor<?x2x8xf32> {attnedit.wrt}, %v: tensor<?x2x8xf32> {attnedit.wrt}, %tq: tensor<?x2x8xf32>, %tk: tensor<?x2x8xf32>, %tv: tensor<?x2x8xf32>) -> tensor<f32> {
  %qt = attnedit.transpose %q {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %kt = attnedit.transpose %k {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %vt = attnedit.transpose %v {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %kT = attnedit.transpose %kt {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x8xf32>) -> tensor<2x8x?xf32>
  %s = attnedit.matmul %qt, %kT : (tensor<2x?x8xf32>, tensor<2x8x?xf32>) -> tensor<2x?x?xf32>
  %m = attnedit.causal_mask %s {segments = 2 : i64} : tensor<2x?x?xf32>
  %p = attnedit.softmax %m {axis = 2 : i64} : tensor<2x?x?xf32>
  %o = attnedit.matmul %p, %vt : (tensor<2x?x?xf32>, tensor<2x?x8xf32>) -> tensor<2x?x8xf32>
  %tqt = attnedit.transpose %tq {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %tkt = attnedit.transpose %tk {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %tvt = attnedit.transpose %tv {permutation = array<i64: 1, 0, 2>} : (tensor<?x2x8xf32>) -> tensor<2x?x8xf32>
  %tkT = attnedit.transpose %tkt {permutation = array<i64: 0, 2, 1>} : (tensor<2x?x8xf32>) -> tensor<2x8x?xf32>
  %ts = attnedit.matmul %tqt, %tkT : (tensor<2x?x8xf32>, tensor<2x8x?xf32>) -> tensor<2x?x?xf32>
  %tm = attnedit.causal_mask %ts {segments = 2 : i64} : tensor<2x?x?xf32>
  %tp = attnedit.softmax %tm {axis = 2 : i64} : tensor<2x?x?xf32>
  %to = attnedit.matmul %tp, %tvt : (tensor<2x?x?xf32>, tensor<2x?x8xf32>) -> tensor<2x?x8xf32>
  %l = attnedit.mse_loss %o, %to : tensor<2x?x8xf32>
  return %l : tensor<f32>
}
