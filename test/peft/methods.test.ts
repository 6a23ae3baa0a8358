// Houlsby adapters, prefix tuning and prompt tuning on tiny TransformerLMs (a Llama layout with RoPE,
// GQA and flash attention; a GPT-2 layout with learned positions and softmax attention). The references
// are independent of the methods' code: the base model itself (identity at init; an adapter that adds a
// constant equals a base whose output bias holds it; prefixes equal to the base's own cached keys and
// values of real tokens give the base's logits after those tokens; a soft prompt copied from token
// embeddings gives the base's logits after those tokens), float64 finite differences, and cached vs
// recomputed decoding.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as T from "../../src/index.js";
import type { Module } from "../../src/nn/module.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { gpt2Config, llamaConfig, type ModelConfig } from "../../src/models/config.js";
import { SeqContext } from "../../src/nn/seq-context.js";
import { KVCache } from "../../src/nn/attention/kv-cache.js";
import { normal_ } from "../../src/nn/init-fns.js";
import { AdamW, defaultParamGroups } from "../../src/train/optim.js";
import { addHoulsbyAdapters, AdaptedLinear } from "../../src/peft/adapter.js";
import { addPrefixTuning } from "../../src/peft/prefix.js";
import { addPromptTuning } from "../../src/peft/prompt.js";
import type { CausalLM } from "../../src/models/causal-lm.js";

const V = 23;
const CONFIGS: Record<string, ModelConfig> = {
  llama: llamaConfig({ vocabSize: V, dModel: 16, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 24, maxSeqLen: 24, attention: "flash" }),
  gpt2: gpt2Config({ vocabSize: V, dModel: 16, nLayers: 2, nHeads: 2, maxSeqLen: 24, attention: "softmax" }),
};
const model = (name: string, seed = 1) => new TransformerLM(CONFIGS[name]!, { generator: new T.RandomGenerator(seed) });
const ids = (rows: number[][]) => T.tensor(Int32Array.from(rows.flat()), { shape: [rows.length, rows[0]!.length] });
const X = ids([[3, 1, 4, 1, 5, 9, 2], [6, 5, 3, 5, 8, 9, 7]]);
const U = [2, 7, 1, 8];  // "real" tokens standing in for p = 4 virtual ones
const logits = (m: CausalLM, x: Tensor, ctx?: SeqContext) => T.noGrad(() => m.forward(x, ctx).logits.toTypedArray());

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Test-only: re-type every float32 parameter as float64 in place (tsformer has no Module.to(dtype)). */
function toFloat64(...ms: Module[]): void {
  for (const m of ms) {
    for (const [, p] of m.namedParameters()) {
      if (p.dtype === "float64") continue;  // a tied weight, already done
      const t = p as unknown as { storage: Float64Array; dtype: string };
      t.storage = Float64Array.from(p.toTypedArray() as Float32Array);
      t.dtype = "float64";
    }
  }
}

/** Next-token loss of ids [B, T] under m. */
const lmLoss = (m: CausalLM, x: Tensor) => {
  const [B, n] = x.shape as [number, number];
  const lg = m.forward(x.narrow(1, 0, n - 1)).logits;
  return T.crossEntropy(lg.reshape(B * (n - 1), m.config.vocabSize), x.narrow(1, 1, n - 1).contiguous().reshape(B * (n - 1)));
};

/**
 * The real pretrained stories260K (llama2.c) as the frozen base (a random tiny model's near-flat logits
 * leave an adapter little to move), and a few AdamW steps on `adapt(base)`'s trainable parameters over
 * a fixed batch; returns the loss before and after.
 */
async function trainOnStories(adapt: (base: TransformerLM) => [CausalLM, Module]): Promise<[number, number]> {
  const base = await T.loadLlama2c(T.dataPath("stories260K.bin"));
  const [m, trained] = adapt(base);
  const seq = [1, 403, 407, 261, 378, 1, 403, 407, 261, 378, 1, 403, 407, 261, 378, 1, 403];
  const x = T.tensor(Int32Array.from([...seq, ...seq.map((t) => (t * 7) % 500)]), { shape: [2, 17] });
  const opt = new AdamW(defaultParamGroups(trained, 0), { lr: 3e-2 });
  const first = T.noGrad(() => lmLoss(m, x).item());
  for (let s = 0; s < 10; s++) {
    T.tidy(() => {
      lmLoss(m, x).backward();
      opt.step();
      opt.zeroGrad();
    });
  }
  return [first, T.noGrad(() => lmLoss(m, x).item())];
}

