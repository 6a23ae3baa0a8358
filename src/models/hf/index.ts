// Load and save Hugging Face model directories: config.json (models/hf/config.ts), the weights in
// one model.safetensors or in shards (io/hf/weights.ts), generation_config.json, and the tokenizer
// files, which are carried over as they are.

import { existsSync } from "node:fs";
import * as path from "node:path";
import { writeDirAtomic } from "../../io/atomic.js";
import { encodeHFWeights, HFDirError, readDirJson, readHFWeights } from "../../io/hf/weights.js";
import { brief, isObject, maxModelBytes, readFileBounded } from "../../io/read.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { ModelConfig } from "../config.js";
import { TransformerLM } from "../transformer.js";
import { fromHFConfig, hfArchFor, toHFConfig, type HFArch, type HFDType, type HFModelConfig } from "./config.js";
import { fromHFWeights, toHFWeights } from "./weights.js";

export { fromHFConfig, hfArchFor, toHFConfig, type HFArch, type HFDType, type HFModelConfig } from "./config.js";

/** Sampling defaults from generation_config.json (transformers GenerationConfig field names). */
export interface GenerationDefaults {
  /** 0 when do_sample is false (greedy). */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
  /** max_length: the prompt and the new tokens together (see maxNewTokensFor). */
  maxLength?: number;
  /** eos_token_id: one id or several. */
  eosIds?: number[];
  bosId?: number;
}

export interface HFModel {
  model: TransformerLM;
  hf: HFModelConfig;
  generation: GenerationDefaults | null;
  /** generation_config.json as read (written back on save). */
  generationRaw: Record<string, unknown> | null;
}

/** Tokenizer files of an HF directory, copied verbatim when a loaded model is saved. */
export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "chat_template.jinja", "chat_template.json"];
const GENERATION = "generation_config.json";

/** The tokenizer files present in dir (TOKENIZER_FILES), as bytes, to be written beside a saved model. */
export function readTokenizerFiles(dir: string): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const f of TOKENIZER_FILES) {
    const p = path.join(dir, f);
    if (existsSync(p)) out[f] = readFileBounded(p, { maxBytes: maxModelBytes() });
  }
  return out;
}

function generationDefaults(raw: Record<string, unknown>, dir: string): GenerationDefaults {
  const g: GenerationDefaults = {};
  const num = (field: string, ok: (v: number) => boolean, expected: string): number | undefined => {
    const v = raw[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "number" || !Number.isFinite(v) || !ok(v)) throw new HFDirError(dir, `${GENERATION}: field ${field} is ${brief(v)}; expected ${expected}`);
    return v;
  };
  const id = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  g.temperature = raw.do_sample === true ? num("temperature", (v) => v >= 0, "a number >= 0") ?? 1 : 0;
  g.topK = num("top_k", (v) => Number.isSafeInteger(v) && v >= 0, "an integer >= 0 (0 = off)");
  g.topP = num("top_p", (v) => v > 0 && v <= 1, "a number in (0, 1]");
  g.repetitionPenalty = num("repetition_penalty", (v) => v > 0, "a number > 0 (1 = off)");
  g.maxNewTokens = num("max_new_tokens", (v) => Number.isSafeInteger(v) && v > 0, "a positive integer");
  g.maxLength = num("max_length", (v) => Number.isSafeInteger(v) && v > 0, "a positive integer");
  const eos = raw.eos_token_id;
  if (eos !== undefined && eos !== null) {
    const ids = [eos].flat();
    if (!ids.every(id)) throw new HFDirError(dir, `${GENERATION}: field eos_token_id is ${brief(eos)}; expected a token id or a list of them`);
    g.eosIds = ids as number[];
  }
  if (id(raw.bos_token_id)) g.bosId = raw.bos_token_id as number;
  return g;
}

/**
 * How many tokens to generate after a prompt of `promptLength` tokens under generation_config.json,
 * as transformers' GenerationMixin._prepare_generated_length: max_new_tokens when set (it wins over
 * max_length), else max_length minus the prompt (max_length counts both); undefined when neither is
 * set. A prompt that already fills max_length is an error, as transformers' _validate_generated_length
 * raises.
 */
export function maxNewTokensFor(g: GenerationDefaults | null | undefined, promptLength: number): number | undefined {
  if (g?.maxNewTokens !== undefined) return g.maxNewTokens;
  if (g?.maxLength === undefined) return undefined;
  if (promptLength >= g.maxLength) {
    throw new RangeError(`the prompt has ${promptLength} tokens, but ${GENERATION} sets max_length (the prompt and the new tokens together) to ${g.maxLength}; pass the number of new tokens (--max-new-tokens)`);
  }
  return g.maxLength - promptLength;
}

/** An HF model directory as a TransformerLM (eval mode); errors name the directory, the file and the field. */
export async function loadHFModel(dir: string): Promise<HFModel> {
  const raw = readDirJson(dir, "config.json");
  const hf = fromHFConfig(raw, path.join(dir, "config.json"));
  const tensors = await readHFWeights(dir);
  const model = new TransformerLM(hf.config);
  model.loadStateDict(fromHFWeights(hf.arch, hf.config, tensors, `HF model ${dir}`));
  let generationRaw: Record<string, unknown> | null = null;
  if (existsSync(path.join(dir, GENERATION))) {
    const g = readDirJson(dir, GENERATION);
    if (!isObject(g)) throw new HFDirError(dir, `${GENERATION} is not a JSON object`);
    generationRaw = g;
  }
  return { model: model.eval(), hf, generation: generationRaw ? generationDefaults(generationRaw, dir) : null, generationRaw };
}

export interface SaveHFOptions {
  /** The architecture to write (default: the one the config's layout maps to, see hfArchFor). */
  arch?: HFArch;
  /** Dtype of the saved weights (default float32). */
  dtype?: HFDType;
  /** A loaded model's config.json: its unmapped fields are kept. */
  baseConfig?: Record<string, unknown>;
  /** generation_config.json's content. */
  generationConfig?: Record<string, unknown> | null;
  /** Extra files (tokenizer.json, tokenizer_config.json, ...): name -> content. */
  files?: Record<string, string | Uint8Array>;
  maxShardBytes?: number;
  /** Replace an existing non-empty directory. */
  overwrite?: boolean;
}

/** Write `model` as an HF directory that transformers' from_pretrained can load. Written whole or not at all. */
export function saveHFModel(model: { config: ModelConfig; stateDict(): Record<string, Tensor> }, dir: string, o: SaveHFOptions = {}): void {
  const c = model.config;
  const arch = o.arch ?? hfArchFor(c);
  const dtype = o.dtype ?? "float32";
  const files: [string, string | Uint8Array][] = encodeHFWeights(toHFWeights(arch, c, model.stateDict(), dtype), o.maxShardBytes);
  files.push(["config.json", `${JSON.stringify(toHFConfig(c, arch, dtype, o.baseConfig), null, 2)}\n`]);
  if (o.generationConfig) files.push([GENERATION, `${JSON.stringify(o.generationConfig, null, 2)}\n`]);
  for (const [name, data] of Object.entries(o.files ?? {})) files.push([name, data]);
  writeDirAtomic(dir, files, { overwrite: o.overwrite });
}
