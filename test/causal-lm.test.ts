// The CausalLM seam: generate and the trainer take any model implementing the interface (here a bigram
// table model that is not a TransformerLM), and the trainer takes an objective whose auxiliary terms
// land in metrics.jsonl.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as T from "../src/index.js";
import { Module } from "../src/nn/module.js";
import { SeqContext, checkTruncate, validTruncate, type DecodingState } from "../src/nn/seq-context.js";
import type { CausalLM, CausalLMOutput } from "../src/models/causal-lm.js";
import { generate } from "../src/generate/generate.js";
import { scoreTokens } from "../src/generate/score.js";
import { train } from "../src/train/trainer.js";
import { lmObjective, type Objective } from "../src/train/objectives.js";
import { readMetrics } from "../src/train/metrics.js";
import { TokenDataset } from "../src/data/batches.js";

class Counter implements DecodingState {
  length = 0;
  canTruncate(n: number): boolean {
    return validTruncate(this, n);
  }
  truncate(n: number): void {
    checkTruncate(this, n);
    this.length = n;
  }
}

/** logits of token t = table[ids[t]]: a bigram model, no attention at all. */
class BigramLM extends Module implements CausalLM {
  readonly table: T.Tensor;
  constructor(readonly config: { vocabSize: number; maxSeqLen: number }, g: T.RandomGenerator) {
    super();
    this.table = this.param("table", T.zeros([config.vocabSize, config.vocabSize]), "embedding");
    g.normal(this.table.data as Float32Array, 0, 1);
  }
  forward(ids: T.Tensor, ctx = SeqContext.causal()): CausalLMOutput {
    const [, n] = ids.shape;
    if (ctx.state) (ctx.state as Counter).length += n;
    return { logits: T.embedding(ids, this.table) };
  }
  newState(): Counter {
    return new Counter();
  }
}

describe("CausalLM", () => {
  const V = 11;

  it("logitRows: TransformerLM and a prompt-tuned wrapper return the asked rows of the full logits", () => {
    const base = new T.TransformerLM(T.gpt2Config({ vocabSize: 11, dModel: 16, nLayers: 1, nHeads: 2, maxSeqLen: 16 }), { generator: new T.RandomGenerator(5) });
    const ids = T.tensor(Int32Array.from([1, 4, 2, 7, 3, 9, 0, 5]), { shape: [2, 4] }), rows = Int32Array.of(3, 0);
    for (const m of [base, T.addPromptTuning(base, { numVirtualTokens: 2 })]) {
      const full = m.forward(ids).logits, some = m.forward(ids, undefined, { logitRows: rows });
      assert.deepEqual(some.logits.shape, [2, 2, 11]);
      const f = full.toTypedArray(), g = some.logits.toTypedArray();
      for (let b = 0; b < 2; b++) for (let r = 0; r < 2; r++) for (let v = 0; v < 11; v++) {
        const want = f[(b * 4 + rows[r]) * 11 + v], got = g[(b * 2 + r) * 11 + v];
        assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `batch ${b} row ${rows[r]} logit ${v}: ${got} vs ${want}`);
      }
      assert.deepEqual(some.hidden!.shape, [2, 4, 16], "hidden stays whole");
    }
  });

  it("generate decodes any CausalLM: greedy ids follow the table's argmax chain", () => {
    const m = new BigramLM({ vocabSize: V, maxSeqLen: 8 }, new T.RandomGenerator(1));
    const w = m.table.toTypedArray() as Float32Array;
    const want: number[] = [];
    let prev = 3;
    for (let i = 0; i < 20; i++) {
      let best = 0;
      for (let j = 1; j < V; j++) if (w[prev * V + j] > w[prev * V + best]) best = j;
      want.push(best);
      prev = best;
    }
    // 20 tokens through a context of 8: the window slides and the state is renewed.
    assert.deepEqual(generate(m, [3], { maxNewTokens: 20, temperature: 0 }).ids, want);
    assert.deepEqual(generate(m, [3], { maxNewTokens: 20, temperature: 0, noCache: true }).ids, want);
  });

  it("scoreTokens scores any CausalLM: mean NLL equals the table's log-softmax", () => {
    const m = new BigramLM({ vocabSize: V, maxSeqLen: 8 }, new T.RandomGenerator(2));
    const w = m.table.toTypedArray() as Float32Array;
    const ids = [1, 4, 4, 9, 0, 2, 7, 7, 3, 5, 10, 6];
    let nll = 0;
    for (let t = 0; t + 1 < ids.length; t++) {
      const row = Array.from(w.slice(ids[t] * V, ids[t] * V + V), Number);
      const mx = Math.max(...row);
      nll -= row[ids[t + 1]] - mx - Math.log(row.reduce((s, x) => s + Math.exp(x - mx), 0));
    }
    const r = scoreTokens(m, ids);
    assert.equal(r.tokens, ids.length - 1);
    assert.ok(Math.abs(r.loss - nll / (ids.length - 1)) <= 1e-6 * Math.abs(nll));
  });

  it("the trainer takes an objective; its auxiliary terms are logged, the default is the LM loss", { timeout: 30_000 }, async () => {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "tsformer-objective-"));
    const ids = new Int32Array(400);
    new T.RandomGenerator(3).randint(ids, V);
    const data = new TokenDataset(ids, "synthetic");
    const run = async (dir: string, objective?: Objective<BigramLM>) => {
      const model = new BigramLM({ vocabSize: V, maxSeqLen: 8 }, new T.RandomGenerator(4));
      const losses: number[] = [];
      await train({
        model, objective, modelConfig: {}, train: data, runDir: path.join(root, dir), batchSize: 2, blockSize: 8, maxSteps: 4, accumSteps: 2,
        schedule: { kind: "constant", lr: 1e-2 }, evalIters: 1, progress: false, onStep: ({ loss }) => { losses.push(loss); },
      });
      return losses;
    };
    const plain = await run("plain");
    // The same loss plus two logged terms: a tensor (mean squared logit) and a number.
    const withAux = await run("aux", (model, batch) => {
      const { loss } = lmObjective(model, batch);
      const logits = model.forward(batch.x).logits;
      return { loss, aux: { logit_sq: T.mean(T.square(logits)), tokens: batch.x.numel } };
    });
    assert.deepEqual(withAux, plain, "the logged terms do not change the loss");
    const records = (await readMetrics(path.join(root, "aux"))).filter((r) => r.type === "train");
    assert.equal(records.length, 4);
    for (const r of records) {
      const aux = r.aux as Record<string, number>;
      assert.equal(aux.tokens, 16);
      assert.ok(aux.logit_sq > 0.5, `mean squared logit of an N(0, 1) table: ${aux.logit_sq}`);
    }
    const plainRecords = (await readMetrics(path.join(root, "plain"))).filter((r) => r.type === "train");
    assert.ok(plainRecords.every((r) => !("aux" in r)));
  });
});
