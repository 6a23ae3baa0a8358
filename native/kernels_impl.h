// Float32 kernels of the Backend interface (see kernels.h). Plain C++ written so that GCC vectorises
// it for the ISA of the including translation unit (-mavx2 -mfma, or the SSE2 baseline): branch-free
// inner loops, own exp/tanh/sigmoid (the libm ones do not vectorise), `omp simd` reductions
// (-fopenmp-simd) accumulating in double where the js reference accumulates in double.
// Included once per ISA with TSF_KNS defined; everything lives in that namespace and no std
// templates are used, so the differently compiled copies never merge at link time.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels.h"
#include "pool.h"

namespace tsf {
namespace TSF_KNS {
namespace {

constexpr long kParMin = 65536;       // elements: below this a kernel runs on the calling thread
constexpr long kParMinHeavy = 16384;  // same for transcendental elementwise ops
const float kInf = __builtin_inff();

inline long lmin(long a, long b) { return a < b ? a : b; }
inline long lmax(long a, long b) { return a > b ? a : b; }
inline long cdiv(long a, long b) { return (a + b - 1) / b; }

// --- threading: static contiguous ranges of n units; f(begin, end) -----------------------------------
template <class F>
struct ParCtx { const F* f; long n; };
template <class F>
void par_task(void* vc, int tid, int nt) {
  auto* c = static_cast<ParCtx<F>*>(vc);
  const long b = c->n * tid / nt, e = c->n * (tid + 1) / nt;
  if (b < e) (*c->f)(b, e);
}
// Runs f over [0, n) units; `work` (elements touched) decides whether threads are worth waking.
template <class F>
void parallel_for(long n, double work, long minWork, const F& f) {
  if (n <= 0) return;
  int nt = work >= (double)minWork ? pool_threads() : 1;
  if (nt > n) nt = (int)n;
  if (nt <= 1) { f(0, n); return; }
  ParCtx<F> c{&f, n};
  pool_run(nt, par_task<F>, &c);
}

// Per calling thread scratch (kernels run on the JS thread; workers never allocate).
thread_local double* tl_scratch = nullptr;
thread_local long tl_scap = 0;
double* scratch(long n) {
  if (n > tl_scap) {
    std::free(tl_scratch);
    tl_scap = n + n / 4 + 64;
    tl_scratch = static_cast<double*>(std::malloc(sizeof(double) * tl_scap));
  }
  return tl_scratch;
}

// --- vectorisable math ----------------------------------------------------------------------------
#include "exp_impl.h"
inline float f_exp(float x) { return exp_cephes<float, int32_t>(x); }
// sigmoid without overflow or cancellation: e = exp(-|x|); s = 1/(1+e); x >= 0 ? s : e*s.
// Also returns 1 - sigmoid(x) accurately.
inline float f_sigmoid2(float x, float* one_minus) {
  const float e = f_exp(-std::fabs(x));
  const float d = 1.0f / (1.0f + e);
  const float ed = e * d;
  *one_minus = x >= 0.0f ? ed : d;
  return x >= 0.0f ? d : ed;
}
inline float f_sigmoid(float x) {
  float om;
  return f_sigmoid2(x, &om);
}
// tanh (Cephes tanhf): odd polynomial for |x| < 0.625, else 1 - 2/(exp(2|x|)+1).
inline float f_tanh(float x) {
  const float ax = std::fabs(x);
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float e = f_exp(2.0f * ax);
  const float big = 1.0f - 2.0f / (e + 1.0f);
  const float sbig = x < 0.0f ? -big : big;
  return ax < 0.625f ? small : sbig;
}

// exp in double for arguments <= 0 (used where float rounding would be amplified by cancellation):
// 2^n * exp(r), |r| <= ln2/2, Taylor to degree 11 (relative error < 1e-13); clamped at -700.
inline double d_exp_neg(double x) {
  const double xc = x < -700.0 ? -700.0 : x;
  const double t = xc * 1.4426950408889634 + 6755399441055744.0;  // round via 1.5 * 2^52
  const double n = t - 6755399441055744.0;
  uint64_t tb;
  std::memcpy(&tb, &t, 8);
  const int64_t ni = (int64_t)(tb - 0x4338000000000000ull);
  const double r = (xc - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
  double p = 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const uint64_t sb = (uint64_t)(ni + 1023) << 52;
  double sc;
  std::memcpy(&sc, &sb, 8);
  return p * sc;
}
// sigmoid(x) and 1 - sigmoid(x) in double
inline double d_sigmoid2(double x, double* one_minus) {
  const double e = d_exp_neg(-std::fabs(x));
  const double d = 1.0 / (1.0 + e), ed = e * d;
  *one_minus = x >= 0.0 ? ed : d;
  return x >= 0.0 ? d : ed;
}

constexpr float kSqrt2OverPi = 0.79788456080286535588f;
constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

// --- unary ----------------------------------------------------------------------------------------
template <int OP>
inline float ufwd(float x, float a, float b) {
  switch (OP) {
    case U_NEG: return -x;
    case U_EXP: return f_exp(x);
    case U_LOG: return std::log(x);
    case U_SQRT: return std::sqrt(x);
    case U_RSQRT: return 1.0f / std::sqrt(x);
    case U_ABS: return std::fabs(x);
    case U_SQUARE: return x * x;
    case U_TANH: return f_tanh(x);
    case U_SIGMOID: return f_sigmoid(x);
    case U_RELU: return x > 0.0f ? x : 0.0f;
    // 0.5 x (1 + tanh(u)) = x sigmoid(2u) = x / (1 + e^(-2u)): no cancellation for negative x, and
    // e^(-2u) = inf far left gives the limit -0 (one exp and one division, no branches to blend)
    case U_GELU_TANH: return x / (1.0f + f_exp(-2.0f * kSqrt2OverPi * (x + 0.044715f * x * x * x)));
    case U_GELU_ERF: return 0.5f * x * std::erfc(-x * kInvSqrt2);
    case U_SILU: return x * f_sigmoid(x);
    case U_SOFTPLUS: { const float bx = a * x; return bx > b ? x : std::log1p(f_exp(bx)) / a; }
    case U_ELU: return x > 0.0f ? x : a * std::expm1(x);
    case U_CLAMP: { const float v = x < a ? a : x; return v > b ? b : v; }
    case U_POW: return std::pow(x, a);
  }
  return 0.0f;
}

template <int OP>
inline float ubwd(float x, float y, float gy, float a, float b) {
  switch (OP) {
    case U_NEG: return -gy;
    case U_EXP: return gy * y;
    case U_LOG: return gy / x;
    case U_SQRT: return gy * 0.5f / y;
    case U_RSQRT: return -0.5f * gy * y * y * y;
    case U_ABS: { const float s = x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x); return gy * s; }
    case U_SQUARE: return 2.0f * gy * x;
    case U_TANH: return gy * ((1.0f - y) * (1.0f + y));
    case U_SIGMOID: return gy * (y * (1.0f - y));
    case U_RELU: return x > 0.0f ? gy : 0.0f;
    case U_GELU_TANH: {
      // with s = sigmoid(2u): 0.5 (1 + t) = s, 1 - t^2 = 4 s (1 - s). float32 as in PyTorch (8 lanes,
      // not 4): near the derivative's zero (x ~ -0.75) the two terms (~0.2 each) cancel, leaving an
      // error of ~1 ulp of 0.2 rather than of the result.
      const float x2 = x * x, u = kSqrt2OverPi * x * (1.0f + 0.044715f * x2);
      float om;
      const float s = f_sigmoid2(2.0f * u, &om);
      float d = 2.0f * kSqrt2OverPi * (1.0f + 3.0f * 0.044715f * x2) * x * s * om;
      d = std::fabs(x) > 40.0f ? 0.0f : d;
      return gy * (s + d);
    }
    case U_GELU_ERF: {
      const double v = x;
      return (float)((double)gy * (0.5 * std::erfc(-v * 0.70710678118654752440) +
                                   v * 0.39894228040143267794 * d_exp_neg(-0.5 * v * v)));
    }
    case U_SILU: {
      double om;
      const double v = x, s = d_sigmoid2(v, &om);
      return (float)((double)gy * s * (1.0 + v * om));
    }
    case U_SOFTPLUS: return a * x > b ? gy : gy * f_sigmoid(a * x);
    case U_ELU: return x > 0.0f ? gy : gy * a * f_exp(x);
    case U_CLAMP: return x >= a && x <= b ? gy : 0.0f;
    case U_POW: return gy * a * std::pow(x, a - 1.0f);
  }
  return 0.0f;
}

constexpr bool heavy(int op) {
  return op == U_EXP || op == U_LOG || op == U_TANH || op == U_SIGMOID || op == U_GELU_TANH ||
         op == U_GELU_ERF || op == U_SILU || op == U_SOFTPLUS || op == U_ELU || op == U_POW;
}

template <int OP>
void unary_t(const float* x, float* y, long n, float a, float b) {
  constexpr long G = 1024;  // chunk for threading
  parallel_for(cdiv(n, G), (double)n, heavy(OP) ? kParMinHeavy : kParMin, [&](long c0, long c1) {
    const long i1 = lmin(n, c1 * G);
    for (long i = c0 * G; i < i1; ++i) y[i] = ufwd<OP>(x[i], a, b);
  });
}
template <int OP>
void unary_bwd_t(const float* x, const float* y, const float* gy, float* gx, long n, float a, float b) {
  constexpr long G = 1024;
  parallel_for(cdiv(n, G), (double)n, heavy(OP) ? kParMinHeavy : kParMin, [&](long c0, long c1) {
    const long i1 = lmin(n, c1 * G);
    for (long i = c0 * G; i < i1; ++i) gx[i] = ubwd<OP>(x[i], y[i], gy[i], a, b);
  });
}

#define TSF_UNARY_CASES(X)                                                                          \
  X(U_NEG) X(U_EXP) X(U_LOG) X(U_SQRT) X(U_RSQRT) X(U_ABS) X(U_TANH) X(U_SIGMOID) X(U_RELU)         \
  X(U_GELU_TANH) X(U_GELU_ERF) X(U_SILU) X(U_SOFTPLUS) X(U_ELU) X(U_CLAMP) X(U_POW) X(U_SQUARE)

void k_unary(int op, const float* x, float* y, long n, float a, float b) {
  switch (op) {
#define X(c) case c: unary_t<c>(x, y, n, a, b); return;
    TSF_UNARY_CASES(X)
#undef X
  }
}
void k_unary_backward(int op, const float* x, const float* y, const float* gy, float* gx, long n,
                      float a, float b) {
  switch (op) {
#define X(c) case c: unary_bwd_t<c>(x, y, gy, gx, n, a, b); return;
    TSF_UNARY_CASES(X)
#undef X
  }
}

// --- binary / strided copy ------------------------------------------------------------------------
template <int OP>
inline float bop(float u, float v) {
  switch (OP) {
    case B_ADD: return u + v;
    case B_SUB: return u - v;
    case B_MUL: return u * v;
    case B_DIV: return u / v;
    case B_POW: return std::pow(u, v);
    case B_MAX: return u >= v ? u : v;
    case B_MIN: return u <= v ? u : v;
    case B_EQ: return u == v ? 1.0f : 0.0f;
    case B_GT: return u > v ? 1.0f : 0.0f;
    case B_LT: return u < v ? 1.0f : 0.0f;
  }
  return 0.0f;
}

// Drops size-1 dims and merges dims that are contiguous in every operand (out is contiguous).
// Returns the new rank (>= 1); shape/strides rewritten in place. nops operand stride arrays.
int coalesce(int rank, long* shape, long** strides, int nops) {
  int r = 0;
  for (int d = 0; d < rank; ++d) {
    if (shape[d] == 1) continue;
    if (r > 0) {
      bool merge = true;
      for (int o = 0; o < nops; ++o)
        if (strides[o][r - 1] != strides[o][d] * shape[d]) merge = false;
      if (merge) {
        shape[r - 1] *= shape[d];
        for (int o = 0; o < nops; ++o) strides[o][r - 1] = strides[o][d];
        continue;
      }
    }
    shape[r] = shape[d];
    for (int o = 0; o < nops; ++o) strides[o][r] = strides[o][d];
    ++r;
  }
  if (r == 0) {
    shape[0] = 1;
    for (int o = 0; o < nops; ++o) strides[o][0] = 0;
    r = 1;
  }
  return r;
}

// Offsets of the first element of outer row `row` (rows = all dims but the last).
inline void row_offsets(long row, int rank, const long* shape, long** strides, int nops, long* offs) {
  for (int o = 0; o < nops; ++o) offs[o] = 0;
  for (int d = rank - 2; d >= 0; --d) {
    const long i = row % shape[d];
    row /= shape[d];
    for (int o = 0; o < nops; ++o) offs[o] += i * strides[o][d];
  }
}
// Advances an odometer over the outer dims by one row.
inline void row_next(long* idx, int rank, const long* shape, long** strides, int nops, long* offs) {
  for (int d = rank - 2; d >= 0; --d) {
    for (int o = 0; o < nops; ++o) offs[o] += strides[o][d];
    if (++idx[d] < shape[d]) return;
    for (int o = 0; o < nops; ++o) offs[o] -= strides[o][d] * shape[d];
    idx[d] = 0;
  }
}
inline void row_index(long row, int rank, const long* shape, long* idx) {
  for (int d = rank - 2; d >= 0; --d) { idx[d] = row % shape[d]; row /= shape[d]; }
}

// Runs f(r, off0, off1, j0, len) over every row r of a coalesced two-operand shape, in pieces of at
// most 4096 elements along the last dim (j0 = first element of the piece) so that a 1-D op can use
// the threads too; off0 / off1 are the operands' offsets of row r.
template <class F>
void for_row_pieces(int rank, const long* shape, long** strides, const F& f) {
  const long inner = shape[rank - 1];
  long rows = 1;
  for (int d = 0; d < rank - 1; ++d) rows *= shape[d];
  const long cw = inner > 8192 ? 4096 : inner, cpr = cdiv(inner, cw);
  parallel_for(rows * cpr, (double)rows * inner, kParMin, [&](long u0, long u1) {
    long idx[kMaxRank], offs[2];
    long row = u0 / cpr;
    row_index(row, rank, shape, idx);
    row_offsets(row, rank, shape, strides, 2, offs);
    for (long u = u0; u < u1; ++u) {
      const long r = u / cpr, j0 = (u % cpr) * cw;
      if (r != row) { row_next(idx, rank, shape, strides, 2, offs); row = r; }
      f(r, offs[0], offs[1], j0, lmin(cw, inner - j0));
    }
  });
}

template <int OP>
void binary_row(const float* a, long sa, const float* b, long sb, float* o, long n) {
  if (sa == 1 && sb == 1) {
    for (long j = 0; j < n; ++j) o[j] = bop<OP>(a[j], b[j]);
  } else if (sa == 1 && sb == 0) {
    const float v = b[0];
    for (long j = 0; j < n; ++j) o[j] = bop<OP>(a[j], v);
  } else if (sa == 0 && sb == 1) {
    const float u = a[0];
    for (long j = 0; j < n; ++j) o[j] = bop<OP>(u, b[j]);
  } else {
    for (long j = 0; j < n; ++j) o[j] = bop<OP>(a[j * sa], b[j * sb]);
  }
}

template <int OP>
void binary_t(const float* a, const float* b, float* out, int rank, long* shape, long* as, long* bs) {
  long* strides[2] = {as, bs};
  rank = coalesce(rank, shape, strides, 2);
  const long inner = shape[rank - 1], sa = as[rank - 1], sb = bs[rank - 1];
  for_row_pieces(rank, shape, strides, [&](long r, long oa, long ob, long j0, long len) {
    binary_row<OP>(a + oa + j0 * sa, sa, b + ob + j0 * sb, sb, out + r * inner + j0, len);
  });
}

void k_binary(int op, const float* a, const float* b, float* out, int rank, const long* shape,
              const long* as, const long* bs) {
  long sh[kMaxRank], sa[kMaxRank], sb[kMaxRank];
  for (int d = 0; d < rank; ++d) { sh[d] = shape[d]; sa[d] = as[d]; sb[d] = bs[d]; }
  if (rank == 0) { sh[0] = 1; sa[0] = sb[0] = 0; rank = 1; }
  switch (op) {
#define X(c) case c: binary_t<c>(a, b, out, rank, sh, sa, sb); return;
    X(B_ADD) X(B_SUB) X(B_MUL) X(B_DIV) X(B_POW) X(B_MAX) X(B_MIN) X(B_EQ) X(B_GT) X(B_LT)
#undef X
  }
}

void k_strided_copy(const float* src, float* dst, int rank, const long* shape, const long* ss,
                    const long* ds) {
  long sh[kMaxRank], s0[kMaxRank], s1[kMaxRank];
  for (int d = 0; d < rank; ++d) { sh[d] = shape[d]; s0[d] = ss[d]; s1[d] = ds[d]; }
  if (rank == 0) { sh[0] = 1; s0[0] = s1[0] = 0; rank = 1; }
  long* strides[2] = {s0, s1};
  rank = coalesce(rank, sh, strides, 2);
  const long a = s0[rank - 1], c = s1[rank - 1];
  for_row_pieces(rank, sh, strides, [&](long, long os, long od, long j0, long len) {
    const float* s = src + os + j0 * a;
    float* d = dst + od + j0 * c;
    if (a == 1 && c == 1) std::memmove(d, s, sizeof(float) * len);
    else if (c == 1) for (long j = 0; j < len; ++j) d[j] = s[j * a];
    else for (long j = 0; j < len; ++j) d[j * c] = s[j * a];
  });
}

void k_where(const float* c, const float* a, const float* b, float* out, long n) {
  constexpr long G = 4096;
  parallel_for(cdiv(n, G), (double)n, kParMin, [&](long c0, long c1) {
    const long i1 = lmin(n, c1 * G);
    for (long i = c0 * G; i < i1; ++i) out[i] = c[i] != 0.0f ? a[i] : b[i];
  });
}

// --- row reductions --------------------------------------------------------------------------------
inline double row_sum(const float* x, long n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (long j = 0; j < n; ++j) s += (double)x[j];
  return s;
}
inline double row_dot(const float* x, const float* y, long n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (long j = 0; j < n; ++j) s += (double)x[j] * (double)y[j];
  return s;
}
inline double row_sumsq(const float* x, long n) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (long j = 0; j < n; ++j) s += (double)x[j] * (double)x[j];
  return s;
}
// max ignoring NaN (the js `if (v > mx) mx = v`), -inf for an empty or all-NaN row
inline float row_max(const float* x, long n) {
  float m[8] = {-kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf, -kInf};
  long j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l) m[l] = x[j + l] > m[l] ? x[j + l] : m[l];
  float r = -kInf;
  for (int l = 0; l < 8; ++l) r = m[l] > r ? m[l] : r;
  for (; j < n; ++j) r = x[j] > r ? x[j] : r;
  return r;
}
// NaN-propagating max / min (the js reduce): once NaN, stays NaN
template <bool MAX>
inline float pick(float acc, float v) {
  return (MAX ? v > acc : v < acc) || v != v ? v : acc;
}
template <bool MAX>
inline float row_extreme(const float* x, long n) {
  const float init = MAX ? -kInf : kInf;
  float m[8] = {init, init, init, init, init, init, init, init};
  long j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l) m[l] = pick<MAX>(m[l], x[j + l]);
  float r = init;
  for (int l = 0; l < 8; ++l) r = pick<MAX>(r, m[l]);
  for (; j < n; ++j) r = pick<MAX>(r, x[j]);
  return r;
}

