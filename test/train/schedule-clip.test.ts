// Learning-rate schedule values and global-norm gradient clipping.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { makeSchedule } from "../../src/train/schedule.js";
import { clipGradNorm } from "../../src/train/clip.js";

const near = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${a} != ${b}`);

describe("schedule", () => {
  it("cosine: nanoGPT get_lr at warmup start/end, decay midpoint and end, flat after", () => {
    const lr = makeSchedule({ kind: "cosine", lr: 1, minLr: 0.1, warmupSteps: 10, decaySteps: 110 });
    near(lr(0), 1 / 11); // lr * (it + 1) / (warmup + 1)
    near(lr(9), 10 / 11);
    near(lr(10), 1); // cos(0): the peak
    near(lr(60), 0.55); // cos(pi / 2): halfway between lr and minLr
    near(lr(35), 0.1 + 0.5 * (1 + Math.cos(Math.PI / 4)) * 0.9);
    near(lr(110), 0.1);
    near(lr(1000), 0.1);
  });
  it("wsd: warmup, the peak held to decayStart, a linear fall to minLr, flat after", () => {
    const lr = makeSchedule({ kind: "wsd", lr: 1, minLr: 0.1, warmupSteps: 10, decayStart: 80, decaySteps: 110 });
    near(lr(0), 1 / 11);
    near(lr(10), 1);
    near(lr(79), 1);
    near(lr(80), 1);
    near(lr(95), 0.1 + 0.5 * 0.9); // halfway through the cooldown
    near(lr(110), 0.1);
    near(lr(500), 0.1);
    assert.throws(() => makeSchedule({ kind: "wsd", lr: 1, minLr: 0, warmupSteps: 10, decayStart: 5, decaySteps: 20 }), /schedule\.decayStart is 5; expected an integer >= warmupSteps \(10\)/);
    assert.throws(() => makeSchedule({ kind: "wsd", lr: 1, minLr: 0, warmupSteps: 0, decayStart: 20, decaySteps: 20 }), /schedule\.decaySteps is 20; expected an integer > decayStart \(20\)/);
  });
  it("constant, and validation names the field", () => {
    assert.equal(makeSchedule({ kind: "constant", lr: 3e-4 })(12345), 3e-4);
    assert.throws(() => makeSchedule({ kind: "constant", lr: 0 }), /schedule\.lr is 0; expected a finite number > 0/);
    assert.throws(() => makeSchedule({ kind: "cosine", lr: 1, minLr: 2, warmupSteps: 0, decaySteps: 5 }), /schedule\.minLr/);
    assert.throws(() => makeSchedule({ kind: "cosine", lr: 1, minLr: 0, warmupSteps: 5, decaySteps: 5 }), /schedule\.decaySteps is 5; expected an integer > warmupSteps/);
    assert.throws(() => makeSchedule({ kind: "cosine", lr: 1, minLr: 0, warmupSteps: 1.5, decaySteps: 5 }), /schedule\.warmupSteps/);
    assert.throws(() => makeSchedule({ kind: "linear", lr: 1 } as never), /schedule\.kind/);
  });
});

describe("clipGradNorm", () => {
  const setup = () => {
    const a = T.zeros([2]).requiresGrad_(), b = T.zeros([1, 1]).requiresGrad_(), c = T.zeros([3]).requiresGrad_();
    a.grad = T.tensor([3, 4]);
    b.grad = T.tensor([[12]]);
    return { a, b, c }; // c has no grad
  };
  it("returns the total norm and scales every grad by maxNorm / (norm + 1e-6) when above", () => {
    const { a, b, c } = setup();
    assert.equal(clipGradNorm([a, b, c, a], 6.5), 13); // sqrt(9 + 16 + 144); a repeated (tied) counts once
    const s = 6.5 / (13 + 1e-6);
    assert.deepEqual(Array.from(a.grad!.data), [Math.fround(3 * Math.fround(s)), Math.fround(4 * Math.fround(s))]);
    assert.deepEqual(Array.from(b.grad!.data), [Math.fround(12 * Math.fround(s))]);
    assert.equal(c.grad, null);
  });
  it("leaves grads alone when the norm is below maxNorm", () => {
    const { a, b } = setup();
    const ga = a.grad, gb = b.grad;
    assert.equal(clipGradNorm([a, b], 20), 13);
    assert.equal(a.grad, ga);
    assert.equal(b.grad, gb);
    assert.throws(() => clipGradNorm([a], 0), /maxNorm must be a finite number > 0/);
  });
});
