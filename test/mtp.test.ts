// Multi-token prediction (src/models/mtp.ts, src/generate/mtp.ts). The references: PyTorch's forward
// and gradients of DeepSeek-V3's eqs. 21-25 (scripts/golden/mtp.py), generate() (greedy output), the
// main model's own cross-entropy (lmObjective) and eq. 25's sum recomputed from the logged terms.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import { parseModelConfig } from "../src/models/config.js";
import { MTPLM, MTPModules, mtpObjective } from "../src/models/mtp.js";
import { mtpGenerate } from "../src/generate/mtp.js";
import { lmObjective } from "../src/train/objectives.js";
import { loadGolden, maxScaledError, toTensor } from "./helpers/golden.js";

interface MTPCase { name: string; config: Record<string, unknown>; depth: number; weight: number }
const golden = loadGolden(new URL("./fixtures/mtp.safetensors", import.meta.url).pathname);
const TOL = 1e-5;

const tiny = (seed = 1) => new TransformerLM(T.llamaConfig({ vocabSize: 24, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, maxSeqLen: 48 }), { generator: new T.RandomGenerator(seed) }).eval();
const ids = (rows: number[][]) => T.tensor(Int32Array.from(rows.flat()), { shape: [rows.length, rows[0].length] });

/** MTP modules with every weight random (norms too), so that drafts depend on everything. */
function randomModules(base: TransformerLM, D: number, seed: number): MTPModules {
  const m = new MTPModules(base.config, D), g = new T.RandomGenerator(seed);
  T.noGrad(() => { for (const [, p] of m.namedParameters()) { const a = new Float32Array(p.numel); g.normal(a); (p.data as Float32Array).set(a.map((x) => x * 0.4)); } });
  return m;
}

/** Frozen base, modules trained with AdamW on the base's own greedy text (so most drafts are kept). */
function fitModules(base: TransformerLM, text: number[], D: number, steps: number): MTPModules {
  base.requiresGrad_(false);
  const lm = new MTPLM(base, { depth: D, weight: 1, generator: new T.RandomGenerator(5) });
  const opt = new T.AdamW(T.defaultParamGroups(lm.mtp, 0), { lr: 1e-2 });
  const x = ids([text.slice(0, -1)]), y = ids([text.slice(1)]);
  for (let s = 0; s < steps; s++) T.tidy(() => { mtpObjective(lm, { x, y } as T.Batch).loss.backward(); opt.step(); opt.zeroGrad(); });
  base.requiresGrad_(true);
  return lm.mtp.eval();
}

describe("mtp modules vs PyTorch (DeepSeek-V3 eqs. 21-25)", () => {
  for (const c of golden.cases as unknown as MTPCase[]) {
    it(`${c.name}: logits per depth, losses and every gradient <= ${TOL} of the tensor's scale`, () => {
      const cfg = parseModelConfig(c.config, `fixture ${c.name}`), t = (n: string) => golden.tensors[`${c.name}.${n}`];
      const base = new TransformerLM(cfg), mtp = new MTPModules(cfg, c.depth);
      const sd = (prefix: string) => Object.fromEntries(Object.keys(golden.tensors).filter((n) => n.startsWith(`${c.name}.param.${prefix}`)).map((n) => [n.slice(`${c.name}.param.${prefix}`.length), toTensor(golden.tensors[n])]));
      assert.deepEqual(Object.keys(mtp.stateDict()).sort(), Object.keys(sd("mtp.")).sort());
      mtp.loadStateDict(sd("mtp."));
      const head = "lm_head.weight" in sd("") ? ["tok_emb.weight", "lm_head.weight"] : ["tok_emb.weight"];
      base.loadStateDict(Object.fromEntries(head.map((n) => [n, sd("")[n]])), { strict: false });
      const h0 = toTensor(t("h0"), "float32", true), x = toTensor(t("x")), y = toTensor(t("y")), Tn = x.shape[1];
      const failures: string[] = [];
      const check = (what: string, got: T.Tensor, want: ArrayLike<number>) => {
        const e = maxScaledError(got.toTypedArray(), want);
        if (!(e <= TOL)) failures.push(`${what}: ${e.toExponential(2)}`);
      };
      let h = h0;
      for (let k = 1; k <= c.depth; k++) {
        h = mtp.step(k, T.narrow(h, 1, 0, Tn - k), T.narrow(x, 1, k, Tn - k).contiguous(), base);
        check(`logits depth ${k}`, mtp.logits(k, h, base), t(`logits.${k}`).data as Float64Array);
      }
      const per = mtp.losses(h0, x, y, base);
      per.forEach((l, k) => check(`loss depth ${k + 1}`, l, t(`loss.${k + 1}`).data as Float64Array));
      const loss = T.mul(per.reduce((a, b) => T.add(a, b)), c.weight / c.depth);
      check("loss", loss, t("loss").data as Float64Array);
      loss.backward();
      check("grad h0", h0.grad!, t("grad.h0").data as Float64Array);
      const params = new Map([...[...mtp.namedParameters()].map(([n, p]) => [`mtp.${n}`, p] as const), ...[...base.namedParameters()]]);
      const grads = Object.keys(golden.tensors).filter((k) => k.startsWith(`${c.name}.grad.`) && !k.endsWith(".h0"));
      // attn.wk.bias's gradient is 0 in exact arithmetic (softmax ignores a per-row shift): only
      // roundoff is left, measured against the case's largest gradient
      const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const scale = Math.max(...grads.map((n) => maxAbs(golden.tensors[n].data as Float64Array)));
      for (const n of grads) {
        const name = n.slice(`${c.name}.grad.`.length), p = params.get(name), want = golden.tensors[n].data as Float64Array;
        if (!p?.grad) { failures.push(`grad ${name}: missing`); continue; }
        if (maxAbs(want) > 1e-12 * scale) check(`grad ${name}`, p.grad, want);
        else if (!(maxAbs(p.grad.toTypedArray()) <= TOL * scale)) failures.push(`grad ${name}: should be ~0, max|got| ${maxAbs(p.grad.toTypedArray()).toExponential(2)}`);
      }
      assert.ok(failures.length === 0, `${c.name}:\n  ${failures.join("\n  ")}`);
    });
  }
});

