// Speculative decoding (src/generate/speculative.ts). The references: generate() (greedy output), the
// target's exact distribution over short continuations enumerated from its logits with HF's warper
// rules written out here (sampled output, chi^2), a fresh prefill (rolled-back caches), chi^2 table
// values (the p-value function).

import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.js";
import { runGenerate } from "../src/cli/generate.js";
import { cliIn, failsWith } from "./helpers/cli.js";

// ---------------------------------------------------------------- chi^2 p-values

/** ln Gamma(x), Lanczos (g = 7, 9 terms). */
function lnGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  x -= 1;
  let s = c[0];
  for (let i = 1; i < 9; i++) s += c[i] / (x + i);
  const t = x + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(s);
}

/** P(X >= x), X ~ chi^2(k): Q(k/2, x/2) by the series below a + 1, Lentz's continued fraction above (Numerical Recipes §6.2). */
function chi2Sf(x: number, k: number): number {
  const a = k / 2, z = x / 2;
  if (z <= 0) return 1;
  const pre = Math.exp(a * Math.log(z) - z - lnGamma(a));
  if (z < a + 1) {
    let term = 1 / a, sum = term;
    for (let n = 1; n < 1000 && term > 1e-17 * sum; n++) { term *= z / (a + n); sum += term; }
    return 1 - sum * pre;
  }
  let b = z + 1 - a, c = 1e300, d = 1 / b, h = d;
  for (let n = 1; n < 1000; n++) {
    const an = -n * (n - a);
    b += 2;
    d = 1 / (Math.abs(an * d + b) < 1e-300 ? 1e-300 : an * d + b);
    c = b + an / c;
    if (Math.abs(c) < 1e-300) c = 1e-300;
    h *= d * c;
    if (Math.abs(d * c - 1) < 1e-15) break;
  }
  return pre * h;
}

/**
 * Pearson's chi^2 of counts against probabilities; cells expecting < 5 are pooled into one. `impossible`
 * counts draws of outcomes of probability 0 (any makes p = 0).
 */
function chi2Test(counts: number[], probs: number[]): { chi2: number; dof: number; p: number; impossible: number } {
  const n = counts.reduce((a, b) => a + b, 0);
  let chi2 = 0, cells = 0, poolObs = 0, poolExp = 0, impossible = 0;
  counts.forEach((o, i) => {
    const e = n * probs[i];
    if (probs[i] === 0) impossible += o;
    else if (e < 5) { poolObs += o; poolExp += e; } else { chi2 += (o - e) ** 2 / e; cells++; }
  });
  if (poolExp > 0) { chi2 += (poolObs - poolExp) ** 2 / poolExp; cells++; }
  return { chi2, dof: cells - 1, p: impossible ? 0 : chi2Sf(chi2, cells - 1), impossible };
}

// ---------------------------------------------------------------- the target's exact distribution

interface Warp { temperature?: number; topK?: number; topP?: number; repetitionPenalty?: number }

/**
 * The sampling distribution written as HF's logits processors compute it (RepetitionPenaltyLogitsProcessor,
 * TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper), in float64.
 */
function refProbs(row: ArrayLike<number>, seen: number[], w: Warp): number[] {
  const pen = w.repetitionPenalty ?? 1, temp = w.temperature ?? 1;
  let l = Array.from(row, (x, i) => (seen.includes(i) ? (x > 0 ? x / pen : x * pen) : x) / temp);
  if (w.topK) { const kth = [...l].sort((a, b) => b - a)[w.topK - 1]; l = l.map((x) => (x < kth ? -Infinity : x)); }
  const mx = Math.max(...l), e = l.map((x) => Math.exp(x - mx)), s = e.reduce((a, b) => a + b, 0);
  let p = e.map((x) => x / s);
  if (w.topP !== undefined && w.topP < 1) {
    // keep the most likely tokens while the mass before them is < topP (the smallest set reaching topP)
    const order = p.map((_, i) => i).sort((a, b) => p[b] - p[a]);
    let before = 0;
    const keep = new Set<number>();
    for (const i of order) { if (before < w.topP) keep.add(i); before += p[i]; }
    const kept = p.map((x, i) => (keep.has(i) ? x : 0)), ks = kept.reduce((a, b) => a + b, 0);
    p = kept.map((x) => x / ks);
  }
  return p;
}

