//===- Decoder.cpp - prefill and decode over a paged KV cache --------------===//

#include "attnedit/Runtime/Inference/Decoder.h"
#include "attnedit/Frontend/ModelConfig.h"
#include "attnedit/Passes/Passes.h"
#include "attnedit/Runtime/Training/Distiller.h"

#include "llvm/Support/FormatVariadic.h"

#include <spdlog/spdlog.h>

#include <chrono>

using namespace mlir;
using namespace mlir::attnedit;

static llvm::Error fail(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

Decoder::Decoder(Executor &executor, ParameterStore &parameters, OwningOpRef<ModuleOp> module,
                 CacheLayout layout, int64_t maxBlocks)
    : executor(executor), parameters(parameters), decodeModule(std::move(module)),
      kv(std::move(layout), maxBlocks) {
  prefillFunc = decodeModule->lookupSymbol<func::FuncOp>("prefill");
  decodeFunc = decodeModule->lookupSymbol<func::FuncOp>("decode");
}

llvm::Expected<std::unique_ptr<Decoder>> Decoder::create(Model &model, DecoderOptions options) {
  auto decoder = create(model.module(), model.executor(), model.parameterStore(), options);
  if (decoder)
    (*decoder)->owner = &model;
  return decoder;
}

llvm::Expected<std::unique_ptr<Decoder>> Decoder::create(ModuleOp module, Executor &executor,
                                                         ParameterStore &parameters,
                                                         DecoderOptions options) {
  // A block of 2^24 tokens failed to allocate (an abort): past a few
  // thousand tokens a block only wastes the memory paging saves.
  constexpr int64_t kMaxBlockSize = 4096;
  if (options.blockSize < 1 || options.blockSize > kMaxBlockSize)
    return fail(llvm::formatv("--block-size must be in [1, {0}], not {1}", kMaxBlockSize,
                              options.blockSize));
  if (options.maxChunk < 1 || options.maxChunk > kMaxConfigSize)
    return fail(llvm::formatv("--max-chunk must be in [1, {0}], not {1}", kMaxConfigSize,
                              options.maxChunk));
  if (options.maxBlocks < 0)
    return fail(llvm::formatv("--kv-blocks must be >= 0, not {0}", options.maxBlocks));
  OwningOpRef<ModuleOp> copy(cast<ModuleOp>(module->clone()));
  // A module that already has decode functions (built ahead of time) keeps
  // them; anything else gets them from @forward here.
  if (!copy->lookupSymbol("decode")) {
    std::string pipeline = llvm::formatv(
        "attnedit-raise-attention,attnedit-build-decode{{block-size={0} max-chunk={1}}",
        options.blockSize, options.maxChunk);
    if (llvm::Error e = runPipeline(*copy, pipeline))
      return std::move(e);
  }
  auto decode = copy->lookupSymbol<func::FuncOp>("decode");
  auto prefill = copy->lookupSymbol<func::FuncOp>("prefill");
  if (!decode || !prefill)
    return fail("the module has @decode but no @prefill");
  for (func::FuncOp f : {prefill, decode})
    if (auto why = whyNotOneBlock(f))
      return fail(*why);
  auto layout = CacheLayout::of(decode);
  if (!layout)
    return layout.takeError();
  std::unique_ptr<Decoder> decoder(new Decoder(executor, parameters, std::move(copy),
                                               std::move(*layout), options.maxBlocks));
  // Both run from the first request on: compiled now, side by side.
  executor.prepare({decoder->prefillFunc, decoder->decodeFunc});
  return decoder;
}

llvm::Expected<Tensor> Decoder::call(func::FuncOp func, llvm::ArrayRef<int64_t> seqs,
                                     llvm::ArrayRef<int32_t> tokens,
                                     llvm::ArrayRef<int32_t> positions) {
  std::vector<Tensor> args = {Tensor::ints(tokens.vec()), Tensor::ints(positions.vec())};
  for (Tensor &t : kv.tables(seqs))
    args.push_back(std::move(t));
  for (Tensor &t : kv.pools())
    args.push_back(std::move(t));
  auto results = executor.run(func, args, parameters);
  if (!results)
    return results.takeError();
  return results->front();
}

llvm::Expected<Tensor> Decoder::prefill(int64_t seq, llvm::ArrayRef<int32_t> tokens) {
  if (tokens.empty())
    return fail("prefill: no tokens");
  int64_t chunk = kv.layout().maxChunk;
  std::vector<Tensor> parts;
  for (size_t begin = 0; begin < tokens.size(); begin += chunk) {
    llvm::ArrayRef<int32_t> part = tokens.slice(begin, std::min<size_t>(chunk, tokens.size() - begin));
    int64_t start = kv.length(seq);
    if (llvm::Error e = kv.extend(seq, start + part.size()))
      return std::move(e);
    std::vector<int32_t> positions(part.size());
    for (size_t i = 0; i < part.size(); ++i)
      positions[i] = (int32_t)(start + i);
    auto logits = call(prefillFunc, {seq}, part, positions);
    if (!logits)
      return logits.takeError();
    parts.push_back(std::move(*logits));
  }
  if (parts.size() == 1)
    return parts.front();
  int64_t vocab = parts.front().dim(1);
  Tensor all = Tensor::zeros({(int64_t)tokens.size(), vocab});
  float *out = all.mutableData();
  for (const Tensor &p : parts)
    out = std::copy_n(p.data(), p.numel(), out);
  return all;
}

llvm::Expected<Tensor> Decoder::decode(llvm::ArrayRef<int64_t> seqs,
                                       llvm::ArrayRef<int32_t> tokens) {
  if (seqs.empty() || seqs.size() != tokens.size())
    return fail("decode: one token per sequence");
  std::vector<int32_t> positions;
  for (int64_t seq : seqs) {
    positions.push_back((int32_t)kv.length(seq));
    if (llvm::Error e = kv.extend(seq, kv.length(seq) + 1))
      return std::move(e);
  }
  return call(decodeFunc, seqs, tokens, positions);
}

llvm::Expected<double> Decoder::warmUp() {
  if (kv.openSequences() != 0)
    return fail("warm-up: the KV cache holds sequences");
  auto start = std::chrono::steady_clock::now();
  int64_t seq = kv.open();
  auto prefilled = prefill(seq, {0});
  llvm::Error e = prefilled ? decode({seq}, {0}).takeError() : prefilled.takeError();
  kv.close(seq);
  kv.resetPeak();
  if (e)
    return std::move(e);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
