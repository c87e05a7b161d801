// RUN: attnedit-opt %s --split-input-file --attnedit-edit-attention="target=mla kv-lora-rank=12 qk-rope-head-dim=8 init=random" | FileCheck %s --check-prefix=MLA
// RUN: attnedit-opt %s --split-input-file --attnedit-edit-attention="target=mla kv-lora-rank=12 q-lora-rank=10 qk-rope-head-dim=4 qk-nope-head-dim=6 v-head-dim=5 init=random layers=1" | FileCheck %s --check-prefix=LORA
// RUN: attnedit-opt %s --split-input-file --attnedit-edit-attention="target=gate-swa window=8 full-every=2 gate=headwise sinks=true" | FileCheck %s --check-prefix=SWA
// RUN: attnedit-opt %s --split-input-file --attnedit-edit-attention="target=gate-swa window=8 full-layers=0 gate=elementwise" | FileCheck %s --check-prefix=ELEM
// RUN: attnedit-opt %s --split-input-file --attnedit-edit-attention="target=mla kv-lora-rank=12 qk-rope-head-dim=4 rope-stride=1 init=random" | FileCheck %s --check-prefix=STRIDE

// Tests the IR side of attention editing (no params-out: parameters are
// declared in the "student" scope with DeepSeek / gate names, no file).
// MLA-LABEL: func.func @two_layers
// MLA: attnedit.param "model.layers.0.self_attn.q_proj.weight" in "student" trainable : tensor<96x32xf32>
// MLA: attnedit.param "model.layers.0.self_attn.kv_a_proj_with_mqa.weight" in "student" trainable : tensor<20x32xf32>
// MLA: attnedit.param "model.layers.0.self_attn.kv_a_layernorm.weight" in "student" trainable : tensor<12xf32>
// MLA: attnedit.param "model.layers.0.self_attn.kv_b_proj.weight" in "student" trainable : tensor<128x12xf32>
// MLA: attnedit.param "model.layers.0.self_attn.o_proj.weight" in "student" trainable : tensor<32x64xf32>
// MLA: attnedit.mla %arg0, %arg1 q(%{{.*}}) kv(%{{.*}}, %{{.*}}, %{{.*}}) out(%{{.*}}) {kv_lora_rank = 12 : i64, {{.*}}num_heads = 4 : i64, q_lora_rank = 0 : i64, qk_nope_head_dim = 16 : i64, qk_rope_head_dim = 8 : i64, rope_style = #attnedit<rope_style interleaved>, rope_theta = 1.000000e+04 : f64, scale = 0.20412414523193154 : f64, v_head_dim = 16 : i64}
// MLA: attnedit.param "model.layers.1.self_attn.kv_b_proj.weight"
// rope-stride=1 keeps the teacher's 2 highest of 8 RoPE frequencies: the
// student's theta is 10000^(1·4/16).
// STRIDE-LABEL: func.func @two_layers
// STRIDE: attnedit.mla {{.*}}qk_rope_head_dim = 4 : i64, {{.*}}rope_theta = 1.000000e+01 : f64
// MLA: attnedit.mla
// MLA-NOT: attnedit.attention
// MLA-NOT: attnedit.parameter_scopes

// LORA: attnedit.attention
// LORA: attnedit.param "model.layers.1.self_attn.q_a_proj.weight" in "student" trainable : tensor<10x32xf32>
// LORA: attnedit.param "model.layers.1.self_attn.q_a_layernorm.weight" in "student" trainable : tensor<10xf32>
// LORA: attnedit.param "model.layers.1.self_attn.q_b_proj.weight" in "student" trainable : tensor<40x10xf32>
// LORA: attnedit.param "model.layers.1.self_attn.kv_a_proj_with_mqa.weight" in "student" trainable : tensor<16x32xf32>
// LORA: attnedit.param "model.layers.1.self_attn.kv_b_proj.weight" in "student" trainable : tensor<44x12xf32>
// LORA: attnedit.param "model.layers.1.self_attn.o_proj.weight" in "student" trainable : tensor<32x20xf32>
// LORA: attnedit.mla {{.*}} q_lora(

// Layer 0 slides (window 8, sinks), layer 1 = full-every 2 stays full (no sinks).
// SWA: attnedit.param "model.layers.0.self_attn.gate_proj.weight" in "student" trainable : tensor<4x32xf32>
// SWA: attnedit.param "model.layers.0.self_attn.sinks" in "student" trainable : tensor<4xf32>
// SWA: attnedit.gate_swa {{.*}} gate(%{{.*}}) sinks(%{{.*}}) {gate = #attnedit<gate_kind headwise>, {{.*}}window = 8 : i64}
// SWA-NOT: sinks"
// SWA: attnedit.gate_swa {{.*}} gate(%{{.*}}) {gate = #attnedit<gate_kind headwise>, {{.*}}window = 0 : i64}

// ELEM: attnedit.param "model.layers.0.self_attn.gate_proj.weight" in "student" trainable : tensor<64x32xf32>
// ELEM: attnedit.gate_swa {{.*}}window = 0 : i64}
// ELEM: attnedit.gate_swa {{.*}}window = 8 : i64}
func.func @two_layers(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %wq: tensor<64x32xf32>, %wkv: tensor<32x32xf32>, %wo: tensor<32x64xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wkv, %wkv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style interleaved>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<64x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %1 = attnedit.attention %0, %pos weights(%wq, %wkv, %wkv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style interleaved>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<64x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %1 : tensor<?x32xf32>
}
