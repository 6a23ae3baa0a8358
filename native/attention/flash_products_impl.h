// Included by flash_impl.h inside its per-ISA namespace (uses flash_vec_impl.h): not a standalone
// header.
// --- the two tile products ------------------------------------------------------------------------
// Ranges: in a tile pair that the causal or window rule cuts (a PARTIAL tile), row a of a product only
// has visible columns (or terms s) in [lo[a], hi[a]); the products skip the register blocks that lie
// wholly outside. Every skipped term has P = 0 and dS = 0 and is otherwise added as an exact +0, so the
// results keep their bits. A block table may hide more inside a range (mask_row applies it).
struct Ranges {
  const int32_t* lo = nullptr;  // nullptr: every column visible
  const int32_t* hi = nullptr;
  // The union [l, h) over rows a .. a + n - 1, within [0, full).
  void of(long a, long n, long full, long& l, long& h) const {
    if (!lo) { l = 0; h = full; return; }
    l = full; h = 0;
    for (long i = a; i < a + n; ++i)
      if (lo[i] < hi[i]) { l = lo[i] < l ? lo[i] : l; h = hi[i] > h ? hi[i] : h; }
    if (h > full) h = full;
  }
};

// The 4 x 2L register block of the tile products (L = lanes of Vt, 8 accumulators), and its update
// shared by score, score_dp, wsum and wsum_d: c_rh += sum_{i<n} A[r * ra + i * sa] * B[i * sb + h L ..],
// i ascending. E is float or double.
template <class Vt> struct Block4x2 { Vt c00, c01, c10, c11, c20, c21, c30, c31; };
template <class Vt, class E>
__attribute__((always_inline)) inline void rank1_sum(Block4x2<Vt>& k, const E* a0, long ra, long sa, const E* b,
                                                     long sb, long n) {
  constexpr long L = sizeof(Vt) / sizeof(E);
  const E *a1 = a0 + ra, *a2 = a1 + ra, *a3 = a2 + ra;
  Vt c00 = k.c00, c01 = k.c01, c10 = k.c10, c11 = k.c11, c20 = k.c20, c21 = k.c21, c30 = k.c30, c31 = k.c31;
  for (long i = 0, o = 0; i < n; ++i, o += sa, b += sb) {
    const Vt b0 = tload<Vt>(b), b1 = tload<Vt>(b + L);
    Vt t = tset<Vt>(a0[o]);
    c00 = vfma(t, b0, c00); c01 = vfma(t, b1, c01);
    t = tset<Vt>(a1[o]);
    c10 = vfma(t, b0, c10); c11 = vfma(t, b1, c11);
    t = tset<Vt>(a2[o]);
    c20 = vfma(t, b0, c20); c21 = vfma(t, b1, c21);
    t = tset<Vt>(a3[o]);
    c30 = vfma(t, b0, c30); c31 = vfma(t, b1, c31);
  }
  k = {c00, c01, c10, c11, c20, c21, c30, c31};
}
// The products of rows a0 .. a0 + 3 lda of A with BT (d terms), from zero.
template <class Vt, class E>
__attribute__((always_inline)) inline Block4x2<Vt> dot_block(const E* a0, long lda, const E* bt, long d) {
  Block4x2<Vt> k = {};
  rank1_sum(k, a0, lda, 1, bt, T, d);
  return k;
}
// One register block of score: rows a0 .. a0 + 3 lda x 2 L columns, scaled.
template <class Vt>
__attribute__((always_inline)) inline void score_block(const float* a0, long lda, const float* bt, long d, float scale,
                                                       float* c) {
  constexpr long L = sizeof(Vt) / 4;
  const Block4x2<Vt> k = dot_block<Vt>(a0, lda, bt, d);
  const Vt vs = tset<Vt>(scale);
  tstore(c, k.c00 * vs); tstore(c + L, k.c01 * vs);
  tstore(c + T, k.c10 * vs); tstore(c + T + L, k.c11 * vs);
  tstore(c + 2 * T, k.c20 * vs); tstore(c + 2 * T + L, k.c21 * vs);
  tstore(c + 3 * T, k.c30 * vs); tstore(c + 3 * T + L, k.c31 * vs);
}

