// FlashAttention forward and backward on float32 (see flash.h), written once over 8-lane GCC vector
// types: with -mavx2 -mfma they are ymm registers and explicit FMAs, on the x86-64 baseline GCC splits
// them into SSE pairs (no FMA). Included once per ISA with TSF_FNS defined; everything lives in that
// namespace and no std templates are instantiated, so the differently compiled copies never merge.
//
// Tiles are T x T (T = 64) with a mask status per tile (skip / partial / full) as in src/backend/mask.ts;
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
#include "runtime/pool.h"


#pragma GCC diagnostic ignored "-Wpsabi"  // 32-byte vectors in the baseline build (inlined: no ABI is crossed)

namespace tsf {
namespace TSF_FNS {
namespace {

#include "flash_vec_impl.h"       // vector types, exp, the tile size T
#include "flash_products_impl.h"  // score / wsum and their double twins, transposes
#include "flash_mask_impl.h"      // mask, tile statuses, Span, Plan, run_items

// --- forward --------------------------------------------------------------------------------------
void fwd_item(const void* vc, long idx) {
  const Plan& P = *static_cast<const Plan*>(vc);
  const FlashParams& p = *P.p;
  const long d = p.d, bh = idx / P.ntiles, ti = P.ntiles - 1 - idx % P.ntiles;  // late (costly) tiles first
  const long b = bh / p.H, h = bh % p.H;
  const Seg& sg = P.segs[P.tiles[ti].seg];
  const long t0 = P.tiles[ti].t0, nq = lmin(T, sg.nq - t0), nq16 = round16(nq), i0 = t0 + sg.off;
  const long qrow = bh * p.Tq + sg.q0 + t0, krow0 = (b * p.Hkv + h / P.group) * p.kv_rows + sg.k0;
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
      const ve mo = tload<ve>(m + rv);
      ve mx = mo;
      for (long c = 0; c < nk; ++c) { const ve x = tload<ve>(ST + c * T + rv); mx = mx > x ? mx : x; }
      const ve ms = mx == tset<ve>(-kInf) ? tset<ve>(0.0f) : mx;  // nothing visible yet: P = 0, alpha = 0
      const ve alpha = e_exp(mo - ms);
      ve sum = {};
      for (long c = 0; c < nk; ++c) {
        const ve e = e_exp(tload<ve>(ST + c * T + rv) - ms);
        tstore(ST + c * T + rv, e);
        sum += e;
      }
      tstore(m + rv, mx);
      tstore(al + rv, alpha);
      float sm[EL];
      tstore(sm, sum);
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

// A kv_block's running dK_j, dV_j and its V_j^T: in double (with the double copies of the query tile's
// Q and dO rows and of the P / dS tile that wsum_d reads), or under autocast (p.lowp) in float32.
struct KvAcc {
  const double* VT; double *dkd, *dvd, *Wd, *Qd, *Gd;  // double path
  const float* VTf; float *dkf, *dvf;                  // p.lowp
};

// One key tile (K^T, V^T given) against one query tile, scores row-major S[r][c]: accumulates dV_j,
// dK_j and, when dq != null, dQ_i (Alg. 2 lines 11-16). Under autocast (p.lowp) dP - D is formed and
// dK, dV are summed in float32, as a bf16 autocast runs attention with float32 accumulation (the
// cancellation the double path avoids costs dQ and dK ~1e-4 relative on peaked rows, below bf16's
// 2^-8); q_item repeats its dS and dQ operations bit for bit either way.
void kv_pair(const FlashParams& p, const Mask& mk, int st, const float* KT, const float* kr, long nk, long j0,
             long qrow, long nq, long i0, const double* D, float* Sb, float* dPb, float* tile, const KvAcc& a,
             float* dq) {
  const long d = p.d, nk16 = round16(nk);
  const float* qr = p.q + qrow * d;
  const float* gr = p.dO + qrow * d;
  const Span sp(mk, st, i0, nq, j0, nk);
  score(qr, d, nq, KT, nk16, d, p.scale, Sb, sp.queries);
  if (st == PARTIAL)
    for (long r = 0; r < nq; ++r) mask_row(mk, i0 + r, j0, nk, Sb + r * T, 1);
  // P_ij = exp(S_ij - L_i) (line 11); a row with no visible key (L = -inf) has P = 0
  for (long r = 0; r < nq; ++r) {
    const float L = p.lse[qrow + r];
    const ve vl = tset<ve>(L == -kInf ? kInf : L);
    for (long c = 0; c < nk16; c += EL) tstore(Sb + r * T + c, e_exp(tload<ve>(Sb + r * T + c) - vl));
  }
  // dP_ij - D_i with dP = dO_i V_j^T (line 13); dS_ij = P_ij (dP_ij - D_i) (line 14), scale folded in;
  // then dV_j += P^T dO_i (line 12), dK_j += dS^T Q_i (line 16)
  const ve vs = tset<ve>(p.scale);
  if (p.lowp) {
    std::memset(dPb, 0, sizeof(float) * nq * T);  // blocks the ranges skip stay 0 (P is 0 there)
    score(gr, d, nq, a.VTf, nk16, d, 1.0f, dPb, sp.queries);
    for (long r = 0; r < nq; ++r) {
      const ve vd = tset<ve>((float)D[qrow + r]);
      for (long c = 0; c < nk16; c += EL)
        tstore(dPb + r * T + c, tload<ve>(Sb + r * T + c) * (tload<ve>(dPb + r * T + c) - vd) * vs);
    }
    wsum(a.dvf, d, nk, Sb, 1, T, nq, gr, d, d, sp.keys);
    wsum(a.dkf, d, nk, dPb, 1, T, nq, qr, d, d, sp.keys);
  } else {
    for (long i = 0; i < nq * d; ++i) { a.Qd[i] = qr[i]; a.Gd[i] = gr[i]; }
    score_dp(a.Gd, d, nq, a.VT, nk16, d, D + qrow, nullptr, dPb, sp.queries);
    for (long r = 0; r < nq; ++r)
      for (long c = 0; c < nk16; c += EL)
        tstore(dPb + r * T + c, tload<ve>(Sb + r * T + c) * tload<ve>(dPb + r * T + c) * vs);
    for (long i = 0; i < nq * T; ++i) a.Wd[i] = Sb[i];
    wsum_d(a.dvd, d, nk, a.Wd, 1, T, nq, a.Gd, d, d, sp.keys);
    for (long i = 0; i < nq * T; ++i) a.Wd[i] = dPb[i];
    wsum_d(a.dkd, d, nk, a.Wd, 1, T, nq, a.Qd, d, d, sp.keys);
  }
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
  KvAcc a{};
  // the first 6 d T floats: V^T, dK, dV (d x T doubles each), or their float32 twins under autocast
  if (p.lowp) {
    float* VTf = buf;
    a.VTf = VTf; a.dkf = VTf + d * T; a.dvf = a.dkf + d * T;
    transpose(p.v + krow * d, nk, d, VTf);
    std::memset(a.dkf, 0, sizeof(float) * 2 * d * T);
  } else {
    double* VT = reinterpret_cast<double*>(buf);
    a.VT = VT; a.dkd = VT + d * T; a.dvd = a.dkd + d * T;
    transpose_d(p.v + krow * d, nk, d, VT);
    std::memset(a.dkd, 0, sizeof(double) * 2 * d * T);
  }
  float* KT = buf + 6 * d * T;
  float* Sb = KT + d * T;
  float* dPb = Sb + T * T;
  float* tile = dPb + T * T;  // T x d
  a.Wd = reinterpret_cast<double*>(tile + T * d);  // T x T doubles
  a.Qd = a.Wd + T * T;  // the query tile's Q and dO rows in double, T x d each
  a.Gd = a.Qd + T * d;
  const float* kr = p.k + krow * d;
  transpose(kr, nk, d, KT);
  for (long g = 0; g < P.group; ++g) {
    const long qh = (b * p.H + kvh * P.group + g) * p.Tq + sg.q0;
    for (long t0 = 0; t0 < sg.nq; t0 += T) {
      const long nq = lmin(T, sg.nq - t0), i0 = t0 + sg.off;
      const int st = P.mk.tile(i0, i0 + nq - 1, j0, j0 + nk - 1);
      if (st == SKIP) continue;
      kv_pair(p, P.mk, st, KT, kr, nk, j0, qh + t0, nq, i0, w.D, Sb, dPb, tile, a, w.fused ? p.dq : nullptr);
    }
  }
  float* dk = p.dk + krow * d;
  float* dv = p.dv + krow * d;
  if (p.lowp) {
    std::memcpy(dk, a.dkf, sizeof(float) * nk * d);
    std::memcpy(dv, a.dvf, sizeof(float) * nk * d);
  } else {
    for (long i = 0; i < nk * d; ++i) { dk[i] = (float)a.dkd[i]; dv[i] = (float)a.dvd[i]; }
  }
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
  float* GTf = reinterpret_cast<float*>(GT);  // lowp: dO^T and D in float32
  float* Dvf = reinterpret_cast<float*>(Dv);
  transpose(p.q + qrow * d, nq, d, QT);
  if (p.lowp) transpose(p.dO + qrow * d, nq, d, GTf);
  else transpose_d(p.dO + qrow * d, nq, d, GT);
  for (long r = 0; r < T; ++r) {
    const float L = r < nq ? p.lse[qrow + r] : -kInf;
    Ls[r] = L == -kInf ? kInf : L;
    if (p.lowp) Dvf[r] = r < nq ? (float)w.D[qrow + r] : 0.0f;
    else Dv[r] = r < nq ? w.D[qrow + r] : 0.0;
  }
  float* dq = p.dq + qrow * d;
  std::memset(dq, 0, sizeof(float) * nq * d);
  const ve vs = tset<ve>(p.scale);
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
      for (long r = 0; r < nq16; r += EL) tstore(ST + c * T + r, e_exp(tload<ve>(ST + c * T + r) - tload<ve>(Ls + r)));
    const float* vr = p.v + (krow0 + j0) * d;
    if (p.lowp) {  // kv_pair's float32 dS, transposed
      std::memset(dPT, 0, sizeof(float) * nk * T);
      score(vr, d, nk, GTf, nq16, d, 1.0f, dPT, sp.keys);
      for (long c = 0; c < nk; ++c)
        for (long r = 0; r < nq16; r += EL)
          tstore(dPT + c * T + r, tload<ve>(ST + c * T + r) * (tload<ve>(dPT + c * T + r) - tload<ve>(Dvf + r)) * vs);
    } else {
      for (long i = 0; i < nk * d; ++i) Vd[i] = vr[i];
      score_dp(Vd, d, nk, GT, nq16, d, nullptr, Dv, dPT, sp.keys);
      for (long c = 0; c < nk; ++c)
        for (long r = 0; r < nq16; r += EL)
          tstore(dPT + c * T + r, tload<ve>(ST + c * T + r) * tload<ve>(dPT + c * T + r) * vs);
    }
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


