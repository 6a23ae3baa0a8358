// AVX-512 (F/BW/VL/DQ) kernels: 6 x 32 fp32 microkernel, 12 zmm accumulators. bf16 inputs are
// widened to fp32 while packing (CPUs without avx512_bf16; see gemm_avx512bf16.cc otherwise).
#include <immintrin.h>

#include <cstdint>

namespace tsf {
namespace avx512_ns {
struct V {
  using vec = __m512;
  static constexpr int L = 16;
  // Measured on a Xeon with 48 KiB L1d / 2 MiB L2 (bench/RESULTS.md): k blocks of 768 (B micro-panel
  // 96 KiB, streamed from L2) cut the passes over C; 2048^3 went from 199 to 283 GFLOPS on 2 threads.
  static constexpr long MC = 192, KC = 768, NC = 4096;
  static inline vec zero() { return _mm512_setzero_ps(); }
  static inline vec set1(float x) { return _mm512_set1_ps(x); }
  static inline vec loadu(const float* p) { return _mm512_loadu_ps(p); }
  static inline void storeu(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static inline vec bcast(const float* p) { return _mm512_set1_ps(*p); }
  static inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static inline vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static inline void prefetch(const float* p) { _mm_prefetch((const char*)p, _MM_HINT_T0); }
};
#include "gemm_pack_avx2.h"  // pack_t, pack_n
}  // namespace avx512_ns
}  // namespace tsf
#define TSF_PACK_T 1

// A read in place (see gemm_impl.h ukr_f32_ua): rows r at a0 + r*lda (r < 3) and a1 + (r-3)*lda.
// With 32 zmm registers GCC keeps the accumulators in registers; same FMA order as ukr_f32.
#define TSF_UA_LOOP                                                         \
  {                                                                         \
    const float *a0 = A, *a1 = A + 3 * lda;                                 \
    _Pragma("GCC unroll 4") for (long p = 0; p < kc; ++p) {                 \
      const vec b0 = V::loadu(B), b1 = V::loadu(B + V::L);                  \
      TSF_UA_FMA(0, a0) TSF_UA_FMA(1, a0 + lda) TSF_UA_FMA(2, a0 + 2 * lda) \
      TSF_UA_FMA(3, a1) TSF_UA_FMA(4, a1 + lda) TSF_UA_FMA(5, a1 + 2 * lda) \
      ++a0;                                                                 \
      ++a1;                                                                 \
      B += NR;                                                              \
    }                                                                       \
  }
#define TSF_UA_FMA(r, src) { const vec a = V::bcast(src); c##r##0 = V::fma(a, b0, c##r##0); c##r##1 = V::fma(a, b1, c##r##1); }

#define TSF_NS avx512_ns
#include "gemm_impl.h"

namespace tsf {
bool gemm_avx512(const GemmParams& p) {
  using namespace avx512_ns;
  if (p.kind == KIND_F32) run<KF32>(p);
  else if (p.kind == KIND_BF16) run<KBF16>(p);
  else return false;
  return true;
}
void gemm_grouped_avx512(const GroupedParams& p) { avx512_ns::run_grouped<avx512_ns::KF32>(p); }
void to_bf16_avx512(const float* s, uint16_t* d, long n) { avx512_ns::to_bf16_impl(s, d, n); }
void from_bf16_avx512(const uint16_t* s, float* d, long n) { avx512_ns::from_bf16_impl(s, d, n); }
const GemmTable gemm_avx512_table = {gemm_avx512, to_bf16_avx512, from_bf16_avx512, gemm_grouped_avx512};
}  // namespace tsf