/** With the base frozen, a backward leaves gradients on `own`'s parameters only (each nonzero somewhere). */
function assertOnlyOwnGrads(base: Module, own: Module, loss: () => Tensor): void {
  base.requiresGrad_(false);
  loss().backward();
  for (const [n, p] of base.namedParameters()) assert.equal(p.grad, null, `${n} is frozen`);
  for (const [n, p] of own.namedParameters()) {
    assert.ok(p.grad && (p.grad.toTypedArray() as Float32Array).some((v) => v !== 0), `${n} has a gradient`);
  }
}

/** A virtual-token wrapper on a frozen base: gradients reach only its own parameters and match float64 finite differences on `input`. */
function checkWrapperGrads(base: TransformerLM, wrapper: CausalLM & Module, input: number[]): void {
  assertOnlyOwnGrads(base, wrapper, () => lmLoss(wrapper, X));
  toFloat64(base, wrapper);
  const r = T.gradcheck(() => wrapper.forward(ids([input])).logits, wrapper.parameters(), { generator: new T.RandomGenerator(7) });
  assert.ok(r.maxAbsError < 1e-7, JSON.stringify(r));  // gradcheck itself throws past atol 1e-7 + rtol 1e-5
}

/** trainOnStories for 4 virtual tokens of `add` (prefix or prompt tuning) on the frozen base. */
const trainVirtualTokens = (add: (base: TransformerLM, o: { numVirtualTokens: number }) => CausalLM & Module) =>
  trainOnStories((base) => {
    const wrapper = add(base.requiresGrad_(false), { numVirtualTokens: 4 });
    return [wrapper, wrapper];
  });

