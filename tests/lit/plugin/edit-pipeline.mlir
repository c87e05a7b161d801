// UNSUPPORTED: system-windows
// RUN: mlir-opt %s --load-pass-plugin=%attnedit_libs/AttnEditPlugin%shlibext --load-dialect-plugin=%attnedit_libs/AttnEditPlugin%shlibext --pass-pipeline="builtin.module(attnedit-decompose,attnedit-raise-attention,attnedit-edit-attention{target=mla kv-lora-rank=8 qk-rope-head-dim=8 init=random},attnedit-kv-report{context=64 dtype=f32})" 2>&1 | FileCheck %s

// Tests that upstream mlir-opt runs the whole editing pipeline from the
// plugin: decompose to primitives, raise back, edit to MLA, report the cache.
// CHECK: KV cache at context 64, f32
// CHECK-NEXT: layer kind
// CHECK-NEXT: 0 mla 16 - 64 4096
// CHECK-LABEL: func.func @attention
// CHECK: attnedit.mla
// CHECK-NOT: attnedit.softmax
func.func @attention(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %w: tensor<32x32xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%w, %w, %w, %w) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}
