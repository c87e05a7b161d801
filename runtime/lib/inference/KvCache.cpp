//===- KvCache.cpp - a paged KV-cache block pool ---------------------------===//

#include "attnedit/Runtime/Inference/KvCache.h"

#include "mlir/IR/BuiltinAttributes.h"

#include <algorithm>

using namespace mlir;
using namespace mlir::attnedit;

static llvm::Error fail(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

llvm::Expected<CacheLayout> CacheLayout::of(func::FuncOp func) {
  CacheLayout layout;
  auto intAttr = [&](Attribute dict, StringRef name) -> std::optional<int64_t> {
    auto d = dyn_cast_or_null<DictionaryAttr>(dict);
    auto value = d ? d.getAs<IntegerAttr>(name) : IntegerAttr();
    if (!value)
      return std::nullopt;
    return value.getInt();
  };
  auto blockSize = func->getAttrOfType<IntegerAttr>("attnedit.kv_block_size");
  auto maxChunk = func->getAttrOfType<IntegerAttr>("attnedit.max_chunk");
  if (!blockSize || !maxChunk || blockSize.getInt() <= 0 || maxChunk.getInt() <= 0)
    return fail("@" + func.getSymName() +
                " has no attnedit.kv_block_size / attnedit.max_chunk (build it with "
                "--attnedit-build-decode)");
  layout.blockSize = blockSize.getInt();
  layout.maxChunk = maxChunk.getInt();
  for (unsigned i = 0; i < func.getNumArguments(); ++i) {
    if (Attribute table = func.getArgAttr(i, "attnedit.block_table")) {
      auto window = intAttr(table, "window"), ring = intAttr(table, "ring_blocks");
      if (!window || !ring || *window < 0 || *ring < 0 || (*window > 0) != (*ring > 0))
        return fail("@" + func.getSymName() + " argument " + llvm::Twine(i) +
                    ": bad attnedit.block_table");
      layout.groups.push_back({*window, *ring});
    } else if (Attribute cache = func.getArgAttr(i, "attnedit.kv_cache")) {
      auto layer = intAttr(cache, "layer"), group = intAttr(cache, "table");
      auto part = cast<DictionaryAttr>(cache).getAs<StringAttr>("part");
      auto type = dyn_cast<RankedTensorType>(func.getArgumentTypes()[i]);
      if (!layer || !group || !part || !type || type.getRank() != 2 || type.isDynamicDim(1))
        return fail("@" + func.getSymName() + " argument " + llvm::Twine(i) +
                    ": bad attnedit.kv_cache");
      layout.pools.push_back({*layer, part.getValue().str(), type.getDimSize(1), *group});
    }
  }
  for (const Pool &p : layout.pools)
    if (p.group < 0 || p.group >= (int64_t)layout.groups.size())
      return fail("@" + func.getSymName() + ": a cache of layer " + llvm::Twine(p.layer) +
                  " names table " + llvm::Twine(p.group) + " of " +
                  llvm::Twine(layout.groups.size()));
  return layout;
}

int64_t CacheLayout::bytesPerBlock(int64_t group) const {
  int64_t width = 0;
  for (const Pool &p : pools)
    if (p.group == group)
      width += p.width;
  return width * blockSize * (int64_t)sizeof(float);
}

KvCache::KvCache(CacheLayout layout, int64_t maxBlocks)
    : cacheLayout(std::move(layout)), maxBlocks(maxBlocks),
      capacity(cacheLayout.groups.size(), 0), freeBlocks(cacheLayout.groups.size()) {
  for (size_t i = 0; i < cacheLayout.pools.size(); ++i)
    storage.push_back(std::make_shared<std::vector<float>>());
}

int64_t KvCache::open() {
  Sequence seq;
  for (const CacheLayout::Group &g : cacheLayout.groups)
    seq.tables.emplace_back(g.ringBlocks, -1);
  sequences[nextId] = std::move(seq);
  return nextId++;
}

void KvCache::close(int64_t seq) {
  auto it = sequences.find(seq);
  if (it == sequences.end())
    return;
  for (size_t g = 0; g < it->second.tables.size(); ++g)
    for (int32_t block : it->second.tables[g])
      if (block >= 0)
        freeBlocks[g].push_back(block);
  sequences.erase(it);
}

int64_t KvCache::length(int64_t seq) const {
  auto it = sequences.find(seq);
  return it == sequences.end() ? 0 : it->second.length;
}

void KvCache::grow(int64_t group, int64_t blocks) {
  int64_t old = capacity[group];
  for (size_t i = 0; i < cacheLayout.pools.size(); ++i) {
    const CacheLayout::Pool &p = cacheLayout.pools[i];
    if (p.group != group)
      continue;
    // A new buffer rather than a resize: a tensor viewing the old one may
    // still be alive in a caller.
    auto bigger = std::make_shared<std::vector<float>>(blocks * cacheLayout.blockSize * p.width);
    std::copy(storage[i]->begin(), storage[i]->end(), bigger->begin());
    storage[i] = std::move(bigger);
  }
  // Hand out low ids first.
  for (int64_t b = blocks - 1; b >= old; --b)
    freeBlocks[group].push_back((int32_t)b);
  capacity[group] = blocks;
}

int64_t KvCache::blocksFor(int64_t group, int64_t length) const {
  int64_t blocks = (length + cacheLayout.blockSize - 1) / cacheLayout.blockSize;
  int64_t ring = cacheLayout.groups[group].ringBlocks;
  return ring > 0 ? std::min(blocks, ring) : blocks;
}

llvm::Expected<int32_t> KvCache::allocate(int64_t group) {
  if (freeBlocks[group].empty()) {
    int64_t want = std::max<int64_t>(16, capacity[group] * 2);
    if (maxBlocks > 0)
      want = std::min(want, maxBlocks);
    if (want <= capacity[group])
      return fail("the KV cache is full: all " + llvm::Twine(capacity[group]) + " blocks of " +
                  llvm::Twine(cacheLayout.blockSize) + " tokens are in use");
    grow(group, want);
  }
  int32_t block = freeBlocks[group].back();
  freeBlocks[group].pop_back();
  return block;
}

llvm::Error KvCache::extend(int64_t seq, int64_t newLength) {
  auto it = sequences.find(seq);
  if (it == sequences.end())
    return fail("sequence " + llvm::Twine(seq) + " is not open");
  Sequence &s = it->second;
  int64_t bs = cacheLayout.blockSize;
  if (newLength <= s.length)
    return llvm::Error::success();
  for (const CacheLayout::Group &g : cacheLayout.groups)
    if (g.ringBlocks > 0 && newLength - s.length > cacheLayout.maxChunk)
      return fail("a chunk of " + llvm::Twine(newLength - s.length) +
                  " tokens exceeds the decode functions' max_chunk of " +
                  llvm::Twine(cacheLayout.maxChunk));
  for (size_t g = 0; g < cacheLayout.groups.size(); ++g) {
    std::vector<int32_t> &table = s.tables[g];
    int64_t ring = cacheLayout.groups[g].ringBlocks;
    if (ring == 0) {
      while ((int64_t)table.size() * bs < newLength) {
        auto block = allocate(g);
        if (!block)
          return block.takeError();
        table.push_back(*block);
      }
      continue;
    }
    for (int64_t b = s.length / bs; b <= (newLength - 1) / bs; ++b) {
      int32_t &entry = table[b % ring];
      if (entry < 0) {
        auto block = allocate(g);
        if (!block)
          return block.takeError();
        entry = *block;
      }
    }
  }
  s.length = newLength;
  peakBytes = std::max(peakBytes, bytesInUse());
  return llvm::Error::success();
}

std::vector<Tensor> KvCache::tables(llvm::ArrayRef<int64_t> seqs) const {
  std::vector<Tensor> out;
  for (size_t g = 0; g < cacheLayout.groups.size(); ++g) {
    size_t width = 1;
    for (int64_t seq : seqs)
      width = std::max(width, sequences.at(seq).tables[g].size());
    std::vector<int32_t> values(seqs.size() * width, -1);
    for (size_t i = 0; i < seqs.size(); ++i) {
      const std::vector<int32_t> &table = sequences.at(seqs[i]).tables[g];
      std::copy(table.begin(), table.end(), values.begin() + i * width);
    }
    out.push_back(Tensor::ints(std::move(values)).reshaped({(int64_t)seqs.size(), (int64_t)width}));
  }
  return out;
}

std::vector<Tensor> KvCache::pools() const {
  std::vector<Tensor> out;
  for (size_t i = 0; i < cacheLayout.pools.size(); ++i) {
    const CacheLayout::Pool &p = cacheLayout.pools[i];
    out.push_back(Tensor::view({capacity[p.group] * cacheLayout.blockSize, p.width},
                               storage[i]->data(), storage[i]));
  }
  return out;
}

int64_t KvCache::blocksInUse(int64_t group) const {
  return capacity[group] - (int64_t)freeBlocks[group].size();
}

int64_t KvCache::blocksInUse() const {
  int64_t total = 0;
  for (size_t g = 0; g < capacity.size(); ++g)
    total += blocksInUse(g);
  return total;
}

int64_t KvCache::bytesInUse() const {
  int64_t total = 0;
  for (size_t g = 0; g < capacity.size(); ++g)
    total += blocksInUse(g) * cacheLayout.bytesPerBlock(g);
  return total;
}

int64_t KvCache::bytesAllocated() const {
  int64_t total = 0;
  for (size_t g = 0; g < capacity.size(); ++g)
    total += capacity[g] * cacheLayout.bytesPerBlock(g);
  return total;
}
