// HF model directories: the PyTorch golden models of scripts/golden/hf_models.py (written in HF's
// layout, forward passes written from transformers' modeling files) load with the golden logits and
// greedy ids; tsformer's own save of each is the same tensors under the same names, with the same
// config.json; broken directories get one clear error each.

import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { readHFWeights } from "../../src/io/hf/weights.js";
import { decodeSafetensors } from "../../src/io/safetensors.js";
import { generate } from "../../src/generate/generate.js";
import { loadHFModel, maxNewTokensFor, saveHFModel } from "../../src/models/hf/index.js";
import { loadLlama2c } from "../../src/models/llama2c.js";
import * as T from "../../src/index.js";

const FIX = path.join(import.meta.dirname, "..", "fixtures", "hf");
const tmp = mkdtempSync(path.join(tmpdir(), "tsformer-hf-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function golden(dir: string) {
  const { tensors } = decodeSafetensors(readFileSync(path.join(FIX, dir, "golden.safetensors")));
  const ints = (n: string) => [...(tensors[n]!.data as Int32Array)];
  return { input: ints("input_ids"), prompt: ints("prompt_ids"), greedy: ints("greedy_ids"), logits: tensors.logits!.data as Float32Array };
}

const json = (file: string) => JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;

describe("HF model directories against PyTorch goldens", () => {
  for (const dir of ["gpt2", "llama", "qwen2", "mistral", "llama-sharded", "qwen2-bf16"]) {
    test(`${dir}: golden logits (<= 1e-4 relative) and greedy ids`, async () => {
      const g = golden(dir);
      const { model, hf } = await loadHFModel(path.join(FIX, dir));
      const ids = T.tensor(Int32Array.from(g.input), { shape: [1, g.input.length] });
      const logits = model.forward(ids).logits.toTypedArray();
      assert.equal(logits.length, g.logits.length);
      const scale = Math.max(...g.logits.map(Math.abs));
      let worst = 0;
      for (let i = 0; i < logits.length; i++) worst = Math.max(worst, Math.abs(logits[i]! - g.logits[i]!) / scale);
      assert.ok(worst <= 1e-4, `${dir}: max |ours - golden| / max |golden| = ${worst}`);
      const r = generate(model, g.prompt, { maxNewTokens: g.greedy.length, temperature: 0 });
      assert.deepEqual(r.ids, g.greedy);
      assert.equal(hf.dtype, dir === "qwen2-bf16" ? "bfloat16" : "float32");
    });
  }

  for (const dir of ["gpt2", "llama", "qwen2", "mistral", "qwen2-bf16"]) {
    test(`${dir}: tsformer's save holds the same tensors, names and config.json`, async () => {
      const src = path.join(FIX, dir), out = path.join(tmp, `save-${dir}`);
      const { model, hf, generationRaw } = await loadHFModel(src);
      saveHFModel(model, out, { arch: hf.arch, dtype: hf.dtype, baseConfig: hf.raw, generationConfig: generationRaw });
      const a = await readHFWeights(src), b = await readHFWeights(out);
      assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
      for (const [name, t] of Object.entries(a)) {
        assert.equal(b[name]!.dtype, t.dtype, name);
        assert.deepEqual(b[name]!.shape, t.shape, name);
        assert.ok(Buffer.from(b[name]!.data.buffer, b[name]!.data.byteOffset, b[name]!.data.byteLength)
          .equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), `${name}: bytes differ`);
      }
      assert.deepEqual(json(path.join(out, "config.json")), json(path.join(src, "config.json")));
      assert.deepEqual(json(path.join(out, "generation_config.json")), json(path.join(src, "generation_config.json")));
      assert.equal(decodeSafetensors(readFileSync(path.join(out, "model.safetensors"))).metadata.format, "pt");
    });
  }

  test("a model saved in shards loads back with the same logits; the index lists every tensor", async () => {
    const { model, hf } = await loadHFModel(path.join(FIX, "llama"));
    const out = path.join(tmp, "resharded");
    saveHFModel(model, out, { arch: hf.arch, baseConfig: hf.raw, maxShardBytes: 100_000 });
    const index = json(path.join(out, "model.safetensors.index.json")) as { weight_map: Record<string, string>; metadata: { total_size: number } };
    const shards = new Set(Object.values(index.weight_map));
    assert.ok(shards.size >= 3, `expected several shards, got ${[...shards].join(", ")}`);
    assert.deepEqual(Object.keys(index.weight_map).sort(), Object.keys(await readHFWeights(path.join(FIX, "llama"))).sort());
    const back = await loadHFModel(out);
    const ids = T.tensor(Int32Array.from([1, 5, 9, 77]), { shape: [1, 4] });
    assert.deepEqual(back.model.forward(ids).logits.toTypedArray(), model.forward(ids).logits.toTypedArray());
  });
});

