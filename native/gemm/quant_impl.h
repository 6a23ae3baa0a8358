// The quantized-weight GEMV (quant.h), compiled once per instruction set: included with TSF_QNS and
// the traits type V defined (vec, L, zero, loadu, fma, storeu, and widen() of L int8 or bf16
// weights to fp32), everything in that namespace so the differently-compiled copies never merge.
// The dot form of gemm_small_impl.h: C[i, j] = x_i . W_j vectorised over k, each W element widened
// once per block of x rows (vpmovsxbd + vcvtdq2ps for int8, a 16-bit shift for bf16), then the int8
// row sum scaled once: y = scale_j * sum_p x_p q_jp (+ bias_j).
#include <cstdint>

#include "quant.h"
#include "runtime/pool.h"

namespace tsf {
namespace TSF_QNS {
namespace {

using vec = typename V::vec;

inline float to_f32(int8_t v) { return (float)v; }
inline float to_f32(uint16_t v) {
  const uint32_t bits = (uint32_t)v << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}


#include "hsum4_impl.h"

// R rows of W (from j) x M rows of x (from i): R * M accumulators of L lanes, reduced four at a time.
template <typename E, int R, int M>
inline void dot_block(const QuantParams& p, const E* w, long i, long j) {
  constexpr int N4 = (R * M + 3) / 4 * 4;
  const long k = p.k;
  vec acc[N4];
#pragma GCC unroll 16
  for (int a = 0; a < N4; ++a) acc[a] = V::zero();
  const float* x = p.x + i * k;
  const E* wr = w + j * k;
  long q = 0;
  // one weight row is a few cache lines (k = 384 int8: 6): too short for the hardware prefetcher to
  // ramp up, so a GEMV (M = 1) fetches the next R rows ahead, one line per step of 64 bytes
  const bool ahead = M == 1 && j + 2 * R <= p.n;
  for (; q + V::L <= k; q += V::L) {
    if (ahead && ((q * (long)sizeof(E)) & 63) == 0)
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) __builtin_prefetch(wr + (R + r) * k + q, 0, 3);
    vec xv[M];
#pragma GCC unroll 4
    for (int t = 0; t < M; ++t) xv[t] = V::loadu(x + t * k + q);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const vec wv = V::widen(wr + r * k + q);
#pragma GCC unroll 4
      for (int t = 0; t < M; ++t) acc[r * M + t] = V::fma(xv[t], wv, acc[r * M + t]);
    }
  }
  float sums[N4];
  for (int a = 0; a < N4; a += 4) hsum4(acc[a], acc[a + 1], acc[a + 2], acc[a + 3], sums + a);
  for (int r = 0; r < R; ++r) {
    const float sc = p.format == QUANT_INT8 ? p.scales[j + r] : 1.0f;
    const float b = p.bias ? p.bias[j + r] : 0.0f;
    for (int t = 0; t < M; ++t) {
      float s = sums[r * M + t];
      for (long e = q; e < k; ++e) s += x[t * k + e] * to_f32(wr[r * k + e]);
      p.y[(i + t) * p.n + j + r] = s * sc + b;
    }
  }
}

// Rows [j0, j1) of W against M rows of x: 4 W rows at a time (2 when M = 4 with 16 vector registers), then 1.
template <typename E, int M>
void rows_block(const QuantParams& p, const E* w, long i, long j0, long j1) {
  constexpr int R = M >= 4 && V::L < 16 ? 2 : 4;
  long j = j0;
  for (; j + R <= j1; j += R) dot_block<E, R, M>(p, w, i, j);
  for (; j < j1; ++j) dot_block<E, 1, M>(p, w, i, j);
}

// One unit: W rows [j0, j1) against every row of x, x rows in blocks of 4, 2, 1 (the W block, at
// most kUnit rows, stays in cache across the x blocks).
template <typename E>
void unit(const QuantParams& p, long j0, long j1) {
  const E* w = static_cast<const E*>(p.w);
  long i = 0;
  for (; i + 4 <= p.m; i += 4) rows_block<E, 4>(p, w, i, j0, j1);
  for (; i + 2 <= p.m; i += 2) rows_block<E, 2>(p, w, i, j0, j1);
  for (; i < p.m; ++i) rows_block<E, 1>(p, w, i, j0, j1);
}

constexpr long kUnit = 64;  // W rows per unit (a multiple of 4)

void gemv_task(void* vc, int tid, int nt) {
  const QuantParams& p = *static_cast<const QuantParams*>(vc);
  const long units = (p.n + kUnit - 1) / kUnit;
  // static split: every y element is computed by one unit in a fixed order (thread-count independent)
  for (long u = units * tid / nt; u < units * (tid + 1) / nt; ++u) {
    const long j0 = u * kUnit, j1 = j0 + kUnit < p.n ? j0 + kUnit : p.n;
    if (p.format == QUANT_INT8) unit<int8_t>(p, j0, j1);
    else unit<uint16_t>(p, j0, j1);
  }
}

}  // namespace

void gemv(const QuantParams& p) {
  // memory-bound: as gemm_small_impl.h's run_small, a second thread pays off from ~0.5 MB of weight
  // traffic (per pass over W: one pass per block of 4 x rows), which int8 / bf16 reach at 4x / 2x the
  // size of an fp32 weight
  const double bytes = (double)p.n * p.k * (p.format == QUANT_INT8 ? 1 : 2) * ((p.m + 3) / 4);
  pool_run(bytes >= 524288.0 ? pool_threads() : 1, gemv_task, const_cast<QuantParams*>(&p));
}

void dequant(int format, const void* w, const float* scales, long rows, long k, float* dst) {
  for (long r = 0; r < rows; ++r) {
    float* d = dst + r * k;
    if (format == QUANT_INT8) {
      const int8_t* q = static_cast<const int8_t*>(w) + r * k;
      const float s = scales[r];
      for (long e = 0; e < k; ++e) d[e] = (float)q[e] * s;
    } else {
      const uint16_t* b = static_cast<const uint16_t*>(w) + r * k;
      for (long e = 0; e < k; ++e) d[e] = to_f32(b[e]);
    }
  }
}

}  // namespace TSF_QNS
}  // namespace tsf
