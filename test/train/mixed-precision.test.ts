// Mixed precision: autocast's products against float64 products of operands rounded by the IEEE
// definitions (backend/js/half.ts, itself tested in half.test.ts), fp16 gradient underflow and
// dynamic loss scaling with GradScaler's semantics, a skipped step on an injected inf, exact resume
// with the scale, and the bad-input errors.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import * as T from "../../src/index.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../src/backend/js/half.js";
import { autocast } from "../../src/ops/autocast.js";
import { GradScaler } from "../../src/train/grad-scaler.js";
import { train, type TrainOptions } from "../../src/train/trainer.js";
import { gpt2Config } from "../../src/models/config.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { TokenDataset } from "../../src/data/batches.js";
import { RandomGenerator } from "../../src/tensor/rng.js";
import { forEachBackend } from "../helpers/backends.js";

const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(path.join(tmpdir(), "tsf-amp-")); dirs.push(d); return d; };
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const round = { bf16: (x: Float32Array) => bf16ToF32(f32ToBf16(x)), fp16: (x: Float32Array) => f16ToF32(f32ToF16(x)) };

function randn(n: number, seed: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  new RandomGenerator(seed).normal(a);
  return a.map((v) => v * scale);
}

/** float64 C = A B^T over [m, k] x [n, k]. */
function mmT(a: Float32Array, b: Float32Array, m: number, n: number, k: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { let s = 0; for (let p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p]; c[i * n + j] = s; }
  return c;
}

function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  let worst = 0, scale = 0;
  for (let i = 0; i < want.length; i++) { worst = Math.max(worst, Math.abs(got[i] - want[i])); scale = Math.max(scale, Math.abs(want[i])); }
  assert.ok(worst <= tol * Math.max(scale, 1e-30), `${what}: max error ${worst} vs max |want| ${scale}`);
}

const [m, n, k] = [13, 21, 40];
const xv = randn(m * k, 1), wv = randn(n * k, 2), gv = randn(m * n, 3);

forEachBackend("autocast", () => {
  for (const p of ["bf16", "fp16"] as const) {
    it(`${p}: linear's output and gradients are the products of ${p}-rounded operands, fp32 accumulation`, () => {
      const x = T.tensor(xv, { shape: [m, k], requiresGrad: true }), w = T.tensor(wv, { shape: [n, k], requiresGrad: true });
      const bv = randn(n, 4), b = T.tensor(bv, { shape: [n], requiresGrad: true });
      const y = autocast(p, () => T.linear(x, w, b));
      y.backward(T.tensor(gv, { shape: [m, n] }));
      const [xr, wr, gr] = [xv, wv, gv].map(round[p]);
      // fp16 also rounds each result to binary16 (its range and precision)
      const out = (v: Float64Array) => (p === "fp16" ? round.fp16(Float32Array.from(v)) : v);
      // the bias is added in fp32, before fp16's rounding of the result
      close(y.toTypedArray(), out(mmT(xr, wr, m, n, k).map((v, i) => v + bv[i % n])), 1e-6, "y");
      // gx = g W: [m, n] x [n, k]; gW = g^T x: [n, m] x [m, k] (written as products with a transposed second operand)
      const tr = (a: Float32Array, r: number, c: number) => Float32Array.from({ length: r * c }, (_, i) => a[(i % r) * c + Math.floor(i / r)]);
      close(x.grad!.toTypedArray(), out(mmT(gr, tr(wr, n, k), m, k, n)), 1e-6, "grad x");
      close(w.grad!.toTypedArray(), out(mmT(tr(gr, m, n), tr(xr, m, k), n, k, m)), 1e-6, "grad w");
      close(b.grad!.toTypedArray(), Float64Array.from({ length: n }, (_, j) => Array.from({ length: m }, (_, i) => gv[i * n + j]).reduce((a, c) => a + c, 0)), 1e-6, "grad b (fp32)");
    });
  }

  it("bf16: a parameter's copy is remade after an optimizer step (no stale weights)", () => {
    const w = T.tensor(wv, { shape: [n, k], requiresGrad: true }), x = T.tensor(xv, { shape: [m, k] });
    const opt = new T.SGD([{ params: [{ name: "w", tensor: w }], weightDecay: 0 }], { lr: 0.5 });
    autocast("bf16", () => {
      T.linear(x, w).sum().backward();
      opt.step();
      const want = mmT(round.bf16(xv), round.bf16(w.toTypedArray() as Float32Array), m, n, k);
      close(T.linear(x, w).toTypedArray(), want, 1e-6, "after the step");
    });
  });

  it("unknown precision: one clear error", () => {
    assert.throws(() => autocast("int4" as never, () => 0), /autocast: unknown precision "int4"; expected one of fp32, bf16, fp16/);
  });
});

