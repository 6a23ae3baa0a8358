// Packing of full fp32 panels (and full bf16 pair panels) with AVX2 shuffles, for the ISAs whose panels are R = 6 rows of A
// and R = 16 or 32 columns of B (gemm_avx2.cc, gemm_avx512.cc; both compile with -mavx2). Included
// inside the including ISA's namespace; gemm_pack_impl.h calls these when TSF_PACK_T is defined.
// The packed layout is the generic one, so the results are the same bits as the scalar packing.

// Transposing pack of a full fp32 panel (the A panel of NN/NT, the B panel of NT/TT):
// dst[p*R + r] = src[r*rs + p] for r < R, p < kc, with 8 x 8 register transposes.
inline void tr8(__m256& r0, __m256& r1, __m256& r2, __m256& r3, __m256& r4, __m256& r5, __m256& r6,
                __m256& r7) {
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r0 = _mm256_permute2f128_ps(u0, u4, 0x20); r1 = _mm256_permute2f128_ps(u1, u5, 0x20);
  r2 = _mm256_permute2f128_ps(u2, u6, 0x20); r3 = _mm256_permute2f128_ps(u3, u7, 0x20);
  r4 = _mm256_permute2f128_ps(u0, u4, 0x31); r5 = _mm256_permute2f128_ps(u1, u5, 0x31);
  r6 = _mm256_permute2f128_ps(u2, u6, 0x31); r7 = _mm256_permute2f128_ps(u3, u7, 0x31);
}
template <int R>
void pack_t(const float* src, long rs, long kc, float* __restrict dst) {
  long p = 0;
  for (; p + 8 <= kc; p += 8) {
    for (int h = 0; h < (R + 7) / 8; ++h) {
      const float* s = src + (long)(h * 8) * rs + p;
      auto row = [&](int r) {
        const float* q = s + (long)(r + h * 8 < R ? r : R - 1 - h * 8) * rs;
        _mm_prefetch((const char*)(q + 64), _MM_HINT_T0);  // 4 lines ahead on each source row
        return _mm256_loadu_ps(q);
      };
      __m256 r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3), r4 = row(4), r5 = row(5), r6 = row(6), r7 = row(7);
      tr8(r0, r1, r2, r3, r4, r5, r6, r7);
      float* d = dst + p * R + h * 8;
      if (R % 8 == 0) {
        _mm256_storeu_ps(d, r0); _mm256_storeu_ps(d + R, r1); _mm256_storeu_ps(d + 2 * R, r2);
        _mm256_storeu_ps(d + 3 * R, r3); _mm256_storeu_ps(d + 4 * R, r4); _mm256_storeu_ps(d + 5 * R, r5);
        _mm256_storeu_ps(d + 6 * R, r6); _mm256_storeu_ps(d + 7 * R, r7);
      } else {  // R = 6: 4 + 2 lanes per k-step
        auto st6 = [](float* q, __m256 v) {
          _mm_storeu_ps(q, _mm256_castps256_ps128(v));
          _mm_storel_pi(reinterpret_cast<__m64*>(q + 4), _mm256_extractf128_ps(v, 1));
        };
        st6(d, r0); st6(d + R, r1); st6(d + 2 * R, r2); st6(d + 3 * R, r3);
        st6(d + 4 * R, r4); st6(d + 5 * R, r5); st6(d + 6 * R, r6); st6(d + 7 * R, r7);
      }
    }
  }
  for (; p < kc; ++p)
    for (int r = 0; r < R; ++r) dst[p * R + r] = src[r * rs + p];
}
// Non-transposing pack of a full fp32 panel: dst[p*R + r] = src[p*ps + r].
template <int R>
void pack_n(const float* src, long ps, long kc, float* __restrict dst) {
#pragma GCC unroll 4
  for (long p = 0; p < kc; ++p) {
    const float* s = src + p * ps;
    float* d = dst + p * R;
    if (R % 8 == 0) {
      for (int r = 0; r < R; r += 8) _mm256_storeu_ps(d + r, _mm256_loadu_ps(s + r));
    } else {
      _mm_storeu_ps(d, _mm_loadu_ps(s));
      _mm_storel_pi(reinterpret_cast<__m64*>(d + 4), _mm_loadl_pi(_mm_setzero_ps(), reinterpret_cast<const __m64*>(s + 4)));
    }
  }
}

// Pair-interleaving pack of a full bf16 panel (B of NN, A of TN/TT in the vdpbf16ps layout):
// dst[(p/2)*2R + 2r + p%2] = src[p*ps + r], rows p and p+1 interleaved 16 bits at a time.
// An odd last row is paired with zeros.
template <int R>
void pack_pairs_n(const uint16_t* src, long ps, long kc, uint16_t* __restrict dst) {
  static_assert(R % 8 == 0, "R must be a multiple of 8");
  for (long p = 0; p < kc; p += 2) {
    const uint16_t *s0 = src + p * ps, *s1 = s0 + ps;
    uint16_t* d = dst + p * R;
    int r = 0;
    for (; r + 16 <= R; r += 16) {
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s0 + r));
      const __m256i b = p + 1 < kc ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s1 + r)) : _mm256_setzero_si256();
      const __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);  // per 128-bit lane
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 2 * r), _mm256_permute2x128_si256(lo, hi, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 2 * r + 16), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
    if (r < R) {  // 8 left (R = 8: the A panels of the 8-row bf16 microkernel)
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s0 + r));
      const __m128i b = p + 1 < kc ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(s1 + r)) : _mm_setzero_si128();
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 2 * r), _mm_unpacklo_epi16(a, b));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 2 * r + 8), _mm_unpackhi_epi16(a, b));
    }
  }
}
