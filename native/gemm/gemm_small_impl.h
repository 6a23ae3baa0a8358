// Included by gemm_impl.h inside its per-ISA namespace (uses its V, vec, lmin, cdiv, grow): not a
// standalone header.
// --- small GEMM without packing (m <= 8, or n <= 8 through C^T = op(B)^T op(A)^T) -----------------
// GEMV-like shapes (decoding at batch 1): packing B costs as much as the product. Two forms:
//  dot  (B read along k, i.e. transB; the weight [out, in] case): C[i,j] = A_i . B_j, 4 columns at a
//       time, vectorised over k; A rows must be contiguous in k (a transposed A is copied, it is small);
//  axpy (B read along n): C[i, j:j+2L] += A[i,p] * B[p, j:j+2L], vectorised over n.
// Threads split (batch, column block) units statically: every element of C is computed by one unit
// in a fixed order, so the result does not depend on the thread count.
struct SmallJob {
  const float* A; long lda; bool tA;   // op(A)[i,p] = tA ? A[p*lda + i] : A[i*lda + p]
  const float* B; long ldb; bool tB;   // op(B)[p,j] = tB ? B[j*ldb + p] : B[p*ldb + j]
  float* C; long csr, csc;             // C[i,j] at C[i*csr + j*csc]
  long m, n, k; float alpha, beta;
  long strideA, strideB, strideC, batch;
};

#include "hsum4_impl.h"

inline void put_c(float* c, float acc, float alpha, float beta) {
  *c = beta != 0.0f ? alpha * acc + beta * *c : alpha * acc;
}

thread_local float* tl_small = nullptr;
thread_local long tl_smallcap = 0;

// MB rows of C x NV vectors of columns per register block; columns beyond the last full block
// element by element.
template <int MB, int NV>
void axpy_block(const SmallJob& g, const float* A, long asr, long asp, const float* B, float* C, long i,
                long j0, long j1) {
  constexpr int W = NV * V::L;
  long j = j0;
  for (; j + W <= j1; j += W) {
    vec acc[MB][NV];
#pragma GCC unroll 4
    for (int r = 0; r < MB; ++r)
#pragma GCC unroll 4
      for (int q = 0; q < NV; ++q) acc[r][q] = V::zero();
    for (long p = 0; p < g.k; ++p) {
      const float* b = B + p * g.ldb + j;
      vec bv[NV];
#pragma GCC unroll 4
      for (int q = 0; q < NV; ++q) bv[q] = V::loadu(b + q * V::L);
#pragma GCC unroll 4
      for (int r = 0; r < MB; ++r) {
        const vec x = V::set1(A[(i + r) * asr + p * asp]);
#pragma GCC unroll 4
        for (int q = 0; q < NV; ++q) acc[r][q] = V::fma(x, bv[q], acc[r][q]);
      }
    }
    alignas(64) float t[W];
    for (int r = 0; r < MB; ++r) {
      for (int q = 0; q < NV; ++q) V::storeu(t + q * V::L, acc[r][q]);
      for (int q = 0; q < W; ++q) put_c(C + (i + r) * g.csr + (j + q) * g.csc, t[q], g.alpha, g.beta);
    }
  }
  for (; j < j1; ++j)
    for (int r = 0; r < MB; ++r) {
      float r0 = 0;
      for (long p = 0; p < g.k; ++p) r0 += A[(i + r) * asr + p * asp] * B[p * g.ldb + j];
      put_c(C + (i + r) * g.csr + j * g.csc, r0, g.alpha, g.beta);
    }
}