describe("fp16 loss scaling", () => {
  it("a gradient below fp16's smallest subnormal flushes to zero unscaled, and survives with the scale", () => {
    const w = T.tensor(wv.subarray(0, 4 * 8), { shape: [4, 8], requiresGrad: true }), x = T.tensor(xv.subarray(0, 3 * 8), { shape: [3, 8] });
    const lossOf = () => autocast("fp16", () => T.linear(x, w).sum().mul(1e-9));
    lossOf().backward();
    assert.ok(w.grad!.toTypedArray().every((v) => v === 0), "unscaled: every weight gradient is 0 (1e-9 < 2^-24)");
    w.grad = null;
    const s = new GradScaler();
    lossOf().mul(s.scale).backward();
    assert.equal(s.unscale([w]), true);
    // fp32 reference: d/dW sum(x W^T) * 1e-9 = 1e-9 * column sums of x, for every output row
    const want = Float64Array.from({ length: 32 }, (_, i) => 1e-9 * [0, 1, 2].reduce((a, r) => a + f16ToF32(f32ToF16(Float32Array.of(xv[r * 8 + (i % 8)])))[0], 0));
    close(w.grad!.toTypedArray(), want, 2e-3, "scaled and unscaled gradient");
  });

  function tinyRun(runDir: string, extra: Partial<TrainOptions> = {}): TrainOptions {
    const config = gpt2Config({ vocabSize: 17, dModel: 16, nLayers: 1, nHeads: 2, maxSeqLen: 8 });
    const model = new TransformerLM(config, { generator: new RandomGenerator(3) });
    const ids = new Int32Array(400);
    new RandomGenerator(11).randint(ids, 17);
    return {
      model, modelConfig: config, train: new TokenDataset(ids), runDir, batchSize: 2, blockSize: 8, maxSteps: 6,
      schedule: { kind: "constant", lr: 1e-2 }, optim: { kind: "adamw", weightDecay: 0 }, evalIters: 1, progress: false,
      precision: "fp16", ...extra,
    };
  }

  it("trains when only the scale keeps the gradients alive: with initScale 1 the weights never move", async () => {
    const loss1e9 = ((model: TransformerLM, b: { x: T.Tensor; y: T.Tensor }) => ({ loss: T.crossEntropy(T.reshape(model.forward(b.x).logits, [16, 17]), T.reshape(b.y, [16])).mul(1e-9), aux: {} })) as never;
    const runs = [];
    for (const initScale of [1, 2 ** 16]) {
      const o = tinyRun(tmp(), { objective: loss1e9, gradScaler: { initScale }, maxSteps: 2 });
      const before = o.model.stateDict();
      const snap = Object.fromEntries(Object.entries(before).map(([k, v]) => [k, Float32Array.from(v.toTypedArray() as Float32Array)]));
      await train(o);
      const moved = Object.entries(o.model.stateDict()).filter(([k, v]) => (v.toTypedArray() as Float32Array).some((x, i) => x !== snap[k][i])).length;
      runs.push(moved);
    }
    assert.equal(runs[0], 0, "unscaled fp16 gradients of a 1e-9 loss are all zero");
    assert.ok(runs[1] > 0, "with the default scale the weights train");
  });

  it("an injected inf skips the step, halves the scale and changes no weight", async () => {
    let calls = 0;
    const objective = ((model: TransformerLM, b: { x: T.Tensor; y: T.Tensor }) => {
      const l = T.crossEntropy(T.reshape(model.forward(b.x).logits, [16, 17]), T.reshape(b.y, [16]));
      return { loss: ++calls === 3 ? l.mul(Infinity) : l, aux: {} };
    }) as never;
    const o = tinyRun(tmp(), { objective, maxSteps: 4 });
    const infos: { step: number; lossScale?: number; skipped?: boolean }[] = [];
    let snap: Record<string, Float32Array> = {};
    o.onStep = (i) => {
      infos.push(i);
      if (i.step === 2) snap = Object.fromEntries(Object.entries(o.model.stateDict()).map(([k, v]) => [k, Float32Array.from(v.toTypedArray() as Float32Array)]));
      if (i.step === 3) for (const [k, v] of Object.entries(o.model.stateDict())) assert.deepEqual(v.toTypedArray(), snap[k], `${k} changed on the skipped step`);
    };
    await train(o);
    assert.deepEqual(infos.map((i) => [i.lossScale, i.skipped]), [[65536, false], [65536, false], [65536, true], [32768, false]]);
  });

  it("resumes exactly with the scale (growth every 2 clean steps)", async () => {
    const opts = { gradScaler: { growthInterval: 2 }, evalInterval: 3, ckptInterval: 3 };
    const full = tinyRun(tmp(), opts);
    const scales: number[] = [];
    full.onStep = (i) => { scales.push(i.lossScale!); };
    await train(full);
    assert.deepEqual(scales, [65536, 65536, 131072, 131072, 262144, 262144], "x2 after each 2 clean steps");
    const dir = tmp();
    await train({ ...tinyRun(dir, opts), maxSteps: 3 });
    const resumed = tinyRun(dir, { ...opts, resume: dir });
    const later: number[] = [];
    resumed.onStep = (i) => { later.push(i.lossScale!); };
    await train(resumed);
    assert.deepEqual(later, scales.slice(3));
    const a = full.model.stateDict(), b = resumed.model.stateDict();
    for (const k of Object.keys(a)) assert.deepEqual(b[k].toTypedArray(), a[k].toTypedArray(), k);
  });

  it("bad input: unknown precision, a gradScaler without fp16, a float64 model, bad scaler options", async () => {
    await assert.rejects(train(tinyRun(tmp(), { precision: "fp8" as never })), /train: precision: unknown precision "fp8"; expected one of fp32, bf16, fp16/);
    await assert.rejects(train(tinyRun(tmp(), { precision: "bf16", gradScaler: {} })), /gradScaler is for precision fp16, got precision bf16/);
    class F64 extends T.Module { readonly w = this.param("w", T.zeros([2], { dtype: "float64" })); }
    const model = new F64();
    const objective = ((mod: F64) => ({ loss: mod.w.sum(), aux: {} })) as never;
    await assert.rejects(train({ ...tinyRun(tmp(), { precision: "bf16" }), model: model as never, objective }), /precision bf16 needs a float32 model .* float64 parameters/);
    assert.throws(() => new GradScaler({ backoffFactor: 1 }), /backoffFactor must be in \(0, 1\), got 1/);
  });
});
