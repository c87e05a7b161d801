// RUN: attnedit-opt %s --split-input-file --verify-diagnostics

// Tests that a parameter must have a static shape.
func.func @param_dynamic() {
  // expected-error @+1 {{parameter 'w' must have a static shape}}
  %w = attnedit.param "w" : tensor<?x8xf32>
  return
}

// -----

// Tests that linear checks the weight's input features ([out, in] layout).
func.func @linear_features(%x: tensor<?x8xf32>, %w: tensor<4x6xf32>) {
  // expected-error @+1 {{do not match weight [4, 6] (weight is [out, in])}}
  %0 = attnedit.linear %x, %w : (tensor<?x8xf32>, tensor<4x6xf32>) -> tensor<?x4xf32>
  return
}

// -----

// Tests that linear checks its bias length.
func.func @linear_bias(%x: tensor<?x8xf32>, %w: tensor<4x8xf32>, %b: tensor<5xf32>) {
  // expected-error @+1 {{bias has shape [5], expected [4]}}
  %0 = attnedit.linear %x, %w, %b : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<5xf32>) -> tensor<?x4xf32>
  return
}

// -----

// Tests that rms_norm rejects a non-positive epsilon.
func.func @rms_eps(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{eps must be positive}}
  %0 = attnedit.rms_norm %x, %w {eps = 0.0 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that rope rejects an odd or oversized rotary dimension.
func.func @rope_dim(%x: tensor<?x2x4xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{rotary_dim 6 must be even and in (0, 4]}}
  %0 = attnedit.rope %x, %p {theta = 10000.0 : f64, rotary_dim = 6 : i64, style = #attnedit<rope_style interleaved>} : (tensor<?x2x4xf32>, tensor<?xi32>) -> tensor<?x2x4xf32>
  return
}

// -----

// Tests that rope needs one position per token.
func.func @rope_positions(%x: tensor<3x2x4xf32>, %p: tensor<4xi32>) {
  // expected-error @+1 {{positions [4] do not match input tokens [3, 2, 4]}}
  %0 = attnedit.rope %x, %p {theta = 10000.0 : f64, rotary_dim = 4 : i64, style = #attnedit<rope_style interleaved>} : (tensor<3x2x4xf32>, tensor<4xi32>) -> tensor<3x2x4xf32>
  return
}

// -----

// Tests that matmul checks the contraction dimension.
func.func @matmul_contraction(%a: tensor<2x3x4xf32>, %b: tensor<2x5x6xf32>) {
  // expected-error @+1 {{contraction dimensions differ}}
  %0 = attnedit.matmul %a, %b : (tensor<2x3x4xf32>, tensor<2x5x6xf32>) -> tensor<2x3x6xf32>
  return
}

// -----

// Tests that softmax checks its axis.
func.func @softmax_axis(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{axis 2 out of range for rank 2}}
  %0 = attnedit.softmax %a {axis = 2 : i64} : tensor<2x3xf32>
  return
}

// -----

// Tests that a causal mask cannot have more queries than keys.
func.func @mask_queries(%a: tensor<2x5x3xf32>) {
  // expected-error @+1 {{more queries (5) than keys (3)}}
  %0 = attnedit.causal_mask %a : tensor<2x5x3xf32>
  return
}

// -----

// Tests that packed sequences are whole: as many queries as keys, split evenly.
func.func @mask_segments(%a: tensor<2x6x6xf32>) {
  // expected-error @+1 {{4 segments need as many queries as keys, a multiple of 4 (got 6 x 6)}}
  %0 = attnedit.causal_mask %a {segments = 4 : i64} : tensor<2x6x6xf32>
  return
}

// -----

// Tests that a mask holds at least one sequence.
func.func @mask_no_segments(%a: tensor<2x6x6xf32>) {
  // expected-error @+1 {{segments must be >= 1}}
  %0 = attnedit.causal_mask %a {segments = 0 : i64} : tensor<2x6x6xf32>
  return
}

// -----

// Tests that repeat_kv's result has heads x repeats heads.
func.func @repeat_heads(%a: tensor<2x?x4xf32>) {
  // expected-error @+1 {{result has shape [3, ?, 4], expected [4, ?, 4]}}
  %0 = attnedit.repeat_kv %a {repeats = 2 : i64} : (tensor<2x?x4xf32>) -> tensor<3x?x4xf32>
  return
}

// -----

// Tests that reshape keeps the element count.
func.func @reshape_count(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{cannot reshape [2, 3] (6 elements) to [4, 2] (8 elements)}}
  %0 = attnedit.reshape %a : (tensor<2x3xf32>) -> tensor<4x2xf32>
  return
}

