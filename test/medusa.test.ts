// Medusa (src/peft/medusa.ts, src/generate/medusa.ts). The references: generate() (greedy output), a
// plain forward of each tree node's path (the tree pass), the base's weights before training, the
// heads' loss before training, and the reference repo's file layout (medusa_lm_head key names).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.js";
import { MedusaHeads, MedusaLM, loadMedusaHeads, medusaFiles, medusaObjective } from "../src/peft/medusa.js";
import { compileMedusaTree, medusaGenerate, treeMask, DEFAULT_MEDUSA_TREE } from "../src/generate/medusa.js";
import { SeqContext } from "../src/nn/seq-context.js";
import { runFinetune } from "../src/cli/finetune.js";
import { cliIn, failsWith } from "./helpers/cli.js";

const tiny = (seed = 1) => new T.TransformerLM(T.llamaConfig({ vocabSize: 24, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, maxSeqLen: 40 }), { generator: new T.RandomGenerator(seed) }).eval();
const ids = (rows: number[][]) => T.tensor(Int32Array.from(rows.flat()), { shape: [rows.length, rows[0].length] });

/** Heads with random weights (the ResBlock's too, unlike the zero init), for a model of this width / vocabulary. */
function randomHeads(K: number, d: number, V: number, seed: number): MedusaHeads {
  const h = new MedusaHeads(K, d, V), g = new T.RandomGenerator(seed);
  T.noGrad(() => { for (const [, p] of h.namedParameters()) { const a = new Float32Array(p.numel); g.normal(a); (p.data as Float32Array).set(a.map((x) => x * 0.5)); } });
  return h;
}

describe("medusa tree", () => {
  it("lays paths out in DFS order with parents, depths and top-k per head", () => {
    const t = compileMedusaTree([[1], [0, 0], [0], [0, 1], [0, 0, 0]], 3);
    // DFS preorder by rank: root, [0], [0,0], [0,0,0], [0,1], [1]
    assert.deepEqual(t.parent, [-1, 0, 1, 2, 1, 0]);
    assert.deepEqual(t.depth, [0, 1, 2, 3, 2, 1]);
    assert.deepEqual(t.rank, [0, 0, 0, 0, 1, 1]);
    assert.deepEqual(t.topK, [2, 2, 1]);
  });

  it("bad trees and heads: one clear error each", () => {
    assert.throws(() => compileMedusaTree([[0], [0, 0], [0, 0, 0]], 2), /depth 3 but there are only 2 heads/);
    assert.throws(() => compileMedusaTree([[0, 1]], 2), /no parent \[0\]/);
    assert.throws(() => compileMedusaTree([[0], [0]], 2), /listed twice/);
    assert.throws(() => compileMedusaTree([[-1]], 2), /integers >= 0/);
    assert.throws(() => new MedusaHeads(0, 16, 24), /heads must be an integer >= 1, got 0/);
    const m = tiny();
    assert.throws(() => medusaGenerate(m, [1], { maxNewTokens: 4, temperature: 0, heads: randomHeads(2, 16, 24, 1), tree: [[0], [0, 0], [0, 0, 0]] }), /depth 3 but there are only 2 heads/);
    assert.throws(() => medusaGenerate(m, [1], { maxNewTokens: 4, temperature: 0, heads: randomHeads(2, 8, 24, 1) }), /dModel 8 .* dModel 16/);
  });

  it("a tree pass gives each node the logits of a plain forward of its path, after a cache and pending tokens", () => {
    const m = tiny(3), g = new T.RandomGenerator(9);
    const r = () => { const a = new Float64Array(1); g.uniform(a); return Math.floor(a[0] * 24); };
    const t = compileMedusaTree(DEFAULT_MEDUSA_TREE, 4);
    const nodes = t.parent.map((_, i) => i);
    const cached = Array.from({ length: 5 }, r), pending = Array.from({ length: 3 }, r), tok = nodes.map((i) => (i === 0 ? pending[2] : r()));
    T.noGrad(() => {
      const state = m.newState(64);
      m.forward(ids([cached]), SeqContext.decode(state));
      const { mask, positions, row } = treeMask(t, nodes, cached.length, pending.length);
      const out = m.forward(ids([[...pending.slice(0, 2), ...tok]]), SeqContext.masked(mask, { positions, state })).logits.toTypedArray() as Float32Array;
      for (const i of nodes) {
        const path: number[] = [];
        for (let a = i; a > 0; a = t.parent[a]) path.unshift(tok[a]);
        const seq = [...cached, ...pending, ...path];
        const want = (m.forward(ids([seq])).logits.toTypedArray() as Float32Array).subarray((seq.length - 1) * 24, seq.length * 24);
        const got = out.subarray(row.get(i)! * 24, (row.get(i)! + 1) * 24);
        want.forEach((w, j) => assert.ok(Math.abs(w - got[j]) <= 1e-4 * (1 + Math.abs(w)), `node ${i} logit ${j}: ${got[j]} vs ${w}`));
      }
    });
  });
});

