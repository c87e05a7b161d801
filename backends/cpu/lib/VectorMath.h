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

namespace mlir::attnedit::cpu::detail {

/// 16 floats: one AVX-512 register in the avx512f clone, two or four
/// narrower ones in the others (GCC vector extensions, not intrinsics, so
/// every clone compiles from this one source).
typedef float V __attribute__((vector_size(64)));
typedef int32_t VI __attribute__((vector_size(64)));
constexpr int64_t kLanes = 16;

inline V splat(float x) { return V{} + x; }

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

inline float horizontalMax(V x) {
  return reduceLanes(x, [](auto a, auto b) { return a > b ? a : b; });
}

inline float horizontalSum(V x) {
  return reduceLanes(x, [](auto a, auto b) { return a + b; });
}

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

/// A zeroed array of `n` vectors on a 64-byte boundary: the AVX-512 clone
/// moves them with aligned instructions, while alignof(V) outside it (and
/// so std::vector's allocation) is only 16.
struct Vectors {
  explicit Vectors(int64_t n)
      : data(static_cast<V *>(std::aligned_alloc(64, std::max<int64_t>(n, 1) * sizeof(V)))),
        size(n) {
    fill();
  }
  ~Vectors() { std::free(data); }
  Vectors(const Vectors &) = delete;
  Vectors &operator=(const Vectors &) = delete;
  void fill() { std::fill(data, data + size, V{}); }
  V &operator[](int64_t i) { return data[i]; }
  V *data;
  int64_t size;
};

} // namespace mlir::attnedit::cpu::detail

#endif // ATTNEDIT_CPU_LIB_VECTORMATH_H
