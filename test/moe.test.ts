// Mixture-of-experts FFN (src/nn/moe/):
// - against PyTorch (scripts/golden/moe.py, the papers' formulas token by token in float64): output,
//   balance and z losses, and the gradients of <out, gout>, of the balance loss and of the z-loss
//   w.r.t. the input and every parameter (router, experts, shared experts), <= 1e-5 relative, on every
//   backend; the
//   cases cover Mixtral, Switch and DeepSeek-V3 (sigmoid, a selection bias that changes choices, and
//   its update) gates, shared experts, and capacity dropping (metadata: slots dropped);
// - the balance loss is exactly 1 under uniform routing (zero router weights);
// - bad options and configs get one clear error each;
// - a TransformerLM with MoE layers trains (loss falls, aux terms logged by lmObjective) and its
//   KV-cached decode equals recomputation; the trainer writes the routing statistics to metrics.jsonl.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/index.js";
import { MoEFeedForward, moeAuxLoss, type MoEOptions } from "../src/nn/moe/moe.js";
import { TransformerLM } from "../src/models/transformer.js";
import { gpt2Config, llamaConfig, parseModelConfig } from "../src/models/config.js";
import { lmObjective } from "../src/train/objectives.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { train } from "../src/train/trainer.js";
import { readMetrics } from "../src/train/metrics.js";
import { TokenDataset } from "../src/data/batches.js";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadGolden, maxRelError, toTensor } from "./helpers/golden.js";
import { forEachBackend } from "./helpers/backends.js";

interface MoECase { name: string; options: MoEOptions; batch: number; seq: number; dropped: number }

const golden = loadGolden(new URL("./fixtures/moe.safetensors", import.meta.url).pathname);
const cases = golden.cases as unknown as MoECase[];
const want = (k: string) => golden.tensors[k].data as Float64Array;

function loaded(c: MoECase): MoEFeedForward {
  const m = new MoEFeedForward(c.options);
  const prefix = `${c.name}.param.`;
  const sd: Record<string, T.Tensor> = {};
  for (const k of Object.keys(golden.tensors)) if (k.startsWith(prefix)) sd[k.slice(prefix.length)] = toTensor(golden.tensors[k]);
  m.loadStateDict(sd);
  return m;
}

forEachBackend("MoE vs PyTorch golden fixtures", () => {
  for (const c of cases) {
    for (const target of ["out", "balance", "z"] as const) {
      it(`${c.name}: forward and the gradients of ${target}`, () => {
        const m = loaded(c);
        const x = toTensor(golden.tensors[`${c.name}.x`], "float32", true);
        const out = m.forward(x);
        const aux = m.lastAux!;
        const failures: string[] = [];
        const check = (what: string, got: ArrayLike<number>, w: ArrayLike<number>) => {
          const err = maxRelError(got, w);
          if (!(err <= 1e-5)) failures.push(`${what}: relative error ${err.toExponential(3)}`);
        };
        check("out", out.toTypedArray(), want(`${c.name}.out`));
        check("balance", [aux.balance.item()], want(`${c.name}.balance`));
        check("z", [aux.z.item()], want(`${c.name}.z`));
        assert.equal(Math.round(aux.dropped * c.batch * c.seq * c.options.topK), c.dropped, "dropped slots");
        const biasAfter = golden.tensors[`${c.name}.bias_after`];
        if (biasAfter) check("selection bias after the update", m.router.scoreBias!.toTypedArray(), biasAfter.data as Float64Array);
        const L = target === "out" ? T.sum(T.mul(out, toTensor(golden.tensors[`${c.name}.gout`]))) : aux[target];
        L.backward();
        const g = `${c.name}.grad.${target}`;
        check("grad x", x.grad!.toTypedArray(), want(`${g}.x`));
        for (const [n, p] of m.namedParameters()) {
          // an expert no token reached has no gradient: the golden's is zero
          check(`grad ${n}`, p.grad ? p.grad.toTypedArray() : new Float32Array(p.numel), want(`${g}.${n}`));
        }
        assert.ok(failures.length === 0, `${c.name} (${target}):\n  ${failures.join("\n  ")}`);
      });
    }
  }
  it("inference (eval, no graph: the routing loop and the fused expert kernel) gives the golden output of the dropless case, and the recorded eval path's output in every case", () => {
    const dropless = cases.filter((c) => c.options.capacityFactor === undefined && !c.options.bias);
    assert.ok(dropless.length >= 1);
    for (const c of cases) {
      const m = loaded(c);
      m.eval();
      const x = toTensor(golden.tensors[`${c.name}.x`], "float32");
      const fast = T.noGrad(() => m.forward(x)).toTypedArray(), recorded = m.forward(x).toTypedArray();
      const err = maxRelError(fast, recorded);
      assert.ok(err <= 1e-5, `${c.name}: inference vs recorded path: relative error ${err.toExponential(3)}`);
      if (dropless.includes(c)) {
        const e2 = maxRelError(fast, want(`${c.name}.out`));
        assert.ok(e2 <= 1e-5, `${c.name}: inference vs golden: relative error ${e2.toExponential(3)}`);
      }
    }
  });
  it("the dropping cases drop slots", () => {
    assert.ok(cases.filter((c) => c.options.capacityFactor !== undefined).every((c) => c.dropped > 0));
  });
});

