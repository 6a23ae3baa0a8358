// AVX-512 (F/BW/VL/DQ) kernels: 6 x 32 fp32 microkernel, 12 zmm accumulators. bf16 inputs are
// widened to fp32 while packing (CPUs without avx512_bf16; see gemm_avx512bf16.cc otherwise).
#include <immintrin.h>

#include <cstdint>

namespace tsf {
namespace avx512_ns {
struct V {
  using vec = __m512;
  static constexpr int L = 16;
  // B micro-panel KC x 32 floats = 24 KiB stays in a 32 KiB L1d; A block MC x KC in L2.
  static constexpr long MC = 192, KC = 192, NC = 4096;
  static inline vec zero() { return _mm512_setzero_ps(); }
  static inline vec set1(float x) { return _mm512_set1_ps(x); }
  static inline vec loadu(const float* p) { return _mm512_loadu_ps(p); }
  static inline void storeu(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static inline vec bcast(const float* p) { return _mm512_set1_ps(*p); }
  static inline vec fma(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  static inline vec mul(vec a, vec b) { return _mm512_mul_ps(a, b); }
  static inline void prefetch(const float* p) { _mm_prefetch((const char*)p, _MM_HINT_T0); }
};
}  // namespace avx512_ns
}  // namespace tsf

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
}  // namespace tsf
