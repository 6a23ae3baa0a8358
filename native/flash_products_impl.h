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

// C[a * T + b] = scale * sum_{x<d} A[a * lda + x] * BT[x * T + b] for a < na, b < nb16 (multiple of 16).
// Blocks outside R are left unwritten (mask_row hides them).
void score(const float* A, long lda, long na, const float* BT, long nb16, long d, float scale, float* C,
           const Ranges& R) {
  const v8f vs = vset(scale);
  long a = 0, l, h;
  for (; a + 4 <= na; a += 4) {
    const float *a0 = A + a * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
    R.of(a, 4, nb16, l, h);
    long b = l / 16 * 16;
    if constexpr (EL == 16) {  // two 16-column blocks at a time, one zmm each (8 accumulators)
      for (; b + 16 < h; b += 32) {
        ve c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {};
        const float* bt = BT + b;
        for (long x = 0; x < d; ++x, bt += T) {
          const ve b0 = eload(bt), b1 = eload(bt + 16);
          ve t = eset(a0[x]);
          c00 = efma(t, b0, c00); c01 = efma(t, b1, c01);
          t = eset(a1[x]);
          c10 = efma(t, b0, c10); c11 = efma(t, b1, c11);
          t = eset(a2[x]);
          c20 = efma(t, b0, c20); c21 = efma(t, b1, c21);
          t = eset(a3[x]);
          c30 = efma(t, b0, c30); c31 = efma(t, b1, c31);
        }
        const ve es = eset(scale);
        float* c = C + a * T + b;
        estore(c, c00 * es); estore(c + 16, c01 * es);
        estore(c + T, c10 * es); estore(c + T + 16, c11 * es);
        estore(c + 2 * T, c20 * es); estore(c + 2 * T + 16, c21 * es);
        estore(c + 3 * T, c30 * es); estore(c + 3 * T + 16, c31 * es);
      }
    }
    for (; b < h; b += 16) {
      v8f c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {};
      const float* bt = BT + b;
      for (long x = 0; x < d; ++x, bt += T) {
        const v8f b0 = vload(bt), b1 = vload(bt + 8);
        v8f s = vset(a0[x]);
        c00 = vfma(s, b0, c00); c01 = vfma(s, b1, c01);
        s = vset(a1[x]);
        c10 = vfma(s, b0, c10); c11 = vfma(s, b1, c11);
        s = vset(a2[x]);
        c20 = vfma(s, b0, c20); c21 = vfma(s, b1, c21);
        s = vset(a3[x]);
        c30 = vfma(s, b0, c30); c31 = vfma(s, b1, c31);
      }
      float* c = C + a * T + b;
      vstore(c, c00 * vs); vstore(c + 8, c01 * vs);
      vstore(c + T, c10 * vs); vstore(c + T + 8, c11 * vs);
      vstore(c + 2 * T, c20 * vs); vstore(c + 2 * T + 8, c21 * vs);
      vstore(c + 3 * T, c30 * vs); vstore(c + 3 * T + 8, c31 * vs);
    }
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
      const double *a0 = A + a * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
      vd c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {};
      const double* bt = BT + b;
      for (long x = 0; x < d; ++x, bt += T) {
        const vd b0 = dload(bt), b1 = dload(bt + DL);
        vd t = dset(a0[x]);
        c00 = dfma(t, b0, c00); c01 = dfma(t, b1, c01);
        t = dset(a1[x]);
        c10 = dfma(t, b0, c10); c11 = dfma(t, b1, c11);
        t = dset(a2[x]);
        c20 = dfma(t, b0, c20); c21 = dfma(t, b1, c21);
        t = dset(a3[x]);
        c30 = dfma(t, b0, c30); c31 = dfma(t, b1, c31);
      }
      vd d00, d01, d10, d11, d20, d21, d30, d31;
      if (Drow) {
        d00 = d01 = dset(Drow[a]); d10 = d11 = dset(Drow[a + 1]);
        d20 = d21 = dset(Drow[a + 2]); d30 = d31 = dset(Drow[a + 3]);
      } else {
        d00 = d10 = d20 = d30 = dload(Dcol + b);
        d01 = d11 = d21 = d31 = dload(Dcol + b + DL);
      }
      float* c = C + a * T + b;
      fstored(c, c00 - d00); fstored(c + DL, c01 - d01);
      fstored(c + T, c10 - d10); fstored(c + T + DL, c11 - d11);
      fstored(c + 2 * T, c20 - d20); fstored(c + 2 * T + DL, c21 - d21);
      fstored(c + 3 * T, c30 - d30); fstored(c + 3 * T + DL, c31 - d31);
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
        const vd t = dset(a0[x]);
        c00 = dfma(t, dload(bt), c00); c01 = dfma(t, dload(bt + DL), c01);
      }
      const vd d0 = Drow ? dset(Drow[a]) : dload(Dcol + b), d1 = Drow ? dset(Drow[a]) : dload(Dcol + b + DL);
      float* c = C + a * T + b;
      fstored(c, c00 - d0); fstored(c + DL, c01 - d1);
    }
  }
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
    if constexpr (EL == 16) {  // 32 columns at a time, one zmm per 16 (8 accumulators)
      for (; x + 32 <= d; x += 32) {
        ve c00 = eload(r0 + x), c01 = eload(r0 + x + 16), c10 = eload(r1 + x), c11 = eload(r1 + x + 16);
        ve c20 = eload(r2 + x), c21 = eload(r2 + x + 16), c30 = eload(r3 + x), c31 = eload(r3 + x + 16);
        const float* m = Ms + x;
        for (long s = 0; s < nsb; ++s, m += ldm) {
          const ve m0 = eload(m), m1 = eload(m + 16);
          const long o = s * ws;
          ve t = eset(w0[o]);
          c00 = efma(t, m0, c00); c01 = efma(t, m1, c01);
          t = eset(w1[o]);
          c10 = efma(t, m0, c10); c11 = efma(t, m1, c11);
          t = eset(w2[o]);
          c20 = efma(t, m0, c20); c21 = efma(t, m1, c21);
          t = eset(w3[o]);
          c30 = efma(t, m0, c30); c31 = efma(t, m1, c31);
        }
        estore(r0 + x, c00); estore(r0 + x + 16, c01); estore(r1 + x, c10); estore(r1 + x + 16, c11);
        estore(r2 + x, c20); estore(r2 + x + 16, c21); estore(r3 + x, c30); estore(r3 + x + 16, c31);
      }
    }
    for (; x + 16 <= d; x += 16) {
      v8f c00 = vload(r0 + x), c01 = vload(r0 + x + 8), c10 = vload(r1 + x), c11 = vload(r1 + x + 8);
      v8f c20 = vload(r2 + x), c21 = vload(r2 + x + 8), c30 = vload(r3 + x), c31 = vload(r3 + x + 8);
      const float* m = Ms + x;
      for (long s = 0; s < nsb; ++s, m += ldm) {
        const v8f m0 = vload(m), m1 = vload(m + 8);
        const long o = s * ws;
        v8f t = vset(w0[o]);
        c00 = vfma(t, m0, c00); c01 = vfma(t, m1, c01);
        t = vset(w1[o]);
        c10 = vfma(t, m0, c10); c11 = vfma(t, m1, c11);
        t = vset(w2[o]);
        c20 = vfma(t, m0, c20); c21 = vfma(t, m1, c21);
        t = vset(w3[o]);
        c30 = vfma(t, m0, c30); c31 = vfma(t, m1, c31);
      }
      vstore(r0 + x, c00); vstore(r0 + x + 8, c01); vstore(r1 + x, c10); vstore(r1 + x + 8, c11);
      vstore(r2 + x, c20); vstore(r2 + x + 8, c21); vstore(r3 + x, c30); vstore(r3 + x + 8, c31);
    }
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
inline void dstore(double* p, vd a) { std::memcpy(p, &a, sizeof a); }
void wsum_d(double* acc, long lda, long na, const double* W, long wa, long ws, long ns, const double* M, long ldm, long d,
            const Ranges& R) {
  long x = 0, s0, s1;
  for (; x + SW <= d; x += SW) {  // one SW-column strip of M (ns x SW doubles) at a time: stays in L1
    long a = 0;
    for (; a + 4 <= na; a += 4) {
      R.of(a, 4, ns, s0, s1);
      const double* mx = M + s0 * ldm + x;
      const long nsb = s1 - s0;
      double *r0 = acc + a * lda + x, *r1 = r0 + lda, *r2 = r1 + lda, *r3 = r2 + lda;
      const double *w0 = W + a * wa + s0 * ws, *w1 = w0 + wa, *w2 = w1 + wa, *w3 = w2 + wa;
      vd c00 = dload(r0), c01 = dload(r0 + DL), c10 = dload(r1), c11 = dload(r1 + DL);
      vd c20 = dload(r2), c21 = dload(r2 + DL), c30 = dload(r3), c31 = dload(r3 + DL);
      const double* m = mx;
      for (long s = 0; s < nsb; ++s, m += ldm) {
        const vd m0 = dload(m), m1 = dload(m + DL);
        const long o = s * ws;
        vd t = dset(w0[o]);
        c00 = dfma(t, m0, c00); c01 = dfma(t, m1, c01);
        t = dset(w1[o]);
        c10 = dfma(t, m0, c10); c11 = dfma(t, m1, c11);
        t = dset(w2[o]);
        c20 = dfma(t, m0, c20); c21 = dfma(t, m1, c21);
        t = dset(w3[o]);
        c30 = dfma(t, m0, c30); c31 = dfma(t, m1, c31);
      }
      dstore(r0, c00); dstore(r0 + DL, c01); dstore(r1, c10); dstore(r1 + DL, c11);
      dstore(r2, c20); dstore(r2 + DL, c21); dstore(r3, c30); dstore(r3 + DL, c31);
    }
    for (; a < na; ++a) {
      R.of(a, 1, ns, s0, s1);
      const double* mx = M + s0 * ldm + x;
      const long nsb = s1 - s0;
      double* r0 = acc + a * lda + x;
      const double* w0 = W + a * wa + s0 * ws;
      vd c00 = dload(r0), c01 = dload(r0 + DL);
      const double* m = mx;
      for (long s = 0; s < nsb; ++s, m += ldm) {
        const vd t = dset(w0[s * ws]);
        c00 = dfma(t, dload(m), c00); c01 = dfma(t, dload(m + DL), c01);
      }
      dstore(r0, c00); dstore(r0 + DL, c01);
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