describe("MoE routing and options", () => {
  it("the balance loss is exactly 1 under uniform routing (zero router weights), top-1 and top-2, softmax and sigmoid", () => {
    for (const [topK, gate] of [[1, "softmax"], [2, "topk_softmax"], [2, "sigmoid"]] as const) {
      const m = new MoEFeedForward({ dModel: 8, dFF: 16, ffn: "swiglu", bias: false, experts: 8, topK, gate });
      m.router.gate.weight.data.fill(0);
      m.forward(T.randn([3, 7, 8], { generator: new T.RandomGenerator(1) }));
      assert.equal(m.lastAux!.balance.item(), 1);
    }
  });

  it("eval mode is dropless and records no aux terms; moeAuxLoss reads and clears them", () => {
    const m = new MoEFeedForward({ dModel: 8, dFF: 16, ffn: "gelu", bias: true, experts: 4, topK: 2, capacityFactor: 0.25 });
    const x = T.randn([16, 8], { generator: new T.RandomGenerator(2) });
    m.forward(x);
    assert.ok(m.lastAux!.dropped > 0);
    const r = moeAuxLoss(m)!;
    assert.deepEqual(Object.keys(r.aux).sort(), ["moe_balance", "moe_dropped", "moe_load_0", "moe_load_1", "moe_load_2", "moe_load_3", "moe_z"]);
    assert.ok(Math.abs([0, 1, 2, 3].reduce((s, i) => s + r.aux[`moe_load_${i}`], 0) - 1) < 1e-12);
    assert.equal(moeAuxLoss(m), null);
    m.eval();
    m.forward(x);
    assert.equal(m.lastAux, null);
    assert.equal(m.capacity(16), Infinity);
  });

  it("bad options get one clear error each", () => {
    const base: MoEOptions = { dModel: 8, dFF: 16, ffn: "swiglu", bias: false, experts: 4, topK: 2 };
    assert.throws(() => new MoEFeedForward({ ...base, topK: 5 }), /MoE: topK 5 must be at most the number of experts 4/);
    assert.throws(() => new MoEFeedForward({ ...base, topK: 0 }), /MoE: topK must be an integer >= 1, got 0/);
    assert.throws(() => new MoEFeedForward({ ...base, capacityFactor: 0 }), /MoE: capacityFactor must be a finite number > 0, got 0/);
    assert.throws(() => new MoEFeedForward({ ...base, capacityFactor: -1 }), /capacityFactor must be a finite number > 0, got -1/);
    assert.throws(() => new MoEFeedForward({ ...base, sharedExperts: 1.5 }), /MoE: sharedExperts must be an integer >= 0, got 1.5/);
    const cfg = { vocabSize: 16, dModel: 8, nLayers: 1, nHeads: 2, maxSeqLen: 8 };
    assert.throws(() => gpt2Config({ ...cfg, moe: { experts: 2, topK: 3 } }), /model config: moe: topK must be at most the number of experts/);
    assert.throws(() => gpt2Config({ ...cfg, moe: { experts: 4, topK: 2, capacityFactor: 0 } }), /model config: moe\.capacityFactor: .*>0/);
    assert.throws(() => gpt2Config({ ...cfg, moe: { experts: 4, topK: 2 }, checkpointing: "block" }), /moe is not supported with checkpointing/);
  });
});

