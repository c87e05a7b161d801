// RUN: attnedit-opt %s --split-input-file --verify-diagnostics

// Tests that a written pool may not be used again: executors update it in place.
func.func @pool_reused(%pool: tensor<?x8xf32>, %rows: tensor<?x8xf32>, %t: tensor<?x?xi32>, %p: tensor<?xi32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  // expected-error @+1 {{pool operand must have no other use: it is updated in place}}
  %0 = attnedit.cache_write %pool, %rows, %t, %p {block_size = 4 : i64} : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x8xf32>
  return %0, %pool : tensor<?x8xf32>, tensor<?x8xf32>
}

// -----

// Tests that rows must be as wide as the pool.
func.func @rows_width(%pool: tensor<?x8xf32>, %rows: tensor<?x6xf32>, %t: tensor<?x?xi32>, %p: tensor<?xi32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{rows has shape [?, 6], expected [?, 8]}}
  %0 = attnedit.cache_write %pool, %rows, %t, %p {block_size = 4 : i64} : (tensor<?x8xf32>, tensor<?x6xf32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x8xf32>
  return %0 : tensor<?x8xf32>
}

// -----

// Tests that the key pool must hold num_kv_heads heads of the query's width.
func.func @k_width(%q: tensor<?x4x8xf32>, %k: tensor<?x8xf32>, %t: tensor<?x?xi32>, %p: tensor<?xi32>) -> tensor<?x4x8xf32> {
  // expected-error @+1 {{k_pool has shape [?, 8], expected [?, 16]}}
  %0 = attnedit.paged_attention %q, %k, %k, %t, %p {block_size = 4 : i64, num_kv_heads = 2 : i64, v_head_dim = 8 : i64, scale = 1.0 : f64} : (tensor<?x4x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x4x8xf32>
  return %0 : tensor<?x4x8xf32>
}

// -----

// Tests that query heads must share KV heads evenly.
func.func @heads(%q: tensor<?x3x8xf32>, %k: tensor<?x16xf32>, %t: tensor<?x?xi32>, %p: tensor<?xi32>) -> tensor<?x3x8xf32> {
  // expected-error @+1 {{3 query heads are not a multiple of 2 KV heads}}
  %0 = attnedit.paged_attention %q, %k, %k, %t, %p {block_size = 4 : i64, num_kv_heads = 2 : i64, v_head_dim = 8 : i64, scale = 1.0 : f64} : (tensor<?x3x8xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x3x8xf32>
  return %0 : tensor<?x3x8xf32>
}

// -----

// Tests that the value width must fit each KV head's segment of the pool.
func.func @v_width(%q: tensor<?x2x16xf32>, %c: tensor<?x16xf32>, %t: tensor<?x?xi32>, %p: tensor<?xi32>) -> tensor<?x2x24xf32> {
  // expected-error @+1 {{v_pool rows of 16 do not hold 1 KV heads of 24 values}}
  %0 = attnedit.paged_attention %q, %c, %c, %t, %p {block_size = 4 : i64, num_kv_heads = 1 : i64, v_head_dim = 24 : i64, scale = 1.0 : f64} : (tensor<?x2x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x2x24xf32>
  return %0 : tensor<?x2x24xf32>
}

// -----

// Tests that MLA's absorbed form (one latent pool as key and value) verifies.
func.func @absorbed(%q: tensor<?x2x16xf32>, %c: tensor<?x16xf32>, %t: tensor<?x?xi32>, %p: tensor<?xi32>) -> tensor<?x2x8xf32> {
  %0 = attnedit.paged_attention %q, %c, %c, %t, %p {block_size = 4 : i64, num_kv_heads = 1 : i64, v_head_dim = 8 : i64, scale = 1.0 : f64} : (tensor<?x2x16xf32>, tensor<?x16xf32>, tensor<?x16xf32>, tensor<?x?xi32>, tensor<?xi32>) -> tensor<?x2x8xf32>
  return %0 : tensor<?x2x8xf32>
}
