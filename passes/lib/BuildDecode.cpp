//===- BuildDecode.cpp - --attnedit-build-decode ---------------------------===//
//
// Clones @forward into @prefill and @decode, replacing each composite
// attention op by its projections, the cache writes of what decoding keeps
// per token and a paged attention over the cache. The two functions have the
// same body: they differ only in their block tables' shapes (one sequence vs
// one row per sequence), which is what the cache ops key on.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Frontend/ModelConfig.h"
#include "attnedit/IR/AttnEditOps.h"
#include "attnedit/IR/PrimitiveBuilder.h"
#include "attnedit/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FormatVariadic.h"

namespace mlir::attnedit {
#define GEN_PASS_DEF_BUILDDECODEPASS
#include "attnedit/Passes/Passes.h.inc"
} // namespace mlir::attnedit

using namespace mlir;
using namespace mlir::attnedit;

namespace {

constexpr int64_t kDyn = ShapedType::kDynamic;

/// One cached tensor of one layer: what the function takes and returns.
struct CachePool {
  int64_t layer;
  StringRef part; // "k", "v" or "latent"
  int64_t width;
  int64_t table;
};

struct BuildDecodePass : attnedit::impl::BuildDecodePassBase<BuildDecodePass> {
  using Base::Base;
  void runOnOperation() override;

private:
  LogicalResult fail(const Twine &msg) {
    getOperation().emitError() << "attnedit-build-decode: " << msg;
    return failure();
  }
  /// The ring size of a window's block table (0 for full attention).
  int64_t ringBlocks(int64_t window) const {
    if (window == 0)
      return 0;
    int64_t span = window + maxChunk - 2; // positions in flight beyond the first
    return (span + blockSize - 1) / blockSize + 1;
  }
  LogicalResult build(func::FuncOp forward, StringRef name, bool oneSequence);

  /// Per attention op: its table and its first pool index.
  SmallVector<int64_t> windows;          // table index -> window
  SmallVector<CachePool> pools;          // in argument order
  DenseMap<Operation *, int64_t> firstPool;
};

} // namespace

/// Writes `rows` into the pool argument `index` and returns the written pool.
static Value write(PrimitiveBuilder &pb, SmallVectorImpl<Value> &poolValues, int64_t index, Value rows,
                   Value table, Value positions, int64_t blockSize, bool ring) {
  OpBuilder &b = pb.b;
  Value pool = poolValues[index];
  poolValues[index] = b.create<CacheWriteOp>(pb.loc, pool.getType(), pool, rows, table,
                                             positions, b.getI64IntegerAttr(blockSize),
                                             ring ? b.getUnitAttr() : nullptr);
  return poolValues[index];
}

