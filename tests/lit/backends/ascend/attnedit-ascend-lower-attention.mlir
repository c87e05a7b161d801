// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-attention | FileCheck %s
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-attention --attnedit-ascend-simulate="check-reference=false" -o /dev/null | FileCheck %s --check-prefix=SIM
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-pipeline="target=910b" -o /dev/null --mlir-print-ir-after-all 2>&1 | FileCheck %s --check-prefix=PIPE
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-pipeline="target=910a dtype=f16" | FileCheck %s --check-prefix=A910
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-attention --attnedit-ascend-emit-ascendc -o /dev/null | FileCheck %s --check-prefix=ASCENDC

// Tests that decomposed attention (the chain attnedit's decompositions
// build) becomes one launch of a flash-attention MIX kernel: the cube core
// and its two vector cores per block, ordered by cross-core flags; the GQA
// repeat_kv is read in place, the output transpose folded into the store.
// The simulator runs it hazard-free (cross-core happens-before included).
// CHECK-LABEL: func.func @gqa
// CHECK-NOT: attnedit.repeat_kv
// CHECK-NOT: attnedit.softmax
// CHECK: %[[Q:.*]] = attnedit.reshape %arg0 : (tensor<4x24x8xf32>) -> tensor<2x48x8xf32>
// CHECK: %[[M:.*]] = arith.constant dense<{{.*}}> : tensor<{{[0-9]+}}x{{[0-9]+}}xf32>
// CHECK: %[[Y:.*]] = ascend.launch @attention_0(%[[Q]], %arg1, %arg2, %[[M]])
// CHECK-SAME: -> tensor<24x32xf32>
// CHECK: attnedit.reshape %[[Y]] : (tensor<24x32xf32>) -> tensor<24x4x8xf32>
// CHECK: ascend.kernel @attention_0 target "910b" blocks {{[0-9]+}} core mix
// CHECK-SAME: sparseMode = 3
// CHECK-SAME: workspace = array<i64: 4, 5, 6>
// CHECK: ascend.cross_set fix
// CHECK: ascend.cross_wait
// CHECK: ascend.cross_set mte3
// SIM: ascend-simulate: @attention_0: {{[0-9]+}} blocks ({{[0-9]+}} cores), {{[0-9]+}} instructions, no hazards
// PIPE: ascend.kernel @attention_0 {{.*}} core mix
// A910-NOT: ascend.cross_set
// A910: attnedit.softmax
// ASCENDC: KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
// ASCENDC: const int64_t core = ASCEND_IS_AIC ? 0 : 1 + GetSubBlockIdx();
// ASCENDC: CrossCoreSetFlag<2, PIPE_FIX>(0);
// ASCENDC: CrossCoreWaitFlag(1);
// ASCENDC: CrossCoreWaitFlag(0);
// ASCENDC: CrossCoreSetFlag<2, PIPE_MTE3>(1);
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

// -----

// A sliding window of 5 with sinks: CANN's band sparse mode; the sinks go in
// one per query row.
// CHECK-LABEL: func.func @swa
// CHECK: attnedit.broadcast {{.*}} : (tensor<2x1xf32>) -> tensor<2x20xf32>
// CHECK: ascend.launch @attention_0
// CHECK: ascend.kernel @attention_0 {{.*}} core mix
// CHECK-SAME: numSinks = 1
// CHECK-SAME: preTokens = 4
// CHECK-SAME: sparseMode = 4
// SIM: ascend-simulate: @attention_0: {{.*}} no hazards
func.func @swa(%q: tensor<2x20x16xf32>, %k: tensor<2x20x16xf32>, %v: tensor<2x20x16xf32>, %sinks: tensor<2xf32>) -> tensor<20x2x16xf32> {
  %kt = attnedit.transpose %k {permutation = array<i64: 0, 2, 1>} : (tensor<2x20x16xf32>) -> tensor<2x16x20xf32>
  %s = attnedit.matmul %q, %kt : (tensor<2x20x16xf32>, tensor<2x16x20xf32>) -> tensor<2x20x20xf32>
  %s1 = attnedit.scale %s {factor = 0.25 : f64} : tensor<2x20x20xf32>
  %s2 = attnedit.causal_mask %s1 {window = 5 : i64} : tensor<2x20x20xf32>
  %p = attnedit.softmax %s2 sinks(%sinks : tensor<2xf32>) {axis = 2 : i64} : tensor<2x20x20xf32>
  %o = attnedit.matmul %p, %v : (tensor<2x20x20xf32>, tensor<2x20x16xf32>) -> tensor<2x20x16xf32>
  %y = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<2x20x16xf32>) -> tensor<20x2x16xf32>
  return %y : tensor<20x2x16xf32>
}

