// RUN: attnedit-opt %s --attnedit-cpu-outline-loops --split-input-file --verify-diagnostics | FileCheck %s

// Tests that each bufferized linalg op becomes a call of a private noinline
// function, that two ops whose functions would be identical (the same loop
// on the same shapes, as every layer repeats) share one, that a captured
// constant is cloned into the function and another captured value becomes
// an argument.
#id = affine_map<(i) -> (i)>
// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[A:.*]]: memref<3xf32>, %[[B:.*]]: memref<3xf32>, %[[C:.*]]: memref<3xf32>, %[[S:.*]]: f32)
// CHECK: call @step__loop0(%[[A]], %[[B]]) : (memref<3xf32>, memref<3xf32>) -> ()
// CHECK: call @step__loop0(%[[B]], %[[C]]) : (memref<3xf32>, memref<3xf32>) -> ()
// CHECK: call @step__loop1(%[[C]], %[[S]]) : (memref<3xf32>, f32) -> ()
// CHECK: call @step__loop2(%[[S]], %[[A]]) : (f32, memref<3xf32>) -> ()
// CHECK-NOT: linalg
// CHECK: func.func private @step__loop0(%{{.*}}: memref<3xf32>, %{{.*}}: memref<3xf32>) attributes {passthrough = ["noinline"]}
// CHECK: arith.constant 2.0
// CHECK: linalg.generic
// CHECK: func.func private @step__loop1(%{{.*}}: memref<3xf32>, %[[X:.*]]: f32) attributes {passthrough = ["noinline"]}
// CHECK: arith.addf %{{.*}}, %[[X]]
// CHECK: func.func private @step__loop2
// CHECK: linalg.fill
// CHECK-NOT: func.func private
func.func @step(%a: memref<3xf32>, %b: memref<3xf32>, %c: memref<3xf32>, %s: f32) {
  %two = arith.constant 2.0 : f32
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%a : memref<3xf32>) outs(%b : memref<3xf32>) {
  ^bb0(%x: f32, %y: f32):
    %m = arith.mulf %x, %two : f32
    linalg.yield %m : f32
  }
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
      ins(%b : memref<3xf32>) outs(%c : memref<3xf32>) {
  ^bb0(%x: f32, %y: f32):
    %m = arith.mulf %x, %two : f32
    linalg.yield %m : f32
  }
  linalg.generic {indexing_maps = [#id], iterator_types = ["parallel"]} outs(%c : memref<3xf32>) {
  ^bb0(%x: f32):
    %m = arith.addf %x, %s : f32
    linalg.yield %m : f32
  }
  linalg.fill ins(%s : f32) outs(%a : memref<3xf32>)
  return
}

// -----

func.func @tensors(%a: tensor<3xf32>, %s: f32) -> tensor<3xf32> {
  // expected-error @+1 {{attnedit-cpu-outline-loops: run after bufferization}}
  %r = linalg.fill ins(%s : f32) outs(%a : tensor<3xf32>) -> tensor<3xf32>
  return %r : tensor<3xf32>
}