// --- reduce [outer, dim, inner] -> [outer, inner] ------------------------------------------------------
void k_reduce(int op, const float* x, long outer, long dim, long inner, float* out) {
  const double work = (double)outer * dim * inner;
  if (dim == 0) {
    const float v = op == R_SUM ? 0.0f : __builtin_nanf("");
    for (long i = 0; i < outer * inner; ++i) out[i] = v;
    return;
  }
  if (inner == 1) {
    if (op != R_SUM) {
      parallel_for(outer, work, kParMin, [&](long o0, long o1) {
        for (long o = o0; o < o1; ++o)
          out[o] = op == R_MAX ? row_extreme<true>(x + o * dim, dim) : row_extreme<false>(x + o * dim, dim);
      });
      return;
    }
    // Sums: fixed chunks of CH elements (independent of the thread count), combined in order.
    constexpr long CH = 16384;
    const long cpr = cdiv(dim, CH);
    if (cpr == 1) {
      parallel_for(outer, work, kParMin, [&](long o0, long o1) {
        for (long o = o0; o < o1; ++o) out[o] = (float)row_sum(x + o * dim, dim);
      });
      return;
    }
    double* part = scratch(outer * cpr);
    parallel_for(outer * cpr, work, kParMin, [&](long u0, long u1) {
      for (long u = u0; u < u1; ++u) {
        const long o = u / cpr, c = u % cpr, j0 = c * CH;
        part[u] = row_sum(x + o * dim + j0, lmin(CH, dim - j0));
      }
    });
    for (long o = 0; o < outer; ++o) {
      double s = 0;
      for (long c = 0; c < cpr; ++c) s += part[o * cpr + c];
      out[o] = (float)s;
    }
    return;
  }
  // inner > 1: vectorise over inner; blocks of IB columns, accumulate in double (sum) or float.
  constexpr long IB = 512;
  const long nb = cdiv(inner, IB);
  // Sums over a long dim (the bias gradient: [rows, n] -> [n]): fixed chunks of DCH rows summed
  // apart (so that every thread gets work when outer * nb is small), partials combined in order.
  constexpr long DCH = 256;
  const long nch = cdiv(dim, DCH);
  if (op == R_SUM && nch > 1) {
    double* part = scratch(outer * nb * nch * IB);
    parallel_for(outer * nb * nch, work, kParMin, [&](long u0, long u1) {
      for (long u = u0; u < u1; ++u) {
        const long ob = u / nch, ch = u % nch, o = ob / nb, i0 = (ob % nb) * IB, w = lmin(IB, inner - i0);
        const long d0 = ch * DCH, d1 = lmin(dim, d0 + DCH);
        double* acc = part + u * IB;
        const float* base = x + o * dim * inner + i0;
        for (long i = 0; i < w; ++i) acc[i] = 0;
        for (long d = d0; d < d1; ++d) {
          const float* row = base + d * inner;
          for (long i = 0; i < w; ++i) acc[i] += (double)row[i];
        }
      }
    });
    for (long ob = 0; ob < outer * nb; ++ob) {
      const long o = ob / nb, i0 = (ob % nb) * IB, w = lmin(IB, inner - i0);
      const double* p0 = part + ob * nch * IB;
      for (long i = 0; i < w; ++i) {
        double s = 0;
        for (long ch = 0; ch < nch; ++ch) s += p0[ch * IB + i];
        out[o * inner + i0 + i] = (float)s;
      }
    }
    return;
  }
  parallel_for(outer * nb, work, kParMin, [&](long u0, long u1) {
    double acc[IB];
    float facc[IB];
    for (long u = u0; u < u1; ++u) {
      const long o = u / nb, i0 = (u % nb) * IB, w = lmin(IB, inner - i0);
      const float* base = x + o * dim * inner + i0;
      float* dst = out + o * inner + i0;
      if (op == R_SUM) {
        for (long i = 0; i < w; ++i) acc[i] = 0;
        for (long d = 0; d < dim; ++d) {
          const float* row = base + d * inner;
          for (long i = 0; i < w; ++i) acc[i] += (double)row[i];
        }
        for (long i = 0; i < w; ++i) dst[i] = (float)acc[i];
      } else {
        for (long i = 0; i < w; ++i) facc[i] = base[i];
        for (long d = 1; d < dim; ++d) {
          const float* row = base + d * inner;
          if (op == R_MAX) for (long i = 0; i < w; ++i) facc[i] = pick<true>(facc[i], row[i]);
          else for (long i = 0; i < w; ++i) facc[i] = pick<false>(facc[i], row[i]);
        }
        for (long i = 0; i < w; ++i) dst[i] = facc[i];
      }
    }
  });
}

