// The SD3-style DiT (src/generative/dit.ts) and its "dit" method: forward, rectified-flow loss and every
// parameter's gradient against an independent torch DiT (scripts/golden/dit.py), adaLN-Zero's identity start,
// patchify / unpatchify, logit-normal timestep moments against the formula, sampling shapes and the config errors.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import * as T from "../src/index.js";
import { DiT, patchify, unpatchify } from "../src/generative/dit.js";
import { ditLossAt, ditMethod, logitNormalTimes, resolveDitConfig } from "../src/generative/dit-method.js";
import { decodeSafetensors } from "../src/io/safetensors.js";
import { maxRelError, toTensor } from "./helpers/golden.js";

const FIXTURE = new URL("./fixtures/generative/dit.safetensors", import.meta.url).pathname;
const { tensors, metadata } = decodeSafetensors(readFileSync(FIXTURE), FIXTURE);
const want = (k: string) => tensors[k].data as Float64Array;
// float32 against float64: the norm-wise relative error within 1e-5, every element within 5e-5 (maxRelError:
// |a - b| / (|b| + 2% of max |b|)). torch's own float32 run of the same model is off by 6e-5 (forward) and
// 3e-4 (gradients) elementwise, mostly from rounding 1000 t to float32 (ours embeds t in float64).
const TOL = 1e-5, ELEM_TOL = 5e-5;

function normRelError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let d = 0, n = 0;
  for (let i = 0; i < ref.length; i++) { d += (got[i] - ref[i]) ** 2; n += ref[i] ** 2; }
  return Math.sqrt(d / n);
}

/** Both errors of got against the fixture tensor `key`, asserted. */
function close(got: T.Tensor, key: string): void {
  const g = got.toTypedArray(), w = want(key);
  assert.equal(g.length, w.length, `${key}: ${g.length} values, expected ${w.length}`);
  const nre = normRelError(g, w), mre = maxRelError(g, w);
  assert.ok(nre <= TOL && mre <= ELEM_TOL, `${key}: norm-wise relative error ${nre}, elementwise ${mre}`);
}

/** Φ, the standard normal CDF, by Abramowitz & Stegun 26.2.17 (|error| < 7.5e-8). */
function normalCdf(x: number): number {
  const k = 1 / (1 + 0.2316419 * Math.abs(x));
  const poly = k * (0.31938153 + k * (-0.356563782 + k * (1.781477937 + k * (-1.821255978 + k * 1.330274429))));
  const tail = (Math.exp((-x * x) / 2) / Math.sqrt(2 * Math.PI)) * poly;
  return x >= 0 ? 1 - tail : tail;
}

function goldenModel(): { net: DiT; labels: Int32Array } {
  const cfg = resolveDitConfig(JSON.parse(metadata.config));
  const net = new DiT(cfg, new T.RandomGenerator(0));
  const names = JSON.parse(metadata.params) as string[];
  assert.deepEqual([...net.namedParameters()].map(([n]) => n).sort(), [...names].sort());
  net.loadStateDict(Object.fromEntries(names.map((n) => [n, toTensor(tensors[n])])));
  return { net, labels: Int32Array.from(tensors.labels.data as ArrayLike<number>) };
}

describe("DiT (SD3-style) vs torch", () => {
  test(`forward, rectified-flow loss and every parameter's gradient: norm-wise within ${TOL} of torch, elementwise ${ELEM_TOL}`, () => {
    const { net, labels } = goldenModel();
    const x = toTensor(tensors.x), t = toTensor(tensors.t), eps = toTensor(tensors.eps);
    const out = T.noGrad(() => net.forward(x, t, labels));
    close(out, "out");
    const loss = ditLossAt(net, x, labels, t.toTypedArray(), eps);
    close(loss, "loss");
    loss.backward();
    for (const [name, p] of net.namedParameters()) close(p.grad!, `grad.${name}`);
  });
});

