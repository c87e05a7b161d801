//===- CacheKernels.h - reference kernels of the paged KV-cache ops -*- C++ -*-===//
//
// What attnedit.cache_write and attnedit.paged_attention compute (see their
// ODS descriptions), for the reference evaluator. Pools are [slots, width]
// f32 tensors owned by the runtime's KvCache; block tables are [S, M] i32.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_INFERENCE_CACHEKERNELS_H
#define ATTNEDIT_RUNTIME_INFERENCE_CACHEKERNELS_H

#include "attnedit/Runtime/Execution/Tensor.h"

#include "llvm/Support/Error.h"

namespace mlir::attnedit::kernels {

/// How positions map to pool slots through a block table.
struct PagedLayout {
  int64_t blockSize = 16;
  bool ring = false; // position p lives in table entry (p / blockSize) mod M
};

/// Writes rows [N, W] at the slots of positions [N] into `pool` in place
/// (the evaluator's pool operand is donated) and returns the pool.
llvm::Expected<Tensor> cacheWrite(const Tensor &pool, const Tensor &rows, const Tensor &table,
                                  const Tensor &positions, PagedLayout layout);

/// Checks that every slot an op reads or writes lies in a pool of
/// `poolRows` rows: for row i, the keys max(0, p - window + 1)..p of
/// p = positions[i] (window 0: from 0; cache_write touches p alone, window
/// 1). The errors are the kernels' own; compiled code, which cannot report
/// one, is checked by this before it runs.
llvm::Error checkSlots(const Tensor &table, const Tensor &positions, int64_t poolRows,
                       PagedLayout layout, int64_t window);

struct PagedAttentionConfig {
  int64_t kvHeads = 1;
  int64_t vDim = 0;
  double scale = 1.0;
  int64_t window = 0; // 0 = all earlier tokens
  PagedLayout layout;
};

/// softmax(scale·q·kᵀ [, sinks])·v over each row's cached keys: [N, H, vDim].
llvm::Expected<Tensor> pagedAttention(const Tensor &query, const Tensor &kPool,
                                      const Tensor &vPool, const Tensor &table,
                                      const Tensor &positions, const Tensor *sinks,
                                      const PagedAttentionConfig &config);

} // namespace mlir::attnedit::kernels

#endif // ATTNEDIT_RUNTIME_INFERENCE_CACHEKERNELS_H
