// Blocks from declared parts, parameter init roles, and the Module surface PEFT needs
// (replaceChild, adapter-only state dicts, non-strict loading with a torch-style report).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { Module } from "../../src/nn/module.js";
import { Linear } from "../../src/nn/layers.js";
import { GeluMLP } from "../../src/nn/ffn/mlp.js";
import { Block, blockParts } from "../../src/models/block.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { gpt2Config, llamaConfig } from "../../src/models/config.js";
import type { SelfAttention } from "../../src/nn/attention/softmax.js";

const llama = llamaConfig({ vocabSize: 19, dModel: 16, nLayers: 2, nHeads: 2, dFF: 24, maxSeqLen: 8 });

const proj = (m: TransformerLM, block: number, name: "wq" | "wv"): Linear => (m.blocks[block].attn as SelfAttention)[name];

/** A wrapper in the shape of a LoRA layer: the frozen base plus a trainable delta. */
class Wrapped extends Module {
  readonly base: Linear;
  readonly delta: Linear;
  constructor(base: Linear) {
    super();
    this.base = this.child("base", base);
    this.delta = this.child("delta", new Linear(base.inFeatures, base.outFeatures, false));
  }
  forward(x: T.Tensor): T.Tensor {
    return T.add(this.base.forward(x), this.delta.forward(x));
  }
}

describe("blocks from declared parts", () => {
  it("a GAU mixer declares its FFN: its block has no norm2 / mlp; other mixers get the FFN part", () => {
    const gau = new TransformerLM(gpt2Config({ vocabSize: 19, dModel: 16, nLayers: 1, nHeads: 2, maxSeqLen: 8, attention: "gau" }));
    assert.equal(gau.blocks[0].mlp, null);
    assert.ok(![...gau.namedParameters()].some(([n]) => n.includes("mlp") || n.includes("norm2")));
    assert.ok(new TransformerLM(llama).blocks[0].mlp);
  });

  it("a block takes any FFN part", () => {
    const parts = blockParts(llama, 0, () => new T.RandomGenerator(0));
    const block = new Block({ ...parts, ffn: new GeluMLP(16, 40, false, "tanh") });
    const names = [...block.namedParameters()].map(([n]) => n);
    assert.deepEqual(names.filter((n) => n.startsWith("mlp.")), ["mlp.fc1.weight", "mlp.fc2.weight"]);
    const x = T.randn([1, 5, 16], { generator: new T.RandomGenerator(1) });
    assert.deepEqual(block.forward(x).shape, [1, 5, 16]);
  });

  it("parameters declare their init roles where they are created", () => {
    const roles = Object.fromEntries([...new TransformerLM(llama).namedRoles()].map(([n, , r]) => [n, r]));
    assert.equal(roles["tok_emb.weight"], "embedding");
    assert.equal(roles["lm_head.weight"], "head");
    assert.equal(roles["blocks.1.attn.wq.weight"], "q");
    assert.equal(roles["blocks.1.attn.wk.weight"], "k");
    assert.equal(roles["blocks.1.attn.wv.weight"], "v");
    assert.equal(roles["blocks.1.attn.wo.weight"], "o");
    assert.equal(roles["blocks.0.mlp.w1.weight"], "ffn_in");
    assert.equal(roles["blocks.0.mlp.w3.weight"], "ffn_in");
    assert.equal(roles["blocks.0.mlp.w2.weight"], "ffn_out");
    assert.equal(roles["blocks.0.norm1.weight"], "norm");
    const gau = Object.fromEntries([...new TransformerLM(gpt2Config({ vocabSize: 19, dModel: 16, nLayers: 1, nHeads: 2, maxSeqLen: 8, attention: "gau_mixed" })).namedRoles()].map(([n, , r]) => [n, r]));
    assert.deepEqual([gau["blocks.0.attn.wu.weight"], gau["blocks.0.attn.wz.weight"], gau["blocks.0.attn.wv.weight"], gau["blocks.0.attn.wo.weight"]], ["ffn_in", "ffn_in", "v", "o"]);
    assert.equal(gau["blocks.0.attn.gamma"], undefined, "gamma keeps the GAU's own draw");
  });
});

describe("Module surface for adapters", () => {
  it("replaceChild swaps a nested submodule in the tree (parameter names follow)", () => {
    const m = new TransformerLM(llama);
    const old = m.replaceChild("blocks.1.attn.wq", new Wrapped(proj(m, 1, "wq")));
    assert.ok(old instanceof Linear);
    const names = [...m.namedParameters()].map(([n]) => n);
    assert.ok(names.includes("blocks.1.attn.wq.base.weight") && names.includes("blocks.1.attn.wq.delta.weight"));
    assert.ok(!names.includes("blocks.1.attn.wq.weight"));
    assert.throws(() => m.replaceChild("blocks.7.attn", new Module()), /no submodule blocks\.7\.attn/);
  });

  it("replaceChild reroutes the forward: the wrapper runs, and its delta gets the gradient", () => {
    const m = new TransformerLM(llama);
    const ids = T.tensor(new Int32Array([3, 1, 4, 1, 5]), { shape: [1, 5] });
    const before = T.noGrad(() => m.forward(ids).logits.toTypedArray());
    const w = new Wrapped(proj(m, 1, "wq"));
    m.replaceChild("blocks.1.attn.wq", w);
    assert.equal(proj(m, 1, "wq") as unknown, w, "the attention's field now holds the wrapper");
    const after = T.noGrad(() => m.forward(ids).logits.toTypedArray());
    assert.ok(after.some((v, i) => v !== before[i]), "a non-zero delta changes the logits");
    w.delta.weight.data.fill(0);
    assert.deepEqual(T.noGrad(() => m.forward(ids).logits.toTypedArray()), before, "a zero delta gives the base model's logits");
    m.requiresGrad_(false).requiresGrad_(true, (n) => n.includes(".delta."));
    T.sum(m.forward(ids).logits).backward();
    assert.ok(w.delta.weight.grad && w.delta.weight.grad.toTypedArray().some((v) => v !== 0));
  });

  it("adapter-only state dicts, and non-strict loading reports missing / unexpected keys", () => {
    const m = new TransformerLM(llama);
    m.replaceChild("blocks.0.attn.wv", new Wrapped(proj(m, 0, "wv")));
    m.requiresGrad_(false).requiresGrad_(true, (n) => n.includes(".delta."));
    assert.deepEqual(Object.keys(m.stateDict({ trainableOnly: true })), ["blocks.0.attn.wv.delta.weight"]);
    assert.deepEqual(Object.keys(m.stateDict({ only: (n) => n.endsWith("norm_f.weight") })), ["norm_f.weight"]);

    const adapter = m.stateDict({ trainableOnly: true });
    const src = adapter["blocks.0.attn.wv.delta.weight"];
    new T.RandomGenerator(5).normal(src.data as Float32Array, 0, 1);
    const fresh = new TransformerLM(llama);
    fresh.replaceChild("blocks.0.attn.wv", new Wrapped(proj(fresh, 0, "wv")));
    const r = fresh.loadStateDict({ ...adapter, "extra.weight": T.zeros([1]) }, { strict: false });
    assert.deepEqual(r.unexpected, ["extra.weight"]);
    assert.equal(r.missing.length, Object.keys(fresh.stateDict()).length - 1);
    assert.deepEqual(fresh.stateDict()["blocks.0.attn.wv.delta.weight"].toTypedArray(), src.toTypedArray());
    assert.throws(() => fresh.loadStateDict(adapter), /loadStateDict: missing lm_head\.weight, tok_emb\.weight/);
  });
});
