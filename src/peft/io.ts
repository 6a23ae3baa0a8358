// LoRA adapters on disk in HF PEFT's layout (peft utils/save_and_load.py get_peft_model_state_dict,
// config.py to_dict): adapter_config.json (peft_type, r, lora_alpha, target_modules, ...) and
// adapter_model.safetensors with keys base_model.model.<module>.lora_A.weight [r, in],
// .lora_B.weight [out, r] and, for DoRA, .lora_magnitude_vector [out] (the adapter name removed).
// <module> is HF's name for a model with an HF layout (model.layers.0.self_attn.q_proj), tsformer's
// own otherwise (blocks.0.attn.wq): the documented equivalent for tsformer-native bases. HF's q_proj /
// k_proj rows are in rotate-half order, ours interleaved: lora_B rows and DoRA magnitudes of those
// layers are permuted like the weights' rows (lora_A, on the input side, is not).

import * as path from "node:path";
import { existsSync } from "node:fs";
import { writeDirAtomic } from "../io/atomic.js";
import { FileReadError, readJsonFile } from "../io/read.js";
import { encodeSafetensors, readSafetensors, SafetensorsError, type SafeTensor } from "../io/safetensors.js";
import { permuteRope, type Mat } from "../models/hf/weights.js";
import type { TransformerLM } from "../models/transformer.js";
import type { Module } from "../nn/module.js";
import { noGrad } from "../tensor/autograd.js";
import { bf16ToF32, f16ToF32 } from "../backend/js/half.js";
import { applyLora, loraLayers, type LoraConfig } from "./index.js";
import { externalName, moduleNaming, type ModuleNaming } from "./targets.js";

export const ADAPTER_CONFIG = "adapter_config.json";
export const ADAPTER_WEIGHTS = "adapter_model.safetensors";
/** The key prefix of PEFT's adapter tensors (PeftModel.base_model.model). */
export const PREFIX = "base_model.model.";

/** adapter_config.json for a LoRA config, with the keys PEFT 0.20's LoraConfig.to_dict writes (sorted, as PEFT's JSON). */
export function adapterConfigJson(c: LoraConfig, baseModel: string | null): Record<string, unknown> {
  return {
    alora_invocation_tokens: null, alpha_pattern: {}, arrow_config: null, auto_mapping: null, base_model_name_or_path: baseModel,
    bias: c.bias ?? "none", corda_config: null, ensure_weight_tying: false, eva_config: null, exclude_modules: null,
    fan_in_fan_out: false, inference_mode: true, init_lora_weights: true, layer_replication: null, layers_pattern: null,
    layers_to_transform: null, loftq_config: {}, lora_alpha: c.alpha, lora_bias: false, lora_dropout: c.dropout ?? 0,
    lora_ga_config: null, megatron_config: null, megatron_core: "megatron.core", modules_to_save: c.modulesToSave ?? null,
    monteclora_config: null, peft_type: "LORA", peft_version: "0.20.0", qalora_group_size: 16, r: c.r, rank_pattern: {},
    revision: null, target_modules: c.targetModules, target_parameters: null, task_type: "CAUSAL_LM",
    trainable_token_indices: null, use_bdlora: null, use_dora: c.dora ?? false, use_qalora: false, use_rslora: c.rslora ?? false,
    velora_config: null,
  };
}