describe("medusa decoding", () => {
  it("greedy output equals generate's with random heads, any tree, sliding window, eos and stop lengths", () => {
    const m = tiny(5);
    for (const [K, seed] of [[1, 2], [3, 3], [4, 4]]) {
      const heads = randomHeads(K, 16, 24, seed);
      for (const prompt of [[1], [3, 7, 2, 9, 11]]) {
        const want = T.generate(m, prompt, { maxNewTokens: 60, temperature: 0 }).ids;
        const got = medusaGenerate(m, prompt, { maxNewTokens: 60, temperature: 0, heads });
        assert.deepEqual(got.ids, want, `K ${K} prompt ${prompt}`);
        assert.equal(got.stats.tokens, 60);
      }
    }
    const heads = randomHeads(2, 16, 24, 6), eos = T.generate(m, [2], { maxNewTokens: 30, temperature: 0 }).ids[7];
    assert.deepEqual(medusaGenerate(m, [2], { maxNewTokens: 30, temperature: 0, heads, eosId: eos }).ids, T.generate(m, [2], { maxNewTokens: 30, temperature: 0, eosId: eos }).ids);
    assert.deepEqual(medusaGenerate(m, [2], { maxNewTokens: 30, temperature: 0, heads, context: 9 }).ids, T.generate(m, [2], { maxNewTokens: 30, temperature: 0, context: 9 }).ids);
  });

  it("greedy output equals generate's with heads that predict well, and most candidates are kept", () => {
    // A model whose greedy continuation is periodic: heads that know the period predict exactly.
    const m = tiny(7), prompt = [4, 5];
    const want = T.generate(m, prompt, { maxNewTokens: 80, temperature: 0 }).ids;
    // Oracle heads: the ResBlock is zero and the projection maps the hidden state of the token at t to
    // the greedy token t + k + 1, learnt by least squares over the states seen along the greedy output.
    const heads = fitOracleHeads(m, [...prompt, ...want], 3);
    const got = medusaGenerate(m, prompt, { maxNewTokens: 80, temperature: 0, heads, tree: [[0], [0, 0], [0, 0, 0], [1], [0, 1]] });
    assert.deepEqual(got.ids, want);
    assert.ok(got.stats.tokensPerRound > 2, `tokens per round ${got.stats.tokensPerRound}`);
    assert.ok(got.stats.calls < 80 / 2, `calls ${got.stats.calls}`);
    // a chain tree runs as plain causal decoding
    const chain = medusaGenerate(m, prompt, { maxNewTokens: 80, temperature: 0, heads, tree: [[0], [0, 0], [0, 0, 0]] });
    assert.deepEqual(chain.ids, want);
    assert.ok(chain.stats.tokensPerRound > 2, `chain: tokens per round ${chain.stats.tokensPerRound}`);
  });

  it("greedy output equals generate's when the kept nodes are off the tree's first chain (re-fed next round)", () => {
    const m = tiny(7), prompt = [4, 5];
    const want = T.generate(m, prompt, { maxNewTokens: 60, temperature: 0 }).ids;
    const heads = fitOracleHeads(m, [...prompt, ...want], 3, true);
    const got = medusaGenerate(m, prompt, { maxNewTokens: 60, temperature: 0, heads, tree: [[0], [0, 0], [1], [1, 0], [1, 1], [1, 1, 1], [1, 1, 0]] });
    assert.deepEqual(got.ids, want);
    assert.ok(got.stats.tokensPerRound > 2, `tokens per round ${got.stats.tokensPerRound}`);
    // the first chain (the heads' top choices) alone is rejected: the kept nodes were the [1] branch's
    const chain = medusaGenerate(m, prompt, { maxNewTokens: 60, temperature: 0, heads, tree: [[0], [0, 0]] });
    assert.deepEqual(chain.ids, want);
    assert.ok(chain.stats.tokensPerRound < 1.2, `first chain alone: tokens per round ${chain.stats.tokensPerRound}`);
  });

  it("typical acceptance: temperature > 0 decodes (reproducible by seed) and keeps candidates the base finds likely", () => {
    const m = tiny(7), prompt = [4, 5];
    const want = T.generate(m, prompt, { maxNewTokens: 40, temperature: 0 }).ids;
    const heads = fitOracleHeads(m, [...prompt, ...want], 2);
    const a = medusaGenerate(m, prompt, { maxNewTokens: 40, temperature: 0.5, seed: 3, heads, eps: 0.09, delta: 0.3 });
    const b = medusaGenerate(m, prompt, { maxNewTokens: 40, temperature: 0.5, seed: 3, heads, eps: 0.09, delta: 0.3 });
    assert.deepEqual(a.ids, b.ids);
    assert.equal(a.ids.length, 40);
    assert.ok(a.stats.accepted > 0);
    assert.throws(() => medusaGenerate(m, prompt, { maxNewTokens: 4, temperature: 0.5, heads, eps: 0 }), /eps must be in \(0, 1\]/);
    // the rule's limits: threshold min(1, delta e^-H) = 1 keeps nothing; min(1e-12, .) keeps every
    // candidate (a softmax at temperature 1 over 24 tokens gives each more than 1e-12), so each round
    // yields the tree's depth + 1 tokens (the longest path, [1] -> [1, 0])
    const none = medusaGenerate(m, prompt, { maxNewTokens: 30, temperature: 1, seed: 1, heads, eps: 1, delta: 1e9 });
    assert.equal(none.stats.accepted, 0);
    const all = medusaGenerate(m, prompt, { maxNewTokens: 30, temperature: 1, seed: 1, heads, eps: 1e-12, tree: [[0], [1], [1, 0]] });
    assert.equal(all.stats.accepted, 2 * all.stats.rounds);
    assert.equal(all.stats.rounds, Math.ceil((30 - 1) / 3));  // the prefill gives the first token
  });
});