describe("mtp objective", () => {
  it("loss = the main cross-entropy + lambda / D * sum_k L^k, gradients reach the base and every depth", () => {
    const base = tiny(2), lm = new MTPLM(base, { depth: 2, weight: 0.3 }).train();
    const g = new T.RandomGenerator(3), a = new Int32Array(2 * 11);
    g.randint(a, 24);
    const rows = [[...a.subarray(0, 11)], [...a.subarray(11)]];
    const batch = { x: ids(rows.map((r) => r.slice(0, -1))), y: ids(rows.map((r) => r.slice(1))) } as T.Batch;
    const { loss, aux } = mtpObjective(lm, batch);
    const v = (k: string) => (aux![k] as T.Tensor).item();
    assert.ok(Math.abs(v("lm") - lmObjective(base, batch).loss.item()) <= 1e-6);
    assert.ok(Math.abs(loss.item() - (v("lm") + (0.3 / 2) * (v("mtp1") + v("mtp2")))) <= 1e-5);
    loss.backward();
    for (const [n, p] of lm.namedParameters()) assert.ok(p.grad && (p.grad.toTypedArray() as Float32Array).some((x) => x !== 0), `no gradient for ${n}`);
  });

  it("bad input: one clear error each", () => {
    const base = tiny();
    assert.throws(() => new MTPModules(base.config, 0), /depth \(the number of MTP modules D\) must be an integer >= 1, got 0/);
    assert.throws(() => new MTPLM(base, { depth: 1.5 }), /must be an integer >= 1, got 1.5/);
    assert.throws(() => new MTPLM(base, { depth: 2, weight: -0.1 }), /weight \(the MTP loss weight lambda\) must be a finite number >= 0, got -0.1/);
    const other = new TransformerLM(T.llamaConfig({ vocabSize: 30, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, maxSeqLen: 48 }));
    assert.throws(() => new MTPLM(base, { depth: 2, mtp: new MTPModules(other.config, 2) }), /vocabSize 30 but this model has 24; they were trained for another base/);
    assert.throws(() => mtpGenerate(base, [1], { maxNewTokens: 4, temperature: 0, mtp: new MTPModules(other.config, 2) }), /vocabSize 30 but this model has 24/);
    assert.throws(() => mtpGenerate(base, [1], { maxNewTokens: 4, temperature: 0, mtp: new MTPModules(base.config, 2), draft: 3 }), /draft .* must be an integer in \[1, 2\]/);
    const packed = { x: ids([[1, 2, 3]]), y: ids([[2, 3, 4]]), cuSeqlens: Int32Array.of(0, 1, 3) } as T.Batch;
    assert.throws(() => mtpObjective(new MTPLM(base, { depth: 1 }), packed), /packed documents are not supported/);
  });
});