// -----

// Tests that a reshape whose element count overflows int64 says so (the
// count wrapped to 0 and was printed as "(0 elements)").
func.func @reshape_count_overflow(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{the element count of [4294967296, 4294967296] overflows int64}}
  %0 = attnedit.reshape %a : (tensor<2x3xf32>) -> tensor<4294967296x4294967296xf32>
  return
}

// -----

// Tests that transpose needs a permutation.
func.func @transpose_perm(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{permutation is not a permutation of the axes}}
  %0 = attnedit.transpose %a {permutation = array<i64: 0, 0>} : (tensor<2x3xf32>) -> tensor<2x2xf32>
  return
}

// -----

// Tests that slice stays inside its axis.
func.func @slice_bounds(%a: tensor<2x3xf32>) {
  // expected-error @+1 {{slice [2, 4) exceeds dimension 3}}
  %0 = attnedit.slice %a {axis = 1 : i64, offset = 2 : i64, size = 2 : i64} : (tensor<2x3xf32>) -> tensor<2x2xf32>
  return
}

// -----

// Tests that embedding tables are [V, D].
func.func @embedding_rank(%t: tensor<4xf32>, %ids: tensor<?xi32>) {
  // expected-error @+1 {{table must have rank 2, got 1}}
  %0 = attnedit.embedding %t[%ids] : (tensor<4xf32>, tensor<?xi32>) -> tensor<?x4xf32>
  return
}

// -----

// Tests that the elementwise ops reject mixed types.
func.func @add_types(%a: tensor<2x3xf32>, %b: tensor<3x2xf32>) {
  // expected-error @+1 {{requires the same type for all operands and results}}
  %0 = "attnedit.add"(%a, %b) : (tensor<2x3xf32>, tensor<3x2xf32>) -> tensor<2x3xf32>
  return
}

// -----

// Tests that activations must be f32.
func.func @silu_type(%a: tensor<2x3xbf16>) {
  // expected-error @+1 {{must be ranked tensor of 32-bit float values}}
  %0 = attnedit.silu %a : tensor<2x3xbf16>
  return
}

// -----