describe("Houlsby adapters", () => {
  for (const name of ["llama", "gpt2"]) {
    test(`${name}: at init the logits are the base model's exactly; base names unchanged, a base state dict loads`, () => {
      const base = model(name), adapted = model(name);
      const { paths, isAdapterParam } = addHoulsbyAdapters(adapted, { bottleneck: 3 });
      const out = name === "llama" ? "w2" : "fc2";
      assert.deepEqual(paths, ["blocks.0.attn.wo", `blocks.0.mlp.${out}`, "blocks.1.attn.wo", `blocks.1.mlp.${out}`]);
      assert.deepEqual(logits(adapted, X), logits(base, X));
      const names = Object.keys(adapted.stateDict());
      const adapterNames = names.filter(isAdapterParam);
      assert.deepEqual(names.filter((n) => !isAdapterParam(n)), Object.keys(base.stateDict()));
      assert.deepEqual(adapterNames.filter((n) => n.startsWith("blocks.0.attn.")), ["down.weight", "down.bias", "up.weight", "up.bias"].map((s) => `blocks.0.attn.wo.adapter.${s}`));
      assert.equal(adapterNames.length, 16);
      const r = adapted.loadStateDict(base.stateDict(), { strict: false });
      assert.deepEqual([r.missing, r.unexpected], [adapterNames, []]);
    });
  }

  test("placement: an adapter adding a constant (down = 0, up.bias = c) equals the base with c added to the output projection's bias", () => {
    const base = model("gpt2"), adapted = model("gpt2");
    addHoulsbyAdapters(adapted, { bottleneck: 2, nonlinearity: "relu" });
    const g = new T.RandomGenerator(4);
    const sd = adapted.stateDict(), ref = base.stateDict();
    for (const p of ["blocks.0.attn.wo", "blocks.1.mlp.fc2"]) {
      sd[`${p}.adapter.down.weight`]!.data.fill(0);
      const c = normal_(sd[`${p}.adapter.up.bias`]!, 0, 0.5, { generator: g }).toTypedArray();
      const bias = ref[`${p}.bias`]!.data as Float32Array;
      c.forEach((v, i) => { bias[i] += v; });
    }
    assert.ok(maxAbsDiff(logits(adapted, X), logits(base, X)) < 1e-5);
  });

  test("the adapter computes h + up(relu(down h)) (checked element by element)", () => {
    const m = model("llama");
    addHoulsbyAdapters(m, { bottleneck: 2, nonlinearity: "relu" });
    const a = (new Map(m.namedModules()).get("blocks.0.mlp.w2") as AdaptedLinear).adapter;
    normal_(a.up.weight, 0, 1, { generator: new T.RandomGenerator(2) });
    normal_(a.down.bias!, 0, 1, { generator: new T.RandomGenerator(3) });
    const h = T.randn([3, 16], { generator: new T.RandomGenerator(5) });
    const got = T.noGrad(() => a.forward(h)).toTypedArray();
    const [hd, dw, db, uw, ub] = [h, a.down.weight, a.down.bias!, a.up.weight, a.up.bias!].map((t) => t.toTypedArray());
    for (let r = 0; r < 3; r++) {
      const z = [0, 1].map((j) => Math.max(0, db[j]! + Array.from({ length: 16 }, (_, k) => dw[j * 16 + k]! * hd[r * 16 + k]!).reduce((s, v) => s + v)));
      for (let i = 0; i < 16; i++) assert.ok(Math.abs(got[r * 16 + i]! - (hd[r * 16 + i]! + ub[i]! + uw[i * 2]! * z[0]! + uw[i * 2 + 1]! * z[1]!)) < 1e-5);
    }
  });

  test("frozen base: gradients reach only the adapters and match float64 finite differences", () => {
    const m = model("gpt2");
    const { isAdapterParam } = addHoulsbyAdapters(m, { bottleneck: 2 });
    for (const [n, p] of m.namedParameters()) if (n.endsWith("up.weight")) normal_(p, 0, 0.3, { generator: new T.RandomGenerator(6) });
    toFloat64(m);
    m.requiresGrad_(false, (n) => !isAdapterParam(n));
    const params = [...m.namedParameters()].filter(([n]) => isAdapterParam(n)).map(([, p]) => p);
    const r = T.gradcheck(() => m.forward(ids([[3, 1, 4, 1, 5]])).logits, params, { generator: new T.RandomGenerator(7) });
    assert.ok(r.maxAbsError < 1e-7, JSON.stringify(r));  // gradcheck itself throws past atol 1e-7 + rtol 1e-5
    for (const [n, p] of m.namedParameters()) assert.equal(p.grad === null, !isAdapterParam(n), n);
  });

  test("a few training steps on stories260K lower the loss", async () => {
    const [before, after] = await trainOnStories((m) => {
      const { isAdapterParam } = addHoulsbyAdapters(m, { bottleneck: 8 });
      m.requiresGrad_(false, (n) => !isAdapterParam(n));
      return [m, m];
    });
    assert.ok(after < before - 2, `${before} -> ${after}`);
  });

  test("bad options and a second application give one clear error", () => {
    for (const b of [0, -2, 1.5]) assert.throws(() => addHoulsbyAdapters(model("llama"), { bottleneck: b }), /bottleneck must be an integer >= 1, got/);
    assert.throws(() => addHoulsbyAdapters(model("llama"), { bottleneck: 2, nonlinearity: "tanh" as "relu" }), /nonlinearity must be "gelu" or "relu"/);
    const m = model("llama");
    addHoulsbyAdapters(m, { bottleneck: 2 });
    assert.throws(() => addHoulsbyAdapters(m, { bottleneck: 2 }), /blocks\.0\.attn\.wo already has a Houlsby adapter/);
  });
});