void k_cumsum(const float* x, long outer, long dim, long inner, float* out, bool reverse) {
  const double work = (double)outer * dim * inner;
  if (inner == 1) {
    parallel_for(outer, work, kParMin, [&](long o0, long o1) {
      for (long o = o0; o < o1; ++o) {
        const float* xr = x + o * dim;
        float* yr = out + o * dim;
        double acc = 0;
        if (!reverse) for (long d = 0; d < dim; ++d) { acc += xr[d]; yr[d] = (float)acc; }
        else for (long d = dim - 1; d >= 0; --d) { acc += xr[d]; yr[d] = (float)acc; }
      }
    });
    return;
  }
  constexpr long IB = 512;
  const long nb = cdiv(inner, IB);
  parallel_for(outer * nb, work, kParMin, [&](long u0, long u1) {
    double acc[IB];
    for (long u = u0; u < u1; ++u) {
      const long o = u / nb, i0 = (u % nb) * IB, w = lmin(IB, inner - i0);
      const long base = o * dim * inner + i0;
      for (long i = 0; i < w; ++i) acc[i] = 0;
      for (long s = 0; s < dim; ++s) {
        const long d = reverse ? dim - 1 - s : s;
        const float* xr = x + base + d * inner;
        float* yr = out + base + d * inner;
        for (long i = 0; i < w; ++i) { acc[i] += (double)xr[i]; yr[i] = (float)acc[i]; }
      }
    }
  });
}

