// RUN: attnedit-opt %s --attnedit-cpu-pipeline=results-as-arguments=true | FileCheck %s
// RUN: attnedit-opt %s --attnedit-cpu-pipeline | FileCheck %s --check-prefix=RETURNED

// Tests that with results-as-arguments a function of static results returns
// nothing and allocates nothing: each result is computed into a buffer the
// caller passes (the descriptors after the inputs, then the arena), where
// by default each result is a fresh malloc returned in a struct.
// CHECK: llvm.func @step({{[^>]*}}) attributes {attnedit.arena_bytes
// CHECK-NOT: @malloc
// CHECK: llvm.return{{$}}
// RETURNED: llvm.func @step({{.*}}) -> !llvm.struct<(struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>, struct
// RETURNED-COUNT-2: llvm.call @malloc
func.func @step(%x: tensor<8x16xf32>, %y: tensor<16x16xf32>) -> (tensor<8x16xf32>, tensor<8x16xf32>) {
  %s = attnedit.silu %x : tensor<8x16xf32>
  %m = attnedit.matmul %s, %y : (tensor<8x16xf32>, tensor<16x16xf32>) -> tensor<8x16xf32>
  %a = attnedit.add %m, %x : tensor<8x16xf32>
  return %s, %a : tensor<8x16xf32>, tensor<8x16xf32>
}
