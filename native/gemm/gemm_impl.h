// GEMM after Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication" (TOMS 2008),
// in the BLIS loop order (Van Zee & van de Geijn 2015): jc (NC) -> pc (KC, pack a KC x NC block of
// B) -> ic (MC, pack A) -> jr (NR) -> ir (MR) -> MR x NR register microkernel.
// Threads: C is cut into independent units (batch entries, or row / column slabs of one product)
// taken from a counter; each unit packs its own operands, so there is no barrier (see gemm_slab).
// Transposes are absorbed by the packing routines (element (r, p) at src[r*rs + p*ps]); with few
// columns an ISA may read A in place instead of packing it (TSF_UA_LOOP).
// Included once per ISA translation unit with TSF_NS and the vector traits type V defined; everything
// lives in that namespace so the differently-compiled copies never merge at link time. No std
// templates here for the same reason.
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "gemm.h"
#include "runtime/pool.h"

namespace tsf {
namespace TSF_NS {
namespace {

inline long lmin(long a, long b) { return a < b ? a : b; }
inline long cdiv(long a, long b) { return (a + b - 1) / b; }

#ifndef TSF_MR
#define TSF_MR 6
#endif
constexpr int MR = TSF_MR, NR = 2 * V::L;

// --- microkernels: 2*MR named accumulators of L lanes ------------------------------------------
// Named variables (not an array) so the compiler keeps all twelve in registers whatever it inlines.
using vec = typename V::vec;
// C row = alpha * acc (+ beta * C) (+ bias): each term added with one rounding, in this order.
inline void store_row(float* cr, vec x0, vec x1, vec va, float beta, const float* bias) {
  x0 = V::mul(x0, va);
  x1 = V::mul(x1, va);
  if (beta != 0.0f) {
    const vec vb = V::set1(beta);
    x0 = V::fma(vb, V::loadu(cr), x0);
    x1 = V::fma(vb, V::loadu(cr + V::L), x1);
  }
  if (bias) {
    const vec one = V::set1(1.0f);
    x0 = V::fma(one, V::loadu(bias), x0);
    x1 = V::fma(one, V::loadu(bias + V::L), x1);
  }
  V::storeu(cr, x0);
  V::storeu(cr + V::L, x1);
}
// Partial tile at the edge of C: through a scratch tile, element by element.
inline void store_edge(const float* t, float* C, long ldc, float alpha, float beta, const float* bias,
                       int mr, int nr) {
  for (int r = 0; r < mr; ++r)
    for (int j = 0; j < nr; ++j) {
      float* cj = C + r * ldc + j;
      float x = alpha * t[r * NR + j];
      if (beta != 0.0f) x = x + beta * *cj;
      *cj = bias ? x + bias[j] : x;
    }
}

// The C tile's rows (NR floats: two cache lines on AVX-512) are fetched while the k loop runs, so
// the write-back does not wait for memory.
#define TSF_PREFETCH_C() \
  for (int r = 0; r < mr; ++r) { V::prefetch(C + r * ldc); V::prefetch(C + r * ldc + NR - 1); }
#if TSF_MR == 8
#define TSF_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#else
#define TSF_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#endif
#define TSF_DECL(r) vec c##r##0 = V::zero(), c##r##1 = V::zero();
#define TSF_STORE(r) store_row(C + r * ldc, c##r##0, c##r##1, va, beta, bias);
#define TSF_SPILL(r) V::storeu(t + r * NR, c##r##0); V::storeu(t + r * NR + V::L, c##r##1);
#define TSF_WRITEBACK()                                  \
  if (mr == MR && nr == NR) {                            \
    const vec va = V::set1(alpha);                       \
    TSF_ROWS(TSF_STORE)                                  \
  } else {                                               \
    alignas(64) float t[MR * NR];                        \
    TSF_ROWS(TSF_SPILL)                                  \
    store_edge(t, C, ldc, alpha, beta, bias, mr, nr);    \
  }

// fp32: per k, 2 vector loads of B, MR broadcasts of A, 2*MR FMAs (BLIS haswell/skx-style 6 x 2L).
#define TSF_FMA(r) { const vec a = V::bcast(A + r); c##r##0 = V::fma(a, b0, c##r##0); c##r##1 = V::fma(a, b1, c##r##1); }
// bias: the NR bias values of this tile's columns, or nullptr (see GemmParams).
__attribute__((noinline)) void ukr_f32(long kc, const float* __restrict A, const float* __restrict B,
                                       float* C, long ldc, float alpha, float beta, const float* bias,
                                       int mr, int nr) {
  TSF_ROWS(TSF_DECL)
  TSF_PREFETCH_C()
#ifdef TSF_F32_LOOP
  TSF_F32_LOOP  // hand-scheduled main loop of this ISA (same computation)
#else
#pragma GCC unroll 4
  for (long p = 0; p < kc; ++p) {
    const vec b0 = V::loadu(B), b1 = V::loadu(B + V::L);
    TSF_ROWS(TSF_FMA)
    A += MR;
    B += NR;
  }
#endif
  TSF_WRITEBACK()
}

#ifdef TSF_UA_LOOP
// A in place for products of at most this many NR-column panels (B block kc x 384 still in L2);
// TSFORMER_GEMM_UA_PANELS overrides (0 disables the in-place path).
inline long ua_panels() {
  static const long v = [] { const char* e = std::getenv("TSFORMER_GEMM_UA_PANELS"); return e ? std::atol(e) : 24L; }();
  return v;
}
// fp32 with A read in place (row-major, lda in elements), full MR-row tiles only: for products with
// few columns (attention P V, dS K) packing A would cost about as much as the product. Same FMA
// order and write-back as ukr_f32, so the bits are the same as the packed path.
__attribute__((noinline)) void ukr_f32_ua(long kc, const float* __restrict A, long lda,
                                          const float* __restrict B, float* C, long ldc, float alpha,
                                          float beta, const float* bias, int nr) {
  constexpr int mr = MR;
  TSF_ROWS(TSF_DECL)
  TSF_PREFETCH_C()
  TSF_UA_LOOP
  TSF_WRITEBACK()
}
#endif

#ifdef TSF_HAS_PAIRS
// bf16 pairs: A packed as [k/2][MR] 32-bit pairs, B as [k/2][NR] pairs; one vdpbf16ps does
// acc += a[2i]*b[2i] + a[2i+1]*b[2i+1] (emulated with shifts + 2 FMAs where the CPU lacks it).
#define TSF_DP(r) { const typename V::ivec a = V::ibcast(A + r); c##r##0 = V::dpbf16(c##r##0, a, b0); c##r##1 = V::dpbf16(c##r##1, a, b1); }
__attribute__((noinline)) void ukr_pairs(long kp, const uint16_t* __restrict A16,
                                         const uint16_t* __restrict B16, float* C, long ldc,
                                         float alpha, float beta, const float* bias, int mr, int nr) {
  const uint32_t* A = reinterpret_cast<const uint32_t*>(A16);
  const uint32_t* B = reinterpret_cast<const uint32_t*>(B16);
  TSF_ROWS(TSF_DECL)
  TSF_PREFETCH_C()
#pragma GCC unroll 2
  for (long p = 0; p < kp; ++p) {
    const typename V::ivec b0 = V::iloadu(B), b1 = V::iloadu(B + V::L);
    TSF_ROWS(TSF_DP)
    A += MR;
    B += NR;
  }
  TSF_WRITEBACK()
}
#endif

// --- kernel families: input type, packed type, k-grouping G, conversion, microkernel -------------
struct KF32 {
  using Tin = float; using Tpk = float; static constexpr int G = 1; static constexpr bool F32 = true;
  static inline float cvt(float x) { return x; }
  static inline void ukr(long kg, const float* A, const float* B, float* C, long ldc, float al,
                         float be, const float* bi, int mr, int nr) { ukr_f32(kg, A, B, C, ldc, al, be, bi, mr, nr); }
};
struct KBF16 {  // bf16 inputs widened to fp32 while packing (exact), fp32 microkernel
  using Tin = uint16_t; using Tpk = float; static constexpr int G = 1; static constexpr bool F32 = false;
  static inline float cvt(uint16_t x) {
    uint32_t u = (uint32_t)x << 16; float f; std::memcpy(&f, &u, 4); return f;
  }
  static inline void ukr(long kg, const float* A, const float* B, float* C, long ldc, float al,
                         float be, const float* bi, int mr, int nr) { ukr_f32(kg, A, B, C, ldc, al, be, bi, mr, nr); }
};
#ifdef TSF_HAS_PAIRS
struct KPAIRS {
  using Tin = uint16_t; using Tpk = uint16_t; static constexpr int G = 2; static constexpr bool F32 = false;
  static inline uint16_t cvt(uint16_t x) { return x; }
  static inline void ukr(long kg, const uint16_t* A, const uint16_t* B, float* C, long ldc,
                         float al, float be, const float* bi, int mr, int nr) { ukr_pairs(kg, A, B, C, ldc, al, be, bi, mr, nr); }
};
#endif

#include "gemm_pack_impl.h"  // pack_panel, pack_rows: operand panels for the microkernels

// --- one GEMM slab: C[r0:r1, c0:c1] computed by one thread, start to finish ---------------------
// Threads never share packed panels: each packs the part of B (or A) its slab needs, so there is no
// barrier anywhere (a barrier per k-block costs little on an idle machine, but when other processes
// take a core every barrier waits for a descheduled thread). Which operand gets packed twice is chosen
// by the split (rows: B twice; columns: A twice) so that the duplicated work is the smaller one.
// Slab edges are multiples of MR / NR and the k-blocking depends on k alone, so every element of C
// is computed by the same sequence of instructions whatever the number of threads: same bits.
template <class K>
struct Job {
  const typename K::Tin* A; long lda; bool tA;
  const typename K::Tin* B; long ldb; bool tB;
  float* C; long ldc; long m, n, k; float alpha, beta;
  const float* bias;
};

// Block sizes: V::MC/KC/NC, overridable by TSFORMER_GEMM_MC/KC/NC (for tuning on a new CPU).
long tuned(int which) {
  static const long v[3] = {
      [] { const char* e = std::getenv("TSFORMER_GEMM_MC"); long x = e ? std::atol(e) / MR * MR : 0; return x > 0 ? x : V::MC; }(),
      [] { const char* e = std::getenv("TSFORMER_GEMM_KC"); long x = e ? std::atol(e) / 8 * 8 : 0; return x > 0 ? x : V::KC; }(),
      [] { const char* e = std::getenv("TSFORMER_GEMM_NC"); long x = e ? std::atol(e) / NR * NR : 0; return x > 0 ? x : V::NC; }()};
  return v[which];
}

// k-blocks of equal size (a multiple of 8, so the unrolled loops and the bf16 pairs see whole
// groups), e.g. k = 384 -> 192 + 192 rather than 256 + 128. Depends on k only (determinism).
inline long kblock(long k) {
  const long KC = tuned(1), nb = cdiv(k, KC);
  return lmin(KC, cdiv(cdiv(k, nb), 8) * 8);
}

// Thread-local packing buffers, grown (never shrunk) in bytes: no allocation per call once warm.
inline void* grow_bytes(void*& buf, long& cap, long need) {
  if (need > cap) {
    std::free(buf);
    cap = need + need / 4;
    buf = std::aligned_alloc(64, (cap + 63) / 64 * 64);
  }
  return buf;
}
template <class T>
T* grow(T*& buf, long& cap, long need) {
  if (need > cap) {
    std::free(buf);
    cap = need + need / 4;
    buf = static_cast<T*>(std::aligned_alloc(64, ((cap * sizeof(T)) + 63) / 64 * 64));
  }
  return buf;
}
thread_local void* tl_abuf = nullptr;
thread_local long tl_acap = 0;
thread_local void* tl_bbuf = nullptr;
thread_local long tl_bcap = 0;

// One (jc, pc) step of the blocked loops: columns [jc, jc + nc) of C, k range [pc, pc + kc).
struct Blk {
  long jc, nc, np;  // column block: first column, width, NR-wide panels
  long pc, kc, kg;  // k block: first index, length, groups of G
  long apst, bpst;  // packed panel strides in elements
  float beta;       // the caller's beta on the first k block, 1 after it
  const float* bias;  // the caller's bias on the first k block, none after it
};

template <class K>
Blk block_of(const Job<K>& g, long jc, long nc, long pc, long kc) {
  Blk b;
  b.jc = jc; b.nc = nc; b.np = cdiv(nc, NR);
  b.pc = pc; b.kc = kc; b.kg = cdiv(kc, K::G);
  // panel strides padded by one cache line: panels a multiple of 4 KiB apart would all map to
  // the same L1 sets while pack_rows writes them in turn
  b.apst = MR * b.kg * K::G + kPanelPad;
  b.bpst = NR * b.kg * K::G + kPanelPad;
  b.beta = pc == 0 ? g.beta : 1.0f;
  b.bias = pc == 0 ? g.bias : nullptr;
  return b;
}

// Packs B panels [j0, j1) of block b, panel j at Bp + j * bpst.
template <class K>
void pack_b(const Job<K>& g, const Blk& b, long j0, long j1, typename K::Tpk* Bp) {
  if (j0 >= j1) return;
  if (K::G == 1 && !g.tB) {
    const long col = b.jc + j0 * NR;
    pack_rows<K, NR>(g.B + b.pc * g.ldb + col, g.ldb, lmin(b.jc + b.nc - col, (j1 - j0) * NR), b.kc,
                     b.bpst, Bp + j0 * b.bpst);
    return;
  }
  for (long j = j0; j < j1; ++j) {
    const long col = b.jc + j * NR;
    const typename K::Tin* s = g.tB ? g.B + col * g.ldb + b.pc : g.B + b.pc * g.ldb + col;
    pack_panel<K, NR>(s, g.tB ? g.ldb : 1, g.tB ? 1 : g.ldb, (int)lmin(NR, b.jc + b.nc - col), b.kc,
                      Bp + j * b.bpst);
  }
}

// Rows per MC block for a slab of `rows` rows: balanced blocks of at most MC, whole MR tiles.
inline long mc_block(long rows) {
  const long nblk = cdiv(rows, tuned(0));
  return cdiv(cdiv(rows, nblk), MR) * MR;
}

// C[r0:r1, block columns] += op(A)[r0:r1, k block] * packed B block (rows in MC blocks, A packed
// into Ap per block unless read in place).
template <class K>
void compute_rows(const Job<K>& g, const Blk& b, long r0, long r1, long mcb, typename K::Tpk* Ap,
                  const typename K::Tpk* Bp) {
  const long pc = b.pc, kc = b.kc, kg = b.kg, np = b.np, apst = b.apst, bpst = b.bpst, c1 = b.jc + b.nc;
  const float beta = b.beta;
  const float* bias = b.bias;
  for (long ic = r0; ic < r1; ic += mcb) {
    const long mc = lmin(mcb, r1 - ic), mp = cdiv(mc, MR);
#ifdef TSF_UA_LOOP
    // few columns (at most ua_panels()), A row-major fp32: A in place, full row tiles; i outer so the
    // 6 rows of A stay in L1 across the column panels, the packed B block stays in L2
    if constexpr (K::F32) {
      if (!g.tA && np <= ua_panels()) {
        for (long i = 0; i < mp; ++i) {
          const long row = ic + i * MR;
          const int mr = (int)lmin(MR, r1 - row);
          if (mr < MR)
            pack_panel<K, MR>(g.A + row * g.lda + pc, g.lda, 1, mr, kc, Ap);
          if (i + 1 < mp) {  // the next 6 rows of A: from memory for small batched products
            const float* nx = reinterpret_cast<const float*>(g.A) + (row + MR) * g.lda + pc;
            for (long r = 0; r < lmin(MR, r1 - row - MR); ++r)
              for (long c = 0; c < kc; c += 16) __builtin_prefetch(nx + r * g.lda + c, 0, 3);
          }
          for (long j = 0; j < np; ++j) {
            const long col = b.jc + j * NR;
            const int nr = (int)lmin(NR, c1 - col);
            if (mr == MR)
              ukr_f32_ua(kc, reinterpret_cast<const float*>(g.A) + row * g.lda + pc, g.lda,
                         reinterpret_cast<const float*>(Bp) + j * bpst, g.C + row * g.ldc + col,
                         g.ldc, g.alpha, beta, bias ? bias + col : nullptr, nr);
            else
              K::ukr(kg, Ap, Bp + j * bpst, g.C + row * g.ldc + col, g.ldc, g.alpha, beta,
                     bias ? bias + col : nullptr, mr, nr);
          }
        }
        continue;
      }
    }
#endif
    if (K::G == 1 && g.tA) {
      pack_rows<K, MR>(g.A + pc * g.lda + ic, g.lda, mc, kc, apst, Ap);
    } else {
      for (long i = 0; i < mp; ++i) {
        const long row = ic + i * MR;
        const typename K::Tin* s = g.tA ? g.A + pc * g.lda + row : g.A + row * g.lda + pc;
        pack_panel<K, MR>(s, g.tA ? 1 : g.lda, g.tA ? g.lda : 1, (int)lmin(MR, r1 - row), kc,
                          Ap + i * apst);
      }
    }
    for (long j = 0; j < np; ++j) {
      const long col = b.jc + j * NR;
      const int nr = (int)lmin(NR, c1 - col);
      for (long i = 0; i < mp; ++i) {
        const long row = ic + i * MR;
        K::ukr(kg, Ap + i * apst, Bp + j * bpst, g.C + row * g.ldc + col, g.ldc,
               g.alpha, beta, bias ? bias + col : nullptr, (int)lmin(MR, r1 - row), nr);
      }
    }
  }
}

// C[r0:r1, c0:c1] by one thread, start to finish, packing its own B blocks.
template <class K>
void gemm_slab(const Job<K>& g, long r0, long r1, long c0, long c1) {
  using Tpk = typename K::Tpk;
  if (r0 >= r1 || c0 >= c1) return;
  const long KCb = kblock(g.k), mcb = mc_block(r1 - r0);
  const long cols = c1 - c0, ncb = cdiv(cdiv(cols, cdiv(cols, tuned(2))), NR) * NR;
  const long kpad = KCb + 8;
  Tpk* Ap = static_cast<Tpk*>(grow_bytes(tl_abuf, tl_acap, (long)sizeof(Tpk) * (mcb / MR + 1) * (MR * kpad + kPanelPad)));
  Tpk* Bp = static_cast<Tpk*>(grow_bytes(tl_bbuf, tl_bcap, (long)sizeof(Tpk) * (ncb / NR + 1) * (NR * kpad + kPanelPad)));
  for (long jc = c0; jc < c1; jc += ncb)
    for (long pc = 0; pc < g.k; pc += KCb) {
      const Blk b = block_of(g, jc, lmin(ncb, c1 - jc), pc, lmin(KCb, g.k - pc));
      pack_b(g, b, 0, b.np, Bp);
      compute_rows(g, b, r0, r1, mcb, Ap, Bp);
    }
}

// C = beta * C (+ bias): the whole result when k == 0 (alpha * 0-length product contributes nothing),
// and the start of the paths that add their product into C with beta = 1.
void scale_c(float* C, long ldc, long m, long n, float beta, const float* bias) {
  for (long i = 0; i < m; ++i)
    for (long j = 0; j < n; ++j) {
      const float x = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
      C[i * ldc + j] = bias ? x + bias[j] : x;
    }
}

template <class K>
Job<K> job_of(const GemmParams& p, long i) {
  Job<K> g;
  g.bias = p.bias;
  g.A = static_cast<const typename K::Tin*>(p.a) + i * p.strideA; g.lda = p.lda; g.tA = p.transA;
  g.B = static_cast<const typename K::Tin*>(p.b) + i * p.strideB; g.ldb = p.ldb; g.tB = p.transB;
  g.C = p.c + i * p.strideC; g.ldc = p.ldc;
  g.m = p.m; g.n = p.n; g.k = p.k; g.alpha = p.alpha; g.beta = p.beta;
  return g;
}

#include "gemm_coop_impl.h"  // run_coop: one large product, B packed once across threads

// Work units: (batch entry, slab). A slab is a range of MR-row panels (splitM) or NR-column panels.
// Threads take units from a shared counter (the caller starts at once, a worker that wakes late or
// shares its core with another process simply takes fewer). Each unit is a whole product on its
// part of C, computed by one thread, so the bits do not depend on who took it.
struct BatchCtx {
  const GemmParams* p;
  long slabs;   // slabs per batch entry
  bool splitM;  // slabs are row ranges (else column ranges)
  std::atomic<long> next{0};
};

template <class K>
void batch_task(void* vctx, int, int) {
  BatchCtx* c = static_cast<BatchCtx*>(vctx);
  const GemmParams& p = *c->p;
  const long units = p.batch * c->slabs;
  const long pm = cdiv(p.m, MR), pn = cdiv(p.n, NR);
  for (;;) {
    const long u = c->next.fetch_add(1, std::memory_order_relaxed);
    if (u >= units) break;
    const long bi = u / c->slabs, s = u % c->slabs;
    const Job<K> g = job_of<K>(p, bi);
    if (c->splitM) gemm_slab<K>(g, lmin(p.m, pm * s / c->slabs * MR), lmin(p.m, pm * (s + 1) / c->slabs * MR), 0, p.n);
    else gemm_slab<K>(g, 0, p.m, lmin(p.n, pn * s / c->slabs * NR), lmin(p.n, pn * (s + 1) / c->slabs * NR));
  }
}

#include "gemm_small_impl.h"  // run_small: m or n <= 8 without packing

#include "gemm_ksplit_impl.h"  // run_ksplit: weight gradients split in k

#include "gemm_grouped_impl.h"  // run_grouped: one call for the experts of an MoE layer

template <class K>
void run(const GemmParams& p) {
  if (p.batch <= 0 || p.m <= 0 || p.n <= 0) return;
  if (p.k <= 0 || p.alpha == 0.0f) {
    for (long i = 0; i < p.batch; ++i) scale_c(p.c + i * p.strideC, p.ldc, p.m, p.n, p.beta, p.bias);
    return;
  }
  if (p.bias && small_shape(p)) {  // the small kernels have no epilogue: C = beta C + bias first
    scale_c(p.c, p.ldc, p.m, p.n, p.beta, p.bias);
    GemmParams q = p;
    q.beta = 1.0f;
    q.bias = nullptr;
    run_small(q);
    return;
  }
  if (run_small(p)) return;
  const double work = (double)p.batch * p.m * p.n * p.k;
  int nt = pool_threads();
  if (work < 131072.0) nt = 1;  // below ~0.25 MFLOP the wake-up costs more than it saves
  if (ksplit_shape(p)) { run_ksplit<K>(p, nt); return; }
  // C shared by every batch entry (strideC == 0): entries run one after the other, each with beta.
  if (p.batch > 1 && p.strideC == 0) {
    for (long i = 0; i < p.batch; ++i) {
      GemmParams q = p;
      q.batch = 1;
      q.a = static_cast<const char*>(p.a) + i * p.strideA * (p.kind == KIND_F32 ? 4 : 2);
      q.b = static_cast<const char*>(p.b) + i * p.strideB * (p.kind == KIND_F32 ? 4 : 2);
      run<K>(q);
    }
    return;
  }
  if (nt > 1 && p.batch == 1 && p.n <= p.m && work >= coop_min_work() && coop_min_work() > 0) {
    run_coop<K>(job_of<K>(p, 0), nt);
    return;
  }
  BatchCtx c;
  c.p = &p;
  // Split each product in rows when op(B) is the smaller operand to pack twice (n <= m), else in
  // columns. Whole products per thread when the batch divides evenly or is large.
  // A multiple of nt slabs (equal shares on an idle machine). Each slab packs the other operand
  // again, so more than one per thread only when they stay at least 2048 rows (columns) wide (up to
  // 4 per thread): then a thread slowed by a busy core does not hold the others back. (With 512-row
  // slabs, 2048^3 lost ~1% on an idle machine.)
  c.splitM = p.n <= p.m;
  const long panels = c.splitM ? cdiv(p.m, MR) : cdiv(p.n, NR);
  const long width = c.splitM ? p.m : p.n;
  c.slabs = 1;
  if (nt > 1 && !(p.batch % nt == 0 || p.batch >= 8 * nt)) {
    const long per = lmin(4, width / (2048L * nt));
    c.slabs = lmin(panels, nt * (per > 1 ? per : 1));
  }
  pool_run(nt, batch_task<K>, &c);
}

// fp32 -> bf16, round to nearest even; NaN stays a (quiet) NaN with its sign. Branch-free so it
// vectorises.
void to_bf16_impl(const float* __restrict src, uint16_t* __restrict dst, long n) {
  for (long i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, src + i, 4);
    const uint32_t rne = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t nan = (u >> 16) | 0x40u;
    dst[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rne);
  }
}
void from_bf16_impl(const uint16_t* __restrict src, float* __restrict dst, long n) {
  for (long i = 0; i < n; ++i) {
    const uint32_t u = (uint32_t)src[i] << 16;
    std::memcpy(dst + i, &u, 4);
  }
}

}  // namespace
}  // namespace TSF_NS
}  // namespace tsf
