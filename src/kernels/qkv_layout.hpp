// The fused projection layout shared by both attention kernels (timm's qkv): qkv [B, N, 3D] holds
// q, then k, then v, each head-major; head h of sample b starts at column h*d of its block, and
// row n of that head is n * 3D floats further on.
#pragma once
#include <cstdint>

namespace vit::kernels {

struct QkvHead {
  const float* q;
  const float* k;
  const float* v;
};

inline QkvHead qkv_head(const float* qkv, int64_t b, int64_t h, int64_t N, int64_t D, int64_t d) {
  const float* base = qkv + b * N * 3 * D + h * d;
  return {base, base + D, base + 2 * D};
}

}  // namespace vit::kernels
