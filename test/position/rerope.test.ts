// ReRoPE / Leaky ReRoPE attention (Su, kexue.fm/archives/9708): the two-pass flash formulation against
// scripts/golden/rope.py's naive computation (every query-key pair rotated by its explicitly clipped
// relative position, torch autograd for the gradients) and against a materialized two-stream reference,
// on both backends; KV-cache decoding against full recomputation; saved memory linear in N.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { llamaConfig, type ModelConfigInput } from "../../src/models/config.js";
import { SeqContext } from "../../src/nn/seq-context.js";
import { forEachBackend } from "../helpers/backends.js";
import { loadGolden, maxRelError, maxScaledError, toTensor } from "../helpers/golden.js";

const golden = loadGolden(new URL("../fixtures/rope/rerope.safetensors", import.meta.url).pathname);
interface Case { name: string; inputs: string; w: number; leak: number; base: number; scale: number }
const cases = golden.cases as unknown as Case[];

/** Output [B, T, H, d] and dq, dk, dv of <out, dout> for pre-RoPE q, k, v [B, T, heads, d] through Rotary.attend. */
function run(c: Case, dtype: "float32" | "float64"): ArrayLike<number>[] {
  const ins = ["q", "k", "v"].map((n) => toTensor(golden.tensors[`${c.inputs}.${n}`], dtype, true));
  const [q, k, v] = ins;
  const rot = new T.Rotary({ theta: c.base, rerope: { window: c.w, leak: c.leak }, trainLen: 4096 });
  const o = rot.attend(q, T.transpose(k, 1, 2), T.transpose(v, 1, 2), c.scale, () => { throw new Error("unused"); });
  const out = T.transpose(o, 1, 2);
  T.sum(T.mul(out, toTensor(golden.tensors[`${c.inputs}.dout`], dtype))).backward();
  return [out.toTypedArray(), ...ins.map((x) => x.grad!.toTypedArray())];
}

forEachBackend("ReRoPE attention vs the naive clipped-position golden", (backend) => {
  for (const c of cases) {
    for (const dtype of ["float64", "float32"] as const) {
      // float64 runs the js twins on either backend; float32 runs the native kernels on "native"
      if (dtype === "float64" && backend !== "js") continue;
      it(`${c.name} (${dtype})`, () => {
        const got = run(c, dtype);
        ["out", "dq", "dk", "dv"].forEach((n, i) => {
          const err = maxRelError(got[i], golden.tensors[`${c.name}.${n}`].data as ArrayLike<number>);
          assert.ok(err <= (dtype === "float64" && !c.name.startsWith("t200") ? 1e-9 : 1e-5), `${n}: relative error ${err}`);
        });
      });
    }
  }
});

/** Materialized reference: both score matrices, selected per pair by i - j >= w, causal softmax. */
function twoStream(q1: T.Tensor, k1: T.Tensor, q2: T.Tensor, k2: T.Tensor, v: T.Tensor, w: number): T.Tensor {
  const [, H, Tq, d] = q1.shape, [, Hkv, S] = k1.shape;
  const rep = (x: T.Tensor) => T.reshape(T.expand(T.unsqueeze(x, 2), [x.shape[0], Hkv, H / Hkv, S, d]), [x.shape[0], H, S, d]);
  const sel = new Float64Array(Tq * S), hide = new Float64Array(Tq * S);
  for (let t = 0; t < Tq; t++) {
    for (let j = 0; j < S; j++) {
      const i = t + S - Tq;
      sel[t * S + j] = i - j >= w ? 1 : 0;
      hide[t * S + j] = j > i ? 1 : 0;
    }
  }
  const s1 = T.matmul(q1, T.transpose(rep(k1), 2, 3)), s2 = T.matmul(q2, T.transpose(rep(k2), 2, 3));
  const s = T.mul(T.where(T.tensor(sel, { shape: [Tq, S], dtype: "float64" }), s2, s1), 1 / Math.sqrt(d));
  return T.matmul(T.softmax(T.maskedFill(s, T.tensor(hide, { shape: [Tq, S], dtype: q1.dtype }), -Infinity), -1), rep(v));
}

