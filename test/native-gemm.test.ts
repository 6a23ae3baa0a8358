// Native GEMM against a float64 triple loop: every transpose combination, odd sizes that are not
// multiples of the 6 x 16 / 6 x 32 tiles, several cache blocks, batched/strided with offsets,
// alpha/beta, 1 and 2 threads, and every ISA level this CPU has. bf16: round-to-nearest-even on
// hand-picked bit patterns, and bf16 GEMM (both operand layouts) against fp32 and against the exact
// product of the rounded inputs.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { native, nativeLoadError, nativeCpuFeatures, getNativeThreads, setNativeThreads } from "../src/backend/native/addon.js";
import { fromBf16, nativeGemm, nativeGemmBf16, toBf16 } from "../src/backend/native/gemm.js";
import type { GemmArgs } from "../src/backend/backend.js";

const inCI = process.env.CI === "true" || process.env.CI === "1";
if (!native && inCI) throw new Error(`native addon not loaded in CI: ${nativeLoadError}`);
const skip = native ? false : `native addon not loaded (${nativeLoadError})`;
if (skip) console.log(`# skipping native GEMM tests: ${skip}`);

function rand(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.random() * 2 - 1;
  return x;
}

type Args = GemmArgs<Float32Array>;
function make(batch: number, m: number, n: number, k: number, tA: boolean, tB: boolean, pad = 0, off = 0,
  alpha = 1, beta = 0): Args {
  const lda = (tA ? m : k) + pad, ldb = (tB ? k : n) + pad, ldc = n + pad;
  const strideA = (tA ? k : m) * lda + pad, strideB = (tB ? n : k) * ldb + pad, strideC = m * ldc + pad;
  return {
    batch, m, n, k, alpha, beta,
    a: rand(off + batch * strideA), aOff: off, lda, strideA, transA: tA,
    b: rand(off + batch * strideB), bOff: off, ldb, strideB, transB: tB,
    c: rand(off + batch * strideC), cOff: off, ldc, strideC,
  };
}

/** float64 reference, and per-element error bound eps * (|alpha| sum|a||b| + |beta c|). */
function reference(g: Args, getA = (i: number) => g.a[i], getB = (i: number) => g.b[i]) {
  const out = Float64Array.from(g.c), bound = new Float64Array(g.c.length);
  for (let t = 0; t < g.batch; t++) {
    const ao = g.aOff + t * g.strideA, bo = g.bOff + t * g.strideB, co = g.cOff + t * g.strideC;
    for (let i = 0; i < g.m; i++)
      for (let j = 0; j < g.n; j++) {
        let s = 0, sa = 0;
        for (let p = 0; p < g.k; p++) {
          const a = getA(g.transA ? ao + p * g.lda + i : ao + i * g.lda + p);
          const b = getB(g.transB ? bo + j * g.ldb + p : bo + p * g.ldb + j);
          s += a * b; sa += Math.abs(a * b);
        }
        const ci = co + i * g.ldc + j, c0 = g.c[ci], bias = g.bias ? g.bias[(g.biasOff ?? 0) + j] : 0;
        out[ci] = g.alpha * s + (g.beta === 0 ? 0 : g.beta * c0) + bias;
        bound[ci] = Math.abs(g.alpha) * sa + Math.abs(g.beta * c0) + Math.abs(bias) + 1e-30;
      }
  }
  return { out, bound };
}

function check(got: Float32Array, ref: { out: Float64Array; bound: Float64Array }, tol: number, what: string) {
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - ref.out[i]);
    if (!(err <= tol * ref.bound[i])) assert.fail(`${what}: c[${i}] = ${got[i]}, expected ${ref.out[i]} (err ${err}, bound ${tol * ref.bound[i]})`);
  }
}

function runF32(g: Args, what: string) {
  const ref = reference(g);
  nativeGemm(g);
  check(g.c, ref, 2e-6 * Math.sqrt(Math.max(g.k, 1)) + 1e-6, what);
}

const sizes: [number, number, number][] = [
  [1, 1, 1], [7, 17, 33], [17, 7, 1], [33, 129, 17], [129, 33, 257], [257, 129, 7], [1, 257, 129],
  [129, 1, 33], [6, 16, 8], [12, 32, 64], [257, 257, 33], [300, 40, 600], [13, 4100, 9],
  // packed A (more than 24 column panels), and A read in place across several k-blocks
  [70, 600, 50], [61, 130, 1100],
];
const combos: [boolean, boolean][] = [[false, false], [false, true], [true, false], [true, true]];
const levels = native ? ["avx512", "avx2", "scalar"].filter((l) => native!.setIsa(l as "avx512").startsWith(l)) : [];
if (native) native.setIsa("auto");

