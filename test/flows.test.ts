// Normalizing flows (RealNVP, Glow): every layer and the whole multi-scale model invert to 1e-5, and each
// log-determinant equals log|det J| of the Jacobian built by central finite differences in float64
// (det by LU with partial pivoting, written here independently of src/). Bad configurations throw clearly.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as T from "../src/index.js";
import type { Module } from "../src/nn/module.js";
import { ActNorm } from "../src/generative/flows/actnorm.js";
import { AffineCoupling } from "../src/generative/flows/coupling.js";
import type { FlowLayer } from "../src/generative/flows/flow.js";
import { InvConv1x1 } from "../src/generative/flows/invconv.js";
import { MultiScaleFlow } from "../src/generative/flows/multiscale.js";
import { LogitTransform, bitsPerDim, dequantize } from "../src/generative/flows/preprocess.js";
import { Squeeze } from "../src/generative/flows/squeeze.js";

const f64 = { dtype: "float64" as const };

/** log|det A| of a row-major [n, n] matrix by Doolittle LU with partial pivoting. */
function logAbsDet(a: Float64Array, n: number): number {
  const m = Float64Array.from(a);
  let s = 0;
  for (let k = 0; k < n; k++) {
    let p = k;
    for (let i = k + 1; i < n; i++) if (Math.abs(m[i * n + k]) > Math.abs(m[p * n + k])) p = i;
    for (let j = 0; j < n; j++) [m[k * n + j], m[p * n + j]] = [m[p * n + j], m[k * n + j]];
    s += Math.log(Math.abs(m[k * n + k]));
    for (let i = k + 1; i < n; i++) {
      const f = m[i * n + k] / m[k * n + k];
      for (let j = k; j < n; j++) m[i * n + j] -= f * m[k * n + j];
    }
  }
  return s;
}

/** The Jacobian [D, D] of a map on one example (shape [1, ...]) by central differences, step h. */
function jacobian(f: (x: T.Tensor) => Float64Array, x: T.Tensor, h = 1e-6): Float64Array {
  const x0 = x.contiguous().toTypedArray() as Float64Array, D = x0.length, J = new Float64Array(D * D);
  for (let j = 0; j < D; j++) {
    const at = (d: number) => { const v = Float64Array.from(x0); v[j] += d; return f(T.tensor(v, { shape: x.shape })); };
    const up = at(h), dn = at(-h);
    for (let i = 0; i < D; i++) J[i * D + j] = (up[i] - dn[i]) / (2 * h);
  }
  return J;
}

const values = (t: T.Tensor) => t.contiguous().toTypedArray() as Float64Array;
const maxDiff = (a: T.Tensor, b: T.Tensor) => values(a).reduce((m, v, i) => Math.max(m, Math.abs(v - values(b)[i])), 0);

/** Give every parameter random values (zero-initialized convs would make couplings the identity). */
function perturb(m: Module, gen: T.RandomGenerator, std = 0.3): void {
  for (const p of m.parameters()) {
    const noise = new Float64Array(p.numel);
    gen.normal(noise, 0, std);
    for (let i = 0; i < p.numel; i++) p.data[p.offset + i] += noise[i];
  }
}

/** inverse(forward(x)) = x to 1e-5, and logdet[b] = log|det J_b| for each example b. */
function checkLayer(name: string, layer: FlowLayer, x: T.Tensor): void {
  const { y, logdet } = layer.forward(x);
  assert.ok(maxDiff(layer.inverse(y), x) <= 1e-5, `${name}: inverse(forward(x)) differs by ${maxDiff(layer.inverse(y), x)}`);
  assert.deepEqual(logdet.shape, [x.shape[0]], `${name}: logdet shape`);
  for (let b = 0; b < x.shape[0]; b++) {
    const xb = x.narrow(0, b, 1).contiguous(), D = xb.numel;
    const want = logAbsDet(jacobian((v) => values(layer.forward(v).y), xb), D);
    const got = values(logdet)[b];
    assert.ok(Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)), `${name}: logdet ${got}, brute-force log|det J| ${want}`);
  }
}

