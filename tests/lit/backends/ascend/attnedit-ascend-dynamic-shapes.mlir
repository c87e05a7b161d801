// RUN: not attnedit-opt %s --split-input-file --attnedit-ascend-pipeline="report=%t.json ascendc=%t.cpp" 2>&1 | FileCheck %s
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-pipeline="tokens=128 report=%t.json" 2>&1 | FileCheck %s --check-prefix=TOKENS

// With tokens= every function is lowered whole, without a word.
// TOKENS-NOT: dynamic shapes
// TOKENS-COUNT-2: func.func @forward(%{{.*}}: tensor<128x256xf32>
// TOKENS-NOT: attnedit.linear

// Tests that the pipeline says when dynamic shapes (an imported model's
// token dimension) keep ops from lowering: with no kernel at all it is an
// error (it wrote an empty report and an empty Ascend C file, exit 0), with
// some kernels a warning naming how many stayed on the host.
// CHECK: error: 2 attnedit ops have dynamic shapes, which the Ascend lowering does not take, so no kernel was made: give the pipeline a token count (tokens=N), or run --attnedit-static-tokens=tokens=N before the lowerings
func.func @forward(%x: tensor<?x256xf32>, %w: tensor<256x256xf32>) -> tensor<?x256xf32> {
  %0 = attnedit.linear %x, %w : (tensor<?x256xf32>, tensor<256x256xf32>) -> tensor<?x256xf32>
  %1 = attnedit.linear %0, %w : (tensor<?x256xf32>, tensor<256x256xf32>) -> tensor<?x256xf32>
  return %1 : tensor<?x256xf32>
}

// -----

// CHECK: warning: 1 attnedit op has dynamic shapes, which the Ascend lowering does not take, so they stay unlowered
func.func @forward(%x: tensor<128x256xf32>, %y: tensor<?x256xf32>, %w: tensor<256x256xf32>) -> (tensor<128x256xf32>, tensor<?x256xf32>) {
  %0 = attnedit.linear %x, %w : (tensor<128x256xf32>, tensor<256x256xf32>) -> tensor<128x256xf32>
  %1 = attnedit.linear %y, %w : (tensor<?x256xf32>, tensor<256x256xf32>) -> tensor<?x256xf32>
  return %0, %1 : tensor<128x256xf32>, tensor<?x256xf32>
}