describe("stories260K as an HF Llama directory", () => {
  test("llama2.c -> HF -> tsformer gives identical logits and the same greedy output", async () => {
    const m = await loadLlama2c(path.join(import.meta.dirname, "..", "..", "data", "stories260K.bin"));
    const out = path.join(tmp, "stories260K-hf");
    saveHFModel(m, out);
    const cfg = json(path.join(out, "config.json"));
    assert.equal(cfg.model_type, "llama");
    assert.deepEqual(cfg.architectures, ["LlamaForCausalLM"]);
    const back = await loadHFModel(out);
    const prompt = [1, 403, 407, 261, 378, 30, 12, 99];
    const ids = T.tensor(Int32Array.from(prompt), { shape: [1, prompt.length] });
    assert.deepEqual(back.model.forward(ids).logits.toTypedArray(), m.forward(ids).logits.toTypedArray());
    const o = { maxNewTokens: 40, temperature: 0 };
    assert.deepEqual(generate(back.model, prompt, o).ids, generate(m, prompt, o).ids);
    // HF's rotate-half layout: q_proj rows are the interleaved rows permuted within each head
    const w = await readHFWeights(out);
    const ours = m.stateDict()["blocks.0.attn.wq.weight"]!.toTypedArray();
    const hfq = w["model.layers.0.self_attn.q_proj.weight"]!.data as Float32Array;
    const D = 64, d = 8;
    for (const [h, j, t] of [[0, 0, 1], [3, 2, 0], [7, 3, 1]] as const) {
      assert.deepEqual([...hfq.subarray((h * d + t * (d / 2) + j) * D, (h * d + t * (d / 2) + j + 1) * D)], [...ours.subarray((h * d + 2 * j + t) * D, (h * d + 2 * j + t + 1) * D)]);
    }
  });
});

describe("generation_config.json lengths", () => {
  // transformers' GenerationMixin._prepare_generated_length: max_length counts the prompt and the new
  // tokens; max_new_tokens wins when both are set; a prompt that fills max_length is refused.
  test("max_length 64 (the llama fixture) leaves 64 - prompt new tokens; max_new_tokens wins", async () => {
    const { generation } = await loadHFModel(path.join(FIX, "llama"));
    assert.equal(generation!.maxLength, 64);
    assert.equal(maxNewTokensFor(generation, 10), 54);
    assert.equal(maxNewTokensFor({ ...generation, maxNewTokens: 7 }, 10), 7);
    assert.equal(maxNewTokensFor(null, 10), undefined);
    assert.throws(() => maxNewTokensFor(generation, 64), /the prompt has 64 tokens, but generation_config\.json sets max_length .* to 64; pass the number of new tokens/);
    const dir = path.join(tmp, "gen-max-length");
    cpSync(path.join(FIX, "llama"), dir, { recursive: true });
    writeFileSync(path.join(dir, "generation_config.json"), '{"max_length": 2.5}');
    await assert.rejects(loadHFModel(dir), /generation_config\.json: field max_length is 2\.5; expected a positive integer$/);
  });
});

