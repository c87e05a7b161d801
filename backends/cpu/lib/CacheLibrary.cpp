//===- CacheLibrary.cpp - the paged KV-cache ops for compiled code ---------===//
//
// `attnedit-cpu-convert-to-linalg` lowers `cache_write` and
// `paged_attention` to calls of the kernels defined here, so @prefill and
// @decode (attnedit-build-decode) run compiled like @forward.
//
// Layouts are the ops' (AttnEditOps.td): a pool is [blocks·block_size,
// width], a block table [S, M] i32 (one row per sequence, or one row for
// every query of a prompt chunk), positions [N] i32. The cache_write pool is
// its generic's output, updated in place: the function argument the runtime
// donates (attnedit-cpu-convert-to-linalg marks it writable and drops it
// from the results).
//
// Attention runs one task per (query row, KV head): the heads of the group
// share every key and value row they load. Scores are float dot products
// scaled as the reference scales them; the softmax uses the vector exp of
// VectorMath.h (2 ulp) and a float sum, so a compiled step matches the
// reference's (double exp and sum) to about 1e-6 relative.
//
// Tables come from the runtime's KvCache, which never maps a position
// outside the pool; an entry that does anyway is skipped (never read or
// written out of bounds), as `blockStart` says.
//
//===----------------------------------------------------------------------===//

#include "VectorMath.h"
#include "attnedit/CPU/JitModule.h"

#include "mlir/ExecutionEngine/CRunnerUtils.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

using namespace mlir::attnedit;
using namespace mlir::attnedit::cpu::detail;

namespace {

struct Table {
  const int32_t *data;
  int64_t sequences, width, strides[2];
  int64_t poolRows, blockSize;
  bool ring;

  /// The sequence of query row `row` of `rows`: a one-row table serves a
  /// whole prompt chunk.
  int64_t sequence(int64_t row) const { return sequences == 1 ? 0 : row; }

  /// The first pool row of the block holding `position` of `seq`, or -1
  /// when the table maps it nowhere inside the pool.
  int64_t blockStart(int64_t seq, int64_t position) const {
    int64_t block = position / blockSize;
    int64_t entry = ring ? block % std::max<int64_t>(width, 1) : block;
    if (position < 0 || seq >= sequences || entry >= width)
      return -1;
    int64_t id = data[seq * strides[0] + entry * strides[1]];
    int64_t start = id * blockSize;
    return id < 0 || start + blockSize > poolRows ? -1 : start;
  }
};

Table table(StridedMemRefType<int32_t, 2> *t, int64_t poolRows, float blockSize, float ring) {
  return {t->data + t->offset,
          t->sizes[0],
          t->sizes[1],
          {t->strides[0], t->strides[1]},
          poolRows,
          std::max<int64_t>(1, static_cast<int64_t>(blockSize)),
          ring != 0.0f};
}

template <int R> float param(StridedMemRefType<float, R> *p, int64_t i) {
  return p->data[p->offset + i * p->strides[0]];
}

int32_t position(StridedMemRefType<int32_t, 1> *positions, int64_t i) {
  return positions->data[positions->offset + i * positions->strides[0]];
}

/// rows [N, width] into pool slots; params [block_size, ring].
void cacheWrite(StridedMemRefType<float, 2> *rows, StridedMemRefType<int32_t, 2> *tableRef,
                StridedMemRefType<int32_t, 1> *positions, StridedMemRefType<float, 1> *params,
                StridedMemRefType<float, 2> *pool) {
  Table t = table(tableRef, pool->sizes[0], param(params, 0), param(params, 1));
  int64_t width = pool->sizes[1];
  float *out = pool->data + pool->offset;
  const float *in = rows->data + rows->offset;
  for (int64_t i = 0; i < rows->sizes[0]; ++i) {
    int64_t p = position(positions, i);
    int64_t start = t.blockStart(t.sequence(i), p);
    if (start < 0)
      continue;
    float *slot = out + (start + p % t.blockSize) * pool->strides[0];
    const float *row = in + i * rows->strides[0];
    for (int64_t c = 0; c < width; ++c)
      slot[c * pool->strides[1]] = row[c * rows->strides[1]];
  }
}

/// a·b over n floats: whole vectors, then the rest one by one (a vector
/// reduction of a short head, 8 here, costs more than it saves).
inline float dot(const float *a, const float *b, int64_t n) {
  V acc{};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    V x, y;
    std::memcpy(&x, a + c, sizeof x);
    std::memcpy(&y, b + c, sizeof y);
    acc += x * y;
  }
  float r = c ? horizontalSum(acc) : 0.0f;
  for (; c < n; ++c)
    r += a[c] * b[c];
  return r;
}