describe("normalizing flows", () => {
  const gen = new T.RandomGenerator(7);
  const image = (shape: number[], lo = -1, hi = 1) => T.rand(shape, { generator: gen, low: lo, high: hi, ...f64 });

  test("ActNorm: data-dependent init gives zero mean, unit variance per channel; inverse and log-det", () => {
    const an = new ActNorm(3, f64), x = T.add(T.mul(image([4, 3, 3, 3]), 5), 2);
    const y = values(an.forward(x).y);
    for (let c = 0; c < 3; c++) {
      const v: number[] = [];
      for (let b = 0; b < 4; b++) for (let k = 0; k < 9; k++) v.push(y[(b * 3 + c) * 9 + k]);
      const mean = v.reduce((a, q) => a + q, 0) / v.length, vr = v.reduce((a, q) => a + (q - mean) ** 2, 0) / v.length;
      assert.ok(Math.abs(mean) < 1e-9 && Math.abs(vr - 1) < 1e-5, `channel ${c}: mean ${mean}, var ${vr}`);
    }
    perturb(an, gen);
    checkLayer("ActNorm", an, image([2, 3, 3, 3]));
  });

  test("invertible 1x1 conv (LU form): inverse and log-det; W starts as a rotation", () => {
    const ic = new InvConv1x1(4, { ...f64, generator: gen });
    const w = values(ic.weight()), wwt = new Float64Array(16);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) for (let k = 0; k < 4; k++) wwt[i * 4 + j] += w[i * 4 + k] * w[j * 4 + k];
    wwt.forEach((v, k) => assert.ok(Math.abs(v - (k % 5 === 0 ? 1 : 0)) < 1e-12, `W W^T [${k}] = ${v}`));
    perturb(ic, gen);
    checkLayer("InvConv1x1", ic, image([2, 4, 3, 3]));
  });

  for (const mask of ["checkerboard", "channel"] as const) {
    for (const parity of [0, 1] as const) {
      test(`affine coupling, ${mask} mask, parity ${parity}: inverse and log-det`, () => {
        const cp = new AffineCoupling(2, { mask, parity, hidden: 6, ...f64, generator: gen });
        perturb(cp, gen);
        checkLayer(`coupling ${mask}/${parity}`, cp, image([2, 2, 4, 4]));
      });
    }
  }

  test("squeeze and the logit transform: inverse and log-det", () => {
    const x = image([2, 2, 4, 4]), y = new Squeeze().forward(x).y;
    assert.deepEqual(y.shape, [2, 8, 2, 2]);
    // channel c * 4 + i * 2 + j at (h, w) is the input at (c, 2h + i, 2w + j)
    assert.equal(values(y)[((1 * 8 + 1 * 4 + 1 * 2 + 0) * 2 + 1) * 2 + 0], values(x)[((1 * 2 + 1) * 4 + 3) * 4 + 0]);
    checkLayer("Squeeze", new Squeeze(), x);
    checkLayer("LogitTransform", new LogitTransform(0.05), image([2, 1, 3, 3], 0.01, 0.99));
  });

  for (const variant of ["glow", "realnvp"] as const) {
    test(`multi-scale ${variant}: the whole model inverts and its log-det is the Jacobian's`, () => {
      const m = new MultiScaleFlow({ imageShape: [1, 4, 4], variant, levels: 2, steps: 2, hidden: 4, ...f64, generator: gen });
      const x = image([2, 1, 4, 4], 0.02, 0.98);
      m.forward(x); // the ActNorm init
      perturb(m, gen, 0.1);
      const flat = (v: T.Tensor) => { const { zs } = m.forward(v); return Float64Array.from(zs.flatMap((z) => [...values(z)])); };
      const { zs, logdet } = m.forward(x);
      assert.deepEqual(zs.map((z) => z.shape), m.latentShapes(2));
      assert.ok(maxDiff(m.inverse(zs), x) <= 1e-5, `inverse differs by ${maxDiff(m.inverse(zs), x)}`);
      for (let b = 0; b < 2; b++) {
        const xb = x.narrow(0, b, 1).contiguous(), want = logAbsDet(jacobian(flat, xb), 16), got = values(logdet)[b];
        assert.ok(Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want)), `logdet ${got}, brute-force ${want}`);
      }
      // nll = -(log N(z; 0, I) + logdet), from the latents directly
      const z = zs.flatMap((t) => [...values(t.narrow(0, 0, 1))]);
      const want = 0.5 * z.reduce((a, v) => a + v * v, 0) + 8 * Math.log(2 * Math.PI) - values(logdet)[0];
      assert.ok(Math.abs(values(m.nll(x))[0] - want) < 1e-9);
    });
  }

  test("float32 MNIST-shaped Glow: inverse(forward(x)) within 1e-5 after a perturbation", () => {
    const m = new MultiScaleFlow({ imageShape: [1, 28, 28], levels: 2, steps: 2, hidden: 8, generator: gen });
    const pix = new Float32Array(2 * 784);
    gen.uniform(pix);
    const x = dequantize(pix.map((v) => Math.floor(v * 256) / 255), [2, 1, 28, 28], gen);
    m.forward(x);
    perturb(m, gen, 0.05);
    const { zs } = m.forward(x);
    const xv = x.toTypedArray() as Float32Array, bv = m.inverse(zs).toTypedArray() as Float32Array;
    const err = xv.reduce((a, v, i) => Math.max(a, Math.abs(v - bv[i])), 0);
    assert.ok(err <= 1e-5, `float32 round trip error ${err}`);
    assert.deepEqual(m.sample(3, gen, 0.7).shape, [3, 1, 28, 28]);
  });

  test("dequantization and bits/dim", () => {
    const y = values(T.cast(dequantize([0, 1 / 255, 128 / 255], [3], gen), "float64"));
    [0, 1, 128].forEach((k, i) => assert.ok(y[i] >= k / 256 && y[i] < (k + 1) / 256, `pixel ${k} -> ${y[i]}`));
    // a uniform density on [0, 1)^D (nll 0) is exactly 8 bits per dimension
    assert.equal(bitsPerDim(0, 784), 8);
    assert.ok(Math.abs(bitsPerDim(-784 * 5 * Math.LN2, 784) - 3) < 1e-12);
  });

  test("bad configurations throw one clear error", () => {
    assert.throws(() => new AffineCoupling(3, { mask: "channel" }), /channel mask .* needs an even channel count, got 3/);
    assert.throws(() => new Squeeze().forward(T.zeros([1, 1, 5, 4])), /image size 5x4 is not divisible by the squeeze factor 2/);
    assert.throws(() => new MultiScaleFlow({ imageShape: [1, 28, 28], levels: 3 }), /image size 28x28 is not divisible by 2\^levels = 8/);
    assert.throws(() => new ActNorm(2).forward(T.zeros([1, 3, 2, 2])), /ActNorm: input has 3 channels, expected 2/);
    assert.throws(() => new MultiScaleFlow({ imageShape: [1, 8, 8], steps: 0 }), /steps must be a positive integer, got 0/);
    assert.throws(() => dequantize([0.5], [1], gen), /pixel 0 is 0.5/);
  });
});
