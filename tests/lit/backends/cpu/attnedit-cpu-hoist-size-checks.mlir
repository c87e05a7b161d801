// RUN: attnedit-opt %s --pass-pipeline="builtin.module(func.func(attnedit-cpu-hoist-size-checks))" | FileCheck %s

// Tests that a run-time size check moves, with the ops computing its sizes,
// above the work before it: sizes of the function's arguments are known
// first, and canonicalization may have shaped the work by the sizes the
// check compares.
func.func private @attnedit_cpu_refuse_call(index, index, index)

// CHECK-LABEL: func.func @check_first
// CHECK: tensor.dim %arg0
// CHECK: arith.cmpi eq
// CHECK: scf.if
// CHECK-NEXT: func.call @attnedit_cpu_refuse_call
// CHECK: linalg.fill
// CHECK: return
func.func @check_first(%a: tensor<?xf32>, %n: index) -> tensor<?xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%n) : tensor<?xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?xf32>) -> tensor<?xf32>
  %c0 = arith.constant 0 : index
  %true = arith.constant true
  %d = tensor.dim %a, %c0 : tensor<?xf32>
  %ok = arith.cmpi eq, %d, %n : index
  %bad = arith.xori %ok, %true : i1
  scf.if %bad {
    func.call @attnedit_cpu_refuse_call(%c0, %d, %n) : (index, index, index) -> ()
  }
  return %f : tensor<?xf32>
}

// A check of a size the work computes stays below that work.
// CHECK-LABEL: func.func @check_after_producer
// CHECK: linalg.fill
// CHECK: tensor.dim %[[FILLED:.*]], %
// CHECK: scf.if
// CHECK: return
func.func @check_after_producer(%n: index, %m: index) -> tensor<?xf32> {
  %zero = arith.constant 0.0 : f32
  %e = tensor.empty(%n) : tensor<?xf32>
  %f = linalg.fill ins(%zero : f32) outs(%e : tensor<?xf32>) -> tensor<?xf32>
  %c0 = arith.constant 0 : index
  %true = arith.constant true
  %d = tensor.dim %f, %c0 : tensor<?xf32>
  %ok = arith.cmpi eq, %d, %m : index
  %bad = arith.xori %ok, %true : i1
  scf.if %bad {
    func.call @attnedit_cpu_refuse_call(%c0, %d, %m) : (index, index, index) -> ()
  }
  return %f : tensor<?xf32>
}