// C[a * T + b] = scale * sum_{x<d} A[a * lda + x] * BT[x * T + b] for a < na, b < nb16 (multiple of 16).
// Blocks outside R are left unwritten (mask_row hides them).
void score(const float* A, long lda, long na, const float* BT, long nb16, long d, float scale, float* C,
           const Ranges& R) {
  const v8f vs = vset(scale);
  long a = 0, l, h;
  for (; a + 4 <= na; a += 4) {
    const float* a0 = A + a * lda;
    R.of(a, 4, nb16, l, h);
    long b = l / 16 * 16;
    if constexpr (EL == 16)  // two 16-column blocks at a time, one zmm each
      for (; b + 16 < h; b += 32) score_block<ve>(a0, lda, BT + b, d, scale, C + a * T + b);
    for (; b < h; b += 16) score_block<v8f>(a0, lda, BT + b, d, scale, C + a * T + b);
  }
  for (; a < na; ++a) {
    const float* a0 = A + a * lda;
    R.of(a, 1, nb16, l, h);
    for (long b = l / 16 * 16; b < h; b += 16) {
      v8f c00 = {}, c01 = {};
      const float* bt = BT + b;
      for (long x = 0; x < d; ++x, bt += T) {
        const v8f s = vset(a0[x]);
        c00 = vfma(s, vload(bt), c00); c01 = vfma(s, vload(bt + 8), c01);
      }
      float* c = C + a * T + b;
      vstore(c, c00 * vs); vstore(c + 8, c01 * vs);
    }
  }
}

// dP - D in double, rounded once: C[a * T + b] = (float)(sum_{x<d} A[a * lda + x] * BT[x * T + b] - D)
// with D = Drow[a] (Drow given) or Dcol[b]. The products of floats are exact in double and the sum is
// x-ascending from 0, so when a row of O equals a row of V (one visible key) dP - D is exactly 0.
// Float32 here would leave ~1 ulp of |dP| in dP - D, which the cancellation in dS = P (dP - D) turns
// into a large relative error of dQ and dK (the rows whose probabilities concentrate on few keys).
// Blocks outside R are set to 0.
void score_dp(const double* A, long lda, long na, const double* BT, long nb16, long d, const double* Drow,
              const double* Dcol, float* C, const Ranges& R) {
  long l, h;
  for (long b = 0; b < nb16; b += SW) {  // one SW-column strip of BT (d x SW doubles) at a time: stays in L1
    long a = 0;
    for (; a + 4 <= na; a += 4) {
      R.of(a, 4, nb16, l, h);
      if (b >= h || b + SW <= l) {
        for (long r = a; r < a + 4; ++r) std::memset(C + r * T + b, 0, SW * sizeof(float));
        continue;
      }
      const Block4x2<vd> k = dot_block<vd>(A + a * lda, lda, BT + b, d);
      vd d00, d01, d10, d11, d20, d21, d30, d31;
      if (Drow) {
        d00 = d01 = tset<vd>(Drow[a]); d10 = d11 = tset<vd>(Drow[a + 1]);
        d20 = d21 = tset<vd>(Drow[a + 2]); d30 = d31 = tset<vd>(Drow[a + 3]);
      } else {
        d00 = d10 = d20 = d30 = tload<vd>(Dcol + b);
        d01 = d11 = d21 = d31 = tload<vd>(Dcol + b + DL);
      }
      float* c = C + a * T + b;
      fstored(c, k.c00 - d00); fstored(c + DL, k.c01 - d01);
      fstored(c + T, k.c10 - d10); fstored(c + T + DL, k.c11 - d11);
      fstored(c + 2 * T, k.c20 - d20); fstored(c + 2 * T + DL, k.c21 - d21);
      fstored(c + 3 * T, k.c30 - d30); fstored(c + 3 * T + DL, k.c31 - d31);
    }
    for (; a < na; ++a) {
      R.of(a, 1, nb16, l, h);
      if (b >= h || b + SW <= l) {
        std::memset(C + a * T + b, 0, SW * sizeof(float));
        continue;
      }
      const double* a0 = A + a * lda;
      vd c00 = {}, c01 = {};
      const double* bt = BT + b;
      for (long x = 0; x < d; ++x, bt += T) {
        const vd t = tset<vd>(a0[x]);
        c00 = vfma(t, tload<vd>(bt), c00); c01 = vfma(t, tload<vd>(bt + DL), c01);
      }
      const vd d0 = Drow ? tset<vd>(Drow[a]) : tload<vd>(Dcol + b), d1 = Drow ? tset<vd>(Drow[a]) : tload<vd>(Dcol + b + DL);
      float* c = C + a * T + b;
      fstored(c, c00 - d0); fstored(c + DL, c01 - d1);
    }
  }
}

