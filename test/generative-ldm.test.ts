// Latent diffusion (src/generative/autoencoder.ts, ldm.ts, ldm-method.ts) against scripts/golden/ldm.py
// (PyTorch, float64 on float32-representable weights and inputs; our modules compute in float32):
// the KL autoencoder's loss and gradients, the KL closed form (checked there against torch.distributions),
// the cross-attention denoiser's output and gradients with labels and with the null label, classifier-free
// guidance; then the two stages of the "ldm" ImageMethod and its bad-config errors.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { gaussianKl, KLAutoencoder } from "../src/generative/autoencoder.js";
import { imageMethod } from "../src/generative/registry.js";
import { cfgCombine, guidedDenoiser, LatentDenoiser } from "../src/generative/ldm.js";
import type { LatentDiffusion } from "../src/generative/ldm-method.js";
import { decodeSafetensors } from "../src/io/safetensors.js";
import * as T from "../src/index.js";
import { maxRelError, toTensor } from "./helpers/golden.js";

const FIXTURE = new URL("./fixtures/ldm.safetensors", import.meta.url).pathname;
const { tensors, metadata } = decodeSafetensors(readFileSync(FIXTURE), FIXTURE);
// float32 against a float64 reference: PyTorch's own float32 run of the same modules is off by up to 5e-5
// by this measure (max |Δ| / (|ref| + 0.02 max|ref|), measured on this fixture), ours up to 2.6e-5.
const TOL = 5e-5;
const t32 = (k: string, grad = false) => toTensor(tensors[k], "float32", grad);
const want = (k: string) => tensors[k].data as ArrayLike<number>;
const close = (got: T.Tensor, key: string, what = key) => {
  const e = maxRelError(got.toTypedArray() as Float32Array, want(key));
  assert.ok(e <= TOL, `${what}: max relative error ${e} > ${TOL}`);
};
/** Load the fixture's `prefix`<param> tensors into a module's parameters (all of them, by name). */
function loadParams(m: T.Module, prefix: string, names: string): void {
  m.loadStateDict(Object.fromEntries(names.split(",").map((n) => [n, t32(prefix + n)])));
}

describe("ldm: KL autoencoder vs PyTorch", () => {
  const ae = new KLAutoencoder({ latentChannels: 2, channels: 8, groups: 4 });
  loadParams(ae, "ae.", metadata.ae_params);
  const beta = Number(metadata.beta);

  test(`recon (L2, L1) + β KL at a fixed ε and every parameter gradient (<= ${TOL})`, () => {
    const l = ae.lossAt(t32("ae.x"), t32("ae.eps"), beta, "l2");
    close(l.recon, "ae.recon_l2");
    close(l.kl, "ae.kl");
    close(l.loss, "ae.loss");
    l.loss.backward();
    for (const [n, p] of ae.namedParameters()) close(p.grad!, `ae.d.${n}`, `d loss / d ${n}`);
    close(T.noGrad(() => ae.lossAt(t32("ae.x"), t32("ae.eps"), beta, "l1").recon), "ae.recon_l1");
  });

  test("the KL term is the closed form 0.5 Σ(μ² + σ² - 1 - log σ²) (torch.distributions agrees in the script)", () => {
    close(gaussianKl(t32("kl.mean"), t32("kl.logvar")), "kl.value");
  });

  test("images must be [B, 1, 28, 28]; latents [B, c, 7, 7]", () => {
    assert.throws(() => ae.encode(T.zeros([2, 3, 28, 28])), /KLAutoencoder.encode: images must be \[B, 1, 28, 28\].*got \[2, 3, 28, 28\]/);
    assert.throws(() => ae.decode(T.zeros([2, 3, 7, 7])), /latents must be \[B, 2, 7, 7\]/);
  });
});

describe("ldm: cross-attention latent denoiser vs PyTorch", () => {
  const net = new LatentDenoiser({ latentChannels: 2, latentSize: 7, dim: 16, depth: 2, heads: 2, ctxTokens: 2, numClasses: 10 });
  loadParams(net, "unet.", metadata.unet_params);
  const y = Int32Array.from(want("unet.y"));
  const nul = new Int32Array(3).fill(10);

  test(`ε(z, t, y) with a null label among the labels, and d Σ(ε r) / d (parameters, z) (<= ${TOL})`, () => {
    const z = t32("unet.z", true);
    const out = net.forward(z, t32("unet.t"), y);
    close(out, "unet.out");
    T.sum(T.mul(out, t32("unet.r"))).backward();
    for (const [n, p] of net.namedParameters()) close(p.grad!, `unet.d.${n}`, `d / d ${n}`);
    close(z.grad!, "unet.dz");
  });

  test("every label null: the unconditional output", () => {
    close(T.noGrad(() => net.forward(t32("unet.z"), t32("unet.t"), nul)), "unet.out_null");
  });

  test("classifier-free guidance: w = 1 is the conditional output, w = 0 the unconditional, w = 3 the formula", () => {
    const w = Number(metadata.guidance), z = t32("unet.z"), t = t32("unet.t");
    T.noGrad(() => {
      close(guidedDenoiser(net, y, 1)(z, t), "unet.out", "w = 1");
      close(guidedDenoiser(net, y, 0)(z, t), "unet.out_null", "w = 0");
      close(guidedDenoiser(net, y, w)(z, t), "unet.guided", `w = ${w} (one batch of 2B)`);
      close(cfgCombine(t32("unet.out"), t32("unet.out_null"), w), "unet.guided", "cfgCombine");
    });
    assert.throws(() => guidedDenoiser(net, y, -1), /guidance must be a finite number >= 0, got -1/);
  });

  test("labels outside [0, numClasses] are refused", () => {
    assert.throws(() => net.forward(t32("unet.z"), t32("unet.t"), Int32Array.from([0, 11, 2])), /labels must be integers in \[0, 10\].*got 11/);
  });
});

