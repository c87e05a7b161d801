// RUN: attnedit-opt %s --pass-pipeline="builtin.module(func.func(attnedit-cpu-parallel-loops))" | FileCheck %s
// RUN: attnedit-opt %s --pass-pipeline="builtin.module(func.func(attnedit-cpu-parallel-loops{min-work=64}))" | FileCheck %s --check-prefix=SMALL
// A negative min-work parallelised everything, silently.
// RUN: not attnedit-opt %s --pass-pipeline="builtin.module(func.func(attnedit-cpu-parallel-loops{min-work=-5}))" -o /dev/null 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// NEGATIVE: error: attnedit-cpu-parallel-loops: min-work must be 0 or more, got -5

// Tests that a bufferized op whose first iterator is parallel gets its outer
// loop as an OpenMP worksharing loop, in a parallel region taken when rows
// times the inner static iterations reach min-work, and as a plain loop
// otherwise (no call into the OpenMP runtime); that an op statically
// below min-work, and one whose first iterator is a reduction, are left
// for convert-linalg-to-loops.
// CHECK-LABEL: func.func @f
// CHECK: %[[ROWS:.*]] = memref.dim %arg0, %{{.*}} : memref<?x64xf32>
// CHECK: %[[WORK:.*]] = arith.muli %[[ROWS]], %c64
// CHECK: %[[BIG:.*]] = arith.cmpi sge, %[[WORK]], %c32768
// CHECK: scf.if %[[BIG]] {
// CHECK-NEXT: omp.parallel {
// CHECK-NEXT: omp.wsloop {
// CHECK-NEXT: omp.loop_nest (%[[I:.*]]) : index = (%{{.*}}) to (%[[ROWS]]) step (%{{.*}}) {
// CHECK: scf.for
// CHECK: math.exp
// CHECK: omp.yield
// CHECK: } else {
// CHECK-NEXT: scf.for %{{.*}} = %{{.*}} to %[[ROWS]]
// CHECK-NEXT: scf.for
// CHECK: math.exp
// CHECK: linalg.generic {{.*}} ins(%arg2 : memref<8x16xf32>)
// CHECK: scf.if
// CHECK-NEXT: omp.parallel {
// CHECK: linalg.generic {{.*}}iterator_types = ["reduction", "parallel"]
// SMALL-LABEL: func.func @f
// SMALL-NOT: linalg.generic {{.*}}["parallel", "parallel"]
// SMALL: linalg.generic {{.*}}iterator_types = ["reduction", "parallel"]
#id = affine_map<(d0, d1) -> (d0, d1)>
#row = affine_map<(d0, d1) -> (d0)>
#col = affine_map<(d0, d1) -> (d1)>
func.func @f(%a: memref<?x64xf32>, %b: memref<?x64xf32>, %s: memref<8x16xf32>, %r: memref<?xf32>, %c: memref<64xf32>) {
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%a : memref<?x64xf32>) outs(%b : memref<?x64xf32>) {
  ^bb0(%x: f32, %y: f32):
    %e = math.exp %x : f32
    linalg.yield %e : f32
  }
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]} ins(%s : memref<8x16xf32>) outs(%s : memref<8x16xf32>) {
  ^bb0(%x: f32, %y: f32):
    %e = arith.addf %x, %x : f32
    linalg.yield %e : f32
  }
  linalg.generic {indexing_maps = [#id, #row], iterator_types = ["parallel", "reduction"]} ins(%a : memref<?x64xf32>) outs(%r : memref<?xf32>) {
  ^bb0(%x: f32, %y: f32):
    %e = arith.addf %x, %y : f32
    linalg.yield %e : f32
  }
  linalg.generic {indexing_maps = [#id, #col], iterator_types = ["reduction", "parallel"]} ins(%a : memref<?x64xf32>) outs(%c : memref<64xf32>) {
  ^bb0(%x: f32, %y: f32):
    %e = arith.addf %x, %y : f32
    linalg.yield %e : f32
  }
  return
}