// --- softmax ----------------------------------------------------------------------------------------
// y[j] = exp(x[j] - mx) for the row; returns the sum (double)
inline double exp_row(const float* x, float* y, long n, float mx) {
  for (long j = 0; j < n; ++j) y[j] = f_exp(x[j] - mx);
  return row_sum(y, n);
}
inline double sum_exp(const float* x, long n, float mx) {
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (long j = 0; j < n; ++j) s += (double)f_exp(x[j] - mx);
  return s;
}

void k_softmax(const float* x, float* y, long rows, long cols, bool log) {
  parallel_for(rows, (double)rows * cols, kParMinHeavy, [&](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      const float mx = row_max(xr, cols);
      if (log) {
        const double s = sum_exp(xr, cols, mx);
        const float lse = (float)((double)mx + std::log(s));
        for (long j = 0; j < cols; ++j) yr[j] = xr[j] - lse;
      } else {
        const double s = exp_row(xr, yr, cols, mx);
        const float inv = (float)(1.0 / s);
        for (long j = 0; j < cols; ++j) yr[j] *= inv;
      }
    }
  });
}

void k_softmax_backward(const float* y, const float* gy, float* gx, long rows, long cols, bool log) {
  parallel_for(rows, (double)rows * cols, log ? kParMinHeavy : kParMin, [&](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* yr = y + r * cols;
      const float* gr = gy + r * cols;
      float* xr = gx + r * cols;
      if (log) {
        const float s = (float)row_sum(gr, cols);
        for (long j = 0; j < cols; ++j) xr[j] = gr[j] - f_exp(yr[j]) * s;
      } else {
        const float s = (float)row_dot(gr, yr, cols);
        for (long j = 0; j < cols; ++j) xr[j] = yr[j] * (gr[j] - s);
      }
    }
  });
}

