// SeqContext: packing, explicit (tree) masks, bidirectional attention and cache rollback, each checked
// against an independent computation (the documents run separately, each tree path run as a plain
// sequence, the full recomputation, a mask of ones through the composite materialized path).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/index.js";
import { SeqContext } from "../src/nn/seq-context.js";
import { TransformerLM } from "../src/models/transformer.js";
import { gpt2Config, llamaConfig, type ModelConfig } from "../src/models/config.js";
import { forEachBackend } from "./helpers/backends.js";
import { maxScaledError } from "./helpers/golden.js";

const TOL = 1e-5;

// Normwise relative error (packing moves a document's keys to other SIMD lanes and GEMM tiles, so float32
// sums round differently; an elementwise ratio would blow that up on logits near zero).
const maxRelError = maxScaledError;
const V = 50;

const layouts: Record<string, (attention: string) => ModelConfig> = {
  "GPT-2 (learned positions)": (attention) => gpt2Config({ vocabSize: V, dModel: 32, nLayers: 2, nHeads: 4, maxSeqLen: 160, attention, init: "xavier" }),
  "Llama (RoPE, GQA)": (attention) => llamaConfig({ vocabSize: V, dModel: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, dFF: 48, maxSeqLen: 160, attention, init: "xavier" }),
};

function randomIds(n: number, g: T.RandomGenerator): number[] {
  const a = new Int32Array(n);
  g.randint(a, V);
  return Array.from(a);
}

const ids = (rows: number[][]) => T.tensor(Int32Array.from(rows.flat()), { shape: [rows.length, rows[0].length] });

/** logits [B, T, V] -> the V logits of row b, position t. */
const at = (logits: T.Tensor, b: number, t: number) => {
  const [, Tn] = logits.shape;
  return (logits.toTypedArray() as Float32Array).slice((b * Tn + t) * V, (b * Tn + t + 1) * V);
};

forEachBackend("SeqContext.packed: a packed batch equals its documents run separately", () => {
  for (const [layout, make] of Object.entries(layouts)) {
    for (const attention of ["softmax", "flash"]) {
      it(`${layout}, ${attention}`, () => {
        const g = new T.RandomGenerator(1);
        const model = new TransformerLM(make(attention), { generator: new T.RandomGenerator(2) }).eval();
        // Documents longer than one flash tile (64) so that packing crosses tile boundaries.
        const lengths = [70, 5, 45];
        const rows = [0, 1].map(() => lengths.map((l) => randomIds(l, g)));
        T.noGrad(() => {
          const packed = model.forward(ids(rows.map((docs) => docs.flat())), SeqContext.packed(lengths)).logits;
          rows.forEach((docs, b) => {
            let offset = 0;
            for (const doc of docs) {
              const alone = model.forward(ids([doc])).logits;
              const got = (packed.toTypedArray() as Float32Array).slice((b * packed.shape[1] + offset) * V, (b * packed.shape[1] + offset + doc.length) * V);
              const err = maxRelError(got, alone.toTypedArray());
              assert.ok(err <= TOL, `row ${b}, document at ${offset} (length ${doc.length}): relative error ${err.toExponential(3)}`);
              offset += doc.length;
            }
          });
        });
      });
    }
  }

  it("packed lengths must cover the input", () => {
    const model = new TransformerLM(layouts["Llama (RoPE, GQA)"]("flash"));
    assert.throws(() => model.forward(ids([randomIds(10, new T.RandomGenerator(3))]), SeqContext.packed([4, 5])), /packed lengths sum to 9, but the input has 10 tokens/);
  });
});

