// models/flops.ts against numbers worked out by hand from the formulas (multiply-add = 2 FLOPs; exact
// attention counts the full T x T square), and `tsformer flops` on good and bad input.

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gpt2Config, llamaConfig, type ModelConfigInput } from "../src/models/config.js";
import { modelFlops } from "../src/models/flops.js";
import { ATTENTION_VARIANTS } from "../src/nn/attention/registry.js";

const tiny = (o: Partial<ModelConfigInput> = {}) => gpt2Config({ vocabSize: 10, dModel: 8, nLayers: 2, nHeads: 2, maxSeqLen: 16, dFF: 32, ffn: "gelu", ...o });

describe("modelFlops, by hand", () => {
  it("GPT-2 layout, exact attention: D = 8, H = 2, L = 2, dFF = 32, V = 10, T = 4", () => {
    const r = modelFlops(tiny(), 4);
    // scores  = 2 * 2 * T^2 * D        = 4 * 16 * 8      = 512 per layer
    // proj    = 4 * (2 * T * D * D)    = 4 * 2 * 4 * 64  = 2048 per layer (Q, K, V, O)
    // ffn     = 2 * 2 * T * D * dFF    = 4 * 4 * 8 * 32  = 4096 per layer
    // lm head = 2 * T * D * V          = 2 * 4 * 8 * 10  = 640
    assert.deepEqual(r.layers.map((l) => [l.scores, l.projections, l.ffn]), [[512, 2048, 4096], [512, 2048, 4096]]);
    assert.equal(r.lmHead, 640);
    assert.equal(r.total, 2 * (512 + 2048 + 4096) + 640); // 13952
    assert.equal(r.perToken, 13952 / 4);
    // T*: per token (8 D^2 + 4 D dFF) / (4 D) = (512 + 1024) / 32 = 48
    assert.equal(r.crossover, 48);
  });

  it("GPT-2 small: attention dominates from T* = 6 D = 4608", () => {
    const r = modelFlops(gpt2Config({ vocabSize: 50257, dModel: 768, nLayers: 12, nHeads: 12, maxSeqLen: 1024 }), 1024);
    assert.equal(r.crossover, 6 * 768);
    assert.equal(r.scores, 12 * 4 * 1024 * 1024 * 768);
  });

  it("Llama layout, GQA + SwiGLU: D = 8, H = 2, Hkv = 1, dFF = 12, L = 1, T = 3", () => {
    const r = modelFlops(llamaConfig({ vocabSize: 10, dModel: 8, nLayers: 1, nHeads: 2, nKvHeads: 1, maxSeqLen: 16, dFF: 12 }), 3);
    // scores = 4 * 9 * 8 = 288; proj = Q 2*3*8*8 = 384 + O 384 + K 2*3*8*4 = 192 + V 192 = 1152
    // ffn = 3 * 2 * 3 * 8 * 12 = 1728; head = 2 * 3 * 8 * 10 = 480
    assert.deepEqual([r.scores, r.projections, r.ffn, r.lmHead, r.total], [288, 1152, 1728, 480, 3648]);
    // T* = (384 + 576) / 32 = 30
    assert.equal(r.crossover, 30);
  });

  it("linear attention: 2 * 2 * T * d * d per head, never dominates", () => {
    const r = modelFlops(tiny({ attention: "linear" }), 4);
    // d = 4: 4 * T * d^2 * H = 4 * 4 * 16 * 2 = 512 per layer; per token 128 < 1536
    assert.equal(r.layers[0].scores, 512);
    assert.equal(r.crossover, null);
  });

  it("GAU: scores 2 T^2 (s + e), projections u, v, z, o, no FFN", () => {
    const r = modelFlops(tiny({ attention: "gau" }), 4);
    // e = 16, s = 8: scores = 2 * 16 * 24 = 768; proj = u, v 2*4*8*16 = 1024 each + z 2*4*8*8 = 512 + o 1024 = 3584
    assert.deepEqual(r.layers[0], { layer: 0, kind: r.layers[0].kind, scores: 768, projections: 3584, ffn: 0 });
    assert.equal(r.total, 2 * (768 + 3584) + 640);
    // T* = ceil(896 / 48) = ceil(18.67) = 19
    assert.equal(r.crossover, 19);
  });

  it("FLASH mixed chunk: full square per chunk + 4 T s e", () => {
    const r = modelFlops(tiny({ attention: "gau_mixed" }), 20);
    // c = min(64, maxSeqLen 16) = 16; chunks of 16 and 4: 2 (s + e)(16^2 + 4^2) = 48 * 272 = 13056;
    // linear 4 T s e = 4 * 20 * 8 * 16 = 10240
    assert.equal(r.layers[0].scores, 13056 + 10240);
    // per token 48 min(T, 16) + 512 >= 896 from T = 8
    assert.equal(r.crossover, 8);
  });

  it("TransNormer: block-diagonal lower layer + linear upper layer, T* inside the first block", () => {
    const r = modelFlops(tiny({ attention: "transnormer", dFF: 8 }), 70);
    // layer 0: 4 D (64^2 + 6^2) = 32 * 4132 = 132224; layer 1: 4 T d^2 H = 4 * 70 * 16 * 2 = 8960
    assert.deepEqual(r.layers.map((l) => l.scores), [132224, 8960]);
    // omega = 2 layers * (512 + 4 * 8 * 8) = 1536 per token; 32 T + 128 >= 1536 from T = 44
    assert.equal(r.crossover, 44);
  });

  it("sparse: allowed tiles only, T* at whole blocks", () => {
    const r = modelFlops(tiny({ attention: "sparse" }), 130);
    // strided(64, 4) allows every causal tile of 3 blocks: 64*64 + 2*64*64 + (2*64 + 2*64 + 2*2) = 12548 pairs
    assert.equal(r.layers[0].scores, 4 * 8 * 12548);
    // one block: 32 * 64^2 = 131072 >= 1536 * 64 = 98304
    assert.equal(r.crossover, 64);
  });

  it("every registered attention variant has a FLOP model", () => {
    for (const attention of Object.keys(ATTENTION_VARIANTS)) assert.ok(modelFlops(tiny({ attention }), 8).total > 0, attention);
  });
});

describe("tsformer flops", () => {
  const root = new URL("..", import.meta.url).pathname;
  const cli = (...args: string[]) => spawnSync(process.execPath, ["--import", "tsx", join(root, "src/cli/main.ts"), "flops", ...args], { cwd: root, encoding: "utf8" });
  const dir = mkdtempSync(join(tmpdir(), "tsformer-flops-"));
  const good = join(dir, "cfg.json");
  writeFileSync(good, JSON.stringify({ vocabSize: 10, dModel: 8, nLayers: 2, nHeads: 2, dFF: 32, maxSeqLen: 16, position: "learned", norm: "layernorm", ffn: "gelu", bias: true }));

  it("prints one JSON object with --json", () => {
    const r = cli("--config", good, "--seq", "4", "--json");
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { total: number; crossover: number };
    assert.deepEqual([j.total, j.crossover], [13952, 48]);
  });

  const fails = (r: ReturnType<typeof cli>, re: RegExp) => {
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  };
  it("a missing config file", () => fails(cli("--config", join(dir, "none.json")), /--config .*none\.json does not exist/));
  it("a config that is not JSON", () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "{nope");
    fails(cli("--config", bad), /bad\.json: is not valid JSON/);
  });
  it("a non-numeric --seq", () => fails(cli("--config", good, "--seq", "long"), /--seq expects an integer >= 1, got 'long'/));
});
