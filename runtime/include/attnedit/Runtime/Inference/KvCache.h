//===- KvCache.h - a paged KV-cache block pool -----------------*- C++ -*-===//
//
// The state @prefill and @decode (--attnedit-build-decode) read and write:
// one pool tensor [blocks · block_size, width] per cached tensor of a layer,
// fixed-size blocks handed out from one free list per cache group (all full
// layers; each sliding window) and shared by all sequences, and a block table
// per sequence and group (vLLM's layout, slot = block · block_size + offset).
// A window group's table is a ring of `ring_blocks` entries reused as the
// window moves, so its memory stays flat as the context grows. Blocks return
// to the free list when a sequence closes.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_INFERENCE_KVCACHE_H
#define ATTNEDIT_RUNTIME_INFERENCE_KVCACHE_H

#include "attnedit/Runtime/Execution/Tensor.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/Support/Error.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mlir::attnedit {

/// What a decode function's signature says about its cache.
struct CacheLayout {
  struct Group {
    int64_t window = 0;     // 0 = full attention
    int64_t ringBlocks = 0; // table entries of a window group; 0 = grows
  };
  struct Pool {
    int64_t layer = 0;
    std::string part; // "k", "v" or "latent"
    int64_t width = 0;
    int64_t group = 0;
  };
  int64_t blockSize = 16;
  int64_t maxChunk = 64;
  std::vector<Group> groups;
  std::vector<Pool> pools;

  /// Reads the `attnedit.block_table` / `attnedit.kv_cache` argument
  /// attributes of a function built by --attnedit-build-decode.
  static llvm::Expected<CacheLayout> of(func::FuncOp func);
  /// Bytes one block of `group` holds over all its layers' pools (f32).
  int64_t bytesPerBlock(int64_t group) const;
};

class KvCache {
public:
  /// `maxBlocks` caps each group's pool (0 = grow as needed).
  explicit KvCache(CacheLayout layout, int64_t maxBlocks = 0);

  /// A new, empty sequence.
  int64_t open();
  /// Frees the sequence's blocks.
  void close(int64_t seq);
  /// Tokens the sequence holds (the next position).
  int64_t length(int64_t seq) const;
  /// Gives positions [length, newLength) of `seq` slots and makes newLength
  /// its length. A window group may take at most max_chunk new tokens at
  /// once (its ring holds the window plus one chunk).
  llvm::Error extend(int64_t seq, int64_t newLength);

  /// The block tables of `seqs`, one [S, M] i32 tensor per group (unused
  /// entries -1), in the function's argument order.
  std::vector<Tensor> tables(llvm::ArrayRef<int64_t> seqs) const;
  /// The pools, in the function's argument order; calls update them in place.
  std::vector<Tensor> pools() const;

  const CacheLayout &layout() const { return cacheLayout; }
  /// The cap on each group's blocks (0: none).
  int64_t blockCap() const { return maxBlocks; }
  /// The blocks of `group` a sequence of `length` tokens holds at most.
  int64_t blocksFor(int64_t group, int64_t length) const;
  int64_t blocksInUse(int64_t group) const;
  int64_t blocksInUse() const;
  /// Bytes the sequences' blocks hold: blocks in use x bytes per block.
  int64_t bytesInUse() const;
  /// Bytes the pools hold (in use or free).
  int64_t bytesAllocated() const;
  int64_t peakBytesInUse() const { return peakBytes; }
  /// Starts the peak again from the bytes in use now.
  void resetPeak() { peakBytes = bytesInUse(); }
  size_t openSequences() const { return sequences.size(); }

private:
  struct Sequence {
    int64_t length = 0;
    std::vector<std::vector<int32_t>> tables; // per group
  };
  llvm::Expected<int32_t> allocate(int64_t group);
  void grow(int64_t group, int64_t blocks);

  CacheLayout cacheLayout;
  int64_t maxBlocks;
  std::vector<int64_t> capacity;                    // per group, in blocks
  std::vector<std::vector<int32_t>> freeBlocks;     // per group
  std::vector<std::shared_ptr<std::vector<float>>> storage; // per pool
  std::map<int64_t, Sequence> sequences;
  int64_t nextId = 0;
  int64_t peakBytes = 0;
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_INFERENCE_KVCACHE_H
