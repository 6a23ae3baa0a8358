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
  // Measured on Zen 3 (bench/RESULTS.md): k blocks up to 768 (B micro-panel up to 48 KiB, streamed from
  // L2 alongside A) cut the passes over C; 2048^3 went from 92 to 95 GFLOPS on one core.
  static constexpr long MC = 96, KC = 768, NC = 4080;
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

#include "gemm_pack_avx2.h"  // pack_t, pack_n
}  // namespace avx2_ns
}  // namespace tsf
#define TSF_PACK_T 1

// fp32 main loop in inline asm: GCC's register allocation of the intrinsic version varies from
// build to build (it once spilled the accumulators); this keeps 12 accumulators + 4 temporaries in
// the 16 ymm registers, unrolled by 4 (about 97% of FMA peak on Zen 3 with data in L1).
#define TSF_AVX2_STEP                                                             \
  "vmovups \\u*64(%[b]), %%ymm0\n\t"                                              \
  "vmovups \\u*64+32(%[b]), %%ymm1\n\t"                                           \
  "vbroadcastss \\u*24(%[a]), %%ymm2\n\t"                                         \
  "vfmadd231ps %%ymm0, %%ymm2, %[c00]\n\t vfmadd231ps %%ymm1, %%ymm2, %[c01]\n\t" \
  "vbroadcastss \\u*24+4(%[a]), %%ymm3\n\t"                                       \
  "vfmadd231ps %%ymm0, %%ymm3, %[c10]\n\t vfmadd231ps %%ymm1, %%ymm3, %[c11]\n\t" \
  "vbroadcastss \\u*24+8(%[a]), %%ymm2\n\t"                                       \
  "vfmadd231ps %%ymm0, %%ymm2, %[c20]\n\t vfmadd231ps %%ymm1, %%ymm2, %[c21]\n\t" \
  "vbroadcastss \\u*24+12(%[a]), %%ymm3\n\t"                                      \
  "vfmadd231ps %%ymm0, %%ymm3, %[c30]\n\t vfmadd231ps %%ymm1, %%ymm3, %[c31]\n\t" \
  "vbroadcastss \\u*24+16(%[a]), %%ymm2\n\t"                                      \
  "vfmadd231ps %%ymm0, %%ymm2, %[c40]\n\t vfmadd231ps %%ymm1, %%ymm2, %[c41]\n\t" \
  "vbroadcastss \\u*24+20(%[a]), %%ymm3\n\t"                                      \
  "vfmadd231ps %%ymm0, %%ymm3, %[c50]\n\t vfmadd231ps %%ymm1, %%ymm3, %[c51]\n\t"
#define TSF_F32_LOOP                                                                   \
  {                                                                                    \
    long n4 = kc >> 2;                                                                 \
    if (n4 > 0)                                                                        \
      __asm__ volatile(                                                                \
          ".p2align 5\n"                                                               \
          "1:\n\t"                                                                     \
          "prefetcht0 512(%[a])\n\t"                                                  \
          ".irp u,0,1,2,3\n\t" TSF_AVX2_STEP ".endr\n\t"                                \
          "add $96, %[a]\n\t add $256, %[b]\n\t dec %[n4]\n\t jnz 1b\n\t"               \
          : [a] "+r"(A), [b] "+r"(B), [n4] "+r"(n4), [c00] "+x"(c00), [c01] "+x"(c01),  \
            [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20), [c21] "+x"(c21),          \
            [c30] "+x"(c30), [c31] "+x"(c31), [c40] "+x"(c40), [c41] "+x"(c41),          \
            [c50] "+x"(c50), [c51] "+x"(c51)                                             \
          :                                                                            \
          : "xmm0", "xmm1", "xmm2", "xmm3", "cc", "memory");                             \
    for (long p = 0; p < (kc & 3); ++p) {                                              \
      const vec b0 = V::loadu(B), b1 = V::loadu(B + V::L);                             \
      TSF_ROWS(TSF_FMA)                                                                \
      A += MR;                                                                         \
      B += NR;                                                                         \
    }                                                                                  \
  }