/** The LoraConfig an adapter_config.json describes; an error names the file and the field. */
export function parseAdapterConfig(raw: unknown, file: string): LoraConfig {
  const o = (typeof raw === "object" && raw !== null && !Array.isArray(raw) ? raw : null) as Record<string, unknown> | null;
  if (!o) throw new Error(`${file}: is not a JSON object; expected a PEFT adapter_config.json`);
  const bad = (field: string, want: string) => new Error(`${file}: field ${field} is ${JSON.stringify(o[field])}; expected ${want}`);
  if (o.peft_type !== "LORA") throw bad("peft_type", '"LORA" (tsformer reads LoRA / DoRA adapters in PEFT\'s layout)');
  if (!Number.isSafeInteger(o.r) || (o.r as number) <= 0) throw bad("r", "a positive integer");
  if (typeof o.lora_alpha !== "number" || !(o.lora_alpha > 0)) throw bad("lora_alpha", "a positive number");
  const t = o.target_modules;
  if (!(typeof t === "string" || (Array.isArray(t) && t.every((x) => typeof x === "string")))) throw bad("target_modules", "a list of module names or a regular expression");
  for (const f of ["rank_pattern", "alpha_pattern"]) if (o[f] && Object.keys(o[f] as object).length) throw bad(f, "{} (per-layer ranks are not supported)");
  for (const f of ["layers_to_transform", "layer_replication"]) if (o[f] !== undefined && o[f] !== null) throw bad(f, "null");
  if (o.fan_in_fan_out === true) throw bad("fan_in_fan_out", "false");
  for (const f of ["lora_bias", "use_qalora"]) if (o[f] === true) throw bad(f, "false");
  for (const f of ["exclude_modules", "target_parameters", "trainable_token_indices", "alora_invocation_tokens"]) if (o[f] !== undefined && o[f] !== null) throw bad(f, "null");
  return {
    r: o.r as number, alpha: o.lora_alpha, targetModules: t as string | string[], dropout: typeof o.lora_dropout === "number" ? o.lora_dropout : 0,
    rslora: o.use_rslora === true, dora: o.use_dora === true, bias: (o.bias as LoraConfig["bias"]) ?? "none",
    modulesToSave: Array.isArray(o.modules_to_save) ? (o.modules_to_save as string[]) : undefined,
  };
}

interface Entry { key: string; ours: string; rowsOf: number | null }

/** Every adapter tensor of the model: its PEFT key, our parameter name, and the RoPE heads of its rows (q/k B and magnitude). */
function entries(model: Module, naming: ModuleNaming, name: string): Entry[] {
  const out: Entry[] = [];
  for (const [p, l] of loraLayers(model)) {
    if (!l.adapterNames.includes(name)) continue;
    const ext = `${PREFIX}${externalName(naming, p)}`, heads = naming.hf.get(p)?.ropeHeads ?? null;
    out.push({ key: `${ext}.lora_A.weight`, ours: `${p}.lora_A.${name}.weight`, rowsOf: null });
    out.push({ key: `${ext}.lora_B.weight`, ours: `${p}.lora_B.${name}.weight`, rowsOf: heads });
    if (l.adapter(name).magnitude) out.push({ key: `${ext}.lora_magnitude_vector`, ours: `${p}.lora_magnitude_vector.${name}.weight`, rowsOf: heads });
  }
  // Trained biases and modules_to_save are the model's own parameters, saved under their own names
  // (PEFT drops "modules_to_save.<adapter>" from the key: base_model.model.lm_head.weight).
  const trainedOwn = [...model.namedParameters()].filter(([n, t]) => t.requiresGrad && !/\.lora_(A|B|magnitude_vector)\./.test(n));
  for (const [n] of trainedOwn) {
    const mod = n.slice(0, n.lastIndexOf(".")), leaf = n.slice(n.lastIndexOf(".") + 1);
    out.push({ key: `${PREFIX}${externalName(naming, mod)}.${leaf}`, ours: n, rowsOf: naming.hf.get(mod)?.ropeHeads ?? null });
  }
  return out;
}

export interface SaveAdapterOptions {
  /** base_model_name_or_path (default null). */
  baseModel?: string | null;
  name?: string;
  overwrite?: boolean;
}

/** adapter_model.safetensors of the adapter: its tensors in PEFT's layout, as bytes. */
export function adapterWeights(model: TransformerLM, c: LoraConfig, o: { name?: string } = {}): Uint8Array {
  const naming = moduleNaming(model.config), name = o.name ?? c.name ?? "default";
  const sd = model.stateDict();
  const tensors: Record<string, SafeTensor> = {};
  for (const e of entries(model, naming, name)) {
    const t = sd[e.ours];
    if (!t) throw new Error(`saveAdapter: the model has no parameter ${e.ours}`);
    let m: Mat = { data: Float32Array.from(t.toTypedArray() as Float32Array), shape: [...t.shape] };
    if (e.rowsOf) m = permuteRope(m, e.rowsOf, true);
    tensors[e.key] = { dtype: "F32", shape: m.shape, data: m.data };
  }
  return encodeSafetensors(tensors, { format: "pt" }, ADAPTER_WEIGHTS);
}

