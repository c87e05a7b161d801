//===- CacheKernels.cpp - reference kernels of the paged KV-cache ops ------===//
//
// Attention reads the cache block by block in place: the keys of one block
// are `blockSize` consecutive pool rows, so each block is one strided GEMV
// (scores) and one transposed GEMV (weighted values), nothing is gathered.
// The softmax is attend()'s (AttentionKernels.cpp): float scores, max and
// sum in double, so a cached step matches @forward to rounding.
//
//===----------------------------------------------------------------------===//

#include "attnedit/Runtime/Inference/CacheKernels.h"

#include <cblas.h>

#include <cmath>
#include <limits>
#include <vector>

using namespace mlir;
using namespace mlir::attnedit;

static llvm::Error fail(const llvm::Twine &msg) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), msg);
}

namespace {

/// Slots of one block table row.
class SlotMap {
public:
  SlotMap(const Tensor &table, int64_t poolRows, kernels::PagedLayout layout)
      : table(table), poolRows(poolRows), layout(layout) {}

  /// The sequence of batch row `row` of `rows`: sequence 0 for a one-row
  /// table (a prompt chunk), else row i's own.
  llvm::Expected<int64_t> sequence(int64_t row, int64_t rows) const {
    int64_t sequences = table.dim(0);
    if (sequences == 1)
      return 0;
    if (sequences != rows)
      return fail("a block table of " + llvm::Twine(sequences) + " sequences for " +
                  llvm::Twine(rows) + " rows (want 1 or one per row)");
    return row;
  }

  /// The first slot of the block holding `position` of `seq`.
  llvm::Expected<int64_t> blockStart(int64_t seq, int64_t position) const {
    int64_t width = table.dim(1), block = position / layout.blockSize;
    int64_t entry = layout.ring ? block % std::max<int64_t>(width, 1) : block;
    if (position < 0 || entry >= width)
      return fail("position " + llvm::Twine(position) + " of sequence " + llvm::Twine(seq) +
                  " is past its block table of " + llvm::Twine(width) + " entries");
    int32_t id = table.intValues()[seq * width + entry];
    int64_t start = (int64_t)id * layout.blockSize;
    if (id < 0 || start + layout.blockSize > poolRows)
      return fail("position " + llvm::Twine(position) + " of sequence " + llvm::Twine(seq) +
                  " maps to block " + llvm::Twine(id) + ", outside the pool of " +
                  llvm::Twine(poolRows / layout.blockSize) + " blocks");
    return start;
  }

private:
  const Tensor &table;
  int64_t poolRows;
  kernels::PagedLayout layout;
};

llvm::Error checkOperands(const Tensor &pool, const Tensor &table, const Tensor &positions,
                          int64_t rows, kernels::PagedLayout layout) {
  if (!table.isInt() || table.rank() != 2 || !positions.isInt() || positions.dim(0) != rows)
    return fail("block table must be [S, M] i32 and positions one per row");
  if (layout.blockSize <= 0 || pool.dim(0) % layout.blockSize != 0)
    return fail("pool of " + llvm::Twine(pool.dim(0)) + " rows is not whole blocks of " +
                llvm::Twine(layout.blockSize));
  return llvm::Error::success();
}

} // namespace

llvm::Error kernels::checkSlots(const Tensor &table, const Tensor &positions, int64_t poolRows,
                                PagedLayout layout, int64_t window) {
  int64_t n = positions.rank() == 1 ? positions.dim(0) : -1;
  if (!table.isInt() || table.rank() != 2 || !positions.isInt() || n < 0)
    return fail("block table must be [S, M] i32 and positions one per row");
  if (layout.blockSize <= 0 || poolRows % layout.blockSize != 0)
    return fail("pool of " + llvm::Twine(poolRows) + " rows is not whole blocks of " +
                llvm::Twine(layout.blockSize));
  SlotMap slots(table, poolRows, layout);
  for (int64_t i = 0; i < n; ++i) {
    auto seq = slots.sequence(i, n);
    if (!seq)
      return seq.takeError();
    int64_t pos = positions.intValues()[i];
    if (auto last = slots.blockStart(*seq, pos); !last)
      return last.takeError();
    int64_t first = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
    for (int64_t b = first / layout.blockSize; b <= pos / layout.blockSize; ++b)
      if (auto start = slots.blockStart(*seq, std::max(first, b * layout.blockSize)); !start)
        return start.takeError();
  }
  return llvm::Error::success();
}

