// Included by gemm_impl.h inside its per-ISA namespace (uses its V, MR, NR, lmin, cdiv and the
// kernel families): not a standalone header.
// --- packing ---------------------------------------------------------------------------------------
// Packs an R-wide panel over kc: dst[((p/G)*R + r)*G + p%G] = src[r*rs + p*ps] for r < rv, p < kc;
// zero for r >= rv and for p in [kc, kg*G).
template <class K, int R>
void pack_panel(const typename K::Tin* src, long rs, long ps, int rv, long kc,
                typename K::Tpk* __restrict dst) {
  using Tpk = typename K::Tpk;
  constexpr int G = K::G;
  const long kg = cdiv(kc, G);
  if (rv < R || kg * G != kc) std::memset(dst, 0, sizeof(Tpk) * kg * G * R);
  if (rs == 1) {  // contiguous along r: copy rows of the panel
#ifdef TSF_PACK_T
    if constexpr (K::F32 && (R == 6 || R % 8 == 0)) {  // full fp32 panel: SIMD row copies
      if (rv == R) {
        pack_n<R>(reinterpret_cast<const float*>(src), ps, kc, reinterpret_cast<float*>(dst));
        return;
      }
    }
#endif
#ifdef TSF_PACK_T
    if constexpr (G == 2 && R % 8 == 0) {  // full bf16 pair panel: SIMD row interleave
      if (rv == R) {
        pack_pairs_n<R>(src, ps, kc, dst);
        return;
      }
    }
#endif
    if (rv == R) {
      for (long p = 0; p < kc; ++p) {
        const typename K::Tin* s = src + p * ps;
        Tpk* d = dst + (p / G) * R * G + p % G;
        for (int r = 0; r < R; ++r) d[r * G] = K::cvt(s[r]);
      }
    } else {
      for (long p = 0; p < kc; ++p) {
        const typename K::Tin* s = src + p * ps;
        Tpk* d = dst + (p / G) * R * G + p % G;
        for (int r = 0; r < rv; ++r) d[r * G] = K::cvt(s[r]);
      }
    }
  } else {  // contiguous along k (ps == 1): a transpose
#ifdef TSF_PACK_T
    if constexpr (K::F32 && (R == 6 || R % 8 == 0)) {  // full fp32 panel: SIMD 8 x 8 transposes
      if (rv == R) {
        pack_t<R>(reinterpret_cast<const float*>(src), rs, kc, reinterpret_cast<float*>(dst));
        return;
      }
    }
    // full bf16 pair panel: each pair (r, p), (r, p + 1) is one 32-bit word of the source row, so
    // the pair layout is the fp32 transpose of those words (even row stride, 4-byte aligned rows)
    if constexpr (G == 2 && (R == 6 || R % 8 == 0)) {
      if (rv == R && kc % 2 == 0 && rs % 2 == 0 && (reinterpret_cast<uintptr_t>(src) & 3) == 0) {
        pack_t<R>(reinterpret_cast<const float*>(src), rs / 2, kc / 2, reinterpret_cast<float*>(dst));
        return;
      }
    }
#endif
    for (int r = 0; r < rv; ++r) {
      const typename K::Tin* s = src + r * rs;
      Tpk* d = dst + r * G;
      if (G == 1) {
        for (long p = 0; p < kc; ++p) d[p * R] = K::cvt(s[p * ps]);
      } else {
        for (long p = 0; p < kc; ++p) d[(p / G) * R * G + p % G] = K::cvt(s[p * ps]);
      }
    }
  }
}

// Packs a whole block of R-wide panels from an operand stored with r contiguous (rs == 1): row p of
// the block (cols elements at src + p*ps) is read once, left to right, and scattered into the
// panels (panel q at dst + q*pst). Sequential reads instead of one strided pass per panel.
template <class K, int R>
void pack_rows(const typename K::Tin* src, long ps, long cols, long kc, long pst,
               typename K::Tpk* __restrict dst) {
  const long full = cols / R, rem = cols - full * R;
  if (rem) std::memset(dst + full * pst, 0, sizeof(typename K::Tpk) * R * kc);
  const long line = 64 / (long)sizeof(typename K::Tin);
  for (long p = 0; p < kc; ++p) {
    const typename K::Tin* sp = src + p * ps;
    typename K::Tpk* dp = dst + p * R;
    if (p + 8 < kc)  // rows are far apart (a transposed A is read across its rows): fetch ahead
      for (long c = 0; c < cols; c += line) __builtin_prefetch(sp + 8 * ps + c, 0, 3);
    for (long q = 0; q < full; ++q) {
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) dp[q * pst + r] = K::cvt(sp[q * R + r]);
    }
    for (long r = 0; r < rem; ++r) dp[full * pst + r] = K::cvt(sp[full * R + r]);
  }
}

constexpr long kPanelPad = 16;  // elements of padding after each packed panel (a cache line of fp32)
