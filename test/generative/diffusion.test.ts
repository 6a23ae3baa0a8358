// Diffusion schedules and one step of each sampler against scripts/golden/diffusion.py (the papers'
// formulas in numpy/torch, float64): linear and cosine β / ᾱ, DDPM's ancestral step (σ² = β and β̃),
// DDIM (η = 0 and 1, skipped steps, the step subsequences), the VP probability-flow ODE (Euler, Heun),
// the sinusoidal timestep embedding; and the bad input (T <= 0, out-of-range steps).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import * as T from "../../src/index.js";
import { diffusionSchedule } from "../../src/generative/schedules.js";
import { ddpmLoss, ddpmSample, ddpmStep } from "../../src/generative/ddpm.js";
import { ddimSample, ddimStep, ddimTimesteps } from "../../src/generative/ddim.js";
import { pfOdeSample, pfOdeStep, VP_DEFAULT } from "../../src/generative/pf-ode.js";
import { timestepEmbedding } from "../../src/generative/time-mlp.js";

const g = JSON.parse(readFileSync(path.join(import.meta.dirname, "..", "fixtures", "generative", "diffusion.json"), "utf8"));
const f64 = (v: number[], shape: number[]) => T.tensor(Float64Array.from(v), { shape });
function close(what: string, got: ArrayLike<number>, want: number[], tol = 1e-6): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol * Math.abs(want[i]) + 1e-12)) assert.fail(`${what}[${i}]: got ${got[i]}, want ${want[i]}`);
  }
}
const { shape } = g.inputs;
const xt = f64(g.inputs.xt, shape), eps = f64(g.inputs.eps, shape), z = f64(g.inputs.z, shape);
const data = (t: T.Tensor) => t.toTypedArray() as Float64Array;

describe("diffusion schedules", () => {
  test("linear (Ho et al.) and cosine (Nichol & Dhariwal eq. 17) β and ᾱ, T = 10 and 1000 (<= 1e-6 relative)", () => {
    for (const c of g.schedules) {
      const s = diffusionSchedule(c.kind, c.T);
      close(`${c.kind} T=${c.T} betas`, s.betas, c.betas);
      close(`${c.kind} T=${c.T} alphaBars`, s.alphaBars, c.alphaBars);
    }
  });

  test("T <= 0, a non-integer T and an unknown kind are refused with one clear error", () => {
    for (const bad of [0, -5, 2.5]) assert.throws(() => diffusionSchedule("linear", bad), /T \(the number of diffusion steps\) must be a positive integer, got/);
    assert.throws(() => diffusionSchedule("sigmoid" as "linear", 10), /kind must be "linear" or "cosine", got "sigmoid"/);
  });
});

describe("one sampler step vs the golden", () => {
  const s = diffusionSchedule("linear", 1000);
  test("DDPM ancestral step (Algorithm 2), σ² = β_t and β̃_t, t = 500, 1, 0", () => {
    for (const c of g.ddpm) close(`ddpm t=${c.t} ${c.variance}`, data(ddpmStep(s, xt, c.t, eps, z, c.variance)), c.x);
  });
  test("DDIM step (eq. 12) with η = 0 and 1, skipping steps and to x_0", () => {
    for (const c of g.ddim) close(`ddim ${c.t}->${c.tPrev} eta=${c.eta}`, data(ddimStep(s, xt, c.t, c.tPrev, eps, z, c.eta)), c.x);
  });
  test("DDIM step subsequences (uniform, quad) equal the DDIM repository's", () => {
    for (const c of g.ddimTimesteps) assert.deepEqual(ddimTimesteps(c.T, c.steps, c.kind), c.seq);
  });
  test("a whole DDIM run (quad, 50 steps: a repeated step) equals the DDIM repository's loop", () => {
    const r = g.ddimRun;
    assert.equal(r.repeats, 1);
    const toy = (x: T.Tensor, t: T.Tensor) => T.add(T.mul(T.tanh(x), 0.5), T.mul(t.reshape(-1, 1).to("float64"), 0.2 / r.T));
    const out = ddimSample(toy, s, g.inputs.shape, new T.RandomGenerator(0), { steps: r.steps, skip: r.kind, xT: xt });
    close("ddim run", data(out), r.x0);
  });
  test("probability-flow ODE of the VP SDE (eq. 13): one Euler and one Heun step", () => {
    const model = (x: T.Tensor, t: T.Tensor) => T.add(T.mul(T.tanh(x), 0.5), T.mul(t.reshape(-1, 1), 0.2));
    for (const c of g.pfode) {
      close(`euler ${c.t}`, data(pfOdeStep(VP_DEFAULT, model, xt, c.t, c.tNext, "euler")), c.euler);
      close(`heun ${c.t}`, data(pfOdeStep(VP_DEFAULT, model, xt, c.t, c.tNext, "heun")), c.heun);
    }
  });
  test("sinusoidal timestep embedding = ADM's timestep_embedding", () => {
    close("emb", data(timestepEmbedding(f64(g.embedding.t, [4]), g.embedding.dim)), g.embedding.emb);
  });
  test("out-of-range steps are refused", () => {
    assert.throws(() => ddpmStep(s, xt, 1000, eps, z), /t must be an integer step in \[0, 1000\), got 1000/);
    assert.throws(() => ddimStep(s, xt, 10, 10, eps, null, 0), /tPrev must be an integer in \[-1, 10\)/);
    assert.throws(() => ddimStep(s, xt, 10, 5, eps, null, 1), /needs the noise z/);
    assert.throws(() => ddimTimesteps(100, 0), /steps must be an integer in \[1, 100\]/);
  });
});

describe("samplers run end to end", () => {
  test("with the exact ε of a Gaussian target, DDPM, DDIM and the PF-ODE land on N(0, c² I)", () => {
    // Data N(0, c² I): x_t ~ N(0, (ᾱ c² + 1 - ᾱ) I) and the optimal ε(x_t) = sqrt(1 - ᾱ) x_t / (ᾱ c² + 1 - ᾱ).
    const c2 = 0.25, s = diffusionSchedule("linear", 200), n = 4000;
    const eps = (ab: (t: number) => number) => (x: T.Tensor, t: T.Tensor) => {
      const a = ab(t.toTypedArray()[0] as number);
      return T.mul(x, Math.sqrt(1 - a) / (a * c2 + 1 - a));
    };
    const discrete = eps((t) => s.alphaBars[t]);
    const variance = (x: T.Tensor) => { const v = x.toTypedArray() as Float32Array; let q = 0; for (const e of v) q += e * e; return q / v.length; };
    const gen = new T.RandomGenerator(3);
    for (const [name, x] of [
      ["ddpm", ddpmSample(discrete, s, [n, 2], gen)],
      ["ddim 20 steps", ddimSample(discrete, s, [n, 2], gen, { steps: 20 })],
      ["pf-ode heun 50", pfOdeSample(eps((t) => Math.exp(-(0.1 * t + 0.5 * 19.9 * t * t))), [n, 2], gen, { steps: 50, method: "heun" })],
    ] as const) {
      const v = variance(x);
      assert.ok(Math.abs(v - c2) < 0.03, `${name}: sample variance ${v}, expected ${c2}`);
    }
  });

  test("ddpmLoss is the mean squared noise error (an all-zero denoiser gives E||ε||² = d)", () => {
    const s = diffusionSchedule("cosine", 100), x0 = T.zeros([2000, 3]);
    const l = ddpmLoss((x) => T.mul(x, 0), s, x0, new T.RandomGenerator(0)).item();
    assert.ok(Math.abs(l - 3) < 0.15, `loss ${l}`);
  });
});
