// RUN: not attnedit-opt %s --attnedit-edit-attention="target=gqa" 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=mla layers=3" 2>&1 | FileCheck %s --check-prefix=LAYER
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=mla layers=0,0" 2>&1 | FileCheck %s --check-prefix=TWICE
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=mla init=svd" 2>&1 | FileCheck %s --check-prefix=SVD
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=mla init=rorope params-out=%t.safetensors" 2>&1 | FileCheck %s --check-prefix=RORO
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=mla init=pca" 2>&1 | FileCheck %s --check-prefix=INIT
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=mla qk-rope-head-dim=7 init=random" 2>&1 | FileCheck %s --check-prefix=ROPE
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=mla kv-lora-rank=8 qk-rope-head-dim=8 rope-stride=3 init=random" 2>&1 | FileCheck %s --check-prefix=STRIDE
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=gate-swa window=0" 2>&1 | FileCheck %s --check-prefix=WINDOW
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=mla qk-nope-head-dim=0 init=random" 2>&1 | FileCheck %s --check-prefix=NOPE
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=mla kv-lora-rank=0 init=random" 2>&1 | FileCheck %s --check-prefix=RANK
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=gate-swa window=4 full-every=-1" 2>&1 | FileCheck %s --check-prefix=EVERY
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=gate-swa gate=sometimes" 2>&1 | FileCheck %s --check-prefix=GATE
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=gate-swa kv-lora-rank=7" 2>&1 | FileCheck %s --check-prefix=OTHER-MLA
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=mla init=random full-layers=0" 2>&1 | FileCheck %s --check-prefix=OTHER-SWA
// RUN: not attnedit-opt %s --attnedit-convert="target=mla init=random window=8" 2>&1 | FileCheck %s --check-prefix=OTHER-CONVERT
// Options that another makes meaningless were ignored without a word.
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=gate-swa sink-logits=s.json" 2>&1 | FileCheck %s --check-prefix=SINKS
// RUN: not attnedit-opt %s --attnedit-edit-attention="target=gate-swa layers=0 full-layers=1" 2>&1 | FileCheck %s --check-prefix=FULL-OUTSIDE
// A printed pipeline names every option at its default: that still runs.
// RUN: attnedit-opt %s --attnedit-edit-attention="target=mla init=random kv-lora-rank=8 qk-rope-head-dim=8 window=128 gate=headwise sinks=false" | FileCheck %s --check-prefix=DEFAULTS

// Tests that out-of-range options are rejected with a message naming them.
// TARGET: error: attnedit-edit-attention: target must be mla or gate-swa, got 'gqa'
// NOPE: error: attnedit-edit-attention: qk-nope-head-dim=0: needs at least 1 (-1: the teacher's head_dim)
// SINKS: error: attnedit-edit-attention: sink-logits= sets the sinks' start, but there are sinks only with sinks=true
// FULL-OUTSIDE: error: attnedit-edit-attention: full-layers entry 1 is not among layers=, which leaves it the teacher's attention
// LAYER: error: attnedit-edit-attention: layers entry 3 is out of range: the module has 1 attention layers
// TWICE: error: attnedit-edit-attention: layers names layer 0 twice
// SVD: error: attnedit-edit-attention: init=svd computes weights: give params-out=FILE.safetensors
// RORO: error: attnedit-edit-attention: init=rorope measures keys and values on calibration data: give activations=FILE (attnedit-run calibrate-activations)
// INIT: error: attnedit-edit-attention: init must be svd, random or rorope, got 'pca'
// ROPE: error: attnedit-edit-attention: qk-rope-head-dim=7: needs an even number, at least 2
// STRIDE: error: attnedit-edit-attention: rope-stride=3 with qk-rope-head-dim=8 reaches past the teacher's 8 RoPE pairs (layer 0)
// WINDOW: error: attnedit-edit-attention: window=0: needs [1, 16777216]
// RANK: error: attnedit-edit-attention: kv-lora-rank=0: needs at least 1
// EVERY: error: attnedit-edit-attention: full-every=-1: needs [0, 4096]
// GATE: error: attnedit-edit-attention: gate must be headwise, elementwise or none, got 'sometimes'
// OTHER-MLA: error: attnedit-edit-attention: kv-lora-rank is not an option of target=gate-swa
// OTHER-SWA: error: attnedit-edit-attention: full-layers is not an option of target=mla
// OTHER-CONVERT: error: attnedit-convert: window is not an option of target=mla
// DEFAULTS: attnedit.mla
func.func @one_layer(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %w: tensor<32x32xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%w, %w, %w, %w) {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}
