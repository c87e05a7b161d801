//===- VectorMath.h - 16-float vectors for the CPU kernels ------*- C++ -*-===//
//
// Private to backends/cpu/lib: the vector type, the exp and the aligned
// buffers the attention kernels (AttentionLibrary.cpp, CacheLibrary.cpp)
// share. Everything is inline so that each kernel's target_clones compile
// it for their own ISA.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_CPU_LIB_VECTORMATH_H
#define ATTNEDIT_CPU_LIB_VECTORMATH_H

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <type_traits>
#include <vector>

namespace mlir::attnedit::cpu::detail {

/// 16 floats: one AVX-512 register in the avx512f clone, two or four
/// narrower ones in the others (GCC vector extensions, not intrinsics, so
/// every clone compiles from this one source).
typedef float V __attribute__((vector_size(64)));
typedef int32_t VI __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;

/// `x` in every lane, as one broadcast (from memory where `x` is loaded):
/// `V{} + x` must keep -0.0f + 0.0f = +0.0f, a scalar add and a register
/// broadcast before every use, which took FMA ports from the kernels' inner
/// loops; `V{x, x, ...}` GCC 12 assembles from masked pieces.
inline V splat(float x) {
  V first = {x};
  return __builtin_shufflevector(first, first, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

/// Horizontal reductions by halving (16 → 8 → 4 → 2 → 1 lanes): four
/// dependent steps instead of a chain of fifteen scalar ones, which had
/// been a fifth of the attention kernel's time (one per row and key block).
template <typename Op> inline float reduceLanes(V x, Op op) {
  typedef float V8 __attribute__((vector_size(32)));
  typedef float V4 __attribute__((vector_size(16)));
  V8 a = op(__builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7),
            __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15));
  V4 b = op(__builtin_shufflevector(a, a, 0, 1, 2, 3), __builtin_shufflevector(a, a, 4, 5, 6, 7));
  V4 c = op(b, __builtin_shufflevector(b, b, 2, 3, 0, 1));
  return op(c, __builtin_shufflevector(c, c, 1, 0, 3, 2))[0];
}

/// Lanes of two vectors in blocks of B: the first's blocks at even
/// positions (lane l with l & B == 0) then the second's, or their odd ones.
/// One stage of a 16 x 16 transpose (transpose16) or reduction (reduceRows).
template <int B> inline V evenBlocks(V a, V b) {
  if constexpr (B == 8)
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
  else if constexpr (B == 4)
    return __builtin_shufflevector(a, b, 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  else if constexpr (B == 2)
    return __builtin_shufflevector(a, b, 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
  else
    return __builtin_shufflevector(a, b, 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
}

template <int B> inline V oddBlocks(V a, V b) {
  if constexpr (B == 8)
    return __builtin_shufflevector(a, b, 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30,
                                   31);
  else if constexpr (B == 4)
    return __builtin_shufflevector(a, b, 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30,
                                   31);
  else if constexpr (B == 2)
    return __builtin_shufflevector(a, b, 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30,
                                   31);
  else
    return __builtin_shufflevector(a, b, 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15,
                                   31);
}

/// x[i][j] becomes x[j][i]: each stage swaps the off-diagonal blocks of B.
inline void transpose16(V x[16]) {
  auto stage = [&](auto b) {
    constexpr int B = decltype(b)::value;
    for (int i = 0; i < 16; ++i)
      if (!(i & B)) {
        V even = evenBlocks<B>(x[i], x[i + B]), odd = oddBlocks<B>(x[i], x[i + B]);
        x[i] = even;
        x[i + B] = odd;
      }
  };
  stage(std::integral_constant<int, 8>{});
  stage(std::integral_constant<int, 4>{});
  stage(std::integral_constant<int, 2>{});
  stage(std::integral_constant<int, 1>{});
}

/// Reduces 16 rows at once: lane r of the result is row r's reduction, by
/// the same halving as reduceLanes (lanes l and l + 8 first, then l + 4,
/// l + 2, l + 1), so a sum matches it bit for bit. 30 shuffles for 16 rows
/// against 4 dependent ones per row: the rows' reductions are independent.
template <typename Op> inline V reduceRows(const V rows[16], Op op) {
  V a[8], b[4], c[2];
  for (int r = 0; r < 8; ++r) // lanes 0-7: row r; 8-15: row r + 8
    a[r] = op(evenBlocks<8>(rows[r], rows[r + 8]), oddBlocks<8>(rows[r], rows[r + 8]));
  for (int r = 0; r < 4; ++r) // 4 lanes each of rows r, r + 4, r + 8, r + 12
    b[r] = op(evenBlocks<4>(a[r], a[r + 4]), oddBlocks<4>(a[r], a[r + 4]));
  for (int r = 0; r < 2; ++r) // 2 lanes each of rows r, r + 2, ..., r + 14
    c[r] = op(evenBlocks<2>(b[r], b[r + 2]), oddBlocks<2>(b[r], b[r + 2]));
  return op(evenBlocks<1>(c[0], c[1]), oddBlocks<1>(c[0], c[1]));
}

/// The reductions' operations, on vectors of any width.
constexpr auto kMax = [](auto a, auto b) { return a > b ? a : b; };
constexpr auto kSum = [](auto a, auto b) { return a + b; };

inline float horizontalMax(V x) { return reduceLanes(x, kMax); }

inline float horizontalSum(V x) { return reduceLanes(x, kSum); }

/// exp(x) for x <= 0 (scores minus their row maximum), 0 below exp's float
/// range (and for -inf: masked keys), within 2 ulp: Cephes' expf polynomial
/// (S. Moshier), rounding by the 1.5·2²³ trick.
inline V expNonPositive(V x) {
  V clamped = x < -87.0f ? splat(-87.0f) : x;
  const V round = splat(12582912.0f); // 1.5 · 2²³
  V n = (clamped * 1.44269504088896341f + round) - round;
  V r = clamped - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  V p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  VI bits = (__builtin_convertvector(n, VI) + 127) << 23;
  V scaleBy = (V)bits; // GCC: a same-size vector cast reinterprets the bits
  return x < -87.0f ? V{} : p * scaleBy;
}

inline float expNonPositive(float x) { return expNonPositive(splat(x))[0]; }

/// Per-thread scratch memory for Vectors, kept between kernel calls: the
/// kernels allocated and freed their buffers per head and per query block,
/// and glibc's malloc / free then took ~1% of a training step. Blocks are
/// handed out and returned last-in first-out (Vectors are scoped locals);
/// a request the current block cannot hold opens the next block, grown as
/// needed, and every block stays for the next call.
class ScratchStack {
public:
  static ScratchStack &ofThisThread() {
    thread_local ScratchStack stack;
    return stack;
  }
  V *push(int64_t n) {
    n = std::max<int64_t>(n, 1);
    while (current < blocks.size() && blocks[current].used + n > blocks[current].capacity &&
           blocks[current].used > 0)
      ++current;
    if (current == blocks.size())
      blocks.push_back(Block{});
    Block &b = blocks[current];
    if (b.used + n > b.capacity) { // empty, but too small
      std::free(b.data);
      b.capacity = std::max(n, 2 * b.capacity);
      b.data = static_cast<V *>(std::aligned_alloc(64, b.capacity * sizeof(V)));
    }
    V *p = b.data + b.used;
    b.used += n;
    return p;
  }
  void pop(V *p) {
    while (blocks[current].used == 0 || p < blocks[current].data ||
           p >= blocks[current].data + blocks[current].used)
      --current;
    blocks[current].used = p - blocks[current].data;
  }
  ~ScratchStack() {
    for (Block &b : blocks)
      std::free(b.data);
  }

private:
  struct Block {
    V *data = nullptr;
    int64_t capacity = 0, used = 0;
  };
  std::vector<Block> blocks;
  size_t current = 0;
};

/// An array of `n` vectors on a 64-byte boundary (this thread's scratch),
/// zeroed unless its user writes every element it reads: the AVX-512 clone
/// moves them with aligned instructions, while alignof(V) outside it (and so
/// std::vector's allocation) is only 16.
struct Vectors {
  explicit Vectors(int64_t n, bool zeroed = true)
      : data(ScratchStack::ofThisThread().push(n)), size(n) {
    if (zeroed)
      fill();
  }
  ~Vectors() { ScratchStack::ofThisThread().pop(data); }
  Vectors(const Vectors &) = delete;
  Vectors &operator=(const Vectors &) = delete;
  void fill() { std::fill(data, data + size, V{}); }
  V &operator[](int64_t i) { return data[i]; }
  /// The floats from vector `i` on.
  float *floats(int64_t i) { return reinterpret_cast<float *>(data + i); }
  V *data;
  int64_t size;
};

} // namespace mlir::attnedit::cpu::detail

#endif // ATTNEDIT_CPU_LIB_VECTORMATH_H