// --- cross-entropy ----------------------------------------------------------------------------------
void k_cross_entropy(const float* x, const int32_t* t, long rows, long cols, long ignore,
                     double smoothing, float* loss, float* lse) {
  parallel_for(rows, (double)rows * cols, kParMinHeavy, [&](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      const float mx = row_max(xr, cols);
      const double s = sum_exp(xr, cols, mx);
      const double l = (double)mx + std::log(s);
      lse[r] = (float)l;
      const long tr = t[r];
      if (tr == ignore) { loss[r] = 0.0f; continue; }
      const double sum = smoothing != 0.0 ? row_sum(xr, cols) : 0.0;
      loss[r] = (float)(l - (1.0 - smoothing) * (double)xr[tr] - smoothing * sum / (double)cols);
    }
  });
}

void k_cross_entropy_backward(const float* x, const int32_t* t, const float* lse, const float* gl,
                              long rows, long cols, long ignore, double smoothing, float* gx) {
  const float u = (float)(smoothing / (double)cols);
  parallel_for(rows, (double)rows * cols, kParMinHeavy, [&](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* gr = gx + r * cols;
      const long tr = t[r];
      if (tr == ignore) { for (long j = 0; j < cols; ++j) gr[j] = 0.0f; continue; }
      const float g = gl[r], l = lse[r];
      for (long j = 0; j < cols; ++j) gr[j] = g * (f_exp(xr[j] - l) - u);
      // the target column in double: p_t - u - (1 - eps) is a small difference when p_t ~ 1
      gr[tr] = (float)((double)g * ((double)f_exp(xr[tr] - l) - smoothing / (double)cols - (1.0 - smoothing)));
    }
  });
}

