// RUN: attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-edit-attention="target=mla kv-lora-rank=8 qk-rope-head-dim=8 init=random layers=1" | attnedit-opt --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=layerwise" --attnedit-autodiff=func=train_step | FileCheck %s --check-prefix=LAYER
// RUN: attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-edit-attention="target=gate-swa window=4" | attnedit-opt --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=model temperature=2.0 feature-layers=1 feature-weight=0.1" --attnedit-autodiff=func=train_step | FileCheck %s --check-prefix=MODEL
// RUN: attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="stage=lm" --attnedit-autodiff=func=train_step | FileCheck %s --check-prefix=LM
// Autodiff's default func=loss on a distillation module names what it has.
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="stage=lm" --attnedit-autodiff 2>&1 | FileCheck %s --check-prefix=NOLOSS
// NOLOSS: error: attnedit-autodiff: no function @loss (the func= option); functions returning a scalar here: @train_step
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=layerwise" 2>&1 | FileCheck %s --check-prefix=UNEDITED
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="stage=model" 2>&1 | FileCheck %s --check-prefix=NOTEACHER
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=model feature-layers=7 feature-weight=0.1" 2>&1 | FileCheck %s --check-prefix=RANGE
// Options of stage model set on another stage were ignored without a word.
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=layerwise train=all" 2>&1 | FileCheck %s --check-prefix=IGNORED
// IGNORED: error: attnedit-build-distill: train= does not apply to stage=layerwise
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=lm" 2>&1 | FileCheck %s --check-prefix=LMTEACHER
// LMTEACHER: error: attnedit-build-distill: teacher= does not apply to stage=lm
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=model feature-layers=1" 2>&1 | FileCheck %s --check-prefix=NOWEIGHT
// NOWEIGHT: error: attnedit-build-distill: feature-layers= needs feature-weight > 0, or the feature loss weighs 0
// A weight without layers weighed nothing; an infinite temperature failed the
// verifier on a kl_loss the user never wrote, and 1e-320 gave a NaN loss.
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=model feature-weight=0.5" 2>&1 | FileCheck %s --check-prefix=NOLAYERS
// NOLAYERS: error: attnedit-build-distill: feature-weight= needs feature-layers=, the layers whose hidden states the feature loss compares (it compares none)
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=model temperature=inf" 2>&1 | FileCheck %s --check-prefix=TEMPERATURE
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=model temperature=1e-320" 2>&1 | FileCheck %s --check-prefix=TEMPERATURE
// TEMPERATURE: error: attnedit-build-distill: needs temperature in [0.001, 100] and feature-weight in [0, 1000]
// RUN: attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-edit-attention="target=mla kv-lora-rank=8 qk-rope-head-dim=8 init=random" | attnedit-opt --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=layerwise layers=0" --attnedit-autodiff=func=train_step | FileCheck %s --check-prefix=SHARD
// RUN: attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-edit-attention="target=mla kv-lora-rank=8 qk-rope-head-dim=8 init=random layers=1" | not attnedit-opt --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=layerwise layers=0" 2>&1 | FileCheck %s --check-prefix=NOTEDITED
// RUN: not attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=model layers=0" 2>&1 | FileCheck %s --check-prefix=SHARDMODEL
// RUN: attnedit-opt %S/Inputs/distill-teacher.mlir --attnedit-edit-attention="target=mla kv-lora-rank=8 qk-rope-head-dim=8 init=random layers=1" | attnedit-opt --attnedit-build-distill="teacher=%S/Inputs/distill-teacher.mlir stage=model train=all" | FileCheck %s --check-prefix=ALL

// Tests the distillation graphs. Layerwise: only edited layer 1's MLA is fed
// the teacher's own normalised hidden state and matched by MSE to the
// teacher's attention output; its gradients are the only ones (the teacher is
// frozen). Model: KL at temperature 2 plus 0.1 x cosine of layer 1's inputs.
// LAYER-LABEL: func.func @train_step(
// LAYER: attnedit.attention
// LAYER: %[[H:.*]] = attnedit.rms_norm %{{.*}}, %{{.*}} {eps = 1.000000e-05 : f64}
// LAYER: %[[T:.*]] = attnedit.attention %[[H]]
// LAYER: %[[S:.*]] = attnedit.mla %[[H]], %arg1
// LAYER: %[[L:.*]] = attnedit.mse_loss %[[S]], %[[T]] : tensor<?x32xf32>
// LAYER: %[[M:.*]] = attnedit.scale %[[L]] {factor = 1.000000e+00 : f64} : tensor<f32>
// LAYER: return %[[M]] : tensor<f32>
// LAYER-LABEL: func.func @train_step_grad(
// LAYER-SAME: attnedit.gradients = ["student::model.layers.1.self_attn.q_proj.weight", "student::model.layers.1.self_attn.kv_a_proj_with_mqa.weight", "student::model.layers.1.self_attn.kv_a_layernorm.weight", "student::model.layers.1.self_attn.kv_b_proj.weight", "student::model.layers.1.self_attn.o_proj.weight"]
// LAYER-NOT: attnedit.embedding_grad