describe("DiT pieces", () => {
  test("adaLN-Zero init: the output is exactly 0 and every block is the identity", () => {
    const net = new DiT(resolveDitConfig({ imageSize: 8, patch: 2, dim: 16, depth: 2, heads: 2 }), new T.RandomGenerator(3));
    const g = new T.RandomGenerator(4), x = T.randn([2, 1, 8, 8], { generator: g }), t = T.tensor([0.2, 0.9]);
    const out = net.forward(x, t, Int32Array.from([1, 10]));
    assert.ok(Array.from(out.toTypedArray()).every((v) => v === 0), "velocity at init must be exactly 0");
    const h = T.randn([2, 16, 16], { generator: g }), sc = T.randn([2, 16], { generator: g });
    assert.deepEqual(Array.from(net.blocks[0].forward(h, sc).toTypedArray()), Array.from(h.toTypedArray()));
    // the initial loss is then mean((ε - x0)²) exactly
    const eps = T.randn([2, 1, 8, 8], { generator: g }), d = T.sub(eps, x);
    const l = ditLossAt(net, x, Int32Array.from([0, 1]), [0.3, 0.6], eps).item();
    assert.ok(Math.abs(l - T.mean(T.mul(d, d)).item()) < 1e-6);
  });

  test("unpatchify(patchify(x)) = x; a patch holds its (c, row, col) pixels in the conv weight's order", () => {
    const x = T.randn([2, 3, 6, 4], { generator: new T.RandomGenerator(5) });
    const p = patchify(x, 2);
    assert.deepEqual(p.shape, [2, 6, 12]);
    assert.deepEqual(Array.from(unpatchify(p, 2, 3, 3, 2).toTypedArray()), Array.from(x.toTypedArray()));
    // token 1 of image 0 = patch row 0, patch column 1: pixels x[0, c, 0..1, 2..3]
    const xv = x.toTypedArray(), pv = p.toTypedArray(), at = (c: number, i: number, j: number) => xv[c * 24 + i * 4 + j];
    const expect = [0, 1, 2].flatMap((c) => [at(c, 0, 2), at(c, 0, 3), at(c, 1, 2), at(c, 1, 3)]);
    assert.deepEqual(Array.from(pv.subarray(12, 24)), expect);
    assert.throws(() => patchify(x, 4), /divisible by the patch 4/);
  });

  test("logit-normal t: mean of sigmoid(N(0, 1)) is 1/2 and P(t < 0.1) = Φ(logit 0.1); with m, s: P(t < 1/2) = Φ(-m/s)", () => {
    const n = 200_000, t = logitNormalTimes(n, new T.RandomGenerator(6));
    const mean = t.reduce((a, b) => a + b, 0) / n;
    // sd of sigmoid(N(0,1)) is about 0.21, so the mean's standard error is about 5e-4
    assert.ok(Math.abs(mean - 0.5) < 2.5e-3, `mean ${mean}`);
    const below = t.filter((v) => v < 0.1).length / n, p = normalCdf(Math.log(0.1 / 0.9));
    assert.ok(Math.abs(below - p) < 4 * Math.sqrt((p * (1 - p)) / n), `P(t < 0.1) = ${below}, expected ${p}`);
    const t2 = logitNormalTimes(n, new T.RandomGenerator(7), 0.5, 2), p2 = normalCdf(-0.25);
    const half = t2.filter((v) => v < 0.5).length / n;
    assert.ok(Math.abs(half - p2) < 4 * Math.sqrt((p2 * (1 - p2)) / n), `P(t < 1/2) = ${half}, expected ${p2}`);
    assert.ok(t.every((v) => v > 0 && v < 1));
  });

  test("the method: loss through gen, Euler and Heun samples in [-1, 1], one step of training lowers a fixed-batch loss", () => {
    const m = ditMethod.create({ imageSize: 8, patch: 4, dim: 16, depth: 1, heads: 2, freqDim: 8 }, 0);
    assert.deepEqual(m.imageShape, [1, 8, 8]);
    const g = new T.RandomGenerator(8), x = T.clamp(T.randn([4, 1, 8, 8], { generator: g }), -1, 1), y = Int32Array.from([0, 1, 2, 3]);
    const opt = new T.AdamW(T.defaultParamGroups(m.module, 0), { lr: 1e-2 });
    const at = () => T.tidy(() => m.loss(x, y, new T.RandomGenerator(9), 0).item());
    const before = at();
    for (let i = 0; i < 5; i++) T.tidy(() => { opt.zeroGrad(); m.loss(x, y, new T.RandomGenerator(9), 0).backward(); opt.step(); });
    assert.ok(at() < before, `loss ${before} -> ${at()}`);
    for (const sampler of ["euler", "heun"]) {
      const s = m.sample(3, new T.RandomGenerator(10), { sampler, steps: 2, guidance: 1.5, labels: Int32Array.from([0, 5, 9]) });
      assert.deepEqual(s.shape, [3, 1, 8, 8]);
      assert.ok(Array.from(s.toTypedArray()).every((v) => v >= -1 && v <= 1));
    }
    assert.throws(() => m.sample(2, g, { sampler: "dpm" }), /dit: sampler must be one of euler, heun, got "dpm"/);
    assert.throws(() => m.sample(2, g, { labels: Int32Array.from([1]) }), /1 labels for 2 samples/);
    assert.throws(() => m.loss(T.zeros([2, 784]), y, g, 0), /images must be \[B, 1, 8, 8\]/);
  });

  test("config errors: one clear error per bad field", () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ patch: 5 }, /dit: patch 5 must divide imageSize 28/],
      [{ heads: 3 }, /dit: heads 3 must divide dim 128/],
      [{ sampler: "ddim" }, /dit: sampler must be one of euler, heun, got "ddim"/],
      [{ qkNorm: "l2" }, /dit: qkNorm must be one of rmsnorm, layernorm, none/],
      [{ depth: 0 }, /dit: depth must be an integer >= 1, got 0/],
      [{ dim: 126, heads: 2 }, /dit: dim must be a multiple of 4/],
      [{ classDropout: 1 }, /dit: classDropout must be in \[0, 1\), got 1/],
      [{ width: 3 }, /dit: unknown config field "width"/],
    ];
    for (const [c, re] of bad) assert.throws(() => ditMethod.create(c, 0), re);
    const names = (qkNorm: string) => [...ditMethod.create({ depth: 1, qkNorm }, 0).module.namedParameters()].map(([n]) => n).filter((n) => n.includes("Norm"));
    assert.deepEqual(names("rmsnorm"), ["blocks.0.attn.qNorm.weight", "blocks.0.attn.kNorm.weight"]);
    assert.deepEqual(names("layernorm"), ["blocks.0.attn.qNorm.weight", "blocks.0.attn.qNorm.bias", "blocks.0.attn.kNorm.weight", "blocks.0.attn.kNorm.bias"]);
    assert.deepEqual(names("none"), []);
    assert.throws(() => ditMethod.create({ numClasses: 0 }, 0).sample(1, new T.RandomGenerator(0), { labels: Int32Array.from([0]) }), /unconditional/);
  });
});
