// RUN: attnedit-opt %s --split-input-file --pass-pipeline="builtin.module(func.func(attnedit-cpu-unshare-fills))" | FileCheck %s

// Tests that two GEMMs accumulating into one CSE'd zero fill each get a fill
// (and an empty tensor) of their own, placed right before them, and that the
// shared fill is gone.
// CHECK-LABEL: func.func @two_gemms
// CHECK: %[[E0:.*]] = tensor.empty(%{{.*}}) : tensor<?x8xf32>
// CHECK-NEXT: %[[F0:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E0]] : tensor<?x8xf32>)
// CHECK-NEXT: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<?x4xf32>, tensor<4x8xf32>) outs(%[[F0]] : tensor<?x8xf32>)
// CHECK-NEXT: %[[E1:.*]] = tensor.empty(%{{.*}}) : tensor<?x8xf32>
// CHECK-NEXT: %[[F1:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%[[E1]] : tensor<?x8xf32>)
// CHECK-NEXT: linalg.matmul ins(%{{.*}}, %{{.*}} : tensor<?x4xf32>, tensor<4x8xf32>) outs(%[[F1]] : tensor<?x8xf32>)
// CHECK-NOT: linalg.fill
// CHECK: return
func.func @two_gemms(%a: tensor<?x4xf32>, %b: tensor<4x8xf32>, %c: tensor<4x8xf32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %c0 = arith.constant 0 : index
  %zero = arith.constant 0.0 : f32
  %n = tensor.dim %a, %c0 : tensor<?x4xf32>
  %e = tensor.empty(%n) : tensor<?x8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<?x8xf32>) -> tensor<?x8xf32>
  %0 = linalg.matmul ins(%a, %b : tensor<?x4xf32>, tensor<4x8xf32>) outs(%z : tensor<?x8xf32>) -> tensor<?x8xf32>
  %1 = linalg.matmul ins(%a, %c : tensor<?x4xf32>, tensor<4x8xf32>) outs(%z : tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0, %1 : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// Tests that a fill also read as an input keeps that use while the op writes
// into a fill of its own.
// CHECK-LABEL: func.func @read_and_written
// CHECK: %[[Z:.*]] = linalg.fill
// CHECK: %[[F:.*]] = linalg.fill
// CHECK-NEXT: linalg.add ins(%[[Z]], %{{.*}} : tensor<8xf32>, tensor<8xf32>) outs(%[[F]] : tensor<8xf32>)
func.func @read_and_written(%x: tensor<8xf32>) -> tensor<8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<8xf32>) -> tensor<8xf32>
  %0 = linalg.add ins(%z, %x : tensor<8xf32>, tensor<8xf32>) outs(%z : tensor<8xf32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

// Tests that a fill with one use is left where it is.
// CHECK-LABEL: func.func @single_use
// CHECK: tensor.empty
// CHECK-NEXT: linalg.fill
// CHECK-NEXT: arith.constant
// CHECK-NEXT: linalg.add
// CHECK-NOT: linalg.fill
func.func @single_use(%x: tensor<8xf32>) -> tensor<8xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<8xf32>
  %z = linalg.fill ins(%zero : f32) outs(%e : tensor<8xf32>) -> tensor<8xf32>
  %one = arith.constant dense<1.0> : tensor<8xf32>
  %0 = linalg.add ins(%x, %one : tensor<8xf32>, tensor<8xf32>) outs(%z : tensor<8xf32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}