/** The files of an adapter (adapter_config.json, adapter_model.safetensors), as bytes. */
export function adapterFiles(model: TransformerLM, c: LoraConfig, o: SaveAdapterOptions = {}): [string, string | Uint8Array][] {
  return [
    [ADAPTER_CONFIG, `${JSON.stringify(adapterConfigJson(c, o.baseModel ?? null), null, 2)}\n`],
    [ADAPTER_WEIGHTS, adapterWeights(model, c, o)],
  ];
}

/** Write the adapter as a PEFT directory (written whole or not at all). */
export function saveAdapter(model: TransformerLM, dir: string, c: LoraConfig, o: SaveAdapterOptions = {}): void {
  writeDirAtomic(dir, adapterFiles(model, c, o), { overwrite: o.overwrite });
}

/**
 * Add the adapter of a PEFT directory to `model` (LoRA layers per its adapter_config.json, weights from
 * adapter_model.safetensors). A base it does not fit (a target matching nothing, a missing or
 * misshapen tensor, an unexpected key) is refused with one error naming the directory.
 */
export async function loadAdapter(model: TransformerLM, dir: string, o: { name?: string } = {}): Promise<LoraConfig> {
  const cfgFile = path.join(dir, ADAPTER_CONFIG), wFile = path.join(dir, ADAPTER_WEIGHTS);
  const fail = (problem: string, cause?: unknown) => new Error(`adapter ${dir}: ${problem}`, { cause });
  if (!existsSync(cfgFile)) throw fail(`no ${ADAPTER_CONFIG}; expected a PEFT adapter directory (adapter_config.json + adapter_model.safetensors)`);
  if (!existsSync(wFile)) throw fail(`no ${ADAPTER_WEIGHTS}${existsSync(path.join(dir, "adapter_model.bin")) ? " (adapter_model.bin is pickled PyTorch, which tsformer does not read)" : ""}`);
  let raw: unknown;
  try { raw = readJsonFile(cfgFile); } catch (e) { throw fail(e instanceof FileReadError ? `${ADAPTER_CONFIG} ${e.problem}` : (e as Error).message, e); }
  const c = { ...parseAdapterConfig(raw, cfgFile), name: o.name ?? "default" };
  let file;
  try { file = await readSafetensors(wFile); } catch (e) { throw e instanceof SafetensorsError ? fail(e.message.replace(`${dir}${path.sep}`, ""), e) : e; }
  try {
    applyLora(model, c);
  } catch (e) {
    throw fail(`its base does not match this model: ${(e as Error).message}`, e);
  }
  const naming = moduleNaming(model.config);
  const params = Object.fromEntries(model.namedParameters());
  const want = entries(model, naming, c.name!);
  const keys = new Set(Object.keys(file.tensors));
  noGrad(() => {
    for (const e of want) {
      const t = file.tensors[e.key], p = params[e.ours]!;
      if (!t) throw fail(`${ADAPTER_WEIGHTS} lacks ${e.key}; the adapter does not fit this base (different layers or names)`);
      if (t.dtype !== "F32" && t.dtype !== "BF16" && t.dtype !== "F16") throw fail(`${e.key} is ${t.dtype}; expected F32, BF16 or F16`);
      if (t.shape.join() !== p.shape.join()) throw fail(`${e.key} has shape [${t.shape.join(", ")}] but this base needs [${p.shape.join(", ")}]; the adapter was trained for another base`);
      let m: Mat = { data: widen(t), shape: t.shape };
      if (e.rowsOf) m = permuteRope(m, e.rowsOf, false);
      (p.data as Float32Array).set(m.data);
      keys.delete(e.key);
    }
  });
  if (keys.size) throw fail(`${ADAPTER_WEIGHTS} holds ${[...keys].slice(0, 3).join(", ")}${keys.size > 3 ? ", ..." : ""}, which this base has no place for; the adapter was trained for another base`);
  return c;
}

function widen(t: SafeTensor): Float32Array {
  if (t.dtype === "F32") return t.data as Float32Array;
  return t.dtype === "BF16" ? bf16ToF32(t.data as Uint16Array) : f16ToF32(t.data as Uint16Array);
}