// -----

// A trained layer in a training step: GQA with a window of 5 and sinks, and
// autodiff's backward of it (the VJPs of the chain's ops, repeat_kv's as
// a reduce_sum over each group's heads). The forward launch also returns
// each row's log-sum-exp; one launch of the backward mix kernel (FA-2
// recompute: S, dP on the cube, P and dS on the vector cores, a sync_all
// between its query pass and its KV pass) gives dQ, dK, dV and the sink
// gradient's rows, summed per head.
// CHECK-LABEL: func.func @train
// CHECK-NOT: attnedit.softmax
// CHECK: %[[F:.*]]:2 = ascend.launch @attention_0({{.*}}) : {{.*}} -> (tensor<2x48x1xf32>, tensor<24x32xf32>)
// CHECK: %[[DO:.*]] = attnedit.transpose %arg4
// CHECK: %[[DOR:.*]] = attnedit.reshape %[[DO]] : (tensor<4x24x8xf32>) -> tensor<2x48x8xf32>
// CHECK: %[[G:.*]]:4 = ascend.launch @attention_0_grad(%{{.*}}, %arg1, %arg2, %[[DOR]], %[[F]]#1, %[[F]]#0, %{{.*}}, %{{.*}}) : {{.*}} -> (tensor<2x48x8xf32>, tensor<2x24x8xf32>, tensor<2x24x8xf32>, tensor<2x48x1xf32>)
// CHECK: %[[ROWS:.*]] = attnedit.reshape %[[G]]#3 : (tensor<2x48x1xf32>) -> tensor<4x24xf32>
// CHECK: attnedit.reduce_sum %[[ROWS]] {axis = 1 : i64} : (tensor<4x24xf32>) -> tensor<4xf32>
// CHECK-NOT: attnedit.softmax_grad
// CHECK-NOT: attnedit.sink_grad
// CHECK: ascend.kernel @attention_0 {{.*}} core mix
// CHECK: ascend.kernel @attention_0_grad target "910b" blocks {{[0-9]+}} core mix
// CHECK-SAME: numSinks = 1
// CHECK-SAME: sparseMode = 4
// CHECK: ascend.cross_set fix
// CHECK: ascend.sync_all
// SIM: ascend-simulate: @attention_0: {{.*}} no hazards
// SIM: ascend-simulate: @attention_0_grad: {{.*}} no hazards
// ASCENDC: void attention_0_grad(
// ASCENDC: CrossCoreSetFlag<2, PIPE_FIX>(3);
// ASCENDC: CrossCoreWaitFlag(4);
// ASCENDC: SyncAll();
func.func @train(%q: tensor<4x24x8xf32>, %k: tensor<2x24x8xf32>, %v: tensor<2x24x8xf32>, %sinks: tensor<4xf32>, %dy: tensor<24x4x8xf32>) -> (tensor<24x4x8xf32>, tensor<4x24x8xf32>, tensor<2x24x8xf32>, tensor<2x24x8xf32>, tensor<4xf32>) {
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x24x8xf32>) -> tensor<4x24x8xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x24x8xf32>) -> tensor<4x24x8xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x24x8xf32>) -> tensor<4x8x24xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x24x8xf32>, tensor<4x8x24xf32>) -> tensor<4x24x24xf32>
  %s1 = attnedit.scale %s {factor = 0.35355 : f64} : tensor<4x24x24xf32>
  %s2 = attnedit.causal_mask %s1 {window = 5 : i64} : tensor<4x24x24xf32>
  %p = attnedit.softmax %s2 sinks(%sinks : tensor<4xf32>) {axis = 2 : i64} : tensor<4x24x24xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x24x24xf32>, tensor<4x24x8xf32>) -> tensor<4x24x8xf32>
  %y = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x24x8xf32>) -> tensor<24x4x8xf32>
  %do = attnedit.transpose %dy {permutation = array<i64: 1, 0, 2>} : (tensor<24x4x8xf32>) -> tensor<4x24x8xf32>
  %vt = attnedit.transpose %vr {permutation = array<i64: 0, 2, 1>} : (tensor<4x24x8xf32>) -> tensor<4x8x24xf32>
  %dp = attnedit.matmul %do, %vt : (tensor<4x24x8xf32>, tensor<4x8x24xf32>) -> tensor<4x24x24xf32>
  %pt = attnedit.transpose %p {permutation = array<i64: 0, 2, 1>} : (tensor<4x24x24xf32>) -> tensor<4x24x24xf32>
  %dvr = attnedit.matmul %pt, %do : (tensor<4x24x24xf32>, tensor<4x24x8xf32>) -> tensor<4x24x8xf32>
  %sg = attnedit.softmax_grad %p, %dp {axis = 2 : i64} : tensor<4x24x24xf32>
  %dsink = attnedit.sink_grad %p, %dp : (tensor<4x24x24xf32>, tensor<4x24x24xf32>) -> tensor<4xf32>
  %m = attnedit.causal_mask %sg {window = 5 : i64, zero_fill} : tensor<4x24x24xf32>
  %ds = attnedit.scale %m {factor = 0.35355 : f64} : tensor<4x24x24xf32>
  %kk = attnedit.transpose %kt {permutation = array<i64: 0, 2, 1>} : (tensor<4x8x24xf32>) -> tensor<4x24x8xf32>
  %dq = attnedit.matmul %ds, %kk : (tensor<4x24x24xf32>, tensor<4x24x8xf32>) -> tensor<4x24x8xf32>
  %qt = attnedit.transpose %q {permutation = array<i64: 0, 2, 1>} : (tensor<4x24x8xf32>) -> tensor<4x8x24xf32>
  %dkt = attnedit.matmul %qt, %ds : (tensor<4x8x24xf32>, tensor<4x24x24xf32>) -> tensor<4x8x24xf32>
  %dkr = attnedit.transpose %dkt {permutation = array<i64: 0, 2, 1>} : (tensor<4x8x24xf32>) -> tensor<4x24x8xf32>
  %dv3 = attnedit.reshape %dvr : (tensor<4x24x8xf32>) -> tensor<2x2x192xf32>
  %dv2 = attnedit.reduce_sum %dv3 {axis = 1 : i64} : (tensor<2x2x192xf32>) -> tensor<2x192xf32>
  %dv = attnedit.reshape %dv2 : (tensor<2x192xf32>) -> tensor<2x24x8xf32>
  %dk3 = attnedit.reshape %dkr : (tensor<4x24x8xf32>) -> tensor<2x2x192xf32>
  %dk2 = attnedit.reduce_sum %dk3 {axis = 1 : i64} : (tensor<2x2x192xf32>) -> tensor<2x192xf32>
  %dk = attnedit.reshape %dk2 : (tensor<2x192xf32>) -> tensor<2x24x8xf32>
  return %y, %dq, %dk, %dv, %dsink : tensor<24x4x8xf32>, tensor<4x24x8xf32>, tensor<2x24x8xf32>, tensor<2x24x8xf32>, tensor<4xf32>
}