// One register block of wsum: rows r0 .. r0 + 3 lda x 2 L columns (8 accumulators), terms s < nsb.
// One register block of wsum / wsum_d (E float or double): rows r0 .. r0 + 3 lda x 2 L columns of the
// accumulator, plus the terms s < nsb.
template <class Vt, class E>
__attribute__((always_inline)) inline void wsum_block(E* r0, long lda, const E* w0, long wa, long ws, const E* m,
                                                      long ldm, long nsb) {
  constexpr long L = sizeof(Vt) / sizeof(E);
  E *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
  Block4x2<Vt> k = {tload<Vt>(r0), tload<Vt>(r0 + L), tload<Vt>(r1), tload<Vt>(r1 + L),
                    tload<Vt>(r2), tload<Vt>(r2 + L), tload<Vt>(r3), tload<Vt>(r3 + L)};
  rank1_sum(k, w0, wa, ws, m, ldm, nsb);
  tstore(r0, k.c00); tstore(r0 + L, k.c01); tstore(r1, k.c10); tstore(r1 + L, k.c11);
  tstore(r2, k.c20); tstore(r2 + L, k.c21); tstore(r3, k.c30); tstore(r3 + L, k.c31);
}

// acc[a * lda + x] += sum_{s<ns} W[a * wa + s * ws] * M[s * ldm + x] for a < na, x < d (s ascending).
// Only the terms s in R's range of each row block.
void wsum(float* acc, long lda, long na, const float* W, long wa, long ws, long ns, const float* M, long ldm, long d,
          const Ranges& R) {
  long a = 0, s0, s1;
  for (; a + 4 <= na; a += 4) {
    float *r0 = acc + a * lda, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
    R.of(a, 4, ns, s0, s1);
    const float *w0 = W + a * wa + s0 * ws, *w1 = w0 + wa, *w2 = w1 + wa, *w3 = w2 + wa;
    const float* Ms = M + s0 * ldm;
    const long nsb = s1 - s0;
    long x = 0;
    if constexpr (EL == 16)  // 32 columns at a time, one zmm per 16
      for (; x + 32 <= d; x += 32) wsum_block<ve>(r0 + x, lda, w0, wa, ws, Ms + x, ldm, nsb);
    for (; x + 16 <= d; x += 16) wsum_block<v8f>(r0 + x, lda, w0, wa, ws, Ms + x, ldm, nsb);
    for (; x + 8 <= d; x += 8) {
      v8f c0 = vload(r0 + x), c1 = vload(r1 + x), c2 = vload(r2 + x), c3 = vload(r3 + x);
      const float* m = Ms + x;
      for (long s = 0; s < nsb; ++s, m += ldm) {
        const v8f m0 = vload(m);
        const long o = s * ws;
        c0 = vfma(vset(w0[o]), m0, c0); c1 = vfma(vset(w1[o]), m0, c1);
        c2 = vfma(vset(w2[o]), m0, c2); c3 = vfma(vset(w3[o]), m0, c3);
      }
      vstore(r0 + x, c0); vstore(r1 + x, c1); vstore(r2 + x, c2); vstore(r3 + x, c3);
    }
    for (; x < d; ++x) {
      float c0 = r0[x], c1 = r1[x], c2 = r2[x], c3 = r3[x];
      const float* m = Ms + x;
      for (long s = 0; s < nsb; ++s, m += ldm) {
        const long o = s * ws;
        c0 = sfma(w0[o], *m, c0); c1 = sfma(w1[o], *m, c1); c2 = sfma(w2[o], *m, c2); c3 = sfma(w3[o], *m, c3);
      }
      r0[x] = c0; r1[x] = c1; r2[x] = c2; r3[x] = c3;
    }
  }
  for (; a < na; ++a) {
    float* r0 = acc + a * lda;
    R.of(a, 1, ns, s0, s1);
    const float* w0 = W + a * wa + s0 * ws;
    const float* Ms = M + s0 * ldm;
    const long nsb = s1 - s0;
    long x = 0;
    for (; x + 16 <= d; x += 16) {
      v8f c00 = vload(r0 + x), c01 = vload(r0 + x + 8);
      const float* m = Ms + x;
      for (long s = 0; s < nsb; ++s, m += ldm) {
        const v8f t = vset(w0[s * ws]);
        c00 = vfma(t, vload(m), c00); c01 = vfma(t, vload(m + 8), c01);
      }
      vstore(r0 + x, c00); vstore(r0 + x + 8, c01);
    }
    for (; x + 8 <= d; x += 8) {
      v8f c0 = vload(r0 + x);
      const float* m = Ms + x;
      for (long s = 0; s < nsb; ++s, m += ldm) c0 = vfma(vset(w0[s * ws]), vload(m), c0);
      vstore(r0 + x, c0);
    }
    for (; x < d; ++x) {
      float c0 = r0[x];
      const float* m = Ms + x;
      for (long s = 0; s < nsb; ++s, m += ldm) c0 = sfma(w0[s * ws], *m, c0);
      r0[x] = c0;
    }
  }
}