// --- norms ------------------------------------------------------------------------------------------
void k_layer_norm(const float* x, const float* w, const float* b, long rows, long cols, double eps,
                  float* y, float* mean, float* rstd) {
  parallel_for(rows, (double)rows * cols, kParMin, [&](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      const double mu = row_sum(xr, cols) / (double)cols;
      double v = 0;
#pragma omp simd reduction(+ : v)
      for (long j = 0; j < cols; ++j) { const double d = (double)xr[j] - mu; v += d * d; }
      const double rsd = 1.0 / std::sqrt(v / (double)cols + eps);
      mean[r] = (float)mu;
      rstd[r] = (float)rsd;
      // the statistics in double, the normalization in float32 on 8 lanes (as PyTorch: ~2 ulp)
      const float fmu = (float)mu, frs = (float)rsd;
      if (w && b) for (long j = 0; j < cols; ++j) yr[j] = (xr[j] - fmu) * frs * w[j] + b[j];
      else if (w) for (long j = 0; j < cols; ++j) yr[j] = (xr[j] - fmu) * frs * w[j];
      else if (b) for (long j = 0; j < cols; ++j) yr[j] = (xr[j] - fmu) * frs + b[j];
      else for (long j = 0; j < cols; ++j) yr[j] = (xr[j] - fmu) * frs;
    }
  });
}

