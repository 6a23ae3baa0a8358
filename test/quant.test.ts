// Inference weights (issue 19): per-output-channel symmetric int8 and bf16 storage, the gemmQuant
// kernel (native on every ISA level == js twin == float64 product of the dequantized weight), and a
// quantized stories260K (data/, llama2.c's real checkpoint) against its fp32 self.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as T from "../src/index.js";
import type { QuantGemmArgs, WeightFormat } from "../src/backend/backend.js";
import { dequantizeRows, gemmQuant as jsGemmQuant, quantizeRows } from "../src/backend/js/quant.js";
import { makeNativeBackend } from "../src/backend/native/index.js";
import { native } from "../src/backend/native/addon.js";
import { generate } from "../src/generate/generate.js";
import { loadLlama2c } from "../src/models/llama2c.js";
import { quantizeForInference } from "../src/models/quantize.js";
import { parseWeightFormat } from "../src/ops/quantize.js";
import { close, onEveryLevel, rand, reseed, sameBits, skip } from "./helpers/native.js";

const FORMATS: WeightFormat[] = ["int8", "bf16"];

describe("int8 / bf16 weight storage", () => {
  it("int8: scale = max|W_j| / 127, q in [-127, 127], round half to even, |W - scale q| <= scale / 2", () => {
    reseed(7);
    const rows = 9, cols = 70, w = rand(rows * cols, -2, 2);
    w.fill(0, 3 * cols, 4 * cols);  // an all-zero row
    w[5 * cols + 11] = -40;          // an outlier sets its row's scale
    const q = quantizeRows(w, rows, cols, "int8");
    const deq = dequantizeRows(q);
    for (let j = 0; j < rows; j++) {
      let amax = 0;
      for (let p = 0; p < cols; p++) amax = Math.max(amax, Math.abs(w[j * cols + p]));
      assert.equal(q.scales![j], Math.fround(amax / 127), `scale of row ${j}`);
      for (let p = 0; p < cols; p++) {
        const v = q.data[j * cols + p], i = j * cols + p;
        assert.ok(Number.isInteger(v) && v >= -127 && v <= 127);
        assert.ok(Math.abs(w[i] - deq[i]) <= q.scales![j] / 2 * (1 + 1e-6), `row ${j} col ${p}: ${w[i]} -> ${deq[i]}`);
      }
    }
    assert.equal(q.data[5 * cols + 11], -127);
    assert.ok(q.data.subarray(3 * cols, 4 * cols).every((v) => v === 0));
    // scale 1 exactly (max 127): 2.5 -> 2 and -3.5 -> -4 (ties to even), 126.5 -> 126
    const t = quantizeRows(Float32Array.of(127, 2.5, -3.5, 126.5, 0.5), 1, 5, "int8");
    assert.deepEqual([...t.data], [127, 2, -4, 126, 0]);
  });

  it("bf16: the existing round-to-nearest-even conversion (native toBf16), within 2^-8 relative (half an ulp of an 8-bit significand)", () => {
    reseed(8);
    const w = rand(3 * 50, -5, 5), q = quantizeRows(w, 3, 50, "bf16"), deq = dequantizeRows(q);
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(w[i] - deq[i]) <= Math.abs(w[i]) * 2 ** -8);
    if (native) {
      const bits = new Uint16Array(w.length);
      native.toBf16(w, bits);
      assert.deepEqual([...q.data], [...bits]);
    }
  });

  it("refuses non-finite weights and unknown formats, naming them", () => {
    assert.throws(() => quantizeRows(Float32Array.of(1, NaN), 1, 2, "int8"), /non-finite value \(NaN at row 0, column 1\)/);
    assert.throws(() => quantizeRows(Float32Array.of(1, 2), 1, 2, "int4" as WeightFormat), /unknown weight format "int4"; expected int8 or bf16/);
    assert.throws(() => parseWeightFormat("fp8", "--weights"), /--weights: unknown weight format "fp8"; expected one of fp32, bf16, int8/);
  });
});