// ---------------------------------------------------------------- models

const V = 6;

/** A decoding state that keeps the ids it has seen. */
class IdState implements T.DecodingState {
  ids: number[] = [];
  get length(): number { return this.ids.length; }
  canTruncate(n: number): boolean { return Number.isInteger(n) && n >= 0 && n <= this.ids.length; }
  truncate(n: number): void { assert.ok(this.canTruncate(n)); this.ids.length = n; }
}

/** Gaussian logits drawn from a hash of (seed, prefix): a different random distribution for every prefix. */
function hashLogits(seed: number, prefix: number[], scale: number): Float64Array {
  let h = 2166136261 ^ seed;
  for (const id of prefix) { h ^= id + 1; h = Math.imul(h, 16777619); }
  const out = new Float64Array(V);
  new T.RandomGenerator(h >>> 0).normal(out, 0, scale);
  return out;
}

/**
 * A language model whose logits are a fixed function of the whole prefix, and cheap (the chi^2 tests
 * draw 20,000+ tokens). Its state holds the ids fed so far, so a wrong rollback changes its output.
 */
class PrefixLM extends T.Module implements T.CausalLM {
  readonly config = { vocabSize: V, maxSeqLen: 64 };
  constructor(readonly logitsOf: (prefix: number[]) => Float64Array) { super(); }
  newState(): IdState { return new IdState(); }
  forward(ids: T.Tensor, ctx?: T.SeqContext): T.CausalLMOutput {
    const st = ctx?.state as IdState | null, x = Array.from(ids.toTypedArray(), Number), history = st ? st.ids : [];
    const out = new Float32Array(x.length * V);
    x.forEach((_, t) => out.set(this.logitsOf([...history, ...x.slice(0, t + 1)]), t * V));
    st?.ids.push(...x);
    return { logits: T.tensor(out, { shape: [1, x.length, V] }) };
  }
}

const target = new PrefixLM((p) => hashLogits(1, p, 1.2));
// the draft: the target's logits plus noise of its own (alpha about 0.8)
const draft = new PrefixLM((p) => hashLogits(1, p, 1.2).map((x, i) => x + hashLogits(2, p, 0.8)[i]));

const tiny = (seed: number, o: Partial<T.ModelConfigInput> = {}) =>
  new T.TransformerLM(T.llamaConfig({ vocabSize: 16, dModel: 16, nLayers: 2, nHeads: 2, dFF: 32, maxSeqLen: 24, ...o }), { generator: new T.RandomGenerator(seed) });

/** The same architecture with every weight moved by sigma times its tensor's RMS. */
function perturbed(m: T.TransformerLM, sigma: number, seed = 9): T.TransformerLM {
  const out = new T.TransformerLM(m.config), g = new T.RandomGenerator(seed), sd: Record<string, T.Tensor> = {};
  for (const [name, t] of Object.entries(m.stateDict())) {
    const w = t.toTypedArray() as Float32Array, n = new Float32Array(w.length);
    g.normal(n);
    const rms = Math.sqrt(w.reduce((a, b) => a + b * b, 0) / w.length);
    sd[name] = T.tensor(w.map((x, i) => x + sigma * rms * n[i]), { shape: t.shape });
  }
  out.loadStateDict(sd);
  return out.eval();
}

// ---------------------------------------------------------------- tests