describe("mtp decoding", () => {
  it("greedy output equals generate's with random modules: depths 1-3, sliding window, eos", () => {
    const m = tiny(5);
    for (const [D, seed] of [[1, 2], [2, 3], [3, 4]]) {
      const mtp = randomModules(m, D, seed);
      for (const prompt of [[1], [3, 7, 2, 9, 11]]) {
        const want = T.generate(m, prompt, { maxNewTokens: 40, temperature: 0 }).ids;
        const got = mtpGenerate(m, prompt, { maxNewTokens: 40, temperature: 0, mtp });
        assert.deepEqual(got.ids, want, `D ${D} prompt ${prompt}`);
        assert.equal(got.stats.tokens, 40);
      }
    }
    const mtp = randomModules(m, 2, 6), eos = T.generate(m, [2], { maxNewTokens: 30, temperature: 0 }).ids[7];
    assert.deepEqual(mtpGenerate(m, [2], { maxNewTokens: 30, temperature: 0, mtp, eosId: eos }).ids, T.generate(m, [2], { maxNewTokens: 30, temperature: 0, eosId: eos }).ids);
    assert.deepEqual(mtpGenerate(m, [2], { maxNewTokens: 40, temperature: 0, mtp, context: 9 }).ids, T.generate(m, [2], { maxNewTokens: 40, temperature: 0, context: 9 }).ids);
  });

  it("greedy output equals generate's with trained modules, most drafts kept, on a RoPE and a GPT-2 base", () => {
    const gpt2 = new TransformerLM(T.gpt2Config({ vocabSize: 24, dModel: 16, nLayers: 2, nHeads: 2, maxSeqLen: 96 }), { generator: new T.RandomGenerator(7) }).eval();
    for (const m of [tiny(7), gpt2]) {
      const prompt = [4, 5], want = T.generate(m, prompt, { maxNewTokens: 40, temperature: 0 }).ids;
      const mtp = fitModules(m, [...prompt, ...want], 3, 60);
      for (const p of [prompt, [4, 5, ...want.slice(0, 3)]]) {
        const plain = T.generate(m, p, { maxNewTokens: 40, temperature: 0 }).ids;
        const got = mtpGenerate(m, p, { maxNewTokens: 40, temperature: 0, mtp });
        assert.deepEqual(got.ids, plain);
        assert.ok(got.stats.tokensPerRound > 2, `tokens per round ${got.stats.tokensPerRound} (accept ${got.stats.acceptRate})`);
        assert.ok(got.stats.calls < 40 / 2, `calls ${got.stats.calls}`);
      }
      // fewer depths drafted than trained
      assert.deepEqual(mtpGenerate(m, prompt, { maxNewTokens: 40, temperature: 0, mtp, draft: 1 }).ids, want);
    }
  });

  it("every round's draft distributions equal a cache-free reference (the whole prefix recomputed)", () => {
    // sampled at temperature 0.1 (this model's logits are small), so that drafts at every depth are
    // both kept and rejected (a rejected draft's cache entries must not be reused); the draft
    // distributions are compared whole
    const m = tiny(5), prompt = [4, 5], D = 3, temperature = 0.1;
    const mtp = randomModules(m, D, 8);
    const rounds: { at: number; drafts: number[]; probs: Float64Array[] }[] = [];
    const got = mtpGenerate(m, prompt, { maxNewTokens: 40, temperature, seed: 5, mtp, onDraft: (d) => rounds.push({ at: d.at, drafts: [...d.drafts], probs: d.probs.map((p) => Float64Array.from(p)) }) });
    const all = [...prompt, ...got.ids];
    let worst = 0;
    T.noGrad(() => {
      for (const r of rounds) {
        const N = r.at - 1, tok = (j: number) => (j <= N ? all[j] : r.drafts[j - N - 1]);
        let h = m.forward(ids([all.slice(0, N)])).hidden!;
        r.probs.forEach((q, i) => {
          const k = i + 1;
          h = mtp.step(k, h, ids([Array.from({ length: N }, (_, p) => tok(p + k))]), m);
          const want = T.softmax(T.mul(mtp.logits(k, T.narrow(h, 1, N - 1, 1), m), 1 / temperature), -1).toTypedArray();
          q.forEach((v, j) => { worst = Math.max(worst, Math.abs(v - want[j])); });
        });
      }
    });
    assert.ok(worst <= 1e-5, `largest probability difference ${worst}`);
    const { accepted, verified } = got.stats;
    assert.ok(accepted.every((a, k) => a > 0 && verified[k] > a), `kept ${accepted} of ${verified}: the test needs kept and rejected drafts at every depth`);
  });

  it("temperature > 0: reproducible by seed, and the drafts are verified by the rejection rule", () => {
    const m = tiny(7), prompt = [4, 5];
    const mtp = fitModules(m, [...prompt, ...T.generate(m, prompt, { maxNewTokens: 40, temperature: 0 }).ids], 2, 40);
    const a = mtpGenerate(m, prompt, { maxNewTokens: 30, temperature: 0.8, seed: 3, mtp }), b = mtpGenerate(m, prompt, { maxNewTokens: 30, temperature: 0.8, seed: 3, mtp });
    assert.deepEqual(a.ids, b.ids);
    assert.equal(a.ids.length, 30);
    assert.ok(a.stats.verified[0] > 0 && a.stats.accepted[0] <= a.stats.verified[0]);
  });
});