/// attention / gate_swa: projections, K and V written per KV head, paged
/// attention, gate, output projection.
template <typename AttentionLike>
static Value expandAttention(AttentionLike op, IRMapping &map, PrimitiveBuilder &pb,
                             SmallVectorImpl<Value> &poolValues, int64_t firstPool, Value table,
                             int64_t blockSize, Value gateWeight, Value sinks) {
  OpBuilder &b = pb.b;
  auto m = [&](Value v) { return v ? map.lookup(v) : Value(); };
  int64_t h = op.getNumHeads(), hkv = op.getNumKvHeads(), d = op.getHeadDim();
  int64_t window = op.getWindow();
  Value x = m(op.getInput()), positions = m(op.getPositions());
  auto bias = op.getQkvBias();
  auto biasAt = [&](unsigned i) { return bias.empty() ? Value() : m(bias[i]); };

  Value q = pb.reshape(pb.linear(x, m(op.getQWeight()), biasAt(0)), {kDyn, h, d});
  Value k = pb.reshape(pb.linear(x, m(op.getKWeight()), biasAt(1)), {kDyn, hkv, d});
  Value v = pb.linear(x, m(op.getVWeight()), biasAt(2));
  if (!op.getQkNorm().empty()) {
    q = b.create<RmsNormOp>(pb.loc, q.getType(), q, m(op.getQkNorm()[0]), op.getNormEpsAttr());
    k = b.create<RmsNormOp>(pb.loc, k.getType(), k, m(op.getQkNorm()[1]), op.getNormEpsAttr());
  }
  auto rope = [&](Value y) -> Value {
    return b.create<RopeOp>(pb.loc, y.getType(), y, positions, op.getRopeThetaAttr(),
                            op.getRotaryDimAttr(), op.getRopeStyleAttr(),
                            op.getLlama3ScalingAttr(), /*inverse=*/nullptr);
  };
  q = rope(q);
  k = pb.reshape(rope(k), {kDyn, hkv * d});
  bool ring = window > 0;
  Value kPool = write(pb, poolValues, firstPool, k, table, positions, blockSize, ring);
  Value vPool = write(pb, poolValues, firstPool + 1, v, table, positions, blockSize, ring);
  Value heads = b.create<PagedAttentionOp>(
      pb.loc, pb.f32({kDyn, h, d}), q, kPool, vPool, table, positions, sinks,
      b.getI64IntegerAttr(hkv), b.getI64IntegerAttr(d), op.getScaleAttr(),
      b.getI64IntegerAttr(window), b.getI64IntegerAttr(blockSize),
      ring ? b.getUnitAttr() : nullptr);
  if (gateWeight) {
    Value gate = b.create<SigmoidOp>(pb.loc, pb.linear(x, gateWeight));
    gate = pb.reshape(gate, {kDyn, h, pb.shape(gate)[1] / h});
    if (pb.shape(gate)[2] == 1)
      gate = b.create<BroadcastOp>(pb.loc, pb.f32({kDyn, h, d}), gate);
    heads = b.create<MulOp>(pb.loc, heads, gate);
  }
  return pb.linear(pb.reshape(heads, {kDyn, h * d}), m(op.getOWeight()));
}

/// mla: [c_kv; k_pe] written once per token, attended in the absorbed form.
static Value expandMla(MlaOp op, IRMapping &map, PrimitiveBuilder &pb, SmallVectorImpl<Value> &poolValues,
                       int64_t pool, Value table, int64_t blockSize) {
  OpBuilder &b = pb.b;
  auto m = [&](Value v) { return v ? map.lookup(v) : Value(); };
  int64_t h = op.getNumHeads(), rank = op.getKvLoraRank();
  int64_t n = op.getQkNopeHeadDim(), r = op.getQkRopeHeadDim(), dv = op.getVHeadDim();
  Value x = m(op.getInput()), positions = m(op.getPositions());

  Value q = op.getQProj()
                ? pb.linear(x, m(op.getQProj()))
                : pb.linear(b.create<RmsNormOp>(pb.loc, pb.f32({kDyn, (int64_t)op.getQLoraRank()}),
                                                pb.linear(x, m(op.getQAProj())),
                                                m(op.getQALayernorm()), op.getNormEpsAttr()),
                            m(op.getQBProj()));
  q = pb.reshape(q, {kDyn, h, n + r});
  Value latent = pb.linear(x, m(op.getKvAProj()));
  Value c = b.create<RmsNormOp>(pb.loc, pb.f32({kDyn, rank}), pb.slice(latent, 1, 0, rank),
                                m(op.getKvALayernorm()), op.getNormEpsAttr());
  auto rope = [&](Value y) -> Value {
    return b.create<RopeOp>(pb.loc, y.getType(), y, positions, op.getRopeThetaAttr(),
                            b.getI64IntegerAttr(r), op.getRopeStyleAttr(),
                            op.getLlama3ScalingAttr(), /*inverse=*/nullptr);
  };
  Value kPe = rope(pb.reshape(pb.slice(latent, 1, rank, r), {kDyn, 1, r}));
  Value row = pb.concat({c, pb.reshape(kPe, {kDyn, r})}, 1);
  Value cache = write(pb, poolValues, pool, row, table, positions, blockSize, /*ring=*/false);

  // W_UK [H, n, rank] and W_UV [H, dv, rank]: each head's rows of kv_b_proj.
  Value kvB = pb.reshape(m(op.getKvBProj()), {h, n + dv, rank});
  Value wUk = pb.slice(kvB, 1, 0, n);
  Value wUvT = pb.transpose(pb.slice(kvB, 1, n, dv), {0, 2, 1}); // [H, rank, dv]
  Value qLatent = pb.transpose(
      pb.matmul(pb.transpose(pb.slice(q, 2, 0, n), {1, 0, 2}), wUk), {1, 0, 2});
  Value queries = pb.concat({qLatent, rope(pb.slice(q, 2, n, r))}, 2); // [N, H, rank + r]
  Value latentOut = b.create<PagedAttentionOp>(
      pb.loc, pb.f32({kDyn, h, rank}), queries, cache, cache, table, positions, Value(),
      b.getI64IntegerAttr(1), b.getI64IntegerAttr(rank), op.getScaleAttr(),
      b.getI64IntegerAttr(0), b.getI64IntegerAttr(blockSize), nullptr);
  Value heads = pb.transpose(pb.matmul(pb.transpose(latentOut, {1, 0, 2}), wUvT), {1, 0, 2});
  return pb.linear(pb.reshape(heads, {kDyn, h * dv}), m(op.getOProj()));
}

