// Packing and rmpad (src/data/documents.ts) on real TinyStories stories (data/tinystories-valid-head.txt,
// tok512.bin): the padded, packed and unpadded layouts of the same documents hold the same
// (input, target) pairs, so a model gives the same token-sum loss and gradients on all three; positions
// restart per document; no attention crosses a document; bad input is refused; the batcher resumes.
// The reference of each figure is independent of the layouts under test: every (input, target) pair
// is read straight from the documents, and the per-document loss from one forward per document alone.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, describe, test } from "node:test";
import * as T from "../src/index.js";
import { DocumentBatcher, DocumentDataset, IGNORE_INDEX, packBatch, padBatch, unpadBatch, type Batching } from "../src/data/documents.js";
import { TransformerLM } from "../src/models/transformer.js";
import { gpt2Config, llamaConfig, type ModelConfig } from "../src/models/config.js";
import { batchContext, lmObjective } from "../src/train/objectives.js";
import { train, type TrainOptions } from "../src/train/trainer.js";
import type { Batch } from "../src/data/batches.js";

const TEXT = readFileSync("data/tinystories-valid-head.txt", "utf8");
let stories: DocumentDataset;
before(async () => {
  stories = DocumentDataset.fromText(TEXT, await T.Llama2cTokenizer.load("data/tok512.bin", 512), { name: "tinystories" });
});

/** Five stories of spread lengths (short to long) from the file, in file order. */
function someDocs(): Int32Array[] {
  const byLen = stories.docs.filter((d) => d.length <= 400).slice(0, 60).sort((a, b) => a.length - b.length);
  return [0, 15, 30, 45, 59].map((i) => byLen[i]);
}

const tiny = (position: "rope" | "learned"): ModelConfig => position === "rope"
  ? llamaConfig({ vocabSize: 512, dModel: 32, nLayers: 2, nHeads: 4, dFF: 64, maxSeqLen: 512 })
  : gpt2Config({ vocabSize: 512, dModel: 32, nLayers: 2, nHeads: 4, maxSeqLen: 512 });

/** Token-sum loss (the mean lmObjective reports, times the real targets) and every gradient of it. */
function sumLossAndGrads(model: TransformerLM, batch: Batch): { loss: number; grads: Map<string, Float32Array> } {
  model.zeroGrad();
  return T.tidy(() => {
    const n = batch.tokens!;
    const loss = lmObjective(model, batch).loss.mul(n);
    loss.backward();
    const grads = new Map([...model.namedParameters()].map(([k, p]) => [k, Float32Array.from(p.grad!.toTypedArray() as Float32Array)]));
    return { loss: loss.item(), grads };
  });
}

function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) { d = Math.max(d, Math.abs(a[i] - b[i])); m = Math.max(m, Math.abs(a[i])); }
  return d / Math.max(m, 1e-30);
}

/** The (input, target) pairs a batch trains on: [x, y, position] for every real target. */
function pairs(b: Batch): string[] {
  const x = b.x.toTypedArray() as Int32Array, y = b.y.toTypedArray() as Int32Array, T_ = b.x.shape[1];
  const out: string[] = [];
  for (let i = 0; i < y.length; i++) if (y[i] !== IGNORE_INDEX) out.push(`${x[i]}>${y[i]}@${b.positions ? b.positions[i] : i % T_}`);
  return out.sort();
}

