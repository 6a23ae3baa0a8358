// Included by kernels_impl.h inside its per-ISA namespace: not a standalone header. LayerNorm and
// RMSNorm with their backward, gather / scatter-add, AdamW.
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