llvm::Expected<Tensor> kernels::cacheWrite(const Tensor &pool, const Tensor &rows,
                                           const Tensor &table, const Tensor &positions,
                                           PagedLayout layout) {
  int64_t n = rows.dim(0), width = pool.dim(1);
  if (llvm::Error e = checkOperands(pool, table, positions, n, layout))
    return std::move(e);
  if (rows.dim(1) != width)
    return fail("rows " + rows.shapeString() + " do not fit pool " + pool.shapeString());
  SlotMap slots(table, pool.dim(0), layout);
  // The pool operand is donated (its only use is this op): written in place.
  float *out = const_cast<float *>(pool.data());
  for (int64_t i = 0; i < n; ++i) {
    auto seq = slots.sequence(i, n);
    if (!seq)
      return seq.takeError();
    int64_t p = positions.intValues()[i];
    auto start = slots.blockStart(*seq, p);
    if (!start)
      return start.takeError();
    std::copy_n(rows.data() + i * width, width, out + (*start + p % layout.blockSize) * width);
  }
  return pool;
}

llvm::Expected<Tensor> kernels::pagedAttention(const Tensor &query, const Tensor &kPool,
                                               const Tensor &vPool, const Tensor &table,
                                               const Tensor &positions, const Tensor *sinks,
                                               const PagedAttentionConfig &c) {
  int64_t n = query.dim(0), h = query.dim(1), dqk = query.dim(2);
  int64_t hkv = c.kvHeads, dv = c.vDim, bs = c.layout.blockSize;
  int64_t kWidth = kPool.dim(1), vWidth = vPool.dim(1), vSegment = vWidth / hkv;
  if (llvm::Error e = checkOperands(kPool, table, positions, n, c.layout))
    return std::move(e);
  if (kWidth != hkv * dqk || vSegment < dv || kPool.dim(0) != vPool.dim(0) || h % hkv != 0)
    return fail("query " + query.shapeString() + " does not fit pools " + kPool.shapeString() +
                " and " + vPool.shapeString());
  SlotMap slots(table, kPool.dim(0), c.layout);
  Tensor out = Tensor::zeros({n, h, dv});
  std::vector<float> scores;
  std::vector<double> weights; // exp(score - max), computed once per score
  std::vector<int64_t> blockStarts;
  for (int64_t i = 0; i < n; ++i) {
    auto seq = slots.sequence(i, n);
    if (!seq)
      return seq.takeError();
    int64_t pos = positions.intValues()[i];
    int64_t first = c.window > 0 ? std::max<int64_t>(0, pos - c.window + 1) : 0;
    int64_t count = pos - first + 1;
    // Keys first..pos, block by block: block k covers [lo_k, hi_k).
    blockStarts.clear();
    for (int64_t b = first / bs; b <= pos / bs; ++b) {
      auto start = slots.blockStart(*seq, std::max(first, b * bs));
      if (!start)
        return start.takeError();
      blockStarts.push_back(*start);
    }
    scores.resize(count);
    weights.resize(count);
    for (int64_t head = 0; head < h; ++head) {
      int64_t g = head / (h / hkv);
      const float *q = query.data() + (i * h + head) * dqk;
      for (size_t k = 0; k < blockStarts.size(); ++k) {
        int64_t block = first / bs + k;
        int64_t lo = std::max(first, block * bs), hi = std::min(pos + 1, (block + 1) * bs);
        const float *keys = kPool.data() + (blockStarts[k] + lo % bs) * kWidth + g * dqk;
        cblas_sgemv(CblasRowMajor, CblasNoTrans, hi - lo, dqk, (float)c.scale, keys, kWidth, q,
                    1, 0.0f, scores.data() + (lo - first), 1);
      }
      double sink = sinks ? sinks->data()[head] : -std::numeric_limits<double>::infinity();
      double maxv = sink;
      for (float s : scores)
        maxv = std::max(maxv, (double)s);
      double sum = sinks ? std::exp(sink - maxv) : 0.0;
      for (int64_t j = 0; j < count; ++j)
        sum += weights[j] = std::exp(scores[j] - maxv);
      for (int64_t j = 0; j < count; ++j)
        scores[j] = (float)(weights[j] / sum);
      float *o = out.mutableData() + (i * h + head) * dv;
      for (size_t k = 0; k < blockStarts.size(); ++k) {
        int64_t block = first / bs + k;
        int64_t lo = std::max(first, block * bs), hi = std::min(pos + 1, (block + 1) * bs);
        const float *values = vPool.data() + (blockStarts[k] + lo % bs) * vWidth + g * vSegment;
        cblas_sgemv(CblasRowMajor, CblasTrans, hi - lo, dv, 1.0f, values, vWidth,
                    scores.data() + (lo - first), 1, 1.0f, o, 1);
      }
    }
  }
  return out;
}