forEachBackend("SeqContext.at: per-row positions [B, T]", () => {
  for (const [layout, make] of Object.entries(layouts)) {
    it(`${layout}: each row equals that row run alone from its own start`, () => {
      const g = new T.RandomGenerator(9);
      const model = new TransformerLM(make("flash"), { generator: new T.RandomGenerator(10) }).eval();
      const rows = [randomIds(12, g), randomIds(12, g)], starts = [0, 37];
      const positions = Int32Array.from(starts.flatMap((s) => Array.from({ length: 12 }, (_, t) => s + t)));
      T.noGrad(() => {
        const out = model.forward(ids(rows), SeqContext.atPositions(positions)).logits.toTypedArray();
        rows.forEach((row, b) => {
          const alone = model.forward(ids([row]), SeqContext.causal({ start: starts[b] })).logits.toTypedArray();
          const err = maxRelError(out.slice(b * 12 * V, (b + 1) * 12 * V), alone);
          assert.ok(err <= TOL, `row ${b}: relative error ${err.toExponential(3)}`);
        });
      });
    });
  }
});

forEachBackend("SeqContext.masked: a token tree after a cached prefix equals each path run alone", () => {
  for (const [layout, make] of Object.entries(layouts)) {
    for (const attention of ["softmax", "flash"]) {
      it(`${layout}, ${attention}`, () => {
        const g = new T.RandomGenerator(4);
        const model = new TransformerLM(make(attention), { generator: new T.RandomGenerator(5) }).eval();
        const prefix = randomIds(6, g);
        // Tree: r -> a -> c, r -> b (parent index per node; -1 = attached to the prefix).
        const tree = randomIds(4, g), parent = [-1, 0, 0, 1];
        const path = (n: number): number[] => (n < 0 ? [] : [...path(parent[n]), n]);
        const P = prefix.length;
        const visible = tree.map((_, i) => {
          const row = new Array<boolean>(P + tree.length).fill(false);
          for (let j = 0; j < P; j++) row[j] = true;
          for (const n of path(i)) row[P + n] = true;
          return row;
        });
        const positions = Int32Array.from(tree.map((_, i) => P + path(i).length - 1));
        T.noGrad(() => {
          const state = model.newState();
          model.forward(ids([prefix]), SeqContext.decode(state));
          const out = model.forward(ids([tree]), SeqContext.masked(visible, { positions, state })).logits;
          tree.forEach((_, i) => {
            const seq = [...prefix, ...path(i).map((n) => tree[n])];
            const want = model.forward(ids([seq])).logits;
            const err = maxRelError(at(out, 0, i), at(want, 0, seq.length - 1));
            assert.ok(err <= TOL, `tree node ${i}: relative error ${err.toExponential(3)}`);
          });
          // Rollback to the prefix plus the accepted path r -> a, then decode c: same as the full sequence.
          state.truncate(P);
          model.forward(ids([[tree[0], tree[1]]]), SeqContext.decode(state));
          const next = model.forward(ids([[tree[3]]]), SeqContext.decode(state)).logits;
          const full = model.forward(ids([[...prefix, tree[0], tree[1], tree[3]]])).logits;
          assert.ok(maxRelError(at(next, 0, 0), at(full, 0, P + 2)) <= TOL, "decode after rollback");
        });
      });
    }
  }
});

