// Gated Attention Unit and FLASH mixed-chunk attention (src/nn/attention/gau.ts):
// - against PyTorch (scripts/golden/gau.py, float64 from float32): output and the gradients w.r.t. the
//   input and every parameter, <= 1e-4 relative, on every backend;
// - decoding with a state (prefill + one token at a time, across chunk boundaries) equals the full
//   forward, <= 1e-5;
// - a TransformerLM of GAU blocks trains without NaN, and greedy decoding with state == recomputation.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { GatedAttentionUnit, GauLayer, MixedChunkGAU } from "../../src/nn/attention/gau.js";
import type { AttentionConfig } from "../../src/nn/attention/types.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { gpt2Config } from "../../src/models/config.js";
import { AdamW, defaultParamGroups } from "../../src/train/optim.js";
import { generate } from "../../src/generate/generate.js";
import { attentionConfig, loadGolden, maxRelError, toTensor } from "../helpers/golden.js";
import { forEachBackend } from "../helpers/backends.js";

interface GauCase { name: string; variant: string; chunk: number | null; config: AttentionConfig; batch: number; seq: number }

const golden = loadGolden(new URL("../fixtures/gau.safetensors", import.meta.url).pathname);
const cases = golden.cases as unknown as GauCase[];

function build(c: GauCase): GauLayer {
  const cfg = attentionConfig(c.config as unknown as Record<string, unknown>);
  if (c.variant === "gau_mixed") return new MixedChunkGAU(cfg, c.chunk!);
  return new GatedAttentionUnit(cfg, c.variant === "gau" ? "relu2" : "softmax_plus");
}

function loaded(c: GauCase): GauLayer {
  const m = build(c);
  const prefix = `${c.name}.param.`;
  const sd: Record<string, T.Tensor> = {};
  for (const k of Object.keys(golden.tensors)) if (k.startsWith(prefix)) sd[k.slice(prefix.length)] = toTensor(golden.tensors[k]);
  m.loadStateDict(sd);
  return m;
}

forEachBackend("GAU vs PyTorch golden fixtures", () => {
  for (const c of cases) {
    it(c.name, () => {
      const m = loaded(c);
      const x = toTensor(golden.tensors[`${c.name}.x`], "float32", true);
      const out = m.forward(x);
      const failures: string[] = [];
      const check = (what: string, got: ArrayLike<number>, want: ArrayLike<number>) => {
        const err = maxRelError(got, want);
        if (!(err <= 1e-4)) failures.push(`${what}: relative error ${err.toExponential(3)}`);
      };
      check("out", out.toTypedArray(), golden.tensors[`${c.name}.out`].data as Float64Array);
      T.sum(T.mul(out, toTensor(golden.tensors[`${c.name}.gout`]))).backward();
      check("grad x", x.grad!.toTypedArray(), golden.tensors[`${c.name}.grad.x`].data as Float64Array);
      for (const [n, p] of m.namedParameters()) {
        if (!p.grad) { failures.push(`grad ${n}: missing`); continue; }
        check(`grad ${n}`, p.grad.toTypedArray(), golden.tensors[`${c.name}.grad.${n}`].data as Float64Array);
      }
      assert.ok(failures.length === 0, `${c.name}:\n  ${failures.join("\n  ")}`);
    });
  }
});

describe("GAU decoding with a state equals the full forward", () => {
  for (const c of cases) {
    for (const prefill of [1, 5]) {
      it(`${c.name}, prefill ${prefill} then one token at a time`, () => {
        const m = loaded(c);
        const x = toTensor(golden.tensors[`${c.name}.x`]);
        T.noGrad(() => {
          const full = m.forward(x);
          const state = m.newState(c.config.maxSeqLen);
          const steps = [T.narrow(x, 1, 0, prefill)];
          for (let t = prefill; t < c.seq; t++) steps.push(T.narrow(x, 1, t, 1));
          const outs = steps.map((xs) => m.forward(xs, T.SeqContext.decode(state)));
          assert.equal(state.length, c.seq);
          const err = maxRelError(T.cat(outs, 1).toTypedArray(), full.toTypedArray());
          assert.ok(err <= 1e-5, `${c.name}: stepwise vs full relative error ${err.toExponential(3)}`);
        });
      });
    }
  }

  it("a context whose start does not continue the decoding state is refused", () => {
    const c = cases.find((k) => k.variant === "gau_mixed")!;
    const m = loaded(c);
    assert.throws(() => new T.SeqContext({ start: 3, state: m.newState(16) }), /start 3 does not continue the decoding state, which holds 0 positions/);
    assert.equal(T.SeqContext.causal({ start: 3 }).withState(m.newState(16)).start, 0);
  });
});

/** GAU parameters large enough that attention matters (the paper's init starts with A ~ 0). */
function excite(model: TransformerLM, g: T.RandomGenerator): void {
  for (const [n, p] of model.namedParameters()) {
    if (/attn\.gamma$/.test(n)) { g.normal(p.data as Float32Array, 1, 0.3); }
    if (/attn\.(beta|rel_bias)$/.test(n)) { g.normal(p.data as Float32Array, 0, 0.3); }
  }
}

describe("TransformerLM with GAU blocks", () => {
  for (const attention of ["gau", "gau_softmax_plus", "gau_mixed"] as const) {
    it(`${attention}: trains a few steps without NaN; greedy decoding with state == recomputation`, () => {
      // gau_mixed: maxSeqLen 80 gives chunks of 64, so decoding crosses a chunk boundary.
      const maxSeqLen = attention === "gau_mixed" ? 80 : 24;
      const cfg = gpt2Config({ vocabSize: 29, dModel: 16, nLayers: 2, nHeads: 2, maxSeqLen, attention, position: attention === "gau" ? "rope" : "learned" });
      const model = new TransformerLM(cfg, { generator: new T.RandomGenerator(1) });
      const names = [...model.namedParameters()].map(([n]) => n);
      assert.ok(names.includes("blocks.0.attn.wu.weight") && !names.some((n) => /norm2|mlp/.test(n)), `GAU block has no FFN: ${names.join(", ")}`);
      const g = new T.RandomGenerator(2);
      const x = T.randint(29, [2, 16], { generator: g }), y = T.randint(29, [2, 16], { generator: g });
      const opt = new AdamW(defaultParamGroups(model, 0.1), { lr: 1e-2 });
      const losses: number[] = [];
      for (let step = 0; step < 4; step++) {
        const loss = T.crossEntropy(model.forward(x).logits.reshape(-1, 29), y.reshape(-1));
        losses.push(loss.item());
        loss.backward();
        opt.step();
        opt.zeroGrad();
      }
      assert.ok(losses.every(Number.isFinite), `losses ${losses}`);
      assert.ok(losses[3] < losses[0], `loss should fall on a repeated batch: ${losses}`);
      for (const [n, p] of model.namedParameters()) assert.ok(p.toTypedArray().every(Number.isFinite), `${n} is not finite`);

      excite(model, g);
      const prompt = Array.from({ length: attention === "gau_mixed" ? 58 : 5 }, (_, i) => (i * 7) % 29);
      const opts = { maxNewTokens: 12, temperature: 0 };
      const cached = generate(model, prompt, opts).ids;
      const recomputed = generate(model, prompt, { ...opts, noCache: true }).ids;
      assert.deepEqual(cached, recomputed);
    });
  }
});
