// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-matmul="tiling=32,32,32,2" | FileCheck %s
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-matmul | FileCheck %s --check-prefix=SEARCH
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-matmul="target=910a dtype=f16 tiling=32,32,32,2" | FileCheck %s --check-prefix=A910
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-matmul="tiling=32,32,32,2 fuse-shared-input=false" | FileCheck %s --check-prefix=APART
// RUN: not attnedit-opt %s --split-input-file --attnedit-ascend-lower-matmul="tiling=32,32,32,2" --attnedit-ascend-estimate="tcube-tiling=-" -o /dev/null 2> %t.err | FileCheck %s --check-prefix=JSON
// RUN: FileCheck %s --check-prefix=UNLOWERED < %t.err

// Tests that a linear becomes a launch of a multi-core Cube kernel: C tiles
// dealt round-robin over the block index, a K loop of double-buffered L1
// blocks (MTE2) split into double-buffered L0 slices (MTE1, W transposed on
// its way to L0B), mmad accumulating in L0C with a barrier between
// accumulations, and FixPipe out; flags pre-armed and drained.
// CHECK-LABEL: func.func @linear
// CHECK: %[[Y:.*]] = ascend.launch @linear_0(%arg0, %arg1) : (tensor<64x96xf32>, tensor<80x96xf32>) -> tensor<64x80xf32>
// CHECK: return %[[Y]]
// CHECK-LABEL: ascend.kernel @linear_0 target "910b" blocks 6 core aic
// CHECK-SAME: ascend.transposed_b
// CHECK-SAME: baseK = 32 : i64, baseM = 32 : i64, baseN = 32 : i64
// CHECK-SAME: stepKa = 2 : i64
// CHECK-SAME: usedCoreNum = 6 : i64
// CHECK: ^bb0(%[[BLK:.*]]: index, %[[A:.*]]: !ascend.buf<gm, 64x96xbf16, nd>, %[[W:.*]]: !ascend.buf<gm, 80x96xbf16, nd>, %[[C:.*]]: !ascend.buf<gm, 64x80xbf16, nd>):
// CHECK-DAG: %[[AL1:.*]] = ascend.alloc offset 0 slots 2 : !ascend.buf<l1, 32x64xbf16, nz>
// CHECK-DAG: %[[BL1:.*]] = ascend.alloc offset 8192 slots 2 : !ascend.buf<l1, 32x64xbf16, nz>
// CHECK-DAG: ascend.alloc offset 0 slots 2 : !ascend.buf<l0a, 32x32xbf16, zz>
// CHECK-DAG: ascend.alloc offset 0 slots 2 : !ascend.buf<l0b, 32x32xbf16, zn>
// CHECK-DAG: %[[CL0:.*]] = ascend.alloc offset 0 slots 1 : !ascend.buf<l0c, 32x32xf32, nz>
// CHECK: ascend.set_flag mte1 -> mte2
// CHECK: ascend.set_flag fix -> m
// CHECK: scf.for %[[TASK:.*]] = %[[BLK]] to %{{.*}} step %{{.*}} {
// CHECK:   ascend.wait_flag fix -> m
// CHECK:   scf.for
// CHECK:     ascend.wait_flag mte1 -> mte2
// CHECK:     ascend.copy mte2 %[[A]]
// CHECK:     ascend.copy mte2 %[[W]]{{.*}}sizes [32, 64]
// CHECK:     ascend.set_flag mte2 -> mte1
// CHECK:     ascend.wait_flag mte2 -> mte1
// CHECK:     scf.for
// CHECK:       ascend.wait_flag m -> mte1
// CHECK:       ascend.copy mte1
// CHECK:       ascend.copy mte1 {{.*}} sizes [32, 32] transpose
// CHECK:       ascend.set_flag mte1 -> m
// CHECK:       ascend.wait_flag mte1 -> m
// CHECK:       ascend.mmad {{.*}} -> %[[CL0]] init
// CHECK:       ascend.barrier m
// CHECK:       ascend.set_flag m -> mte1
// CHECK:     ascend.set_flag mte1 -> mte2
// CHECK:   ascend.set_flag m -> fix
// CHECK:   ascend.wait_flag m -> fix
// CHECK:   ascend.copy fix %[[CL0]]{{.*}} -> %[[C]]
// CHECK:   ascend.set_flag fix -> m
// CHECK: ascend.wait_flag mte1 -> mte2
// CHECK: ascend.wait_flag fix -> m
// SEARCH-LABEL: ascend.kernel @linear_0 target "910b"
// A910-LABEL: ascend.kernel @linear_0 target "910a" blocks 6 core coupled
// A910: ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 32x32xf16, nd>
// A910: ascend.copy v %{{.*}} -> %{{.*}} : !ascend.buf<l0c, 32x32xf32, nz> -> !ascend.buf<ub, 32x32xf16, nd>
// A910: ascend.copy mte3
func.func @linear(%x: tensor<64x96xf32>, %w: tensor<80x96xf32>) -> tensor<64x80xf32> {
  %y = attnedit.linear %x, %w : (tensor<64x96xf32>, tensor<80x96xf32>) -> tensor<64x80xf32>
  return %y : tensor<64x80xf32>
}