describe("native gemm (fp32)", { skip }, () => {
  it("reports CPU features and threads", () => {
    const f = nativeCpuFeatures();
    assert.ok(Array.isArray(f));
    assert.ok(getNativeThreads() >= 1);
    console.log(`# isa ${native!.isa()}, features [${f.join(", ")}], threads ${getNativeThreads()}, levels tested ${levels.join(", ")}`);
  });
  for (const level of levels)
    for (const threads of [1, 2])
      it(`${level}, ${threads} thread(s): all transposes, odd sizes, alpha/beta`, () => {
        native!.setIsa(level as "avx2");
        const saved = getNativeThreads();
        setNativeThreads(threads);
        try {
          for (const [m, n, k] of sizes)
            for (const [tA, tB] of combos) {
              const big = m * n * k > 2e6;
              if (big && level === "scalar") continue;
              runF32(make(1, m, n, k, tA, tB), `${m}x${n}x${k} tA=${tA} tB=${tB}`);
              if (!big) runF32(make(1, m, n, k, tA, tB, 3, 5, -0.75, 0.5), `padded ${m}x${n}x${k} tA=${tA} tB=${tB}`);
            }
        } finally {
          setNativeThreads(saved);
          native!.setIsa("auto");
        }
      });
  // The Linear bias is added in the write-back (full tiles, edge tiles, A read in place, the small
  // unpacked kernels, k = 0, several k blocks): compared with the reference on every level.
  for (const level of levels)
    it(`${level}: bias epilogue (every transpose, edges, small and k = 0 shapes, beta)`, () => {
      native!.setIsa(level as "avx2");
      try {
        const shapes: [number, number, number][] = [[33, 129, 17], [129, 33, 257], [6, 32, 8], [5, 40, 30], [40, 3, 30], [61, 130, 1100], [9, 10, 0], [300, 40, 600]];
        for (const [m, n, k] of shapes)
          for (const [tA, tB] of combos)
            for (const beta of [0, 0.5]) {
              const g = make(1, m, n, k, tA, tB, 2, 3, 1, beta);
              g.bias = rand(n + 5); g.biasOff = 4;
              runF32(g, `bias ${m}x${n}x${k} tA=${tA} tB=${tB} beta=${beta}`);
            }
      } finally {
        native!.setIsa("auto");
      }
    });
  it("bias: batch > 1 and a short bias are rejected", () => {
    const g = make(2, 8, 8, 8, false, false);
    assert.throws(() => nativeGemm({ ...g, bias: rand(8), biasOff: 0 }), /bias needs batch 1/);
    assert.throws(() => nativeGemm({ ...g, batch: 1, bias: rand(8), biasOff: 1 }), /bias is out of bounds/);
  });
  it("batched and strided with offsets (many small, few large, broadcast B)", () => {
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      for (const [tA, tB] of combos) {
        runF32(make(37, 9, 11, 13, tA, tB, 2, 3, 1.5, -1), `batch 37 tA=${tA} tB=${tB}`);
        runF32(make(3, 70, 90, 50, tA, tB, 1, 7, 0.5, 2), `batch 3 tA=${tA} tB=${tB}`);
        const g = make(5, 20, 24, 30, tA, tB, 0, 4, 1, 0);
        g.strideB = 0; // the same B for every batch entry
        runF32(g, `broadcast B tA=${tA} tB=${tB}`);
      }
    }
    setNativeThreads(2);
  });
  it("same bits with 1 and 2 threads (row and column slabs, batches, long k, every transpose)", () => {
    const saved = getNativeThreads();
    try {
      // [batch, m, n, k]: rows split (n <= m), columns split (n > m), long-k grad-weight shape,
      // a batch that does not divide by 2 (per-entry slabs) and one that does (whole entries), and a
      // product of >= 1e9 multiply-adds that 2 threads run with one shared packed B (4 k-blocks, so
      // both B buffers are reused; edge rows and columns)
      const shapes: [number, number, number, number][] = [[1, 203, 97, 70], [1, 61, 250, 45], [1, 40, 70, 3001], [3, 50, 41, 66], [4, 37, 29, 20], [1, 602, 600, 3000]];
      for (const [batch, m, n, k] of shapes)
        for (const [tA, tB] of combos) {
          const g = make(batch, m, n, k, tA, tB, 1, 3, 0.75, 0.5);
          const c0 = Float32Array.from(g.c);
          setNativeThreads(1);
          nativeGemm(g);
          const one = Float32Array.from(g.c);
          g.c.set(c0);
          setNativeThreads(2);
          nativeGemm(g);
          for (let i = 0; i < one.length; i++)
            if (!Object.is(one[i], g.c[i])) assert.fail(`${batch}x${m}x${n}x${k} tA=${tA} tB=${tB}: c[${i}] ${one[i]} (1 thread) vs ${g.c[i]} (2 threads)`);
        }
    } finally {
      setNativeThreads(saved);
    }
  });
  it("strideC = 0: batch entries update the shared C in order, each with beta", () => {
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      for (const [m, n, k] of [[30, 40, 50], [4, 20, 30]] as const) {
        const g = make(3, m, n, k, false, true, 0, 0, 1.25, 0.5);
        g.strideC = 0;
        const seq = Float32Array.from(g.c);
        for (let t = 0; t < 3; t++)
          nativeGemm({ ...g, batch: 1, aOff: t * g.strideA, bOff: t * g.strideB, c: seq });
        nativeGemm(g);
        for (let i = 0; i < m * n; i++) assert.ok(Object.is(seq[i], g.c[i]), `${m}x${n}x${k} ${threads}T: c[${i}] ${g.c[i]} vs ${seq[i]}`);
      }
    }
    setNativeThreads(2);
  });
  it("beta = 0 ignores NaN in C; k = 0 and alpha = 0 scale C by beta", () => {
    const g = make(1, 9, 10, 11, false, false);
    g.c.fill(NaN);
    const ref = reference({ ...g, c: new Float32Array(g.c.length) });
    nativeGemm(g);
    check(g.c, ref, 1e-5, "beta=0 with NaN C");
    const z = make(2, 5, 6, 0, false, true, 1, 2, 1, 0.5);
    const before = Float32Array.from(z.c);
    nativeGemm(z);
    for (let t = 0; t < 2; t++)
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < 6; j++) {
          const idx = z.cOff + t * z.strideC + i * z.ldc + j;
          assert.equal(z.c[idx], Math.fround(0.5 * before[idx]));
        }
  });
  it("rejects out-of-bounds and malformed arguments", () => {
    const g = make(2, 8, 8, 8, false, false);
    assert.throws(() => nativeGemm({ ...g, batch: 3 }), RangeError);
    assert.throws(() => nativeGemm({ ...g, lda: 4 }), RangeError);
    assert.throws(() => nativeGemm({ ...g, cOff: 1 }), RangeError);
    assert.throws(() => nativeGemm({ ...g, m: -1 }), TypeError);
    assert.throws(() => nativeGemm({ ...g, a: new Float64Array(64) as unknown as Float32Array }), TypeError);
  });
});

