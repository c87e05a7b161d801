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

// Tests that the gradient of a concatenation, the sum of its parts' gradients
// each padded with zeros (slice VJPs, as MLA's [k_nope; v] backward writes
// them), becomes the parts inserted into one tensor: no fill, no add over
// the whole (static shapes only, as compiled steps are specialised). A part read at its own place from a tensor of the result's
// shape is not copied: the other parts go into that tensor itself.
// CHECK-LABEL: func.func @concat_gradient
// CHECK-SAME: %[[A:[^:]*]]: tensor<6x4xf32> {{.*}}, %[[B:[^:]*]]: tensor<6x4xf32> {{.*}}, %[[W:[^:]*]]: tensor<6x8xf32>
// CHECK-NOT: linalg.fill
// CHECK-NOT: linalg.generic
// CHECK: %[[E:.*]] = tensor.empty
// CHECK: %[[P:.*]] = tensor.insert_slice %[[A]] into %[[E]][0, 0] [6, 4] [1, 1]
// CHECK: %[[Q:.*]] = tensor.insert_slice %[[B]] into %[[P]][0, 4] [6, 4] [1, 1]
// CHECK: %[[R:.*]] = tensor.insert_slice %[[B]] into %[[W]][0, 4] [6, 4] [1, 1]
// CHECK: return %[[Q]], %[[R]]
func.func @concat_gradient(%a: tensor<6x4xf32>, %b: tensor<6x4xf32>, %w: tensor<6x8xf32>) -> (tensor<6x8xf32>, tensor<6x8xf32>) {
  %pa = attnedit.pad %a {axis = 1 : i64, before = 0 : i64, after = 4 : i64} : (tensor<6x4xf32>) -> tensor<6x8xf32>
  %pb = attnedit.pad %b {axis = 1 : i64, before = 4 : i64, after = 0 : i64} : (tensor<6x4xf32>) -> tensor<6x8xf32>
  %g = attnedit.add %pa, %pb : tensor<6x8xf32>
  %w0 = attnedit.slice %w {axis = 1 : i64, offset = 0 : i64, size = 4 : i64} : (tensor<6x8xf32>) -> tensor<6x4xf32>
  %pw = attnedit.pad %w0 {axis = 1 : i64, before = 0 : i64, after = 4 : i64} : (tensor<6x4xf32>) -> tensor<6x8xf32>
  %h = attnedit.add %pw, %pb : tensor<6x8xf32>
  return %g, %h : tensor<6x8xf32>, tensor<6x8xf32>
}

// Tests that padded parts that overlap, or leave a gap, are still added.
// CHECK-LABEL: func.func @not_a_concat
// CHECK-COUNT-2: linalg.generic
func.func @not_a_concat(%a: tensor<6x4xf32>, %b: tensor<6x4xf32>, %c: tensor<6x2xf32>) -> (tensor<6x8xf32>, tensor<6x8xf32>) {
  %pa = attnedit.pad %a {axis = 1 : i64, before = 0 : i64, after = 4 : i64} : (tensor<6x4xf32>) -> tensor<6x8xf32>
  %pb = attnedit.pad %b {axis = 1 : i64, before = 2 : i64, after = 2 : i64} : (tensor<6x4xf32>) -> tensor<6x8xf32>
  %overlap = attnedit.add %pa, %pb : tensor<6x8xf32>
  %pc = attnedit.pad %c {axis = 1 : i64, before = 6 : i64, after = 0 : i64} : (tensor<6x2xf32>) -> tensor<6x8xf32>
  %gap = attnedit.add %pa, %pc : tensor<6x8xf32>
  return %overlap, %gap : tensor<6x8xf32>, tensor<6x8xf32>
}

// Tests that a concatenation whose first part is a slice of a tensor of its
// own type, at its own place (MLA's query: [q_nope; rope(q_pe)], both from
// the projection's result), writes the other parts into that tensor instead
// of copying the slice into a fresh one; a slice put elsewhere is copied.
// CHECK-LABEL: func.func @concat_of_own_slice
// CHECK-SAME: %[[Q:[^:]*]]: tensor<6x12xf32>
// CHECK: %[[S:.*]] = tensor.extract_slice %[[Q]][0, 0] [6, 8] [1, 1]
// CHECK: %[[R:.*]] = linalg.generic
// CHECK: %[[E:.*]] = tensor.empty() : tensor<6x12xf32>
// CHECK: %[[SAME:.*]] = tensor.insert_slice %[[R]] into %[[Q]][0, 8] [6, 4] [1, 1]
// CHECK: %[[M:.*]] = tensor.insert_slice %[[R]] into %[[E]][0, 0] [6, 4] [1, 1]
// CHECK: %[[MOVED:.*]] = tensor.insert_slice %[[S]] into %[[M]][0, 4] [6, 8] [1, 1]
// CHECK: return %[[SAME]], %[[MOVED]]
func.func @concat_of_own_slice(%q: tensor<6x12xf32>) -> (tensor<6x12xf32>, tensor<6x12xf32>) {
  %nope = attnedit.slice %q {axis = 1 : i64, offset = 0 : i64, size = 8 : i64} : (tensor<6x12xf32>) -> tensor<6x8xf32>
  %pe = attnedit.slice %q {axis = 1 : i64, offset = 8 : i64, size = 4 : i64} : (tensor<6x12xf32>) -> tensor<6x4xf32>
  %r = attnedit.silu %pe : tensor<6x4xf32>
  %same = attnedit.concat %nope, %r {axis = 1 : i64} : (tensor<6x8xf32>, tensor<6x4xf32>) -> tensor<6x12xf32>
  %moved = attnedit.concat %r, %nope {axis = 1 : i64} : (tensor<6x4xf32>, tensor<6x8xf32>) -> tensor<6x12xf32>
  return %same, %moved : tensor<6x12xf32>, tensor<6x12xf32>
}
