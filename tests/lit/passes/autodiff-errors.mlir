// RUN: attnedit-opt %s --split-input-file --verify-diagnostics --attnedit-autodiff="func=loss" -o /dev/null

// Tests that autodiff refuses, naming the op or argument, what it would have
// differentiated as a zero gradient without a word.

// A parameter's path to the loss through a region: the reverse sweep walks
// the function's own block, so w's gradient came out as zeros.
func.func @loss(%x: tensor<4x8xf32>, %c: i1) -> tensor<f32> {
  %w = attnedit.param "w" trainable : tensor<8x8xf32>
  %y = attnedit.linear %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  // expected-error @+1 {{'scf.if' op attnedit-autodiff: a differentiated value flows through this op's regions}}
  %r = scf.if %c -> tensor<4x8xf32> {
    scf.yield %y : tensor<4x8xf32>
  } else {
    scf.yield %x : tensor<4x8xf32>
  }
  %l = attnedit.mse_loss %r, %x : tensor<4x8xf32>
  return %l : tensor<f32>
}

// -----

// A trainable parameter declared inside a region.
func.func @loss(%x: tensor<4x8xf32>) -> tensor<f32> {
  // expected-error @+1 {{'scf.execute_region' op attnedit-autodiff: a differentiated value flows through this op's regions}}
  %r = scf.execute_region -> tensor<4x8xf32> {
    %w = attnedit.param "w" trainable : tensor<8x8xf32>
    %y = attnedit.linear %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    scf.yield %y : tensor<4x8xf32>
  }
  %l = attnedit.mse_loss %r, %x : tensor<4x8xf32>
  return %l : tensor<f32>
}

// -----

// A call on the loss's path (a multi-result one was skipped): the callee's
// ops are not differentiated, so calls are refused.
func.func @helper(%a: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
  return %a, %a : tensor<4x8xf32>, tensor<4x8xf32>
}
// expected-error @+1 {{attnedit-autodiff: @loss calls @helper: calls between functions are not supported}}
func.func @loss(%x: tensor<4x8xf32>, %t: tensor<4x8xf32>) -> tensor<f32> {
  %w = attnedit.param "w" trainable : tensor<8x8xf32>
  %y = attnedit.linear %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %a:2 = func.call @helper(%y) : (tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>)
  %l = attnedit.mse_loss %a#0, %t : tensor<4x8xf32>
  return %l : tensor<f32>
}

// -----

// An integer argument's "gradient" was a zero tensor of its type.
// expected-error @+1 {{attnedit-autodiff: argument 0 is marked attnedit.wrt but is 'tensor<4xi32>'; only f32 tensors have gradients}}
func.func @loss(%ids: tensor<4xi32> {attnedit.wrt}, %x: tensor<4x8xf32>) -> tensor<f32> {
  %l = attnedit.mse_loss %x, %x : tensor<4x8xf32>
  return %l : tensor<f32>
}

// -----

// One name, two shapes: their gradients cannot be summed (an 'attnedit.add'
// type error at the function's first line).
func.func @loss(%x: tensor<4x8xf32>) -> tensor<f32> {
  %w = attnedit.param "w" trainable : tensor<8x8xf32>
  // expected-error @+1 {{attnedit-autodiff: trainable parameter 'w' is declared as 'tensor<8x8xf32>' and as 'tensor<4x8xf32>'}}
  %v = attnedit.param "w" trainable : tensor<4x8xf32>
  %y = attnedit.linear %x, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %z = attnedit.add %y, %v : tensor<4x8xf32>
  %l = attnedit.mse_loss %z, %x : tensor<4x8xf32>
  return %l : tensor<f32>
}

// -----

// A sum over the token axis: its gradient broadcast [1, 8] to [?, 8], which
// the reference read as one row (a wrong gradient) and the CPU could not lower.
func.func @loss(%x: tensor<?x8xf32>, %t: tensor<1x8xf32>) -> tensor<f32> {
  %w = attnedit.param "w" trainable : tensor<8x8xf32>
  %y = attnedit.linear %x, %w : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  // expected-error @+1 {{has no gradient over its dynamic axis 0 (the token count)}}
  %r = attnedit.reduce_sum %y {axis = 0 : i64, keep_dims} : (tensor<?x8xf32>) -> tensor<1x8xf32>
  %l = attnedit.mse_loss %r, %t : tensor<1x8xf32>
  return %l : tensor<f32>
}
