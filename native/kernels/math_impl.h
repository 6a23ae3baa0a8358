// Included by kernels_impl.h inside its per-ISA namespace: not a standalone header. The threading
// helpers and the vectorisable math (exp, sigmoid, tanh, exp in double) the kernels share.
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
