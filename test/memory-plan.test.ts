// The training-memory planner (train/memory-plan.ts, `tsformer memory`) against independent figures:
// the seed's 7B arithmetic (16-bit mixed precision, AdamW: 2 + 2 + 12 bytes per parameter = 112 GB for
// 7e9), ZeRO's Figure 1 (Rajbhandari et al. 2020: Psi = 7.5B, Nd = 64, K = 12 -> 120, 31.4, 16.6 and
// 1.9 GB for stages 0-3), the published parameter counts of the presets, Korthikanti et al. 2022's
// itemized activations (§4.1-4.2), and what tsformer itself holds when it trains configs A and B:
// its parameters, AdamW's state and the bytes its graph saves for backward (memoryStats().savedBytes).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as T from "../src/index.js";
import { CONFIG_A, CONFIG_B, toModelConfig } from "../bench/models.js";
import { addMemoryCommand, runMemory } from "../src/cli/memory.js";
import { Command } from "commander";
import { cliIn, failsWith } from "./helpers/cli.js";
import { releaseSaved, retainSaved } from "../src/tensor/memory.js";

type Opts = T.PlanOptions;
const base: Opts = { precision: "fp32", optimizer: "adamw", zero: 0, devices: 1, batch: 1, seq: 1, checkpointing: "none" };
const row = (p: T.MemoryPlan, name: T.MemoryRow["row"]) => p.rows.find((r) => r.row === name)!.bytes!;
const GB = 1e9;

describe("model states: the seed's 7B figure and ZeRO's Figure 1", () => {
  it("7e9 parameters, 16-bit mixed precision, AdamW: 14 + 14 + 84 = 112 GB (the seed)", () => {
    for (const precision of ["bf16", "fp16"] as const) {
      const p = T.planMemory({ parameters: 7e9 }, { ...base, precision });
      assert.deepEqual(["parameters", "gradients", "optimizer state", "total"].map((r) => row(p, r as T.MemoryRow["row"]) / GB), [14, 14, 84, 112]);
    }
  });

  it("7.5B parameters over Nd = 64: 120, 31.4, 16.6, 1.9 GB for ZeRO stages 0-3", () => {
    const figure = [120, 31.4, 16.6, 1.9];
    for (const zero of T.ZERO_STAGES) {
      const total = row(T.planMemory({ parameters: 7.5e9 }, { ...base, precision: "fp16", zero, devices: 64 }), "total") / GB;
      assert.ok(Math.abs(total - figure[zero]) < 0.05, `stage ${zero}: ${total} GB, the paper ${figure[zero]} GB`);
    }
  });

  it("fp32 AdamW keeps m and v (8 bytes), SGD its momentum (4), plus the fp32 master copy in mixed precision", () => {
    assert.deepEqual([T.optimizerK("adamw", "fp32"), T.optimizerK("adamw", "bf16"), T.optimizerK("sgd", "fp32"), T.optimizerK("sgd", "fp16")], [8, 12, 4, 8]);
  });
});

describe("presets: the published parameter counts", () => {
  const count = (name: string) => T.parameterCount(T.memoryPreset(name).config);
  it("Llama-2 7B and 13B, GPT-2 small", () => {
    // transformers' model.num_parameters() for meta-llama/Llama-2-{7,13}b-hf and openai-community/gpt2
    assert.equal(count("llama-2-7b"), 6_738_415_616);
    assert.equal(count("llama-2-13b"), 13_015_864_320);
    assert.equal(count("gpt2"), 124_439_808);
  });
  it("Qwen2.5-7B: 7.61B, 6.53B without the embeddings (its model card)", () => {
    const c = T.memoryPreset("qwen2.5-7b").config, n = count("qwen2.5-7b");
    assert.ok(Math.abs(n / 1e9 - 7.61) < 0.01, `${n}`);
    assert.ok(Math.abs((n - 2 * c.vocabSize * c.dModel) / 1e9 - 6.53) < 0.01, `${n}`);
  });
  it("the default precision follows config.json's torch_dtype", () => {
    assert.deepEqual(["llama-2-7b", "qwen2.5-7b", "gpt2"].map((n) => T.defaultPrecision(T.memoryPreset(n).dtype)), ["fp16", "bf16", "fp32"]);
  });
});