/** float64 y = x W^T + bias with W dequantized (scale * q, or the bf16 value) in float64. */
function reference(g: QuantGemmArgs<Float32Array>): Float64Array {
  const { m, n, k } = g, y = new Float64Array(m * n);
  // bf16 bits are the top half of a float32 (Kalamkar et al. 2019)
  const wf = g.format === "int8" ? Float64Array.from(g.w, (q, i) => g.scales![Math.floor(i / k)] * q)
    : Float64Array.from(new Float32Array(Uint32Array.from(g.w, (b) => b << 16).buffer));
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = g.bias ? g.bias[(g.biasOff ?? 0) + j] : 0;
    for (let p = 0; p < k; p++) s += g.x[g.xOff + i * k + p] * wf[j * k + p];
    y[i * n + j] = s;
  }
  return y;
}

function problem(format: WeightFormat, m: number, n: number, k: number, bias: boolean, off: number): QuantGemmArgs<Float32Array> {
  const q = quantizeRows(rand(n * k, -1, 1), n, k, format);
  return { format, m, n, k, x: rand(off + m * k), xOff: off, w: q.data, scales: q.scales, y: rand(off + m * n), yOff: off, bias: bias ? rand(off + n) : null, biasOff: off };
}

// decoding GEMVs (m <= 8: every 4 / 2 / 1 row block, k below, at and past the vector widths), and
// prefill (m > 8: dequantized blocks of W rows + the fp32 GEMM; k = 2000: 5 blocks of 64 rows for n = 300)
const SHAPES: [number, number, number][] = [[1, 1, 1], [1, 37, 100], [1, 64, 384], [2, 13, 17], [3, 70, 33], [5, 9, 64], [8, 129, 40], [9, 50, 77], [12, 300, 2000]];

describe("gemmQuant: native == js twin == float64 product of the dequantized weight", { skip }, () => {
  const nb = makeNativeBackend({ tinyToJs: false })!;
  // the problems, their float64 references and the js twin's results, shared by every ISA level
  let cases: { g: QuantGemmArgs<Float32Array>; want: Float64Array; what: string }[] | null = null;
  const allCases = () => cases ??= (() => {
    reseed(11);
    return FORMATS.flatMap((format) => SHAPES.flatMap(([m, n, k]) => ([[false, 0], [true, 3]] as const).map(([bias, off]) => {
      const g = problem(format, m, n, k, bias, off), want = reference(g), what = `${format} m=${m} n=${n} k=${k}${bias ? " bias" : ""}`;
      const js = new Float32Array(g.y.length);
      jsGemmQuant({ ...g, y: js });
      close(`${what} js`, js.subarray(off), want, 1e-5);
      return { g, want, what };
    })));
  })();
  onEveryLevel("int8 and bf16, with and without bias and offsets", () => {
    for (const { g, want, what } of allCases()) {
      const y = new Float32Array(g.y.length);
      nb.gemmQuant({ ...g, y });
      close(`${what} native`, y.subarray(g.yOff), want, 1e-5);
    }
  });

  it("the result does not depend on the thread count", () => {
    const threads = T.getNativeThreads();
    try {
      for (const format of FORMATS) for (const m of [1, 4, 20]) {
        const g = problem(format, m, 300, 384, true, 0), one = new Float32Array(g.y.length);
        T.setNativeThreads(1); nb.gemmQuant({ ...g, y: one });
        T.setNativeThreads(2); nb.gemmQuant(g);
        sameBits(`${format} m=${m}`, g.y, one);
      }
    } finally { T.setNativeThreads(threads); }
  });

  it("bad arguments: one clear error", () => {
    const g = problem("int8", 2, 5, 8, false, 0);
    assert.throws(() => nb.gemmQuant({ ...g, w: g.w.subarray(0, 39) }), /gemmQuant: w is too short/);
    assert.throws(() => nb.gemmQuant({ ...g, format: "bf16" }), /gemmQuant: w must be a Uint16Array/);
    assert.throws(() => nb.gemmQuant({ ...g, scales: g.scales!.subarray(0, 4) }), /gemmQuant: scales is too short/);
    assert.throws(() => jsGemmQuant({ ...g, format: "bf16" }), /gemmQuant: format "bf16" needs w a Uint16Array/);
    assert.throws(() => jsGemmQuant({ ...g, w: g.w.subarray(0, 39) }), /gemmQuant: w is too short/);
  });
});

