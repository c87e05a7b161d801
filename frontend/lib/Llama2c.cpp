//===- Llama2c.cpp - llama2.c legacy checkpoints ---------------------------===//
//
// Karpathy's llama2.c "version 0" export: 7 int32 (dim, hidden_dim, n_layers,
// n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means a
// separate classifier follows the weights), then f32 tensors in run.c's fixed
// order, each layer-stacked. Semantics follow run.c: RMSNorm eps 1e-5, RoPE on
// adjacent pairs with theta 10000, BOS = 1 ends generation.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/InputFile.h"
#include "attnedit/Frontend/ModelConfig.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/CheckedArithmetic.h"

#include <cstring>
#include <optional>

using namespace mlir;
using namespace mlir::attnedit;

llvm::Expected<Llama2cCheckpoint> attnedit::openLlama2c(llvm::StringRef path) {
  auto fail = [&](const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: %s",
                                   path.str().c_str(), msg.str().c_str());
  };
  auto bufferOrErr = readInputFile(path, /*isText=*/false, /*requiresNullTerminator=*/false);
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
  for (int i = 0; i < 7; ++i) {
    int64_t max = i == 2 ? kMaxLayers : kMaxConfigSize;
    if (header[i] == 0 || (header[i] < 0 && i != 5) || std::abs((int64_t)header[i]) > max)
      return fail(llvm::formatv("header field {0} = {1} is out of range (1 to {2})", names[i],
                                header[i], max));
  }
  int64_t dim = header[0], hidden = header[1], layers = header[2], heads = header[3],
          kvHeads = header[4], vocab = std::abs((int64_t)header[5]), seqLen = header[6];
  bool shared = header[5] > 0;
  if (dim % heads != 0 || heads % kvHeads != 0 || (dim / heads) % 2 != 0)
    return fail(llvm::formatv("inconsistent header: dim {0}, n_heads {1}, n_kv_heads {2} "
                              "(need dim % n_heads == 0, even head size, n_heads % n_kv_heads "
                              "== 0)",
                              dim, heads, kvHeads));
  int64_t headSize = dim / heads, kvDim = kvHeads * headSize;

  // run.c's tensor order: (name, shape, one per layer?).
  struct Entry {
    const char *pattern;
    llvm::SmallVector<int64_t, 4> shape;
    bool perLayer;
  };
  std::vector<Entry> order = {
      {"model.embed_tokens.weight", {vocab, dim}, false},
      {"model.layers.{0}.input_layernorm.weight", {dim}, true},
      {"model.layers.{0}.self_attn.q_proj.weight", {dim, dim}, true},
      {"model.layers.{0}.self_attn.k_proj.weight", {kvDim, dim}, true},
      {"model.layers.{0}.self_attn.v_proj.weight", {kvDim, dim}, true},
      {"model.layers.{0}.self_attn.o_proj.weight", {dim, dim}, true},
      {"model.layers.{0}.post_attention_layernorm.weight", {dim}, true},
      {"model.layers.{0}.mlp.gate_proj.weight", {hidden, dim}, true},
      {"model.layers.{0}.mlp.down_proj.weight", {dim, hidden}, true},
      {"model.layers.{0}.mlp.up_proj.weight", {hidden, dim}, true},
      {"model.norm.weight", {dim}, false},
      {nullptr, {seqLen, headSize}, false}, // freq_cis_real, _imag [seq_len, head/2]: unused
  };
  if (!shared)
    order.push_back({"lm_head.weight", {vocab, dim}, false});

  // The size the header implies, overflow-checked, before anything is
  // allocated: a crafted header must not wrap to the file size or make us
  // build millions of entries.
  std::optional<uint64_t> expected = 28;
  for (const Entry &e : order) {
    std::optional<uint64_t> bytes = uint64_t(4);
    for (int64_t d : e.shape)
      bytes = bytes ? llvm::checkedMulUnsigned(*bytes, (uint64_t)d) : std::nullopt;
    if (bytes && e.perLayer)
      bytes = llvm::checkedMulUnsigned(*bytes, (uint64_t)layers);
    expected = bytes && expected ? llvm::checkedAddUnsigned(*expected, *bytes) : std::nullopt;
  }
  if (!expected)
    return fail(llvm::formatv("the header (dim {0}, hidden_dim {1}, n_layers {2}, vocab_size "
                              "{3}) implies more than 2^64 bytes; the file has {4}",
                              dim, hidden, layers, vocab, fileSize));
  if (fileSize != *expected)
    return fail(llvm::formatv("{0}: the header implies {1} bytes but the file has {2}",
                              fileSize < *expected ? "truncated" : "size mismatch", *expected,
                              fileSize));

  std::vector<TensorInfo> tensors;
  uint64_t offset = 28;
  for (const Entry &e : order) {
    uint64_t bytes = 4;
    for (int64_t d : e.shape)
      bytes *= d;
    if (!e.pattern) {
      offset += bytes;
      continue;
    }
    for (int64_t l = 0; l < (e.perLayer ? layers : 1); ++l) {
      tensors.push_back({llvm::formatv(e.pattern, l).str(), DType::F32,
                         e.shape, offset, bytes});
      offset += bytes;
    }
  }

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
