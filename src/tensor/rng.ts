// Counter-based RNG: Philox4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3").
// The stream is a pure function of (seed, counter), so state is two numbers, resume is exact and every
// backend sees the same numbers (random draws happen here, never inside kernels).

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of a 32x32-bit product, from 16-bit halves (every partial sum is exact in a double). */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const mid = ah * bl + al * bh + ((al * bl) >>> 16);
  return (ah * bh + Math.floor(mid / 65536)) >>> 0;
}

/** One Philox4x32-10 block: 4 uint32 outputs for counter (c0..c3) and key (k0, k1). */
export function philox4x32(c: [number, number, number, number], k0: number, k1: number, out: Uint32Array): void {
  let [x0, x1, x2, x3] = c;
  for (let r = 0; r < 10; r++) {
    const h0 = mulhi(M0, x0), l0 = Math.imul(M0, x0) >>> 0;
    const h1 = mulhi(M1, x2), l1 = Math.imul(M1, x2) >>> 0;
    const n0 = (h1 ^ x1 ^ k0) >>> 0;
    const n2 = (h0 ^ x3 ^ k1) >>> 0;
    x0 = n0; x1 = l1; x2 = n2; x3 = l0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

export interface RngState { seed: number; counter: number }

/** A seeded Philox4x32-10 random stream: torch.Generator's role (named so it does not shadow JS's Generator type). */
export class RandomGenerator {
  private seed = 0;
  private counter = 0;
  private readonly block = new Uint32Array(4);

  constructor(seed = 0) { this.manualSeed(seed); }

  manualSeed(seed: number): this {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
    this.seed = seed;
    this.counter = 0;
    return this;
  }

  getState(): RngState { return { seed: this.seed, counter: this.counter }; }

  setState(s: RngState): void {
    if (!Number.isSafeInteger(s.seed) || !Number.isSafeInteger(s.counter) || s.counter < 0) {
      throw new RangeError(`invalid RNG state ${JSON.stringify(s)}: expected {seed, counter} non-negative integers`);
    }
    this.seed = s.seed;
    this.counter = s.counter;
  }

  /** Fill `out` with uint32 draws; each Philox block yields 4 and the counter advances per block. */
  uint32(out: Uint32Array): void {
    const k0 = this.seed >>> 0;
    const k1 = Math.floor(this.seed / 2 ** 32) >>> 0;
    for (let i = 0; i < out.length; i += 4) {
      const c = this.counter++;
      philox4x32([c >>> 0, Math.floor(c / 2 ** 32) >>> 0, 0, 0], k0, k1, this.block);
      for (let j = 0; j < 4 && i + j < out.length; j++) out[i + j] = this.block[j];
    }
  }

  /** Uniform in (0, 1): (u + 0.5) / 2^32 never hits 0 or 1, so log() is safe. */
  uniform(out: Float32Array | Float64Array, lo = 0, hi = 1): void {
    const u = new Uint32Array(out.length);
    this.uint32(u);
    for (let i = 0; i < out.length; i++) out[i] = lo + (hi - lo) * ((u[i] + 0.5) / 4294967296);
  }

  /** Standard normal by Box-Muller on pairs of uniforms. */
  normal(out: Float32Array | Float64Array, mean = 0, std = 1): void {
    const n = out.length;
    const u = new Float64Array(n + (n & 1));
    this.uniform(u);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(u[i]));
      const t = 2 * Math.PI * u[i + 1];
      out[i] = mean + std * r * Math.cos(t);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(t);
    }
  }

  /** Integers uniform in [0, n). */
  randint(out: Int32Array, n: number): void {
    const u = new Uint32Array(out.length);
    this.uint32(u);
    for (let i = 0; i < out.length; i++) out[i] = Math.floor((u[i] / 4294967296) * n);
  }
}

/** The default generator used when none is passed. */
export const defaultGenerator = new RandomGenerator(0);

export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}