describe("parameter counts and what is not derived", () => {
  const tiny = T.gpt2Config({ vocabSize: 50, dModel: 32, nLayers: 3, nHeads: 4, maxSeqLen: 16 });
  const built = (c: T.ModelConfig) => new T.TransformerLM(c).parameters().reduce((n, p) => n + p.numel, 0);
  it("parameterCount is the module tree's count for every mixer with q/k/v/o projections, norm placement and layout", () => {
    const configs: T.ModelConfig[] = [
      ...(Object.keys(T.ATTENTION_VARIANTS) as T.AttentionName[]).filter((a) => !a.startsWith("gau")).map((attention) => ({ ...tiny, attention })),
      ...(["post", "sandwich", "deepnorm"] as const).map((normPlacement) => ({ ...tiny, normPlacement })),
      T.llamaConfig({ vocabSize: 50, dModel: 32, nLayers: 3, nHeads: 4, nKvHeads: 2, maxSeqLen: 16, dFF: 40, bias: true }),
      T.llamaConfig({ vocabSize: 50, dModel: 32, nLayers: 3, nHeads: 4, maxSeqLen: 16, dFF: 40, qkvBias: true, tieEmbeddings: true }),
    ];
    for (const c of configs) assert.equal(T.parameterCount(c), built(c), `${c.attention} ${c.normPlacement} ${c.ffn}`);
  });
  it("a GAU's parameters and a linear attention's activations are refused by name", () => {
    assert.throws(() => T.parameterCount({ ...tiny, attention: "gau" }), /parameter count of attention "gau" is not derived/);
    const p = T.planMemory({ config: { ...tiny, attention: "linear" } }, { ...base, seq: 16 });
    assert.equal(p.rows.find((r) => r.row === "activations")!.bytes, null);
    assert.match(p.notes.join(), /leaves out the activations \(not derived: attention "linear"/);
  });
});

describe("activations: Korthikanti et al. 2022 (16-bit, per layer)", () => {
  // GPT-3 175B's shapes (the paper's Table 3): a = 96, h = 12288, s = 2048; b = 1
  const a = 96, h = 12288, s = 2048, b = 1;
  const gpt3 = (nLayers: number, attention: string) => T.planConfig({ vocabSize: 51200, dModel: h, nLayers, nHeads: a, dFF: 4 * h, maxSeqLen: s, position: "learned", norm: "layernorm", ffn: "gelu", bias: true, attention }, "gpt3").config;
  const perLayer = (attention: string, checkpointing: T.Checkpointing = "none") => {
    const o: Opts = { ...base, precision: "bf16", seq: s, batch: b, checkpointing };
    return row(T.planMemory({ config: gpt3(2, attention) }, o), "activations") - row(T.planMemory({ config: gpt3(1, attention) }, o), "activations");
  };
  const lnStats = 2 * 8 * s * b;  // two norms' fp32 mean and rstd, which the paper leaves out

  it("softmax attention: eq. 1, s b h (34 + 5 a s / h), less its dropout terms", () => {
    // §4.1: of 34 s b h, two 1-byte dropout masks (s b h each); of 5 a s^2 b, the softmax's dropout mask
    // (a s^2 b) and output (2 a s^2 b). Without dropout: s b h (32 + 2 a s / h).
    const eq1 = s * b * h * (34 + (5 * a * s) / h), dropoutTerms = 2 * s * b * h + 3 * a * s * s * b;
    assert.equal(perLayer("softmax"), eq1 - dropoutTerms + lnStats);
  });
  it("flash attention: the s x s terms are gone; O (2 s b h) and the fp32 logsumexp (4 a s b) are kept", () => {
    // selective recomputation (§5) keeps 34 s b h per layer; again less the two dropout masks
    assert.equal(perLayer("flash"), 34 * s * b * h - 2 * s * b * h + 2 * s * b * h + 4 * a * s * b + lnStats);
  });
  it("full recomputation (checkpointing block): 2 s b h per layer (§4.2)", () => {
    assert.equal(perLayer("flash", "block"), 2 * s * b * h);
  });
});

/**
 * What tsformer holds training `model` on B sequences of S tokens: parameter bytes, AdamW state bytes,
 * and the peak of the bytes its graph saves for backward over forward and backward (memoryStats()).
 * The ops also save references to the weights; those storages are marked saved beforehand, so what
 * the step adds is the activations.
 */
function measure(model: T.TransformerLM, B: number, S: number) {
  const params = model.parameters();
  const adam = new T.AdamW(T.defaultParamGroups(model, 0.1)).stateDict();
  const V = model.config.vocabSize, g = new T.RandomGenerator(1);
  const x = T.randint(V, [B, S], { generator: g }), y = T.randint(V, [B, S], { generator: g });
  const weights = retainSaved(params.map((p) => p.data));
  T.resetPeakMemory();
  const before = T.memoryStats().savedBytes;
  T.crossEntropy(model.forward(x).logits.reshape(-1, V), y.reshape(-1)).backward();
  const activations = T.memoryStats().peakSavedBytes - before;
  releaseSaved(weights);
  return {
    parameters: params.reduce((n, p) => n + 4 * p.numel, 0),
    trainable: params.filter((p) => p.requiresGrad).reduce((n, p) => n + p.numel, 0),
    optimizer: Object.values(adam.tensors).reduce((n, t) => n + t.byteLength, 0),
    activations,
  };
}

describe("tsformer's own configs: predicted vs measured (fp32, AdamW)", () => {
  const within = (what: string, predicted: number, measured: number, tol: number) =>
    assert.ok(Math.abs(predicted / measured - 1) <= tol, `${what}: predicted ${predicted}, measured ${measured}`);
  // B at its batch of 16; A at batch 1, scaled to its batch of 8 (all its activations are per token
  // but the position ids, 4 s bytes shared by the batch)
  for (const [c, measuredBatch] of [[CONFIG_B, CONFIG_B.B], [CONFIG_A, 1]] as const) {
    it(`config ${c.name} (L${c.L} d${c.d} T${c.T} B${c.B}): parameters, optimizer state and saved activations within 10%`, (t) => {
      const cfg = toModelConfig(c), m = measure(new T.TransformerLM(cfg), measuredBatch, c.T);
      const plan = (batch: number) => T.planMemory({ config: cfg }, { ...base, seq: c.T, batch });
      const p = plan(c.B), activations = (m.activations - 4 * c.T) * (c.B / measuredBatch) + 4 * c.T;
      within("parameters", row(p, "parameters"), m.parameters, 0.1);
      within("optimizer state", row(p, "optimizer state"), m.optimizer, 0.1);
      within("activations", row(p, "activations"), activations, 0.1);
      t.diagnostic(`predicted / measured bytes: parameters ${row(p, "parameters")} / ${m.parameters}, optimizer ${row(p, "optimizer state")} / ${m.optimizer}, activations ${row(p, "activations")} / ${activations}`);
      // and closer: the itemized terms are what the ops keep, to the byte
      assert.equal(row(plan(measuredBatch), "activations"), m.activations);
    });
  }

  it("config B with checkpointing block (nn/checkpoint.ts): block inputs, the head, and one block replayed in backward", () => {
    const cfg = { ...toModelConfig(CONFIG_B), checkpointing: "block" as const };
    const m = measure(new T.TransformerLM(cfg), CONFIG_B.B, CONFIG_B.T);
    const p = T.planMemory({ config: cfg }, { ...base, seq: CONFIG_B.T, batch: CONFIG_B.B, checkpointing: "block" });
    assert.equal(row(p, "activations"), m.activations);
  });

  it("Llama layout (GQA, RMSNorm, SwiGLU, RoPE, q/k/v biases) with dropout, and LoRA r = 4 on q, k, v, o", () => {
    const cfg = T.llamaConfig({ vocabSize: 100, dModel: 64, nLayers: 3, nHeads: 8, nKvHeads: 2, maxSeqLen: 32, dFF: 96, dropout: 0.1, qkvBias: true });
    const m = measure(new T.TransformerLM(cfg), 3, 32);
    const p = T.planMemory({ config: cfg }, { ...base, seq: 32, batch: 3 });
    assert.deepEqual([row(p, "parameters"), row(p, "optimizer state"), row(p, "activations")], [m.parameters, m.optimizer, m.activations]);

    const lora = new T.TransformerLM({ ...cfg, dropout: 0 });
    T.applyLora(lora, { r: 4, alpha: 8, targetModules: ["wq", "wk", "wv", "wo"] });
    const ml = measure(lora, 3, 32);
    const pl = T.planMemory({ config: { ...cfg, dropout: 0 } }, { ...base, seq: 32, batch: 3, loraR: 4 });
    assert.equal(pl.trainable, ml.trainable);
    assert.deepEqual([row(pl, "parameters"), row(pl, "gradients"), row(pl, "optimizer state")], [ml.parameters, 4 * ml.trainable, ml.optimizer]);
    assert.equal(ml.activations, row(pl, "activations"));
  });
});

describe("tsformer memory", () => {
  const run = (o: Parameters<typeof runMemory>[0]) => {
    let out = "";
    runMemory(o, (s) => { out += s; });
    return out;
  };
  it("--params 7e9 --precision bf16 prints the rows and a total of 112 GB", () => {
    const out = run({ params: 7e9, precision: "bf16" });
    assert.match(out, /^total\s+112 GB/m);
    assert.match(out, /^optimizer state\s+84 GB\s+12 Psi/m);
  });
  it("--json for a model directory (tsformer config.json) and an HF config.json", () => {
    const dir = mkdtempSync(join(tmpdir(), "tsformer-memory-"));
    writeFileSync(join(dir, "config.json"), JSON.stringify(toModelConfig(CONFIG_B)));
    const j = JSON.parse(run({ model: dir, json: true })) as T.MemoryPlan;
    assert.equal(j.parameters, 875_264);
    assert.deepEqual([j.options.precision, j.options.seq], ["fp32", CONFIG_B.T]);
    const hf = join(dir, "hf.json");
    writeFileSync(hf, JSON.stringify(T.MEMORY_PRESETS.gpt2.hf));
    assert.equal((JSON.parse(run({ model: hf, json: true, zero: 3, devices: 4 })) as T.MemoryPlan).parameters, 124_439_808);
  });

  // Bad input: one clear error each, from the command as main.ts registers it (parsed in-process; the
  // flag parsers' errors come from commander) and, for one, through the real command line.
  const dir = mkdtempSync(join(tmpdir(), "tsformer-memory-bad-"));
  const broken = join(dir, "config.json");
  writeFileSync(broken, '{"vocabSize": 65, "dModel": ');
  const parse = async (args: string[]): Promise<string> => {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
    addMemoryCommand(program);
    try {
      await program.parseAsync(["memory", ...args], { from: "user" });
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error(`tsformer memory ${args.join(" ")} succeeded`);
  };
  const cases: [string, string[], RegExp][] = [
    ["an unknown preset", ["--preset", "llama-9"], /^--preset: unknown preset "llama-9"; expected one of llama-2-7b, llama-2-13b, qwen2.5-7b, gpt2$/],
    ["an unknown precision", ["--preset", "gpt2", "--precision", "fp8"], /--precision expects one of fp32, bf16, fp16, got 'fp8'$/],
    ["--zero 4", ["--preset", "gpt2", "--zero", "4"], /--zero expects one of 0, 1, 2, 3, got '4'$/],
    ["--devices 0", ["--preset", "gpt2", "--devices", "0"], /--devices expects an integer >= 1, got '0'$/],
    ["a config file that does not parse", ["--model", broken], /^--model: .*config\.json: is not valid JSON/],
    ["two sources", ["--preset", "gpt2", "--params", "7e9"], /^give exactly one of --model, --preset or --params \(got --preset and --params\)$/],
  ];
  for (const [what, args, re] of cases) it(what, async () => assert.match(await parse(args), re));

  it("on the command line: one line on stderr, exit 1, no stack trace", () => {
    failsWith(cliIn()("memory", "--model", broken), /^tsformer: --model: .*config\.json: is not valid JSON/);
  });
});