describe("bad HF directories: one clear error each", () => {
  function broken(name: string, from: string, edit: (dir: string) => void): string {
    const dir = path.join(tmp, `bad-${name}`);
    cpSync(path.join(FIX, from), dir, { recursive: true });
    edit(dir);
    return dir;
  }
  const editJson = (file: string, f: (o: Record<string, unknown>) => void) => {
    const o = json(file);
    f(o);
    writeFileSync(file, JSON.stringify(o));
  };

  test("an unsupported architecture is named with the supported ones", async () => {
    const dir = broken("arch", "llama", (d) => editJson(path.join(d, "config.json"), (o) => { o.architectures = ["GPTNeoXForCausalLM"]; }));
    await assert.rejects(loadHFModel(dir), /config\.json: field architectures names GPTNeoXForCausalLM, which tsformer cannot load; supported: GPT2LMHeadModel, LlamaForCausalLM/);
  });
  test("an architecture named like an Object property is unsupported, not looked up on the prototype", async () => {
    const dir = broken("arch-proto", "llama", (d) => editJson(path.join(d, "config.json"), (o) => { o.architectures = ["constructor"]; }));
    await assert.rejects(loadHFModel(dir), /config\.json: field architectures names constructor, which tsformer cannot load; supported: GPT2LMHeadModel/);
  });
  test("an unsupported rope_scaling type, an unknown key and a factor <= 0 are refused by name", async () => {
    const withScaling = (name: string, sc: unknown) => broken(name, "llama", (d) => editJson(path.join(d, "config.json"), (o) => { o.rope_scaling = sc; }));
    await assert.rejects(loadHFModel(withScaling("longrope", { rope_type: "longrope", factor: 2, short_factor: [1] })), /config\.json rope_scaling: rope_type "longrope" is not supported; expected one of default, linear, dynamic, yarn, llama3/);
    await assert.rejects(loadHFModel(withScaling("key", { type: "linear", factor: 2, low_freq_factor: 1 })), /rope_scaling: low_freq_factor: not a parameter of RoPE scaling "linear"/);
    await assert.rejects(loadHFModel(withScaling("factor", { type: "yarn", factor: 0 })), /rope_scaling: factor: Too small/);
  });
  test("rope_scaling maps onto the scheme and is written back as it was", async () => {
    const sc = { type: "yarn", factor: 4, original_max_position_embeddings: 16, beta_fast: 32 };
    const dir = broken("yarn", "llama", (d) => editJson(path.join(d, "config.json"), (o) => { o.rope_scaling = sc; }));
    const { model, hf } = await loadHFModel(dir);
    assert.deepEqual(model.config.ropeScaling, { type: "yarn", factor: 4, originalMaxSeqLen: 16, betaFast: 32 });
    const out = path.join(tmp, "yarn-out");
    saveHFModel(model, out, { arch: hf.arch, baseConfig: hf.raw });
    assert.deepEqual(JSON.parse(readFileSync(path.join(out, "config.json"), "utf8")).rope_scaling, sc);
  });
  test("a field that changes the computation is refused by name (hidden_act)", async () => {
    const dir = broken("act", "mistral", (d) => editJson(path.join(d, "config.json"), (o) => { o.hidden_act = "gelu"; }));
    await assert.rejects(loadHFModel(dir), /field hidden_act is "gelu"; tsformer supports only "silu"/);
  });
  test("a missing shard is named", async () => {
    const dir = broken("shard", "llama-sharded", (d) => rmSync(path.join(d, "model-00002-of-00002.safetensors")));
    await assert.rejects(loadHFModel(dir), /shard model-00002-of-00002\.safetensors named by model\.safetensors\.index\.json is missing/);
  });
  test("a shard index naming a tensor its shard lacks is named", async () => {
    const dir = broken("index", "llama-sharded", (d) => editJson(path.join(d, "model.safetensors.index.json"), (o) => {
      (o.weight_map as Record<string, string>)["model.layers.9.mlp.up_proj.weight"] = "model-00001-of-00002.safetensors";
    }));
    await assert.rejects(loadHFModel(dir), /model\.safetensors\.index\.json names tensor model\.layers\.9\.mlp\.up_proj\.weight in model-00001-of-00002\.safetensors, but model-00001-of-00002\.safetensors does not hold it/);
  });
  test("a tensor of the wrong shape for the config is named with both shapes", async () => {
    const dir = broken("shape", "qwen2", (d) => editJson(path.join(d, "config.json"), (o) => { o.intermediate_size = 80; }));
    await assert.rejects(loadHFModel(dir), /tensor model\.layers\.0\.mlp\.gate_proj\.weight has shape \[\d+, \d+\]; config\.json .* expects \[80, \d+\]/);
  });
  test("pickled weights are refused with what to do", async () => {
    const dir = broken("pickle", "gpt2", (d) => { rmSync(path.join(d, "model.safetensors")); writeFileSync(path.join(d, "pytorch_model.bin"), "PK"); });
    await assert.rejects(loadHFModel(dir), /holds pytorch_model\.bin \(pickled PyTorch weights\)/);
  });
  test("saving over a non-empty directory is refused, and leaves it as it was", async () => {
    const { model, hf } = await loadHFModel(path.join(FIX, "gpt2"));
    const dir = broken("keep", "gpt2", () => {});
    const before = readFileSync(path.join(dir, "model.safetensors"));
    assert.throws(() => saveHFModel(model, dir, { arch: hf.arch }), /exists and is not empty; pass overwrite/);
    assert.ok(readFileSync(path.join(dir, "model.safetensors")).equals(before));
  });
  // Fuzz finds (scripts/fuzz): values nested 10,000-200,000 deep overflowed the stack while the error
  // message was written; a non-finite weight loaded, and convert wrote a model tsformer then refused.
  test("a JSON file nested too deep is refused by name (config, generation config, shard index)", async () => {
    const deep = `${"[".repeat(200_000)}${"]".repeat(200_000)}`;
    const nest = (file: string, f: (o: Record<string, unknown>) => void) => {
      const o = json(file);
      f(o);
      writeFileSync(file, JSON.stringify(o).replace('"@deep"', deep));
    };
    const cases: [string, string, (o: Record<string, unknown>) => void][] = [
      ["config.json", "llama", (o) => { o.tie_word_embeddings = "@deep"; }],
      ["generation_config.json", "llama", (o) => { o.top_k = "@deep"; }],
      ["model.safetensors.index.json", "llama-sharded", (o) => { (o.weight_map as Record<string, unknown>)["model.norm.weight"] = "@deep"; }],
    ];
    for (const [file, from, edit] of cases) {
      const dir = broken(`deep-${file}`, from, (d) => nest(path.join(d, file), edit));
      await assert.rejects(loadHFModel(dir), new RegExp(`${file.replace(/\./g, "\\.")} nests arrays / objects deeper than 32 levels; expected an HF JSON file$`));
    }
    const inf = broken("gen-inf", "llama", (d) => writeFileSync(path.join(d, "generation_config.json"), '{"do_sample": true, "repetition_penalty": 1e999}'));
    await assert.rejects(loadHFModel(inf), /generation_config\.json: field repetition_penalty is Infinity; expected a number > 0 \(1 = off\)$/);
  });
  test("a NaN or infinite weight is refused with its file, tensor and element (F32 and BF16)", async () => {
    const poison = (file: string, bits: number[]) => {
      const b = readFileSync(file);
      b.set(bits, 8 + Number(b.readBigUInt64LE(0))); // the first element of the data section
      writeFileSync(file, b);
    };
    const f32 = broken("nan", "llama-sharded", (d) => poison(path.join(d, "model-00001-of-00002.safetensors"), [0x00, 0x00, 0xc0, 0x7f]));
    await assert.rejects(loadHFModel(f32), /model-00001-of-00002\.safetensors: tensor \S+ holds NaN at element 0; expected finite weights/);
    const bf16 = broken("inf", "qwen2-bf16", (d) => poison(path.join(d, "model.safetensors"), [0x80, 0xff]));
    await assert.rejects(loadHFModel(bf16), /model\.safetensors: tensor \S+ holds -Infinity at element 0; expected finite weights/);
  });
});
