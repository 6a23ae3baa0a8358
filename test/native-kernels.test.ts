// Every native non-GEMM kernel against the js reference kernel run in float64 on the same (float32)
// inputs: awkward sizes (1, 7, 33, 1000, 70000; rows x cols like 3 x 1001), broadcast and transposed
// strides, sizes above the threading threshold, every ISA level this CPU has. Tolerance (scale-aware
// like test/helpers/golden.ts): 1e-6 relative for elementwise kernels, 1e-5 for reductions.
// Determinism: the same call twice, and with 1 vs 2 threads, gives identical bits.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { Backend, BinaryOp, FloatArray, UnaryOp, UnaryParams } from "../src/backend/backend.js";
import { jsBackend } from "../src/backend/js/index.js";
import { getNativeThreads, native, setNativeThreads } from "../src/backend/native/addon.js";
import { close, f64, onEveryLevel, rand, reseed, rnd, sameBits, skip } from "./helpers/native.js";
import { makeNativeBackend } from "../src/backend/native/index.js";
import { nativeGemm } from "../src/backend/native/gemm.js";
import type { GemmArgs } from "../src/backend/backend.js";

const nb = makeNativeBackend({ tinyToJs: false }) as Backend;  // every float32 call native, even tiny ones
const js = jsBackend;

const EW = 1e-6, RED = 1e-5;
const SIZES = [1, 7, 33, 1000, 70000];