describe("documents: layouts", () => {
  test("fromText splits TinyStories at <|endoftext|> into BOS-led documents (llama2.c) with a realistic spread", () => {
    assert.equal(stories.length, 464);  // data/SOURCES.md: 464 stories
    assert.ok(stories.docs.every((d) => d[0] === 1 && d[1] !== 1));  // tok512's BOS is id 1
    const s = stories.lengthStats();
    assert.ok(s.min < 150 && s.median > 250 && s.max > 1500, JSON.stringify(s));
  });

  test("padded, packed and unpadded hold exactly the documents' pairs, positions restarting per document", () => {
    const docs = someDocs();
    const want = docs.flatMap((d) => Array.from({ length: d.length - 1 }, (_, i) => `${d[i]}>${d[i + 1]}@${i}`)).sort();
    const packLen = docs[docs.length - 1].length + 20;
    const layouts = { padded: padBatch(docs), packed: packBatch(docs, packLen), unpadded: unpadBatch(docs) };
    for (const [name, b] of Object.entries(layouts)) {
      assert.deepEqual(pairs(b), want, name);
      assert.equal(b.tokens, want.length, name);
    }
    const { packed, unpadded, padded } = layouts;
    assert.deepEqual(padded.x.shape, [docs.length, docs[docs.length - 1].length - 1]);
    assert.deepEqual(unpadded.x.shape, [1, want.length]);  // no padding at all
    assert.ok(packed.rows < docs.length && packed.x.shape[1] === packed.rows * packLen);
    // segments never cross a row end; positions are 0 at each segment start
    const cu = packed.cuSeqlens!;
    for (let s = 0; s + 1 < cu.length; s++) {
      assert.equal(Math.floor(cu[s] / packLen), Math.floor((cu[s + 1] - 1) / packLen));
      assert.equal(packed.positions![cu[s]], 0);
    }
  });
});

describe("documents: the same loss and gradients on every layout", () => {
  for (const position of ["rope", "learned"] as const) {
    test(`${position} positions: token-sum loss and every gradient agree (<= 1e-5) and match one forward per document`, () => {
      const docs = someDocs();
      const model = new TransformerLM(tiny(position), { generator: new T.RandomGenerator(3) });
      // independent reference: each document alone, as a plain [1, n - 1] causal sequence
      const ref = docs.reduce((s, d) => s + T.tidy(() => {
        const x = T.tensor(d.subarray(0, d.length - 1), { shape: [1, d.length - 1] }), y = T.tensor(d.subarray(1), { shape: [d.length - 1] });
        return T.crossEntropy(model.forward(x).logits.reshape(-1, 512), y, { reduction: "sum" }).item();
      }), 0);
      const padded = sumLossAndGrads(model, padBatch(docs));
      const packed = sumLossAndGrads(model, packBatch(docs, 420));
      const unpadded = sumLossAndGrads(model, unpadBatch(docs));
      for (const [name, r] of [["packed", packed], ["unpadded", unpadded], ["padded", padded]] as const) {
        assert.ok(Math.abs(r.loss - ref) <= 1e-5 * ref, `${name} token-sum loss ${r.loss} vs per-document ${ref}`);
        if (r === padded) continue;
        for (const [k, g] of padded.grads) {
          const d = relDiff(g, r.grads.get(k)!);
          assert.ok(d <= 1e-5, `${name} ${k}: gradient differs from padded by ${d} (relative to its largest entry)`);
        }
      }
    });
  }

  test("no attention across documents: changing document 1 leaves document 2's logits in the packed row unchanged", () => {
    const [, b, , a] = someDocs();  // a longer than b: first-fit decreasing puts a first in the row
    const model = new TransformerLM(tiny("rope"), { generator: new T.RandomGenerator(4) });
    const logitsOf = (docs: Int32Array[]) => T.tidy(() => {
      const batch = packBatch(docs, a.length + b.length);
      assert.deepEqual([...batch.cuSeqlens!], [0, a.length - 1, a.length + b.length - 2, a.length + b.length]);
      return model.forward(batch.x, batchContext(batch)).logits.toTypedArray() as Float32Array;
    });
    const a2 = a.map((t, i) => (i === 0 ? t : (t * 7 + 3) % 512));
    const l1 = logitsOf([b, a]), l2 = logitsOf([b, a2]);
    const V = 512, off = (a.length - 1) * V, n = (b.length - 1) * V;
    assert.deepEqual(l2.subarray(off, off + n), l1.subarray(off, off + n));
    assert.notDeepEqual(l2.subarray(0, off), l1.subarray(0, off));
  });
});