describe("speculative decoding: the sampling distribution", () => {
  it("the p-value function matches chi^2 tables", () => {
    for (const [x, k, p] of [[3.841, 1, 0.05], [18.307, 10, 0.05], [135.807, 100, 0.01], [6.635, 1, 0.01], [37.566, 20, 0.01]]) {
      assert.ok(Math.abs(chi2Sf(x, k) - p) < 1e-3 * p, `chi2Sf(${x}, ${k}) = ${chi2Sf(x, k)}, table ${p}`);
    }
  });

  it("samplingProbs is the distribution HF's warpers give (penalty, temperature, top-k, top-p)", () => {
    const g = new T.RandomGenerator(5);
    for (const w of [{}, { temperature: 0.7 }, { topK: 3 }, { topP: 0.8 }, { temperature: 1.3, topK: 5, topP: 0.9, repetitionPenalty: 1.4 }]) {
      for (let r = 0; r < 20; r++) {
        const row = new Float32Array(11);
        g.normal(row, 0, 2);
        const got = T.samplingProbs(row, [1, 4, 4, 7], w), want = refProbs(row, [1, 4, 7], w);
        want.forEach((x, i) => assert.ok(Math.abs(got[i] - x) < 1e-6, `${JSON.stringify(w)} id ${i}: ${got[i]} vs ${x}`));
      }
    }
    const row = Float32Array.from([0.5, 2, 2, -1]);
    assert.deepEqual(Array.from(T.samplingProbs(row, [], { temperature: 0 })), [0, 1, 0, 0]);  // greedy: the first argmax
    assert.deepEqual(Array.from(T.samplingProbs(Float32Array.from([0, Infinity, 1, Infinity]), [], {})), [0, 0.5, 0, 0.5]);
    assert.throws(() => T.samplingProbs(Float32Array.from([0, NaN]), [], {}), /the logit of token 1 is NaN/);
  });

  it("samplingProbs is what sampleNext draws from (chi^2 over 20,000 draws)", () => {
    const row = Float32Array.from([1.5, -0.3, 0.8, 2.1, 0.1, -1, 1.2, 0.4]), seen = [3, 6], w = { temperature: 0.9, topK: 6, topP: 0.95, repetitionPenalty: 1.3 };
    const counts = new Array<number>(row.length).fill(0), g = new T.RandomGenerator(1);
    for (let i = 0; i < 20000; i++) counts[T.sampleNext(Float32Array.from(row), seen, w, g)]++;
    const r = chi2Test(counts, Array.from(T.samplingProbs(row, seen, w)));
    assert.ok(r.p > 0.01, JSON.stringify({ ...r, counts }));
  });

  /** The joint distribution of the 3 tokens after `prompt`, by enumeration, and 7,000 speculative samples of it (21,000 tokens). */
  function jointTest(w: Warp, extra: Partial<T.SpeculativeOptions> = {}) {
    const prompt = [0, 3], probs: number[] = [], counts = new Array<number>(V ** 3).fill(0);
    const next = (prefix: number[]) => refProbs(target.logitsOf(prefix), prefix, w);
    for (let a = 0; a < V; a++) for (let b = 0; b < V; b++) {
      const pab = next(prompt)[a] * next([...prompt, a])[b];
      next([...prompt, a, b]).forEach((pc) => probs.push(pab * pc));
    }
    let accepted = 0, verified = 0, beta = 0;
    for (let seed = 0; seed < 7000; seed++) {
      // gamma 2 over 3 tokens: the draft's first and second positions, the bonus token and later rounds all occur
      const r = T.speculativeGenerate(target, draft, prompt, { maxNewTokens: 3, gamma: 2, seed, ...w, ...extra });
      assert.equal(r.ids.length, 3);
      counts[(r.ids[0] * V + r.ids[1]) * V + r.ids[2]]++;
      accepted += r.stats.accepted; verified += r.stats.verified; beta += r.stats.alpha * r.stats.verified;
    }
    // each position's marginal alone too (the first is the draft's first, the third often a bonus token)
    const marginal = (pos: number, xs: number[]) => xs.reduce((m, x, cell) => { m[Math.floor(cell / V ** (2 - pos)) % V] += x; return m; }, new Array<number>(V).fill(0));
    const positions = [0, 1, 2].map((pos) => chi2Test(marginal(pos, counts), marginal(pos, probs)).p);
    return { ...chi2Test(counts, probs), positions, acceptRate: accepted / verified, alpha: beta / verified };
  }

  it("temperature 1: the target's distribution (chi^2 over 21,000 tokens); without the correction step the test rejects", () => {
    const ok = jointTest({ temperature: 1 });
    console.log(`# temperature 1: chi2 ${ok.chi2.toFixed(1)}, dof ${ok.dof}, p ${ok.p.toFixed(3)} (positions 1-3 alone: p ${ok.positions.map((p) => p.toFixed(3)).join(", ")}); alpha ${ok.alpha.toFixed(3)}, acceptance rate ${ok.acceptRate.toFixed(3)}`);
    assert.ok(ok.p > 0.01 && ok.positions.every((p) => p > 0.01), `p = ${ok.p}, ${ok.positions}`);
    assert.ok(Math.abs(ok.alpha - ok.acceptRate) < 0.02, "the acceptance rate is what alpha predicts");
    const bad = jointTest({ temperature: 1 }, { noCorrection: true });
    console.log(`# temperature 1, every draft token kept: chi2 ${bad.chi2.toFixed(1)}, dof ${bad.dof}, p ${bad.p.toExponential(2)}`);
    assert.ok(bad.p < 1e-6, `p = ${bad.p}`);
  });

  it("temperature 0.8, top-k 4, top-p 0.9, repetition penalty 1.5: the target's distribution", () => {
    const w = { temperature: 0.8, topK: 4, topP: 0.9, repetitionPenalty: 1.5 }, ok = jointTest(w);
    console.log(`# ${JSON.stringify(w)}: chi2 ${ok.chi2.toFixed(1)}, dof ${ok.dof}, p ${ok.p.toFixed(3)} (positions 1-3 alone: p ${ok.positions.map((p) => p.toFixed(3)).join(", ")}); alpha ${ok.alpha.toFixed(3)}`);
    assert.ok(ok.p > 0.01 && ok.positions.every((p) => p > 0.01), `p = ${ok.p}, ${ok.positions}`);
    const bad = jointTest(w, { noCorrection: true });
    console.log(`# the same, every draft token kept: chi2 ${bad.chi2.toFixed(1)}, dof ${bad.dof}, p ${bad.p.toExponential(2)}, ${bad.impossible} draws of probability-0 continuations`);
    assert.ok(bad.p < 1e-6, `p = ${bad.p}`);
  });
});