// Row chunks for the weight-gradient partial sums: the size depends only on rows (determinism).
inline long norm_chunk_rows(long rows) { return lmax(16, cdiv(rows, 256)); }

// Sums nch partial rows of `cols` floats (stored as floats in part) in order into dst (double).
void reduce_partials(const float* part, long nch, long cols, float* dst) {
  for (long j0 = 0; j0 < cols; j0 += 256) {
    const long w = lmin(256, cols - j0);
    double acc[256];
    for (long j = 0; j < w; ++j) acc[j] = 0;
    for (long c = 0; c < nch; ++c) {
      const float* p = part + c * cols + j0;
      for (long j = 0; j < w; ++j) acc[j] += (double)p[j];
    }
    for (long j = 0; j < w; ++j) dst[j0 + j] = (float)acc[j];
  }
}

void k_layer_norm_backward(const float* x, const float* w, const float* mean, const float* rstd,
                           const float* gy, long rows, long cols, float* gx, float* gw, float* gb) {
  const long CR = norm_chunk_rows(rows), nch = cdiv(rows, CR);
  const long nbuf = (gw ? 1 : 0) + (gb ? 1 : 0);
  // per chunk: [gw partial | gb partial] floats, + one row of h per thread chunk processing
  float* part = nbuf ? reinterpret_cast<float*>(scratch((nch * nbuf * cols + 1) / 2 + 1)) : nullptr;
  parallel_for(nch, (double)rows * cols, kParMin, [&](long c0, long c1) {
    for (long c = c0; c < c1; ++c) {
      float* pw = gw ? part + c * nbuf * cols : nullptr;
      float* pb = gb ? part + c * nbuf * cols + (gw ? cols : 0) : nullptr;
      if (pw) for (long j = 0; j < cols; ++j) pw[j] = 0.0f;
      if (pb) for (long j = 0; j < cols; ++j) pb[j] = 0.0f;
      for (long r = c * CR; r < lmin(rows, (c + 1) * CR); ++r) {
        const float* xr = x + r * cols;
        const float* gr = gy + r * cols;
        float* dr = gx + r * cols;
        const double mu = mean[r], rs = rstd[r];
        double mg = 0, mgh = 0;
        if (w) {
#pragma omp simd reduction(+ : mg, mgh)
          for (long j = 0; j < cols; ++j) {
            const double h = ((double)xr[j] - mu) * rs, g = (double)gr[j] * w[j];
            mg += g;
            mgh += g * h;
          }
        } else {
#pragma omp simd reduction(+ : mg, mgh)
          for (long j = 0; j < cols; ++j) {
            const double h = ((double)xr[j] - mu) * rs, g = gr[j];
            mg += g;
            mgh += g * h;
          }
        }
        mg /= (double)cols;
        mgh /= (double)cols;
        // final expression in double (gx is a small difference of O(1) terms)
        if (w) {
          for (long j = 0; j < cols; ++j) {
            const double h = ((double)xr[j] - mu) * rs;
            dr[j] = (float)(rs * ((double)gr[j] * w[j] - mg - h * mgh));
          }
        } else {
          for (long j = 0; j < cols; ++j) {
            const double h = ((double)xr[j] - mu) * rs;
            dr[j] = (float)(rs * ((double)gr[j] - mg - h * mgh));
          }
        }
        const float fmu = (float)mu, frs = (float)rs;
        if (pw) for (long j = 0; j < cols; ++j) pw[j] += gr[j] * ((xr[j] - fmu) * frs);
        if (pb) for (long j = 0; j < cols; ++j) pb[j] += gr[j];
      }
    }
  });
  if (gw || gb) {
    // gather each output's partials (strided by nbuf * cols)
    for (int k = 0; k < 2; ++k) {
      float* dst = k == 0 ? gw : gb;
      if (!dst) continue;
      const long off = k == 0 ? 0 : (gw ? cols : 0);
      for (long j0 = 0; j0 < cols; j0 += 256) {
        const long wdt = lmin(256, cols - j0);
        double acc[256];
        for (long j = 0; j < wdt; ++j) acc[j] = 0;
        for (long c = 0; c < nch; ++c) {
          const float* p = part + c * nbuf * cols + off + j0;
          for (long j = 0; j < wdt; ++j) acc[j] += (double)p[j];
        }
        for (long j = 0; j < wdt; ++j) dst[j0 + j] = (float)acc[j];
      }
    }
  }
}

