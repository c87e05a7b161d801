// RUN: attnedit-opt %s | FileCheck %s
// RUN: attnedit-opt %s | attnedit-opt | FileCheck %s
// RUN: attnedit-opt %s --mlir-print-op-generic | attnedit-opt | FileCheck %s

// Tests that a cube kernel round-trips: GM arguments, planned multi-buffered
// allocations, copies on MTE2/MTE1/FIX with ND2NZ windows and a transposed
// L0B load, mmad into L0C, flags and barriers.
// CHECK-LABEL: ascend.kernel @cube target "910b" blocks 2 core aic
// CHECK: ^bb0(%[[BLK:.*]]: index, %[[A:.*]]: !ascend.buf<gm, 64x64xbf16, nd>, %[[W:.*]]: !ascend.buf<gm, 32x64xbf16, nd>, %[[C:.*]]: !ascend.buf<gm, 64x32xf32, nd>):
// CHECK: %[[AL1:.*]] = ascend.alloc offset 0 slots 2 : !ascend.buf<l1, 32x64xbf16, nz>
// CHECK: ascend.alloc offset 0 slots 1 : !ascend.buf<l0a, 32x64xbf16, zz>
// CHECK: ascend.alloc offset 0 slots 1 : !ascend.buf<l0b, 64x32xbf16, zn>
// CHECK: ascend.alloc offset 0 slots 1 : !ascend.buf<l0c, 32x32xf32, nz>
// CHECK: %[[S:.*]] = ascend.slot %[[AL1]][%{{.*}}] : !ascend.buf<l1, 32x64xbf16, nz>
// CHECK: ascend.copy mte2 %[[A]][%{{.*}}, %{{.*}}] -> %[[S]][%{{.*}}, %{{.*}}] sizes [32, 64] : !ascend.buf<gm, 64x64xbf16, nd> -> !ascend.buf<l1, 32x64xbf16, nz>
// CHECK: ascend.set_flag mte2 -> mte1, %{{.*}}
// CHECK: ascend.wait_flag mte2 -> mte1, %{{.*}}
// CHECK: ascend.copy mte1 %{{.*}} sizes [64, 32] transpose
// CHECK: ascend.mmad %{{.*}}, %{{.*}} -> %{{.*}} init %{{.*}} : !ascend.buf<l0a, 32x64xbf16, zz>, !ascend.buf<l0b, 64x32xbf16, zn> -> !ascend.buf<l0c, 32x32xf32, nz>
// CHECK: ascend.barrier m
// CHECK: ascend.copy fix %{{.*}} -> %[[C]]
// CHECK-LABEL: func.func @use
// CHECK: ascend.launch @cube(%{{.*}}, %{{.*}}) : (tensor<64x64xf32>, tensor<32x64xf32>) -> tensor<64x32xf32>
ascend.kernel @cube target "910b" blocks 2 core aic {
^bb0(%blk: index, %a: !ascend.buf<gm, 64x64xbf16, nd>, %w: !ascend.buf<gm, 32x64xbf16, nd>, %c: !ascend.buf<gm, 64x32xf32, nd>):
  %c0 = arith.constant 0 : index
  %c32 = arith.constant 32 : index
  %true = arith.constant true
  %al1 = ascend.alloc offset 0 slots 2 : !ascend.buf<l1, 32x64xbf16, nz>
  %wl1 = ascend.alloc offset 8192 slots 1 : !ascend.buf<l1, 32x64xbf16, nz>
  %al0 = ascend.alloc offset 0 slots 1 : !ascend.buf<l0a, 32x64xbf16, zz>
  %wl0 = ascend.alloc offset 0 slots 1 : !ascend.buf<l0b, 64x32xbf16, zn>
  %cl0 = ascend.alloc offset 0 slots 1 : !ascend.buf<l0c, 32x32xf32, nz>
  %row = arith.muli %blk, %c32 : index
  %s = ascend.slot %al1[%blk] : !ascend.buf<l1, 32x64xbf16, nz>
  ascend.copy mte2 %a[%row, %c0] -> %s[%c0, %c0] sizes [32, 64] : !ascend.buf<gm, 64x64xbf16, nd> -> !ascend.buf<l1, 32x64xbf16, nz>
  ascend.copy mte2 %w[%c0, %c0] -> %wl1[%c0, %c0] sizes [32, 64] : !ascend.buf<gm, 32x64xbf16, nd> -> !ascend.buf<l1, 32x64xbf16, nz>
  ascend.set_flag mte2 -> mte1, %c0
  ascend.wait_flag mte2 -> mte1, %c0
  ascend.copy mte1 %s[%c0, %c0] -> %al0[%c0, %c0] sizes [32, 64] : !ascend.buf<l1, 32x64xbf16, nz> -> !ascend.buf<l0a, 32x64xbf16, zz>
  ascend.copy mte1 %wl1[%c0, %c0] -> %wl0[%c0, %c0] sizes [64, 32] transpose : !ascend.buf<l1, 32x64xbf16, nz> -> !ascend.buf<l0b, 64x32xbf16, zn>
  ascend.set_flag mte1 -> m, %c0
  ascend.wait_flag mte1 -> m, %c0
  ascend.mmad %al0, %wl0 -> %cl0 init %true : !ascend.buf<l0a, 32x64xbf16, zz>, !ascend.buf<l0b, 64x32xbf16, zn> -> !ascend.buf<l0c, 32x32xf32, nz>
  ascend.barrier m
  ascend.set_flag m -> fix, %c0
  ascend.wait_flag m -> fix, %c0
  ascend.copy fix %cl0[%c0, %c0] -> %c[%row, %c0] sizes [32, 32] : !ascend.buf<l0c, 32x32xf32, nz> -> !ascend.buf<gm, 64x32xf32, nd>
}

