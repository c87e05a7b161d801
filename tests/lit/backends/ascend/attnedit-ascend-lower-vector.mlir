// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-vector | FileCheck %s
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-vector --attnedit-ascend-simulate -o /dev/null | FileCheck %s --check-prefix=SIM
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-vector="target=910a" --attnedit-ascend-simulate -o /dev/null | FileCheck %s --check-prefix=SIM

// Tests that an RMSNorm becomes a vector-core kernel: rows dealt in tiles
// over the block index, the weight replicated into UB once, two UB slots
// per stream guarded by pre-armed flags, CopyIn (MTE2) / Compute (V, with
// barriers between dependent ops) / CopyOut (MTE3).
// CHECK-LABEL: func.func @norm
// CHECK: %[[W:.*]] = attnedit.reshape %arg1 : (tensor<96xf32>) -> tensor<1x96xf32>
// CHECK: ascend.launch @rms_norm_0(%arg0, %[[W]]) : (tensor<100x96xf32>, tensor<1x96xf32>) -> tensor<100x96xf32>
// CHECK-LABEL: ascend.kernel @rms_norm_0 target "910b" blocks 34 core aiv
// CHECK-SAME: ascend.row_op = "rms_norm", ascend.tile_rows = 3
// CHECK: %[[IN:.*]] = ascend.alloc offset 0 slots 2 : !ascend.buf<ub, 3x96xf32, nd>
// CHECK: %[[OUT:.*]] = ascend.alloc offset {{[0-9]+}} slots 2 : !ascend.buf<ub, 3x96xf32, nd>
// CHECK: ascend.copy mte2 %{{.*}}[%{{.*}}, %{{.*}}] -> %{{.*}} sizes [1, 96]
// CHECK: ascend.set_flag v -> mte2
// CHECK: ascend.set_flag mte3 -> v
// CHECK: scf.for
// CHECK:   ascend.wait_flag v -> mte2
// CHECK:   ascend.copy mte2
// CHECK:   ascend.set_flag mte2 -> v
// CHECK:   ascend.wait_flag mte2 -> v
// CHECK:   ascend.wait_flag mte3 -> v
// CHECK:   ascend.vmul
// CHECK:   ascend.barrier v
// CHECK:   ascend.vreduce sum
// CHECK:   ascend.vsqrt
// CHECK:   ascend.vrec
// CHECK:   ascend.vbrcb
// CHECK:   ascend.set_flag v -> mte3
// CHECK:   ascend.wait_flag v -> mte3
// CHECK:   ascend.copy mte3
// CHECK:   ascend.set_flag mte3 -> v
// SIM: @rms_norm_0: {{.*}} no hazards
func.func @norm(%x: tensor<100x96xf32>, %w: tensor<96xf32>) -> tensor<100x96xf32> {
  %n = attnedit.rms_norm %x, %w {eps = 1.0e-6 : f64} : (tensor<100x96xf32>, tensor<96xf32>) -> tensor<100x96xf32>
  return %n : tensor<100x96xf32>
}

// -----

// Tests that mul(silu(g), u) fuses into one SwiGLU kernel, that a residual
// add and a last-axis softmax over [H, T, T] (viewed as rows) are lowered.
// CHECK-LABEL: func.func @mlp
// CHECK: %[[M:.*]] = ascend.launch @silu_mul_0(%arg0, %arg1)
// CHECK: ascend.launch @add_{{[0-9]+}}(%[[M]], %arg0)
// CHECK: %[[S:.*]] = attnedit.reshape %arg2 : (tensor<2x8x8xf32>) -> tensor<16x8xf32>
// CHECK: ascend.launch @softmax_{{[0-9]+}}(%[[S]])
// CHECK-NOT: attnedit.silu
// CHECK: ascend.kernel @silu_mul_0
// CHECK: ascend.vexp
// CHECK: ascend.vdiv
// CHECK: ascend.vmul
// CHECK: ascend.kernel @add_
// CHECK: ascend.kernel @softmax_
// CHECK: ascend.vreduce max
// SIM: @silu_mul_0: {{.*}} no hazards
// SIM: @add_{{[0-9]+}}: {{.*}} no hazards
// SIM: @softmax_{{[0-9]+}}: {{.*}} no hazards
func.func @mlp(%g: tensor<64x48xf32>, %u: tensor<64x48xf32>, %s: tensor<2x8x8xf32>) -> (tensor<64x48xf32>, tensor<2x8x8xf32>) {
  %a = attnedit.silu %g : tensor<64x48xf32>
  %m = attnedit.mul %a, %u : tensor<64x48xf32>
  %r = attnedit.add %m, %g : tensor<64x48xf32>
  %p = attnedit.softmax %s {axis = 2 : i64} : tensor<2x8x8xf32>
  return %r, %p : tensor<64x48xf32>, tensor<2x8x8xf32>
}