LogicalResult BuildDecodePass::build(func::FuncOp forward, StringRef name, bool oneSequence) {
  ModuleOp module = getOperation();
  OpBuilder b(module.getContext());
  b.setInsertionPointToEnd(module.getBody());
  Location loc = forward.getLoc();

  SmallVector<Type> args(forward.getArgumentTypes());
  auto tableType =
      RankedTensorType::get({oneSequence ? 1 : kDyn, kDyn}, b.getIntegerType(32));
  args.append(windows.size(), tableType);
  SmallVector<Type> results(forward.getResultTypes());
  for (const CachePool &p : pools) {
    args.push_back(RankedTensorType::get({kDyn, p.width}, b.getF32Type()));
    results.push_back(args.back());
  }
  auto func = b.create<func::FuncOp>(loc, name, b.getFunctionType(args, results));
  func.setArgAttr(0, "attnedit.name", b.getStringAttr("tokens"));
  func.setArgAttr(1, "attnedit.name", b.getStringAttr("positions"));
  for (auto [i, window] : llvm::enumerate(windows))
    func.setArgAttr(2 + i, "attnedit.block_table",
                    b.getDictionaryAttr({b.getNamedAttr("window", b.getI64IntegerAttr(window)),
                                         b.getNamedAttr("ring_blocks",
                                                        b.getI64IntegerAttr(ringBlocks(window)))}));
  int64_t poolArg0 = 2 + windows.size();
  for (auto [i, p] : llvm::enumerate(pools))
    func.setArgAttr(poolArg0 + i, "attnedit.kv_cache",
                    b.getDictionaryAttr({b.getNamedAttr("layer", b.getI64IntegerAttr(p.layer)),
                                         b.getNamedAttr("part", b.getStringAttr(p.part)),
                                         b.getNamedAttr("table", b.getI64IntegerAttr(p.table))}));
  func->setAttr("attnedit.kv_block_size", b.getI64IntegerAttr(blockSize));
  func->setAttr("attnedit.max_chunk", b.getI64IntegerAttr(maxChunk));

  Block *entry = func.addEntryBlock();
  b.setInsertionPointToStart(entry);
  SmallVector<Value> poolValues;
  for (size_t i = 0; i < pools.size(); ++i)
    poolValues.push_back(entry->getArgument(poolArg0 + i));

  IRMapping map;
  Block &body = forward.getBody().front();
  map.map(body.getArguments(), entry->getArguments().take_front(body.getNumArguments()));
  for (Operation &op : body) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      SmallVector<Value> values;
      for (Value v : ret.getOperands())
        values.push_back(map.lookup(v));
      values.append(poolValues);
      b.create<func::ReturnOp>(ret.getLoc(), values);
      break;
    }
    auto it = firstPool.find(&op);
    if (it == firstPool.end()) {
      b.clone(op, map);
      continue;
    }
    PrimitiveBuilder pb(b, op.getLoc());
    int64_t first = it->second;
    Value table = entry->getArgument(2 + pools[first].table);
    Value out =
        llvm::TypeSwitch<Operation *, Value>(&op)
            .Case([&](AttentionOp a) {
              return expandAttention(a, map, pb, poolValues, first, table, blockSize, Value(),
                                     Value());
            })
            .Case([&](GateSwaOp g) {
              auto m = [&](Value v) { return v ? map.lookup(v) : Value(); };
              return expandAttention(g, map, pb, poolValues, first, table, blockSize,
                                     g.getGate() == GateKind::None ? Value()
                                                                   : m(g.getGateWeight()),
                                     m(g.getSinks()));
            })
            .Case([&](MlaOp mla) {
              return expandMla(mla, map, pb, poolValues, first, table, blockSize);
            });
    map.map(op.getResult(0), out);
  }
  return success();
}

