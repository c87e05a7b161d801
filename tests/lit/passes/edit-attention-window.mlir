// RUN: attnedit-opt %s "--attnedit-edit-attention=target=mla kv-lora-rank=8 qk-rope-head-dim=8 init=random" -o /dev/null 2>&1 | FileCheck %s
// RUN: attnedit-opt %s "--attnedit-edit-attention=target=gate-swa window=8 full-every=0" -o /dev/null 2>&1 | FileCheck %s --check-prefix=WIDER
// RUN: attnedit-opt %s "--attnedit-edit-attention=target=gate-swa window=8 full-every=1" -o /dev/null 2>&1 | FileCheck %s --check-prefix=FULL
// RUN: attnedit-opt %s "--attnedit-edit-attention=target=gate-swa window=4 full-every=0" -o /dev/null 2>&1 | FileCheck %s --allow-empty --check-prefix=SAME

// Tests that editing a sliding-window layer to MLA, which has no window,
// says so: the student then attends past the teacher's window.
// GateSWA too, where its window is wider or the layer stays full; not where
// the student's window is the teacher's.
// WIDER: warning: attnedit-edit-attention: layer 0 attends to a window of 4 tokens; the student's window of 8 tokens sees more, so the student differs from the teacher past 4 tokens
// FULL: warning: attnedit-edit-attention: layer 0 attends to a window of 4 tokens; the student's full attention sees more
// SAME-NOT: warning
// CHECK: warning: attnedit-edit-attention: layer 0 attends to a window of 4 tokens; attnedit.mla has no window and attends to every token, so the student differs from the teacher past the window
func.func @forward(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %w: tensor<32x32xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%w, %w, %w, %w) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>, window = 4 : i64} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}
