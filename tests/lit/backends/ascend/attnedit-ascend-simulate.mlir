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

// -----

// Linears reading the same input (a layer's q, k and v projections) are one
// kernel over their weights side by side: each tile reads the weight of its
// part and writes that part's output (N tails in the last part, 40 of 48
// columns), and every part matches the f64 product; FixPipe writes exactly
// the three outputs (50 x (64 + 32 + 40) x 2 bytes).
// CHECK: ascend-simulate: @linear_0: {{[0-9]+}} blocks, {{[0-9]+}} instructions, no hazards; moved {{.*}} l0c->gm 13600 {{.*}}; max |C - A.B| {{.*}} of the bf16 tolerance
// F16: @linear_0: {{.*}} no hazards; {{.*}} of the f16 tolerance
// A910: @linear_0: {{.*}} no hazards; {{.*}} of the f16 tolerance
// SMALL: @linear_0: 20 blocks, {{.*}} no hazards
// SMALL-NOT: @linear_1
func.func @shared_input(%x: tensor<50x90xf32>, %wq: tensor<64x90xf32>, %wk: tensor<32x90xf32>, %wv: tensor<40x90xf32>) -> (tensor<50x64xf32>, tensor<50x32xf32>, tensor<50x40xf32>) {
  %q = attnedit.linear %x, %wq : (tensor<50x90xf32>, tensor<64x90xf32>) -> tensor<50x64xf32>
  %k = attnedit.linear %x, %wk : (tensor<50x90xf32>, tensor<32x90xf32>) -> tensor<50x32xf32>
  %v = attnedit.linear %x, %wv : (tensor<50x90xf32>, tensor<40x90xf32>) -> tensor<50x40xf32>
  return %q, %k, %v : tensor<50x64xf32>, tensor<50x32xf32>, tensor<50x40xf32>
}
