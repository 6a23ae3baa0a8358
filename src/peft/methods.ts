// The fine-tuning methods by name (`finetune --method`): each freezes the base and adds its parameters
// (or, "full", trains everything), and each writes and reads its adapter directory: LoRA / DoRA in HF
// PEFT's layout (io.ts); prefix and prompt tuning as PEFT saves them (peft_type PREFIX_TUNING /
// PROMPT_TUNING, one "prompt_embeddings" tensor: the computed prefixes [p, L * 2 * kvDim], or the soft
// prompt [p, D]); Houlsby adapters in the same shape (tsformer's own peft_type "HOULSBY_ADAPTER",
// adapter_model.safetensors with base_model.model.<parameter> keys); Medusa-1's heads (medusa.ts) in
// the reference's medusa_lm_head layout, trained with their own objective.

import * as path from "node:path";
import { existsSync } from "node:fs";
import { encodeSafetensors, readSafetensors, type SafeTensor } from "../io/safetensors.js";
import { readJsonFile } from "../io/read.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { TransformerLM } from "../models/transformer.js";
import type { Module } from "../nn/module.js";
import { noGrad } from "../tensor/autograd.js";
import { addHoulsbyAdapters } from "./adapter.js";
import { addPrefixTuning, PrefixTuning } from "./prefix.js";
import { addPromptTuning } from "./prompt.js";
import { MEDUSA_CONFIG, MedusaLM, medusaFiles, medusaObjective } from "./medusa.js";
import type { Objective } from "../train/objectives.js";
import { VirtualTokenLM } from "./virtual-tokens.js";
import * as ops from "../ops/index.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { applyLora, freezeAllBut, type LoraConfig } from "./index.js";
import { ADAPTER_CONFIG, ADAPTER_WEIGHTS, adapterConfigJson, adapterWeights, loadAdapter, PREFIX } from "./io.js";
import { moduleNaming } from "./targets.js";

export const PEFT_METHODS = ["lora", "dora", "adapter", "prefix", "prompt", "full", "medusa"] as const;
export type PeftMethod = (typeof PEFT_METHODS)[number];

/** A method and its options (the finetune flags). */
export interface PeftSpec {
  method: PeftMethod;
  r?: number; alpha?: number; dropout?: number; targetModules?: string[]; rslora?: boolean;
  bias?: LoraConfig["bias"]; modulesToSave?: string[];
  /** Houlsby adapters' bottleneck size. */
  bottleneck?: number;
  /** Prefix / prompt tuning: the number of virtual tokens. */
  virtualTokens?: number;
  /** Prefix tuning's reparameterization MLP width (0: none; default the key/value width). */
  prefixHidden?: number;
  /** Medusa: the number of heads K (default 4). */
  heads?: number;
}

/** A model with a method applied: `model` is what trains and decodes (a wrapper for prefix / prompt tuning). */
export interface Peft {
  method: PeftMethod;
  model: Module & CausalLM & { dropoutGenerator: RandomGenerator };
  lora?: LoraConfig;
  houlsby?: { bottleneck: number; nonlinearity: "gelu" | "relu" };
  /** The training objective when it is not the LM loss (Medusa-1's heads loss). */
  objective?: Objective<Peft["model"]>;
}

/** PEFT's default LoRA targets for Llama-like models (q_proj, v_proj), in the names the model answers to. */
function defaultTargets(model: TransformerLM): string[] {
  const n = moduleNaming(model.config);
  return n.arch && n.arch !== "gpt2" ? ["q_proj", "v_proj"] : ["wq", "wv"];
}

