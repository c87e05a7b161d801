// RUN: attnedit-opt %s --attnedit-cpu-library-calls | FileCheck %s

// Tests that a bufferized generic with a library_call becomes a call on
// fully dynamic strided memrefs, declared with the C interface, and a generic
// without one is left for the loop lowering.
#mk = affine_map<(m, n, k) -> (m, k)>
#nk = affine_map<(m, n, k) -> (n, k)>
#mn = affine_map<(m, n, k) -> (m, n)>
#id = affine_map<(i) -> (i)>
// CHECK-LABEL: func.func @gemm
// CHECK-NOT: memref.transpose
// CHECK: %[[A:.*]] = memref.cast %{{.*}} : memref<8x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: call @attnedit_cpu_gemm_nt(%[[A]], %{{.*}}, %{{.*}}) : (memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<?x?xf32, strided<[?, ?], offset: ?>>) -> ()
// CHECK: linalg.generic
// CHECK-NOT: library_call
func.func @gemm(%a: memref<8x4xf32>, %b: memref<2x4xf32>, %c: memref<8x2xf32>, %v: memref<3xf32>) {
  linalg.generic {indexing_maps = [#mk, #nk, #mn], iterator_types = ["parallel", "parallel", "reduction"], library_call = "attnedit_cpu_gemm_nt"}
      ins(%a, %b : memref<8x4xf32>, memref<2x4xf32>) outs(%c : memref<8x2xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#id], iterator_types = ["parallel"]} outs(%v : memref<3xf32>) {
  ^bb0(%x: f32):
    %s = arith.addf %x, %x : f32
    linalg.yield %s : f32
  }
  return
}

// Tests that an operand of a call with a loop per operand dimension whose
// map permutes its loops (an init libraryCall was given axes for) reaches
// the library as a transposed view, its axes in loop order, while a GEMM's
// loops, shared between operands, never transpose (its shim reads op(B)
// from the map's order itself).
// CHECK-LABEL: func.func @permuted_init
// CHECK: %[[T:.*]] = memref.transpose %arg1 (d0, d1, d2) -> (d1, d0, d2) : memref<5x2x3xf32> to memref<2x5x3xf32, strided<[3, 6, 1]>>
// CHECK: %[[C:.*]] = memref.cast %[[T]] : memref<2x5x3xf32, strided<[3, 6, 1]>> to memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>
// CHECK: call @attnedit_test_kernel(%{{.*}}, %[[C]])
func.func @permuted_init(%a: memref<2x5x3xf32>, %out: memref<5x2x3xf32>) {
  linalg.generic {indexing_maps = [affine_map<(a0, a1, a2, o0, o1, o2) -> (a0, a1, a2)>,
                                   affine_map<(a0, a1, a2, o0, o1, o2) -> (o1, o0, o2)>],
                  iterator_types = ["reduction", "reduction", "reduction", "parallel", "parallel", "parallel"],
                  library_call = "attnedit_test_kernel"}
      ins(%a : memref<2x5x3xf32>) outs(%out : memref<5x2x3xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %s = arith.addf %acc, %x : f32
    linalg.yield %s : f32
  }
  return
}

// Tests that a GEMM whose destination was last written by a zero fill
// overwrites it (the `_overwrite` shim, BLAS beta = 0) and the fill goes; a
// second GEMM into the same buffer, a GEMM into a non-zero fill and one whose
// destination is read between fill and GEMM keep accumulating after their fill.
// CHECK-LABEL: func.func @zero_init
// CHECK-NOT: linalg.fill
// CHECK: call @attnedit_cpu_gemm_nt_overwrite(
// CHECK-NOT: linalg.fill
// CHECK: call @attnedit_cpu_gemm_nt(
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%arg3 :
// CHECK: call @attnedit_cpu_gemm_nt(
// CHECK: linalg.fill ins(%{{.*}} : f32) outs(%arg4 :
// CHECK-NEXT: memref.copy %arg4
// CHECK: call @attnedit_cpu_gemm_nt(
// CHECK-NOT: call @attnedit_cpu_gemm_nt_overwrite
// CHECK: func.func private @attnedit_cpu_gemm_nt({{.*}}) attributes {llvm.emit_c_interface}
// CHECK: func.func private @attnedit_cpu_gemm_nt_overwrite({{.*}}) attributes {llvm.emit_c_interface}
func.func @zero_init(%a: memref<8x4xf32>, %b: memref<2x4xf32>, %c: memref<8x2xf32>,
                     %d: memref<8x2xf32>, %e: memref<8x2xf32>, %seen: memref<8x2xf32>) {
  %zero = arith.constant 0.0 : f32
  %one = arith.constant 1.0 : f32
  linalg.fill ins(%zero : f32) outs(%c : memref<8x2xf32>)
  linalg.generic {indexing_maps = [#mk, #nk, #mn], iterator_types = ["parallel", "parallel", "reduction"], library_call = "attnedit_cpu_gemm_nt"}
      ins(%a, %b : memref<8x4xf32>, memref<2x4xf32>) outs(%c : memref<8x2xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#mk, #nk, #mn], iterator_types = ["parallel", "parallel", "reduction"], library_call = "attnedit_cpu_gemm_nt"}
      ins(%a, %b : memref<8x4xf32>, memref<2x4xf32>) outs(%c : memref<8x2xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  linalg.fill ins(%one : f32) outs(%d : memref<8x2xf32>)
  linalg.generic {indexing_maps = [#mk, #nk, #mn], iterator_types = ["parallel", "parallel", "reduction"], library_call = "attnedit_cpu_gemm_nt"}
      ins(%a, %b : memref<8x4xf32>, memref<2x4xf32>) outs(%d : memref<8x2xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  linalg.fill ins(%zero : f32) outs(%e : memref<8x2xf32>)
  memref.copy %e, %seen : memref<8x2xf32> to memref<8x2xf32>
  linalg.generic {indexing_maps = [#mk, #nk, #mn], iterator_types = ["parallel", "parallel", "reduction"], library_call = "attnedit_cpu_gemm_nt"}
      ins(%a, %b : memref<8x4xf32>, memref<2x4xf32>) outs(%e : memref<8x2xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

