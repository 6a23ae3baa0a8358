// AVX2 + FMA kernels (Haswell / Zen 1-3 and later): 6 x 16 fp32 microkernel, 12 ymm accumulators.
// bf16 on this ISA: widened to fp32 while packing; the pair layout (vdpbf16ps emulation) is kept
// for tests of the AVX-512 BF16 packing path.
#include <immintrin.h>

#include <cstdint>

namespace tsf {
namespace avx2_ns {
struct V {
  using vec = __m256;
  using ivec = __m256i;
  static constexpr int L = 8;
  static constexpr long MC = 144, KC = 256, NC = 4080;
  static inline vec zero() { return _mm256_setzero_ps(); }
  static inline vec set1(float x) { return _mm256_set1_ps(x); }
  static inline vec loadu(const float* p) { return _mm256_loadu_ps(p); }
  static inline void storeu(float* p, vec v) { _mm256_storeu_ps(p, v); }
  static inline vec bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static inline vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static inline vec mul(vec a, vec b) { return _mm256_mul_ps(a, b); }
  static inline void prefetch(const float* p) { _mm_prefetch((const char*)p, _MM_HINT_T0); }
  static inline ivec iloadu(const uint32_t* p) { return _mm256_loadu_si256((const __m256i*)p); }
  static inline ivec ibcast(const uint32_t* p) { return _mm256_set1_epi32((int)*p); }
  static inline vec dpbf16(vec acc, ivec a, ivec b) {  // emulates vdpbf16ps
    const ivec hi = _mm256_set1_epi32((int)0xffff0000u);
    acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)),
                          _mm256_castsi256_ps(_mm256_slli_epi32(b, 16)), acc);
    return _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(a, hi)),
                           _mm256_castsi256_ps(_mm256_and_si256(b, hi)), acc);
  }
};
}  // namespace avx2_ns
}  // namespace tsf

#define TSF_NS avx2_ns
#define TSF_HAS_PAIRS 1
#include "gemm_impl.h"

namespace tsf {
bool gemm_avx2(const GemmParams& p) {
  using namespace avx2_ns;
  if (p.kind == KIND_F32) run<KF32>(p);
  else if (p.kind == KIND_BF16) run<KBF16>(p);
  else run<KPAIRS>(p);
  return true;
}
void to_bf16_avx2(const float* s, uint16_t* d, long n) { avx2_ns::to_bf16_impl(s, d, n); }
void from_bf16_avx2(const uint16_t* s, float* d, long n) { avx2_ns::from_bf16_impl(s, d, n); }
}  // namespace tsf
