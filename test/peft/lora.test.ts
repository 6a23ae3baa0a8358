// LoRA / rsLoRA / DoRA against PyTorch goldens written from the papers and PEFT's code
// (scripts/golden/peft.py): forward and every gradient of an adapted Linear, the merged weight; PEFT-layout
// adapters on an HF Llama base give the golden logits and tsformer's save has PEFT's names, shapes and
// config keys; init, merge / unmerge and multiple adapters on stories260K; bad input.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { after, describe, test } from "node:test";
import { decodeSafetensors } from "../../src/io/safetensors.js";
import { Linear } from "../../src/nn/layers.js";
import { loadHFModel } from "../../src/models/hf/index.js";
import { loadLlama2c } from "../../src/models/llama2c.js";
import { LoraLinear } from "../../src/peft/lora.js";
import { applyLora, loraLayers, mergeAndUnload, mergeLora, setActiveAdapters, trainableParameters, unmergeLora } from "../../src/peft/index.js";
import { loadAdapter, saveAdapter } from "../../src/peft/io.js";
import * as T from "../../src/index.js";

const FIX = path.join(import.meta.dirname, "..", "fixtures");
const tmp = mkdtempSync(path.join(tmpdir(), "tsformer-lora-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let scale = 0, worst = 0;
  for (let i = 0; i < b.length; i++) scale = Math.max(scale, Math.abs(b[i]!));
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst / Math.max(scale, 1e-12);
}

describe("LoRA Linear vs the PyTorch golden (forward, gradients, merged weight)", () => {
  const { tensors, metadata } = decodeSafetensors(readFileSync(path.join(FIX, "peft", "lora_cases.safetensors")));
  const cases = JSON.parse(metadata.cases!) as { name: string; r: number; lora_alpha: number; use_rslora: boolean; use_dora: boolean; in_features: number; out_features: number; x_shape: number[] }[];
  const f32 = (n: string) => tensors[n]!.data as Float32Array;
  const ref = (n: string) => tensors[n]!.data as Float64Array;
  for (const c of cases) {
    test(`${c.name}: output and the gradients of x, A, B${c.use_dora ? ", magnitude" : ""} <= 1e-5`, () => {
      const base = new Linear(c.in_features, c.out_features, true);
      (base.weight.data as Float32Array).set(f32(`${c.name}.weight`));
      (base.bias!.data as Float32Array).set(f32(`${c.name}.bias`));
      const l = new LoraLinear(base);
      l.addAdapter("default", { r: c.r, alpha: c.lora_alpha, rslora: c.use_rslora, dora: c.use_dora });
      const a = l.adapter("default");
      (a.A.data as Float32Array).set(f32(`${c.name}.lora_A`));
      (a.B.data as Float32Array).set(f32(`${c.name}.lora_B`));
      if (c.use_dora) (a.magnitude!.data as Float32Array).set(f32(`${c.name}.magnitude`));
      l.weight.requiresGrad = false;
      l.bias!.requiresGrad = false;
      const x = T.tensor(Float32Array.from(f32(`${c.name}.x`)), { shape: c.x_shape }).requiresGrad_();
      const y = l.forward(x);
      assert.ok(maxRel(y.toTypedArray(), ref(`${c.name}.out`)) <= 1e-5, `out ${maxRel(y.toTypedArray(), ref(`${c.name}.out`))}`);
      T.sum(T.mul(y, T.tensor(Float32Array.from(f32(`${c.name}.gout`)), { shape: y.shape }))).backward();
      const grads: [string, T.Tensor][] = [["x", x], ["lora_A", a.A], ["lora_B", a.B], ...(c.use_dora ? [["magnitude", a.magnitude!] as [string, T.Tensor]] : [])];
      for (const [n, t] of grads) {
        const e = maxRel(t.grad!.toTypedArray(), ref(`${c.name}.grad.${n}`));
        assert.ok(e <= 1e-5, `grad ${n}: ${e}`);
      }
      assert.equal(l.weight.grad, null, "the frozen weight gets no gradient");
      const merged = Float32Array.from(l.weight.toTypedArray() as Float32Array).map((w, i) => w + l.deltaWeight("default")[i]!);
      assert.ok(maxRel(merged, ref(`${c.name}.merged_weight`)) <= 1e-6, `merged ${maxRel(merged, ref(`${c.name}.merged_weight`))}`);
    });
  }
});

describe("PEFT-layout adapters on an HF Llama base", () => {
  for (const dir of ["llama-lora", "llama-dora", "llama-rslora"]) {
    test(`${dir}: loads onto test/fixtures/hf/llama and gives the golden logits; our save has PEFT's names, shapes and config`, async () => {
      const { model } = await loadHFModel(path.join(FIX, "hf", "llama"));
      const src = path.join(FIX, "peft", dir);
      const cfg = await loadAdapter(model, src);
      const g = decodeSafetensors(readFileSync(path.join(src, "golden.safetensors"))).tensors;
      const ids = [...(g.input_ids!.data as Int32Array)];
      const logits = model.forward(T.tensor(Int32Array.from(ids), { shape: [1, ids.length] })).logits.toTypedArray();
      assert.ok(maxRel(logits, g.logits!.data as Float32Array) <= 1e-5, `logits ${maxRel(logits, g.logits!.data as Float32Array)}`);
      const out = path.join(tmp, dir);
      saveAdapter(model, out, cfg, { baseModel: "test/fixtures/hf/llama" });
      const theirs = decodeSafetensors(readFileSync(path.join(src, "adapter_model.safetensors"))).tensors;
      const ours = decodeSafetensors(readFileSync(path.join(out, "adapter_model.safetensors"))).tensors;
      assert.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort());
      for (const [k, t] of Object.entries(theirs)) {
        assert.deepEqual(ours[k]!.shape, t.shape, k);
        assert.deepEqual([...(ours[k]!.data as Float32Array)], [...(t.data as Float32Array)], `${k} round-trips exactly`);
      }
      const a = JSON.parse(readFileSync(path.join(out, "adapter_config.json"), "utf8")) as Record<string, unknown>;
      const b = JSON.parse(readFileSync(path.join(src, "adapter_config.json"), "utf8")) as Record<string, unknown>;
      assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
      assert.deepEqual({ ...a, target_modules: [...(a.target_modules as string[])].sort() }, { ...b, target_modules: [...(b.target_modules as string[])].sort() });
      // a finetune checkpoint's adapter files (peftFiles) are what saveAdapter writes
      const files = T.peftFiles(model, { method: cfg.dora ? "dora" : "lora", model, lora: cfg }, { baseModel: "test/fixtures/hf/llama" });
      assert.deepEqual(files["adapter_config.json"], a);
      assert.ok(Buffer.from(files["adapter_model.safetensors"] as Uint8Array).equals(readFileSync(path.join(out, "adapter_model.safetensors"))));
    });
  }
});

