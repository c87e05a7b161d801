// RUN: attnedit-opt %s --attnedit-static-tokens=tokens=64 2>&1 | FileCheck %s

// Tests that a KV-cache step of --attnedit-build-decode (an argument with a
// block table) is left dynamic, with a warning: its sizes are sequences,
// cache blocks and slots, and one token count made a 64 x 64 block table of
// 64 sequences. A token count past the model's context is warned about.
// CHECK: warning: attnedit-static-tokens: tokens=64 is past the model's context (32 positions)
// CHECK: warning: attnedit-static-tokens: @decode reads a paged KV cache, whose sizes are not the token count; left as it is
// CHECK: func.func @forward(%{{.*}}: tensor<64xi32>) -> tensor<64xi32>
// CHECK: func.func @decode(%{{.*}}: tensor<?xi32>, %{{.*}}: tensor<?x?xi32> {attnedit.block_table
module attributes {attnedit.max_positions = 32 : i64} {
  func.func @forward(%t: tensor<?xi32>) -> tensor<?xi32> {
    return %t : tensor<?xi32>
  }
  func.func @decode(%t: tensor<?xi32>,
                    %table: tensor<?x?xi32> {attnedit.block_table = {ring_blocks = 0 : i64, window = 0 : i64}})
      -> tensor<?xi32> {
    return %t : tensor<?xi32>
  }
}
