module attributes {attnedit.parameter_files = []} {
  func.func @forward(%tokens: tensor<?xi32>, %pos: tensor<?xi32>) -> tensor<?x40xf32> {
    %emb = attnedit.param "model.embed_tokens.weight" : tensor<40x32xf32>
    %x = attnedit.embedding %emb[%tokens] : (tensor<40x32xf32>, tensor<?xi32>) -> tensor<?x32xf32>
    %g0 = attnedit.param "model.layers.0.input_layernorm.weight" : tensor<32xf32>
    %h0 = attnedit.rms_norm %x, %g0 {eps = 1.0e-5 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
    %w0 = attnedit.param "model.layers.0.self_attn.q_proj.weight" : tensor<32x32xf32>
    %a0 = attnedit.attention %h0, %pos weights(%w0, %w0, %w0, %w0) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
    %x1 = attnedit.add %x, %a0 : tensor<?x32xf32>
    %g1 = attnedit.param "model.layers.1.input_layernorm.weight" : tensor<32xf32>
    %h1 = attnedit.rms_norm %x1, %g1 {eps = 1.0e-5 : f64} : (tensor<?x32xf32>, tensor<32xf32>) -> tensor<?x32xf32>
    %a1 = attnedit.attention %h1, %pos weights(%w0, %w0, %w0, %w0) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
    %x2 = attnedit.add %x1, %a1 : tensor<?x32xf32>
    %logits = attnedit.linear %x2, %emb : (tensor<?x32xf32>, tensor<40x32xf32>) -> tensor<?x40xf32>
    return %logits : tensor<?x40xf32>
  }
}
