// RUN: not attnedit-opt %s --attnedit-autodiff=func=loss 2>&1 | FileCheck %s --check-prefix=REFUSED
// RUN: %python %S/../../fuzz/make_inputs.py %t.inputs && mkdir -p %t.model && cp %t.inputs/seeds/config/llama.json %t.model/config.json
// RUN: attnedit-import %t.model --config-only -o %t.bf16.mlir
// RUN: attnedit-opt %t.bf16.mlir --attnedit-build-distill="stage=lm" --attnedit-autodiff=func=train_step | FileCheck %s --check-prefix=LM

// Tests that a parameter stored as bf16 never gets a silent all-zero
// gradient (issue 9): differentiating a trainable bf16 parameter is refused,
// naming it; build-distill trains a bf16 model's weights as f32 parameters
// (the store widens the stored values), so their gradients are real.
func.func @loss(%x: tensor<4x8xf32>) -> tensor<f32> {
  %w = attnedit.param "w" trainable : tensor<8x8xbf16>
  %wf = attnedit.convert %w : tensor<8x8xbf16> -> tensor<8x8xf32>
  %y = attnedit.linear %x, %wf : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
  %l = attnedit.mse_loss %y, %x : tensor<4x8xf32>
  return %l : tensor<f32>
}
// REFUSED: error: attnedit-autodiff: trainable parameter 'w' is stored as 'bf16'; gradients are computed in f32, so make it an f32 parameter (as --attnedit-build-distill does for what it trains) or freeze it

// LM-LABEL: func.func @train_step(
// LM: attnedit.param "model.embed_tokens.weight" trainable : tensor<32x16xf32>
// LM-NOT: bf16
// LM-LABEL: func.func @train_step_grad(
// LM-NOT: bf16
// LM: attnedit.gradients = ["model.embed_tokens.weight"
