// PFGM (Xu et al. 2022): the empirical Poisson field, Algorithm 1's normalized target and one step of the
// backward ODE against numpy (scripts/golden/pfgm.py), the field of one charge (radial, magnitude 1/r^N),
// the hemisphere prior's radius law, a tiny training run, bad input; and rectified flow's one-step
// distillation loss by hand.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import * as T from "../src/index.js";
import { sampleToy } from "../src/data/toys.js";
import { fit } from "../src/generative/fit.js";
import { normalizedFieldTarget, perturb, pfgmConfig, pfgmLoss, pfgmPrior, pfgmSample, poissonField, timeMlpField } from "../src/generative/pfgm.js";
import { distillLoss } from "../src/generative/rectified-flow.js";
import { TimeMLP } from "../src/generative/time-mlp.js";

interface Case { N: number; n: number; B: number; gamma: number; data: number[]; xt: number[]; field: number[]; target: number[]; zMax: number; zMin: number; x0: number[]; euler: number[]; heun: number[] }
const cases = (JSON.parse(readFileSync(new URL("./fixtures/pfgm.json", import.meta.url), "utf8")) as { cases: Case[] }).cases;
const t64 = (v: number[], rows: number) => T.tensor(Float64Array.from(v), { shape: [rows, v.length / rows] });

function close(got: T.Tensor, want: number[], tol: number, what: string): void {
  const g = got.toTypedArray();
  assert.equal(g.length, want.length, `${what}: length`);
  want.forEach((w, i) => assert.ok(Math.abs(g[i] - w) <= tol * Math.max(1, Math.abs(w)), `${what}[${i}]: ${g[i]} vs ${w}`));
}