const data = (f: string) => new URL(`../data/${f}`, import.meta.url).pathname;
// greedy from BOS: data/SOURCES.md (llama2.c's doc/stories260K.md, and llama2.c's run.c)
const REFERENCE_IDS = ("403 407 261 378 432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 " +
  "295 433 426 385 328 432 358 394 261 370 432 352").split(" ").map(Number);

describe("a quantized stories260K", () => {
  const ids = T.tensor(Int32Array.from([1, ...REFERENCE_IDS.slice(0, 17)]), { shape: [1, 18] });
  const logitsOf = (m: T.CausalLM) => T.noGrad(() => m.forward(ids).logits.toTypedArray() as Float32Array);
  const relErr = (a: Float32Array, b: Float32Array) => {
    let d = 0, s = 0;
    for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; s += b[i] ** 2; }
    return Math.sqrt(d / s);
  };

  it("logits stay close to fp32 (head fp32 by default, or quantized: the tied embedding lookup stays fp32); fp32 restores them exactly", async () => {
    const model = await loadLlama2c(data("stories260K.bin"));
    const ref = logitsOf(model), emb = model.tokEmb.weight.toTypedArray();
    for (const [format, bound] of [["bf16", 0.01], ["int8", 0.03]] as const) for (const head of [false, true]) {
      const s = quantizeForInference(model, format, { head });
      assert.equal(s.weights.length, 5 * 7 + (head ? 1 : 0));
      const err = relErr(logitsOf(model), ref);
      assert.ok(err > 0 && err < bound, `${format} head=${head}: relative RMS error ${err}`);
      assert.deepEqual(model.tokEmb.weight.toTypedArray(), emb);
    }
    quantizeForInference(model, "fp32");
    assert.deepEqual(logitsOf(model), ref);
  });

  it("greedy decoding in int8 and bf16 gives llama2.c's reference ids; recomputation (prefill path) agrees; training throws one clear error", async () => {
    const model = await loadLlama2c(data("stories260K.bin"));
    for (const format of ["int8", "bf16"] as const) {
      quantizeForInference(model, format);
      assert.deepEqual(generate(model, [1], { maxNewTokens: 40, temperature: 0 }).ids, REFERENCE_IDS, format);
      const cached = generate(model, [1, 403, 407, 261], { maxNewTokens: 16, temperature: 0 }).ids;
      assert.deepEqual(generate(model, [1, 403, 407, 261], { maxNewTokens: 16, temperature: 0, noCache: true }).ids, cached, format);
    }
    model.train();
    assert.throws(() => model.forward(ids), /stored as bf16 for inference .* which has no gradient: train the fp32 model/);
  });
});

describe("quantizeForInference on an MoE model", () => {
  it("stores the attention and router weights, leaves the experts (their grouped / fused kernels read fp32), and the model still runs", async () => {
    const { TransformerLM } = await import("../src/models/transformer.js");
    const { llamaConfig } = await import("../src/models/config.js");
    const m = new TransformerLM(llamaConfig({ vocabSize: 32, dModel: 16, nLayers: 1, nHeads: 2, dFF: 16, maxSeqLen: 8, moe: { experts: 4, topK: 2 } }), { generator: new T.RandomGenerator(3) });
    const s = quantizeForInference(m, "int8");
    assert.ok(s.weights.some((n) => n.includes("router")), s.weights.join(" "));
    assert.ok(s.weights.some((n) => n.includes("attn")), s.weights.join(" "));
    assert.ok(!s.weights.some((n) => n.includes("experts")), s.weights.join(" "));
    const logits = T.noGrad(() => m.forward(T.tensor(Int32Array.from([1, 2, 3]), { shape: [1, 3] })).logits);
    assert.deepEqual(logits.shape, [1, 3, 32]);
  });
});
