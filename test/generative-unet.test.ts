// The DDPM U-Net (src/generative/unet.ts) against scripts/golden/unet.py (the same small U-Net built in torch
// from Ho et al. 2020 App. B, float64): the ε-prediction and the DDPM loss at fixed (t, ε), and the gradient
// of every parameter, within 1e-5 of each tensor's scale. Then the "ddpm" ImageMethod: its config errors,
// its samplers' option errors, and a tiny end-to-end loss + sample.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import * as T from "../src/index.js";
import { ddpmLossAt, qSample } from "../src/generative/ddpm.js";
import { ddpmConfig, ddpmMethod } from "../src/generative/ddpm-method.js";
import { imageMethod } from "../src/generative/registry.js";
import { diffusionSchedule } from "../src/generative/schedules.js";
import { UNet } from "../src/generative/unet.js";
import { toTensor } from "./helpers/golden.js";

const file = path.join(import.meta.dirname, "fixtures", "unet.safetensors");
const { tensors: ts, metadata } = T.decodeSafetensors(readFileSync(file), file);

/** max |got - want| <= 1e-5 · max(1, max |want|): float32 ours against torch's float64. */
function close(what: string, got: T.Tensor, want: Float32Array): void {
  const v = got.toTypedArray() as Float32Array;
  assert.equal(v.length, want.length, `${what}: length`);
  let scale = 1, err = 0, at = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]));
    const e = Math.abs(v[i] - want[i]);
    if (e > err) { err = e; at = i; }
  }
  if (!(err <= 1e-5 * scale)) assert.fail(`${what}: max error ${err} at ${at} (got ${v[at]}, want ${want[at]}; scale ${scale})`);
}

describe("DDPM U-Net vs torch (scripts/golden/unet.py)", () => {
  const cfg = JSON.parse(metadata.config);
  const net = new UNet({ inChannels: cfg.inChannels, channels: cfg.channels, groups: cfg.groups, attention: cfg.attention, classes: cfg.classes });
  const sd: Record<string, T.Tensor> = {};
  for (const [n] of net.namedParameters()) sd[n] = toTensor(ts[`param.${n}`]);
  net.loadStateDict(sd);
  const t = Int32Array.from(ts.t.data as Int32Array), labels = Int32Array.from(ts.labels.data as Int32Array);
  const s = diffusionSchedule("linear", cfg.T);
  const x0 = toTensor(ts.x0), eps = toTensor(ts.eps);

  test("every torch parameter has a tsformer twin of the same shape, and no more", () => {
    const ours = [...net.namedParameters()].map(([n, p]) => `${n}:${p.shape.join("x")}`).sort();
    const theirs = Object.keys(ts).filter((k) => k.startsWith("param.")).map((k) => `${k.slice(6)}:${ts[k].shape.join("x")}`).sort();
    assert.deepEqual(ours, theirs);
  });

  test("x_t (eq. 4) and the ε-prediction at (x_t, t, labels) within 1e-5", () => {
    const xt = qSample(s, x0, t, eps);
    close("x_t", xt, ts.xt.data as Float32Array);
    close("ε_θ", T.noGrad(() => net.forward(xt, T.tensor(Array.from(t)), labels)), ts.out.data as Float32Array);
  });

  test("the DDPM loss (eq. 14) at fixed (t, ε) and every parameter's gradient within 1e-5", () => {
    net.zeroGrad();
    const loss = ddpmLossAt((x, tt) => net.forward(x, tt, labels), s, x0, t, eps);
    close("loss", loss.reshape(1), ts.loss.data as Float32Array);
    loss.backward();
    for (const [n, p] of net.namedParameters()) close(`grad ${n}`, p.grad!, ts[`grad.${n}`].data as Float32Array);
  });
});


