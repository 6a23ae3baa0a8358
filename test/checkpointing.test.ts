// Gradient checkpointing (src/nn/checkpoint.ts, ModelConfig.checkpointing): with dropout on, the loss
// and every parameter's gradient are bit-identical to the same model without checkpointing (GPT-2 and
// Llama layouts; flash, softmax and the non-exact linear and GAU mixers; LoRA; a Performer that redraws
// its projection; several AdamW steps); the bytes saved for backward fall to one input per checkpointed
// run of blocks, plus one run's activations while it is recomputed; bad input.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as T from "../src/index.js";
import { TransformerLM } from "../src/models/transformer.js";
import { gpt2Config, llamaConfig, type ModelConfig, type ModelConfigInput } from "../src/models/config.js";
import { checkpoint, checkpointSequential } from "../src/nn/checkpoint.js";
import { normal_ } from "../src/nn/init-fns.js";
import { Linear } from "../src/nn/layers.js";
import { PerformerAttention } from "../src/nn/attention/performer.js";
import { SeqContext } from "../src/nn/seq-context.js";
import { applyLora } from "../src/peft/index.js";
import { AdamW, defaultParamGroups } from "../src/train/optim.js";
import { checkpointingArg } from "../src/cli/train.js";
import { forEachBackend } from "./helpers/backends.js";

type Checkpointing = ModelConfig["checkpointing"];
const B = 2, S = 12;
const tiny = { vocabSize: 29, dModel: 16, nHeads: 2, maxSeqLen: S, dFF: 32, dropout: 0.1 };
const gpt2 = (o: Partial<ModelConfigInput> = {}) => gpt2Config({ ...tiny, nLayers: 3, ...o });
const llama = (o: Partial<ModelConfigInput> = {}) => llamaConfig({ ...tiny, nLayers: 3, nKvHeads: 1, ...o });

function model(cfg: ModelConfig, checkpointing: Checkpointing): TransformerLM {
  return new TransformerLM({ ...cfg, checkpointing }, { generator: new T.RandomGenerator(1), dropoutGenerator: new T.RandomGenerator(9) });
}

function batch(cfg: ModelConfig, seed = 3): { x: T.Tensor; y: T.Tensor } {
  const g = new T.RandomGenerator(seed);
  return { x: T.randint(cfg.vocabSize, [B, S], { generator: g }), y: T.randint(cfg.vocabSize, [B, S], { generator: g }) };
}

const lossOf = (m: TransformerLM, b: { x: T.Tensor; y: T.Tensor }) => T.crossEntropy(m.forward(b.x).logits.reshape(-1, m.config.vocabSize), b.y.reshape(-1));

/** The loss and each parameter's gradient (null when it has none) after one forward + backward. */
function gradients(m: TransformerLM, cfg: ModelConfig): { loss: number; grads: [string, Float32Array | null][] } {
  const loss = lossOf(m, batch(cfg));
  loss.backward();
  return { loss: loss.item(), grads: [...m.namedParameters()].map(([n, p]) => [n, p.grad ? Float32Array.from(p.grad.toTypedArray()) : null]) };
}

/** Every value bit for bit (Object.is: -0 and NaN too); the message names the first parameter that differs. */
function assertIdentical(got: { loss: number; grads: [string, Float32Array | null][] }, want: typeof got): void {
  assert.ok(Object.is(got.loss, want.loss), `loss ${got.loss} vs ${want.loss}`);
  assert.equal(got.grads.length, want.grads.length);
  want.grads.forEach(([n, w], i) => {
    const g = got.grads[i][1];
    if (!w || !g) { assert.equal(g, w, `${n}: gradient presence differs`); return; }
    const k = w.findIndex((v, j) => !Object.is(v, g[j]));
    assert.equal(k, -1, `${n}[${k}]: ${g[k]} vs ${w[k]} without checkpointing`);
  });
}

