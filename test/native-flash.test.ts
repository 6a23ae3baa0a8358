// The native FlashAttention kernels (native/attention/flash_impl.h) against the js reference twin run in float64
// on the same (float32) inputs: awkward lengths (T = 1, 7, 65, 129, 300), head sizes 1, 7, 8, 24, 64,
// GQA, sliding windows, varlen cuSeqlens, block-mask tables, decoding (Tq < S), more queries than
// keys (rows with no visible key), on every ISA level this CPU has. Tolerance (scale-aware like
// test/helpers/golden.ts): 1e-5 for o and lse; 5e-5 for the gradients. The kernels form the logits
// q.k in float32 (about 3e-7 absolute at d = 64): the gradients of the long-sequence d = 64 cases
// measure up to 3.3e-5 here (the PyTorch-fixture op tests, d <= 16, hold 1e-5: flash.test.ts).
// Determinism: the same call twice, 1 vs 2 threads, and the two backward schedules (dQ fused into the
// dK/dV sweep, or in its own pass over query tiles) give identical bits.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { Backend, BlockMask, FlashArgs } from "../src/backend/backend.js";
import { blockMaskTable } from "../src/backend/mask.js";
import { jsBackend } from "../src/backend/js/index.js";
import { getNativeThreads, native, nativeLoadError, setNativeThreads } from "../src/backend/native/addon.js";
import { makeNativeBackend } from "../src/backend/native/index.js";

const inCI = process.env.CI === "true" || process.env.CI === "1";
if (!native && inCI) throw new Error(`native addon not loaded in CI: ${nativeLoadError}`);
const skip = native ? false : `native addon not loaded (${nativeLoadError})`;
const nb = native ? (makeNativeBackend({ tinyToJs: false }) as Backend) : jsBackend;
const TOL = 1e-5, GRAD_TOL = 5e-5;
// lowPrecision (autocast): dP - D formed in float32 loses ~1 ulp of |dP| to cancellation; bf16 rounds at 2^-9
const LOWP_TOL = 2e-3;

let seed = 4242;
function rnd(): number {  // deterministic LCG in [0, 1)
  seed = (seed * 1103515245 + 12345) >>> 0;
  return (seed + 0.5) / 4294967296;
}
function randn(n: number): Float32Array {  // Box-Muller
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd());
  return x;
}
const f64 = (x: Float32Array) => Float64Array.from(x);

function close(what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = TOL, floor = 1e-30): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < want.length; i++) if (Number.isFinite(want[i])) scale = Math.max(scale, Math.abs(want[i]));
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (!Number.isFinite(w)) { if (g !== w) assert.fail(`${what}[${i}]: got ${g}, want ${w}`); continue; }
    const err = Math.abs(g - w) / (Math.abs(w) + 0.02 * scale + floor);
    if (!(err <= tol)) assert.fail(`${what}[${i}]: got ${g}, want ${w} (relative error ${err.toExponential(2)} > ${tol})`);
  }
}
function sameBits(what: string, a: Float32Array, b: Float32Array): void {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length), ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) assert.fail(`${what}: bits differ at ${i} (${a[i]} vs ${b[i]})`);
}

