// Included by flash_impl.h inside its per-ISA namespace, so every ISA build has its own copy: not a
// standalone header. The vector types and helpers of the flash kernels: 8-lane floats (v8f: ymm with
// AVX2, SSE pairs on the baseline), DL-lane doubles and EL-lane floats (zmm with AVX-512), exp, the
// tile size.
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
inline vd vfma(vd a, vd b, vd c) {  // a * b + c (products of floats are exact in double)
#if defined(__AVX512F__)
  return (vd)_mm512_fmadd_pd((__m512d)a, (__m512d)b, (__m512d)c);
#elif defined(__AVX2__) && defined(__FMA__)
  return (vd)_mm256_fmadd_pd((__m256d)a, (__m256d)b, (__m256d)c);
#else
  return a * b + c;
#endif
}
inline void fstored(float* p, vd a) { const vdf f = __builtin_convertvector(a, vdf); std::memcpy(p, &f, sizeof f); }

#include "kernels/exp_impl.h"

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
inline ve e_exp(ve x) { return exp_cephes<ve, vei>(x); }
#if defined(__AVX512F__)
inline ve vfma(ve a, ve b, ve c) {  // the 16-lane overload: a * b + c, one rounding
  return (ve)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}
#endif
// Loads, stores and broadcasts for any of the vector types (v8f, ve, vd; ve is v8f when EL == 8),
// with vfma overloaded for each, so that one register-blocked body serves every width and precision.
template <class Vt, class E> inline Vt tload(const E* p) { Vt r; std::memcpy(&r, p, sizeof r); return r; }
template <class Vt, class E> inline void tstore(E* p, Vt a) { std::memcpy(p, &a, sizeof a); }
// Broadcasts as brace lists, one per type (Vt{} + x would be a real add of zero: -0 -> +0).
template <class Vt, class E> inline Vt tset(E x);
template <> inline v8f tset<v8f, float>(float x) { return vset(x); }
#if defined(__AVX512F__)
template <> inline ve tset<ve, float>(float x) { return ve{x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
template <> inline vd tset<vd, double>(double x) { return vd{x, x, x, x, x, x, x, x}; }
#else
template <> inline vd tset<vd, double>(double x) { return vd{x, x, x, x}; }
#endif