// Tests that attention heads must group evenly.
func.func @attention_groups(%x: tensor<?x64xf32>, %p: tensor<?xi32>, %wq: tensor<48x64xf32>, %wk: tensor<32x64xf32>, %wo: tensor<64x48xf32>) {
  // expected-error @+1 {{num_heads (3) must be a positive multiple of num_kv_heads (2)}}
  %0 = attnedit.attention %x, %p weights(%wq, %wk, %wk, %wo) {num_heads = 3 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<48x64xf32>, tensor<32x64xf32>, tensor<32x64xf32>, tensor<64x48xf32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that attention checks the key projection against its heads.
func.func @attention_k(%x: tensor<?x64xf32>, %p: tensor<?xi32>, %wq: tensor<64x64xf32>, %wk: tensor<16x64xf32>, %wo: tensor<64x64xf32>) {
  // expected-error @+1 {{k_weight has shape [16, 64], expected [32, 64]}}
  %0 = attnedit.attention %x, %p weights(%wq, %wk, %wk, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<16x64xf32>, tensor<16x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that qk_norm holds exactly two weights.
func.func @attention_norms(%x: tensor<?x64xf32>, %p: tensor<?xi32>, %w: tensor<64x64xf32>, %n: tensor<16xf32>) {
  // expected-error @+1 {{qk_norm holds either no norm or exactly two (q, k)}}
  %0 = attnedit.attention %x, %p weights(%w, %w, %w, %w) qk_norm(%n) {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<16xf32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests that the module attributes naming weight files have the kinds the
// passes and the runtime read them as (another kind crashed the edit).
// expected-error @+1 {{'attnedit.parameter_scopes' must be a dictionary {scope = [file paths]}}}
module attributes {attnedit.parameter_scopes = 1} {
}

// -----

// expected-error @+1 {{'attnedit.parameter_files' must be an array of file paths (strings)}}
module attributes {attnedit.parameter_files = ["w.safetensors", 3]} {
}

// -----

// Tests that the attributes a run reads have their kinds: another kind was
// read as absent (no context limit, no stop token, no tokenizer).
// expected-error @+1 {{'attnedit.max_positions' must be an integer in [1, 16777216] (the model's context in tokens)}}
module attributes {attnedit.max_positions = 0 : i64} {
}

// -----

// expected-error @+1 {{'attnedit.max_positions' must be an integer in [1, 16777216]}}
module attributes {attnedit.max_positions = "x"} {
}

// -----

// expected-error @+1 {{'attnedit.stop_token_ids' must be an array<i32: ...> of non-negative token ids}}
module attributes {attnedit.stop_token_ids = "x"} {
}

// -----

// expected-error @+1 {{'attnedit.bos_token_id' must be a non-negative integer (a token id)}}
module attributes {attnedit.bos_token_id = -1 : i32} {
}

// -----

// expected-error @+1 {{'attnedit.sampling_defaults': top_p must be in (0, 1]}}
module attributes {attnedit.sampling_defaults = {top_p = 2.0 : f64}} {
}

// -----

// expected-error @+1 {{'attnedit.sampling_defaults': top_k must be an integer}}
module attributes {attnedit.sampling_defaults = {top_k = 2.0 : f64}} {
}

// -----

// expected-error @+1 {{'attnedit.sampling_defaults': max_new_tokens must be in [1,}}
module attributes {attnedit.sampling_defaults = {max_new_tokens = 0 : i64}} {
}

// -----

// expected-error @+1 {{'attnedit.sampling_defaults': max_new_tokens must be an integer}}
module attributes {attnedit.sampling_defaults = {max_new_tokens = 8.0 : f64}} {
}

// -----

// expected-error @+1 {{'attnedit.sampling_defaults': do_sample must be true or false}}
module attributes {attnedit.sampling_defaults = {do_sample = 1 : i64}} {
}

// -----

// expected-error @+1 {{'attnedit.sampling_defaults': beams is not a sampling setting attnedit applies}}
module attributes {attnedit.sampling_defaults = {beams = 4 : i64}} {
}

// -----

// expected-error @+1 {{'attnedit.tokenizer' must be a string}}
module attributes {attnedit.tokenizer = 5 : i64} {
}

// -----

// Tests that a window is bounded as the edit bounds it: decoding sizes its
// cache by it (2^40 aborted in the allocator).
func.func @window_bound(%a: tensor<2x6x6xf32>) -> tensor<2x6x6xf32> {
  // expected-error @+1 {{window must be in [0, 16777216]}}
  %0 = attnedit.causal_mask %a {window = 1099511627776 : i64} : tensor<2x6x6xf32>
  return %0 : tensor<2x6x6xf32>
}

// -----

// Tests that loss_grad names its loss by the dialect's enum: an unknown one
// is a parse error, not a runtime failure of whichever executor meets it.
func.func @unknown_loss(%a: tensor<?x8xf32>, %g: tensor<f32>) -> tensor<?x8xf32> {
  // expected-error @+2 {{expected ::mlir::attnedit::LossKind to be one of: mse, kl, cross_entropy, cosine}}
  // expected-error @+1 {{failed to parse AttnEdit_LossKindAttr parameter 'value'}}
  %0 = attnedit.loss_grad %a, %a, %g {kind = #attnedit<loss_kind huber>, operand = 0 : i64} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<f32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

// Tests that a loss needs [rows..., width]: the CPU lowering views its
// operands as rows and crashed on a rank-0 tensor.
func.func @mse_rank0(%x: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{input must have rank >= 1, got 0}}
  %0 = attnedit.mse_loss %x, %x : tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @kl_rank0(%x: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{teacher must have rank >= 1, got 0}}
  %0 = attnedit.kl_loss %x, %x : tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @cosine_rank0(%x: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{lhs must have rank >= 1, got 0}}
  %0 = attnedit.cosine_loss %x, %x : tensor<f32>
  return %0 : tensor<f32>
}

// -----

// Tests that heads x head_dim is not computed modulo 2^64: the wrapped
// product (16) matched 64 x 64 weights.
func.func @attention_overflow(%x: tensor<?x64xf32>, %p: tensor<?xi32>, %w: tensor<64x64xf32>) {
  // expected-error @+1 {{num_heads (4611686018427387920) x head_dim (4) overflows int64}}
  %0 = attnedit.attention %x, %p weights(%w, %w, %w, %w) {num_heads = 4611686018427387920 : i64, num_kv_heads = 4611686018427387920 : i64, head_dim = 4 : i64, scale = 0.35 : f64, rope_theta = 1.0e4 : f64, rotary_dim = 4 : i64, rope_style = #attnedit<rope_style interleaved>} : (tensor<?x64xf32>, tensor<?xi32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
  return
}

// -----

// Tests the same of MLA's projection sizes (num_heads x 4 wraps to 16).
func.func @mla_overflow(%x: tensor<5x32xf32>, %pos: tensor<5xi32>, %q: tensor<16x32xf32>, %kva: tensor<16x32xf32>, %kvn: tensor<12xf32>, %kvb: tensor<16x12xf32>, %o: tensor<32x16xf32>) {
  // expected-error @+1 {{projection sizes overflow int64 (num_heads 4611686018427387908, qk_nope_head_dim 0, qk_rope_head_dim 4, v_head_dim 4, kv_lora_rank 12)}}
  %0 = attnedit.mla %x, %pos q(%q) kv(%kva, %kvn, %kvb) out(%o) {num_heads = 4611686018427387908 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 12 : i64, qk_nope_head_dim = 0 : i64, qk_rope_head_dim = 4 : i64, v_head_dim = 4 : i64, scale = 0.3 : f64, rope_theta = 10000.0 : f64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<5x32xf32>, tensor<5xi32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<12xf32>, tensor<16x12xf32>, tensor<32x16xf32>) -> tensor<5x32xf32>
  return
}

// -----

// Tests that offset + size does not wrap past the bound check (compiled code
// read out of bounds).
func.func @slice_overflow(%a: tensor<4x8xf32>) {
  // expected-error @+1 {{slice offset 9223372036854775807 + size 2 overflows int64}}
  %0 = attnedit.slice %a {axis = 1 : i64, offset = 9223372036854775807 : i64, size = 2 : i64} : (tensor<4x8xf32>) -> tensor<4x2xf32>
  return
}

// -----

// Tests that the padded size does not wrap (4x8 padded by 2^64 - 2 gave 4x6).
func.func @pad_overflow(%a: tensor<4x8xf32>) {
  // expected-error @+1 {{padding dimension [4, 8][1] by before 9223372036854775807, after 9223372036854775807 overflows int64}}
  %0 = attnedit.pad %a {axis = 1 : i64, before = 9223372036854775807 : i64, after = 9223372036854775807 : i64} : (tensor<4x8xf32>) -> tensor<4x6xf32>
  return
}

// -----

// Tests that softmax_grad checks its axis as softmax does.
func.func @softmax_grad_axis(%a: tensor<4x8xf32>) {
  // expected-error @+1 {{axis 5 out of range for rank 2}}
  %0 = attnedit.softmax_grad %a, %a {axis = 5 : i64} : tensor<4x8xf32>
  return
}

// -----

// Tests that sink_grad gives one gradient per head of [H, Tq, Tk].
func.func @sink_grad_shape(%a: tensor<2x4x4xf32>) {
  // expected-error @+1 {{result has shape [7], expected [2]}}
  %0 = attnedit.sink_grad %a, %a : (tensor<2x4x4xf32>, tensor<2x4x4xf32>) -> tensor<7xf32>
  return
}

// -----

func.func @sink_grad_rank(%a: tensor<4x8xf32>) {
  // expected-error @+1 {{output must have rank 3, got 2}}
  %0 = attnedit.sink_grad %a, %a : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4xf32>
  return
}

// -----

// Tests that rms_norm_grad checks its weight and eps as rms_norm does.
func.func @rms_grad_weight(%x: tensor<4x8xf32>, %w: tensor<3xf32>) {
  // expected-error @+1 {{weight has shape [3], expected [8]}}
  %0 = attnedit.rms_norm_grad %x, %w, %x {eps = 1.0e-5 : f64} : (tensor<4x8xf32>, tensor<3xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

func.func @rms_grad_eps(%x: tensor<4x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{eps must be positive}}
  %0 = attnedit.rms_norm_grad %x, %w, %x {eps = -1.0 : f64} : (tensor<4x8xf32>, tensor<8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  return
}

// -----

// Tests that rms_norm_weight_grad gives one gradient per weight.
func.func @rms_weight_grad_shape(%x: tensor<4x8xf32>) {
  // expected-error @+1 {{result has shape [99], expected [8]}}
  %0 = attnedit.rms_norm_weight_grad %x, %x {eps = 1.0e-5 : f64} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<99xf32>
  return
}

// -----

// Tests that loss_grad's operand names a differentiated input of its loss.
func.func @loss_grad_operand(%x: tensor<4x8xf32>, %g: tensor<f32>) {
  // expected-error @+1 {{operand 7 has no gradient: mse loss differentiates operands 0 and 1 only}}
  %0 = attnedit.loss_grad %x, %x, %g {kind = #attnedit<loss_kind mse>, operand = 7 : i64} : (tensor<4x8xf32>, tensor<4x8xf32>, tensor<f32>) -> tensor<1x2xf32>
  return
}

// -----

// Tests that cross_entropy's loss_grad takes the loss's own i32 targets.
func.func @loss_grad_targets(%x: tensor<4x8xf32>, %t: tensor<9xi64>, %g: tensor<f32>) {
  // expected-error @+1 {{targets must be a 1-D tensor of i32, got 'tensor<9xi64>'}}
  %0 = attnedit.loss_grad %x, %t, %g {kind = #attnedit<loss_kind cross_entropy>, operand = 0 : i64} : (tensor<4x8xf32>, tensor<9xi64>, tensor<f32>) -> tensor<4x8xf32>
  return
}

// -----

// Tests that the static dims of a reshape with a dynamic one divide the
// element count (the lowering's division truncated 32 / 3).
func.func @reshape_divides(%a: tensor<4x8xf32>) {
  // expected-error @+1 {{cannot reshape [4, 8] (32 elements) to [?, 3]: 3 does not divide the element count}}
  %0 = attnedit.reshape %a : (tensor<4x8xf32>) -> tensor<?x3xf32>
  return
}

// -----

// Tests that linear's input is [..., K] with rows: the lowering's GEMM
// emitted an invalid linalg.generic for a vector.
func.func @linear_vector(%x: tensor<8xf32>, %w: tensor<4x8xf32>) {
  // expected-error @+1 {{input must have rank >= 2 ([..., K]), got 1}}
  %0 = attnedit.linear %x, %w : (tensor<8xf32>, tensor<4x8xf32>) -> tensor<4xf32>
  return
}

// -----

// Tests that float attributes are finite: a NaN passed the verifiers'
// comparisons, and the backends read it differently (NaN on one, 0 on the other).
func.func @nan_eps(%x: tensor<?x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{attribute 'eps' must be finite, not NaN or infinite}}
  %0 = attnedit.rms_norm %x, %w {eps = 0x7FF8000000000000 : f64} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  return
}

// -----

func.func @inf_scale(%x: tensor<?x8xf32>) {
  // expected-error @+1 {{attribute 'factor' must be finite, not NaN or infinite}}
  %0 = attnedit.scale %x {factor = 0x7FF0000000000000 : f64} : tensor<?x8xf32>
  return
}

// -----

// Tests that Llama 3's RoPE scaling divides by nothing zero: a low and high
// frequency factor alike gave NaN on both backends.
func.func @llama3_equal_factors(%x: tensor<?x2x8xf32>, %p: tensor<?xi32>) {
  // expected-error @+1 {{llama3_scaling must hold [factor, low_freq_factor, high_freq_factor, original_max_position_embeddings], all positive, high_freq_factor above low_freq_factor}}
  %0 = attnedit.rope %x, %p {theta = 10000.0 : f64, rotary_dim = 8 : i64, style = #attnedit<rope_style interleaved>, llama3_scaling = array<f64: 8.0, 4.0, 4.0, 16.0>} : (tensor<?x2x8xf32>, tensor<?xi32>) -> tensor<?x2x8xf32>
  return
}

// -----

// Tests that repeat_kv's repeats are bounded: 2^62 wrapped the result's
// head count, and the reference interpreter crashed.
func.func @repeat_kv_huge(%x: tensor<?x8x8xf32>) {
  // expected-error @+1 {{repeats must be in [1, 16777216]}}
  %0 = attnedit.repeat_kv %x {repeats = 4611686018427387904 : i64} : (tensor<?x8x8xf32>) -> tensor<?x?x8xf32>
  return
}

// -----

// Tests that broadcast stretches a 1 only to a stated size: the reference
// made [1, 8] -> [?, 8] one row and the CPU lowering failed without a word.
func.func @broadcast_to_dynamic(%x: tensor<1x8xf32>) {
  // expected-error @+1 {{cannot broadcast [1, 8] to [?, 8]: a dynamic result size needs a dynamic input size}}
  %0 = attnedit.broadcast %x : (tensor<1x8xf32>) -> tensor<?x8xf32>
  return
}

// -----

// Tests that a broadcast or a pad whose result's element count overflows
// int64 is refused: the wrapped count sized buffers small, and both
// backends segfaulted.
func.func @broadcast_overflows(%x: tensor<40x1x32xf32>) {
  // expected-error @+1 {{the element count of [40, 2305843009213693952, 32] overflows int64}}
  %0 = attnedit.broadcast %x : (tensor<40x1x32xf32>) -> tensor<40x2305843009213693952x32xf32>
  return
}

// -----

func.func @pad_overflows(%x: tensor<40x1x32xf32>) {
  // expected-error @+1 {{the element count of [40, 2305843009213693952, 32] overflows int64}}
  %0 = attnedit.pad %x {axis = 1 : i64, before = 0 : i64, after = 2305843009213693951 : i64} : (tensor<40x1x32xf32>) -> tensor<40x2305843009213693952x32xf32>
  return
}