// The same main loop with A read in place: rows r at a0 + r*ld (r < 3) and a1 + (r-3)*ld, ld in
// bytes. a1, the trip count and ld come in through memory (aux) into r9/r10/r11: asm takes at most
// 30 operands and the 12 accumulators already use 24.
#define TSF_AVX2_UA_STEP                                                          \
  "vmovups \\u*64(%[b]), %%ymm0\n\t"                                              \
  "vmovups \\u*64+32(%[b]), %%ymm1\n\t"                                           \
  "vbroadcastss \\u*4(%[a0]), %%ymm2\n\t"                                         \
  "vfmadd231ps %%ymm0, %%ymm2, %[c00]\n\t vfmadd231ps %%ymm1, %%ymm2, %[c01]\n\t" \
  "vbroadcastss \\u*4(%[a0],%%r11,1), %%ymm3\n\t"                                 \
  "vfmadd231ps %%ymm0, %%ymm3, %[c10]\n\t vfmadd231ps %%ymm1, %%ymm3, %[c11]\n\t" \
  "vbroadcastss \\u*4(%[a0],%%r11,2), %%ymm2\n\t"                                 \
  "vfmadd231ps %%ymm0, %%ymm2, %[c20]\n\t vfmadd231ps %%ymm1, %%ymm2, %[c21]\n\t" \
  "vbroadcastss \\u*4(%%r9), %%ymm3\n\t"                                          \
  "vfmadd231ps %%ymm0, %%ymm3, %[c30]\n\t vfmadd231ps %%ymm1, %%ymm3, %[c31]\n\t" \
  "vbroadcastss \\u*4(%%r9,%%r11,1), %%ymm2\n\t"                                  \
  "vfmadd231ps %%ymm0, %%ymm2, %[c40]\n\t vfmadd231ps %%ymm1, %%ymm2, %[c41]\n\t" \
  "vbroadcastss \\u*4(%%r9,%%r11,2), %%ymm3\n\t"                                  \
  "vfmadd231ps %%ymm0, %%ymm3, %[c50]\n\t vfmadd231ps %%ymm1, %%ymm3, %[c51]\n\t"
#define TSF_UA_LOOP                                                                    \
  {                                                                                    \
    const float* a0 = A;                                                               \
    const long n4 = kc >> 2;                                                           \
    const long aux[3] = {(long)(A + 3 * lda), n4, lda * 4};                            \
    if (n4 > 0)                                                                        \
      __asm__ volatile(                                                                \
          "mov (%[aux]), %%r9\n\t mov 8(%[aux]), %%r10\n\t mov 16(%[aux]), %%r11\n\t"   \
          ".p2align 5\n"                                                               \
          "1:\n\t"                                                                     \
          ".irp u,0,1,2,3\n\t" TSF_AVX2_UA_STEP ".endr\n\t"                             \
          "add $16, %[a0]\n\t add $16, %%r9\n\t add $256, %[b]\n\t dec %%r10\n\t jnz 1b\n\t" \
          : [a0] "+r"(a0), [b] "+r"(B), [c00] "+x"(c00),                               \
            [c01] "+x"(c01), [c10] "+x"(c10), [c11] "+x"(c11), [c20] "+x"(c20),          \
            [c21] "+x"(c21), [c30] "+x"(c30), [c31] "+x"(c31), [c40] "+x"(c40),          \
            [c41] "+x"(c41), [c50] "+x"(c50), [c51] "+x"(c51)                            \
          : [aux] "r"(aux)                                                             \
          : "r9", "r10", "r11", "xmm0", "xmm1", "xmm2", "xmm3", "cc", "memory");         \
    const float* a1 = a0 + 3 * lda;                                                    \
    for (long p = 0; p < (kc & 3); ++p) {                                              \
      const vec b0 = V::loadu(B), b1 = V::loadu(B + V::L);                             \
      { const vec a = V::bcast(a0); c00 = V::fma(a, b0, c00); c01 = V::fma(a, b1, c01); } \
      { const vec a = V::bcast(a0 + lda); c10 = V::fma(a, b0, c10); c11 = V::fma(a, b1, c11); } \
      { const vec a = V::bcast(a0 + 2 * lda); c20 = V::fma(a, b0, c20); c21 = V::fma(a, b1, c21); } \
      { const vec a = V::bcast(a1); c30 = V::fma(a, b0, c30); c31 = V::fma(a, b1, c31); } \
      { const vec a = V::bcast(a1 + lda); c40 = V::fma(a, b0, c40); c41 = V::fma(a, b1, c41); } \
      { const vec a = V::bcast(a1 + 2 * lda); c50 = V::fma(a, b0, c50); c51 = V::fma(a, b1, c51); } \
      ++a0; ++a1;                                                                      \
      B += NR;                                                                         \
    }                                                                                  \
  }

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
void gemm_grouped_avx2(const GroupedParams& p) { avx2_ns::run_grouped<avx2_ns::KF32>(p); }
const GemmTable gemm_avx2_table = {gemm_avx2, to_bf16_avx2, from_bf16_avx2, gemm_grouped_avx2};
}  // namespace tsf
