// Self-consuming loops (Alemohammad et al. 2023): the precision / recall of Kynkäänniemi et al. 2019 on
// hand-worked point sets, the loop's bookkeeping (who trains on what), and the paper's Gaussian analysis
// (sec. 4): refitting a Gaussian on its own n samples shrinks its variance towards 0 over generations
// (log σ² drifts by E log(χ²_{n-1} / (n-1)) < 0 per generation), while fresh real data holds it.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as T from "../../src/index.js";
import { gaussianFit } from "../../src/generative/metrics.js";
import { madLoop, precisionRecall, type Sampler } from "../../src/generative/mad.js";

const pts = (xs: number[][]) => T.tensor(xs);

describe("MAD loops", () => {
  test("precision / recall by hand: k-NN balls of the other set", () => {
    const real = pts([[0, 0], [1, 0], [2, 0], [3, 0]]);  // k = 1: every real radius is 1
    // fake radii (k = 1) are 0.2: only real (0, 0) is covered -> recall 1/4; all fake within 1 of (0, 0)
    assert.deepEqual(precisionRecall(real, pts([[0, 0], [0.2, 0], [0.4, 0]]), { k: 1 }), { precision: 1, recall: 0.25 });
    // (10, 0) is outside every real ball -> precision 2/3; its own radius (9.01, to (1, 0.5)) covers all real points
    assert.deepEqual(precisionRecall(real, pts([[0.5, 0], [10, 0], [1, 0.5]]), { k: 1 }), { precision: 2 / 3, recall: 1 });
    assert.throws(() => precisionRecall(real, pts([[0, 0], [1, 1]]), { k: 3 }), /k must be an integer in \[1, 1\]/);
    assert.throws(() => precisionRecall(real, T.zeros([4, 3])), /real has 2 features per point, fake has 3/);
  });

  test("bookkeeping: generation 0 on real data, then fresh share + the previous generation's samples", () => {
    const calls: { real: number[]; synth: [number, number][]; data: number[][] } = { real: [], synth: [], data: [] };
    const fill = (n: number, v: number) => T.full([n, 2], v);
    const run = (freshFraction: number) => {
      calls.real = []; calls.synth = []; calls.data = [];
      return madLoop({
        generations: 4, trainSize: 10, freshFraction,
        real: (n) => { calls.real.push(n); return fill(n, -1); },
        train: (data, t): Sampler => {
          calls.data.push(Array.from(data.toTypedArray()).filter((_, i) => i % 2 === 0));
          return (n) => { calls.synth.push([t, n]); return fill(n, 100 + t); };
        },
        evaluate: (s, t) => ({ t, first: s(1, new T.RandomGenerator(0)).toTypedArray()[0] }),
      });
    };
    const r = run(0.3);
    assert.deepEqual(r.generations.map((g) => [g.generation, g.realCount, g.syntheticCount]), [[0, 10, 0], [1, 3, 7], [2, 3, 7], [3, 3, 7]]);
    assert.deepEqual(calls.real, [10, 3, 3, 3]);
    assert.deepEqual(calls.data[2], [...new Array(3).fill(-1), ...new Array(7).fill(101)]);  // generation 2 eats generation 1's samples
    assert.deepEqual(r.generations.map((g) => g.scores.first), [100, 101, 102, 103]);
    assert.equal(r.samplers.length, 1);
    run(0);
    assert.deepEqual(calls.real, [10]);
    assert.deepEqual(calls.data[3], new Array(10).fill(102));
    run(1);
    assert.deepEqual(calls.real, [10, 10, 10, 10]);
    assert.ok(calls.synth.every(([, n]) => n === 1), "no synthetic training points when freshFraction is 1");
    for (const f of [-0.1, 1.5, NaN]) {
      assert.throws(() => madLoop({ generations: 2, trainSize: 4, freshFraction: f, real: (n) => fill(n, 0), train: () => (n) => fill(n, 0) }), /freshFraction must be in \[0, 1\], got/);
    }
    assert.throws(() => madLoop({ generations: 0, trainSize: 4, freshFraction: 0, real: (n) => fill(n, 0), train: () => (n) => fill(n, 0) }), /generations must be a positive integer, got 0/);
  });

  test("the paper's Gaussian loop: the refitted covariance collapses without fresh data, not with half fresh data", () => {
    // a 2D Gaussian "generative model": the sample mean and covariance, sampled through the Cholesky factor
    const fitGaussian = (data: T.Tensor): Sampler => {
      const { mean, cov } = gaussianFit(data);
      const l00 = Math.sqrt(cov[0]), l10 = cov[2] / l00, l11 = Math.sqrt(Math.max(cov[3] - l10 * l10, 0));
      return (n, gen) => {
        const z = new Float32Array(2 * n);
        gen.normal(z);
        for (let i = 0; i < n; i++) {
          const a = z[2 * i], b = z[2 * i + 1];
          z[2 * i] = mean[0] + l00 * a;
          z[2 * i + 1] = mean[1] + l10 * a + l11 * b;
        }
        return T.tensor(z, { shape: [n, 2] });
      };
    };
    const trace = (s: Sampler) => { const c = gaussianFit(s(4000, new T.RandomGenerator(9))).cov; return c[0] + c[3]; };
    // n = 10: log σ² drifts by about -0.12 per generation with std 0.47, so after 400 generations it sits
    // near -47 ± 9: a trace below 1e-3 (log -6.9) is more than 4 standard deviations from failing
    const run = (freshFraction: number) => madLoop({
      generations: 400, trainSize: 10, freshFraction, seed: 1,
      real: (n, gen) => T.randn([n, 2], { generator: gen }), train: fitGaussian,
      evaluate: (s, t): Record<string, number> => (t >= 300 ? { trace: trace(s) } : {}),
    }).generations;
    const synthetic = run(0), fresh = run(0.5);
    assert.ok(synthetic[399].scores.trace < 1e-3, `fully synthetic trace ${synthetic[399].scores.trace}`);
    const tail = fresh.slice(300).reduce((s, g) => s + g.scores.trace, 0) / 100;
    assert.ok(tail > 0.5 && tail < 4, `fresh-data loop mean trace over generations 300-399: ${tail} (real data: 2)`);
  });
});