// MODEL-LABEL: func.func @train_step(
// MODEL: %[[KL:.*]] = attnedit.kl_loss %{{.*}}, %{{.*}} {temperature = 2.000000e+00 : f64} : tensor<?x40xf32>
// MODEL: %[[COS:.*]] = attnedit.cosine_loss %{{.*}}, %{{.*}} : tensor<?x32xf32>
// MODEL: %[[MEAN:.*]] = attnedit.scale %[[COS]] {factor = 1.000000e+00 : f64}
// MODEL: %[[W:.*]] = attnedit.scale %[[MEAN]] {factor = 1.000000e-01 : f64}
// MODEL: %[[SUM:.*]] = attnedit.add %[[KL]], %[[W]] : tensor<f32>
// MODEL: return %[[SUM]]
// MODEL: attnedit.gradients = ["student::model.layers.0.self_attn.q_proj.weight"

// train=all: the student's copies of the teacher's other weights (the
// embedding, norms, unedited layer 0's attention) train too, marked as
// teacher copies so that a recipe's lr_rest can give them their own rate;
// edited layer 1's MLA parameters are the student's own, unmarked.
// ALL-LABEL: func.func @train_step(
// ALL-DAG: attnedit.param "model.embed_tokens.weight" in "student" trainable {attnedit.teacher_copy} : tensor<40x32xf32>
// ALL-DAG: attnedit.param "model.layers.0.self_attn.q_proj.weight" in "student" trainable {attnedit.teacher_copy}
// ALL-DAG: attnedit.param "model.layers.1.self_attn.kv_b_proj.weight" in "student" trainable : tensor
// ALL-DAG: attnedit.param "model.layers.1.input_layernorm.weight" in "student" trainable {attnedit.teacher_copy}

// LM-LABEL: func.func @train_step(%arg0: tensor<?xi32> {attnedit.name = "tokens"}, %arg1: tensor<?xi32> {attnedit.name = "positions"}, %arg2: tensor<?xi32> {attnedit.name = "targets"}) -> tensor<f32>
// LM: attnedit.param "model.embed_tokens.weight" trainable
// LM: %[[L:.*]] = attnedit.cross_entropy_loss %{{.*}}, %arg2
// LM-NEXT: return %[[L]]
// LM: attnedit.gradients = ["model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.input_layernorm.weight"]

// UNEDITED: error: attnedit-build-distill: the student has no edited attention to distil layer by layer
// NOTEACHER: error: attnedit-build-distill: give the teacher module: teacher=FILE.mlir
// RANGE: error: attnedit-build-distill: feature layer 7 is out of range

// Tests a layer-parallel share: of two edited layers, layers=0 keeps layer
// 0's term only, still divided by 2; the teacher stops after layer 0's
// attention (no second attention, no logits), and only layer 0 has gradients.
// SHARD-LABEL: func.func @train_step(
// SHARD: %[[T:.*]] = attnedit.attention
// SHARD: %[[S:.*]] = attnedit.mla
// SHARD: %[[L:.*]] = attnedit.mse_loss %[[S]], %[[T]]
// SHARD-NOT: attnedit.attention
// SHARD: %[[M:.*]] = attnedit.scale %[[L]] {factor = 5.000000e-01 : f64} : tensor<f32>
// SHARD-NEXT: return %[[M]] : tensor<f32>
// SHARD-LABEL: func.func @train_step_grad(
// SHARD-SAME: attnedit.gradients = ["student::model.layers.0.self_attn.q_proj.weight", "student::model.layers.0.self_attn.kv_a_proj_with_mqa.weight", "student::model.layers.0.self_attn.kv_a_layernorm.weight", "student::model.layers.0.self_attn.kv_b_proj.weight", "student::model.layers.0.self_attn.o_proj.weight"]

// NOTEDITED: error: attnedit-build-distill: layers= names layer 0, which is not an edited attention layer
// SHARDMODEL: error: attnedit-build-distill: layers= selects layers of stage=layerwise only