// -----

// Tests that a linear over [T, H, K] is reshaped to the kernel's [T·H, K]
// and back.
// CHECK-LABEL: func.func @linear3d
// CHECK: %[[X:.*]] = attnedit.reshape %arg0 : (tensor<4x8x32xf32>) -> tensor<32x32xf32>
// CHECK: %[[Y:.*]] = ascend.launch @linear_0(%[[X]], %arg1) : (tensor<32x32xf32>, tensor<16x32xf32>) -> tensor<32x16xf32>
// CHECK: attnedit.reshape %[[Y]] : (tensor<32x16xf32>) -> tensor<4x8x16xf32>
func.func @linear3d(%x: tensor<4x8x32xf32>, %w: tensor<16x32xf32>) -> tensor<4x8x16xf32> {
  %y = attnedit.linear %x, %w : (tensor<4x8x32xf32>, tensor<16x32xf32>) -> tensor<4x8x16xf32>
  return %y : tensor<4x8x16xf32>
}

// -----

// Tests that a batched matmul indexes the batch in every GM copy and keeps B
// untransposed ([K, N] to L0B without transpose).
// CHECK-LABEL: ascend.kernel @matmul_0
// CHECK-NOT: ascend.transposed_b
// CHECK-SAME: batch = 3 : i64
// CHECK: ^bb0(%{{.*}}: index, %[[A:.*]]: !ascend.buf<gm, 3x32x64xbf16, nd>, %[[B:.*]]: !ascend.buf<gm, 3x64x48xbf16, nd>, %[[C:.*]]: !ascend.buf<gm, 3x32x48xbf16, nd>):
// CHECK: ascend.copy mte2 %[[A]][%{{.*}}, %{{.*}}, %{{.*}}]
// CHECK: ascend.copy mte2 %[[B]][%{{.*}}, %{{.*}}, %{{.*}}] {{.*}} sizes [64, 32]
// CHECK-NOT: transpose
// CHECK: ascend.copy fix %{{.*}} -> %[[C]][%{{.*}}, %{{.*}}, %{{.*}}]
func.func @batched(%a: tensor<3x32x64xf32>, %b: tensor<3x64x48xf32>) -> tensor<3x32x48xf32> {
  %c = attnedit.matmul %a, %b : (tensor<3x32x64xf32>, tensor<3x64x48xf32>) -> tensor<3x32x48xf32>
  return %c : tensor<3x32x48xf32>
}

// -----

// Tests the near misses: a dynamic shape and a linear with bias stay for
// another backend.
// CHECK-LABEL: func.func @unlowered
// CHECK: attnedit.linear %arg0, %arg1 :
// CHECK: attnedit.linear %arg2, %arg1, %arg3 :
// CHECK-NOT: ascend.launch
// CHECK-NOT: ascend.kernel
// The estimate then has no kernel to time, and says why.
// UNLOWERED: error: 1 attnedit op has dynamic shapes, which the Ascend lowering does not take, so no kernel was made
func.func @unlowered(%x: tensor<?x32xf32>, %w: tensor<16x32xf32>, %z: tensor<8x32xf32>, %b: tensor<16xf32>) -> (tensor<?x16xf32>, tensor<8x16xf32>) {
  %y = attnedit.linear %x, %w : (tensor<?x32xf32>, tensor<16x32xf32>) -> tensor<?x16xf32>
  %v = attnedit.linear %z, %w, %b : (tensor<8x32xf32>, tensor<16x32xf32>, tensor<16xf32>) -> tensor<8x16xf32>
  return %y, %v : tensor<?x16xf32>, tensor<8x16xf32>
}

// -----

