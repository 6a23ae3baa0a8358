// FlashAttention forward and backward on float32 (see flash.h), written once over 8-lane GCC vector
// types: with -mavx2 -mfma they are ymm registers and explicit FMAs, on the x86-64 baseline GCC splits
// them into SSE pairs (no FMA). Included once per ISA with TSF_FNS defined; everything lives in that
// namespace and no std templates are instantiated, so the differently compiled copies never merge.
//
// Tiles are T x T (T = 64) with a mask status per tile (skip / partial / full) as in js/flash.ts;
// inside a partial tile the products also skip the register blocks that the causal or window rule
// hides wholly (Ranges), which leaves the bits unchanged.
// Two float32 products, both register-blocked 4 x 16 (and score_dp / wsum_d, their double twins):
//   score: C[a][b] = scale * sum_x A[a][x] * BT[x][b]   (A rows read in place, BT a transposed tile)
//   wsum:  acc[a][x] += sum_s W[a, s] * M[s][x]         (M rows read in place, W a tile of P or dS)
// Forward (FA2 Alg. 1): one work item per (batch, head, query tile); Q^T is transposed once per item,
// the scores are held key-major (ST[c][r]) so that the online softmax runs along vectors of queries.
// Backward (FA2 Alg. 2, recomputing P = exp(S - L), D = rowsum(dO * O)): dK, dV per key tile of one kv
// head, looping over the group's query heads and query tiles (K^T, V^T transposed once per key tile);
// dQ either in the same sweep (one item = a whole (batch, kv head, sequence), dQ accumulated in dq)
// or, when there are too few such items to share among threads, in a second pass over query tiles.
// The choice depends on the shape only, and every element is summed in the same order either way
// (FMA is commutative in its product), so the bits never depend on the thread count.
//
// Precision (what the 1e-5 scale-aware op tests against float64 PyTorch need, measured):
//   - q.k, P = exp(S - L), P V and dS K are float32 FMA chains of at most T terms per tile; the tile
//     partials of O go into a double running sum (with the online rescaling), those of dQ into dq;
//   - dP - D is formed in double (score_dp): float32 leaves ~1 ulp of |dP|, which the cancellation in
//     dS = P (dP - D) turns into a large error where the probabilities concentrate on few keys (and
//     it makes dQ = 0 exact for a query that sees one key);
//   - dK and dV are accumulated in double (wsum_d): they sum over every query of a kv group and a
//     float32 tile chain alone measured 1.1e-5 on the GQA fixture.
// The double products cost about 40% of the backward; the result is still ~2x the materializing path.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "flash.h"
#include "pool.h"


#pragma GCC diagnostic ignored "-Wpsabi"  // 32-byte vectors in the baseline build (inlined: no ABI is crossed)

