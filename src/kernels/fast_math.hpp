// Vectorisable float exp for hot loops (softmax rows, FAVOR+ features). std::exp is a library
// call that GCC only vectorises under -ffast-math, which this project does not use; this is
// plain arithmetic (round-to-nearest by the 1.5 * 2^23 trick, Cody-Waite ln 2 split, degree-7
// Taylor polynomial on |r| <= ln2 / 2, exponent by integer add). Range selects are done on the
// bit patterns with integer compares: float compares may trap under the default
// -ftrapping-math, which stops GCC from if-converting (and so vectorising) the loop.
// Accuracy: within 1 ulp of the correctly rounded exp for |x| <= 86. Saturates beyond: x < -86
// gives 0 (true value < 4.5e-38), x > 86 gives +inf (so exp(x) for x in (86, 88.7] is not
// representable here). NaN in gives NaN out. Not a general replacement for std::exp.
#pragma once
#include <cstdint>
#include <cstring>

namespace vit::kernels {

inline float fast_exp(float x) {
  const float kLog2e = 1.44269504088896341f;
  const float kLn2Hi = 0.693145751953125f;          // ln 2 with 12 trailing zero bits
  const float kLn2Lo = 1.428606765330187045e-06f;   // ln 2 - kLn2Hi
  const float kRound = 12582912.0f;                 // 1.5 * 2^23
  const int32_t kBits86 = 0x42ac0000;               // bits of 86.0f
  const int32_t kBitsInf = 0x7f800000;
  int32_t ix;
  std::memcpy(&ix, &x, sizeof ix);
  const int32_t ax = ix & 0x7fffffff;
  // Masks (all ones or zero) instead of ?: so the loop stays branch-free.
  const int32_t big = -static_cast<int32_t>(ax > kBits86);      // |x| > 86 (or inf / NaN)
  const int32_t nan = -static_cast<int32_t>(ax > kBitsInf);
  const int32_t ixc = ix & ~big;  // out of range: compute exp(0), replaced below
  float xc;
  std::memcpy(&xc, &ixc, sizeof xc);
  const float n = (xc * kLog2e + kRound) - kRound;  // nearest integer to x / ln 2, |n| <= 125
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits;
  std::memcpy(&bits, &p, sizeof bits);
  bits += static_cast<int32_t>(n) * (1 << 23);
  const int32_t saturated = ~(ix >> 31) & kBitsInf;  // x < -86: 0, x > 86: +inf
  bits = (bits & ~big) | (saturated & big);
  bits = (bits & ~nan) | ((ix | 0x00400000) & nan);  // NaN stays (quiet) NaN
  float y;
  std::memcpy(&y, &bits, sizeof y);
  return y;
}

}  // namespace vit::kernels