/**
 * Heads that predict the greedy sequence `seq` (prompt + output): head k's projection is the least
 * squares fit (ridge 1e-3) of one-hot(seq[t + k + 1]) * 20 on the base's hidden state at t (with
 * `decoy`, plus one-hot(seq[t + k + 1] + 1) * 30: the right token is then the heads' second choice).
 */
function fitOracleHeads(m: T.TransformerLM, seq: number[], K: number, decoy = false): MedusaHeads {
  const V = m.config.vocabSize, D = m.config.dModel;
  const H = T.noGrad(() => m.forward(ids([seq])).hidden!.toTypedArray() as Float32Array);
  const heads = new MedusaHeads(K, D, V);
  for (let k = 1; k <= K; k++) {
    const n = seq.length - k - 1;
    // normal equations (X^T X + 1e-3 I) W^T = X^T Y, solved by Gauss-Jordan in float64
    const A = Array.from({ length: D }, (_, i) => Array.from({ length: D + V }, (_, j) => {
      if (j < D) { let s = i === j ? 1e-3 : 0; for (let t = 0; t < n; t++) s += H[t * D + i] * H[t * D + j]; return s; }
      let s = 0;
      for (let t = 0; t < n; t++) {
        if (seq[t + k + 1] === j - D) s += 20 * H[t * D + i];
        if (decoy && (seq[t + k + 1] + 1) % V === j - D) s += 30 * H[t * D + i];
      }
      return s;
    }));
    for (let c = 0; c < D; c++) {
      let p = c; for (let r = c + 1; r < D; r++) if (Math.abs(A[r][c]) > Math.abs(A[p][c])) p = r;
      [A[c], A[p]] = [A[p], A[c]];
      const piv = A[c][c];
      for (let j = 0; j < D + V; j++) A[c][j] /= piv;
      for (let r = 0; r < D; r++) if (r !== c) { const f = A[r][c]; for (let j = 0; j < D + V; j++) A[r][j] -= f * A[c][j]; }
    }
    const w = heads.heads[k - 1].out.weight.data as Float32Array;
    for (let v = 0; v < V; v++) for (let i = 0; i < D; i++) w[v * D + i] = A[i][D + v];
  }
  return heads;
}