forEachBackend("checkpointing: gradients bit-identical to no checkpointing (dropout 0.1)", () => {
  const layouts = { "GPT-2": gpt2, Llama: llama };
  for (const [layout, make] of Object.entries(layouts)) {
    for (const attention of ["flash", "softmax", "linear", "gau"]) {
      test(`${layout}, ${attention}: "block" and { every: 2 }`, () => {
        const cfg = make({ attention });
        const want = gradients(model(cfg, "none"), cfg);
        assert.ok(want.grads.every(([, g]) => g && g.some((v) => v !== 0)), "every parameter gets a non-zero gradient");
        assertIdentical(gradients(model(cfg, "block"), cfg), want);
        assertIdentical(gradients(model(cfg, { every: 2 }), cfg), want);
      });
    }
  }

  test("LoRA (r 4, dropout 0.1, B drawn non-zero): adapter gradients identical, the frozen base gets none", () => {
    const cfg = gpt2({ attention: "flash" });
    const run = (ck: Checkpointing) => {
      const m = model(cfg, ck);
      applyLora(m, { r: 4, alpha: 8, dropout: 0.1, targetModules: ["wq", "wv", "fc1"] }, { generator: new T.RandomGenerator(5) });
      for (const [n, p] of m.namedParameters()) if (n.includes("lora_B")) normal_(p, 0, 0.1, { generator: new T.RandomGenerator(n.length) });
      return gradients(m, cfg);
    };
    const want = run("none");
    const lora = want.grads.filter(([n]) => n.includes("lora_"));
    assert.ok(lora.length === 18 && lora.every(([, g]) => g && g.some((v) => v !== 0)), "every A and B has a non-zero gradient");
    assert.ok(want.grads.filter(([n]) => !n.includes("lora_")).every(([, g]) => g === null), "the base is frozen");
    assertIdentical(run("block"), want);
  });

  test("Performer redrawing its projection every 2 training passes: 3 steps, gradients and buffers identical", () => {
    // The redraw counter and the projection are buffers the forward updates: the replay must see them
    // as the forward did and leave them as the forward left them.
    const cfg = gpt2({ attention: "performer" });
    const run = (ck: Checkpointing) => {
      const m = model(cfg, ck);
      m.blocks.forEach((b, i) => {
        const p = new PerformerAttention({ dModel: cfg.dModel, nHeads: cfg.nHeads, nKvHeads: cfg.nHeads, bias: true, rope: null, scale: 1 / Math.sqrt(cfg.dModel / cfg.nHeads), layer: i, nLayers: cfg.nLayers, maxSeqLen: S }, { redrawInterval: 2 });
        p.loadStateDict(b.attn.stateDict());
        m.replaceChild(`blocks.${i}.attn`, p);
      });
      const out = [0, 1, 2].map(() => { m.zeroGrad(); return gradients(m, cfg); });
      return { out, buffers: Object.fromEntries([...m.namedBuffers()].map(([n, t]) => [n, Array.from(t.toTypedArray())])) };
    };
    const want = run("none"), got = run("block");
    assert.deepEqual(got.buffers, want.buffers);
    assert.ok(want.out[2].loss !== want.out[1].loss);
    want.out.forEach((w, i) => assertIdentical(got.out[i], w));
  });

  test("3 AdamW steps in tidy scopes (recycled storage, the dropout stream carried over): identical weights", () => {
    const cfg = llama({ attention: "flash" });
    const train = (ck: Checkpointing) => {
      const m = model(cfg, ck), opt = new AdamW(defaultParamGroups(m, 0.1), { lr: 1e-2 });
      for (let s = 0; s < 3; s++) T.tidy(() => { lossOf(m, batch(cfg, 10 + s)).backward(); opt.step(); opt.zeroGrad(); });
      return { loss: T.noGrad(() => lossOf(m, batch(cfg, 99)).item()), grads: [...m.namedParameters()].map(([n, p]) => [n, Float32Array.from(p.toTypedArray())] as [string, Float32Array]) };
    };
    assertIdentical(train({ every: 2 }), train("none"));
  });
});

describe("checkpointing: bytes saved for backward (memory accounting)", () => {
  // Without checkpointing each layer saves a fixed set of S_L bytes (its input among them). With
  // checkpointing every k layers, each run of k layers keeps only its input, 4 B T D bytes, and while a
  // run is recomputed its k layers' sets come back but for that input (counted already).
  const input = 4 * B * S * tiny.dModel;
  const measure = (L: number, ck: Checkpointing) => {
    const cfg = gpt2({ nLayers: L, attention: "flash" });
    const m = model(cfg, ck), before = T.memoryStats().savedBytes;
    const loss = lossOf(m, batch(cfg));
    const saved = T.memoryStats().savedBytes - before;
    T.resetPeakMemory();
    loss.backward();
    return { saved, peak: T.memoryStats().peakSavedBytes - before, after: T.memoryStats().savedBytes - before };
  };
  test("none: every layer adds the same set; block and { every: 2 } keep one input per run, plus one run while recomputing", () => {
    const none = [2, 3, 4].map((L) => measure(L, "none").saved);
    const perLayer = none[1] - none[0];
    assert.equal(none[2] - none[1], perLayer);
    assert.ok(perLayer > 10 * input, `a layer saves ${perLayer} bytes, its input ${input}`);
    for (const [ck, k] of [["block", 1], [{ every: 2 }, 2]] as const) {
      const r = measure(4, ck), runs = 4 / k;
      assert.equal(r.saved, none[2] - runs * (k * perLayer - input), `${JSON.stringify(ck)}: saved after forward`);
      assert.equal(r.peak, r.saved + k * perLayer - input, `${JSON.stringify(ck)}: peak during backward`);
      assert.equal(r.after, 0, "backward releases everything");
    }
  });
});

