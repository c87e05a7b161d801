// RUN: attnedit-opt %s "--attnedit-edit-attention=target=gate-swa window=4 layers=0" 2>&1 | FileCheck %s
// RUN: not attnedit-opt %s "--attnedit-edit-attention=target=gate-swa window=4 layers=1" -o /dev/null 2>&1 | FileCheck %s --check-prefix=RANGE

// Tests that the edit numbers @forward's layers, the model's: with a copy of
// the model beside it, layers=1 edited the copy's layer, and the copy's
// attention is left as it is, with a warning.
// CHECK: warning: attnedit-edit-attention: edits @forward's 1 layers; 1 attnedit.attention in other functions stay as they are
// CHECK-LABEL: func.func @forward
// CHECK: attnedit.gate_swa
// CHECK-LABEL: func.func @copy
// CHECK: attnedit.attention
// RANGE: error: attnedit-edit-attention: layers entry 1 is out of range: the module has 1 attention layers
func.func @forward(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %wq: tensor<64x32xf32>, %wkv: tensor<32x32xf32>, %wo: tensor<32x64xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wkv, %wkv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<64x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}
func.func @copy(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %wq: tensor<64x32xf32>, %wkv: tensor<32x32xf32>, %wo: tensor<32x64xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wkv, %wkv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<64x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}