export function applyPeft(model: TransformerLM, s: PeftSpec): Peft {
  if (!(PEFT_METHODS as readonly string[]).includes(s.method)) throw new Error(`unknown fine-tuning method ${JSON.stringify(s.method)}; expected one of ${PEFT_METHODS.join(", ")}`);
  if (s.method === "full") {
    for (const [, p] of model.namedParameters()) p.requiresGrad = true;
    return { method: "full", model };
  }
  if (s.method === "medusa") {
    model.requiresGrad_(false);  // Medusa-1: the heads alone train; the base is not the wrapper's child
    return { method: "medusa", model: new MedusaLM(model, { heads: s.heads }), objective: medusaObjective as Objective<Peft["model"]> };
  }
  if (s.method === "prefix" || s.method === "prompt") {
    model.requiresGrad_(false);  // the wrapper's parameters are its own; the base is not its child
    const numVirtualTokens = s.virtualTokens ?? 16;
    const wrapper = s.method === "prefix" ? addPrefixTuning(model, { numVirtualTokens, projectionHidden: s.prefixHidden }) : addPromptTuning(model, { numVirtualTokens });
    return { method: s.method, model: wrapper };
  }
  if (s.method === "adapter") {
    const houlsby = { bottleneck: s.bottleneck ?? 16, nonlinearity: "gelu" as const };
    const a = addHoulsbyAdapters(model, houlsby);
    freezeAllBut(model, a.isAdapterParam);
    return { method: "adapter", model, houlsby };
  }
  const lora: LoraConfig = {
    r: s.r ?? 8, alpha: s.alpha ?? 16, targetModules: s.targetModules?.length ? s.targetModules : defaultTargets(model),
    dropout: s.dropout, rslora: s.rslora, dora: s.method === "dora", bias: s.bias, modulesToSave: s.modulesToSave,
  };
  applyLora(model, lora);
  return { method: s.method, model, lora };
}

/** The adapter directory's files for a method (none for "full": its checkpoint is the model). */
export function peftFiles(model: TransformerLM, p: Peft, o: { baseModel?: string | null } = {}): Record<string, unknown> {
  if (p.method === "full") return {};
  if (p.model instanceof MedusaLM) return medusaFiles(p.model.medusa, o.baseModel ?? null);
  if (p.model instanceof VirtualTokenLM) return virtualTokenFiles(model, p.model, o.baseModel ?? null);
  if (p.lora) return { [ADAPTER_CONFIG]: adapterConfigJson(p.lora, o.baseModel ?? null), [ADAPTER_WEIGHTS]: adapterWeights(model, p.lora) };
  const tensors: Record<string, SafeTensor> = {};
  for (const [n, t] of model.namedParameters()) if (t.requiresGrad) tensors[`${PREFIX}${n}`] = { dtype: "F32", shape: [...t.shape], data: Float32Array.from(t.toTypedArray() as Float32Array) };
  return {
    [ADAPTER_CONFIG]: { peft_type: "HOULSBY_ADAPTER", task_type: "CAUSAL_LM", base_model_name_or_path: o.baseModel ?? null, bottleneck: p.houlsby!.bottleneck, nonlinearity: p.houlsby!.nonlinearity, inference_mode: true },
    [ADAPTER_WEIGHTS]: encodeSafetensors(tensors, { format: "pt" }, ADAPTER_WEIGHTS),
  };
}

/** Apply the adapter directory `dir` (any method's) to `model`; errors name the directory. */
export async function loadPeft(model: TransformerLM, dir: string): Promise<Peft> {
  const cfgFile = path.join(dir, ADAPTER_CONFIG);
  if (!existsSync(cfgFile) && existsSync(path.join(dir, MEDUSA_CONFIG))) throw new Error(`adapter ${dir}: these are Medusa heads (${MEDUSA_CONFIG}), not an adapter; decode with them through generate's --medusa`);
  if (!existsSync(cfgFile)) throw new Error(`adapter ${dir}: no ${ADAPTER_CONFIG}; expected an adapter directory (a finetune checkpoint or a PEFT adapter)`);
  const raw = readJsonFile(cfgFile) as Record<string, unknown>;
  if (raw?.peft_type === "PREFIX_TUNING" || raw?.peft_type === "PROMPT_TUNING") return loadVirtualTokens(model, dir, raw);
  if (raw?.peft_type !== "HOULSBY_ADAPTER") {
    const lora = await loadAdapter(model, dir);
    return { method: lora.dora ? "dora" : "lora", model, lora };
  }
  const bottleneck = raw.bottleneck;
  if (!Number.isSafeInteger(bottleneck) || (bottleneck as number) <= 0) throw new Error(`adapter ${dir}: ${ADAPTER_CONFIG} field bottleneck is ${JSON.stringify(bottleneck)}; expected a positive integer`);
  const houlsby = { bottleneck: bottleneck as number, nonlinearity: raw.nonlinearity === "relu" ? "relu" as const : "gelu" as const };
  const a = addHoulsbyAdapters(model, houlsby);
  freezeAllBut(model, a.isAdapterParam);
  const file = await readSafetensors(path.join(dir, ADAPTER_WEIGHTS));
  loadOwn(model, file.tensors, dir, a.isAdapterParam);
  return { method: "adapter", model, houlsby };
}