describe("medusa training", () => {
  it("Medusa-1: the heads' loss falls, the base's weights do not change, the heads start as the LM head", () => {
    const base = tiny(11);
    base.requiresGrad_(false);
    const before = Object.fromEntries(Object.entries(base.stateDict()).map(([n, t]) => [n, Float32Array.from(t.toTypedArray() as Float32Array)]));
    const lm = new MedusaLM(base, { heads: 3 });
    assert.deepEqual(Array.from(lm.medusa.heads[2].out.weight.toTypedArray() as Float32Array), Array.from(base.lmHead.toTypedArray() as Float32Array));
    assert.deepEqual(Object.keys(lm.medusa.stateDict()).sort(), ["0.0.linear.bias", "0.0.linear.weight", "0.1.weight", "1.0.linear.bias", "1.0.linear.weight", "1.1.weight", "2.0.linear.bias", "2.0.linear.weight", "2.1.weight"]);
    // a periodic sequence: future tokens are a function of the current one
    const seq = Array.from({ length: 4 * 17 }, (_, i) => (i * 5) % 17);
    const x = ids([seq.slice(0, 32), seq.slice(17, 49)]), y = ids([seq.slice(1, 33), seq.slice(18, 50)]);
    const opt = new T.AdamW(T.defaultParamGroups(lm, 0), { lr: 1e-2 });
    lm.train();
    const losses: number[] = [];
    for (let s = 0; s < 30; s++) {
      opt.zeroGrad();
      const { loss, aux } = medusaObjective(lm, { x, y });
      assert.deepEqual(Object.keys(aux!), ["medusa1", "medusa2", "medusa3"]);
      losses.push(loss.item());
      loss.backward();
      opt.step();
    }
    assert.ok(losses[29] < 0.5 * losses[0], `loss ${losses[0]} -> ${losses[29]}`);
    for (const [n, t] of Object.entries(base.stateDict())) assert.deepEqual(t.toTypedArray(), before[n], n);
  });

  it("saves and loads the reference layout; a heads file for another model is one clear error", async () => {
    const dir = mkdtempSync(join(tmpdir(), "medusa-"));
    try {
      const h = randomHeads(2, 16, 24, 12);
      for (const [name, v] of Object.entries(medusaFiles(h, "base"))) writeFileSync(join(dir, name), v instanceof Uint8Array ? v : JSON.stringify(v));
      const cfg = JSON.parse(readFileSync(join(dir, "medusa_config.json"), "utf8"));
      assert.equal(cfg.medusa_num_heads, 2);
      const back = await loadMedusaHeads(dir, { dModel: 16, vocabSize: 24 });
      assert.deepEqual(back.heads[1].block.linear.bias!.toTypedArray(), h.heads[1].block.linear.bias!.toTypedArray());
      await assert.rejects(loadMedusaHeads(dir, { dModel: 16, vocabSize: 32 }), /\[vocab 24, hidden 16\] but the model has vocabSize 32 and dModel 16/);
      await assert.rejects(loadMedusaHeads(dir, { dModel: 8, vocabSize: 24 }), /trained for another base/);
      await assert.rejects(loadMedusaHeads(join(dir, "nope"), { dModel: 8, vocabSize: 24 }), /no medusa_lm_head.safetensors/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("finetune --method medusa trains heads on stories260K and they decode its greedy output", async () => {
    const dir = mkdtempSync(join(tmpdir(), "medusa-ft-"));
    try {
      const data = join(dir, "d.txt");
      writeFileSync(data, readFileSync("data/tinystories-valid-head.txt", "utf8").slice(0, 20000));
      await runFinetune({ model: "data/stories260K.bin", data, method: "medusa", heads: 2, steps: 6, batch: 2, block: 32, evalInterval: 6, evalIters: 1, sampleTokens: 0, out: join(dir, "run") }, () => {});
      const { model } = await T.loadModel("data/stories260K.bin");
      const heads = await loadMedusaHeads(join(dir, "run", "best"), { dModel: 64, vocabSize: 512 });
      assert.equal(heads.numHeads, 2);
      const want = T.generate(model, [1], { maxNewTokens: 40, temperature: 0 }).ids;
      assert.deepEqual(medusaGenerate(model, [1], { maxNewTokens: 40, temperature: 0, heads }).ids, want);
      failsWith(cliIn()("finetune", "--model", "data/stories260K.bin", "--data", data, "--method", "medusa", "--heads", "0", "--out", join(dir, "r0")), /--heads.*0/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
