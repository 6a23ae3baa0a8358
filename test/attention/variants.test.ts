// The kernelized attention variants: linear (Katharopoulos et al. 2020), performer (FAVOR+, Choromanski et
// al. 2021) and transnormer (Qin et al. 2022). For each: the causal parallel form equals token-by-token
// decoding with the recurrent state; a TransformerLM with `attention: "<name>"` trains and its cached greedy
// decoding equals full recomputation. Linear and TransNormer layers match PyTorch float64 references
// (scripts/golden/attention_variants.py); FAVOR+'s error against exact softmax attention falls with m.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { LinearAttention } from "../../src/nn/attention/linear.js";
import { PerformerAttention, favorAttention } from "../../src/nn/attention/performer.js";
import { makeTransNormer } from "../../src/nn/attention/transnormer.js";
import type { Attention, AttentionConfig } from "../../src/nn/attention/types.js";
import type { Module } from "../../src/nn/module.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { gpt2Config } from "../../src/models/config.js";
import { generate } from "../../src/generate/generate.js";
import { AdamW, defaultParamGroups } from "../../src/train/optim.js";
import { attentionConfig, loadGolden, maxRelError, toTensor } from "../helpers/golden.js";
import { forEachBackend } from "../helpers/backends.js";

const cfg = (o: Partial<AttentionConfig> = {}): AttentionConfig => ({
  dModel: 16, nHeads: 4, nKvHeads: 2, bias: true, rope: new T.Rotary({ theta: 10000, trainLen: 32 }), scale: 0.5,
  layer: 0, nLayers: 2, maxSeqLen: 32, ...o,
});

function randomize(m: Module, g: T.RandomGenerator): void {
  for (const p of m.parameters()) p.data.set(T.randn(p.shape, { generator: g, std: 0.3 }).toTypedArray());
}

const VARIANTS: [string, () => Attention][] = [
  ["linear (chunk 4)", () => new LinearAttention(cfg(), { chunk: 4 })],
  ["performer (m = 32, chunk 4)", () => new PerformerAttention(cfg(), { features: 32, chunk: 4 })],
  ["transnormer NormAttention (chunk 4)", () => makeTransNormer(cfg({ layer: 1 }), { chunk: 4 })],
  ["transnormer DiagAttention (block 4)", () => makeTransNormer(cfg({ layer: 0 }), { blockSize: 4 })],
];

describe("causal parallel form == recurrent decoding", () => {
  for (const [name, make] of VARIANTS) {
    it(name, () => {
      const m = make().eval();
      randomize(m, new T.RandomGenerator(1));
      const x = T.randn([2, 11, 16], { generator: new T.RandomGenerator(2) });
      T.noGrad(() => {
        const full = m.forward(x).toTypedArray();
        // Token by token, and in uneven pieces (a multi-token prefill continuing from the state).
        for (const pieces of [Array<number>(11).fill(1), [5, 1, 1, 4]]) {
          const state = m.newState(32);
          const outs: T.Tensor[] = [];
          let at = 0;
          for (const n of pieces) {
            outs.push(m.forward(x.narrow(1, at, n), T.SeqContext.decode(state)));
            at += n;
          }
          assert.equal(state.length, 11);
          const err = maxRelError(T.cat(outs, 1).toTypedArray(), full);
          assert.ok(err <= 1e-5, `${name}, pieces [${pieces}]: relative error ${err.toExponential(3)}`);
        }
      });
    });
  }
});

describe("TransformerLM with each variant", () => {
  for (const attention of ["linear", "performer", "transnormer"]) {
    const c = gpt2Config({ vocabSize: 12, dModel: 16, nLayers: 2, nHeads: 2, maxSeqLen: 80, attention });

    it(`${attention}: trains on a repeated sequence without NaN`, () => {
      const model = new TransformerLM(c, { generator: new T.RandomGenerator(3) });
      const seq = Array.from({ length: 17 }, (_, i) => 1 + (i % 5));
      const ids = T.tensor(Int32Array.from(seq.slice(0, 16)), { shape: [1, 16] });
      const targets = T.tensor(Int32Array.from(seq.slice(1)), { shape: [16] });
      const opt = new AdamW(defaultParamGroups(model, 0), { lr: 1e-2 });
      const losses: number[] = [];
      for (let step = 0; step < 8; step++) {
        model.zeroGrad();
        const loss = T.crossEntropy(model.forward(ids).logits.reshape(-1, c.vocabSize), targets);
        loss.backward();
        opt.step();
        losses.push(loss.item());
      }
      assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
      assert.ok(losses[7] < 0.7 * losses[0], `loss did not fall: ${losses.map((l) => l.toFixed(3)).join(" ")}`);
    });

    it(`${attention}: greedy decoding with the state == full recomputation (across position 64)`, () => {
      const model = new TransformerLM(c, { generator: new T.RandomGenerator(4) });
      const prompt = Array.from(T.randint(c.vocabSize, [58], { generator: new T.RandomGenerator(5) }).toTypedArray());
      const cached = generate(model, prompt, { maxNewTokens: 12, temperature: 0 });
      const full = generate(model, prompt, { maxNewTokens: 12, temperature: 0, noCache: true });
      assert.deepEqual(cached.ids, full.ids);
      assert.equal(cached.ids.length, 12);
    });
  }
});