interface Case {
  name: string; B: number; H: number; Hkv: number; Tq: number; S: number; d: number;
  causal?: boolean; window?: number; cu?: number[]; blockMask?: BlockMask; scale?: number;
}
const tableOf = (S: number, bs: number, allow: (qb: number, kb: number) => boolean): BlockMask => {
  const n = Math.ceil(S / bs);
  return { blockSize: bs, allow: Uint8Array.from({ length: n * n }, (_, i) => (allow(Math.floor(i / n), i % n) ? 1 : 0)) };
};
const CASES: Case[] = [
  { name: "T=1 causal", B: 2, H: 2, Hkv: 2, Tq: 1, S: 1, d: 8, causal: true },
  { name: "T=7 GQA causal d=24", B: 2, H: 4, Hkv: 2, Tq: 7, S: 7, d: 24, causal: true },
  { name: "T=65 GQA non-causal d=64", B: 1, H: 4, Hkv: 1, Tq: 65, S: 65, d: 64, causal: false },
  { name: "T=129 causal window 40 d=24", B: 1, H: 3, Hkv: 3, Tq: 129, S: 129, d: 24, causal: true, window: 40 },
  { name: "T=129 non-causal window 9 d=8, scale 0.3", B: 1, H: 2, Hkv: 2, Tq: 129, S: 129, d: 8, causal: false, window: 9, scale: 0.3 },
  { name: "T=300 GQA causal d=64 (separate dQ pass)", B: 1, H: 4, Hkv: 2, Tq: 300, S: 300, d: 64, causal: true },
  { name: "T=300 causal d=24, 8 kv heads (fused dQ)", B: 2, H: 8, Hkv: 4, Tq: 300, S: 300, d: 24, causal: true },
  { name: "T=300 varlen d=8", B: 2, H: 4, Hkv: 4, Tq: 300, S: 300, d: 8, causal: true, cu: [0, 1, 65, 65, 200, 300] },
  { name: "T=129 varlen window non-causal d=64", B: 1, H: 2, Hkv: 1, Tq: 129, S: 129, d: 64, causal: false, window: 20, cu: [0, 70, 71, 129] },
  { name: "T=300 block mask (table, 16) causal d=24", B: 1, H: 2, Hkv: 2, Tq: 300, S: 300, d: 24, causal: true, blockMask: tableOf(300, 16, (a, b) => (a * 7 + b * 3) % 5 !== 1) },
  { name: "T=65 block mask (fn, 7) non-causal d=8", B: 1, H: 2, Hkv: 1, Tq: 65, S: 65, d: 8, causal: false, blockMask: { blockSize: 7, allow: (a, b) => a !== b + 1 } },
  { name: "decode 1 of 300 GQA d=64", B: 2, H: 4, Hkv: 2, Tq: 1, S: 300, d: 64, causal: true },
  { name: "decode 7 of 129 window 50 d=24", B: 1, H: 2, Hkv: 2, Tq: 7, S: 129, d: 24, causal: true, window: 50 },
  { name: "decode 65 of 129 block mask d=8", B: 1, H: 2, Hkv: 2, Tq: 65, S: 129, d: 8, causal: true, blockMask: tableOf(129, 32, (a, b) => a !== 2 || b !== 1) },
  { name: "Tq > S: rows with no visible key, d=7", B: 1, H: 2, Hkv: 2, Tq: 12, S: 10, d: 7, causal: true, blockMask: { blockSize: 4, allow: (a, b) => a !== 1 || b !== 1 } },
  { name: "odd head sizes d=1 and 7", B: 1, H: 2, Hkv: 1, Tq: 33, S: 33, d: 1, causal: true },
  { name: "d=7, T=129 non-causal", B: 1, H: 2, Hkv: 2, Tq: 129, S: 129, d: 7, causal: false },
];

interface Inputs { q: Float32Array; k: Float32Array; v: Float32Array; dO: Float32Array }
function inputs(c: Case): Inputs {
  const nq = c.B * c.H * c.Tq * c.d, nk = c.B * c.Hkv * c.S * c.d;
  return { q: randn(nq), k: randn(nk), v: randn(nk), dO: randn(nq) };
}
function maskArgs(c: Case) {
  return {
    B: c.B, H: c.H, Hkv: c.Hkv, Tq: c.Tq, S: c.S, d: c.d, scale: c.scale ?? 1 / Math.sqrt(c.d),
    causal: c.causal ?? true, window: c.window ?? 0, cuSeqlens: c.cu ? Int32Array.from(c.cu) : null, blockMask: c.blockMask ?? null,
  };
}

/** Forward + backward on a backend: [o, lse, dq, dk, dv]. */
function runFlash<A extends Float32Array | Float64Array>(be: Backend, c: Case, x: Inputs, conv: (a: Float32Array) => A, alloc: (n: number) => A, lowPrecision = false): A[] {
  const nq = c.B * c.H * c.Tq * c.d, nk = c.B * c.Hkv * c.S * c.d;
  const a: FlashArgs<A> = { ...maskArgs(c), q: conv(x.q), k: conv(x.k), v: conv(x.v), o: alloc(nq), lse: alloc(c.B * c.H * c.Tq) };
  be.flashForward(a);
  const dq = alloc(nq), dk = alloc(nk), dv = alloc(nk);
  // the outputs start dirty: the kernels must overwrite every element
  dq.fill(7); dk.fill(7); dv.fill(7);
  be.flashBackward({ ...a, dO: conv(x.dO), dq, dk, dv, lowPrecision });
  return [a.o, a.lse, dq, dk, dv];
}
const runNative = (c: Case, x: Inputs, lowp = false) => runFlash(nb, c, x, (a) => a, (n) => new Float32Array(n).fill(NaN), lowp);
const runJs = (c: Case, x: Inputs) => runFlash(jsBackend, c, x, f64, (n) => new Float64Array(n));

const levels = native ? ["avx512", "avx2", "scalar"].filter((l) => native!.setIsa(l as "avx512").startsWith(l)) : [];
if (native) native.setIsa("auto");