func.func @use(%x: tensor<64x64xf32>, %w: tensor<32x64xf32>) -> tensor<64x32xf32> {
  %y = ascend.launch @cube(%x, %w) : (tensor<64x64xf32>, tensor<32x64xf32>) -> tensor<64x32xf32>
  return %y : tensor<64x32xf32>
}

// Tests that a vector kernel round-trips: UB tiles, element-wise, scalar,
// transcendental, cast, row reduction, broadcast, gather and transpose ops,
// and MTE2/MTE3.
// CHECK-LABEL: ascend.kernel @vec target "910b" blocks 1 core aiv
// CHECK: ascend.vadd %{{.*}}, %{{.*}} -> %{{.*}} : !ascend.buf<ub, 8x64xf32, nd>
// CHECK: ascend.vmuls %{{.*}}, 5.000000e-01 -> %{{.*}} : !ascend.buf<ub, 8x64xf32, nd>
// CHECK: ascend.vexp
// CHECK: ascend.vreduce max %{{.*}} -> %{{.*}} : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<ub, 8x1xf32, nd>
// CHECK: ascend.vbrcb %{{.*}} -> %{{.*}} : !ascend.buf<ub, 8x1xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
// CHECK: ascend.vgather %{{.*}}[%{{.*}}] -> %{{.*}} : !ascend.buf<ub, 8x64xf32, nd>, !ascend.buf<ub, 1x64xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
// CHECK: ascend.vln %{{.*}} -> %{{.*}} : !ascend.buf<ub, 8x64xf32, nd>
// CHECK: ascend.vtranspose %{{.*}} -> %{{.*}} : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<ub, 64x8xf32, nd>
// CHECK: ascend.vcast %{{.*}} -> %{{.*}} : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<ub, 8x64xbf16, nd>
// CHECK: ascend.copy mte3
ascend.kernel @vec target "910b" blocks 1 core aiv {
^bb0(%blk: index, %x: !ascend.buf<gm, 8x64xf32, nd>, %y: !ascend.buf<gm, 8x64xbf16, nd>):
  %c0 = arith.constant 0 : index
  %in = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  %t = ascend.alloc offset 2048 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  %m = ascend.alloc offset 4096 slots 1 : !ascend.buf<ub, 8x1xf32, nd>
  %o = ascend.alloc offset 4352 slots 1 : !ascend.buf<ub, 8x64xbf16, nd>
  %ix = ascend.alloc offset 5376 slots 1 : !ascend.buf<ub, 1x64xf32, nd>
  %tt = ascend.alloc offset 5632 slots 1 : !ascend.buf<ub, 64x8xf32, nd>
  ascend.copy mte2 %x[%c0, %c0] -> %in[%c0, %c0] sizes [8, 64] : !ascend.buf<gm, 8x64xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
  ascend.set_flag mte2 -> v, %c0
  ascend.wait_flag mte2 -> v, %c0
  ascend.vadd %in, %in -> %t : !ascend.buf<ub, 8x64xf32, nd>
  ascend.barrier v
  ascend.vmuls %t, 0.5 -> %t : !ascend.buf<ub, 8x64xf32, nd>
  ascend.barrier v
  ascend.vexp %t -> %t : !ascend.buf<ub, 8x64xf32, nd>
  ascend.barrier v
  ascend.vreduce max %t -> %m : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<ub, 8x1xf32, nd>
  ascend.barrier v
  ascend.vbrcb %m -> %t : !ascend.buf<ub, 8x1xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
  ascend.barrier v
  ascend.vgather %t[%ix] -> %in : !ascend.buf<ub, 8x64xf32, nd>, !ascend.buf<ub, 1x64xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
  ascend.barrier v
  ascend.vln %in -> %in : !ascend.buf<ub, 8x64xf32, nd>
  ascend.barrier v
  ascend.vtranspose %in -> %tt : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<ub, 64x8xf32, nd>
  ascend.barrier v
  ascend.vcast %t -> %o : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<ub, 8x64xbf16, nd>
  ascend.set_flag v -> mte3, %c0
  ascend.wait_flag v -> mte3, %c0
  ascend.copy mte3 %o[%c0, %c0] -> %y[%c0, %c0] sizes [8, 64] : !ascend.buf<ub, 8x64xbf16, nd> -> !ascend.buf<gm, 8x64xbf16, nd>
}

