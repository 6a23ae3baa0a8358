// Included inside a per-ISA namespace that defines the traits type V and `using vec = typename V::vec`
// (gemm_small_impl.h, quant_impl.h): not a standalone header. Picks the ISA from the translation unit's
// own flags (-mavx512f, -mavx2, or neither).
// Horizontal sums of four vectors by one fixed halving tree (lane l + lane l + L/2, and so on down to one
// lane), written out per ISA. Every output of the dot form is reduced by it, whatever the number of rows:
// a row's result has the same bits at m = 1 (decoding) as inside a pass of up to 8 rows.
inline void hsum4(vec a, vec b, vec c, vec d, float* out) {
#if defined(__AVX512F__)
  // 128-bit blocks: x = [a0+a2, a1+a3, b0+b2, b1+b3], then z = [A, B, C, D] with A = (a0+a2)+(a1+a3)
  const __m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 y = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  const __m512 z = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x88), _mm512_shuffle_f32x4(x, y, 0xDD));
  const __m512 h = _mm512_add_ps(z, _mm512_permute_ps(z, 0x4E));  // lanes l + l+2 in each block
  const __m512 t = _mm512_add_ps(h, _mm512_permute_ps(h, 0xB1));  // lane 0 + lane 1
  _mm_storeu_ps(out, _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12), t)));
#elif defined(__AVX2__)
  // halves: x = [a_lo + a_hi | b_lo + b_hi], y likewise for c, d
  const __m256 x = _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
  const __m256 y = _mm256_add_ps(_mm256_permute2f128_ps(c, d, 0x20), _mm256_permute2f128_ps(c, d, 0x31));
  const __m256 h = _mm256_add_ps(_mm256_shuffle_ps(x, y, 0x44), _mm256_shuffle_ps(x, y, 0xEE));  // [a a c c | b b d d]
  const __m256 t = _mm256_add_ps(_mm256_shuffle_ps(h, h, 0x88), _mm256_shuffle_ps(h, h, 0xDD));  // [A C A C | B D B D]
  _mm_storeu_ps(out, _mm_unpacklo_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
#else
  const vec in[4] = {a, b, c, d};
  for (int q = 0; q < 4; ++q) {
    alignas(64) float t[V::L];
    V::storeu(t, in[q]);
    for (int w = V::L / 2; w >= 1; w /= 2)
      for (int l = 0; l < w; ++l) t[l] = t[l] + t[l + w];
    out[q] = t[0];
  }
#endif
}