/** The base's keys and values of tokens u (B = 1), as PEFT's prompt_embeddings [p, L * 2 * Hkv * d]. */
function cachedPrefix(base: TransformerLM, u: number[]): Tensor {
  const state = base.newState();
  T.noGrad(() => base.forward(ids([u]), SeqContext.decode(state)));
  const c = base.config, hkv = c.nKvHeads ?? c.nHeads, d = c.dModel / c.nHeads, p = u.length, w = c.nLayers * 2 * hkv * d;
  const out = new Float32Array(p * w);
  (state.layers as KVCache[]).forEach((cache, l) => {
    const [k, v] = cache.append(T.zeros([1, hkv, 0, d]), T.zeros([1, hkv, 0, d])).map((t) => t.contiguous().toTypedArray());  // [1, Hkv, p, d]
    for (let i = 0; i < p; i++) for (let h = 0; h < hkv; h++) for (let j = 0; j < d; j++) {
      out[i * w + (2 * l) * hkv * d + h * d + j] = k![(h * p + i) * d + j]!;
      out[i * w + (2 * l + 1) * hkv * d + h * d + j] = v![(h * p + i) * d + j]!;
    }
  });
  return T.tensor(out, { shape: [p, w] });
}

/** Base logits for x after the tokens u, each row continuing its own copy of u's cache. */
function baseAfter(base: TransformerLM, u: number[], x: Tensor): ArrayLike<number> {
  const state = base.newState();
  T.noGrad(() => base.forward(ids(Array.from({ length: x.shape[0]! }, () => u)), SeqContext.decode(state)));
  return logits(base, x, SeqContext.decode(state));
}