describe("checkpointing: where it applies, and bad input", () => {
  test("off in eval mode and under noGrad: decoding with a KV cache works and matches no checkpointing", () => {
    const cfg = gpt2({ attention: "flash" }), ids = batch(cfg).x;
    const logits = (ck: Checkpointing) => {
      const m = model(cfg, ck);
      return T.noGrad(() => m.forward(ids, SeqContext.decode(m.newState())).logits.toArray());
    };
    assert.deepEqual(logits("block"), logits("none"));
    // eval with grad on records the plain graph: it saves what the model without checkpointing saves
    const savedInEval = (ck: Checkpointing) => {
      const m = model(cfg, ck).eval(), before = T.memoryStats().savedBytes, out = m.forward(ids).logits;
      const saved = T.memoryStats().savedBytes - before;
      out.sum().backward();
      return saved;
    };
    assert.equal(savedInEval("block"), savedInEval("none"));
  });

  test("training with a decoding state or key/value prefixes: one clear error", () => {
    const cfg = gpt2({ attention: "flash" }), m = model(cfg, "block"), ids = batch(cfg).x;
    assert.throws(() => m.forward(ids, SeqContext.decode(m.newState())), /checkpointing "block" recomputes the blocks in backward and cannot train with a decoding state \(KV cache\)/);
    const prefix = { k: T.zeros([2, 1, 8]).requiresGrad_(), v: T.zeros([2, 1, 8]) };
    assert.throws(() => m.forward(ids, new SeqContext({ prefixes: [prefix, prefix, prefix] })), /cannot train with key\/value prefixes \(prefix tuning\)/);
  });

  test("config: { every: 0 }, a fraction, an unknown name or key are refused naming the field", () => {
    assert.throws(() => gpt2({ checkpointing: { every: 0 } }), /checkpointing\.every: Too small: expected number to be >=1/);
    for (const bad of [{ every: 1.5 }, "blocks", 2]) {
      assert.throws(() => gpt2({ checkpointing: bad as never }), /checkpointing: expected "none", "block" or \{ "every": k \} with k an integer >= 1/);
    }
    assert.throws(() => gpt2({ checkpointing: { every: 2, layers: 1 } as never }), /checkpointing: Unrecognized key: "layers"/);
    assert.throws(() => checkpointSequential([], T.zeros([1]), 0, (_, x) => x), /every must be an integer >= 1, got 0/);
  });

  test("--checkpointing none | block | N (train, finetune)", () => {
    assert.deepEqual(["none", "block", "3"].map(checkpointingArg), ["none", "block", { every: 3 }]);
    for (const bad of ["0", "2.5", "", "blocks"]) assert.throws(() => checkpointingArg(bad), new RegExp(`--checkpointing expects none, block or an integer >= 1 \\(blocks recomputed together\\), got '${bad}'`));
  });

  test("a function reading a trainable tensor it was not given, and gradients of gradients: clear errors", () => {
    const inner = new Linear(3, 3), outer = new Linear(3, 3), x = T.randn([2, 3]).requiresGrad_();
    const y = checkpoint((h) => outer.forward(inner.forward(h)), x, { modules: [inner] });
    assert.throws(() => y.sum().backward(), /checkpoint: the checkpointed function reads Tensor\(\[3, 3\], float32, requiresGrad\), which requires grad but is neither its input nor a parameter of the given modules/);
    const [g] = T.grad((a) => checkpoint((h) => T.square(inner.forward(h)), a, { modules: [inner] }).sum())(x);
    assert.deepEqual(g.shape, [2, 3]);
    assert.throws(() => T.grad((a) => checkpoint((h) => T.square(inner.forward(h)), a, { modules: [inner] }).sum(), { createGraph: true })(x),
      /checkpoint: gradients of gradients \(createGraph\) cannot go through a checkpointed function/);
  });
});