describe("moeFfn: the fused expert kernel", () => {
  // float64 reference written out here: per slot, the expert's FFN on its token row, times its gate
  function reference(x: Float64Array, d: number, f: number, tokens: Int32Array, offsets: Int32Array, gates: Float64Array, w: { w1: Float64Array[]; w3: Float64Array[] | null; w2: Float64Array[] }, act: (v: number) => number, rows: number): Float64Array {
    const y = new Float64Array(rows * d);
    for (let e = 0; e + 1 < offsets.length; e++) {
      for (let s = offsets[e]; s < offsets[e + 1]; s++) {
        const t = tokens[s], h = new Float64Array(f);
        for (let j = 0; j < f; j++) {
          let a = 0, b = 0;
          for (let i = 0; i < d; i++) { a += w.w1[e][j * d + i] * x[t * d + i]; if (w.w3) b += w.w3[e][j * d + i] * x[t * d + i]; }
          h[j] = act(a) * (w.w3 ? b : 1);
        }
        for (let i = 0; i < d; i++) {
          let o = 0;
          for (let j = 0; j < f; j++) o += w.w2[e][i * f + j] * h[j];
          y[t * d + i] += gates[s] * o;
        }
      }
    }
    return y;
  }
  const silu = (v: number) => v / (1 + Math.exp(-v));
  const tanhGelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  const cases = [
    { name: "SwiGLU, 1 token, 2 of 8 experts (decoding)", rows: 1, d: 40, f: 72, E: 8, gated: true, act: "silu" as const, fn: silu, experts: [5, 2] },
    { name: "GELU (tanh), 6 tokens, top-2 of 4 with an idle expert", rows: 6, d: 24, f: 36, E: 4, gated: false, act: "gelu_tanh" as const, fn: tanhGelu, experts: [0, 1, 1, 3, 0, 3, 3, 1, 0, 1, 3, 0] },
  ];
  for (const c of cases) {
    for (const name of T.availableBackends()) {
      it(`${c.name} [${name}]: equals a float64 reference`, () => {
        const g = new T.RandomGenerator(7);
        const k = c.experts.length / c.rows;
        const rnd = (n: number) => T.randn([n], { generator: g }).toTypedArray() as Float32Array;
        const x = rnd(c.rows * c.d), gates = rnd(c.rows * k);
        const w = { w1: Array.from({ length: c.E }, () => rnd(c.f * c.d)), w3: c.gated ? Array.from({ length: c.E }, () => rnd(c.f * c.d)) : null, w2: Array.from({ length: c.E }, () => rnd(c.d * c.f)) };
        // slots sorted by expert, in token order within an expert
        const order = c.experts.map((e, s) => [e, s]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        const tokens = Int32Array.from(order, ([, s]) => Math.floor(s / k)), sortedGates = Float32Array.from(order, ([, s]) => gates[s]);
        const offsets = new Int32Array(c.E + 1);
        for (const [e] of order) offsets[e + 1]++;
        for (let e = 0; e < c.E; e++) offsets[e + 1] += offsets[e];
        const y = new Float32Array(c.rows * c.d).fill(0.5);
        const prev = T.backend().name;
        T.setBackend(name);
        try {
          T.backend().moeFfn({ x, y, d: c.d, f: c.f, tokens, offsets, gates: sortedGates, w1: w.w1, w3: w.w3, w2: w.w2, act: c.act });
        } finally { T.setBackend(prev); }
        const f64 = (a: Float32Array) => Float64Array.from(a);
        const want = reference(f64(x), c.d, c.f, tokens, offsets, f64(sortedGates), { w1: w.w1.map(f64), w3: w.w3 && w.w3.map(f64), w2: w.w2.map(f64) }, c.fn, c.rows).map((v) => v + 0.5);
        const err = maxRelError(y, want);
        assert.ok(err <= 1e-5, `relative error ${err.toExponential(3)}`);
      });
    }
  }
  it("the op refuses a graph, shapes that do not fit and bad slots, with one clear error each", () => {
    const w = { w1: [T.randn([6, 4]), T.randn([6, 4])], w2: [T.randn([4, 6]), T.randn([4, 6])] };
    const slots = { tokens: new Int32Array([0, 1]), offsets: new Int32Array([0, 1, 2]), gates: new Float32Array([1, 1]) };
    const x = T.randn([2, 4]);
    assert.throws(() => T.moeFfn(T.randn([2, 4], { requiresGrad: true }), slots, w, "silu"), /moeFfn: inference only/);
    assert.throws(() => T.noGrad(() => T.moeFfn(T.randn([2, 5]), slots, w, "silu")), /moeFfn: input \[2, 5\] and 2 experts do not fit/);
    assert.throws(() => T.noGrad(() => T.moeFfn(x, { ...slots, offsets: new Int32Array([0, 2, 1]) }, w, "silu")), /moeFfn: slots must be 3 non-decreasing offsets/);
    assert.throws(() => T.noGrad(() => T.moeFfn(x, { ...slots, tokens: new Int32Array([0, 2]) }, w, "silu")), /token row in \[0, 2\)/);
  });
});

describe("TransformerLM with MoE layers", () => {
  it("MoE in every 2nd layer: trains (loss falls, aux logged) and KV-cached decoding equals recomputation", () => {
    const cfg = llamaConfig({ vocabSize: 31, dModel: 16, nLayers: 2, nHeads: 2, maxSeqLen: 24, dFF: 24, moe: { experts: 4, topK: 2, capacityFactor: 1.25, sharedExperts: 1, every: 2 } });
    assert.deepEqual(parseModelConfig(JSON.parse(JSON.stringify(cfg))), cfg);
    const model = new TransformerLM(cfg, { generator: new T.RandomGenerator(1) });
    assert.ok(!(model.blocks[0].mlp instanceof MoEFeedForward) && model.blocks[1].mlp instanceof MoEFeedForward);
    const g = new T.RandomGenerator(2);
    const batch = { x: T.randint(31, [2, 16], { generator: g }), y: T.randint(31, [2, 16], { generator: g }) };
    const opt = new AdamW(defaultParamGroups(model, 0.1), { lr: 1e-2 });
    const losses: number[] = [];
    for (let step = 0; step < 5; step++) {
      const r = lmObjective(model, batch);
      const aux = r.aux!;
      assert.ok(Number.isFinite(aux.moe_balance as number) && Number.isFinite(aux.moe_z as number) && "moe_load_3" in aux);
      assert.ok(r.loss.item() > (aux.lm as T.Tensor).item(), "the loss includes the aux terms");
      losses.push((aux.lm as T.Tensor).item());
      r.loss.backward();
      opt.step();
      opt.zeroGrad();
    }
    assert.ok(losses[4] < losses[0], `loss should fall on a repeated batch: ${losses}`);

    model.eval();
    T.noGrad(() => {
      const ids = T.randint(31, [1, 12], { generator: g });
      const full = model.forward(ids).logits;
      const state = model.newState();
      const steps = [T.narrow(ids, 1, 0, 5), ...Array.from({ length: 7 }, (_, i) => T.narrow(ids, 1, 5 + i, 1))];
      const outs = steps.map((s) => model.forward(s, T.SeqContext.decode(state)).logits);
      const err = maxRelError(T.cat(outs, 1).toTypedArray(), full.toTypedArray());
      assert.ok(err <= 1e-5, `stepwise vs full relative error ${err.toExponential(3)}`);
      assert.equal(lmObjective(model, { x: ids, y: ids }).aux, undefined, "eval: no aux terms");
    });
  });
});

describe("trainer with an MoE model", () => {
  it("metrics.jsonl holds the LM loss, balance and z losses, per-expert load and the dropped fraction", async () => {
    const config = gpt2Config({ vocabSize: 17, dModel: 16, nLayers: 2, nHeads: 2, maxSeqLen: 8, dFF: 16, moe: { experts: 4, topK: 2, capacityFactor: 0.5 } });
    const model = new TransformerLM(config, { generator: new T.RandomGenerator(3) });
    const ids = new Int32Array(400);
    new T.RandomGenerator(11).randint(ids, 17);
    const runDir = await fs.mkdtemp(path.join(os.tmpdir(), "tsformer-moe-"));
    try {
      await train({ model, modelConfig: config, train: new TokenDataset(ids), runDir, batchSize: 2, blockSize: 8, maxSteps: 2, accumSteps: 2, schedule: { kind: "constant", lr: 1e-3 }, evalIters: 1, progress: false });
      const steps = (await readMetrics(runDir)).filter((r) => r.type === "train");
      assert.equal(steps.length, 2);
      for (const r of steps) {
        const aux = r.aux as Record<string, number>;
        const load = [0, 1, 2, 3].map((i) => aux[`moe_load_${i}`]);
        assert.ok(Math.abs(load.reduce((a, b) => a + b) - 1) < 1e-9, `loads ${load}`);
        // capacity 0.5: at most half the slots fit, so at least half of them are dropped
        assert.ok(aux.moe_dropped >= 0.5 && aux.moe_dropped < 1, `dropped ${aux.moe_dropped}`);
        assert.ok(Number.isFinite(aux.moe_balance) && Number.isFinite(aux.moe_z) && aux.lm < (r.loss as number), JSON.stringify(aux));
      }
    } finally {
      await fs.rm(runDir, { recursive: true, force: true });
    }
  });
});