// Dot form, RB rows of C x 4 columns: RB x 4 accumulators, each weight vector loaded once for all RB rows
// (a verify pass of up to 8 tokens reads each weight row from memory once). Rows a + r * lda,
// weight rows b + q * ldb; `next` (or null): the next 4 weight rows, prefetched on the way.
constexpr int kDotRows = V::L >= 16 ? 5 : 2;  // AVX-512: 20 of 32 zmm hold sums (24 spill); AVX2: 8 of 16 ymm
template <int RB>
void dot_block(const SmallJob& g, const float* a, long lda, const float* b, const float* next, float* c) {
  const long k = g.k, ldb = g.ldb;
  vec s[RB][4];
#pragma GCC unroll 4
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) s[r][q] = V::zero();
  long p = 0;
  for (; p + V::L <= k; p += V::L) {
    if (next)
      for (int q = 0; q < 4; ++q) __builtin_prefetch(next + q * ldb + p, 0, 3);
    vec w0 = V::loadu(b + p), w1 = V::loadu(b + ldb + p), w2 = V::loadu(b + 2 * ldb + p), w3 = V::loadu(b + 3 * ldb + p);
#if defined(__AVX2__)
    // keep the four weight vectors in registers: folded into each FMA they would be loaded RB times,
    // and the loads, not the FMAs, bound this loop
    __asm__("" : "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3));
#endif
#pragma GCC unroll 4
    for (int r = 0; r < RB; ++r) {
      const vec av = V::loadu(a + r * lda + p);
      s[r][0] = V::fma(av, w0, s[r][0]);
      s[r][1] = V::fma(av, w1, s[r][1]);
      s[r][2] = V::fma(av, w2, s[r][2]);
      s[r][3] = V::fma(av, w3, s[r][3]);
    }
  }
  for (int r = 0; r < RB; ++r) {
    float t[4];
    hsum4(s[r][0], s[r][1], s[r][2], s[r][3], t);
    const float* ar = a + r * lda;
    for (long pp = p; pp < k; ++pp)
      for (int q = 0; q < 4; ++q) t[q] += ar[pp] * b[q * ldb + pp];
    for (int q = 0; q < 4; ++q) put_c(c + r * g.csr + q * g.csc, t[q], g.alpha, g.beta);
  }
}

void small_unit(const SmallJob& g, long bi, long j0, long j1) {
  const float* A = g.A + bi * g.strideA;
  const float* B = g.B + bi * g.strideB;
  float* C = g.C + bi * g.strideC;
  const long m = g.m, k = g.k;
  if (g.tB) {
    const float* Ar = A;
    long lda = g.lda;
    if (g.tA && m > 1) {  // rows of op(A) contiguous in k: copy (m <= 8 rows)
      float* buf = grow(tl_small, tl_smallcap, m * k + 16);
      for (long p = 0; p < k; ++p)
        for (long i = 0; i < m; ++i) buf[i * k + p] = A[p * g.lda + i];
      Ar = buf;
      lda = k;
    }
    if (g.tA && m == 1 && g.lda != 1) {  // one row of op(A) strided in k: scalar
      for (long j = j0; j < j1; ++j) {
        const float* b0 = B + j * g.ldb;
        float r0 = 0;
        for (long p = 0; p < k; ++p) r0 += A[p * g.lda] * b0[p];
        put_c(C + j * g.csc, r0, g.alpha, g.beta);
      }
      return;
    }
    long j = j0;
    for (; j + 4 <= j1; j += 4) {
      const float* b = B + j * g.ldb;
      // a decoding GEMV streams each weight row once, from memory: rows of k = 384 (24 lines) are too
      // short for the hardware prefetcher to ramp up, so the first pass over these 4 rows (rows 0.. of
      // C) fetches the next 4 rows ahead; later row blocks find them in L1
      const float* next = j + 8 <= j1 ? b + 4 * g.ldb : nullptr;
      for (long i = 0; i < m;) {
        // up to kDotRows rows in one block; more than that in two near-equal blocks (m = 8: 4 + 4)
        const long rb = m - i <= kDotRows ? m - i : lmin((m - i + 1) / 2, kDotRows);
        const float* a = Ar + i * lda;
        const float* next_i = i == 0 ? next : nullptr;
        float* c = C + i * g.csr + j * g.csc;
        switch (rb) {
          case 5: dot_block<kDotRows < 5 ? 1 : 5>(g, a, lda, b, next_i, c); break;
          case 4: dot_block<4>(g, a, lda, b, next_i, c); break;
          case 3: dot_block<3>(g, a, lda, b, next_i, c); break;
          case 2: dot_block<2>(g, a, lda, b, next_i, c); break;
          default: dot_block<1>(g, a, lda, b, next_i, c);
        }
        i += rb;
      }
    }
    for (; j < j1; ++j) {  // the last columns one at a time, reduced like the others
      const float* b0 = B + j * g.ldb;
      for (long i = 0; i < m; ++i) {
        const float* a = Ar + i * lda;
        vec s0 = V::zero();
        long p = 0;
        for (; p + V::L <= k; p += V::L) s0 = V::fma(V::loadu(a + p), V::loadu(b0 + p), s0);
        float r[4];
        hsum4(s0, s0, s0, s0, r);
        for (; p < k; ++p) r[0] += a[p] * b0[p];
        put_c(C + i * g.csr + j * g.csc, r[0], g.alpha, g.beta);
      }
    }
    return;
  }
  // axpy form: B rows contiguous along n
  const long asr = g.tA ? 1 : g.lda, asp = g.tA ? g.lda : 1;  // op(A)[i,p] = A[i*asr + p*asp]
  long i = 0;
  for (; i + 4 <= m; i += 4) axpy_block<4, 2>(g, A, asr, asp, B, C, i, j0, j1);
  for (; i + 2 <= m; i += 2) axpy_block<2, 4>(g, A, asr, asp, B, C, i, j0, j1);
  for (; i < m; ++i) axpy_block<1, 4>(g, A, asr, asp, B, C, i, j0, j1);
}