// -----

// Tests that a copy with a data-dependent GM offset round-trips: the id is
// element [k, 0] of an f32 UB tile, added to dimension 0 of the GM side
// (the embedding's row gather, cache_write's scatter).
// CHECK-LABEL: ascend.kernel @gather
// CHECK: ascend.copy mte2 %{{.*}}[%{{.*}}, %{{.*}}] -> %{{.*}}[%{{.*}}, %{{.*}}] sizes [1, 64] offset by %{{.*}}[%{{.*}}, %{{.*}}] : !ascend.buf<ub, 8x1xf32, nd> at dim 0 : !ascend.buf<gm, 100x64xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
// CHECK: ascend.copy mte3 %{{.*}} sizes [1, 64] offset by %{{.*}} at dim 0 : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<gm, 100x64xf32, nd>
ascend.kernel @gather target "910b" blocks 1 core aiv {
^bb0(%blk: index, %ids: !ascend.buf<gm, 8x1xf32, nd>, %table: !ascend.buf<gm, 100x64xf32, nd>, %pool: !ascend.buf<gm, 100x64xf32, nd>):
  %c0 = arith.constant 0 : index
  %c3 = arith.constant 3 : index
  %id = ascend.alloc offset 0 slots 1 : !ascend.buf<ub, 8x1xf32, nd>
  %rows = ascend.alloc offset 256 slots 1 : !ascend.buf<ub, 8x64xf32, nd>
  ascend.copy mte2 %ids[%c0, %c0] -> %id[%c0, %c0] sizes [8, 1] : !ascend.buf<gm, 8x1xf32, nd> -> !ascend.buf<ub, 8x1xf32, nd>
  ascend.barrier mte2
  ascend.copy mte2 %table[%c0, %c0] -> %rows[%c3, %c0] sizes [1, 64] offset by %id[%c3, %c0] : !ascend.buf<ub, 8x1xf32, nd> at dim 0 : !ascend.buf<gm, 100x64xf32, nd> -> !ascend.buf<ub, 8x64xf32, nd>
  ascend.set_flag mte2 -> mte3, %c0
  ascend.wait_flag mte2 -> mte3, %c0
  ascend.copy mte3 %rows[%c3, %c0] -> %pool[%c0, %c0] sizes [1, 64] offset by %id[%c3, %c0] : !ascend.buf<ub, 8x1xf32, nd> at dim 0 : !ascend.buf<ub, 8x64xf32, nd> -> !ascend.buf<gm, 100x64xf32, nd>
}

// -----

// Tests that a mix kernel round-trips: the block index and the core within
// the block, cross-core flags on FIX and MTE3, the workspace arguments.
// CHECK-LABEL: ascend.kernel @mix target "910b" blocks 1 core mix attributes {workspace = array<i64: 0>}
// CHECK: ^bb0(%{{.*}}: index, %[[CORE:.*]]: index, %[[WS:.*]]: !ascend.buf<gm, 16x16xf32, nd>):
// CHECK: ascend.cross_set fix, %{{.*}}
// CHECK: ascend.cross_wait %{{.*}}
// CHECK: ascend.cross_set mte3, %{{.*}}
ascend.kernel @mix target "910b" blocks 1 core mix attributes {workspace = array<i64: 0>} {
^bb0(%blk: index, %core: index, %ws: !ascend.buf<gm, 16x16xf32, nd>):
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %aic = arith.cmpi eq, %core, %c0 : index
  scf.if %aic {
    ascend.cross_set fix, %c0
    ascend.cross_wait %c1
  } else {
    ascend.cross_wait %c0
    ascend.cross_set mte3, %c1
  }
}

// -----

// Tests that allocations in disjoint regions (two loops one after the other,
// as the backward attention kernel's two passes) may share bytes: neither's
// buffer is usable while the other's is.
// CHECK-LABEL: ascend.kernel @passes
// CHECK: scf.for
// CHECK: ascend.alloc offset 0 slots 2 : !ascend.buf<l0c, 32x32xf32, nz>
// CHECK: scf.for
// CHECK: ascend.alloc offset 0 slots 1 : !ascend.buf<l0c, 64x32xf32, nz>
ascend.kernel @passes target "910b" blocks 1 core aic {
^bb0(%blk: index):
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  scf.for %i = %c0 to %c2 step %c1 {
    %a = ascend.alloc offset 0 slots 2 : !ascend.buf<l0c, 32x32xf32, nz>
  }
  scf.for %i = %c0 to %c2 step %c1 {
    %b = ascend.alloc offset 0 slots 1 : !ascend.buf<l0c, 64x32xf32, nz>
  }
}
