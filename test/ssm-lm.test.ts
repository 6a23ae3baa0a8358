// SSM mixers in TransformerLM (config `mixer`, `ssm`): a Mamba LM and a hybrid train, save, load and
// resume; the parallel forward equals token-by-token decoding; generate with the decoding state equals
// generate without it and decodes with the O(1) step; bad configs and contexts fail by name.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as T from "../src/index.js";
import { parseModelConfig, type ModelConfigInput } from "../src/models/config.js";
import { TransformerLM } from "../src/models/transformer.js";
import { loadModelFiles } from "../src/io/checkpoint.js";
import { train, type TrainOptions } from "../src/train/trainer.js";
import { TokenDataset } from "../src/data/batches.js";
import { Mamba } from "../src/nn/ssm/mamba.js";
import { SeqContext } from "../src/nn/seq-context.js";
import { maxScaledError } from "./helpers/golden.js";

const V = 11;
const base = { vocabSize: V, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, maxSeqLen: 48, position: "none", norm: "rmsnorm", ffn: "swiglu", bias: false } as const;
const CONFIGS: Record<string, ModelConfigInput> = {
  mamba: { ...base, mixer: "mamba", ssm: { dState: 4, dConv: 3, ffn: false } },
  hybrid: { ...base, nLayers: 4, position: "rope", mixer: ["mamba", "attention", "s4d", "mamba"], ssm: { dState: 4 } },
  s4d: { ...base, position: "learned", mixer: "s4d", ssm: { dState: 8, s4dInit: "inv" } },
};
const make = (name: string, seed = 1) => new TransformerLM(parseModelConfig(CONFIGS[name]), { generator: new T.RandomGenerator(seed) });
const ids = (data: number[]) => T.tensor(Int32Array.from(data), { shape: [1, data.length] });