forEachBackend("SeqContext.bidirectional", () => {
  it("softmax and flash under an explicit mask of ones equal bidirectional attention", () => {
    const g = new T.RandomGenerator(6);
    const cfg = { dModel: 32, nHeads: 4, nKvHeads: 2, bias: false, rope: new T.Rotary({ theta: 10000, trainLen: 160 }), scale: 0.3, layer: 0, nLayers: 1, maxSeqLen: 160 };
    const soft = T.makeAttention("softmax", cfg), flash = T.makeAttention("flash", cfg);
    for (const p of soft.parameters()) g.normal(p.data as Float32Array, 0, 0.3);
    flash.loadStateDict(soft.stateDict());
    const x = T.randn([2, 80, 32], { generator: g });
    T.noGrad(() => {
      const ones = Array.from({ length: 80 }, () => new Array<boolean>(80).fill(true));
      const want = soft.forward(x, SeqContext.masked(ones)).toTypedArray();
      for (const m of [soft, flash]) {
        const err = maxRelError(m.forward(x, SeqContext.bidirectional()).toTypedArray(), want);
        assert.ok(err <= TOL, `${m === soft ? "softmax" : "flash"}: relative error ${err.toExponential(3)}`);
      }
      // and the first token does see the last one
      const causal = soft.forward(x).toTypedArray();
      assert.ok(maxRelError(causal.slice(0, 32), want.slice(0, 32)) > 1e-3);
    });
  });

  it("an explicit mask (block size 1, query rows only) equals the causal kernel and a float64 reference, in both attention ops", () => {
    const g = new T.RandomGenerator(7);
    // full square: a causal visibility matrix is the causal kernel
    const q = T.randn([1, 4, 9, 8], { generator: g }), k = T.randn([1, 2, 9, 8], { generator: g }), v = T.randn([1, 2, 9, 8], { generator: g });
    const causal = { blockSize: 1, allow: Uint8Array.from({ length: 81 }, (_, i) => (i % 9 <= Math.floor(i / 9) ? 1 : 0)) };
    const want = T.attention(q, k, v, { causal: true, scale: 0.5 }).toTypedArray();
    for (const op of [T.attention, T.flashAttention]) {
      const err = maxRelError(op(q, k, v, { causal: false, scale: 0.5, blockMask: causal }).toTypedArray(), want);
      assert.ok(err <= TOL, `relative error ${err.toExponential(3)}`);
    }
    // a token tree of Tq = 5 after 70 cached keys (S = 75, more than one 64-key tile): the table holds the 5 query rows
    const Tq = 5, S = 75, P = S - Tq, d = 8, H = 4, Hkv = 2;
    const parent = [-1, 0, 0, 1, 2];
    const vis = new Uint8Array(Tq * S);
    for (let i = 0; i < Tq; i++) {
      for (let j = 0; j < P; j++) vis[i * S + j] = j % 7 === 3 ? 0 : 1; // hide some cached keys too
      for (let a = i; a >= 0; a = parent[a]) vis[i * S + P + a] = 1;
    }
    const qt = T.randn([1, H, Tq, d], { generator: g }), kt = T.randn([1, Hkv, S, d], { generator: g }), vt = T.randn([1, Hkv, S, d], { generator: g });
    const [qa, ka, va] = [qt, kt, vt].map((t) => Float64Array.from(t.toTypedArray()));
    const ref = new Float64Array(H * Tq * d);
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / (H / Hkv));
      for (let i = 0; i < Tq; i++) {
        const sc = new Float64Array(S).fill(-Infinity);
        for (let j = 0; j < S; j++) {
          if (!vis[i * S + j]) continue;
          let dot = 0;
          for (let c = 0; c < d; c++) dot += qa[(h * Tq + i) * d + c] * ka[(kh * S + j) * d + c];
          sc[j] = dot * 0.3;
        }
        const mx = Math.max(...sc);
        let z = 0;
        for (let j = 0; j < S; j++) z += Math.exp(sc[j] - mx);
        for (let j = 0; j < S; j++) {
          const p = Math.exp(sc[j] - mx) / z;
          for (let c = 0; c < d; c++) ref[(h * Tq + i) * d + c] += p * va[(kh * S + j) * d + c];
        }
      }
    }
    for (const op of [T.attention, T.flashAttention]) {
      const err = maxRelError(op(qt, kt, vt, { causal: false, scale: 0.3, blockMask: { blockSize: 1, allow: vis } }).toTypedArray(), ref);
      assert.ok(err <= TOL, `relative error ${err.toExponential(3)}`);
    }
    assert.throws(() => T.flashAttention(qt, kt, vt, { causal: false, blockMask: { blockSize: 1, allow: vis.subarray(0, 4 * S) } }), /block table has 300 entries, expected 75 x 75 \(or 5 x 75: the query blocks only\)/);
  });

  it("a mask row that sees no key is refused with a clear error", () => {
    const model = new TransformerLM(layouts["Llama (RoPE, GQA)"]("flash"), { generator: new T.RandomGenerator(3) }).eval();
    const ids = T.tensor([[1, 2, 3]], { dtype: "int32" });
    assert.throws(() => model.forward(ids, SeqContext.masked([[true, false, false], [false, false, false], [true, true, true]])), /query 1 of the mask sees no key/);
  });
});

