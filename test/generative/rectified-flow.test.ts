// Rectified flow (Liu et al. 2022): the loss at fixed t against a hand-computed value, Euler integration
// and the straightness of an exactly straight field, and a tiny training run whose loss falls.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as T from "../../src/index.js";
import { sampleToy } from "../../src/data/toys.js";
import { fit } from "../../src/generative/fit.js";
import { eulerFlow, rectifiedFlowLoss, rectifiedFlowLossAt, reflowPairs } from "../../src/generative/rectified-flow.js";
import { TimeMLP } from "../../src/generative/time-mlp.js";

describe("rectified flow", () => {
  test("loss at fixed t: ||(x1 - x0) - v(t x1 + (1 - t) x0, t)||² averaged over rows, by hand", () => {
    const x0 = T.tensor([[0, 0], [1, 2]], { dtype: "float64" }), x1 = T.tensor([[2, 2], [1, 0]], { dtype: "float64" });
    // v(x, t) = x + t: row 0 at t = 0.5: x_t = (1, 1), v = (1.5, 1.5), target (2, 2): error 0.25 + 0.25
    // row 1 at t = 0.25: x_t = (1, 1.5), v = (1.25, 1.75), target (0, -2): 1.5625 + 14.0625
    const v = (x: T.Tensor, t: T.Tensor) => T.add(x, t.reshape(-1, 1));
    const l = rectifiedFlowLossAt(v, x0, x1, [0.5, 0.25]).item();
    assert.ok(Math.abs(l - (0.5 + 15.625) / 2) < 1e-12, `loss ${l}`);
    assert.throws(() => rectifiedFlowLossAt(v, x0, T.zeros([3, 2]), [0, 0]), /x0 and x1 must have the same shape/);
  });

  test("Euler on a constant field is exact in one step, with straightness 0; a rotation is not straight", () => {
    const x0 = T.tensor([[1, 0], [0, 3]]);
    const r = eulerFlow((x) => T.mul(T.onesLike(x), 2), x0, 1);
    assert.deepEqual(Array.from(r.x1.toTypedArray()), [3, 2, 2, 5]);
    assert.equal(r.straightness, 0);
    const rot = eulerFlow((x) => T.stack([T.neg(x.narrow(1, 1, 1).squeeze(1)), x.narrow(1, 0, 1).squeeze(1)], 1), x0, 50);
    assert.ok(rot.straightness > 0.1, `rotation straightness ${rot.straightness}`);
    assert.throws(() => eulerFlow((x) => x, x0, 0), /steps must be a positive integer, got 0/);
  });

  test("a tiny 1-RF run (N(0, I) -> moons) lowers its loss; ReFlow pairs keep the source points", () => {
    const gen = new T.RandomGenerator(0);
    const net = new TimeMLP(2, { hidden: 64, layers: 2, embDim: 16, timeScale: 100, generator: gen });
    const v = (x: T.Tensor, t: T.Tensor) => net.forward(x, t);
    const losses = fit(net, () => rectifiedFlowLoss(v, sampleToy("gaussian", 128, gen), sampleToy("moons", 128, gen), gen), { steps: 300, lr: 3e-3 });
    const mean = (a: Float64Array) => a.reduce((s, x) => s + x, 0) / a.length;
    const first = mean(losses.subarray(0, 20)), last = mean(losses.subarray(-20));
    // the loss keeps an irreducible part (Var(X1 - X0 | X_t) > 0 where paths cross), so it cannot fall to 0
    assert.ok(last < 0.85 * first, `loss ${first} -> ${last}`);
    const z0 = sampleToy("gaussian", 16, gen), pairs = reflowPairs(v, z0, 4);
    assert.equal(pairs.x0, z0);
    assert.deepEqual(pairs.x1.shape, [16, 2]);
  });
});
