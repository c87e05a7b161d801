// RUN: not attnedit-opt %s --attnedit-static-tokens=tokens=64 2>&1 | FileCheck %s

// A size that is not the token count (here twice it) fails the verifier,
// and the pass names the function.
// CHECK: error: 'attnedit.concat' op
// CHECK: error: attnedit-static-tokens: @twice has dynamic sizes that are not the token count (64); the error above names the first op they do not fit
func.func @twice(%x: tensor<?x8xf32>) -> tensor<?x8xf32> {
  %0 = attnedit.concat %x, %x {axis = 0 : i64} : (tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}
