// Parameter-efficient fine-tuning of a TransformerLM: the base weights are frozen (no weight-gradient
// GEMM, no optimizer state for them) and a method adds a few trainable parameters. LoRA / DoRA here;
// the configuration mirrors HF PEFT's LoraConfig (r, lora_alpha, target_modules, lora_dropout, bias,
// use_rslora, use_dora, modules_to_save).

import { Linear, skipInit } from "../nn/layers.js";
import { noGrad } from "../tensor/autograd.js";
import type { Module } from "../nn/module.js";
import type { TransformerLM } from "../models/transformer.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { LoraLinear } from "./lora.js";
import { externalName, matchesTarget, moduleNaming, selectModules, type ModuleNaming, type TargetModules } from "./targets.js";

export { LoraLinear, loraScaling, type LoraOptions } from "./lora.js";
export { moduleNaming, externalName, type ModuleNaming, type TargetModules } from "./targets.js";

export interface LoraConfig {
  r: number;
  alpha: number;
  targetModules: TargetModules;
  dropout?: number;
  rslora?: boolean;
  dora?: boolean;
  /** Which biases train: none (PEFT's default), all, or those of the adapted layers. */
  bias?: "none" | "all" | "lora_only";
  /** Modules trained in full and saved with the adapter (e.g. lm_head). */
  modulesToSave?: string[];
  /** The adapter's name (default "default", as PEFT's). */
  name?: string;
}

function check(c: LoraConfig): void {
  const bad = (field: string, v: unknown, want: string) => new Error(`LoRA config: ${field} is ${JSON.stringify(v)}; expected ${want}`);
  if (!Number.isSafeInteger(c.r) || c.r <= 0) throw bad("r", c.r, "a positive integer (the rank)");
  if (typeof c.alpha !== "number" || !(c.alpha > 0)) throw bad("alpha", c.alpha, "a positive number");
  if (c.dropout !== undefined && !(c.dropout >= 0 && c.dropout < 1)) throw bad("dropout", c.dropout, "a probability in [0, 1)");
  if (c.bias !== undefined && !["none", "all", "lora_only"].includes(c.bias)) throw bad("bias", c.bias, '"none", "all" or "lora_only"');
  if (c.name !== undefined && !/^[A-Za-z0-9_-]+$/.test(c.name)) throw bad("name", c.name, "letters, digits, _ or -");
}

export interface AppliedLora {
  /** Our module paths of the adapted layers. */
  layers: string[];
  naming: ModuleNaming;
}

/**
 * Add a LoRA adapter to the Linear layers `targetModules` selects (a layer may hold several named
 * adapters), freeze everything else but the chosen biases and modulesToSave, and return the layers.
 * `generator` draws A (PEFT: torch's global stream); `dropoutGenerator` the dropout masks.
 */
export function applyLora(model: TransformerLM, c: LoraConfig, o: { generator?: RandomGenerator } = {}): AppliedLora {
  check(c);
  const naming = moduleNaming(model.config);
  const name = c.name ?? "default";
  const hits = selectModules(model, c.targetModules, naming, (m) => m instanceof Linear || m instanceof LoraLinear, "Linear", "LoRA");
  const dropoutGenerator = () => model.dropoutGenerator;
  for (const [path, m] of hits) {
    const layer = m instanceof LoraLinear ? m : new LoraLinear(m as Linear);
    if (layer !== m) model.replaceChild(path, layer);
    layer.addAdapter(name, { r: c.r, alpha: c.alpha, dropout: c.dropout, rslora: c.rslora, dora: c.dora, generator: o.generator, dropoutGenerator });
  }
  const layers = hits.map(([p]) => p);
  freezeAllBut(model, (n) => {
    const module = n.slice(0, n.lastIndexOf("."));
    if (/\.lora_(A|B|magnitude_vector)\./.test(n)) return n.includes(`.${name}.`);
    if (n.endsWith(".bias") && (c.bias === "all" || (c.bias === "lora_only" && layers.includes(module)))) return true;
    return false;
  });
  if (c.modulesToSave?.length) {
    // by the parameters' module paths: a model's own parameters (lm_head.weight) count as a module too
    const modules = [...new Set([...model.namedParameters()].map(([n]) => n.slice(0, n.lastIndexOf("."))))];
    const save = modules.filter((m) => matchesTarget(c.modulesToSave!, [m, externalName(naming, m)]));
    if (!save.length) throw new Error(`LoRA: modulesToSave ${JSON.stringify(c.modulesToSave)} match no module with parameters (a tied head is the embedding: name embed_tokens / tok_emb)`);
    for (const [n, p] of model.namedParameters()) if (save.includes(n.slice(0, n.lastIndexOf(".")))) p.requiresGrad = true;
  }
  return { layers, naming };
}

