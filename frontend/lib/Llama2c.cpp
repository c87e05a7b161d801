//===- Llama2c.cpp - llama2.c legacy checkpoints ---------------------------===//
//
// Karpathy's llama2.c "version 0" export: 7 int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means a
// separate classifier follows the weights), then f32 tensors in run.c's fixed
// order, each layer-stacked. Semantics follow run.c: RMSNorm eps 1e-5, RoPE on
// adjacent pairs with theta 10000, BOS = 1 ends generation.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/ModelConfig.h"

#include "llvm/Support/FormatVariadic.h"

#include <cstring>

using namespace mlir;
using namespace mlir::attnedit;

llvm::Expected<Llama2cCheckpoint> attnedit::openLlama2c(llvm::StringRef path) {
  auto fail = [&](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: %s",
                                   path.str().c_str(), msg.str().c_str());
  };
  auto bufferOrErr = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                                 /*RequiresNullTerminator=*/false);
  if (!bufferOrErr)
    return fail("cannot open: " + bufferOrErr.getError().message());
  std::unique_ptr<llvm::MemoryBuffer> buffer = std::move(*bufferOrErr);
  uint64_t fileSize = buffer->getBufferSize();
  if (fileSize < 28)
    return fail(llvm::formatv("truncated: {0} bytes, the header alone is 28", fileSize));
  int32_t header[7];
  std::memcpy(header, buffer->getBufferStart(), sizeof(header));
  if (header[0] == 0x616b3432) // "ak42": llama2.c's versioned export
    return fail("llama2.c versioned export (magic 'ak42') is not supported; export with "
                "version 0 (legacy float32)");
  const char *names[] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads",
                         "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i)
    if (header[i] == 0 || (header[i] < 0 && i != 5) || std::abs((int64_t)header[i]) > (1 << 24))
      return fail(llvm::formatv("header field {0} = {1} is out of range", names[i], header[i]));
  int64_t dim = header[0], hidden = header[1], layers = header[2], heads = header[3],
          kvHeads = header[4], vocab = std::abs((int64_t)header[5]), seqLen = header[6];
  bool shared = header[5] > 0;
  if (dim % heads != 0 || heads % kvHeads != 0 || (dim / heads) % 2 != 0)
    return fail(llvm::formatv("inconsistent header: dim {0}, n_heads {1}, n_kv_heads {2} "
                              "(need dim % n_heads == 0, even head size, n_heads % n_kv_heads "
                              "== 0)",
                              dim, heads, kvHeads));
  int64_t headSize = dim / heads, kvDim = kvHeads * headSize;

  std::vector<TensorInfo> tensors;
  uint64_t offset = 28;
  // Appends one tensor per layer (or one tensor when `perLayer` is false).
  auto add = [&](llvm::StringRef pattern, llvm::ArrayRef<int64_t> shape, bool perLayer) {
    int64_t elements = 1;
    for (int64_t d : shape)
      elements *= d;
    for (int64_t l = 0; l < (perLayer ? layers : 1); ++l) {
      TensorInfo info{llvm::formatv(pattern.data(), l).str(), DType::F32,
                      llvm::SmallVector<int64_t, 4>(shape), offset, (uint64_t)elements * 4};
      offset += info.size;
      tensors.push_back(std::move(info));
    }
  };
  add("model.embed_tokens.weight", {vocab, dim}, false);
  add("model.layers.{0}.input_layernorm.weight", {dim}, true);
  add("model.layers.{0}.self_attn.q_proj.weight", {dim, dim}, true);
  add("model.layers.{0}.self_attn.k_proj.weight", {kvDim, dim}, true);
  add("model.layers.{0}.self_attn.v_proj.weight", {kvDim, dim}, true);
  add("model.layers.{0}.self_attn.o_proj.weight", {dim, dim}, true);
  add("model.layers.{0}.post_attention_layernorm.weight", {dim}, true);
  add("model.layers.{0}.mlp.gate_proj.weight", {hidden, dim}, true);
  add("model.layers.{0}.mlp.down_proj.weight", {dim, hidden}, true);
  add("model.layers.{0}.mlp.up_proj.weight", {hidden, dim}, true);
  add("model.norm.weight", {dim}, false);
  offset += (uint64_t)seqLen * headSize * 4; // freq_cis_real and _imag: unused by run.c
  if (!shared)
    add("lm_head.weight", {vocab, dim}, false);
  if (fileSize != offset)
    return fail(llvm::formatv("{0}: the header implies {1} bytes but the file has {2}",
                              fileSize < offset ? "truncated" : "size mismatch", offset,
                              fileSize));

  Llama2cCheckpoint checkpoint;
  ModelConfig &c = checkpoint.config;
  c.architecture = "llama2.c";
  c.hiddenSize = dim;
  c.intermediateSize = hidden;
  c.numLayers = layers;
  c.numHeads = heads;
  c.numKvHeads = kvHeads;
  c.headDim = headSize;
  c.vocabSize = vocab;
  c.maxPositions = seqLen;
  c.rmsNormEps = 1e-5;
  c.ropeTheta = 10000.0;
  c.tieWordEmbeddings = shared;
  c.interleavedRope = true;
  c.bosTokenId = 1;
  c.stopTokenIds = {1}; // run.c stops when the model predicts BOS
  checkpoint.weights =
      std::make_unique<WeightFile>(path.str(), std::move(buffer), std::move(tensors));
  return checkpoint;
}