describe('the "ddpm" ImageMethod', () => {
  const tiny = { T: 10, channels: [8, 8, 8], groups: 4 };

  test("is registered, and its config refuses each bad field with one clear error", () => {
    assert.equal(imageMethod("ddpm"), ddpmMethod);
    assert.deepEqual(ddpmConfig({}).channels, ddpmMethod.defaults.channels);
    const m = ddpmMethod.create({ T: 10, attention: false }, 0);
    assert.deepEqual(ddpmMethod.create(m.config, 0).config, m.config, "the resolved config rebuilds the model");
    assert.throws(() => ddpmConfig({ channels: [16, 30, 32], groups: 8 }), /every width in channels \[16,30,32\] must be a multiple of groups \(8\); 30 is not/);
    for (const T0 of [0, -3, 2.5]) assert.throws(() => ddpmConfig({ T: T0 }), new RegExp(`ddpm config: T must be a positive integer, got ${T0}`));
    assert.throws(() => ddpmConfig({ schedule: "sigmoid" }), /ddpm config: schedule must be "linear" or "cosine", got "sigmoid"/);
    assert.throws(() => ddpmConfig({ channels: [8, 8] }), /ddpm config: channels must be three positive integers/);
    assert.throws(() => ddpmConfig({ labelDropout: 1 }), /ddpm config: labelDropout must be a number in \[0, 1\), got 1/);
    assert.throws(() => ddpmConfig({ chanels: [8, 8, 8] }), /ddpm config: unknown field "chanels"; expected one of: schedule, T, channels/);
  });

  test("sampler options: unknown sampler, ancestral with skipped steps or η, DDIM steps out of range, labels/guidance unconditionally", () => {
    const m = ddpmMethod.create(tiny, 0), gen = new T.RandomGenerator(1);
    assert.throws(() => m.sample(2, gen, { sampler: "euler" }), /ddpm: unknown sampler "euler"; expected "ddpm" \(ancestral, T steps\) or "ddim"/);
    assert.throws(() => m.sample(2, gen, { sampler: "ddpm", steps: 5 }), /the ancestral sampler runs all T = 10 steps, got steps 5/);
    assert.throws(() => m.sample(2, gen, { sampler: "ddpm", eta: 0 }), /eta and spacing are DDIM's/);
    assert.throws(() => m.sample(2, gen, { sampler: "ddpm", spacing: "quad" }), /eta and spacing are DDIM's/);
    assert.throws(() => m.sample(2, gen, { sampler: "ddim", spacing: "cubic" as "quad" }), /spacing must be "uniform" or "quad", got "cubic"/);
    assert.throws(() => m.sample(2, gen, { sampler: "ddim", steps: 11 }), /ddim steps must be an integer in \[1, 10\], got 11/);
    assert.throws(() => m.sample(2, gen, { sampler: "ddim", eta: -1 }), /eta must be a number >= 0, got -1/);
    assert.throws(() => m.sample(2, gen, { labels: new Int32Array(2) }), /labels given to an unconditional model/);
    assert.throws(() => m.sample(2, gen, { guidance: 3 }), /guidance 3 needs a class-conditional model/);
  });

  test("loss on an MNIST-shaped batch, then both samplers: [n, 1, 28, 28] in [-1, 1], the same for the same seed", () => {
    const m = ddpmMethod.create({ ...tiny, classes: 10 }, 0), gen = new T.RandomGenerator(3);
    const x = T.sub(T.mul(T.rand([4, 784], { generator: gen }), 2), 1);
    const l = m.loss(x, Int32Array.from([0, 1, 2, 3]), gen, 0);
    assert.ok(Number.isFinite(l.item()) && l.item() > 0);
    l.backward();
    assert.ok([...m.module.namedParameters()].every(([, p]) => p.grad), "every parameter gets a gradient");
    for (const o of [{ sampler: "ddpm" }, { sampler: "ddim", steps: 4, eta: 0.5 }, { sampler: "ddim", steps: 3, labels: Int32Array.from([7, 1]), guidance: 2 }]) {
      const a = m.sample(2, new T.RandomGenerator(5), o), b = m.sample(2, new T.RandomGenerator(5), o);
      assert.deepEqual(a.shape, [2, 1, 28, 28]);
      const v = a.toTypedArray() as Float32Array;
      assert.ok(v.every((e) => e >= -1 && e <= 1), `${o.sampler}: clamped to [-1, 1]`);
      assert.deepEqual(v, b.toTypedArray(), `${o.sampler}: deterministic for a seed`);
    }
  });
});