describe("native flash attention vs the js twin", { skip }, () => {
  const data = CASES.map((c) => ({ c, x: inputs(c) }));
  const want = data.map(({ c, x }) => runJs(c, x));
  for (const level of levels) {
    data.forEach(({ c, x }, i) => {
      it(`${c.name} [${level}]`, () => {
        native!.setIsa(level as "avx2");
        try {
          const got = runNative(c, x);
          ["o", "lse", "dq", "dk", "dv"].forEach((n, j) => close(`${c.name} ${n}`, got[j], want[i][j], j < 2 ? TOL : GRAD_TOL));
          for (const g of got.slice(2)) assert.ok(g.every(Number.isFinite), `${c.name}: non-finite gradient`);
          // the autocast backward (float32 accumulation only): the same mask handling, a looser tolerance
          const low = runNative(c, x, true);
          // (a gradient that is exactly 0, a query seeing one key, comes out ~1e-7: an absolute floor of 1e-4 on O(1) values)
          ["dq", "dk", "dv"].forEach((n, j) => close(`${c.name} ${n} (lowPrecision)`, low[j + 2], want[i][j + 2], LOWP_TOL, 1e-4));
        } finally { native!.setIsa("auto"); }
      });
    });
  }

  it("rows with no visible key: output 0, lse -Infinity, zero gradients", () => {
    const c = CASES.find((k) => k.name.startsWith("Tq > S"))!;
    const [o, lse, dq] = runNative(c, inputs(c));
    for (const h of [0, 1]) {
      for (const t of [0, 1]) {
        assert.equal(lse[h * c.Tq + t], -Infinity);
        for (let x = 0; x < c.d; x++) { assert.equal(o[(h * c.Tq + t) * c.d + x], 0); assert.equal(dq[(h * c.Tq + t) * c.d + x], 0); }
      }
    }
  });

  it("float64 arguments fall back to the js kernels", () => {
    const c = CASES[1], x = inputs(c);
    const got = runFlash(nb, c, x, f64, (n) => new Float64Array(n)), ref = runJs(c, x);
    got.forEach((g, j) => assert.deepEqual(Array.from(g), Array.from(ref[j])));
  });

  it("bad masks are rejected with the js messages", () => {
    const c = CASES[1], x = inputs(c);
    const go = (m: Partial<Case>) => () => runNative({ ...c, ...m }, x);
    assert.throws(go({ window: -1 }), /window must be an integer >= 0/);
    assert.throws(go({ cu: [0, 5, 3, 7] }), /cuSeqlens must rise from 0/);
    assert.throws(go({ blockMask: { blockSize: 4, allow: new Uint8Array(3) } }), /block table has 3 entries, expected 2 x 2/);
  });

  it("k and v read in place from longer buffers (kvRows, a KV cache): the bits of the contiguous copies", () => {
    const B = 2, H = 4, Hkv = 2, Tq = 3, S = 37, d = 16, R = 64;
    const q = randn(B * H * Tq * d), kb = randn(B * Hkv * R * d), vb = randn(B * Hkv * R * d);
    const firstS = (buf: Float32Array) => {  // the first S rows of every (b, kv head): the contiguous copy
      const out = new Float32Array(B * Hkv * S * d);
      for (let g = 0; g < B * Hkv; g++) out.set(buf.subarray(g * R * d, (g * R + S) * d), g * S * d);
      return out;
    };
    for (const [name, be] of [["native", nb], ["js", jsBackend]] as const) {
      const run = (k: Float32Array, v: Float32Array, kvRows?: number) => {
        const o = new Float32Array(q.length), lse = new Float32Array(B * H * Tq);
        be.flashForward({ B, H, Hkv, Tq, S, d, q, k, v, o, lse, scale: 0.25, causal: true, window: 0, ...(kvRows ? { kvRows } : {}) } as FlashArgs);
        return [o, lse];
      };
      const want = run(firstS(kb), firstS(vb)), got = run(kb, vb, R);
      sameBits(`${name} o`, got[0], want[0]);
      sameBits(`${name} lse`, got[1], want[1]);
    }
    const dims = Float64Array.from([1, 1, 1, 4, 8, 8, 1, 0, 0, 1, 0, 6]), f = new Float32Array(1024);
    const addon = native as unknown as { flashForward: (...a: unknown[]) => void; flashBackward: (...a: unknown[]) => void };
    assert.throws(() => addon.flashForward(f, f, f, f, f, dims, null, null), /kvRows must be an integer >= S \(8\)/);
    dims[11] = 16;
    assert.throws(() => addon.flashBackward(f, f, f, f, f, f, f, f, f, dims, null, null), /kvRows .* is for the forward only/);
  });

  it("the addon checks lengths itself", () => {
    const f = new Float32Array(8), dims = Float64Array.from([1, 1, 1, 4, 4, 8, 1, 1, 0, 1]);
    const addon = native as unknown as { flashForward: (...a: unknown[]) => void };
    assert.throws(() => addon.flashForward(f, f, f, f, f, dims, null, null), /q is too short/);
    assert.throws(() => addon.flashForward(f, f, f, f, f, Float64Array.from([1, 3, 2, 1, 1, 1, 1, 0, 0, 1]), null, null), /kv heads must divide/);
  });
});

