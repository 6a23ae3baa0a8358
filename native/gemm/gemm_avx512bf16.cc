// bf16 x bf16 -> fp32 GEMM with vdpbf16ps (AVX512_BF16: Cooper Lake, Zen 4, Zen 5, Sapphire Rapids):
// 8 x 32 tile, each instruction does 16 lanes x 2 k-steps, so twice the fp32 FMA rate. Eight rows give
// 16 independent accumulators: Zen 5 issues two vdpbf16ps per cycle at a latency of ~6 cycles, so 12
// (the 6-row tile) leave it latency-bound below its peak.
#include <immintrin.h>

#include <cstdint>

namespace tsf {
namespace avx512bf16_ns {
struct V {
  using vec = __m512;
  using ivec = __m512i;
  static constexpr int L = 16;
  // KC counts bf16 k-steps. A long k block (B micro-panel 1024 x 32 bf16 = 64 KiB, read from L2 by
  // the 24 row panels of an MC block) means fewer passes of C through the cache: 2048^3 is faster
  // than with an L1-sized 384, the training shapes unchanged (bench/RESULTS.md, session 17).
  static constexpr long MC = 192, KC = 1024, NC = 4096;
  static inline vec zero() { return _mm512_setzero_ps(); }
  static inline vec set1(float x) { return _mm512_set1_ps(x); }
  static inline vec loadu(const float* p) { return _mm512_loadu_ps(p); }
  static inline void storeu(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static inline vec bcast(const float* p) { return _mm512_set1_ps(*p); }
  static inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static inline vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static inline void prefetch(const float* p) { _mm_prefetch((const char*)p, _MM_HINT_T0); }
  static inline ivec iloadu(const uint32_t* p) { return _mm512_loadu_si512((const void*)p); }
  static inline ivec ibcast(const uint32_t* p) { return _mm512_set1_epi32((int)*p); }
  static inline vec dpbf16(vec acc, ivec a, ivec b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
  }
};
#include "gemm_pack_avx2.h"  // pack_t, pack_n, pack_pairs_n
}  // namespace avx512bf16_ns
}  // namespace tsf
#define TSF_PACK_T 1

#define TSF_NS avx512bf16_ns
#define TSF_MR 8
#define TSF_HAS_PAIRS 1
// 1024^3 runs faster without the shared-B schedule here (its per-block waits cost more than packing B
// twice), 2048^3 about the same: bench/RESULTS.md, session 17.
#define TSF_COOP_WORK 2e9
#include "gemm_impl.h"

namespace tsf {
bool gemm_avx512bf16(const GemmParams& p) {
  if (p.kind != KIND_BF16_PAIRS) return false;
  avx512bf16_ns::run<avx512bf16_ns::KPAIRS>(p);
  return true;
}
}  // namespace tsf