const bits = (f: number) => { const b = new Uint32Array(new Float32Array([f]).buffer); return b[0]; };
const fromBits = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0];

describe("bf16", { skip }, () => {
  it("rounds to nearest even on hand-picked bit patterns", () => {
    // [fp32 bits, bf16 bits]: the low 16 bits decide; 0x8000 exactly is a tie, broken toward even.
    const cases: [number, number][] = [
      [0x3f800000, 0x3f80], // 1.0 exact
      [0x3f808000, 0x3f80], // 1 + 2^-8: tie between 0x3f80 (even) and 0x3f81 -> 0x3f80
      [0x3f818000, 0x3f82], // tie between 0x3f81 and 0x3f82 (even) -> up
      [0x3f808001, 0x3f81], // just above the tie -> up
      [0x3f807fff, 0x3f80], // just below the tie -> down
      [0xbf818000, 0xbf82], // negative tie: same rule on the magnitude
      [0x7f7fffff, 0x7f80], // largest float rounds up to +inf
      [0x00008000, 0x0000], // subnormal tie -> even (zero)
      [0x00018000, 0x0002], // subnormal tie -> even (up)
      [0x80000000, 0x8000], // -0 stays -0
      [0x7f800000, 0x7f80], // +inf
      [0xff800000, 0xff80], // -inf
      [0x7fc00000, 0x7fc0], // quiet NaN
      [0x7f800001, 0x7fc0], // signalling NaN with payload only in the low bits: must not become inf
      [0xff80ffff, 0xffc0], // negative NaN keeps its sign
    ];
    const src = new Float32Array(new Uint32Array(cases.map((c) => c[0])).buffer);
    const dst = new Uint16Array(cases.length);
    toBf16(src, dst);
    cases.forEach(([f, h], i) => assert.equal(dst[i], h, `0x${f.toString(16)} -> 0x${dst[i].toString(16)}, want 0x${h.toString(16)}`));
    const back = new Float32Array(cases.length);
    fromBf16(dst, back);
    cases.forEach(([, h], i) => {
      if (Number.isNaN(fromBits(h << 16))) assert.ok(Number.isNaN(back[i]));
      else assert.equal(bits(back[i]), (h << 16) >>> 0);
    });
    // long vectors (the vectorised path; past 65536 elements split among the threads) agree with the scalar rule
    for (const n of [1001, 200_003]) {
      const x = rand(n), y = new Uint16Array(n), z = new Float32Array(n);
      toBf16(x, y);
      fromBf16(y, z);
      for (let i = 0; i < x.length; i++) {
        const u = bits(x[i]);
        assert.equal(y[i], ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff);
        assert.equal(bits(z[i]), (y[i] << 16) >>> 0);
      }
    }
  });
  for (const mode of ["auto", "pairs"] as const)
    it(`gemm (${mode}) is exact on bf16 inputs and within 1e-2 of fp32`, (t) => {
      if (mode === "pairs" && native!.isa() === "scalar") return t.skip("no AVX2");
      // 40 x 72 x 1104: a long k and a small C, split in k (gemm_ksplit_impl.h)
      for (const [m, n, k] of [[7, 17, 33], [129, 33, 257], [33, 65, 1], [64, 96, 513], [257, 129, 7], [70, 80, 512], [40, 72, 1104]] as const)
        for (const [tA, tB] of combos)
          for (const batch of [1, 3]) {
            // pad 2 with even k keeps the row strides even: the SIMD pair packing; odd strides take the scalar one
            const g = make(batch, m, n, k, tA, tB, k % 2 === 0 ? 2 : 1, 2, 1.25, 0.5);
            const a16 = new Uint16Array(g.a.length), b16 = new Uint16Array(g.b.length);
            toBf16(g.a, a16); toBf16(g.b, b16);
            const ar = new Float32Array(a16.length), br = new Float32Array(b16.length);
            fromBf16(a16, ar); fromBf16(b16, br);
            const exact = reference(g, (i) => ar[i], (i) => br[i]);
            const fp32 = reference(g);
            nativeGemmBf16({ ...g, a: a16, b: b16 }, mode);
            const what = `bf16 ${mode} ${batch}x${m}x${n}x${k} tA=${tA} tB=${tB}`;
            check(g.c, exact, 1e-5 * Math.sqrt(k) + 1e-6, what + " (vs rounded inputs)");
            let num = 0, den = 0;
            for (let i = 0; i < g.c.length; i++) { num = Math.max(num, Math.abs(g.c[i] - fp32.out[i])); den = Math.max(den, Math.abs(fp32.out[i])); }
            assert.ok(num <= 1e-2 * den, `${what}: max err ${num} vs max |c| ${den}`);
          }
    });
  it("bf16: same bits with 1 and 2 threads on a long-k weight-gradient shape (split in k)", (t) => {
    if (native!.isa() === "scalar") return t.skip("no AVX2");
    const saved = getNativeThreads();
    try {
      for (const [tA, tB] of combos) {
        const g = make(1, 40, 72, 1104, tA, tB, 2, 2, 1, 0.5);
        const a16 = new Uint16Array(g.a.length), b16 = new Uint16Array(g.b.length);
        toBf16(g.a, a16); toBf16(g.b, b16);
        const c0 = Float32Array.from(g.c), out: Float32Array[] = [];
        for (const threads of [1, 2]) {
          setNativeThreads(threads);
          const c = Float32Array.from(c0);
          nativeGemmBf16({ ...g, a: a16, b: b16, c }, "pairs");
          out.push(c);
        }
        assert.deepEqual(new Uint32Array(out[0].buffer), new Uint32Array(out[1].buffer), `tA=${tA} tB=${tB}`);
      }
    } finally {
      setNativeThreads(saved);
    }
  });
});
