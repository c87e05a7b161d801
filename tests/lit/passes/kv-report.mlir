// RUN: attnedit-opt %s --attnedit-kv-report="context=1024 dtype=bf16" -o /dev/null 2>&1 | FileCheck %s
// RUN: not attnedit-opt %s --attnedit-kv-report="dtype=int3" -o /dev/null 2>&1 | FileCheck %s --check-prefix=BAD
// The report goes to stderr: stdout stays a module the next tool parses.
// RUN: attnedit-opt %s --attnedit-kv-report="context=64" 2>/dev/null | attnedit-opt -o /dev/null
// RUN: not attnedit-opt %s --attnedit-kv-report="context=9223372036854775807" -o /dev/null 2>&1 | FileCheck %s --check-prefix=HUGE
// HUGE: context in [1, 2^40] (got dtype 'bf16', context 9223372036854775807)

// Tests the per-layer and total KV bytes of GQA, sliding-window GateSWA and
// MLA layers: GQA caches 2·Hkv·D values per token, MLA its latent plus the
// shared RoPE key, SWA the same as GQA but only for the last W tokens. The
// layers are @forward's: a function beside it (a distillation step holds
// the model's layers again) is not counted twice.
// CHECK: KV cache at context 1024, bf16
// CHECK: layer kind    values/token   window  bytes/token    bytes@context
// CHECK-NEXT: 0 gqa               64        -          128           131072
// CHECK-NEXT: 1 swa               64       16          128             2048
// CHECK-NEXT: 2 mla               20        -           40            40960
// CHECK-NEXT: total                                      296           174080
// CHECK: "bytes_per_value": 2,
// CHECK: "context": 1024,
// CHECK: "total": {
// CHECK-NEXT: "bytes_at_context": 174080,
// CHECK-NEXT: "bytes_per_token": 296
// BAD: dtype must be f32, f16, bf16 or f8 and context in [1, 2^40] (got dtype 'int3', context 32768)

func.func @forward(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %wq: tensor<64x32xf32>, %wkv: tensor<32x32xf32>, %wo: tensor<32x64xf32>, %q: tensor<64x32xf32>, %kva: tensor<20x32xf32>, %kvn: tensor<12xf32>, %kvb: tensor<56x12xf32>, %o: tensor<32x24xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wkv, %wkv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<64x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %1 = attnedit.gate_swa %0, %pos weights(%wq, %wkv, %wkv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>, window = 16 : i64, gate = #attnedit<gate_kind none>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<64x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  %2 = attnedit.mla %1, %pos q(%q) kv(%kva, %kvn, %kvb) out(%o) {num_heads = 4 : i64, q_lora_rank = 0 : i64, kv_lora_rank = 12 : i64, qk_nope_head_dim = 8 : i64, qk_rope_head_dim = 8 : i64, v_head_dim = 6 : i64, scale = 0.3 : f64, rope_theta = 10000.0 : f64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<64x32xf32>, tensor<20x32xf32>, tensor<12xf32>, tensor<56x12xf32>, tensor<32x24xf32>) -> tensor<?x32xf32>
  return %2 : tensor<?x32xf32>
}

func.func @step(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %wq: tensor<64x32xf32>, %wkv: tensor<32x32xf32>, %wo: tensor<32x64xf32>) -> tensor<?x32xf32> {
  %0 = attnedit.attention %x, %pos weights(%wq, %wkv, %wkv, %wo) {num_heads = 4 : i64, num_kv_heads = 2 : i64, head_dim = 16 : i64, scale = 0.25 : f64, rope_theta = 10000.0 : f64, rotary_dim = 16 : i64, rope_style = #attnedit<rope_style rotate_half>} : (tensor<?x32xf32>, tensor<?xi32>, tensor<64x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x64xf32>) -> tensor<?x32xf32>
  return %0 : tensor<?x32xf32>
}
