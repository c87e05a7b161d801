// RUN: attnedit-opt %s --attnedit-cpu-convert-to-linalg | FileCheck %s
// RUN: attnedit-opt %s --attnedit-cpu-convert-to-linalg --one-shot-bufferize="bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map" --buffer-deallocation-pipeline | FileCheck %s --check-prefix=BUF
// RUN: attnedit-opt %s --attnedit-cpu-pipeline | FileCheck %s --check-prefix=LLVM

// Tests that cache_write becomes a library call whose output is the pool
// argument itself (made writable), paged_attention one reading the written
// pools with [scale, window, block_size, ring, num_kv_heads, v_head_dim],
// and that the written pools leave the results (recorded per original
// result in attnedit.donated_results) while the tokens' pool that was only
// read stays read-only; bufferized, the writes go into the arguments: no
// copy, no clone, no allocation of a pool.
// CHECK-LABEL: func.func @decode
// CHECK-SAME: %[[POS:[^:]*]]: tensor<?xi32> {bufferization.writable = false}
// CHECK-SAME: %[[TABLE:[^:]*]]: tensor<?x?xi32> {bufferization.writable = false}
// CHECK-SAME: %[[KP:[^:]*]]: tensor<?x16xf32> {attnedit.kv_cache = {layer = 0 : i64, part = "k", table = 0 : i64}, bufferization.writable = true}
// CHECK-SAME: %[[VP:[^:]*]]: tensor<?x16xf32> {attnedit.kv_cache = {layer = 0 : i64, part = "v", table = 0 : i64}, bufferization.writable = true}
// CHECK-SAME: -> tensor<?x4x8xf32>
// CHECK-SAME: attnedit.donated_results = array<i64: -1, 2, 3>
// CHECK-DAG: %[[WP:.*]] = arith.constant dense<[4.000000e+00, 0.000000e+00]> : tensor<2xf32>
// CHECK-DAG: %[[AP:.*]] = arith.constant dense<[2.500000e-01, 0.000000e+00, 4.000000e+00, 0.000000e+00, 2.000000e+00, 8.000000e+00]> : tensor<6xf32>
// CHECK: %[[K1:.*]] = linalg.generic {{.*}}library_call = "attnedit_cpu_cache_write"}
// CHECK-SAME: ins(%{{.*}}, %[[TABLE]], %[[POS]], %[[WP]] : {{.*}}) outs(%[[KP]] : tensor<?x16xf32>)
// CHECK: %[[V1:.*]] = linalg.generic {{.*}}library_call = "attnedit_cpu_cache_write"}
// CHECK-SAME: outs(%[[VP]] : tensor<?x16xf32>)
// CHECK: %[[O:.*]] = linalg.generic {{.*}}library_call = "attnedit_cpu_paged_attention"}
// CHECK-SAME: ins(%{{.*}}, %[[K1]], %[[V1]], %[[TABLE]], %[[POS]], %[[AP]] :
// CHECK: return %[[O]] : tensor<?x4x8xf32>
// BUF-LABEL: func.func @decode
// BUF-NOT: memref.copy
// BUF-NOT: bufferization.clone
// BUF-NOT: memref.alloc({{.*}}) : memref<?x16xf32>
// BUF: return
// LLVM: llvm.call @attnedit_cpu_cache_write
// LLVM: llvm.call @attnedit_cpu_cache_write
// LLVM: llvm.call @attnedit_cpu_paged_attention
func.func @decode(%pos: tensor<?xi32>, %table: tensor<?x?xi32>,
                  %kpool: tensor<?x16xf32> {attnedit.kv_cache = {layer = 0 : i64, part = "k", table = 0 : i64}},
                  %vpool: tensor<?x16xf32> {attnedit.kv_cache = {layer = 0 : i64, part = "v", table = 0 : i64}},
                  %q: tensor<?x4x8xf32>, %k: tensor<?x16xf32>, %v: tensor<?x16xf32>)
    -> (tensor<?x4x8xf32>, tensor<?x16xf32>, tensor<?x16xf32>) {
  %kc = attnedit.cache_write %kpool, %k, %table, %pos {block_size = 4 : i64}
      : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x16xf32>
  %vc = attnedit.cache_write %vpool, %v, %table, %pos {block_size = 4 : i64}
      : (tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x16xf32>
  %o = attnedit.paged_attention %q, %kc, %vc, %table, %pos {block_size = 4 : i64, num_kv_heads = 2 : i64, scale = 2.500000e-01 : f64, v_head_dim = 8 : i64}
      : (tensor<?x4x8xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x4x8xf32>
  return %o, %kc, %vc : tensor<?x4x8xf32>, tensor<?x16xf32>, tensor<?x16xf32>
}