/// The first key position a query at `pos` sees: all keys, or the last
/// `window` of them.
inline int64_t firstVisibleKey(int64_t pos, float window) {
  return window > 0 ? std::max<int64_t>(0, pos - (int64_t)window + 1) : 0;
}

/// What one (query row, KV head) task reads.
struct PagedTask {
  const float *query; // [H, D] of this row, contiguous (copied)
  const float *kPool, *vPool;
  int64_t kStride, vStride; // pool row strides; pools are dense rows
  const Table &table;
  int64_t seq, pos, group, head0, d, dv, vOffset, kOffset;
  float scale, window;
  const float *sinks; // [H] or null
  float *out;         // [group, dv] of this row's heads, contiguous
};

/// Cloned per ISA like the dense kernel (GCC function multiversioning).
__attribute__((target_clones("avx512f", "avx2", "default"))) void runPagedTask(const PagedTask &t) {
  const float ninf = -std::numeric_limits<float>::infinity();
  int64_t first = firstVisibleKey(t.pos, t.window);
  int64_t count = t.pos - first + 1;
  int64_t vectors = (count + kLanes - 1) / kLanes;
  // Pool rows of keys first..pos (-1: unmapped), then scores per head.
  std::vector<int64_t> slots(count);
  int64_t start = t.table.blockStart(t.seq, first), within = first % t.table.blockSize;
  for (int64_t j = 0; j < count; ++j) {
    slots[j] = start < 0 ? -1 : start + within;
    if (++within == t.table.blockSize) { // no division per key
      within = 0;
      start = t.table.blockStart(t.seq, first + j + 1);
    }
  }
  Vectors scores(t.group * vectors);
  for (int64_t hh = 0; hh < t.group; ++hh) {
    float *s = reinterpret_cast<float *>(&scores[hh * vectors]);
    std::fill(s, s + vectors * kLanes, ninf);
  }
  for (int64_t j = 0; j < count; ++j) {
    if (slots[j] < 0)
      continue;
    const float *key = t.kPool + slots[j] * t.kStride + t.kOffset;
    for (int64_t hh = 0; hh < t.group; ++hh) {
      reinterpret_cast<float *>(&scores[hh * vectors])[j] =
          dot(t.query + (t.head0 + hh) * t.d, key, t.d) * t.scale;
    }
  }
  for (int64_t hh = 0; hh < t.group; ++hh) {
    V *s = &scores[hh * vectors];
    float sink = t.sinks ? t.sinks[t.head0 + hh] : ninf;
    V rowMax = splat(sink);
    for (int64_t u = 0; u < vectors; ++u)
      rowMax = rowMax > s[u] ? rowMax : s[u];
    float m = horizontalMax(rowMax);
    V sum = splat(0.0f);
    for (int64_t u = 0; u < vectors; ++u) {
      s[u] = expNonPositive(s[u] - m);
      sum += s[u];
    }
    float total = horizontalSum(sum) + (t.sinks ? expNonPositive(sink - m) : 0.0f);
    float inv = total > 0.0f ? 1.0f / total : 0.0f;
    float *o = t.out + hh * t.dv;
    std::fill(o, o + t.dv, 0.0f);
    const float *w = reinterpret_cast<const float *>(s);
    for (int64_t j = 0; j < count; ++j) {
      if (slots[j] < 0)
        continue;
      const float *value = t.vPool + slots[j] * t.vStride + t.vOffset;
      float wj = w[j] * inv;
#pragma omp simd
      for (int64_t e = 0; e < t.dv; ++e)
        o[e] += wj * value[e];
    }
  }
}