struct SmallCtx { const SmallJob* g; long cb, ncb; };
void small_task(void* vc, int tid, int nt) {
  const SmallCtx* c = static_cast<const SmallCtx*>(vc);
  const SmallJob& g = *c->g;
  const long units = g.batch * c->ncb;
  for (long u = units * tid / nt; u < units * (tid + 1) / nt; ++u) {
    const long bi = u / c->ncb, j0 = (u % c->ncb) * c->cb;
    small_unit(g, bi, j0, lmin(g.n, j0 + c->cb));
  }
}

constexpr long kSmallDim = 8;
// True when handled (fp32 only).
// TSFORMER_GEMM_SMALL=0 disables this path (A/B measurements).
inline bool small_shape(const GemmParams& p) {
  static const bool enabled = [] { const char* e = std::getenv("TSFORMER_GEMM_SMALL"); return !(e && e[0] == '0'); }();
  return p.kind == KIND_F32 && enabled && (p.m <= kSmallDim || p.n <= kSmallDim);
}
bool run_small(const GemmParams& p) {
  if (!small_shape(p)) return false;
  SmallJob g;
  if (p.m <= kSmallDim) {
    g.A = static_cast<const float*>(p.a); g.lda = p.lda; g.tA = p.transA; g.strideA = p.strideA;
    g.B = static_cast<const float*>(p.b); g.ldb = p.ldb; g.tB = p.transB; g.strideB = p.strideB;
    g.m = p.m; g.n = p.n; g.csr = p.ldc; g.csc = 1;
  } else if (p.n <= kSmallDim) {  // C^T (n x m) = op(B)^T op(A)^T
    g.A = static_cast<const float*>(p.b); g.lda = p.ldb; g.tA = !p.transB; g.strideA = p.strideB;
    g.B = static_cast<const float*>(p.a); g.ldb = p.lda; g.tB = !p.transA; g.strideB = p.strideA;
    g.m = p.n; g.n = p.m; g.csr = 1; g.csc = p.ldc;
  } else {
    return false;
  }
  g.C = p.c; g.strideC = p.strideC; g.k = p.k; g.alpha = p.alpha; g.beta = p.beta; g.batch = p.batch;
  // column blocks: multiples of 16, at least 64 columns of work per unit
  const long cb = g.n <= 64 ? g.n : 64;
  SmallCtx c{&g, cb, cdiv(g.n, cb)};
  const double work = (double)p.batch * p.m * p.n * p.k;
  // C shared by every batch entry (strideC == 0): one thread, batch entries in order
  // Memory-bound, and one thread alone cannot draw the memory bandwidth: a second thread pays off
  // from ~0.5 MB of operand traffic (Xeon: 384 x 384 GEMV 22 -> 14 us; Zen 3 broke even at ~2 MB).
  const int nt = work >= 131072.0 && (p.strideC != 0 || p.batch == 1) ? pool_threads() : 1;
  pool_run(nt, small_task, &c);
  return true;
}