/** requiresGrad on exactly the parameters `keep` names (PEFT freezes the base the same way). */
export function freezeAllBut(model: Module, keep: (name: string) => boolean): void {
  for (const [n, p] of model.namedParameters()) p.requiresGrad = keep(n);
}

/** The LoRA layers of a model, by path. */
export function loraLayers(model: Module): [string, LoraLinear][] {
  return [...model.namedModules()].filter(([, m]) => m instanceof LoraLinear) as [string, LoraLinear][];
}

/** Fold the adapter into every layer's weight (merged == unmerged logits); refused where already merged. */
export function mergeLora(model: Module, name = "default"): void {
  for (const [, l] of loraLayers(model)) if (l.adapterNames.includes(name)) l.merge(name);
}

export function unmergeLora(model: Module, name = "default"): void {
  for (const [, l] of loraLayers(model)) if (l.adapterNames.includes(name)) l.unmerge(name);
}

/** Which adapters run in forward (the others stay loaded). */
export function setActiveAdapters(model: Module, names: string[]): void {
  const layers = loraLayers(model);
  for (const n of names) if (!layers.some(([, l]) => l.adapterNames.includes(n))) throw new Error(`LoRA: no adapter named ${JSON.stringify(n)} in this model`);
  for (const [, l] of layers) l.active = names.filter((n) => l.adapterNames.includes(n));
}

export interface TrainableSummary { trainable: number; total: number; fraction: number }

/**
 * PEFT's print_trainable_parameters: counts over the distinct tensors of the modules (a tied head
 * counts once; a prefix / prompt wrapper and its base are passed together).
 */
export function trainableParameters(...modules: Module[]): TrainableSummary {
  const seen = new Set<unknown>();
  let trainable = 0, total = 0;
  for (const [, p] of modules.flatMap((m) => [...m.namedParameters()])) {
    if (seen.has(p)) continue;
    seen.add(p);
    total += p.numel;
    if (p.requiresGrad) trainable += p.numel;
  }
  return { trainable, total, fraction: total ? trainable / total : 0 };
}

export function formatTrainable(s: TrainableSummary): string {
  return `trainable params: ${s.trainable.toLocaleString("en-US")} || all params: ${s.total.toLocaleString("en-US")} || trainable%: ${(100 * s.fraction).toFixed(4)}`;
}

/**
 * PEFT's merge_and_unload: every LoRA layer merged (its active adapters folded into W) and replaced
 * by a plain Linear holding the merged weight, so the model is a base model again.
 */
export function mergeAndUnload(model: Module): void {
  for (const [p, l] of loraLayers(model)) {
    for (const n of l.active) if (!l.isMerged(n)) l.merge(n);
    const plain = skipInit(() => new Linear(l.inFeatures, l.outFeatures, l.bias !== null));
    noGrad(() => {
      (plain.weight.data as Float32Array).set(l.weight.toTypedArray() as Float32Array);
      if (plain.bias && l.bias) (plain.bias.data as Float32Array).set(l.bias.toTypedArray() as Float32Array);
    });
    model.replaceChild(p, plain);
  }
  for (const [, t] of model.namedParameters()) t.requiresGrad = true;
}
