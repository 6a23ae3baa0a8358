// Shared by the native kernel tests: whether the addon is there (in CI it must be), seeded float32
// inputs, the scale-aware tolerance check (1e-6 relative for elementwise kernels, 1e-5 for reductions,
// as test/helpers/golden.ts), bitwise comparison, and a test per ISA level this CPU has.
import assert from "node:assert/strict";
import { it } from "node:test";

import { native, nativeLoadError } from "../../src/backend/native/addon.js";

const inCI = process.env.CI === "true" || process.env.CI === "1";
if (!native && inCI) throw new Error(`native addon not loaded in CI: ${nativeLoadError}`);
export const skip = native ? false : `native addon not loaded (${nativeLoadError})`;
let seed = 12345;
/** Restarts the input sequence (a test that must not depend on which tests ran before). */
export function reseed(s: number): void { seed = s; }
export function rnd(): number {  // deterministic LCG in [0, 1)
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 4294967296;
}
export function rand(n: number, lo = -3, hi = 3): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = lo + (hi - lo) * rnd();
  return x;
}
export const f64 = (x: Float32Array) => Float64Array.from(x);

// floor: an absolute magnitude below which values count as zero (e.g. a loss that is 0 up to rounding)
export function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol: number, floor = 0, n = want.length): void {
  let scale = 0;
  for (let i = 0; i < n; i++) if (Number.isFinite(want[i])) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < n; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (!(Number.isNaN(w) && Number.isNaN(g))) assert.fail(`${what}[${i}]: got ${g}, want ${w}`);
      continue;
    }
    if (!Number.isFinite(w)) { if (g !== w) assert.fail(`${what}[${i}]: got ${g}, want ${w}`); continue; }
    const err = Math.abs(g - w) / (Math.abs(w) + 0.02 * scale + floor + 1e-30);
    if (!(err <= tol)) assert.fail(`${what}[${i}]: got ${g}, want ${w} (relative error ${err.toExponential(2)} > ${tol})`);
  }
}
export function sameBits(what: string, a: Float32Array, b: Float32Array): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) assert.fail(`${what}: bits differ at ${i} (${a[i]} vs ${b[i]})`);
}

const levels = native ? ["avx512", "avx2", "scalar"].filter((l) => native!.setIsa(l as "avx512").startsWith(l)) : [];
if (native) native.setIsa("auto");

export function onEveryLevel(title: string, fn: () => void): void {
  for (const level of levels)
    it(`${title} [${level}]`, () => {
      native!.setIsa(level as "avx2");
      try { fn(); } finally { native!.setIsa("auto"); }
    });
}