void k_rms_norm(const float* x, const float* w, long rows, long cols, double eps, float* y, float* rstd) {
  parallel_for(rows, (double)rows * cols, kParMin, [&](long r0, long r1) {
    for (long r = r0; r < r1; ++r) {
      const float* xr = x + r * cols;
      float* yr = y + r * cols;
      const double rsd = 1.0 / std::sqrt(row_sumsq(xr, cols) / (double)cols + eps);
      rstd[r] = (float)rsd;
      if (w) for (long j = 0; j < cols; ++j) yr[j] = (float)((double)xr[j] * rsd * w[j]);
      else for (long j = 0; j < cols; ++j) yr[j] = (float)((double)xr[j] * rsd);
    }
  });
}

void k_rms_norm_backward(const float* x, const float* w, const float* rstd, const float* gy, long rows,
                         long cols, float* gx, float* gw) {
  const long CR = norm_chunk_rows(rows), nch = cdiv(rows, CR);
  float* part = gw ? reinterpret_cast<float*>(scratch((nch * cols + 1) / 2 + 1)) : nullptr;
  parallel_for(nch, (double)rows * cols, kParMin, [&](long c0, long c1) {
    for (long c = c0; c < c1; ++c) {
      float* pw = gw ? part + c * cols : nullptr;
      if (pw) for (long j = 0; j < cols; ++j) pw[j] = 0.0f;
      for (long r = c * CR; r < lmin(rows, (c + 1) * CR); ++r) {
        const float* xr = x + r * cols;
        const float* gr = gy + r * cols;
        float* dr = gx + r * cols;
        const double rs = rstd[r];
        double mgh = 0;
        if (w) {
#pragma omp simd reduction(+ : mgh)
          for (long j = 0; j < cols; ++j) mgh += ((double)gr[j] * w[j]) * ((double)xr[j] * rs);
        } else {
#pragma omp simd reduction(+ : mgh)
          for (long j = 0; j < cols; ++j) mgh += (double)gr[j] * ((double)xr[j] * rs);
        }
        mgh /= (double)cols;
        if (w) for (long j = 0; j < cols; ++j) dr[j] = (float)(rs * ((double)gr[j] * w[j] - (double)xr[j] * rs * mgh));
        else for (long j = 0; j < cols; ++j) dr[j] = (float)(rs * ((double)gr[j] - (double)xr[j] * rs * mgh));
        const float frs = (float)rs;
        if (pw) for (long j = 0; j < cols; ++j) pw[j] += gr[j] * (xr[j] * frs);
      }
    }
  });
  if (gw) reduce_partials(part, nch, cols, gw);
}

// --- gather / scatter-add -------------------------------------------------------------------------------
void k_index_select(const float* x, long outer, long dimIn, long inner, const int32_t* idx, long nIdx,
                    float* out) {
  parallel_for(outer * nIdx, (double)outer * nIdx * inner, kParMin, [&](long u0, long u1) {
    for (long u = u0; u < u1; ++u) {
      const long o = u / nIdx, j = u % nIdx;
      std::memcpy(out + u * inner, x + (o * dimIn + idx[j]) * inner, sizeof(float) * inner);
    }
  });
}

// Deterministic: each element of gx receives its contributions in index order (the js order); threads
// split the outer axis, or the inner axis in fixed blocks, never the index list.
void k_index_add(const float* g, long outer, long dimIn, long inner, const int32_t* idx, long nIdx,
                 float* gx) {
  constexpr long IB = 64;
  const long nb = cdiv(inner, IB);
  parallel_for(outer * nb, (double)outer * nIdx * inner, kParMin, [&](long u0, long u1) {
    for (long u = u0; u < u1; ++u) {
      const long o = u / nb, i0 = (u % nb) * IB, w = lmin(IB, inner - i0);
      for (long j = 0; j < nIdx; ++j) {
        float* d = gx + (o * dimIn + idx[j]) * inner + i0;
        const float* s = g + (o * nIdx + j) * inner + i0;
        for (long i = 0; i < w; ++i) d[i] += s[i];
      }
    }
  });
}

// --- AdamW (in double, like the js reference; m and v are re-read after rounding to float) ----------
void k_adamw(float* p, const float* g, float* m, float* v, long n, double lr, double b1, double b2,
             double eps, double wd, double bc1, double bc2) {
  // PyTorch's arrangement: step = lr / bc1, denominator sqrt(v) / sqrt(bc2) + eps, so each element
  // takes one square root and one division (double division and square root are the slow part).
  const double decay = 1.0 - lr * wd, c1 = 1.0 - b1, c2 = 1.0 - b2, step = lr / bc1, rs2 = 1.0 / std::sqrt(bc2);
  constexpr long G = 4096;
  parallel_for(cdiv(n, G), (double)n * 4, kParMin, [&](long k0, long k1) {
    const long i1 = lmin(n, k1 * G);
    for (long i = k0 * G; i < i1; ++i) {
      const double gi = g[i];
      const float mi = (float)(b1 * (double)m[i] + c1 * gi);
      const float vi = (float)(b2 * (double)v[i] + c2 * gi * gi);
      m[i] = mi;
      v[i] = vi;
      p[i] = (float)((double)p[i] * decay - step * (double)mi / (std::sqrt((double)vi) * rs2 + eps));
    }
  });
}

}  // namespace
}  // namespace TSF_KNS
}  // namespace tsf