namespace tsf {
namespace TSF_FNS {
namespace {

typedef float v8f __attribute__((vector_size(32)));

constexpr long T = 64;  // tile rows (queries) = tile columns (keys)
const float kInf = __builtin_inff();

inline long lmin(long a, long b) { return a < b ? a : b; }
inline long round16(long n) { return (n + 15) & ~15L; }

inline v8f vload(const float* p) { v8f r; std::memcpy(&r, p, 32); return r; }
inline void vstore(float* p, v8f a) { std::memcpy(p, &a, 32); }
inline v8f vset(float x) { return v8f{x, x, x, x, x, x, x, x}; }
inline v8f vfma(v8f a, v8f b, v8f c) {  // a * b + c
#if defined(__AVX2__) && defined(__FMA__)
  return (v8f)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}
inline float sfma(float a, float b, float c) {  // the same rounding as one lane of vfma
#if defined(__AVX2__) && defined(__FMA__)
  return __builtin_fmaf(a, b, c);
#else
  return a * b + c;
#endif
}

// Double vectors of DL lanes for score_dp / wsum_d: 8 with AVX-512 (zmm), else 4. The products work
// on strips of SW = 2 DL columns; every element is still summed in the same order, so the lane count
// changes no bits.
#if defined(__AVX512F__)
constexpr long DL = 8;
#else
constexpr long DL = 4;
#endif
constexpr long SW = 2 * DL;
typedef double vd __attribute__((vector_size(DL * 8)));
typedef float vdf __attribute__((vector_size(DL * 4)));
inline vd dload(const double* p) { vd r; std::memcpy(&r, p, sizeof r); return r; }
inline vd dset(double x) { return vd{} + x; }
inline vd dfma(vd a, vd b, vd c) {  // a * b + c (products of floats are exact in double)
#if defined(__AVX512F__)
  return (vd)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
#elif defined(__AVX2__) && defined(__FMA__)
  return (vd)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
#else
  return a * b + c;
#endif
}
inline void fstored(float* p, vd a) { const vdf f = __builtin_convertvector(a, vdf); std::memcpy(p, &f, sizeof f); }

#include "exp_impl.h"

// The elementwise passes over score tiles (exp, the online softmax, dS = P dP) on EL-lane vectors: 16
// with AVX-512 (zmm), else 8. Each lane is one element (or one query row, summed over keys in order),
// so the lane count changes no bits. Tile widths (nq16, nk16) are multiples of 16.
#if defined(__AVX512F__)
constexpr long EL = 16;
#else
constexpr long EL = 8;
#endif
typedef float ve __attribute__((vector_size(EL * 4)));
typedef int32_t vei __attribute__((vector_size(EL * 4)));
inline ve eload(const float* p) { ve r; std::memcpy(&r, p, sizeof r); return r; }
inline void estore(float* p, ve a) { std::memcpy(p, &a, sizeof a); }
inline ve eset(float x) { return ve{} + x; }
inline ve e_exp(ve x) { return exp_cephes<ve, vei>(x); }
inline ve efma(ve a, ve b, ve c) {  // a * b + c, one rounding (as vfma)
#if defined(__AVX512F__)
  return (ve)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#else
  return vfma(a, b, c);
#endif
}

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

// --- the mask (AttentionMaskArgs; js/flash.ts AttentionMask) ---------------------------------------
enum { SKIP = 0, PARTIAL = 1, FULL = 2 };
struct Seg { long q0, k0, nq, nk, off; };

struct Mask {
  bool causal = false;
  long window = 0;
  const uint8_t* table = nullptr;
  long bs = 1, nb = 0;
  // Key position j visible to query position i. A query position below 0 (Tq > S) lies outside the
  // block table: the table does not hide anything from it (as AttentionMask.visible).
  bool visible(long i, long j) const {
    if (causal && j > i) return false;
    if (window > 0 && j <= i - window) return false;
    return !table || i < 0 || table[(i / bs) * nb + j / bs] != 0;
  }
  int tile(long i0, long i1, long j0, long j1) const {
    bool full = true;
    if (causal) {
      if (j0 > i1) return SKIP;
      if (j1 > i0) full = false;
    }
    if (window > 0) {
      if (j1 <= i0 - window) return SKIP;
      if (j0 <= i1 - window) full = false;
    }
    if (table && i1 >= 0) {
      bool any = i0 < 0, all = true;
      const long b0 = (i0 < 0 ? 0 : i0) / bs, b1 = i1 / bs, c0 = j0 / bs, c1 = j1 / bs;
      for (long qb = b0; qb <= b1; ++qb)
        for (long kb = c0; kb <= c1; ++kb) {
          if (table[qb * nb + kb]) any = true;
          else all = false;
        }
      if (!any) return SKIP;
      if (!all) full = false;
    }
    return full ? FULL : PARTIAL;
  }
};

// The keys j0 + [lo, hi) of j0 .. j0 + nk - 1 that the causal and window rules leave to query
// position i (a contiguous range; lo and hi never decrease as i grows).
inline void key_range(const Mask& mk, long i, long j0, long nk, long& lo, long& hi) {
  lo = 0;
  hi = nk;
  if (mk.causal && i - j0 + 1 < hi) hi = i - j0 + 1;
  if (mk.window > 0 && i - mk.window + 1 - j0 > lo) lo = i - mk.window + 1 - j0;
  if (lo > nk) lo = nk;
  if (hi < lo) hi = lo;
}

// Hides (-inf) the keys j0 .. j0 + nk - 1 that query position i cannot see: row[c * stride], c < nk.
void mask_row(const Mask& mk, long i, long j0, long nk, float* row, long stride) {
  long lo, hi;
  key_range(mk, i, j0, nk, lo, hi);
  for (long c = 0; c < lo; ++c) row[c * stride] = -kInf;
  for (long c = hi; c < nk; ++c) row[c * stride] = -kInf;
  if (!mk.table || i < 0) return;
  const uint8_t* trow = mk.table + (i / mk.bs) * mk.nb;
  for (long c = lo; c < hi;) {
    const long kb = (j0 + c) / mk.bs, end = lmin(hi, (kb + 1) * mk.bs - j0);
    if (!trow[kb])
      for (; c < end; ++c) row[c * stride] = -kInf;
    else
      c = end;
  }
}

// The Ranges of one tile pair (queries i0 .., keys j0 ..) with mask status st: for a PARTIAL tile,
// keys [lo[r], hi[r]) of query row r and queries [qlo[c], qhi[c]) of key column c (rows past nq and
// columns past nk see nothing); other tiles get Ranges that cover everything, computed from nothing.
struct Span {
  int32_t lo[T], hi[T], qlo[T], qhi[T];
  Ranges queries, keys;  // per query row: its keys; per key row: its queries
  Span(const Mask& mk, int st, long i0, long nq, long j0, long nk) {
    if (st != PARTIAL) return;
    for (long r = 0; r < T; ++r) {
      long l = 0, h = 0;
      if (r < nq) key_range(mk, i0 + r, j0, nk, l, h);
      lo[r] = (int32_t)l;
      hi[r] = (int32_t)h;
    }
    // {r : lo[r] <= c < hi[r]} = [first r with hi[r] > c, first r with lo[r] > c): both monotone in c
    long rl = 0, rh = 0;
    for (long c = 0; c < T; ++c) {
      while (rl < nq && hi[rl] <= c) ++rl;
      while (rh < nq && lo[rh] <= c) ++rh;
      qlo[c] = (int32_t)(c < nk ? rl : 0);
      qhi[c] = (int32_t)(c < nk && rh > rl ? rh : qlo[c]);
    }
    queries = Ranges{lo, hi};
    keys = Ranges{qlo, qhi};
  }
  Span(const Span&) = delete;  // the Ranges point into this object
  Span& operator=(const Span&) = delete;
};

struct TileRef { long seg, t0; };

// Shape bookkeeping shared by forward and backward (segments and the tile lists; malloc'd).
struct Plan {
  const FlashParams* p;
  Mask mk;
  Seg* segs = nullptr;
  long nseg = 0;
  TileRef* tiles = nullptr;  // T-row tiles of every segment (query tiles; key tiles: same, since a
  long ntiles = 0;           // segment has nq == nk with cuSeqlens)
  TileRef* ktiles = nullptr;
  long nktiles = 0;
  long group = 1;
  explicit Plan(const FlashParams& fp) : p(&fp) {
    mk.causal = fp.causal;
    mk.window = fp.window;
    mk.table = fp.table;
    mk.bs = fp.bs < 1 ? 1 : fp.bs;
    mk.nb = (fp.S + mk.bs - 1) / mk.bs;
    group = fp.Hkv > 0 ? fp.H / fp.Hkv : 1;
    if (fp.cu) {
      segs = static_cast<Seg*>(std::malloc(sizeof(Seg) * (fp.ncu > 1 ? fp.ncu : 1)));
      for (long i = 1; i < fp.ncu; ++i) {
        const long n = (long)fp.cu[i] - fp.cu[i - 1];
        if (n > 0) segs[nseg++] = Seg{fp.cu[i - 1], fp.cu[i - 1], n, n, 0};
      }
    } else {
      segs = static_cast<Seg*>(std::malloc(sizeof(Seg)));
      segs[nseg++] = Seg{0, 0, fp.Tq, fp.S, fp.S - fp.Tq};
    }
    long nq = 0, nk = 0;
    for (long s = 0; s < nseg; ++s) { nq += (segs[s].nq + T - 1) / T; nk += (segs[s].nk + T - 1) / T; }
    tiles = static_cast<TileRef*>(std::malloc(sizeof(TileRef) * (nq + 1)));
    ktiles = static_cast<TileRef*>(std::malloc(sizeof(TileRef) * (nk + 1)));
    for (long s = 0; s < nseg; ++s) {
      for (long t = 0; t < segs[s].nq; t += T) tiles[ntiles++] = TileRef{s, t};
      for (long t = 0; t < segs[s].nk; t += T) ktiles[nktiles++] = TileRef{s, t};
    }
  }
  ~Plan() { std::free(segs); std::free(tiles); std::free(ktiles); }
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;
};

// Per-thread tile scratch (grown on demand, kept for the thread's lifetime).
thread_local float* tl_buf = nullptr;
thread_local long tl_cap = 0;
float* scratch(long n) {
  if (n > tl_cap) {
    std::free(tl_buf);
    tl_cap = n + 64;
    tl_buf = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * ((tl_cap + 15) & ~15L)));
  }
  return tl_buf;
}

// --- threading: items 0 .. n-1 handed out dynamically (each item's result is order independent) ---
struct Run {
  long n = 0;
  long next = 0;
  void (*item)(const void* ctx, long i) = nullptr;
  const void* ctx = nullptr;
};
void run_task(void* vc, int, int) {
  Run* r = static_cast<Run*>(vc);
  for (;;) {
    const long i = __atomic_fetch_add(&r->next, 1, __ATOMIC_RELAXED);
    if (i >= r->n) break;
    r->item(r->ctx, i);
  }
}
void run_items(long n, double work, void (*item)(const void*, long), const void* ctx) {
  if (n <= 0) return;
  Run r;
  r.n = n; r.item = item; r.ctx = ctx;
  long nt = work >= 65536.0 ? pool_threads() : 1;
  if (nt > n) nt = n;
  if (nt <= 1) { run_task(&r, 0, 1); return; }
  pool_run((int)nt, run_task, &r);
}

// --- forward --------------------------------------------------------------------------------------
void fwd_item(const void* vc, long idx) {
  const Plan& P = *static_cast<const Plan*>(vc);
  const FlashParams& p = *P.p;
  const long d = p.d, bh = idx / P.ntiles, ti = P.ntiles - 1 - idx % P.ntiles;  // late (costly) tiles first
  const long b = bh / p.H, h = bh % p.H;
  const Seg& sg = P.segs[P.tiles[ti].seg];
  const long t0 = P.tiles[ti].t0, nq = lmin(T, sg.nq - t0), nq16 = round16(nq), i0 = t0 + sg.off;
  const long qrow = bh * p.Tq + sg.q0 + t0, krow0 = (b * p.Hkv + h / P.group) * p.S + sg.k0;
  float* buf = scratch((4 * d + T + 5) * T);
  double* accd = reinterpret_cast<double*>(buf);  // running O, T x d doubles
  double* l = accd + T * d;                       // running row sums, T doubles
  float* QT = buf + 2 * (T * d + T);
  float* ST = QT + d * T;
  float* acc = ST + T * T;                        // one key tile's P V
  float* m = acc + T * d;
  float* al = m + T;
  transpose(p.q + qrow * d, nq, d, QT);
  for (long r = 0; r < T; ++r) { m[r] = -kInf; l[r] = 0.0; }
  std::memset(accd, 0, sizeof(double) * nq * d);
  for (long j0 = 0; j0 < sg.nk; j0 += T) {
    const long nk = lmin(T, sg.nk - j0);
    const int st = P.mk.tile(i0, i0 + nq - 1, j0, j0 + nk - 1);
    if (st == SKIP) continue;
    const float* kr = p.k + (krow0 + j0) * d;
    const Span sp(P.mk, st, i0, nq, j0, nk);
    // S_ij^T = scale K_j Q_i^T, hidden pairs -inf (Alg. 1 line 8)
    score(kr, d, nk, QT, nq16, d, p.scale, ST, sp.keys);
    if (st == PARTIAL)
      for (long r = 0; r < nq; ++r) mask_row(P.mk, i0 + r, j0, nk, ST + r, T);
    // m_new = max(m, rowmax S), P = exp(S - m_new), l = e^(m - m_new) l + rowsum P (lines 9-10)
    for (long rv = 0; rv < nq16; rv += EL) {
      const ve mo = eload(m + rv);
      ve mx = mo;
      for (long c = 0; c < nk; ++c) { const ve x = eload(ST + c * T + rv); mx = mx > x ? mx : x; }
      const ve ms = mx == eset(-kInf) ? eset(0.0f) : mx;  // nothing visible yet: P = 0, alpha = 0
      const ve alpha = e_exp(mo - ms);
      ve sum = {};
      for (long c = 0; c < nk; ++c) {
        const ve e = e_exp(eload(ST + c * T + rv) - ms);
        estore(ST + c * T + rv, e);
        sum += e;
      }
      estore(m + rv, mx);
      estore(al + rv, alpha);
      float sm[EL];
      estore(sm, sum);
      for (long i = 0; i < EL; ++i) l[rv + i] = (double)al[rv + i] * l[rv + i] + (double)sm[i];
    }
    // O = e^(m - m_new) O + P V_j
    std::memset(acc, 0, sizeof(float) * nq * d);
    wsum(acc, d, nq, ST, 1, T, nk, p.v + (krow0 + j0) * d, d, d, sp.queries);
    for (long r = 0; r < nq; ++r) {
      const double a = al[r];
      double* o = accd + r * d;
      const float* t = acc + r * d;
      if (a != 1.0)
        for (long x = 0; x < d; ++x) o[x] = o[x] * a + (double)t[x];
      else
        add_to_double(o, t, d);
    }
  }
  // O_i = O / l, L_i = m + log l (lines 12-13); no visible key: O = 0, L = -inf
  for (long r = 0; r < nq; ++r) {
    float* o = p.o + (qrow + r) * d;
    if (l[r] == 0.0) {
      for (long x = 0; x < d; ++x) o[x] = 0.0f;
      p.lse[qrow + r] = -kInf;
      continue;
    }
    const double inv = 1.0 / l[r];
    for (long x = 0; x < d; ++x) o[x] = (float)(accd[r * d + x] * inv);
    p.lse[qrow + r] = (float)((double)m[r] + std::log(l[r]));
  }
}

void forward(const FlashParams& p) {
  if (p.B * p.H * p.Tq == 0) return;
  Plan P(p);
  const double work = (double)p.B * p.H * p.Tq * (double)p.S * (double)(p.d + 1);
  run_items(p.B * p.H * P.ntiles, work, fwd_item, &P);
}

// --- backward -------------------------------------------------------------------------------------
struct Bwd {
  Plan* P;
  double* D;  // rowsum(dO * O) in double, [B, H, Tq]
  bool fused;
};

void d_item(const void* vc, long i) {  // D for 256 rows (x ascending from 0, as score_dp sums)
  const Bwd& w = *static_cast<const Bwd*>(vc);
  const FlashParams& p = *w.P->p;
  const long rows = p.B * p.H * p.Tq, r1 = lmin(rows, (i + 1) * 256);
  for (long r = i * 256; r < r1; ++r) {
    const float *a = p.dO + r * p.d, *o = p.o + r * p.d;
    double s = 0;
    for (long x = 0; x < p.d; ++x) s += (double)a[x] * (double)o[x];
    w.D[r] = s;
  }
}

// One key tile (K^T, V^T given) against one query tile, scores row-major S[r][c]: accumulates dV_j,
// dK_j and, when dq != null, dQ_i (Alg. 2 lines 11-16).
void kv_pair(const FlashParams& p, const Mask& mk, int st, const float* KT, const double* VT, const float* kr,
             long nk, long j0, long qrow, long nq, long i0, const double* D, float* Sb, float* dPb,
             float* tile, double* Wd, double* Qd, double* Gd, double* dkd, double* dvd, float* dq) {
  const long d = p.d, nk16 = round16(nk);
  const float* qr = p.q + qrow * d;
  const float* gr = p.dO + qrow * d;
  for (long i = 0; i < nq * d; ++i) { Qd[i] = qr[i]; Gd[i] = gr[i]; }
  const Span sp(mk, st, i0, nq, j0, nk);
  score(qr, d, nq, KT, nk16, d, p.scale, Sb, sp.queries);
  if (st == PARTIAL)
    for (long r = 0; r < nq; ++r) mask_row(mk, i0 + r, j0, nk, Sb + r * T, 1);
  // P_ij = exp(S_ij - L_i) (line 11); a row with no visible key (L = -inf) has P = 0
  for (long r = 0; r < nq; ++r) {
    const float L = p.lse[qrow + r];
    const ve vl = eset(L == -kInf ? kInf : L);
    for (long c = 0; c < nk16; c += EL) estore(Sb + r * T + c, e_exp(eload(Sb + r * T + c) - vl));
  }
  // dP_ij - D_i with dP = dO_i V_j^T (line 13); dS_ij = P_ij (dP_ij - D_i) (line 14), scale folded in
  score_dp(Gd, d, nq, VT, nk16, d, D + qrow, nullptr, dPb, sp.queries);
  const ve vs = eset(p.scale);
  for (long r = 0; r < nq; ++r)
    for (long c = 0; c < nk16; c += EL)
      estore(dPb + r * T + c, eload(Sb + r * T + c) * eload(dPb + r * T + c) * vs);
  // dV_j += P^T dO_i (line 12), dK_j += dS^T Q_i (line 16), in double
  for (long i = 0; i < nq * T; ++i) Wd[i] = Sb[i];
  wsum_d(dvd, d, nk, Wd, 1, T, nq, Gd, d, d, sp.keys);
  for (long i = 0; i < nq * T; ++i) Wd[i] = dPb[i];
  wsum_d(dkd, d, nk, Wd, 1, T, nq, Qd, d, d, sp.keys);
  // dQ_i += dS K_j (line 15)
  if (dq) {
    std::memset(tile, 0, sizeof(float) * nq * d);
    wsum(tile, d, nq, dPb, T, 1, nk, kr, d, d, sp.queries);
    add_to_float(dq + qrow * d, tile, nq * d);
  }
}

// Scratch floats of a backward item (the double tile counts twice).
inline long bwd_scratch(long d) { return (12 * d + 4 * T + 4) * T; }

// dK, dV of one key tile of kv head (b, kvh), over the group's query heads and tiles; dQ too if fused.
void kv_block(const Bwd& w, long b, long kvh, const Seg& sg, long j0) {
  const Plan& P = *w.P;
  const FlashParams& p = *P.p;
  const long d = p.d, nk = lmin(T, sg.nk - j0);
  const long krow = (b * p.Hkv + kvh) * p.S + sg.k0 + j0;
  float* buf = scratch(bwd_scratch(d));
  double* VT = reinterpret_cast<double*>(buf);  // d x T doubles
  double* dkd = VT + d * T;  // running dK_j, dV_j: T x d doubles each
  double* dvd = dkd + d * T;
  float* KT = buf + 6 * d * T;
  float* Sb = KT + d * T;
  float* dPb = Sb + T * T;
  float* tile = dPb + T * T;  // T x d
  double* Wd = reinterpret_cast<double*>(tile + T * d);  // T x T doubles
  double* Qd = Wd + T * T;  // the query tile's Q and dO rows in double, T x d each
  double* Gd = Qd + T * d;
  const float* kr = p.k + krow * d;
  transpose(kr, nk, d, KT);
  transpose_d(p.v + krow * d, nk, d, VT);
  std::memset(dkd, 0, sizeof(double) * nk * d);
  std::memset(dvd, 0, sizeof(double) * nk * d);
  for (long g = 0; g < P.group; ++g) {
    const long qh = (b * p.H + kvh * P.group + g) * p.Tq + sg.q0;
    for (long t0 = 0; t0 < sg.nq; t0 += T) {
      const long nq = lmin(T, sg.nq - t0), i0 = t0 + sg.off;
      const int st = P.mk.tile(i0, i0 + nq - 1, j0, j0 + nk - 1);
      if (st == SKIP) continue;
      kv_pair(p, P.mk, st, KT, VT, kr, nk, j0, qh + t0, nq, i0, w.D, Sb, dPb, tile, Wd, Qd, Gd, dkd, dvd, w.fused ? p.dq : nullptr);
    }
  }
  float* dk = p.dk + krow * d;
  float* dv = p.dv + krow * d;
  for (long i = 0; i < nk * d; ++i) { dk[i] = (float)dkd[i]; dv[i] = (float)dvd[i]; }
}

void fused_item(const void* vc, long idx) {  // (b, kvh, segment): all of its dK, dV and dQ
  const Bwd& w = *static_cast<const Bwd*>(vc);
  const Plan& P = *w.P;
  const FlashParams& p = *P.p;
  const long s = idx % P.nseg, bk = idx / P.nseg, b = bk / p.Hkv, kvh = bk % p.Hkv;
  const Seg& sg = P.segs[s];
  for (long g = 0; g < P.group; ++g) {
    const long qh = (b * p.H + kvh * P.group + g) * p.Tq + sg.q0;
    std::memset(p.dq + qh * p.d, 0, sizeof(float) * sg.nq * p.d);
  }
  for (long j0 = 0; j0 < sg.nk; j0 += T) kv_block(w, b, kvh, sg, j0);
}

void kv_item(const void* vc, long idx) {  // (b, kvh, key tile): dK, dV only
  const Bwd& w = *static_cast<const Bwd*>(vc);
  const Plan& P = *w.P;
  const long bk = idx / P.nktiles, kt = idx % P.nktiles;
  kv_block(w, bk / P.p->Hkv, bk % P.p->Hkv, P.segs[P.ktiles[kt].seg], P.ktiles[kt].t0);
}

// (b, h, query tile): dQ only, with the scores key-major (ST[c][r]). Every element goes through the
// same operations in the same order as in kv_pair, so dQ has the same bits as in the fused sweep.
void q_item(const void* vc, long idx) {
  const Bwd& w = *static_cast<const Bwd*>(vc);
  const Plan& P = *w.P;
  const FlashParams& p = *P.p;
  const long d = p.d, bh = idx / P.ntiles, ti = P.ntiles - 1 - idx % P.ntiles;
  const long b = bh / p.H, h = bh % p.H;
  const Seg& sg = P.segs[P.tiles[ti].seg];
  const long t0 = P.tiles[ti].t0, nq = lmin(T, sg.nq - t0), nq16 = round16(nq), i0 = t0 + sg.off;
  const long qrow = bh * p.Tq + sg.q0 + t0, krow0 = (b * p.Hkv + h / P.group) * p.S + sg.k0;
  float* buf = scratch(bwd_scratch(d));
  double* GT = reinterpret_cast<double*>(buf);  // dO^T, d x T doubles
  double* Dv = reinterpret_cast<double*>(buf + 2 * d * T);  // T doubles
  float* QT = buf + 2 * d * T + 2 * T;
  float* ST = QT + d * T;
  float* dPT = ST + T * T;
  float* Ls = dPT + T * T;
  float* tile = Ls + T;  // T x d
  double* Vd = reinterpret_cast<double*>(tile + T * d);  // the key tile's V rows in double, T x d
  transpose(p.q + qrow * d, nq, d, QT);
  transpose_d(p.dO + qrow * d, nq, d, GT);
  for (long r = 0; r < T; ++r) {
    const float L = r < nq ? p.lse[qrow + r] : -kInf;
    Ls[r] = L == -kInf ? kInf : L;
    Dv[r] = r < nq ? w.D[qrow + r] : 0.0;
  }
  float* dq = p.dq + qrow * d;
  std::memset(dq, 0, sizeof(float) * nq * d);
  const ve vs = eset(p.scale);
  for (long j0 = 0; j0 < sg.nk; j0 += T) {
    const long nk = lmin(T, sg.nk - j0);
    const int st = P.mk.tile(i0, i0 + nq - 1, j0, j0 + nk - 1);
    if (st == SKIP) continue;
    const float* kr = p.k + (krow0 + j0) * d;
    const Span sp(P.mk, st, i0, nq, j0, nk);
    score(kr, d, nk, QT, nq16, d, p.scale, ST, sp.keys);
    if (st == PARTIAL)
      for (long r = 0; r < nq; ++r) mask_row(P.mk, i0 + r, j0, nk, ST + r, T);
    for (long c = 0; c < nk; ++c)
      for (long r = 0; r < nq16; r += EL) estore(ST + c * T + r, e_exp(eload(ST + c * T + r) - eload(Ls + r)));
    const float* vr = p.v + (krow0 + j0) * d;
    for (long i = 0; i < nk * d; ++i) Vd[i] = vr[i];
    score_dp(Vd, d, nk, GT, nq16, d, nullptr, Dv, dPT, sp.keys);
    for (long c = 0; c < nk; ++c)
      for (long r = 0; r < nq16; r += EL)
        estore(dPT + c * T + r, eload(ST + c * T + r) * eload(dPT + c * T + r) * vs);
    std::memset(tile, 0, sizeof(float) * nq * d);
    wsum(tile, d, nq, dPT, 1, T, nk, kr, d, d, sp.queries);
    add_to_float(dq, tile, nq * d);
  }
}

void backward(const FlashParams& p) {
  const long nq = p.B * p.H * p.Tq, nk = p.B * p.Hkv * p.S;
  if (nq == 0) {  // no queries: no gradient reaches k and v
    if (nk * p.d > 0) { std::memset(p.dk, 0, sizeof(float) * nk * p.d); std::memset(p.dv, 0, sizeof(float) * nk * p.d); }
    return;
  }
  Plan P(p);
  Bwd w;
  w.P = &P;
  w.D = static_cast<double*>(std::malloc(sizeof(double) * nq));
  const double work = (double)nq * (double)p.S * (double)(p.d + 1);
  run_items((nq + 255) / 256, (double)nq * p.d, d_item, &w);
  // Fused when there are enough (b, kv head, sequence) items to share among threads; decided by the
  // shape alone (the result is the same bits either way).
  const long nf = p.B * p.Hkv * P.nseg;
  w.fused = p.bwd_mode == 1 || (p.bwd_mode == 0 && nf >= 8);
  if (w.fused) {
    run_items(nf, work, fused_item, &w);
  } else {
    run_items(p.B * p.Hkv * P.nktiles, work, kv_item, &w);
    run_items(p.B * p.H * P.ntiles, work, q_item, &w);
  }
  std::free(w.D);
}

}  // namespace
}  // namespace TSF_FNS
}  // namespace tsf