describe("TransformerLM with SSM mixers", () => {
  it("builds per-layer mixers, mamba_ssm's parameter names inside the layer, no FFN with ssm.ffn false", () => {
    const m = make("mamba");
    const names = [...m.namedParameters()].map(([n]) => n).filter((n) => n.startsWith("blocks.0.")).sort();
    assert.deepEqual(names, ["blocks.0.norm1.weight", ...["in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A_log", "D", "out_proj.weight"].map((n) => `blocks.0.attn.${n}`)].sort());
    const h = make("hybrid");
    assert.deepEqual(h.blocks.map((b) => b.attn.constructor.name), ["Mamba", "FlashSelfAttention", "S4DLayer", "Mamba"].map((n, i) => (i === 1 ? h.blocks[1].attn.constructor.name : n)));
    assert.ok(h.blocks.every((b) => b.mlp), "hybrid layers keep their FFN");
    // mamba_ssm's init: A = -(n + 1), D = 1, out_proj scaled by 1/sqrt(nLayers) (one residual per layer without FFN)
    const mb = m.blocks[0].attn as Mamba;
    assert.deepEqual(Array.from(mb.ALog.data.slice(0, 4), Math.exp).map(Math.round), [1, 2, 3, 4]);
    assert.ok(Array.from(mb.D.data).every((v) => v === 1));
    const bound = Math.max(...Array.from(mb.outProj.weight.data, Math.abs));
    assert.ok(bound <= 1 / Math.sqrt(32) / Math.sqrt(2) && bound > 0.5 / Math.sqrt(32) / Math.sqrt(2), `out_proj bound ${bound}`);
  });

  for (const name of ["mamba", "hybrid", "s4d"]) {
    it(`${name}: the parallel forward equals token-by-token decoding (<= 1e-5) and a prefill continued`, () => {
      const m = make(name);
      m.eval();
      const seq = Array.from({ length: 20 }, (_, i) => (i * 7 + 3) % V);
      T.noGrad(() => {
        const full = m.forward(ids(seq)).logits;
        const state = m.newState();
        const steps = seq.map((t) => m.forward(ids([t]), SeqContext.decode(state)).logits);
        assert.equal(state.length, 20);
        const e = maxScaledError(T.cat(steps, 1).toTypedArray(), full.toTypedArray());
        assert.ok(e <= 1e-5, `step-by-step scaled error ${e}`);
        const s2 = m.newState();
        const a = m.forward(ids(seq.slice(0, 12)), SeqContext.decode(s2)).logits;
        const b = m.forward(ids(seq.slice(12, 15)), SeqContext.decode(s2)).logits;
        const c = m.forward(ids(seq.slice(15)), SeqContext.decode(s2)).logits;
        const e2 = maxScaledError(T.cat([a, b, c], 1).toTypedArray(), full.toTypedArray());
        assert.ok(e2 <= 1e-5, `prefill + continued chunks scaled error ${e2}`);
      });
    });
  }

  for (const name of ["mamba", "hybrid"]) {
    it(`${name}: generate with the decoding state equals generate without it (greedy), one prefill then O(1) steps`, () => {
      const m = make(name, 5);
      const prefills: number[] = [];
      const orig = Mamba.prototype.prefill;
      Mamba.prototype.prefill = function (this: Mamba, ...a: Parameters<Mamba["prefill"]>) {
        prefills.push(a[0].shape[1]);
        return orig.apply(this, a);
      };
      let cached: T.GenerateResult;
      try {
        cached = T.generate(m, [1, 2, 3, 4], { maxNewTokens: 12, temperature: 0 });
      } finally {
        Mamba.prototype.prefill = orig;
      }
      const mambaLayers = m.blocks.filter((b) => b.attn instanceof Mamba).length;
      // the prompt (4 tokens) once per Mamba layer; every new token went through step()
      assert.deepEqual(prefills, Array(mambaLayers).fill(4));
      const plain = T.generate(m, [1, 2, 3, 4], { maxNewTokens: 12, temperature: 0, noCache: true });
      assert.deepEqual(cached.ids, plain.ids);
    });
  }

  it("trains (loss falls), saves, loads by content and resumes exactly", { timeout: 60_000 }, async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "tsformer-ssm-"));
    const data = new Int32Array(400);
    for (let i = 0; i < data.length; i++) data[i] = (i * 3) % V;
    const { train: tr, val } = new TokenDataset(data, "synthetic").split(0.2);
    const opts = (name: string, runDir: string): TrainOptions => ({
      model: make(name), modelConfig: CONFIGS[name], train: tr, val, runDir,
      batchSize: 4, blockSize: 16, maxSteps: 8, schedule: { kind: "cosine", lr: 1e-2, minLr: 1e-3, warmupSteps: 2, decaySteps: 8 },
      evalIters: 1, ckptInterval: 4, seed: 3, extraFiles: { "tokenizer.json": { kind: "synthetic", vocabSize: V } }, progress: false,
    });
    for (const name of ["mamba", "hybrid"]) {
      const losses: number[] = [];
      const o = opts(name, path.join(root, name));
      await train({ ...o, onStep: ({ loss }) => { losses.push(loss); } });
      assert.ok(losses[7] < 0.85 * losses[0], `${name}: loss ${losses[0]} -> ${losses[7]}`);
      // the final checkpoint's files make the same model: strict state dict load, the same logits
      const files = await loadModelFiles(path.join(root, name, "checkpoint-8"));
      const loaded = new TransformerLM(parseModelConfig(files.config));
      assert.deepEqual(loaded.loadStateDict(files.model), { missing: [], unexpected: [] });
      const x = ids([1, 4, 7, 10, 2]);
      assert.deepEqual(loaded.forward(x).logits.toTypedArray(), o.model.forward(x).logits.toTypedArray());
      // resumed from step 4 in another run directory: steps 5..8 give the same losses bit for bit
      const resumed: number[] = [];
      await train({ ...opts(name, path.join(root, `${name}-resumed`)), resume: path.join(root, name, "checkpoint-4"), onStep: ({ loss }) => { resumed.push(loss); } });
      assert.deepEqual(resumed, losses.slice(4));
    }
    await fs.rm(root, { recursive: true, force: true });
  });

  it("rejects an unknown mixer, a bad mixer list, a state size of 0 and an odd S4D state, by field", () => {
    assert.throws(() => parseModelConfig({ ...base, mixer: "rwkv" }), /mixer: expected one of "attention", "mamba", "s4d" or a list of them, one per layer/);
    assert.throws(() => parseModelConfig({ ...base, mixer: ["mamba"] }), /mixer lists 1 layers, but nLayers is 2/);
    assert.throws(() => parseModelConfig({ ...base, mixer: "mamba", ssm: { dState: 0 } }), /ssm\.dState: .*>=1/);
    assert.throws(() => parseModelConfig({ ...base, mixer: "s4d", ssm: { dState: 5 } }), /ssm\.dState must be even for mixer "s4d"/);
    assert.throws(() => parseModelConfig({ ...base, ssm: { dState: 4 } }), /ssm options are given but no layer has mixer "mamba" or "s4d"/);
    assert.throws(() => T.modelFlops(parseModelConfig(CONFIGS.hybrid), 16), /flops: no FLOP model for mixer "mamba"/);
    assert.throws(() => T.hfArchFor(parseModelConfig(CONFIGS.hybrid)), /an SSM mixer \(the HF layouts here are attention models\)/);
  });

  it("an SSM's dynamics (A_log, D) are exempt from weight decay, as mamba_ssm's _no_weight_decay", () => {
    const m = new TransformerLM(parseModelConfig(CONFIGS.hybrid));
    const [decay, noDecay] = T.defaultParamGroups(m, 0.1);
    const names = (g: T.ParamGroup) => g.params.map((p) => p.name);
    assert.ok(names(noDecay).includes("blocks.0.attn.A_log") && names(noDecay).includes("blocks.0.attn.D"));
    assert.ok(names(decay).includes("blocks.0.attn.in_proj.weight"));
  });

  it("refuses context features a recurrence cannot do, and a rollback", () => {
    const m = make("mamba");
    const x = ids([1, 2, 3, 4]);
    assert.throws(() => m.forward(x, SeqContext.packed([2, 2])), /"mamba" does not support packed documents/);
    assert.throws(() => m.forward(x, SeqContext.atPositions(Int32Array.from([0, 1, 2, 3]))), /"mamba" does not support explicit per-token positions/);
    assert.throws(() => m.forward(x, SeqContext.masked([[true, false, false, false], [true, true, false, false], [true, true, true, false], [true, true, true, true]])), /"mamba" does not support an explicit attention mask/);
    assert.throws(() => m.forward(x, SeqContext.bidirectional()), /"mamba" does not support bidirectional/);
    const prefix = { k: T.zeros([2, 1, 8]), v: T.zeros([2, 1, 8]) };
    assert.throws(() => m.forward(x, new SeqContext({ prefixes: [prefix, prefix] })), /"mamba" does not support key\/value prefixes/);
    assert.throws(() => make("s4d").forward(x, SeqContext.atPositions(Int32Array.from([0, 1, 2, 3]))), /"s4d" does not support explicit per-token positions/);
    const state = m.newState();
    T.noGrad(() => m.forward(x, SeqContext.decode(state)));
    assert.equal(state.canTruncate(2), false);
    assert.throws(() => state.truncate(2), /mamba: rollback not supported/);
    state.truncate(4);
  });
});
