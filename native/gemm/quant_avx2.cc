// Quantized-weight GEMV (quant_impl.h) with AVX2 + FMA: 8 int8 widened by vpmovsxbd + vcvtdq2ps, 8 bf16
// by vpmovzxwd + a 16-bit shift, then FMA.
#include <immintrin.h>

#include <cstdint>

namespace tsf {
namespace quant_avx2_ns {
struct V {
  using vec = __m256;
  static constexpr int L = 8;
  static inline vec zero() { return _mm256_setzero_ps(); }
  static inline vec loadu(const float* p) { return _mm256_loadu_ps(p); }
  static inline void storeu(float* p, vec v) { _mm256_storeu_ps(p, v); }
  static inline vec fma(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  static inline vec widen(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i*)p)));
  }
  static inline vec widen(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)p)), 16));
  }
};
}  // namespace quant_avx2_ns
}  // namespace tsf

#define TSF_QNS quant_avx2_ns
#include "quant_impl.h"

namespace tsf {
const QuantTable quant_avx2_table = {quant_avx2_ns::gemv, quant_avx2_ns::dequant};
}  // namespace tsf