describe("PFGM", () => {
  test("field, normalized target and one Euler / Heun step of the backward ODE match numpy (float64)", () => {
    for (const c of cases) {
      const data = t64(c.data, c.n), xt = t64(c.xt, c.B), tag = `N=${c.N}`;
      close(poissonField(xt, data), c.field, 1e-6, `${tag} field`);
      close(normalizedFieldTarget(xt, data, c.gamma), c.target, 1e-6, `${tag} target`);
      // the exact target field of the same charges stands in for the network
      const f = (p: T.Tensor) => normalizedFieldTarget(p, data, c.gamma);
      for (const method of ["euler", "heun"] as const) {
        close(pfgmSample(f, t64(c.x0, c.B), { steps: 1, method, zMax: c.zMax, zMin: c.zMin }), c[method], 1e-6, `${tag} ${method}`);
      }
    }
  });

  test("the field of one charge is radial with magnitude 1/r^N", () => {
    for (const N of [2, 3]) {
      const q = Array.from({ length: N }, (_, k) => 0.3 * (k + 1));
      const pts = [[1, -2, 0.5, 0.7], [0.1, 0.2, 0.3, 2]].map((p) => [...p.slice(0, N), p[3]]);
      const e = poissonField(T.tensor(pts, { dtype: "float64" }), T.tensor([q], { dtype: "float64" })).toTypedArray();
      pts.forEach((p, b) => {
        const d = p.map((v, k) => v - (k < N ? q[k] : 0)), r = Math.hypot(...d), row = Array.from(e.subarray(b * (N + 1), (b + 1) * (N + 1)));
        assert.ok(Math.abs(Math.hypot(...row) - 1 / r ** N) < 1e-12, `N=${N} magnitude`);
        // parallel and same sense: E · d = |E| |d|
        const dot = row.reduce((s, v, k) => s + v * d[k], 0);
        assert.ok(Math.abs(dot - Math.hypot(...row) * r) < 1e-12, `N=${N} direction`);
      });
    }
  });

  test("prior: x = zMax g / |g0| has P(||x|| > r) = zMax / sqrt(r² + zMax²) for N = 2 (App. A.4), norms clipped", () => {
    const zMax = 10, n = 4000, x = pfgmPrior(n, 2, new T.RandomGenerator(3), { zMax, upperNorm: 1e9 }).toTypedArray();
    const R = Array.from({ length: n }, (_, i) => Math.hypot(x[2 * i], x[2 * i + 1]));
    for (const r of [5, 17.32, 60]) {
      const p = R.filter((v) => v > r).length / n, want = zMax / Math.hypot(r, zMax);
      assert.ok(Math.abs(p - want) < 4 * Math.sqrt((want * (1 - want)) / n), `P(R > ${r}) ${p} vs ${want}`);
    }
    const c = pfgmPrior(500, 3, new T.RandomGenerator(4), { zMax, upperNorm: 30 }).toTypedArray();
    for (let i = 0; i < 500; i++) {
      const r = Math.hypot(c[3 * i], c[3 * i + 1], c[3 * i + 2]);
      assert.ok(r >= 1 - 1e-5 && r <= 30 + 1e-4, `clipped norm ${r}`);
    }
  });

  test("perturbation: z > 0 and the x noise has the same scale as z's, (1 + τ)^m times σ-sized noise", () => {
    const x = sampleToy("moons", 400, new T.RandomGenerator(5)), y = perturb(x, new T.RandomGenerator(6), { M: 1e-12 }).toTypedArray();
    const xv = x.toTypedArray();
    let sx = 0, sz = 0;
    for (let i = 0; i < 400; i++) {
      assert.ok(y[3 * i + 2] > 0, "z > 0");
      sx += (y[3 * i] - xv[2 * i]) ** 2 + (y[3 * i + 1] - xv[2 * i + 1]) ** 2;
      sz += y[3 * i + 2] ** 2;
    }
    // with m ≈ 0: E||ε_x||² = 2 σ², E z² = σ² (σ = 0.01)
    assert.ok(Math.abs(sx / 400 / 2e-4 - 1) < 0.25 && Math.abs(sz / 400 / 1e-4 - 1) < 0.25, `${sx / 400} ${sz / 400}`);
    assert.deepEqual(perturb(x, new T.RandomGenerator(6)).shape, [400, 3]);
  });

  test("a tiny training run lowers Algorithm 1's loss", () => {
    const gen = new T.RandomGenerator(7), net = new TimeMLP(3, { hidden: 32, layers: 2, embDim: 16, generator: gen }), f = timeMlpField(net);
    const losses = fit(net, () => pfgmLoss(f, sampleToy("8gaussians", 64, gen), sampleToy("8gaussians", 128, gen), gen, { gamma: 0.01 }), { steps: 150, lr: 3e-3 });
    const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / a.length;
    assert.ok(mean(losses.subarray(-20)) < 0.7 * mean(losses.subarray(0, 20)), `loss ${mean(losses.subarray(0, 20))} -> ${mean(losses.subarray(-20))}`);
  });

  test("bad input: one clear error each", () => {
    const data = T.tensor([[0, 0], [1, 1]], { dtype: "float64" }), f = (p: T.Tensor) => normalizedFieldTarget(p, data, 0);
    const x0 = T.tensor([[1, 2]], { dtype: "float64" });
    assert.throws(() => pfgmSample(f, x0, { steps: 4, zMax: 0 }), /zMax must be a finite number > 0, got 0/);
    assert.throws(() => pfgmSample(f, x0, { steps: 4, zMax: -3 }), /zMax must be a finite number > 0, got -3/);
    assert.throws(() => pfgmSample(f, x0, { steps: 0 }), /steps must be a positive integer, got 0/);
    assert.throws(() => pfgmSample(f, x0, { steps: 2, zMax: 1, zMin: 2 }), /zMin must be < zMax/);
    assert.throws(() => poissonField(T.tensor([[1, 2]], { dtype: "float64" }), data), /xt must have N \+ 1 = 3 columns for data of N = 2, got 2/);
    assert.throws(() => pfgmSample(f, T.tensor([[1, 2, 3]], { dtype: "float64" }), { steps: 1 }), /xt must have N \+ 1 = 3 columns/);
    assert.throws(() => pfgmConfig({ gamma: -1 }), /gamma must be a finite number >= 0, got -1/);
    assert.throws(() => pfgmPrior(0, 2, new T.RandomGenerator(0)), /n must be a positive integer, got 0/);
  });
});

describe("rectified flow: one-step distillation", () => {
  test("distillLoss = mean over rows of ||(z1 - z0) - v(z0, 0)||², by hand", () => {
    const z0 = T.tensor([[1, 0], [0, 2]], { dtype: "float64" }), z1 = T.tensor([[3, 1], [1, 1]], { dtype: "float64" });
    // v(x, t) = 2x + t: at t = 0, v(z0) = (2, 0) and (0, 4); targets (2, 1) and (1, -1): errors 1 and 1 + 25
    const v = (x: T.Tensor, t: T.Tensor) => T.add(T.mul(x, 2), t.reshape(-1, 1));
    assert.ok(Math.abs(distillLoss(v, z0, z1).item() - 27 / 2) < 1e-12);
  });
});