// -----

// The same backward with dS also returned: an intermediate the backward
// kernel does not write, so neither chain is fused.
// CHECK-LABEL: func.func @train_kept
// CHECK-NOT: ascend.launch
// CHECK: attnedit.softmax_grad
func.func @train_kept(%q: tensor<4x24x8xf32>, %k: tensor<2x24x8xf32>, %v: tensor<2x24x8xf32>, %sinks: tensor<4xf32>, %dy: tensor<24x4x8xf32>) -> (tensor<24x4x8xf32>, tensor<4x24x8xf32>, tensor<2x24x8xf32>, tensor<2x24x8xf32>, tensor<4xf32>, tensor<4x24x24xf32>) {
  %kr = attnedit.repeat_kv %k {repeats = 2 : i64} : (tensor<2x24x8xf32>) -> tensor<4x24x8xf32>
  %vr = attnedit.repeat_kv %v {repeats = 2 : i64} : (tensor<2x24x8xf32>) -> tensor<4x24x8xf32>
  %kt = attnedit.transpose %kr {permutation = array<i64: 0, 2, 1>} : (tensor<4x24x8xf32>) -> tensor<4x8x24xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x24x8xf32>, tensor<4x8x24xf32>) -> tensor<4x24x24xf32>
  %s1 = attnedit.scale %s {factor = 0.35355 : f64} : tensor<4x24x24xf32>
  %s2 = attnedit.causal_mask %s1 {window = 5 : i64} : tensor<4x24x24xf32>
  %p = attnedit.softmax %s2 sinks(%sinks : tensor<4xf32>) {axis = 2 : i64} : tensor<4x24x24xf32>
  %o = attnedit.matmul %p, %vr : (tensor<4x24x24xf32>, tensor<4x24x8xf32>) -> tensor<4x24x8xf32>
  %y = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<4x24x8xf32>) -> tensor<24x4x8xf32>
  %do = attnedit.transpose %dy {permutation = array<i64: 1, 0, 2>} : (tensor<24x4x8xf32>) -> tensor<4x24x8xf32>
  %vt = attnedit.transpose %vr {permutation = array<i64: 0, 2, 1>} : (tensor<4x24x8xf32>) -> tensor<4x8x24xf32>
  %dp = attnedit.matmul %do, %vt : (tensor<4x24x8xf32>, tensor<4x8x24xf32>) -> tensor<4x24x24xf32>
  %pt = attnedit.transpose %p {permutation = array<i64: 0, 2, 1>} : (tensor<4x24x24xf32>) -> tensor<4x24x24xf32>
  %dvr = attnedit.matmul %pt, %do : (tensor<4x24x24xf32>, tensor<4x24x8xf32>) -> tensor<4x24x8xf32>
  %sg = attnedit.softmax_grad %p, %dp {axis = 2 : i64} : tensor<4x24x24xf32>
  %dsink = attnedit.sink_grad %p, %dp : (tensor<4x24x24xf32>, tensor<4x24x24xf32>) -> tensor<4xf32>
  %m = attnedit.causal_mask %sg {window = 5 : i64, zero_fill} : tensor<4x24x24xf32>
  %ds = attnedit.scale %m {factor = 0.35355 : f64} : tensor<4x24x24xf32>
  %kk = attnedit.transpose %kt {permutation = array<i64: 0, 2, 1>} : (tensor<4x8x24xf32>) -> tensor<4x24x8xf32>
  %dq = attnedit.matmul %ds, %kk : (tensor<4x24x24xf32>, tensor<4x24x8xf32>) -> tensor<4x24x8xf32>
  %qt = attnedit.transpose %q {permutation = array<i64: 0, 2, 1>} : (tensor<4x24x8xf32>) -> tensor<4x8x24xf32>
  %dkt = attnedit.matmul %qt, %ds : (tensor<4x8x24xf32>, tensor<4x24x24xf32>) -> tensor<4x8x24xf32>
  %dkr = attnedit.transpose %dkt {permutation = array<i64: 0, 2, 1>} : (tensor<4x8x24xf32>) -> tensor<4x24x8xf32>
  %dv3 = attnedit.reshape %dvr : (tensor<4x24x8xf32>) -> tensor<2x2x192xf32>
  %dv2 = attnedit.reduce_sum %dv3 {axis = 1 : i64} : (tensor<2x2x192xf32>) -> tensor<2x192xf32>
  %dv = attnedit.reshape %dv2 : (tensor<2x192xf32>) -> tensor<2x24x8xf32>
  %dk3 = attnedit.reshape %dkr : (tensor<4x24x8xf32>) -> tensor<2x2x192xf32>
  %dk2 = attnedit.reduce_sum %dk3 {axis = 1 : i64} : (tensor<2x2x192xf32>) -> tensor<2x192xf32>
  %dk = attnedit.reshape %dk2 : (tensor<2x192xf32>) -> tensor<2x24x8xf32>
  return %y, %dq, %dk, %dv, %dsink, %ds : tensor<24x4x8xf32>, tensor<4x24x8xf32>, tensor<2x24x8xf32>, tensor<2x24x8xf32>, tensor<4xf32>, tensor<4x24x24xf32>
}

