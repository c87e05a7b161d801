// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="dtype=f8" 2>&1 | FileCheck %s --check-prefix=DTYPE
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="target=910a" 2>&1 | FileCheck %s --check-prefix=BF16
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="target=nope" 2>&1 | FileCheck %s --check-prefix=TARGET
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=1,2" 2>&1 | FileCheck %s --check-prefix=FORMAT
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=256,256,256,1" 2>&1 | FileCheck %s --check-prefix=FIT
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="target=%S/Inputs/no-source.json" 2>&1 | FileCheck %s --check-prefix=SOURCE
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=16,16,16,0" 2>&1 | FileCheck %s --check-prefix=STEPK
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="tiling=-16,16,16,1" 2>&1 | FileCheck %s --check-prefix=NEGATIVE
// RUN: sed 's/"ub":  {"bytes": 196608, "align": 32,/"ub":  {"bytes": 196608, "align": 3,/' %S/../../../../backends/ascend/targets/910b.json > %t.align3.json
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="target=%t.align3.json" 2>&1 | FileCheck %s --check-prefix=ALIGN
// RUN: sed 's/"value": 1.5e12,/"value": 0,/' %S/../../../../backends/ascend/targets/910b.json > %t.hbm0.json
// RUN: not attnedit-opt %s --attnedit-ascend-lower-matmul="target=%t.hbm0.json" 2>&1 | FileCheck %s --check-prefix=HBM

// Tests that bad options are named and fail without a crash.
// DTYPE: dtype must be f16 or bf16, got 'f8'
// BF16: the 910a Cube has no bf16 mode; pass dtype=f16
// TARGET: unknown Ascend target 'nope' (built-in: 910b, 910a; or a .json file)
// FORMAT: tiling must be baseM,baseN,baseK,stepK, got '1,2'
// FIT: tiling 256,256,256,1 does not fit the 910b: l0a needs 262144 bytes of 65536
// SOURCE: no-source.json: number 'freq_hz' has no "source"
// STEPK: tiling '16,16,16,0': stepK must be at least 1, got 0
// NEGATIVE: tiling '-16,16,16,1': baseM must be a positive multiple of 16 (S20), got -16
// ALIGN: align3.json: buffer 'ub' "align" must be a power of two, got 3
// HBM: hbm0.json: number 'hbm_bytes_per_s' must be positive, got 0
func.func @f(%x: tensor<64x64xf32>, %w: tensor<64x64xf32>) -> tensor<64x64xf32> {
  %y = attnedit.linear %x, %w : (tensor<64x64xf32>, tensor<64x64xf32>) -> tensor<64x64xf32>
  return %y : tensor<64x64xf32>
}
