// UNSUPPORTED: system-windows
// RUN: mlir-opt %s --load-dialect-plugin=%attnedit_libs/AttnEditPlugin%shlibext --pass-pipeline="builtin.module(attnedit-decompose)" | FileCheck %s
// RUN: mlir-opt %s --load-pass-plugin=%attnedit_libs/AttnEditPlugin%shlibext --load-dialect-plugin=%attnedit_libs/AttnEditPlugin%shlibext --pass-pipeline="builtin.module(attnedit-decompose)" | FileCheck %s

// Tests that upstream mlir-opt parses attnedit ops and runs attnedit passes
// from the plugin. Without the plugin, both the parse and the pass name fail
// (a failed load is only a warning in mlir-opt), so FileCheck sees nothing.
// CHECK-LABEL: func.func @attention
// CHECK-NOT: attnedit.attention
// CHECK: attnedit.softmax
func.func @attention(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %w: tensor<32x32xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%w, %w, %w, %w) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}
