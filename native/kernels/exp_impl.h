// exp on float32, written once for a scalar float (kernels_impl.h, where GCC vectorises the loops) and
// for GCC vector types (flash_impl.h); F is float or a float vector, I the int32 type of the same shape.
// Included inside each ISA's anonymous namespace, after <cstdint> and <cstring>, so that the copies
// compiled for different ISAs never merge at link time.
//
// Cephes expf: Cody-Waite reduction x = n ln2 + r, degree-6 polynomial p(r) ~ e^r; ~1 ulp; exp(-inf)
// = 0, +inf past 88.72, NaN passes. The full range keeps subnormal results, but (outside the sliver
// x in about [-87.7, -87.3], where n = -126 and p < 1) not by a multiply that produces one: on Intel
// cores such a multiply takes a microcode assist (~100+ cycles), and the masked -inf scores of causal
// attention all went through one. For n < -126 the result p 2^n is built
// as y = p 2^(n+126) (normal, exact), and y + 1 rounds y to the 2^-23 grid, nearest-even, which is
// exactly the one rounding of p 2^n onto the subnormal grid 2^-149; the bits of y + 1 minus those of
// 1.0 are then the subnormal's bits. Bitwise equal to the former p * 2^n1 * 2^n2 on all 2^32 inputs
// (an exhaustive comparison run when this was written; test/native-kernels.test.ts checks the range).
template <class To, class From>
inline To exp_bitcast(From f) { static_assert(sizeof(To) == sizeof(From)); To t; std::memcpy(&t, &f, sizeof f); return t; }
// A constant in F's shape: a scalar, or broadcast to every lane (vector + scalar broadcasts in GCC).
template <class V, class S>
inline V exp_splat(S c) { return V{} + c; }

template <class F, class I>
inline F exp_cephes(F x) {
  const F lo = exp_splat<F>(-103.9f), hi = exp_splat<F>(88.75f);
  F xc = x < lo ? lo : x;  // NaN passes through both clamps
  xc = xc > hi ? hi : xc;
  const F t = xc * 1.44269504088896341f + 12582912.0f;  // round to nearest via 1.5 * 2^23
  const F n = t - 12582912.0f;
  const I ni = exp_bitcast<I>(t) - 0x4B400000;  // n as an integer, in [-150, 128]
  F r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  F p = exp_splat<F>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // normal results: 2^n in two halves (n = 128 has no float), n clamped so both stay normal
  const auto subnormal = ni < -126 && ni > -151;  // (a NaN's ni lies outside)
  const I nn = ni < -126 ? exp_splat<I>(-126) : ni;
  const I n1 = nn >> 1, n2 = nn - n1;
  const F normal = p * exp_bitcast<F>((n1 + 127) << 23) * exp_bitcast<F>((n2 + 127) << 23);
  // subnormal results (n < -126): y = p 2^(n + 126), n + 126 in [-24, -1]
  const I ns = subnormal ? ni : exp_splat<I>(-127);
  const F y = p * exp_bitcast<F>((ns + 126 + 127) << 23) + 1.0f;
  const F sub = exp_bitcast<F>(exp_bitcast<I>(y) - 0x3F800000);
  F res = subnormal ? sub : normal;
  res = x > 88.72283f ? exp_splat<F>(__builtin_inff()) : res;
  res = x < -103.5f ? exp_splat<F>(0.0f) : res;
  return res;
}
