// RUN: attnedit-opt %s --split-input-file --attnedit-cpu-convert-to-linalg | FileCheck %s
// RUN: attnedit-opt %s --split-input-file --attnedit-cpu-convert-to-linalg=gemm=loops | FileCheck %s --check-prefix=LOOPS

// Tests that parameters become trailing read-only arguments named after
// them, and that linear is one GEMM over all rows reading the weight
// transposed through its access map (no transpose op, no copy), calling the
// BLAS shim; with gemm=loops the same contraction carries no library call.
// CHECK-LABEL: func.func @linear
// CHECK-SAME: %[[X:.*]]: tensor<?x64xf32> {bufferization.writable = false}
// CHECK-SAME: %[[W:.*]]: tensor<32x64xf32> {attnedit.param = "w", bufferization.writable = false}
// CHECK-NOT: linalg.transpose
// CHECK: %[[Z:.*]] = linalg.fill
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "reduction"], library_call = "attnedit_cpu_gemm_nt"}
// CHECK-SAME: ins(%[[X]], %[[W]] : tensor<?x64xf32>, tensor<32x64xf32>) outs(%[[Z]] : tensor<?x32xf32>)
// LOOPS-LABEL: func.func @linear
// LOOPS-NOT: library_call
func.func @linear(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %w = attnedit.param "w" : tensor<32x64xf32>
  %y = attnedit.linear %x, %w : (tensor<?x64xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that the VJP's input gradient, linear by a transposed weight, reads
// the weight as stored (gemm_nn) instead of materialising its transpose.
// CHECK-LABEL: func.func @linear_transposed_weight
// CHECK-SAME: %[[DY:.*]]: tensor<?x32xf32> {bufferization.writable = false}
// CHECK-SAME: %[[W:.*]]: tensor<32x64xf32> {attnedit.param = "w", bufferization.writable = false}
// CHECK-NOT: linalg.transpose
// CHECK: library_call = "attnedit_cpu_gemm_nn"
// CHECK-SAME: ins(%[[DY]], %[[W]] : tensor<?x32xf32>, tensor<32x64xf32>)
// CHECK-NOT: linalg.transpose
// CHECK: return
func.func @linear_transposed_weight(%dy: tensor<?x32xf32>) -> tensor<?x64xf32> {
  %w = attnedit.param "w" : tensor<32x64xf32>
  %wt = attnedit.transpose %w {permutation = array<i64: 1, 0>} : (tensor<32x64xf32>) -> tensor<64x32xf32>
  %dx = attnedit.linear %dy, %wt : (tensor<?x32xf32>, tensor<64x32xf32>) -> tensor<?x64xf32>
  return %dx : tensor<?x64xf32>
}

// -----

// Tests that a parameter used twice is bound once, and a scoped one records
// its scope.
// CHECK-LABEL: func.func @shared
// CHECK-SAME: {attnedit.param = "w", bufferization.writable = false}
// CHECK-SAME: {attnedit.param = "w", attnedit.scope = "student", bufferization.writable = false}
// CHECK-SAME: -> tensor<4xf32>
func.func @shared() -> tensor<4xf32> {
  %a = attnedit.param "w" : tensor<4xf32>
  %b = attnedit.param "w" : tensor<4xf32>
  %c = attnedit.param "w" in "student" : tensor<4xf32>
  %0 = attnedit.add %a, %b : tensor<4xf32>
  %1 = attnedit.add %0, %c : tensor<4xf32>
  return %1 : tensor<4xf32>
}

// -----

// Tests that a parameter nothing reads (a distillation's replaced teacher
// projection) becomes no argument.
// CHECK-LABEL: func.func @unread
// CHECK-SAME: (%{{.*}}: tensor<4xf32> {attnedit.param = "used", bufferization.writable = false}) -> tensor<4xf32>
func.func @unread() -> tensor<4xf32> {
  %a = attnedit.param "used" : tensor<4xf32>
  %b = attnedit.param "unread" : tensor<8xf32>
  %0 = attnedit.add %a, %a : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// Tests that attention's score product reads K through a transposed access
// (bgemm_nt) instead of materialising the transpose, and the value product
// is a plain batched GEMM.
// CHECK-LABEL: func.func @scores
// CHECK-NOT: linalg.transpose
// CHECK: library_call = "attnedit_cpu_bgemm_nt"
// CHECK: library_call = "attnedit_cpu_bgemm_nn"
func.func @scores(%q: tensor<4x?x8xf32>, %k: tensor<4x?x8xf32>) -> tensor<4x?x8xf32> {
  %kt = attnedit.transpose %k {permutation = array<i64: 0, 2, 1>} : (tensor<4x?x8xf32>) -> tensor<4x8x?xf32>
  %s = attnedit.matmul %q, %kt : (tensor<4x?x8xf32>, tensor<4x8x?xf32>) -> tensor<4x?x?xf32>
  %o = attnedit.matmul %s, %k : (tensor<4x?x?xf32>, tensor<4x?x8xf32>) -> tensor<4x?x8xf32>
  return %o : tensor<4x?x8xf32>
}

// -----

// Tests that RMSNorm's sum of squares accumulates in f64, as the reference
// kernel does, in a reduction over the last axis.
// CHECK-LABEL: func.func @norm
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]
// CHECK: arith.extf {{.*}} : f32 to f64
// CHECK: math.sqrt {{.*}} : f64
func.func @norm(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
  %w = attnedit.param "n" : tensor<16xf32>
  %y = attnedit.rms_norm %x, %w {eps = 1.0e-5 : f64} : (tensor<?x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that splitting and merging dims are views (expand_shape /
// collapse_shape, the dynamic dim carried over), while a reshape that is
// neither stays a tensor.reshape; a reshape to the same shape with one
// unknown dim is its input (a GEMM's rows flattened, say), no op at all.
// CHECK-LABEL: func.func @reshapes
// CHECK-SAME: %[[X:[^:]*]]: tensor<?x8xf32>
// CHECK: %[[T:.*]] = tensor.dim %{{.*}}, %c0 : tensor<?x8xf32>
// CHECK: tensor.expand_shape %{{.*}} {{\[}}[0], [1, 2]] output_shape [%[[T]], 2, 4] : tensor<?x8xf32> into tensor<?x2x4xf32>
// CHECK: tensor.collapse_shape %{{.*}} {{\[}}[0], [1, 2]] : tensor<?x2x4xf32> into tensor<?x8xf32>
// CHECK: tensor.reshape %{{.*}}(%{{.*}}) : (tensor<2x3xf32>, tensor<2xindex>) -> tensor<3x2xf32>
// CHECK-NOT: tensor.reshape
// CHECK: return %{{.*}}, %{{.*}}, %{{.*}}, %[[X]] :
func.func @reshapes(%x: tensor<?x8xf32>, %z: tensor<?x2x4xf32>, %y: tensor<2x3xf32>) -> (tensor<?x2x4xf32>, tensor<?x8xf32>, tensor<3x2xf32>, tensor<?x8xf32>) {
  %0 = attnedit.reshape %x : (tensor<?x8xf32>) -> tensor<?x2x4xf32>
  %1 = attnedit.reshape %z : (tensor<?x2x4xf32>) -> tensor<?x8xf32>
  %2 = attnedit.reshape %y : (tensor<2x3xf32>) -> tensor<3x2xf32>
  %3 = attnedit.reshape %x : (tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0, %1, %2, %3 : tensor<?x2x4xf32>, tensor<?x8xf32>, tensor<3x2xf32>, tensor<?x8xf32>
}

// -----

// Tests that a scalar reshaped to ones (reduce_sum's VJP on a vector) is an
// expand_shape with every size 1, not an invalid one with no sizes.
// CHECK-LABEL: func.func @reshape_scalar
// CHECK: tensor.expand_shape %{{.*}} [] output_shape [1] : tensor<f32> into tensor<1xf32>
// CHECK: tensor.expand_shape %{{.*}} [] output_shape [1, 1] : tensor<f32> into tensor<1x1xf32>
func.func @reshape_scalar(%x: tensor<f32>) -> (tensor<1xf32>, tensor<1x1xf32>) {
  %0 = attnedit.reshape %x : (tensor<f32>) -> tensor<1xf32>
  %1 = attnedit.reshape %x : (tensor<f32>) -> tensor<1x1xf32>
  return %0, %1 : tensor<1xf32>, tensor<1x1xf32>
}
