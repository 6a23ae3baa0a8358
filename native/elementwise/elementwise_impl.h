// Included by kernels_impl.h inside its per-ISA namespace: not a standalone header. Unary ops and
// their backward, binary ops with broadcasting, strided copies, where.
// --- unary ----------------------------------------------------------------------------------------
#define TSF_UNARY_MATH
#include "unary.h"  // ufwd, ubwd
#undef TSF_UNARY_MATH

constexpr bool heavy(int op) {
  switch (op) {
#define X(code, name, transcendental) case code: return transcendental;
    TSF_UNARY_OPS(X)
#undef X
  }
  return false;
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

void k_unary(int op, const float* x, float* y, long n, float a, float b) {
  switch (op) {
#define X(code, name, transcendental) case code: unary_t<code>(x, y, n, a, b); return;
    TSF_UNARY_OPS(X)
#undef X
  }
}
void k_unary_backward(int op, const float* x, const float* y, const float* gy, float* gx, long n,
                      float a, float b) {
  switch (op) {
#define X(code, name, transcendental) case code: unary_bwd_t<code>(x, y, gy, gx, n, a, b); return;
    TSF_UNARY_OPS(X)
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
#define X(code, name) case code: binary_t<code>(a, b, out, rank, sh, sa, sb); return;
    TSF_BINARY_OPS(X)
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