void BuildDecodePass::runOnOperation() {
  ModuleOp module = getOperation();
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward) {
    (void)fail("the module has no func.func @forward");
    return signalPassFailure();
  }
  if (auto why = whyNotOneBlock(forward)) {
    (void)fail(*why);
    return signalPassFailure();
  }
  // A block of 2^40 tokens was accepted, and sized no cache anyone can hold.
  if (blockSize <= 0 || blockSize > kMaxConfigSize || maxChunk <= 0 ||
      maxChunk > kMaxConfigSize) {
    (void)fail(llvm::formatv("block-size and max-chunk must be in [1, {0}], got {1} and {2}",
                             kMaxConfigSize, (int64_t)blockSize, (int64_t)maxChunk)
                   .str());
    return signalPassFailure();
  }
  for (StringRef name : {"prefill", "decode"})
    if (module.lookupSymbol(name)) {
      (void)fail("the module already has a @" + name);
      return signalPassFailure();
    }
  if (forward.getNumArguments() != 2 || forward.getNumResults() != 1) {
    (void)fail("@forward must be (tokens, positions) -> logits");
    return signalPassFailure();
  }
  // A step takes a chunk of any length and decode one token: built from a
  // @forward of N tokens they kept N, and mixed its static sizes with their
  // own dynamic ones.
  if (auto tokens = dyn_cast<RankedTensorType>(forward.getArgument(0).getType());
      tokens && tokens.hasStaticShape()) {
    (void)fail(llvm::formatv("@forward takes exactly {0} tokens (--attnedit-static-tokens): "
                             "build the KV-cache steps from the module before fixing its "
                             "token count",
                             tokens.getDimSize(0))
                   .str());
    return signalPassFailure();
  }

  int64_t layer = 0;
  bool failed = false;
  forward.walk([&](Operation *op) {
    auto attention = dyn_cast<AttentionLikeOpInterface>(op);
    if (!attention)
      return;
    if (op->getBlock() != &forward.getBody().front()) {
      failed = true;
      (void)fail("attention op of layer " + Twine(layer) + " is not in @forward's body");
      return;
    }
    if (auto mla = dyn_cast<MlaOp>(op); mla && mla.getQkNopeHeadDim() == 0) {
      failed = true;
      (void)fail("layer " + Twine(layer) + ": MLA without nope dimensions has no absorbed form");
      return;
    }
    int64_t window = attention.getKvWindow();
    auto *found = llvm::find(windows, window);
    int64_t table = found - windows.begin();
    if (found == windows.end())
      windows.push_back(window);
    firstPool[op] = pools.size();
    if (auto mla = dyn_cast<MlaOp>(op)) {
      pools.push_back(
          {layer, "latent", (int64_t)(mla.getKvLoraRank() + mla.getQkRopeHeadDim()), table});
    } else {
      int64_t width = attention.getKvValuesPerToken() / 2;
      pools.push_back({layer, "k", width, table});
      pools.push_back({layer, "v", width, table});
    }
    ++layer;
  });
  if (failed)
    return signalPassFailure();
  if (pools.empty()) {
    (void)fail("@forward has no composite attention op; run --attnedit-raise-attention first");
    return signalPassFailure();
  }
  if (mlir::failed(build(forward, "prefill", /*oneSequence=*/true)) ||
      mlir::failed(build(forward, "decode", /*oneSequence=*/false)))
    return signalPassFailure();
}