describe("native flash attention: determinism", { skip }, () => {
  type Addon = {
    flashForward: (...a: unknown[]) => void;
    flashBackward: (...a: unknown[]) => void;
  };
  // The raw addon with an explicit backward schedule (dims[10]: 1 fused, 2 separate dQ pass).
  function rawRun(c: Case, x: Inputs, mode: number, lowp = false): Float32Array[] {
    const m = maskArgs(c), addon = native as unknown as Addon;
    const dims = Float64Array.from([c.B, c.H, c.Hkv, c.Tq, c.S, c.d, m.scale, m.causal ? 1 : 0, m.window, m.blockMask ? m.blockMask.blockSize : 1, mode, 0, lowp ? 1 : 0]);
    const table = m.blockMask ? blockMaskTable(m.blockMask, c.Tq, c.S).table : null;
    const o = new Float32Array(x.q.length), lse = new Float32Array(c.B * c.H * c.Tq);
    const dq = new Float32Array(x.q.length), dk = new Float32Array(x.k.length), dv = new Float32Array(x.k.length);
    addon.flashForward(x.q, x.k, x.v, o, lse, dims, m.cuSeqlens, table);
    addon.flashBackward(x.q, x.k, x.v, o, lse, x.dO, dq, dk, dv, dims, m.cuSeqlens, table);
    return [o, lse, dq, dk, dv];
  }
  const big: Case[] = [
    { name: "causal GQA T=300 d=64", B: 1, H: 4, Hkv: 2, Tq: 300, S: 300, d: 64, causal: true },
    { name: "varlen block mask T=300 d=24", B: 2, H: 2, Hkv: 2, Tq: 300, S: 300, d: 24, causal: true, cu: [0, 90, 91, 300], blockMask: tableOf(300, 32, (a, b) => (a + b) % 4 !== 2) },
    { name: "non-causal window T=257 d=7", B: 1, H: 8, Hkv: 8, Tq: 257, S: 257, d: 7, causal: false, window: 70 },
  ];
  for (const c of big) {
    for (const lowp of [false, true]) it(`${c.name}${lowp ? " (lowPrecision backward)" : ""}: repeat, 1 vs 2 threads, fused vs separate dQ pass`, () => {
      const x = inputs(c), saved = getNativeThreads();
      try {
        for (const level of levels) {
          native!.setIsa(level as "avx2");
          setNativeThreads(2);
          const a = rawRun(c, x, 0, lowp), b = rawRun(c, x, 0, lowp), fused = rawRun(c, x, 1, lowp), split = rawRun(c, x, 2, lowp);
          setNativeThreads(1);
          const one = rawRun(c, x, 0, lowp), oneSplit = rawRun(c, x, 2, lowp);
          a.forEach((y, i) => {
            const w = `${c.name} [${level}] out${i}`;
            sameBits(`${w} (repeat)`, y, b[i]);
            sameBits(`${w} (1 vs 2 threads)`, y, one[i]);
            sameBits(`${w} (fused vs separate dQ)`, fused[i], split[i]);
            sameBits(`${w} (auto vs fused)`, y, fused[i]);
            sameBits(`${w} (separate dQ, 1 vs 2 threads)`, split[i], oneSplit[i]);
          });
        }
      } finally { setNativeThreads(saved); native!.setIsa("auto"); }
    });
  }

  // Inside a partial tile the kernels skip the register blocks that the causal / window rule hides
  // wholly; a block table hiding the same pairs (block size 1) gives the same tile statuses but skips
  // nothing inside them. The skipped terms are exact zeros, so both must give the same bits, in both
  // backward schedules.
  for (const c of [
    { name: "causal GQA T=300 d=64", B: 1, H: 4, Hkv: 2, Tq: 300, S: 300, d: 64, causal: true, window: 0 },
    { name: "causal window 70, T=257 d=24", B: 2, H: 2, Hkv: 1, Tq: 257, S: 257, d: 24, causal: true, window: 70 },
  ]) {
    it(`${c.name}: skipping hidden blocks changes no bits (vs the same mask as a table)`, () => {
      const x = inputs(c);
      const table = tableOf(c.S, 1, (i, j) => j <= i && (c.window === 0 || j > i - c.window));
      for (const mode of [1, 2]) {
        const rule = rawRun(c, x, mode), tab = rawRun({ ...c, causal: false, window: 0, blockMask: table }, x, mode);
        rule.forEach((y, i) => sameBits(`${c.name} out${i} (schedule ${mode})`, y, tab[i]));
      }
    });
  }
});
