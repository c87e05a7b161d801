// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="dtype=f8" 2>&1 | FileCheck %s --check-prefix=DTYPE
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="target=910a" 2>&1 | FileCheck %s --check-prefix=BF16
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="target=nope" 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=1,2" 2>&1 | FileCheck %s --check-prefix=FORMAT
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=256,256,256,1" 2>&1 | FileCheck %s --check-prefix=FIT
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="target=%S/Inputs/no-source.json" 2>&1 | FileCheck %s --check-prefix=SOURCE

// Tests that bad options are named and fail without a crash.
// DTYPE: dtype must be f16 or bf16, got 'f8'
// BF16: the 910a Cube has no bf16 mode
// TARGET: unknown Ascend target 'nope' (built-in: 910b, 910a; or a .json file)
// FORMAT: tiling must be baseM,baseN,baseK,stepK, got '1,2'
// FIT: tiling 256,256,256,1 does not fit the 910b: l0a needs 262144 bytes of 65536
// SOURCE: no-source.json: number 'freq_hz' has no "source"
func.func @f(%x: tensor<64x64xf32>, %w: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %y = attnedit.linear %x, %w : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
  return %y : tensor<64x64xf32>
}