// Tests that linears reading the same input (q, k, v) become one kernel
// over their weights side by side along N: one launch taking x and the
// three weights and returning the three outputs; a tile picks its part's
// weight and output by its first column (N = 64 + 32 + 40, the last part
// with a tail). The weights are not concatenated.
// CHECK-LABEL: func.func @shared_input
// CHECK: %[[Y:.*]]:3 = ascend.launch @linear_0(%arg0, %arg1, %arg2, %arg3) : (tensor<48x96xf32>, tensor<64x96xf32>, tensor<32x96xf32>, tensor<40x96xf32>) -> (tensor<48x64xf32>, tensor<48x32xf32>, tensor<48x40xf32>)
// CHECK: return %[[Y]]#0, %[[Y]]#1, %[[Y]]#2
// CHECK-LABEL: ascend.kernel @linear_0 target "910b" blocks 10 core aic
// CHECK-SAME: ascend.n_parts = array<i64: 64, 32, 40>
// CHECK-SAME: N = 136 : i64
// CHECK: ^bb0(%{{.*}}: index, %[[A:.*]]: !ascend.buf<gm, 48x96xbf16, nd>, %[[WQ:.*]]: !ascend.buf<gm, 64x96xbf16, nd>, %[[WK:.*]]: !ascend.buf<gm, 32x96xbf16, nd>, %[[WV:.*]]: !ascend.buf<gm, 40x96xbf16, nd>, %[[Q:.*]]: !ascend.buf<gm, 48x64xbf16, nd>, %[[K:.*]]: !ascend.buf<gm, 48x32xbf16, nd>, %[[V:.*]]: !ascend.buf<gm, 48x40xbf16, nd>):
// CHECK: ascend.copy mte2 %[[A]]
// CHECK: %[[IN0:.*]] = arith.cmpi ult, %[[COL:.*]], %c64
// CHECK: scf.if %[[IN0]] {
// CHECK:   ascend.copy mte2 %[[WQ]]
// CHECK: } else {
// CHECK:   %[[KCOL:.*]] = arith.subi %[[COL]], %c64
// CHECK:   arith.cmpi ult, %[[COL]], %c96
// CHECK:   ascend.copy mte2 %[[WK]][%[[KCOL]],
// CHECK:   } else {
// CHECK:     ascend.copy mte2 %[[WV]]
// CHECK: ascend.copy fix %{{.*}} -> %[[Q]]
// CHECK: ascend.copy fix %{{.*}} -> %[[K]]
// CHECK: ascend.copy fix %{{.*}} -> %[[V]]
// A910-LABEL: func.func @shared_input
// A910: ascend.launch @linear_0(%arg0, %arg1, %arg2, %arg3)
// A910: ascend.copy mte3 %{{.*}} -> %arg5
// A910: ascend.copy mte3 %{{.*}} -> %arg6
// A910: ascend.copy mte3 %{{.*}} -> %arg7
// The TCubeTiling JSON spans all parts; the parts are listed beside it.
// JSON: "N": 136,
// JSON: "kernel": "linear_0",
// JSON-NEXT: "n_parts": [
// JSON-NEXT: 64,
// JSON-NEXT: 32,
// JSON-NEXT: 40
// APART-LABEL: func.func @shared_input
// APART: ascend.launch @linear_0(%arg0, %arg1)
// APART: ascend.launch @linear_1(%arg0, %arg2)
// APART: ascend.launch @linear_2(%arg0, %arg3)
func.func @shared_input(%x: tensor<48x96xf32>, %wq: tensor<64x96xf32>, %wk: tensor<32x96xf32>, %wv: tensor<40x96xf32>) -> (tensor<48x64xf32>, tensor<48x32xf32>, tensor<48x40xf32>) {
  %q = attnedit.linear %x, %wq : (tensor<48x96xf32>, tensor<64x96xf32>) -> tensor<48x64xf32>
  %k = attnedit.linear %x, %wk : (tensor<48x96xf32>, tensor<32x96xf32>) -> tensor<48x32xf32>
  %v = attnedit.linear %x, %wv : (tensor<48x96xf32>, tensor<40x96xf32>) -> tensor<48x40xf32>
  return %q, %k, %v : tensor<48x64xf32>, tensor<48x32xf32>, tensor<48x40xf32>
}

// -----

// Tests what is not fused: a linear whose weight is computed after the
// first linear of the input (the launch could not take the first one's
// place), and a forced tiling whose baseN does not divide a part (the
// group is lowered one linear at a time). The first two still fuse.
// CHECK-LABEL: func.func @not_fused
// CHECK: %[[Y:.*]]:2 = ascend.launch @linear_0(%arg0, %arg1, %arg2)
// CHECK: %[[W:.*]] = attnedit.add %arg3, %arg3
// CHECK: ascend.launch @linear_1(%arg0, %[[W]])
// CHECK: ascend.launch @linear_2(%arg4, %arg5)
// CHECK: ascend.launch @linear_3(%arg4, %arg6)
func.func @not_fused(%x: tensor<32x64xf32>, %w0: tensor<32x64xf32>, %w1: tensor<32x64xf32>, %w2: tensor<32x64xf32>, %z: tensor<32x64xf32>, %w3: tensor<40x64xf32>, %w4: tensor<48x64xf32>) -> (tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x40xf32>, tensor<32x48xf32>) {
  %a = attnedit.linear %x, %w0 : (tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<32x32xf32>
  %b = attnedit.linear %x, %w1 : (tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<32x32xf32>
  %w = attnedit.add %w2, %w2 : tensor<32x64xf32>
  %c = attnedit.linear %x, %w : (tensor<32x64xf32>, tensor<32x64xf32>) -> tensor<32x32xf32>
  %d = attnedit.linear %z, %w3 : (tensor<32x64xf32>, tensor<40x64xf32>) -> tensor<32x40xf32>
  %e = attnedit.linear %z, %w4 : (tensor<32x64xf32>, tensor<48x64xf32>) -> tensor<32x48xf32>
  return %a, %b, %c, %d, %e : tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x40xf32>, tensor<32x48xf32>
}
