// RUN: not attnedit-opt %s --split-input-file --attnedit-autodiff 2>&1 | FileCheck %s --check-prefix=AUTODIFF
// RUN: not attnedit-opt %s --split-input-file --attnedit-build-decode 2>&1 | FileCheck %s --check-prefix=DECODE

// Tests that a declared function, or one whose body cf branches split, is
// refused by name: the passes walked the first block of
// its body and crashed or read garbage.
// AUTODIFF: error: attnedit-autodiff: @loss is a declaration: it has no body to run or transform
// DECODE: error: attnedit-build-decode: @forward is a declaration: it has no body to run or transform
module attributes {attnedit.parameter_files = []} {
  func.func private @forward(%t: tensor<?xi32>, %p: tensor<?xi32>) -> tensor<?x8xf32>
  func.func private @loss(%t: tensor<?xi32>, %p: tensor<?xi32>) -> tensor<f32>
}

// -----

// AUTODIFF: error: attnedit-autodiff: @loss must be one block ending in func.return (it has 2 blocks)
// DECODE: error: attnedit-build-decode: @forward must be one block ending in func.return (it has 2 blocks)
module attributes {attnedit.parameter_files = []} {
  func.func @forward(%t: tensor<?xi32>, %p: tensor<?xi32>) -> tensor<?x8xf32> {
    %c = arith.constant dense<0.0> : tensor<2x8xf32>
    %x = tensor.cast %c : tensor<2x8xf32> to tensor<?x8xf32>
    cf.br ^next
  ^next:
    return %x : tensor<?x8xf32>
  }
  func.func @loss(%t: tensor<?xi32>, %p: tensor<?xi32>) -> tensor<f32> {
    %c = arith.constant dense<0.0> : tensor<f32>
    cf.br ^next
  ^next:
    return %c : tensor<f32>
  }
}

// -----

// Tests that a function calling another is refused by name: each function is
// compiled on its own (the CPU backend could not find the callee), and the
// passes do not look into callees.
// AUTODIFF: error: attnedit-autodiff: @loss calls @helper: calls between functions are not supported; the function must hold its whole computation
// DECODE: error: attnedit-build-decode: @forward calls @helper: calls between functions are not supported; the function must hold its whole computation
module attributes {attnedit.parameter_files = []} {
  func.func @helper() -> tensor<f32> {
    %c = arith.constant dense<0.0> : tensor<f32>
    return %c : tensor<f32>
  }
  func.func @forward(%t: tensor<?xi32>, %p: tensor<?xi32>) -> tensor<?x8xf32> {
    %h = func.call @helper() : () -> tensor<f32>
    %c = arith.constant dense<0.0> : tensor<2x8xf32>
    %x = tensor.cast %c : tensor<2x8xf32> to tensor<?x8xf32>
    return %x : tensor<?x8xf32>
  }
  func.func @loss(%t: tensor<?xi32>, %p: tensor<?xi32>) -> tensor<f32> {
    %h = func.call @helper() : () -> tensor<f32>
    return %h : tensor<f32>
  }
}