// -----

// Probabilities used twice (as a training step keeps them): not fused.
// CHECK-LABEL: func.func @kept
// CHECK-NOT: ascend.launch
// CHECK: attnedit.softmax
func.func @kept(%q: tensor<1x8x16xf32>, %k: tensor<1x8x16xf32>, %v: tensor<1x8x16xf32>) -> (tensor<8x1x16xf32>, tensor<1x8x8xf32>) {
  %kt = attnedit.transpose %k {permutation = array<i64: 0, 2, 1>} : (tensor<1x8x16xf32>) -> tensor<1x16x8xf32>
  %s = attnedit.matmul %q, %kt : (tensor<1x8x16xf32>, tensor<1x16x8xf32>) -> tensor<1x8x8xf32>
  %s2 = attnedit.causal_mask %s : tensor<1x8x8xf32>
  %p = attnedit.softmax %s2 {axis = 2 : i64} : tensor<1x8x8xf32>
  %o = attnedit.matmul %p, %v : (tensor<1x8x8xf32>, tensor<1x8x16xf32>) -> tensor<1x8x16xf32>
  %y = attnedit.transpose %o {permutation = array<i64: 1, 0, 2>} : (tensor<1x8x16xf32>) -> tensor<8x1x16xf32>
  return %y, %p : tensor<8x1x16xf32>, tensor<1x8x8xf32>
}