describe("LoRA on stories260K", () => {
  const ids = T.tensor(Int32Array.from([1, 403, 407, 261, 378, 30, 12]), { shape: [1, 7] });
  const load = () => loadLlama2c(path.join(import.meta.dirname, "..", "..", "data", "stories260K.bin"));
  const perturb = (m: T.Module, seed: number) => {
    for (const [n, p] of m.namedParameters()) if (n.includes("lora_B")) (p.data as Float32Array).forEach((_, i, a) => { a[i] = 0.05 * Math.sin(seed + i); });
  };
  test("at init the adapted model's logits equal the base's exactly; only the adapter trains", async () => {
    const m = await load();
    const base = m.forward(ids).logits.toTypedArray();
    const r = applyLora(m, { r: 8, alpha: 16, targetModules: ["wq", "wk", "wv", "wo"], dora: false });
    assert.equal(r.layers.length, 20);
    assert.deepEqual(m.forward(ids).logits.toTypedArray(), base);
    const s = trainableParameters(m);
    assert.equal(s.trainable, 5 * (2 * 8 * (64 + 64) + 2 * 8 * (64 + 32)));
    for (const [n, p] of m.namedParameters()) assert.equal(p.requiresGrad, n.includes(".lora_"), n);
  });
  test("merged == unmerged logits <= 1e-5; unmerge restores the base weights within 1e-6; merging twice is refused", async () => {
    for (const dora of [false, true]) {
      const m = await load();
      const w0 = Float32Array.from(m.stateDict()["blocks.2.attn.wv.weight"]!.toTypedArray() as Float32Array);
      applyLora(m, { r: 4, alpha: 8, targetModules: ["wq", "wv", "w1"], dora });
      perturb(m, 1);
      const un = m.forward(ids).logits.toTypedArray();
      mergeLora(m);
      assert.ok(maxRel(m.forward(ids).logits.toTypedArray(), un) <= 1e-5);
      assert.throws(() => mergeLora(m), /adapter "default" is already merged into these weights; unmerge it first/);
      unmergeLora(m);
      const w1 = m.stateDict()["blocks.2.attn.wv.weight"]!.toTypedArray();
      assert.ok(w0.every((v, i) => Math.abs(v - w1[i]!) <= 1e-6));
      assert.ok(maxRel(m.forward(ids).logits.toTypedArray(), un) <= 1e-6);
    }
  });
  test("two named adapters switch at run time; merge_and_unload leaves a plain model", async () => {
    const m = await load();
    applyLora(m, { r: 4, alpha: 8, targetModules: ["wq"], name: "a" });
    applyLora(m, { r: 2, alpha: 4, targetModules: ["wq", "wv"], name: "b" });
    perturb(m, 3);
    setActiveAdapters(m, ["a"]);
    const la = m.forward(ids).logits.toTypedArray();
    setActiveAdapters(m, ["b"]);
    const lb = m.forward(ids).logits.toTypedArray();
    assert.notDeepEqual(la, lb);
    assert.throws(() => setActiveAdapters(m, ["c"]), /no adapter named "c"/);
    mergeAndUnload(m);
    assert.equal(loraLayers(m).length, 0);
    assert.ok(maxRel(m.forward(ids).logits.toTypedArray(), lb) <= 1e-5);
    assert.ok(Object.keys(m.stateDict()).every((k) => !k.includes("lora")));
  });
  test("bias and modules_to_save train and round-trip under PEFT's keys", async () => {
    // Qwen2's q/k/v biases; the head of this Qwen2 is tied to the embedding, so it is saved as embed_tokens
    const { model } = await loadHFModel(path.join(FIX, "hf", "qwen2"));
    const cfg = { r: 2, alpha: 4, targetModules: ["q_proj", "k_proj"], bias: "lora_only" as const, modulesToSave: ["embed_tokens"] };
    applyLora(model, cfg);
    const trainable = Object.keys(model.stateDict({ trainableOnly: true }));
    assert.ok(trainable.includes("blocks.0.attn.wq.bias") && trainable.includes("blocks.1.attn.wk.bias") && !trainable.includes("blocks.0.attn.wv.bias"));
    assert.ok(trainable.includes("tok_emb.weight"));
    perturb(model, 5);
    T.noGrad(() => { for (const [n, p] of model.namedParameters()) if (n.endsWith("attn.wq.bias")) (p.data as Float32Array).fill(0.25); });
    const small = T.tensor(Int32Array.from([1, 40, 7, 26, 78, 30]), { shape: [1, 6] });
    const want = model.forward(small).logits.toTypedArray();
    const out = path.join(tmp, "bias-save");
    saveAdapter(model, out, cfg);
    const keys = Object.keys(decodeSafetensors(readFileSync(path.join(out, "adapter_model.safetensors"))).tensors);
    assert.ok(keys.includes("base_model.model.model.layers.0.self_attn.q_proj.bias"), keys.join(" "));
    assert.ok(keys.includes("base_model.model.model.embed_tokens.weight"), keys.join(" "));
    const fresh = (await loadHFModel(path.join(FIX, "hf", "qwen2"))).model;
    await loadAdapter(fresh, out);
    assert.deepEqual(fresh.forward(small).logits.toTypedArray(), want);
  });
  test("bad input: a target matching nothing, r <= 0, an adapter for another base", async () => {
    const m = await load();
    assert.throws(() => applyLora(m, { r: 4, alpha: 8, targetModules: ["query"] }), /LoRA: targetModules \["query"\] match no Linear layer; this model's Linear layers end in: q_proj/);
    assert.throws(() => applyLora(m, { r: 0, alpha: 8, targetModules: ["wq"] }), /LoRA config: r is 0; expected a positive integer/);
    // the Llama fixture's adapter on stories260K: same names, other shapes
    await assert.rejects(loadAdapter(await load(), path.join(FIX, "peft", "llama-lora")), /adapter .*llama-lora: .*has shape \[4, 64\] but this base needs|lacks/);
    const dir = path.join(tmp, "bad-peft");
    cpSync(path.join(FIX, "peft", "llama-lora"), dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(path.join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(path.join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, peft_type: "IA3" }));
    await assert.rejects(loadAdapter((await loadHFModel(path.join(FIX, "hf", "llama"))).model, dir), /adapter_config\.json: field peft_type is "IA3"; expected "LORA"/);
  });
});

describe("loraLinear: the base product and one adapter as one op", () => {
  const g = new T.RandomGenerator(11);
  const f64 = (shape: number[]) => T.randn(shape, { dtype: "float64", generator: g, requiresGrad: true });
  for (const name of T.availableBackends()) {
    test(`[${name}] float64 gradcheck of x, W, b, A and B (a trainable base too), and of the gradient penalty (gradients of gradients)`, () => {
      const prev = T.backend().name;
      T.setBackend(name);
      try {
        const x = f64([2, 3, 5]), W = f64([4, 5]), b = f64([4]), A = f64([2, 5]), B = f64([4, 2]);
        const r = T.gradcheck((x, W, b, A, B) => T.loraLinear(x, W, b, A, B, 1.5), [x, W, b, A, B], { generator: g });
        assert.ok(r.maxRelError < 1e-5, JSON.stringify(r));  // gradcheck also throws past its tolerance
        const v = T.randn([2, 3, 4], { dtype: "float64", generator: g });
        const penalty = (x: T.Tensor, W: T.Tensor, A: T.Tensor, B: T.Tensor) => {
          const [gx] = T.grad((a) => T.sum(T.mul(v, T.square(T.loraLinear(a, W, null, A, B, 0.75)))), { createGraph: true })(x);
          return T.sum(T.mul(gx, gx));
        };
        const r2 = T.gradcheck(penalty, [x, W, A, B], { generator: g });
        assert.ok(r2.maxRelError < 1e-5, JSON.stringify(r2));
      } finally { T.setBackend(prev); }
    });
  }
  test("equals the composed form x W^T + b + s (x A^T) B^T with a frozen base, output and gradients (float32)", () => {
    const x = T.randn([3, 7, 16], { generator: g, requiresGrad: true }), W = T.randn([12, 16], { generator: g }), b = T.randn([12], { generator: g });
    const A = T.randn([4, 16], { generator: g, requiresGrad: true }), B = T.randn([12, 4], { generator: g, requiresGrad: true });
    const v = T.randn([3, 7, 12], { generator: g });
    const run = (f: () => T.Tensor) => {
      for (const t of [x, A, B]) t.grad = null;
      const y = f();
      T.sum(T.mul(y, v)).backward();
      return [y, x.grad!, A.grad!, B.grad!].map((t) => t.toTypedArray());
    };
    const fused = run(() => T.loraLinear(x, W, b, A, B, 2));
    const composed = run(() => T.add(T.linear(x, W, b), T.linear(T.mul(T.linear(x, A), 2), B)));
    fused.forEach((got, i) => assert.ok(maxRel(got, composed[i]) <= 1e-5, `output / gradient ${i}: ${maxRel(got, composed[i])}`));
    assert.throws(() => T.loraLinear(x, W, b, B, A, 2), /loraLinear: weight \[12, 16\], A \[12, 4\] and B \[4, 16\] do not fit \(A is \[r, in\], B \[out, r\]\)/);
  });
});