describe("ldm: the ImageMethod", () => {
  const tiny = { aeSteps: 2, aeChannels: 8, dim: 16, depth: 1, heads: 2, T: 50, steps: 5 };
  const images = (B: number, gen: T.RandomGenerator) => T.clamp(T.randn([B, 1, 28, 28], { generator: gen }), -1, 1);
  const labels = Int32Array.from([1, 2, 3, 4]);

  test("two stages on the step: the autoencoder alone, then the denoiser alone with the latent scale measured once", () => {
    const m = imageMethod("ldm").create(tiny, 0), ldm = m.module as LatentDiffusion, gen = new T.RandomGenerator(1);
    const grads = (prefix: string) => [...m.module.namedParameters()].filter(([n]) => n.startsWith(prefix)).map(([, p]) => p.grad);
    const run = (step: number) => { m.module.zeroGrad(); m.loss(images(4, gen), labels, gen, step).backward(); };
    assert.throws(() => m.sample(2, gen), /latent scale is not measured yet/);
    run(0);
    assert.ok(grads("ae.").every((g) => g !== null) && grads("unet.").every((g) => g === null), "stage 1 trains the autoencoder only");
    assert.equal(ldm.latentScale.data[0], 0);
    run(2);
    assert.ok(grads("ae.").every((g) => g === null) && grads("unet.").some((g) => g !== null), "stage 2 trains the denoiser only");
    const s = ldm.latentScale.data[0] as number;
    assert.ok(s > 0 && Number.isFinite(s));
    run(3);
    assert.equal(ldm.latentScale.data[0], s, "measured once");
    // resume: the scale comes back with the state dict (a buffer)
    const again = imageMethod("ldm").create(tiny, 5);
    again.module.loadStateDict(m.module.stateDict());
    assert.equal((again.module as LatentDiffusion).latentScale.data[0], s);
    const x = m.sample(3, new T.RandomGenerator(2), { guidance: 2, labels: Int32Array.from([0, 5, 9]) });
    assert.deepEqual(x.shape, [3, 1, 28, 28]);
    const v = x.toTypedArray() as Float32Array;
    assert.ok(v.every((a) => a >= -1 && a <= 1));
    assert.deepEqual(m.sample(3, new T.RandomGenerator(2), { guidance: 2, labels: Int32Array.from([0, 5, 9]) }).toTypedArray(), v, "same seed, same samples");
  });

  test("one clear error per bad config field and sample option", () => {
    const create = (c: Record<string, unknown>) => imageMethod("ldm").create(c, 0);
    assert.throws(() => create({ latentChannels: 0 }), /ldm config: latentChannels must be a positive integer, got 0/);
    assert.throws(() => create({ guidance: -1 }), /ldm config: guidance must be a finite number >= 0, got -1/);
    assert.throws(() => create({ dim: 30, heads: 4 }), /ldm config: dim must be divisible by heads \(4\), got 30/);
    assert.throws(() => create({ latentChannel: 4 }), /ldm config: unknown field "latentChannel"/);
    const m = create(tiny), gen = new T.RandomGenerator(0);
    assert.throws(() => m.loss(T.zeros([2, 1, 32, 32]), Int32Array.from([0, 1]), gen, 0), /ldm: the model reads images \[1, 28, 28\].*the batch is \[2, 1, 32, 32\]/);
    assert.throws(() => m.loss(T.zeros([2, 1, 28, 28]), Int32Array.from([0]), gen, 0), /1 labels for 2 images/);
    (m.module as LatentDiffusion).latentScale.data[0] = 1;
    assert.throws(() => m.sample(2, gen, { guidance: -0.5 }), /guidance must be a finite number >= 0, got -0.5/);
    assert.throws(() => m.sample(2, gen, { sampler: "euler" }), /sampler must be "ddim" or "ddpm"/);
    assert.throws(() => m.sample(2, gen, { labels: Int32Array.from([0, 10]) }), /sample labels must be integers in \[0, 9\], got 10/);
  });
});
