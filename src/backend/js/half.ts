// 16-bit float storage <-> float32, in plain JS (the reference twins of the native conversions):
// bfloat16 is the top half of a float32 (Kalamkar et al. 2019); float16 is IEEE 754 binary16.
// Both narrowings round to nearest even; NaN stays a (quiet) NaN.

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bf16 bits -> float32 (exact). */
export function bf16ToF32<D extends Float32Array<ArrayBufferLike> = Float32Array>(src: Uint16Array, dst: D = new Float32Array(src.length) as D): D {
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return dst;
}

/** float32 -> bf16 bits, round to nearest even. */
export function f32ToBf16<D extends Uint16Array<ArrayBufferLike> = Uint16Array>(src: Float32Array, dst: D = new Uint16Array(src.length) as D): D {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const b = bits[i]!;
    if ((b & 0x7fffffff) > 0x7f800000) dst[i] = (b >>> 16) | 0x40; // NaN: keep sign, set the quiet bit
    else dst[i] = (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return dst;
}

/** float16 bits -> float32 (exact: every binary16 value, subnormals included, is a float32). */
export function f16ToF32<D extends Float32Array<ArrayBufferLike> = Float32Array>(src: Uint16Array, dst: D = new Float32Array(src.length) as D): D {
  for (let i = 0; i < src.length; i++) {
    const h = src[i]!, sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    dst[i] = e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m ? NaN : sign * Infinity) : sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return dst;
}

/** float32 -> float16 bits, round to nearest even; overflow gives +-Infinity. */
export function f32ToF16<D extends Uint16Array<ArrayBufferLike> = Uint16Array>(src: Float32Array, dst: D = new Uint16Array(src.length) as D): D {
  for (let i = 0; i < src.length; i++) {
    f32[0] = src[i]!;
    const b = u32[0]!, sign = (b >>> 16) & 0x8000, e = (b >>> 23) & 0xff, m = b & 0x7fffff;
    if (e === 0xff) { dst[i] = sign | 0x7c00 | (m ? 0x200 : 0); continue; }
    const exp = e - 127 + 15;
    if (exp >= 31) { dst[i] = sign | 0x7c00; continue; }
    if (exp <= 0) {
      // subnormal half: the value is m' * 2^-24 with m' = round(|x| / 2^-24)
      if (exp < -10) { dst[i] = sign; continue; }
      const full = m | 0x800000, shift = 14 - exp;
      const q = full >>> shift, rem = full & ((1 << shift) - 1), halfway = 1 << (shift - 1);
      dst[i] = sign | (q + (rem > halfway || (rem === halfway && (q & 1)) ? 1 : 0));
      continue;
    }
    const q = (exp << 10) | (m >>> 13), rem = m & 0x1fff;
    // a carry out of the mantissa correctly bumps the exponent (up to Infinity)
    dst[i] = sign | (q + (rem > 0x1000 || (rem === 0x1000 && (q & 1)) ? 1 : 0));
  }
  return dst;
}
