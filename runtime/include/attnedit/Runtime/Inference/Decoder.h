//===- Decoder.h - prefill and decode over a paged KV cache ----*- C++ -*-===//
//
// Runs a model's @prefill and @decode (built from its @forward by
// --attnedit-raise-attention and --attnedit-build-decode) against a KvCache:
// a prompt costs one pass over its tokens, each new token one pass over one
// token per sequence, instead of recomputing the whole prefix.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_RUNTIME_INFERENCE_DECODER_H
#define ATTNEDIT_RUNTIME_INFERENCE_DECODER_H

#include "attnedit/Runtime/Execution/Model.h"
#include "attnedit/Runtime/Inference/KvCache.h"

namespace mlir::attnedit {

struct DecoderOptions {
  int64_t blockSize = 16;
  int64_t maxChunk = 64;  // tokens per @prefill call
  int64_t maxBlocks = 0;  // per cache group; 0 = grow as needed
};

class Decoder {
public:
  /// Builds the decode functions from `model`'s @forward; they run on the
  /// model's executor.
  static llvm::Expected<std::unique_ptr<Decoder>> create(Model &model,
                                                         DecoderOptions options = {});
  /// The same for a module without a Model (a student in training): its
  /// functions run on `executor`, their parameters resolved in `parameters`;
  /// model() is then not available.
  static llvm::Expected<std::unique_ptr<Decoder>> create(ModuleOp module, Executor &executor,
                                                         ParameterStore &parameters,
                                                         DecoderOptions options = {});

  /// Appends `tokens` to sequence `seq` (in chunks of max_chunk) and returns
  /// their logits [T, vocab].
  llvm::Expected<Tensor> prefill(int64_t seq, llvm::ArrayRef<int32_t> tokens);
  /// Appends one token to each of `seqs`; returns their logits [B, vocab].
  llvm::Expected<Tensor> decode(llvm::ArrayRef<int64_t> seqs, llvm::ArrayRef<int32_t> tokens);

  /// Runs @prefill and @decode once on a scratch sequence of two tokens, on
  /// a cache with no open sequence, and returns the seconds it took: a first
  /// call's costs (its result blocks, their pages) would otherwise land in
  /// the first request's latency. Compiling them (or loading them from the
  /// disk cache) is done by create, both side by side. The cache is left as
  /// it was found, its peak included.
  llvm::Expected<double> warmUp();

  KvCache &cache() { return kv; }
  Model &model() {
    assert(owner && "a Decoder created from a module has no Model");
    return *owner;
  }
  ModuleOp module() { return *decodeModule; }

private:
  Decoder(Executor &executor, ParameterStore &parameters, OwningOpRef<ModuleOp> module,
          CacheLayout layout, int64_t maxBlocks);
  llvm::Expected<Tensor> call(func::FuncOp func, llvm::ArrayRef<int64_t> seqs,
                              llvm::ArrayRef<int32_t> tokens,
                              llvm::ArrayRef<int32_t> positions);

  Model *owner = nullptr;
  Executor &executor;
  ParameterStore &parameters;
  OwningOpRef<ModuleOp> decodeModule;
  func::FuncOp prefillFunc, decodeFunc;
  KvCache kv;
};

} // namespace mlir::attnedit

#endif // ATTNEDIT_RUNTIME_INFERENCE_DECODER_H
