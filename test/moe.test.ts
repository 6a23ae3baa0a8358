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
