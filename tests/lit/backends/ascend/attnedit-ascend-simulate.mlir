// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-pipeline="target=910b" --attnedit-ascend-simulate -o /dev/null | FileCheck %s
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-pipeline="target=910b dtype=f16" --attnedit-ascend-simulate -o /dev/null | FileCheck %s --check-prefix=F16
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-pipeline="target=910a dtype=f16" --attnedit-ascend-simulate -o /dev/null | FileCheck %s --check-prefix=A910
// RUN: attnedit-opt %s --split-input-file --attnedit-ascend-lower-matmul="tiling=16,32,16,2" --attnedit-ascend-simulate -o /dev/null | FileCheck %s --check-prefix=SMALL

// Tests that the lowered kernels run hazard-free in the simulator and match
// an f64 product of the rounded inputs within the output dtype's rounding
// plus f32 accumulation (tails in M, N and K included: 50 x 70 x 90), on the
// 910B (FixPipe out) and the 910A (L0C -> UB -> GM), with searched and with
// small forced tiles (several K blocks and slices per task). The byte
// counters show FixPipe writing exactly C (50 x 70 x 2 bytes: tails dropped).
// CHECK: ascend-simulate: @linear_0: {{[0-9]+}} blocks, {{[0-9]+}} instructions, no hazards; moved gm->l1 {{[0-9]+}} l0c->gm 7000 l1->l0a {{[0-9]+}} l1->l0b {{[0-9]+}}; max |C - A.B| {{.*}} of the bf16 tolerance
// CHECK: ascend-simulate: @matmul_0: {{[0-9]+}} blocks, {{[0-9]+}} instructions, no hazards; moved {{.*}} l0c->gm 8960 {{.*}}; max |C - A.B| {{.*}} of the bf16 tolerance
// F16: @linear_0: {{.*}} no hazards; {{.*}} of the f16 tolerance
// F16: @matmul_0: {{.*}} no hazards; {{.*}} of the f16 tolerance
// A910: @linear_0: {{.*}} no hazards; {{.*}} of the f16 tolerance
// A910: @matmul_0: {{.*}} no hazards; {{.*}} of the f16 tolerance
// SMALL: @linear_0: 12 blocks, {{.*}} no hazards
// SMALL: @matmul_0: 12 blocks, {{.*}} no hazards
func.func @linear(%x: tensor<50x90xf32>, %w: tensor<70x90xf32>) -> tensor<50x70xf32> {
  %y = attnedit.linear %x, %w : (tensor<50x90xf32>, tensor<70x90xf32>) -> tensor<50x70xf32>
  return %y : tensor<50x70xf32>
}

// -----

func.func @batched(%a: tensor<2x40x72xf32>, %b: tensor<2x72x56xf32>) -> tensor<2x40x56xf32> {
  %c = attnedit.matmul %a, %b : (tensor<2x40x72xf32>, tensor<2x72x56xf32>) -> tensor<2x40x56xf32>
  return %c : tensor<2x40x56xf32>
}
