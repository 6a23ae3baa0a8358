// Quantized-weight GEMV (quant_impl.h) with AVX-512: 16 int8 widened by vpmovsxbd + vcvtdq2ps, 16 bf16
// by vpmovzxwd + a 16-bit shift, then FMA.
// GCC 12 warns that the _mm512_undefined_* operands of these intrinsics are (maybe) uninitialized (GCC bug
// 105593, a false positive fixed in GCC 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>

namespace tsf {
namespace quant_avx512_ns {
struct V {
  using vec = __m512;
  static constexpr int L = 16;
  static inline vec zero() { return _mm512_setzero_ps(); }
  static inline vec loadu(const float* p) { return _mm512_loadu_ps(p); }
  static inline void storeu(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static inline vec widen(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)p)));
  }
  static inline vec widen(const uint16_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)p)), 16));
  }
};
}  // namespace quant_avx512_ns
}  // namespace tsf

#define TSF_QNS quant_avx512_ns
#include "quant_impl.h"

namespace tsf {
const QuantTable quant_avx512_table = {quant_avx512_ns::gemv, quant_avx512_ns::dequant};
}  // namespace tsf