describe("prefix tuning", () => {
  for (const name of ["llama", "gpt2"]) {
    test(`${name}: prefixes equal to the base's cached keys / values of real tokens give the base's logits after them`, () => {
      const base = model(name);
      const pt = addPrefixTuning(base, { numVirtualTokens: U.length, projectionHidden: 0 });
      pt.importPromptEmbeddings(cachedPrefix(base, U));
      assert.ok(maxAbsDiff(logits(pt, X), baseAfter(base, U, X)) < 1e-5);
      assert.equal(pt.config.maxSeqLen, 24 - U.length);
      // past the base's training length: RoPE goes on, learned positions refuse
      const past = () => pt.forward(ids([Array.from({ length: 21 }, () => 1)]));
      if (name === "gpt2") assert.throws(past, /25 positions exceed the 24 learned positions/);
      else past();
    });

    test(`${name}: cached decoding equals full recomputation (logits and greedy generate)`, () => {
      const pt = addPrefixTuning(model(name), { numVirtualTokens: 3, projectionHidden: 8 });
      const full = logits(pt, X);
      const state = pt.newState();
      const first = logits(pt, X.narrow(1, 0, 4), SeqContext.decode(state));
      const rest = logits(pt, X.narrow(1, 4, 3).contiguous(), SeqContext.decode(state));
      const Vt = V;
      for (let b = 0; b < 2; b++) for (let t = 0; t < 7; t++) for (let v = 0; v < Vt; v++) {
        const got = t < 4 ? first[(b * 4 + t) * Vt + v]! : rest[(b * 3 + t - 4) * Vt + v]!;
        assert.ok(Math.abs(got - full[(b * 7 + t) * Vt + v]!) < 1e-5);
      }
      // 30 new tokens: past the context of 24 - 3, so generate's window slides too
      const o = { maxNewTokens: 30, temperature: 0 };
      const cached = T.generate(pt, [3, 1, 4], o).ids;
      assert.deepEqual(T.generate(pt, [3, 1, 4], { ...o, noCache: true }).ids, cached);
      assert.equal(cached.length, 30);
    });
  }

  test("frozen base: gradients reach only P' and the MLP, and match float64 finite differences", () => {
    const base = model("llama");
    const pt = addPrefixTuning(base, { numVirtualTokens: 2, projectionHidden: 3 });
    assert.deepEqual(Object.keys(pt.stateDict()), ["embedding.weight", "transform.0.weight", "transform.0.bias", "transform.2.weight", "transform.2.bias"]);
    checkWrapperGrads(base, pt, [3, 1, 4, 1]);
  });

  test("exported prefixes load into a model without the MLP and give the same logits", () => {
    const pt = addPrefixTuning(model("gpt2"), { numVirtualTokens: 3 });
    const exported = pt.exportPromptEmbeddings();
    assert.deepEqual(exported.shape, [3, 2 * 2 * 16]);
    const frozen = addPrefixTuning(model("gpt2"), { numVirtualTokens: 3, projectionHidden: 0 });
    frozen.importPromptEmbeddings(exported);
    assert.ok(maxAbsDiff(logits(frozen, X), logits(pt, X)) < 1e-6);
    assert.throws(() => pt.importPromptEmbeddings(exported), /load into a model without the MLP \(addPrefixTuning with projectionHidden: 0\)/);
    assert.throws(() => frozen.importPromptEmbeddings(T.zeros([3, 8])), /prompt_embeddings must be \[3, 64\]/);
  });

  test("a few training steps on stories260K lower the loss", async () => {
    const [before, after] = await trainVirtualTokens(addPrefixTuning);
    assert.ok(after < before - 2, `${before} -> ${after}`);
  });

  test("bad options and attention variants without prefixes give one clear error", () => {
    for (const p of [0, -1, 2.5, 24]) assert.throws(() => addPrefixTuning(model("llama"), { numVirtualTokens: p }), /addPrefixTuning: numVirtualTokens must be an integer in \[1, 23\]/);
    assert.throws(() => addPrefixTuning(model("llama"), { numVirtualTokens: 2, projectionHidden: -1 }), /projectionHidden must be an integer >= 0/);
    for (const attention of ["linear", "sparse", "gau"]) {
      const m = new TransformerLM(llamaConfig({ vocabSize: V, dModel: 16, nLayers: 1, nHeads: 2, dFF: 24, maxSeqLen: 24, attention }));
      assert.throws(() => addPrefixTuning(m, { numVirtualTokens: 2 }), new RegExp(`attention "${attention}" cannot take key/value prefixes`));
      const prefix = { k: T.zeros([2, 2, 8]), v: T.zeros([2, 2, 8]) };
      assert.throws(() => m.forward(X, new SeqContext({ prefixes: [prefix] })), new RegExp(`attention "${attention}" does not support key/value prefixes`));
    }
    assert.throws(() => new SeqContext({ prefixes: [], cuSeqlens: Int32Array.from([0, 7]) }), /cannot be combined with an explicit mask or packed documents/);
    const pt = addPrefixTuning(model("llama"), { numVirtualTokens: 2 });
    assert.throws(() => pt.forward(X, SeqContext.decode(model("llama").newState())), /state must come from this model's newState/);
  });
});

describe("prompt tuning", () => {
  for (const name of ["llama", "gpt2"]) {
    test(`${name}: a soft prompt copied from the embeddings of tokens u gives the base's logits after u; real tokens only`, () => {
      const base = model(name);
      const pt = addPromptTuning(base, { numVirtualTokens: U.length, init: { textIds: U } });
      const out = T.noGrad(() => pt.forward(X));
      assert.deepEqual(out.logits.shape, [2, 7, V]);
      assert.deepEqual(out.hidden!.shape, [2, 7, 16]);
      assert.ok(maxAbsDiff(out.logits.toTypedArray(), baseAfter(base, U, X)) < 1e-5);
      assert.equal(pt.config.maxSeqLen, 24 - U.length);
    });
  }

  test("TransformerLM's prefixEmbeds entry: [B, P, D] rows are per batch row, [P, D] is shared; bad ones give one clear error", () => {
    const m = model("gpt2"), g = new T.RandomGenerator(8);
    const [e0, e1] = [T.randn([3, 16], { generator: g }), T.randn([3, 16], { generator: g })];
    const run = (x: Tensor, prefixEmbeds: Tensor) => T.noGrad(() => m.forward(x, undefined, { prefixEmbeds }).logits.toTypedArray());
    const both = run(X, T.stack([e0!, e1!]));
    assert.ok(maxAbsDiff(both.slice(0, 7 * V), run(X.narrow(0, 0, 1), e0!)) < 1e-6);
    assert.ok(maxAbsDiff(both.slice(7 * V), run(X.narrow(0, 1, 1), e1!)) < 1e-6);
    assert.deepEqual(run(X, e0!), run(X, T.stack([e0!, e0!])));
    for (const bad of [T.zeros([3, 8]), T.zeros([3, 3, 16]), T.zeros([0, 16]), T.zeros([3, 16], { dtype: "float64" })]) {
      assert.throws(() => run(X, bad), /prefixEmbeds must be float32 \[P, 16\] or \[2, P, 16\] with P >= 1, got/);
    }
  });

  test("text init repeats or cuts the ids to p (PEFT's TEXT init); random init is U(-0.5, 0.5)", () => {
    const base = model("llama"), emb = base.tokEmb.weight.toTypedArray();
    const rows = (ids: number[]) => ids.flatMap((i) => Array.from(emb.slice(i * 16, i * 16 + 16)));
    assert.deepEqual(Array.from(addPromptTuning(base, { numVirtualTokens: 5, init: { textIds: [3, 7] } }).embedding.weight.toTypedArray()), rows([3, 7, 3, 7, 3]));
    assert.deepEqual(Array.from(addPromptTuning(base, { numVirtualTokens: 2, init: { textIds: [4, 5, 6] } }).embedding.weight.toTypedArray()), rows([4, 5]));
    const r = addPromptTuning(base, { numVirtualTokens: 8 }).embedding.weight.toTypedArray();
    assert.ok(r.every((v) => v >= -0.5 && v < 0.5) && Math.max(...r) > 0.3 && Math.min(...r) < -0.3);
  });

  test("generate: the soft prompt enters at prefill only; cached == recomputed", () => {
    const base = model("gpt2"), pt = addPromptTuning(base, { numVirtualTokens: 3 });
    const o = { maxNewTokens: 30, temperature: 0 };  // past the context of 24 - 3: the window slides
    const cached = T.generate(pt, [5, 2], o).ids;
    assert.deepEqual(T.generate(pt, [5, 2], { ...o, noCache: true }).ids, cached);
    const state = pt.newState();
    logits(pt, ids([[5, 2]]), SeqContext.decode(state));
    assert.equal(state.length, 5);
    const step = logits(pt, ids([[cached[0]!]]), SeqContext.decode(state));
    const full = logits(pt, ids([[5, 2, cached[0]!]]));
    assert.ok(maxAbsDiff(step, Array.from(full).slice(2 * V)) < 1e-5);
  });

  test("frozen base: gradients reach only the soft prompt and match float64 finite differences", () => {
    const base = model("llama"), pt = addPromptTuning(base, { numVirtualTokens: 2 });
    assert.deepEqual(Object.keys(pt.stateDict()), ["embedding.weight"]);
    checkWrapperGrads(base, pt, [3, 1, 4]);
  });

  test("a few training steps on stories260K lower the loss", async () => {
    const [before, after] = await trainVirtualTokens(addPromptTuning);
    assert.ok(after < before - 1, `${before} -> ${after}`);
  });

  test("export / import round trip", () => {
    const pt = addPromptTuning(model("llama"), { numVirtualTokens: 4, init: { textIds: U } });
    const other = addPromptTuning(model("llama"), { numVirtualTokens: 4 });
    other.importPromptEmbeddings(pt.exportPromptEmbeddings());
    assert.deepEqual(logits(other, X), logits(pt, X));
    assert.throws(() => other.importPromptEmbeddings(T.zeros([3, 16])), /prompt_embeddings must be \[4, 16\]/);
  });

  test("bad options and contexts give one clear error", () => {
    for (const p of [0, -3, 1.5]) assert.throws(() => addPromptTuning(model("llama"), { numVirtualTokens: p }), /addPromptTuning: numVirtualTokens must be an integer in \[1, 23\]/);
    for (const textIds of [[], [23], [1, -1]]) assert.throws(() => addPromptTuning(model("llama"), { numVirtualTokens: 2, init: { textIds } }), /init must be "random" or \{ textIds: \[\.\.\.\] \} with at least one token id in \[0, 22\]/);
    const pt = addPromptTuning(model("llama"), { numVirtualTokens: 2 });
    assert.throws(() => pt.forward(X, SeqContext.causal({ start: 3 })), /without a decoding state must start at 0/);
    assert.throws(() => pt.forward(X, SeqContext.atPositions(Int32Array.from([0, 1, 2, 3, 4, 5, 6]))), /explicit positions, masks and packed documents are not supported/);
  });
});
