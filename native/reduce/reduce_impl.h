// Included by kernels_impl.h inside its per-ISA namespace: not a standalone header. Row reductions,
// reduce and cumsum over [outer, dim, inner], softmax and cross-entropy.
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