describe("speculative decoding: greedy output and the caches", () => {
  const t = tiny(1);
  const drafts: [string, T.CausalLM][] = [
    ["the target with noisy weights", perturbed(t, 0.3)],
    ["an unrelated GPT-2-layout model", new T.TransformerLM(T.gpt2Config({ vocabSize: 16, dModel: 8, nLayers: 1, nHeads: 2, maxSeqLen: 24 }), { generator: new T.RandomGenerator(7) })],
  ];

  it("greedy output is generate()'s, through window slides, with a repetition penalty and an eos id", () => {
    const prompt = [3, 1, 4, 1, 5];
    for (const o of [{ temperature: 0 }, { temperature: 0, repetitionPenalty: 1.3 }]) {
      const want = T.generate(t, prompt, { maxNewTokens: 50, ...o });  // 55 tokens: the 24-token window slides
      const eosId = want.ids[30];
      const wantEos = T.generate(t, prompt, { maxNewTokens: 50, eosId, ...o });
      for (const [name, d] of drafts) for (const gamma of [1, 3, 6]) {
        const r = T.speculativeGenerate(t, d, prompt, { maxNewTokens: 50, gamma, ...o });
        assert.deepEqual(r.ids, want.ids, `${name}, gamma ${gamma}, ${JSON.stringify(o)}`);
      }
      const e = T.speculativeGenerate(t, drafts[0][1], prompt, { maxNewTokens: 50, gamma: 3, eosId, ...o });
      assert.deepEqual([e.ids, e.stoppedBy], [wantEos.ids, wantEos.stoppedBy]);
    }
    const noisy = T.speculativeGenerate(t, drafts[0][1], prompt, { maxNewTokens: 50, gamma: 3, temperature: 0 }).stats;
    assert.ok(noisy.accepted > 0 && noisy.accepted < noisy.verified, JSON.stringify(noisy));
  });

  it("draft = target: every draft token is accepted (alpha 1), gamma + 1 tokens per target call", () => {
    const r = T.speculativeGenerate(t, t, [2], { maxNewTokens: 20, gamma: 4, temperature: 0 });
    assert.deepEqual(r.ids, T.generate(t, [2], { maxNewTokens: 20, temperature: 0 }).ids);
    const s = r.stats;
    assert.equal(s.alpha, 1);
    assert.equal(s.accepted, s.proposed);
    assert.deepEqual([s.targetCalls, s.tokensPerTargetCall, s.predictedTokensPerTargetCall], [4, 5, 5]);
    // sampling with draft = target: p = q, so nothing is ever rejected either
    const sampled = T.speculativeGenerate(t, t, [2], { maxNewTokens: 20, gamma: 4, temperature: 1, seed: 3 }).stats;
    assert.equal(sampled.accepted, sampled.proposed);
    // p and q agree to float rounding, not to the bit: the verify pass's attention rows reduce over more
    // (masked) keys than the one-token steps that made the draft's q
    assert.ok(Math.abs(sampled.alpha - 1) < 1e-6, `alpha ${sampled.alpha}`);
  });

  it("stop strings and streamed text as generate's", () => {
    const tok = T.CharTokenizer.fromText("abcdefghijklmnop");
    const want = T.generate(t, [0, 1], { maxNewTokens: 40, temperature: 0, tokenizer: tok });
    const stop = [want.text!.slice(12, 14)];
    const pieces: string[][] = [[], []];
    const a = T.generate(t, [0, 1], { maxNewTokens: 40, temperature: 0, tokenizer: tok, stop, onText: (s) => pieces[0].push(s) });
    const b = T.speculativeGenerate(t, drafts[0][1], [0, 1], { maxNewTokens: 40, temperature: 0, tokenizer: tok, stop, gamma: 5, onText: (s) => pieces[1].push(s) });
    assert.equal(a.stoppedBy, "stop");
    assert.deepEqual([b.ids, b.text, b.stoppedBy, pieces[1].join("")], [a.ids, a.text, a.stoppedBy, pieces[0].join("")]);
  });

  it("after every round both caches hold what a fresh prefill of the kept tokens gives (sampling, rejections, window slides)", () => {
    const last = (m: T.CausalLM, ids: readonly number[], ctx?: T.SeqContext) => {
      const l = T.noGrad(() => m.forward(T.tensor(Int32Array.from(ids), { shape: [1, ids.length] }), ctx).logits);
      return (l.toTypedArray() as Float32Array).slice((ids.length - 1) * 16);
    };
    const dec = new T.SpeculativeDecoder(t, drafts[0][1], [7, 7, 2], { gamma: 4, temperature: 0.1, seed: 11 });
    let slid = false;
    while (dec.tokens.length < 80) {
      dec.round();
      slid ||= dec.windowStart > 0;
      const window = dec.tokens.slice(dec.windowStart);
      if (window.length > 24) continue;  // a full window: the next round prefills its newest half again
      for (const lane of [dec.target, dec.draft]) {
        const held = lane.state.length;
        assert.deepEqual(lane.pending, window.slice(held), "the state holds the window's first ids, the rest are pending");
        const cached = last(lane.model, lane.pending, T.SeqContext.decode(lane.state));
        lane.state.truncate(held);
        const prefill = last(lane.model, window);
        cached.forEach((x, i) => assert.ok(Math.abs(x - prefill[i]) < 1e-5, `logit ${i}: ${x} (cache) vs ${prefill[i]} (prefill)`));
      }
    }
    const s = dec.stats();
    assert.ok(slid && s.verified - s.accepted >= 3 && s.accepted >= 3, `slid ${slid}, ${JSON.stringify(s)}`);
  });
});

