// RUN: attnedit-opt %s --split-input-file --pass-pipeline="builtin.module(func.func(attnedit-cpu-strided-copies))" | FileCheck %s

// Tests that a copy into a slice of a wider buffer (bufferization's
// insert_slice: MLA's query heads concatenated from two parts) becomes a
// linalg.copy, a loop nest for the later passes, not a memrefCopy call.
// CHECK-LABEL: func.func @into_slice
// CHECK-SAME: (%[[A:.*]]: memref<?x4x8xf32>, %[[B:.*]]: memref<?x4x24xf32>)
// CHECK: %[[S:.*]] = memref.subview %[[B]]
// CHECK-NOT: memref.copy
// CHECK: linalg.copy ins(%[[A]] : memref<?x4x8xf32>) outs(%[[S]] : memref<?x4x8xf32, strided<[96, 24, 1], offset: 16>>)
// CHECK-NOT: memref.copy
func.func @into_slice(%a: memref<?x4x8xf32>, %b: memref<?x4x24xf32>) {
  %c0 = arith.constant 0 : index
  %n = memref.dim %a, %c0 : memref<?x4x8xf32>
  %s = memref.subview %b[0, 0, 16] [%n, 4, 8] [1, 1, 1] : memref<?x4x24xf32> to memref<?x4x8xf32, strided<[96, 24, 1], offset: 16>>
  memref.copy %a, %s : memref<?x4x8xf32> to memref<?x4x8xf32, strided<[96, 24, 1], offset: 16>>
  return
}

// -----

// Tests that copies finalize-memref-to-llvm serves with a memcpy stay
// copies: identity layouts, and a static slice that is contiguous.
// CHECK-LABEL: func.func @contiguous
// CHECK-NOT: linalg.copy
// CHECK: memref.copy %{{.*}}, %{{.*}} : memref<?x8xf32> to memref<?x8xf32>
// CHECK-NOT: linalg.copy
// CHECK: memref.copy %{{.*}}, %{{.*}} : memref<2x8xf32> to memref<2x8xf32, strided<[8, 1], offset: 16>>
// CHECK-NOT: linalg.copy
func.func @contiguous(%a: memref<?x8xf32>, %b: memref<?x8xf32>, %c: memref<2x8xf32>, %d: memref<6x8xf32>) {
  memref.copy %a, %b : memref<?x8xf32> to memref<?x8xf32>
  %s = memref.subview %d[2, 0] [2, 8] [1, 1] : memref<6x8xf32> to memref<2x8xf32, strided<[8, 1], offset: 16>>
  memref.copy %c, %s : memref<2x8xf32> to memref<2x8xf32, strided<[8, 1], offset: 16>>
  return
}