/** Copy base_model.model.<name> tensors into the parameters `take` names; every one must be there, nothing else. */
function loadOwn(model: Module, tensors: Record<string, SafeTensor>, dir: string, take: (n: string) => boolean): void {
  const left = new Set(Object.keys(tensors));
  noGrad(() => {
    for (const [n, p] of model.namedParameters()) {
      if (!take(n)) continue;
      const t = tensors[`${PREFIX}${n}`];
      if (!t) throw new Error(`adapter ${dir}: ${ADAPTER_WEIGHTS} lacks ${PREFIX}${n}; the adapter does not fit this base`);
      if (t.dtype !== "F32" || t.shape.join() !== p.shape.join()) throw new Error(`adapter ${dir}: ${PREFIX}${n} is ${t.dtype} [${t.shape.join(", ")}]; this base needs F32 [${p.shape.join(", ")}]`);
      (p.data as Float32Array).set(t.data as Float32Array);
      left.delete(`${PREFIX}${n}`);
    }
  });
  if (left.size) throw new Error(`adapter ${dir}: ${ADAPTER_WEIGHTS} holds ${[...left].slice(0, 3).join(", ")}, which this base has no place for`);
}

/** PEFT's prompt-learning config (PromptLearningConfig.to_dict's keys for these two types) and the one tensor. */
function virtualTokenFiles(model: TransformerLM, w: VirtualTokenLM, baseModel: string | null): Record<string, unknown> {
  const c = model.config, prefix = w instanceof PrefixTuning;
  const t = w.exportPromptEmbeddings();
  return {
    [ADAPTER_CONFIG]: {
      auto_mapping: null, base_model_name_or_path: baseModel, inference_mode: true, num_attention_heads: c.nHeads, num_layers: c.nLayers,
      num_transformer_submodules: 1, num_virtual_tokens: w.numVirtualTokens, peft_type: prefix ? "PREFIX_TUNING" : "PROMPT_TUNING",
      revision: null, task_type: "CAUSAL_LM", token_dim: c.dModel,
      ...(prefix ? { encoder_hidden_size: c.dModel, prefix_projection: false } : { prompt_tuning_init: "RANDOM", prompt_tuning_init_text: null, tokenizer_kwargs: null, tokenizer_name_or_path: null }),
    },
    [ADAPTER_WEIGHTS]: encodeSafetensors({ prompt_embeddings: { dtype: "F32", shape: [...t.shape], data: Float32Array.from(t.toTypedArray() as Float32Array) } }, { format: "pt" }, ADAPTER_WEIGHTS),
  };
}

async function loadVirtualTokens(model: TransformerLM, dir: string, raw: Record<string, unknown>): Promise<Peft> {
  const p = raw.num_virtual_tokens;
  if (!Number.isSafeInteger(p) || (p as number) <= 0) throw new Error(`adapter ${dir}: ${ADAPTER_CONFIG} field num_virtual_tokens is ${JSON.stringify(p)}; expected a positive integer`);
  if (raw.token_dim !== undefined && raw.token_dim !== model.config.dModel) throw new Error(`adapter ${dir}: ${ADAPTER_CONFIG} field token_dim is ${JSON.stringify(raw.token_dim)} but this base's width is ${model.config.dModel}; the adapter was trained for another base`);
  const file = await readSafetensors(path.join(dir, ADAPTER_WEIGHTS));
  const t = file.tensors.prompt_embeddings;
  if (!t || t.dtype !== "F32") throw new Error(`adapter ${dir}: ${ADAPTER_WEIGHTS} has no F32 "prompt_embeddings"; expected PEFT's prompt-learning layout`);
  model.requiresGrad_(false);
  const prefix = raw.peft_type === "PREFIX_TUNING";
  const w = prefix ? addPrefixTuning(model, { numVirtualTokens: p as number, projectionHidden: 0 }) : addPromptTuning(model, { numVirtualTokens: p as number });
  try {
    w.importPromptEmbeddings(ops.tensor(t.data as Float32Array, { shape: t.shape }));
  } catch (e) {
    throw new Error(`adapter ${dir}: prompt_embeddings [${t.shape.join(", ")}] does not fit this base: ${(e as Error).message}`, { cause: e });
  }
  return { method: prefix ? "prefix" : "prompt", model: w };
}