// wsum with double accumulators (dK, dV): acc[a * lda + x] += sum_{s<ns} W[a * wa + s * ws] * M[s * ldm + x].
void wsum_d(double* acc, long lda, long na, const double* W, long wa, long ws, long ns, const double* M, long ldm, long d,
            const Ranges& R) {
  long x = 0, s0, s1;
  for (; x + SW <= d; x += SW) {  // one SW-column strip of M (ns x SW doubles) at a time: stays in L1
    long a = 0;
    for (; a + 4 <= na; a += 4) {
      R.of(a, 4, ns, s0, s1);
      wsum_block<vd>(acc + a * lda + x, lda, W + a * wa + s0 * ws, wa, ws, M + s0 * ldm + x, ldm, s1 - s0);
    }
    for (; a < na; ++a) {
      R.of(a, 1, ns, s0, s1);
      const double* mx = M + s0 * ldm + x;
      const long nsb = s1 - s0;
      double* r0 = acc + a * lda + x;
      const double* w0 = W + a * wa + s0 * ws;
      vd c00 = tload<vd>(r0), c01 = tload<vd>(r0 + DL);
      const double* m = mx;
      for (long s = 0; s < nsb; ++s, m += ldm) {
        const vd t = tset<vd>(w0[s * ws]);
        c00 = vfma(t, tload<vd>(m), c00); c01 = vfma(t, tload<vd>(m + DL), c01);
      }
      tstore(r0, c00); tstore(r0 + DL, c01);
    }
  }
  for (; x < d; ++x)
    for (long a = 0; a < na; ++a) {
      R.of(a, 1, ns, s0, s1);
      double c0 = acc[a * lda + x];
      const double* w0 = W + a * wa + s0 * ws;
      const double* m = M + s0 * ldm + x;
      for (long s = 0; s < s1 - s0; ++s, m += ldm) c0 = c0 + w0[s * ws] * *m;
      acc[a * lda + x] = c0;
    }
}

// BT[x * T + b] = src[b * d + x] for b < n, x < d; columns n .. round16(n) zero.
void transpose(const float* src, long n, long d, float* BT) {
  const long n16 = round16(n);
  for (long x = 0; x < d; ++x)
    for (long b = n; b < n16; ++b) BT[x * T + b] = 0.0f;
  for (long b = 0; b < n; ++b) {
    const float* s = src + b * d;
    for (long x = 0; x < d; ++x) BT[x * T + b] = s[x];
  }
}

// The same into a double tile.
void transpose_d(const float* src, long n, long d, double* BT) {
  const long n16 = round16(n);
  for (long x = 0; x < d; ++x)
    for (long b = n; b < n16; ++b) BT[x * T + b] = 0.0;
  for (long b = 0; b < n; ++b) {
    const float* s = src + b * d;
    for (long x = 0; x < d; ++x) BT[x * T + b] = s[x];
  }
}

// Running sums across tiles: each tile's partial is summed in float32 (<= T terms, in a fresh
// accumulator), then added into a double running sum (O) or a float one (dQ, in place in dq).
// A single float32 chain over all S keys (or Tq queries) would leave ~sqrt(S) ulps of the largest
// partial sum, more than the 1e-5 (scale-aware) the op tests allow at a few hundred positions.
// dK and dV (sums over every query of the kv group) are accumulated in double throughout (wsum_d).
inline void add_to_double(double* dst, const float* src, long n) {
  for (long i = 0; i < n; ++i) dst[i] += (double)src[i];
}
inline void add_to_float(float* dst, const float* src, long n) {
  for (long i = 0; i < n; ++i) dst[i] += src[i];
}