forEachBackend("reropeAttention vs a materialized two-stream reference", () => {
  // training shapes (Tq = S), decoding shapes (Tq < S), a window past the sequence, tiles crossed
  for (const [Tq, S, w] of [[37, 37, 5], [130, 130, 64], [3, 90, 16], [1, 50, 7], [20, 20, 30]]) {
    it(`Tq ${Tq}, S ${S}, window ${w}`, () => {
      const g = new T.RandomGenerator(Tq * 7 + S);
      const ins = [[2, 4, Tq, 16], [2, 2, S, 16], [2, 4, Tq, 16], [2, 2, S, 16], [2, 2, S, 16]].map((s) => T.randn(s, { generator: g, dtype: "float64" }));
      const gout = T.randn([2, 4, Tq, 16], { generator: g, dtype: "float64" });
      const grads = (f: (...x: T.Tensor[]) => T.Tensor, dtype: "float32" | "float64") => {
        const xs = ins.map((x) => x.to(dtype).detach().requiresGrad_());
        const o = f(...xs);
        T.sum(T.mul(o, gout.to(dtype))).backward();
        return [o.toTypedArray(), ...xs.map((x) => x.grad!.toTypedArray())];
      };
      const want = grads((a, b, c, d, e) => twoStream(a, b, c, d, e, w), "float64");
      const got = grads((a, b, c, d, e) => T.reropeAttention(a, b, c, d, e, { window: w }), "float32");
      want.forEach((x, i) => assert.ok(maxRelError(got[i], x) <= 1e-5, `input ${i}: relative error ${maxRelError(got[i], x)}`));
    });
  }

  it("saves O(N) bytes for backward", () => {
    const w = 64;
    const savedBy = (N: number) => {
      const g = new T.RandomGenerator(N);
      const [q1, k1, q2, k2, v] = [0, 1, 2, 3, 4].map(() => T.randn([1, 2, N, 16], { generator: g }).requiresGrad_());
      const before = T.memoryStats().savedBytes;
      const o = T.reropeAttention(q1, k1, q2, k2, v, { window: w });
      const bytes = T.memoryStats().savedBytes - before;
      T.sum(o).backward();
      return bytes;
    };
    // q1, k1, v, O, q2 and the N - w leading rows of k2 and v (2 heads x 16 floats), and L (2 floats) per position
    for (const N of [512, 2048]) assert.equal(savedBy(N), 4 * (2 * 16 * (5 * N + 2 * (N - w)) + 2 * N));
  });
});

describe("ReRoPE and dynamic scaling in a model", () => {
  const base: ModelConfigInput = { vocabSize: 23, dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 48, maxSeqLen: 16, position: "rope", norm: "rmsnorm", ffn: "swiglu", bias: false };
  const variants: [string, Partial<ModelConfigInput>][] = [
    ["ReRoPE", { rerope: { window: 5, leak: 0 } }],
    ["Leaky ReRoPE + log-n", { rerope: { window: 6, leak: 0.25 }, logn: true }],
    ["dynamic NTK", { ropeScaling: { type: "dynamic", factor: 4 } }],
    ["YaRN + ReRoPE", { ropeScaling: { type: "yarn", factor: 4 }, rerope: { window: 4, leak: 0 } }],
  ];
  for (const [name, o] of variants) {
    it(`${name}: KV-cache decoding past the training length equals full recomputation`, () => {
      const model = new TransformerLM(llamaConfig({ ...base, ...o } as never), { generator: new T.RandomGenerator(3) });
      const N = 40, ids = Int32Array.from({ length: N }, (_, i) => (i * 7 + 3) % 23);
      // the reference recomputes each prefix whole (dynamic scaling's frequencies depend on its length)
      const logits = (a: number, b: number, ctx?: SeqContext) => model.forward(T.tensor(ids.slice(a, b), { shape: [1, b - a] }), ctx).logits.toTypedArray();
      const V = 23, want: number[] = [...logits(0, 9)], got: number[] = [];
      const state = model.newState(N);
      got.push(...logits(0, 9, SeqContext.decode(state)));
      for (let t = 9; t < N; t++) {
        want.push(...logits(0, t + 1).slice(t * V));
        got.push(...logits(t, t + 1, SeqContext.decode(state)));
      }
      assert.ok(maxScaledError(got, want) <= 1e-5, `max |error| / max |logit| = ${maxScaledError(got, want)}`);
    });
  }
});