describe("performer", () => {
  it("FAVOR+ error against exact softmax attention falls as the number of features m grows", () => {
    const ms = [16, 32, 64, 128, 256, 512], seeds = 6;
    const err = ms.map(() => 0);
    for (let s = 0; s < seeds; s++) {
      const g = new T.RandomGenerator(100 + s);
      const [q, k, v] = [0, 1, 2].map(() => T.randn([1, 2, 32, 16], { generator: g, std: 0.5 }));
      const exact = T.attention(q, k, v, { causal: true, scale: 0.25 });
      const norm = Math.sqrt(T.sum(T.square(exact)).item());
      ms.forEach((m, i) => {
        const approx = favorAttention(q, k, v, { features: m, generator: new T.RandomGenerator(1000 * s + m) });
        err[i] += Math.sqrt(T.sum(T.square(T.sub(approx, exact))).item()) / norm / seeds;
      });
    }
    console.log(`FAVOR+ mean relative error (${seeds} seeds): ${ms.map((m, i) => `m=${m}: ${err[i].toFixed(4)}`).join(", ")}`);
    const at = (m: number) => err[ms.indexOf(m)];
    assert.ok(at(512) < at(64) && at(64) < at(16), `error does not fall with m: ${err}`);
  });

  it("orthogonal projection blocks, seeded per layer, redrawn every N training passes only", () => {
    const make = () => new PerformerAttention(cfg({ layer: 1 }), { features: 24, redrawInterval: 2 });
    const m = make();
    randomize(m, new T.RandomGenerator(6));
    const p0 = Array.from(m.projection.toTypedArray());
    assert.deepEqual(Array.from(make().projection.toTypedArray()), p0, "same seed and layer, same projection");
    const d = m.headDim, w = m.projection.toTypedArray();
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < i; j++) {
        let dot = 0, ni = 0, nj = 0;
        for (let t = 0; t < d; t++) { dot += w[i * d + t] * w[j * d + t]; ni += w[i * d + t] ** 2; nj += w[j * d + t] ** 2; }
        assert.ok(Math.abs(dot) < 1e-5 * Math.sqrt(ni * nj), `rows ${i}, ${j} of a block are not orthogonal`);
      }
    }
    const x = T.randn([1, 3, 16], { generator: new T.RandomGenerator(7) });
    T.noGrad(() => {
      m.forward(x);
      m.forward(x);
      m.eval().forward(x);
      assert.deepEqual(Array.from(m.projection.toTypedArray()), p0, "no redraw before the 3rd training pass");
      m.train().forward(x);
    });
    assert.notDeepEqual(Array.from(m.projection.toTypedArray()), p0, "redrawn at the 3rd training pass");
  });

  it("projection and redraw schedule travel in the state dict: a loaded copy redraws like the original", () => {
    const make = () => new PerformerAttention(cfg({ layer: 0 }), { features: 24, redrawInterval: 2 });
    const a = make();
    randomize(a, new T.RandomGenerator(8));
    const x = T.randn([1, 3, 16], { generator: new T.RandomGenerator(9) });
    T.noGrad(() => { for (let i = 0; i < 5; i++) a.forward(x); });  // redraws at passes 2 and 4
    const sd = a.stateDict();
    assert.ok("projection" in sd && "draw_state" in sd, `buffers missing from the state dict: ${Object.keys(sd).join(", ")}`);
    const b = make();
    b.loadStateDict(sd);
    assert.equal(b.passes, 5);
    assert.deepEqual(Array.from(b.projection.toTypedArray()), Array.from(a.projection.toTypedArray()));
    T.noGrad(() => {
      for (let i = 0; i < 3; i++) {  // pass 6 redraws again: same draw in both
        assert.deepEqual(Array.from(b.forward(x).toTypedArray()), Array.from(a.forward(x).toTypedArray()), `pass ${6 + i}`);
      }
    });
    assert.deepEqual(Array.from(b.projection.toTypedArray()), Array.from(a.projection.toTypedArray()));
    assert.notDeepEqual(Array.from(make().projection.toTypedArray()), Array.from(a.projection.toTypedArray()), "the loaded projection is not the initial draw");
  });
});

interface VariantCase { name: string; variant: "linear" | "transnormer"; config: AttentionConfig; options: Record<string, number> }

const golden = loadGolden(new URL("../fixtures/attention_variants.safetensors", import.meta.url).pathname);

forEachBackend("attention variants vs PyTorch golden fixtures", () => {
  for (const c of golden.cases as unknown as VariantCase[]) {
    it(c.name, () => {
      const cfg = attentionConfig(c.config as unknown as Record<string, unknown>);
      const m = c.variant === "linear" ? new LinearAttention(cfg, c.options) : makeTransNormer(cfg, c.options);
      const prefix = `${c.name}.param.`;
      const names = Object.keys(golden.tensors).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
      m.loadStateDict(Object.fromEntries(names.map((n) => [n, toTensor(golden.tensors[prefix + n])])));
      const x = toTensor(golden.tensors[`${c.name}.x`], "float32", true);
      const out = m.forward(x);
      T.sum(T.mul(out, toTensor(golden.tensors[`${c.name}.gout`]))).backward();
      const params = new Map(m.namedParameters());
      const checks: [string, T.Tensor | null][] = [["out", out], ["grad.x", x.grad], ...names.map((n): [string, T.Tensor | null] => [`grad.${n}`, params.get(n)!.grad])];
      for (const [what, got] of checks) {
        assert.ok(got, `${c.name} ${what}: missing`);
        const err = maxRelError(got.toTypedArray(), golden.tensors[`${c.name}.${what}`].data as Float64Array);
        assert.ok(err <= 1e-4, `${c.name} ${what}: relative error ${err.toExponential(3)}`);
      }
    });
  }
});