const UNARY: [UnaryOp, UnaryParams, number, number][] = [
  ["neg", {}, -3, 3], ["exp", {}, -20, 20], ["log", {}, 0.01, 50], ["sqrt", {}, 0, 9], ["rsqrt", {}, 0.01, 9],
  ["abs", {}, -3, 3], ["tanh", {}, -10, 10], ["sigmoid", {}, -30, 30], ["relu", {}, -3, 3],
  ["gelu_tanh", {}, -8, 8], ["gelu_erf", {}, -8, 8], ["silu", {}, -30, 30], ["softplus", { a: 1.5, b: 5 }, -10, 10],
  ["elu", { a: 0.7 }, -5, 5], ["clamp", { a: -0.5, b: 0.8 }, -2, 2], ["powScalar", { a: 2.5 }, 0.01, 4],
  ["powScalar", { a: 3 }, -3, 3], ["square", {}, -3, 3],
];
const BINARY: BinaryOp[] = ["add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "gt", "lt"];

// Runs fn with 1 and with 2 threads (and twice with 2): outputs must have identical bits.
function deterministic(what: string, fn: () => Float32Array[]): void {
  const saved = getNativeThreads();
  try {
    setNativeThreads(2);
    const a = fn(), b = fn();
    setNativeThreads(1);
    const c = fn();
    a.forEach((x, i) => { sameBits(`${what} out${i} (repeat)`, x, b[i]); sameBits(`${what} out${i} (1 vs 2 threads)`, x, c[i]); });
  } finally { setNativeThreads(saved); }
}

describe("native kernels vs js reference", { skip }, () => {
  onEveryLevel("unary and unaryBackward, every op", () => {
    for (const [op, p, lo, hi] of UNARY)
      for (const n of SIZES) {
        const x = rand(n, lo, hi), gy = rand(n);
        if (n > 10) { x[0] = 0; x[1] = lo; x[2] = hi; }
        const yRef = new Float64Array(n), y = new Float32Array(n);
        js.unary(op, f64(x), yRef, n, p);
        nb.unary(op, x, y, n, p);
        close(`${op} n=${n}`, y, yRef, EW);
        const yf = Float32Array.from(yRef);
        const gRef = new Float64Array(n), g = new Float32Array(n);
        js.unaryBackward(op, f64(x), f64(yf), f64(gy), gRef, n, p);
        nb.unaryBackward(op, x, yf, gy, g, n, p);
        close(`${op}' n=${n}`, g, gRef, EW);
      }
  });

  // native/kernels/exp_impl.h builds subnormal results without a subnormal-producing multiply: they must
  // still be there (not flushed to 0) and as accurate as the normal ones, up to the 2^-149 grid.
  onEveryLevel("exp keeps subnormal results, and its range edges", () => {
    const tiny = 2 ** -149;
    const xs: number[] = [];
    for (let x = -104; x <= -86; x += 1 / 64) xs.push(x);
    xs.push(-Infinity, Infinity, NaN, -103.5, -103.45, 88.7, 88.72, 88.73, 0);
    const x = Float32Array.from(xs), y = new Float32Array(x.length);
    nb.unary("exp", x, y, x.length, {});
    for (let i = 0; i < x.length; i++) {
      const want = Math.exp(x[i]);
      if (Number.isNaN(want)) { assert.ok(Number.isNaN(y[i]), `exp(NaN) = ${y[i]}`); continue; }
      if (!Number.isFinite(Math.fround(want))) { assert.equal(y[i], Math.fround(want), `exp(${x[i]})`); continue; }
      const err = Math.abs(y[i] - want);
      if (!(err <= 2e-7 * want + tiny)) assert.fail(`exp(${x[i]}) = ${y[i]}, want ${want} (error ${err})`);
      if (want >= 1.5 * tiny) assert.ok(y[i] > 0, `exp(${x[i]}) flushed to 0`);
    }
  });

  onEveryLevel("binary: contiguous, scalar, row / column broadcast, transposed, offsets", () => {
    const cases: { shape: number[]; as: number[]; bs: number[]; aLen: number; bLen: number; aOff?: number; bOff?: number }[] = [
      { shape: [1], as: [1], bs: [1], aLen: 1, bLen: 1 },
      { shape: [1001], as: [1], bs: [1], aLen: 1001, bLen: 1001 },
      { shape: [70000], as: [1], bs: [0], aLen: 70000, bLen: 1 },
      { shape: [70000], as: [0], bs: [1], aLen: 1, bLen: 70000 },
      { shape: [3, 1001], as: [1001, 1], bs: [0, 1], aLen: 3003, bLen: 1001 },
      { shape: [300, 1000], as: [1000, 1], bs: [0, 1], aLen: 300000, bLen: 1000 },
      { shape: [33, 7], as: [7, 1], bs: [1, 0], aLen: 231, bLen: 33 },
      { shape: [7, 33], as: [1, 7], bs: [33, 1], aLen: 231, bLen: 231, aOff: 0 },
      { shape: [2, 3, 5, 7], as: [105, 1, 21, 3], bs: [0, 5, 1, 0], aLen: 210 + 4, bLen: 15 + 2, aOff: 4, bOff: 2 },
      { shape: [400, 300], as: [1, 400], bs: [300, 1], aLen: 120000, bLen: 120000 },
      { shape: [], as: [], bs: [], aLen: 3, bLen: 2, aOff: 2, bOff: 1 },
    ];
    for (const op of BINARY)
      for (const c of cases) {
        const pos = op === "pow";
        const a = rand(c.aLen, pos ? 0.1 : -3, 3), b = rand(c.bLen, pos ? -2 : -3, 3);
        if (op === "eq") for (let i = 0; i < Math.min(c.aLen, c.bLen); i += 3) b[i] = a[i];
        const n = c.shape.reduce((s, d) => s * d, 1);
        const ref = new Float64Array(n), out = new Float32Array(n);
        js.binary(op, f64(a), c.aOff ?? 0, c.as, f64(b), c.bOff ?? 0, c.bs, ref, c.shape);
        nb.binary(op, a, c.aOff ?? 0, c.as, b, c.bOff ?? 0, c.bs, out, c.shape);
        close(`${op} [${c.shape}]`, out, ref, EW);
      }
  });

  onEveryLevel("where, stridedCopy (transposed source and destination)", () => {
    for (const n of SIZES) {
      const c = rand(n).map((v) => (v > 0 ? 1 : 0)), a = rand(n), b = rand(n);
      const ref = new Float64Array(n), out = new Float32Array(n);
      js.where(f64(c), f64(a), f64(b), ref, n);
      nb.where(c, a, b, out, n);
      close(`where n=${n}`, out, ref, 0);
    }
    for (const [r, cc] of [[1, 1], [3, 1001], [33, 70], [400, 300]]) {
      const src = rand(r * cc + 5);
      const refT = new Float64Array(r * cc), outT = new Float32Array(r * cc);
      js.stridedCopy(f64(src), 5, [1, cc], refT, 0, [r, 1], [cc, r]);  // transpose of [r, cc] at offset 5
      nb.stridedCopy(src, 5, [1, cc], outT, 0, [r, 1], [cc, r]);
      close(`stridedCopy transpose ${r}x${cc}`, outT, refT, 0);
      const refD = new Float64Array(r * cc + 3), outD = new Float32Array(r * cc + 3);
      js.stridedCopy(f64(src), 0, [cc, 1], refD, 3, [1, r], [r, cc]);  // strided destination
      nb.stridedCopy(src, 0, [cc, 1], outD, 3, [1, r], [r, cc]);
      close(`stridedCopy strided dst ${r}x${cc}`, outD, refD, 0);
    }
  });

  onEveryLevel("reduce (sum/max/min, NaN-propagating) and cumsum", () => {
    const shapes = [[1, 1, 1], [1, 7, 1], [3, 1001, 1], [1, 70000, 1], [7, 33, 5], [2, 1000, 70], [4, 300, 256], [1, 2048, 600], [1000, 33, 1], [5, 1, 9]];
    for (const [o, d, i] of shapes) {
      const x = rand(o * d * i);
      for (const op of ["sum", "max", "min"] as const) {
        const ref = new Float64Array(o * i), out = new Float32Array(o * i);
        js.reduce(op, f64(x), o, d, i, ref);
        nb.reduce(op, x, o, d, i, out);
        close(`reduce ${op} [${o},${d},${i}]`, out, ref, op === "sum" ? RED : 0);
      }
      for (const rev of [false, true]) {
        const ref = new Float64Array(o * d * i), out = new Float32Array(o * d * i);
        js.cumsum(f64(x), o, d, i, ref, rev);
        nb.cumsum(x, o, d, i, out, rev);
        close(`cumsum rev=${rev} [${o},${d},${i}]`, out, ref, RED);
      }
    }
    for (const [o, d, i] of [[2, 33, 1], [2, 33, 3]]) {
      const x = rand(o * d * i);
      x[5] = NaN;
      for (const op of ["max", "min"] as const) {
        const ref = new Float64Array(o * i), out = new Float32Array(o * i);
        js.reduce(op, f64(x), o, d, i, ref);
        nb.reduce(op, x, o, d, i, out);
        close(`reduce ${op} with NaN [${o},${d},${i}]`, out, ref, 0);
      }
    }
  });

  onEveryLevel("softmax / log-softmax and backward", () => {
    for (const [r, c] of [[1, 1], [1, 7], [3, 1001], [1000, 33], [300, 1000], [2, 70000]])
      for (const log of [false, true]) {
        const x = rand(r * c, -10, 10), gy = rand(r * c);
        const ref = new Float64Array(r * c), y = new Float32Array(r * c);
        js.softmax(f64(x), ref, r, c, log);
        nb.softmax(x, y, r, c, log);
        close(`softmax log=${log} ${r}x${c}`, y, ref, RED);
        const yf = Float32Array.from(ref);
        const gRef = new Float64Array(r * c), g = new Float32Array(r * c);
        js.softmaxBackward(f64(yf), f64(gy), gRef, r, c, log);
        nb.softmaxBackward(yf, gy, g, r, c, log);
        close(`softmax' log=${log} ${r}x${c}`, g, gRef, RED);
      }
  });

  onEveryLevel("cross-entropy (ignoreIndex, label smoothing) and backward", () => {
    for (const [r, c] of [[1, 1], [1, 7], [3, 1001], [1000, 33], [300, 1000]])
      for (const sm of [0, 0.1]) {
        const x = rand(r * c, -8, 8), gl = rand(r);
        const t = Int32Array.from({ length: r }, (_, i) => (i % 5 === 3 ? -100 : Math.floor(rnd() * c)));
        const lossR = new Float64Array(r), lseR = new Float64Array(r), loss = new Float32Array(r), lse = new Float32Array(r);
        js.crossEntropy(f64(x), t, r, c, -100, sm, lossR, lseR);
        nb.crossEntropy(x, t, r, c, -100, sm, loss, lse);
        close(`ce loss ${r}x${c} sm=${sm}`, loss, lossR, RED, 1e-3);  // 1 column: the loss is 0 up to rounding
        close(`ce lse ${r}x${c} sm=${sm}`, lse, lseR, RED);
        const lsef = Float32Array.from(lseR);
        const gR = new Float64Array(r * c), g = new Float32Array(r * c);
        js.crossEntropyBackward(f64(x), t, f64(lsef), f64(gl), r, c, -100, sm, gR);
        nb.crossEntropyBackward(x, t, lsef, gl, r, c, -100, sm, g);
        close(`ce grad ${r}x${c} sm=${sm}`, g, gR, RED, 1e-3);
      }
  });

  onEveryLevel("layerNorm / rmsNorm forward and backward (weight and bias nullable)", () => {
    for (const [r, c] of [[1, 1], [1, 7], [3, 1001], [700, 128], [1000, 33], [40, 2000]])
      for (const [hasW, hasB] of [[true, true], [true, false], [false, true], [false, false]]) {
        const x = rand(r * c, -2, 4), gy = rand(r * c), w = hasW ? rand(c, 0.5, 1.5) : null, b = hasB ? rand(c) : null;
        const yR = new Float64Array(r * c), mR = new Float64Array(r), sR = new Float64Array(r);
        const y = new Float32Array(r * c), m = new Float32Array(r), s = new Float32Array(r);
        js.layerNorm(f64(x), w && f64(w), b && f64(b), r, c, 1e-5, yR, mR, sR);
        nb.layerNorm(x, w, b, r, c, 1e-5, y, m, s);
        close(`ln y ${r}x${c}`, y, yR, RED);
        close(`ln mean ${r}x${c}`, m, mR, RED);
        close(`ln rstd ${r}x${c}`, s, sR, RED);
        const mf = Float32Array.from(mR), sf = Float32Array.from(sR);
        const gxR = new Float64Array(r * c), gwR = hasW ? new Float64Array(c) : null, gbR = hasB ? new Float64Array(c) : null;
        const gx = new Float32Array(r * c), gw = hasW ? new Float32Array(c) : null, gb = hasB ? new Float32Array(c) : null;
        js.layerNormBackward(f64(x), w && f64(w), f64(mf), f64(sf), f64(gy), r, c, gxR, gwR, gbR);
        nb.layerNormBackward(x, w, mf, sf, gy, r, c, gx, gw, gb);
        close(`ln gx ${r}x${c}`, gx, gxR, RED);
        if (gw) close(`ln gw ${r}x${c}`, gw, gwR!, RED);
        if (gb) close(`ln gb ${r}x${c}`, gb, gbR!, RED);
        if (hasB) continue;
        const yR2 = new Float64Array(r * c), sR2 = new Float64Array(r), y2 = new Float32Array(r * c), s2 = new Float32Array(r);
        js.rmsNorm(f64(x), w && f64(w), r, c, 1e-6, yR2, sR2);
        nb.rmsNorm(x, w, r, c, 1e-6, y2, s2);
        close(`rms y ${r}x${c}`, y2, yR2, RED);
        close(`rms rstd ${r}x${c}`, s2, sR2, RED);
        const sf2 = Float32Array.from(sR2);
        const gxR2 = new Float64Array(r * c), gwR2 = hasW ? new Float64Array(c) : null, gx2 = new Float32Array(r * c), gw2 = hasW ? new Float32Array(c) : null;
        js.rmsNormBackward(f64(x), w && f64(w), f64(sf2), f64(gy), r, c, gxR2, gwR2);
        nb.rmsNormBackward(x, w, sf2, gy, r, c, gx2, gw2);
        close(`rms gx ${r}x${c}`, gx2, gxR2, RED);
        if (gw2) close(`rms gw ${r}x${c}`, gw2, gwR2!, RED);
      }
  });

  onEveryLevel("indexSelect / indexAdd (repeated indices), adamw", () => {
    for (const [outer, dimIn, inner, nIdx] of [[1, 1, 1, 1], [1, 512, 128, 2048], [3, 7, 33, 10], [2, 50, 1000, 70], [5, 9, 1, 20]]) {
      const x = rand(outer * dimIn * inner), g = rand(outer * nIdx * inner);
      const idx = Int32Array.from({ length: nIdx }, () => Math.floor(rnd() * dimIn));
      const ref = new Float64Array(outer * nIdx * inner), out = new Float32Array(outer * nIdx * inner);
      js.indexSelect(f64(x), outer, dimIn, inner, idx, nIdx, ref);
      nb.indexSelect(x, outer, dimIn, inner, idx, nIdx, out);
      close(`indexSelect`, out, ref, 0);
      const gx0 = rand(outer * dimIn * inner);
      const gR = f64(gx0), gN = Float32Array.from(gx0), gJ = Float32Array.from(gx0);
      js.indexAdd(f64(g), outer, dimIn, inner, idx, nIdx, gR);
      nb.indexAdd(g, outer, dimIn, inner, idx, nIdx, gN);
      close(`indexAdd`, gN, gR, RED);
      js.indexAdd(g, outer, dimIn, inner, idx, nIdx, gJ);  // same float32 order as js: identical bits
      sameBits("indexAdd vs js float32", gN, gJ);
    }
    for (const n of SIZES) {
      const p = rand(n), gr = rand(n), m = rand(n, -0.1, 0.1), v = rand(n, 0, 0.01);
      const [pR, mR, vR] = [f64(p), f64(m), f64(v)];
      const args = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, bc1: 1 - 0.9 ** 3, bc2: 1 - 0.999 ** 3 };
      js.adamw({ param: pR, grad: f64(gr), m: mR, v: vR, ...args }, n);
      nb.adamw({ param: p, grad: gr, m, v, ...args }, n);
      close(`adamw param n=${n}`, p, pR, EW);
      close(`adamw m n=${n}`, m, mR, EW);
      close(`adamw v n=${n}`, v, vR, EW);
    }
  });

  it("errors: out-of-range targets and indices throw the js RangeError; bad arguments throw", () => {
    const x = rand(12), loss = new Float32Array(3), lse = new Float32Array(3);
    const t = Int32Array.from([1, 4, 0]);
    const msg = (fn: () => void) => { try { fn(); } catch (e) { return `${(e as Error).name}: ${(e as Error).message}`; } return "no error"; };
    const jsMsg = msg(() => js.crossEntropy(f64(x), t, 3, 4, -100, 0, new Float64Array(3), new Float64Array(3)));
    assert.match(jsMsg, /^RangeError: cross_entropy: target 4 at row 1/);
    assert.equal(msg(() => nb.crossEntropy(x, t, 3, 4, -100, 0, loss, lse)), jsMsg);
    const idx = Int32Array.from([0, 2, -1]);
    const jsIdx = msg(() => js.indexSelect(f64(x), 1, 3, 4, idx, 3, new Float64Array(12)));
    assert.match(jsIdx, /^RangeError: index -1 at position 2/);
    assert.equal(msg(() => nb.indexSelect(x, 1, 3, 4, idx, 3, new Float32Array(12))), jsIdx);
    assert.equal(msg(() => nb.indexAdd(x, 1, 3, 4, idx, 3, new Float32Array(12))), jsIdx);
    assert.throws(() => native!.unary(1, x, new Float32Array(5), 12, 0, 0), RangeError);
    assert.throws(() => native!.binary(0, x, 0, x, 0, new Float32Array(12), 1, Float64Array.from([12, 2, 1])), RangeError);
    assert.throws(() => native!.softmax(x, new Float64Array(12) as unknown as Float32Array, 3, 4, false), TypeError);
  });

  onEveryLevel("gemm small-m / small-n path (no packing): all transposes, padding, alpha/beta, batch", () => {
    const shapes: [number, number, number, number][] = [  // batch, m, n, k
      [1, 1, 1536, 384], [1, 1, 7, 33], [1, 2, 1001, 17], [1, 3, 70, 1000], [1, 8, 1536, 384], [1, 5, 33, 1],
      [1, 1000, 1, 33], [1, 2000, 3, 128], [1, 700, 8, 7], [4, 1, 128, 32], [3, 7, 40, 50], [2, 1, 1, 1],
    ];
    for (const [batch, m, n, k] of shapes)
      for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]] as const)
        for (const [pad, alpha, beta] of [[0, 1, 0], [3, -0.75, 0.5]]) {
          const lda = (tA ? m : k) + pad, ldb = (tB ? k : n) + pad, ldc = n + pad;
          const sA = (tA ? k : m) * lda + pad, sB = (tB ? n : k) * ldb + pad, sC = m * ldc + pad;
          const g: GemmArgs<Float32Array> = {
            batch, m, n, k, alpha, beta, a: rand(2 + batch * sA, -1, 1), aOff: 2, lda, strideA: sA, transA: tA,
            b: rand(1 + batch * sB, -1, 1), bOff: 1, ldb, strideB: sB, transB: tB, c: rand(3 + batch * sC, -1, 1), cOff: 3, ldc, strideC: sC,
          };
          const c0 = Float32Array.from(g.c);
          nativeGemm(g);
          for (let t = 0; t < batch; t++)
            for (let i = 0; i < m; i++)
              for (let j = 0; j < n; j++) {
                let acc = 0, mag = 0;
                for (let p = 0; p < k; p++) {
                  const av = g.a[2 + t * sA + (tA ? p * lda + i : i * lda + p)], bv = g.b[1 + t * sB + (tB ? j * ldb + p : p * ldb + j)];
                  acc += av * bv; mag += Math.abs(av * bv);
                }
                const ci = 3 + t * sC + i * ldc + j, want = alpha * acc + beta * c0[ci];
                const bound = 2e-6 * Math.sqrt(k + 1) * (Math.abs(alpha) * mag + Math.abs(beta * c0[ci])) + 1e-30;
                if (!(Math.abs(g.c[ci] - want) <= bound)) assert.fail(`gemm b${batch} ${m}x${n}x${k} tA=${tA} tB=${tB} pad=${pad}: c[${ci}] = ${g.c[ci]}, want ${want}`);
              }
          for (let ci = 0; ci < 3; ci++) assert.equal(g.c[ci], c0[ci], "gemm wrote before cOff");
        }
  });

  it("determinism: identical bits on repeat and with 1 vs 2 threads (threaded sizes)", () => {
    const r = 2048, c = 128, n = r * c;
    const x = rand(n), gy = rand(n), w = rand(c, 0.5, 1.5), b = rand(c);
    deterministic("gelu_tanh", () => { const y = new Float32Array(n), g = new Float32Array(n); nb.unary("gelu_tanh", x, y, n, {}); nb.unaryBackward("gelu_tanh", x, y, gy, g, n, {}); return [y, g]; });
    deterministic("add broadcast", () => { const o = new Float32Array(n); nb.binary("add", x, 0, [c, 1], b, 0, [0, 1], o, [r, c]); return [o]; });
    deterministic("layerNorm", () => {
      const y = new Float32Array(n), m = new Float32Array(r), s = new Float32Array(r), gx = new Float32Array(n), gw = new Float32Array(c), gb = new Float32Array(c);
      nb.layerNorm(x, w, b, r, c, 1e-5, y, m, s);
      nb.layerNormBackward(x, w, m, s, gy, r, c, gx, gw, gb);
      return [y, m, s, gx, gw, gb];
    });
    deterministic("rmsNorm", () => {
      const y = new Float32Array(n), s = new Float32Array(r), gx = new Float32Array(n), gw = new Float32Array(c);
      nb.rmsNorm(x, w, r, c, 1e-5, y, s);
      nb.rmsNormBackward(x, w, s, gy, r, c, gx, gw);
      return [y, s, gx, gw];
    });
    deterministic("reduce", () => {
      const a = new Float32Array(1), bb = new Float32Array(c), cc = new Float32Array(r);
      nb.reduce("sum", x, 1, n, 1, a); nb.reduce("sum", x, 1, r, c, bb); nb.reduce("sum", x, r, c, 1, cc);
      return [a, bb, cc];
    });
    deterministic("softmax + cross-entropy", () => {
      const y = new Float32Array(n), g = new Float32Array(n), loss = new Float32Array(r), lse = new Float32Array(r), gl = new Float32Array(n);
      const t = Int32Array.from({ length: r }, (_, i) => (i * 7) % c);
      nb.softmax(x, y, r, c, false); nb.softmaxBackward(y, gy, g, r, c, false);
      nb.crossEntropy(x, t, r, c, -100, 0.1, loss, lse); nb.crossEntropyBackward(x, t, lse, gy, r, c, -100, 0.1, gl);
      return [y, g, loss, lse, gl];
    });
    for (const [m, n, k, tB] of [[1, 1536, 384, true], [4, 1536, 384, false], [2048, 3, 128, false]] as const)
      deterministic(`gemm ${m}x${n}x${k}`, () => {
        const a = rand(m * k), bb = rand(n * k), cc = new Float32Array(m * n);
        reseed(777);  // same inputs on every call
        a.set(rand(m * k)); bb.set(rand(n * k));
        nativeGemm({ batch: 1, m, n, k, a, aOff: 0, lda: k, strideA: 0, transA: false, b: bb, bOff: 0, ldb: tB ? k : n, strideB: 0, transB: tB,
          c: cc, cOff: 0, ldc: n, strideC: 0, alpha: 1, beta: 0 });
        return [cc];
      });
    deterministic("indexAdd + adamw", () => {
      const idx = Int32Array.from({ length: r }, (_, i) => (i * 13) % 512), gx = new Float32Array(512 * c);
      nb.indexAdd(x, 1, 512, c, idx, r, gx);
      const p = Float32Array.from(x), m = new Float32Array(n), v = new Float32Array(n);
      nb.adamw({ param: p, grad: gy, m, v, lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, bc1: 0.1, bc2: 0.001 }, n);
      return [gx, p, m, v];
    });
  });
});
