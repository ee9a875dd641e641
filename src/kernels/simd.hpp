// Hot element-wise loops (GELU, softmax rows, exp of features) are built twice: for baseline
// x86-64 and for AVX2 + FMA, and the variant is chosen once per process from the CPU, like the
// GEMM micro-kernel (VIT_SIMD=portable forces the baseline). The loop body is one always-inline
// function, so both variants are the same source; GCC vectorises each for its target, and the
// AVX2 + FMA one contracts multiply-adds (last-bit differences between the two variants; on one
// machine the choice is fixed, so runs stay reproducible and thread-count invariant).
#pragma once
#include <cstdlib>
#include <cstring>

#include "kernels/gemm.hpp"

#if defined(__x86_64__) || defined(__i386__)
#define VIT_AVX2_FMA __attribute__((target("avx2,fma")))
#else
#define VIT_AVX2_FMA
#endif
#define VIT_ALWAYS_INLINE __attribute__((always_inline)) inline

namespace vit::kernels {

inline bool simd_avx2_fma() {
  static const bool on = [] {
    const char* env = std::getenv("VIT_SIMD");
    return !(env && std::strcmp(env, "portable") == 0) && detail::cpu_has_avx2_fma();
  }();
  return on;
}

}  // namespace vit::kernels

// Defines RET NAME PARAMS (e.g. `(float* x, int64_t n)`), running NAME##_body ARGS (`(x, n)`),
// an always-inline function, compiled for AVX2 + FMA when the CPU has them.
#define VIT_SIMD_VARIANTS(RET, NAME, PARAMS, ARGS)                                     \
  VIT_AVX2_FMA RET NAME##_avx2 PARAMS { return NAME##_body ARGS; }                      \
  RET NAME##_base PARAMS { return NAME##_body ARGS; }                                   \
  RET NAME PARAMS { return ::vit::kernels::simd_avx2_fma() ? NAME##_avx2 ARGS : NAME##_base ARGS; }
