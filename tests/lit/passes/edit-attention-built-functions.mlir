// RUN: attnedit-opt %s --split-input-file --verify-diagnostics --attnedit-edit-attention="target=gate-swa window=2" -o /dev/null

// Tests that an edit refuses a module whose other functions were built from
// the attention it replaces: the KV-cache steps kept decoding the teacher
// (greedy ids differed from @forward's after 2 tokens), a gradient function
// kept the old attention's gradient.

func.func @forward(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %w: tensor<32x32xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%w, %w, %w, %w) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}

// expected-error @+1 {{attnedit-edit-attention: @decode was built by --attnedit-build-decode from the attention this edit replaces, and would keep it: edit first, then build it}}
func.func @decode(%ids: tensor<?xi32>, %pos: tensor<?xi32>, %table: tensor<?x?xi32> {attnedit.block_table}) {
  return
}

// -----

func.func @loss(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %w: tensor<32x32xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%w, %w, %w, %w) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}

// expected-error @+1 {{attnedit-edit-attention: @loss_grad was built by --attnedit-autodiff from the attention this edit replaces}}
func.func @loss_grad() attributes {attnedit.gradients = ["w"]} {
  return
}