describe("documents: bad input and resume", () => {
  test("a packing length below the longest document is one clear error naming both lengths", () => {
    const max = stories.lengthStats().max;
    assert.throws(() => new DocumentBatcher(stories, { batching: "packed", docsPerBatch: 4, packLen: 256 }),
      new RegExp(`packing length 256 is below the longest document of tinystories: ${max} tokens, ${max - 1} input positions`));
    assert.throws(() => packBatch(someDocs(), 100), /packLen 100 is below the longest document of the batch/);
  });

  test("a file with no documents and an unknown batching mode are refused", async () => {
    const tok = await T.Llama2cTokenizer.load("data/tok512.bin", 512);
    assert.throws(() => DocumentDataset.fromText("<|endoftext|>\n \n<|endoftext|>\n", tok, { name: "empty.txt" }), /empty\.txt: no documents with at least 2 tokens/);
    assert.throws(() => new DocumentBatcher(stories, { batching: "pad" as Batching, docsPerBatch: 2 }), /batching must be "padded", "packed", "unpadded", got "pad"/);
  });

  test("the batcher resumes exactly from its state, across an epoch boundary, and restarts at counter 0", () => {
    const data = new DocumentDataset(stories.docs.slice(0, 7), "seven");
    const run = (b: DocumentBatcher, n: number) => Array.from({ length: n }, () => b.nextDocs().map((d) => stories.docs.indexOf(d)));
    const a = new DocumentBatcher(data, { batching: "unpadded", docsPerBatch: 3, seed: 5 });
    const first = run(a, 2), state = a.getState(), rest = run(a, 4);
    const b = new DocumentBatcher(data, { batching: "unpadded", docsPerBatch: 3, seed: 99 });
    b.setState(JSON.parse(JSON.stringify(state)));
    assert.deepEqual(run(b, 4), rest);
    b.setState({ seed: 5, counter: 0 });
    assert.deepEqual(run(b, 2), first);
    // each epoch is a permutation of the 7 documents
    const all = [...first, ...rest].flat();
    for (let e = 0; e + 7 <= all.length; e += 7) assert.deepEqual(all.slice(e, e + 7).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6]);
  });
});

describe("documents: training", () => {
  /** A tiny run on 12 short stories, 3 per batch, checkpoint at step 2. */
  function runOptions(runDir: string, batching: Batching): TrainOptions {
    const config = tiny("learned");
    const { train: tr, val } = new DocumentDataset(stories.docs.filter((d) => d.length <= 160).slice(0, 12), "short stories").split(0.25);
    return {
      model: new TransformerLM(config, { generator: new T.RandomGenerator(3) }), modelConfig: config, runDir,
      documents: { train: tr, val, batching, packLen: batching === "packed" ? 320 : undefined },
      batchSize: 3, maxSteps: 4, schedule: { kind: "constant", lr: 3e-3 }, evalInterval: 2, evalIters: 1, ckptInterval: 2, seed: 7, progress: false,
    };
  }

  test("train() on packed documents resumes exactly from a checkpoint (batcher state included)", async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), "tsformer-packing-"));
    try {
      const ref: number[] = [];
      await train({ ...runOptions(path.join(root, "a"), "packed"), onStep: ({ loss }) => { ref.push(loss); } });
      const resumed: number[] = [];
      await train({ ...runOptions(path.join(root, "a"), "packed"), resume: path.join(root, "a", "checkpoint-2"), onStep: ({ loss }) => { resumed.push(loss); } });
      assert.deepEqual(resumed, ref.slice(2));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test("the three batchings train the same first step (same documents, same mean loss)", async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), "tsformer-packing-"));
    try {
      const first: number[] = [];
      for (const b of ["padded", "packed", "unpadded"] as const) {
        await train({ ...runOptions(path.join(root, b), b), maxSteps: 1, onStep: ({ loss }) => { first.push(loss); } });
      }
      for (const l of first.slice(1)) assert.ok(Math.abs(l - first[0]) <= 1e-5 * first[0], `${first}`);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