/// q [N, H, D], pools [P, ·], table [S, M], positions [N], sinks [H] or
/// null, params [scale, window, block_size, ring, num_kv_heads, v_head_dim],
/// out [N, H, Dv].
void pagedAttention(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 2> *kPool,
                    StridedMemRefType<float, 2> *vPool, StridedMemRefType<int32_t, 2> *tableRef,
                    StridedMemRefType<int32_t, 1> *positions, const float *sinks,
                    StridedMemRefType<float, 1> *params, StridedMemRefType<float, 3> *out) {
  Table t = table(tableRef, kPool->sizes[0], param(params, 2), param(params, 3));
  float scale = param(params, 0), window = param(params, 1);
  int64_t kvHeads = std::max<int64_t>(1, static_cast<int64_t>(param(params, 4)));
  int64_t dv = static_cast<int64_t>(param(params, 5));
  int64_t n = q->sizes[0], heads = q->sizes[1], d = q->sizes[2];
  int64_t group = std::max<int64_t>(1, heads / kvHeads);
  int64_t vSegment = vPool->sizes[1] / kvHeads;
  // Pools are function arguments with the identity layout (unit inner
  // stride); the query is copied dense per row.
  // Each thread takes a contiguous run of (row, KV head) tasks holding an
  // equal share of the keys they see: a decode batch's rows sit at unrelated
  // positions, and with one KV head (MQA, MLA's absorbed decode) a task is a
  // whole row. Not a dynamic schedule: each dynamic chunk is a call into
  // libomp, which in Debian's build formats a debug string per call (3% of
  // a decode step).
  std::vector<int64_t> keysBefore(n * kvHeads + 1, 0); // keys tasks [0, k) see
  for (int64_t i = 0; i < n; ++i) {
    int64_t pos = position(positions, i);
    int64_t keys = pos - firstVisibleKey(pos, window) + 1;
    for (int64_t g = 0; g < kvHeads; ++g)
      keysBefore[i * kvHeads + g + 1] = keysBefore[i * kvHeads + g] + keys;
  }
  int64_t work = keysBefore.back() / kvHeads * heads * (d + dv);
#pragma omp parallel if (work > (1 << 18))
  {
    int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    // The first task of a share (nondecreasing in it; the last share ends
    // at the last task, whatever keys the tasks before it see).
    auto shareStart = [&](int64_t share) {
      return std::lower_bound(keysBefore.begin(), keysBefore.end(),
                              keysBefore.back() * share / threads) -
             keysBefore.begin();
    };
    int64_t first = shareStart(thread);
    int64_t last = thread + 1 == threads ? n * kvHeads : shareStart(thread + 1);
    for (int64_t task = first; task < last; ++task) {
      int64_t i = task / kvHeads, g = task % kvHeads;
      std::vector<float> query(heads * d), result(group * dv);
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t c = 0; c < d; ++c)
          query[h * d + c] =
              q->data[q->offset + i * q->strides[0] + h * q->strides[1] + c * q->strides[2]];
      runPagedTask(PagedTask{query.data(), kPool->data + kPool->offset,
                             vPool->data + vPool->offset, kPool->strides[0], vPool->strides[0], t,
                             t.sequence(i), position(positions, i), group, g * group, d, dv,
                             g * vSegment, g * d, scale, window, sinks, result.data()});
      for (int64_t hh = 0; hh < group; ++hh)
        for (int64_t e = 0; e < dv; ++e)
          out->data[out->offset + i * out->strides[0] + (g * group + hh) * out->strides[1] +
                    e * out->strides[2]] = result[hh * dv + e];
    }
  }
}

void pagedAttentionPlain(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 2> *kPool,
                         StridedMemRefType<float, 2> *vPool, StridedMemRefType<int32_t, 2> *table,
                         StridedMemRefType<int32_t, 1> *positions,
                         StridedMemRefType<float, 1> *params, StridedMemRefType<float, 3> *out) {
  pagedAttention(q, kPool, vPool, table, positions, nullptr, params, out);
}

void pagedAttentionSinks(StridedMemRefType<float, 3> *q, StridedMemRefType<float, 2> *kPool,
                         StridedMemRefType<float, 2> *vPool, StridedMemRefType<int32_t, 2> *table,
                         StridedMemRefType<int32_t, 1> *positions,
                         StridedMemRefType<float, 1> *sinks, StridedMemRefType<float, 1> *params,
                         StridedMemRefType<float, 3> *out) {
  std::vector<float> s(sinks->sizes[0]);
  for (int64_t h = 0; h < sinks->sizes[0]; ++h)
    s[h] = param(sinks, h);
  pagedAttention(q, kPool, vPool, table, positions, s.data(), params, out);
}

const std::pair<const char *, void *> kSymbols[] = {
    {"_mlir_ciface_attnedit_cpu_cache_write", reinterpret_cast<void *>(&cacheWrite)},
    {"_mlir_ciface_attnedit_cpu_paged_attention", reinterpret_cast<void *>(&pagedAttentionPlain)},
    {"_mlir_ciface_attnedit_cpu_paged_attention_sinks",
     reinterpret_cast<void *>(&pagedAttentionSinks)},
};

} // namespace

llvm::ArrayRef<std::pair<const char *, void *>> cpu::cacheSymbols() { return kSymbols; }