describe("speculative decoding: bad input", () => {
  const t = tiny(1);
  it("gamma, vocabulary, noCache, a state that cannot roll back, prompt", () => {
    const go = (d: T.CausalLM, o: Partial<T.SpeculativeOptions>) => () => T.speculativeGenerate(t, d, [1], { maxNewTokens: 4, gamma: 2, ...o });
    assert.throws(go(t, { gamma: 0 }), /gamma \(draft tokens per round\) must be an integer >= 1, got 0/);
    assert.throws(go(t, { gamma: 1.5 }), /gamma .* must be an integer >= 1, got 1.5/);
    assert.throws(go(tiny(2, { vocabSize: 17 }), {}), /the draft model has vocabSize 17 but the target has 16/);
    assert.throws(go(t, { noCache: true } as Partial<T.SpeculativeOptions>), /noCache is not supported/);
    assert.throws(go(tiny(2, { attention: "linear" }), {}), /the draft model's decoding state cannot roll back/);
    assert.throws(go(t, { temperature: -1 }), /temperature must be a finite number >= 0/);
    assert.throws(() => T.speculativeGenerate(t, t, [], { maxNewTokens: 1, gamma: 1 }), /the prompt needs at least one token/);
    // a draft whose learned positions end before the target's window: refused up front, not deep in its forward
    const short = new T.TransformerLM(T.gpt2Config({ vocabSize: 16, dModel: 8, nLayers: 1, nHeads: 2, maxSeqLen: 8 }), { generator: new T.RandomGenerator(3) });
    assert.throws(go(short, {}), /the window is 24 tokens but the draft's learned positions stop at 8; give a context of at most 8/);
    assert.doesNotThrow(go(short, { context: 8 }));
  });

  it("checkSameTokenizer: one error naming the first difference", () => {
    const a = T.CharTokenizer.fromText("abcd");
    T.checkSameTokenizer(a, T.CharTokenizer.fromText("dcba"));
    assert.throws(() => T.checkSameTokenizer(a, T.CharTokenizer.fromText("abce")), /the draft's tokenizer differs from the target's: token 3 is "e" in the draft's, "d" in the target's/);
    assert.throws(() => T.checkSameTokenizer(a, T.CharTokenizer.fromText("abc")), /vocabulary size 3 in the draft's, 4 in the target's/);
  });

  it("the CLI: --gamma 0, --gamma without --draft, a draft of another vocabulary or tokenizer; greedy text as without --draft", async () => {
    failsWith(cliIn()("generate", "--model", "data/stories260K.bin", "--draft", "data/stories260K.bin", "--gamma", "0"), /--gamma expects an integer >= 1, got '0'/);
    const dir = mkdtempSync(join(tmpdir(), "tsformer-spec-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const small = (vocabSize: number) => T.toLlama2c(new T.TransformerLM(T.llamaConfig({ vocabSize, dModel: 16, nLayers: 1, nHeads: 2, dFF: 32, maxSeqLen: 64 })));
    mkdirSync(join(dir, "v300"));
    writeFileSync(join(dir, "v300", "d.bin"), small(300));
    // the same 512 ids, one piece changed (its bytes reversed)
    mkdirSync(join(dir, "tok"));
    writeFileSync(join(dir, "tok", "d.bin"), small(512));
    const tok = Buffer.from(readFileSync("data/tok512.bin"));
    let at = 4, id = 0;
    for (; ; id++) {
      const len = tok.readInt32LE(at + 4);
      if (id >= 300 && len >= 3) { tok.subarray(at + 8, at + 8 + len).reverse(); break; }
      at += 8 + len;
    }
    writeFileSync(join(dir, "tok", "tokenizer.bin"), tok);
    const run = async (o: Partial<Parameters<typeof runGenerate>[0]>) => {
      let out = "", log = "";
      await runGenerate({ model: "data/stories260K.bin", prompt: "Once upon a time", maxNewTokens: 40, temperature: 0, seed: 0, stop: [], ...o }, (s) => { out += s; return true; }, (s) => { log += s; return true; });
      return { out, log };
    };
    await assert.rejects(run({ draft: join(dir, "v300", "d.bin") }), /--draft .*d\.bin has vocabSize 300 but --model has 512; the draft must share the target's vocabulary/);
    await assert.rejects(run({ draft: join(dir, "tok", "d.bin") }), new RegExp(`--draft .*d\\.bin: the draft's tokenizer differs from the target's: token ${id} is`));
    await assert.rejects(run({ gamma: 3 }), /--gamma needs --draft MODEL/);
    // a draft with noisy weights, beside the same tokenizer: the greedy text of --model alone
    mkdirSync(join(dir, "noisy"));
    writeFileSync(join(dir, "noisy", "d.bin"), T.toLlama2c(perturbed(await T.loadLlama2c("data/stories260K.bin"), 0.2)));
    copyFileSync("data/tok512.bin", join(dir, "noisy", "tok512.bin"));
    const plain = await run({}), spec = await run({ draft: join(dir, "noisy", "d.bin"), gamma: 3 });
    assert.equal(spec.out, plain.out);
    assert.match(spec.log, /^speculative decoding: gamma 3, alpha \d\.\d\d \(\d+ of \d+ verified draft tokens accepted\), \d\.\d\d tokens per target call \(predicted from alpha: \d\.\d\d\), \d+ target \/ \d+ draft calls\n$/);
  });
});
