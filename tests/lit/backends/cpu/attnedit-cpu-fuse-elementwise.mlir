// RUN: attnedit-opt %s --attnedit-cpu-convert-to-linalg --canonicalize --cse --attnedit-cpu-fuse-elementwise | FileCheck %s

// Tests that an MLP's SiLU·mul and the residual add fuse into one loop nest
// (one elementwise generic between the GEMMs, none after the last one but
// the add fused with nothing left to fuse), while each GEMM stays a library
// call with its own inputs.
// CHECK-LABEL: func.func @mlp
// CHECK-COUNT-2: library_call = "attnedit_cpu_gemm_nt"
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]
// CHECK-SAME: ins(%{{.*}}, %{{.*}} : tensor<?x172xf32>, tensor<?x172xf32>)
// CHECK: math.exp
// CHECK: arith.mulf
// CHECK-NOT: linalg.generic {{.*}}ins({{.*}}tensor<?x172xf32>)
// CHECK: library_call = "attnedit_cpu_gemm_nt"
func.func @mlp(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %g = attnedit.param "gate" : tensor<172x64xf32>
  %u = attnedit.param "up" : tensor<172x64xf32>
  %d = attnedit.param "down" : tensor<64x172xf32>
  %0 = attnedit.linear %x, %g : (tensor<?x64xf32>, tensor<172x64xf32>) -> tensor<?x172xf32>
  %1 = attnedit.silu %0 : tensor<?x172xf32>
  %2 = attnedit.linear %x, %u : (tensor<?x64xf32>, tensor<172x64xf32>) -> tensor<?x172xf32>
  %3 = attnedit.mul %1, %2 : tensor<?x172xf32>
  %4 = attnedit.linear %3, %d : (tensor<?x172xf32>, tensor<64x172xf32>) -> tensor<?x64xf32>
  %5 = attnedit.add %x, %4 : tensor<?x64xf32>
  return %5 : tensor<?x64xf32>
}