describe("SeqContext: unsupported requests fail with a clear error", () => {
  const cfg = { dModel: 16, nHeads: 2, nKvHeads: 2, bias: false, rope: null, scale: 0.35, layer: 1, nLayers: 2, maxSeqLen: 64 };
  const x = T.randn([1, 6, 16], { generator: new T.RandomGenerator(8) });

  it("recurrent and block-aligned variants refuse packing; sparse refuses explicit masks", () => {
    for (const name of ["linear", "performer", "transnormer", "gau", "gau_mixed"] as const) {
      assert.throws(() => T.makeAttention(name, cfg).forward(x, SeqContext.packed([3, 3])), /does not support packed documents/, name);
    }
    assert.throws(() => T.makeAttention("sparse", cfg).forward(x, SeqContext.masked([[true]])), /"sparse" does not support an explicit attention mask/);
    assert.throws(() => T.makeAttention("gau", cfg).forward(x, SeqContext.bidirectional()), /"gau" does not support bidirectional attention/);
  });

  it("caches that can roll back: decode, truncate, decode again equals the full forward", () => {
    const variants = [["softmax", 1], ["flash", 1], ["gau", 1], ["gau_softmax_plus", 1], ["transnormer", 0]] as const;
    T.noGrad(() => {
      for (const [name, layer] of variants) {
        const m = T.makeAttention(name, { ...cfg, layer });
        for (const p of m.parameters()) new T.RandomGenerator(9).normal(p.data as Float32Array, 0, 0.3);
        const full = m.forward(x).toTypedArray();
        const st = m.newState(64);
        m.forward(x, SeqContext.decode(st));
        st.truncate(3);
        const again = m.forward(T.narrow(x, 1, 3, 3), SeqContext.decode(st)).toTypedArray();
        const err = maxRelError(again, full.slice(3 * 16));
        assert.ok(err <= TOL, `${name}: relative error ${err.toExponential(3)}`);
      }
    });
  });

  it("recurrent states refuse rollback; KV caches roll back", () => {
    T.noGrad(() => {
      const lin = T.makeAttention("linear", cfg), st = lin.newState(64);
      lin.forward(x, SeqContext.decode(st));
      assert.throws(() => st.truncate(3), /rollback not supported/);
      st.truncate(6);
      const soft = T.makeAttention("softmax", cfg), kv = soft.newState(64);
      soft.forward(x, SeqContext.decode(kv));
      kv.truncate(2);
      assert.equal(kv.length, 2);
      assert.throws(() => kv.truncate(3), /n must be an integer in \[0, 2\], got 3/);
    });
  });

  it("a model's layers roll back all together or not at all (TransNormer: block-cache layers under linear ones)", () => {
    T.noGrad(() => {
      const m = new TransformerLM(gpt2Config({ vocabSize: 11, dModel: 16, nLayers: 2, nHeads: 2, maxSeqLen: 32, attention: "transnormer" }));
      const st = m.newState(32);
      m.forward(T.tensor(new Int32Array([1, 2, 3, 4, 5]), { shape: [1, 5] }), SeqContext.decode(st));
      assert.equal(st.canTruncate(3), false);
      assert.throws(() => st.truncate(3), /rollback not supported/);
      assert.deepEqual((st as T.LayerStates).layers.map((l) => l.length), [5, 5], "no layer rolled back");
      assert.equal(st.canTruncate(5), true);
    });
  });

  it("a context must continue its state, and a mask excludes packing", () => {
    const st = T.makeAttention("softmax", cfg).newState(8);
    assert.throws(() => new SeqContext({ start: 2, state: st }), /start 2 does not continue the decoding state, which holds 0 positions/);
    assert.equal(SeqContext.causal({ start: 4 }).withState(st).start, 0);
    assert.throws(() => new SeqContext({ cuSeqlens: new Int32Array([0, 1]), mask: { visible: new Uint8Array([1]), rows: 1, cols: 1 } }), /either an explicit mask or packed documents/);
  });
});
