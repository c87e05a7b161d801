//===- Numerics.h - fp16 / bf16 storage as the hardware rounds -*- C++ -*-===//
//
// Round-to-nearest-even conversions between f32 and the 16-bit formats the
// Cube reads (S3, S20): what DMA with conversion, FixPipe and vcast store.
//
//===----------------------------------------------------------------------===//
#ifndef ATTNEDIT_ASCEND_NUMERICS_H
#define ATTNEDIT_ASCEND_NUMERICS_H

#include "attnedit/Ascend/TargetDescription.h"

#include <cmath>
#include <cstdint>
#include <cstring>

namespace mlir::attnedit::ascend {

inline uint16_t floatToBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) // NaN stays a (quiet) NaN
    return static_cast<uint16_t>((x >> 16) | 0x40);
  x += 0x7fff + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

inline float bf16ToFloat(uint16_t h) {
  uint32_t x = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

inline uint16_t floatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
  int32_t exp = (x >> 23) & 0xff;
  if (exp == 0xff)
    return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  int32_t e = exp - 127 + 15;
  if (e >= 31)
    return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) { // subnormal half: value = half * 2^-24
    if (e < -10)
      return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    int shift = 14 - e;
    uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1)))
      ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = (static_cast<uint32_t>(e) << 10) | (mant >> 13), rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1)))
    ++half; // a carry into the exponent rounds up correctly, to inf at the top
  return static_cast<uint16_t>(sign | half);
}

inline float halfToFloat(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, mant = h & 0x3ff;
  int exp = (h >> 10) & 0x1f;
  if (exp == 0) {
    float v = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -v : v;
  }
  uint32_t x = exp == 31 ? (sign | 0x7f800000 | (mant << 13))
                         : (sign | (static_cast<uint32_t>(exp - 15 + 127) << 23) | (mant << 13));
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

/// `x` as stored in `dtype` and read back.
inline float roundTo(DType dtype, float x) {
  switch (dtype) {
  case DType::F32:
    return x;
  case DType::F16:
    return halfToFloat(floatToHalf(x));
  case DType::BF16:
    return bf16ToFloat(floatToBF16(x));
  }
  return x;
}

/// Unit roundoff of `dtype` (half an ulp at 1.0).
inline double unitRoundoff(DType dtype) {
  return dtype == DType::F32 ? std::ldexp(1.0, -24)
         : dtype == DType::F16 ? std::ldexp(1.0, -11)
                               : std::ldexp(1.0, -8);
}

} // namespace mlir::attnedit::ascend

#endif // ATTNEDIT_ASCEND_NUMERICS_H