// -----

// Tests that a softmax row too long for UB (32768 f32 = 128 KB, twice per
// stream) goes through column chunks of 4096 in three passes.
// CHECK-LABEL: ascend.kernel @softmax_0
// CHECK-SAME: ascend.chunk_cols = 4096
// CHECK: scf.for
// CHECK:   ascend.vdup -3.000000e+38
// CHECK:   scf.for
// CHECK:     ascend.vreduce max
// CHECK:     ascend.vmax
// CHECK:   scf.for
// CHECK:     ascend.vexp
// CHECK:     ascend.vreduce sum
// CHECK:   scf.for
// CHECK:     ascend.vdiv
// CHECK:     ascend.copy mte3
// SIM: @softmax_0: {{.*}} no hazards
func.func @long_rows(%s: tensor<4x32768xf32>) -> tensor<4x32768xf32> {
  %p = attnedit.softmax %s {axis = 1 : i64} : tensor<4x32768xf32>
  return %p : tensor<4x32768xf32>
}

// -----

// Tests that a rotate_half RoPE over [T, H, D] becomes a vector kernel with
// the inverse frequencies as a constant input and the i32 positions viewed
// as the kernel's [T, 1] f32 column; cos/sin once per row tile, the heads'
// halves streamed through two slots.
// CHECK-LABEL: func.func @rope
// CHECK: %[[F:.*]] = arith.constant dense<{{\[\[}}1.000000e+00, 1.000000e-01, 0.00999999977, 1.000000e-03]]> : tensor<1x4xf32>
// CHECK: %[[X:.*]] = attnedit.reshape %arg0 : (tensor<6x2x8xf32>) -> tensor<6x16xf32>
// CHECK: ascend.launch @rope_0(%[[X]], %arg1, %[[F]]) : (tensor<6x16xf32>, tensor<6xi32>, tensor<1x4xf32>) -> tensor<6x16xf32>
// CHECK-LABEL: func.func @rope_interleaved
// CHECK: %[[S:.*]] = arith.constant dense<{{\[\[}}-1.000000e+00, 1.000000e+00, -1.000000e-01, 1.000000e-01, -0.00999999977, 0.00999999977, -1.000000e-03, 1.000000e-03]]> : tensor<1x8xf32>
// CHECK: %[[I:.*]] = arith.constant dense<{{\[\[}}1.000000e+00, 0.000000e+00, 3.000000e+00, 2.000000e+00, 5.000000e+00, 4.000000e+00, 7.000000e+00, 6.000000e+00]]> : tensor<1x8xf32>
// CHECK: ascend.launch @rope_1(%{{.*}}, %arg1, %[[S]], %[[I]])
// CHECK-LABEL: func.func @rope_unlowered
// CHECK: attnedit.rope
// CHECK: ascend.kernel @rope_0
// CHECK-NEXT: ^bb0({{.*}}: !ascend.buf<gm, 6x1xf32, nd>, %{{.*}}: !ascend.buf<gm, 1x4xf32, nd>
// CHECK: ascend.vcos
// CHECK: ascend.vsin
// CHECK: scf.for
// CHECK:   ascend.vsub
// CHECK:   ascend.vadd
// CHECK: ascend.kernel @rope_1
// CHECK: scf.for
// CHECK:   ascend.vgather
// SIM: @rope_0: {{.*}} no hazards
// SIM: @rope_1: {{.*}} no hazards
func.func @rope(%x: tensor<6x2x8xf32>, %pos: tensor<6xi32>) -> tensor<6x2x8xf32> {
  %y = attnedit.rope %x, %pos {theta = 10000.0 : f64, rotary_dim = 8 : i64, style = #attnedit<rope_style rotate_half>} : (tensor<6x2x8xf32>, tensor<6xi32>) -> tensor<6x2x8xf32>
  return %y : tensor<6x2x8xf32>
}
// Interleaved pairs (llama2.c): the pair's partner through vgather.
func.func @rope_interleaved(%x: tensor<6x2x8xf32>, %pos: tensor<6xi32>) -> tensor<6x2x8xf32> {
  %y = attnedit.rope %x, %pos {theta = 10000.0 : f64, rotary_dim = 8 : i64, style = #attnedit<rope_style interleaved>} : (tensor<6x2x8xf32>, tensor<6xi32>) -> tensor<6x2x8xf32>
  return %y : tensor<6x2x8xf32>
}
// Partial rotary stays for another backend.
func.func @rope_unlowered(%x: tensor<6x2x8xf32>, %pos: tensor<6xi32>) -> tensor<6x2x8xf32> {
  %y = attnedit.rope %x, %pos {theta = 10000.0 : f64, rotary_dim = 4 : i64, style = #attnedit<rope_style interleaved>} : (tensor<6x2x8xf32>, tensor<6xi32>) -> tensor<6x2x8xf32>
  return %y : tensor<6x2x8xf32>
}

// -----

// Tests the near misses: a softmax along another axis, a softmax with
// sinks and a silu with two users (not fused) are handled as they can be.
// CHECK-LABEL: func.func @near_misses
// CHECK: attnedit.softmax %arg0 {axis = 1 : i64}
// CHECK: attnedit.softmax %arg0 sinks(%arg1 : tensor<2xf32>) {axis = 2 : i64}
// CHECK: %[[A:.*]] = ascend.launch @silu_
// CHECK: ascend.launch @mul_{{[0-9]+}}(%[[A]], %arg2)
func.func @near_misses(%s: tensor<2x8x8xf32>, %sinks: tensor<2xf32>, %g: tensor<8x16xf32>) -> (tensor<2x8x8xf32>, tensor<2x8x8xf32>, tensor<8x16xf32>, tensor<8x16xf32>) {
  %p = attnedit.softmax %s {axis = 1 : i64} : tensor<2x8x8xf32>
  %q = attnedit.softmax %s sinks(%sinks : tensor<2xf32>) {axis = 2 : i64} : tensor<2x8x8xf32>
  %a = attnedit.silu %g : tensor<8x16xf32>
  %m = attnedit.mul %a, %g : tensor<8x16xf32>
  return %p, %q, %m, %a : tensor<2x8x8xf32>, tensor<2x8x8xf32>, tensor<8x16xf32>, tensor<8x16xf32>
}

// -----

// Tests the training step's row-wise backward ops: softmax_grad (a row dot
// product), rms_norm_grad (the weight replicated once, as rms_norm's),
// silu_grad and sigmoid_grad, each a double-buffered vector kernel the
// simulator runs hazard-free on both targets.
// CHECK-LABEL: func.func @backward
// CHECK: %[[Y:.*]] = attnedit.reshape %arg0 : (tensor<2x8x8xf32>) -> tensor<16x8xf32>
// CHECK: %[[DY:.*]] = attnedit.reshape %arg1 : (tensor<2x8x8xf32>) -> tensor<16x8xf32>
// CHECK: ascend.launch @softmax_grad_{{[0-9]+}}(%[[Y]], %[[DY]])
// CHECK: %[[W:.*]] = attnedit.reshape %arg3 : (tensor<32xf32>) -> tensor<1x32xf32>
// CHECK: ascend.launch @rms_norm_grad_{{[0-9]+}}(%arg2, %arg4, %[[W]])
// CHECK: ascend.launch @silu_grad_{{[0-9]+}}(%arg2, %arg4)
// CHECK: ascend.launch @sigmoid_grad_{{[0-9]+}}(%arg2, %arg4)
// CHECK-LABEL: ascend.kernel @softmax_grad_
// CHECK: ascend.vreduce sum
// CHECK: ascend.vbrcb
// CHECK: ascend.vsub
// SIM: @softmax_grad_{{[0-9]+}}: {{.*}} no hazards
// SIM: @rms_norm_grad_{{[0-9]+}}: {{.*}} no hazards
// SIM: @silu_grad_{{[0-9]+}}: {{.*}} no hazards
// SIM: @sigmoid_grad_{{[0-9]+}}: {{.*}} no hazards
func.func @backward(%y: tensor<2x8x8xf32>, %dy: tensor<2x8x8xf32>, %x: tensor<20x32xf32>, %w: tensor<32xf32>, %g: tensor<20x32xf32>) -> (tensor<2x8x8xf32>, tensor<20x32xf32>, tensor<20x32xf32>, tensor<20x32xf32>) {
  %a = attnedit.softmax_grad %y, %dy {axis = 2 : i64} : tensor<2x8x8xf32>
  %b = attnedit.rms_norm_grad %x, %w, %g {eps = 1.0e-5 : f64} : (tensor<20x32xf32>, tensor<32xf32>, tensor<20x32xf32>) -> tensor<20x32xf32>
  %c = attnedit.silu_grad %x, %g : tensor<20x32xf32>
  %d = attnedit.sigmoid_grad %x, %g : tensor<20x32xf32>
  return %a, %b, %c, %d : tensor<2x8x8xf32>, tensor<20x32xf32>, tensor<20x32xf32>, tensor<20x32xf32>
}
