// RUN: not attnedit-opt %s --split-input-file --attnedit-ascend-pipeline="report=%t.json" 2>&1 | FileCheck %s

// Tests that compute the lowerings leave on the host is named: a loss has
// no Ascend kernel, and the report's host_ops counted it as if it moved data.
// CHECK: warning: 1 attnedit op computes outside every kernel (attnedit.mse_loss), not lowered: they run on the host, untimed by the report
func.func @forward(%x: tensor<128x256xf32>, %w: tensor<256x256xf32>) -> tensor<f32> {
  %0 = attnedit.linear %x, %w : (tensor<128x256xf32>, tensor<256x256xf32>) -> tensor<128x256xf32>
  %1 = attnedit.mse_loss %0, %x : tensor<128x256xf32>
  return %1 : tensor<f32>
}

// -----

// CHECK: error: 3 attnedit ops compute outside every kernel (attnedit.add, attnedit.mse_loss x2), not lowered: there is no kernel to time
func.func @forward(%x: tensor<128x256xf32>, %y: tensor<128x256xf32>) -> tensor<f32> {
  %0 = attnedit.mse_loss %x, %y : tensor<128x256xf32>
  %1 = attnedit.mse_loss %y, %x : tensor<128x256xf32>
  %2 = attnedit.add %0, %1 : tensor<f32>
  return %2 : tensor<f32>
}
