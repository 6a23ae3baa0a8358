// Load a model for inference from a path, recognized by content (io/detect.ts): a tsformer model or
// checkpoint directory (config.json + model.safetensors [+ tokenizer.json]; the optimizer and trainer
// state are not needed), a Hugging Face model directory (models/hf) or a llama2.c .bin (+ its
// tokenizer .bin). The config is validated and its
// size checked against the weights file's header before any weight is read or allocated.

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { loadModelFiles, rollBack } from "../io/checkpoint.js";
import { detectFile } from "../io/detect.js";
import { readJsonFile } from "../io/read.js";
import type { SafetensorsHeader } from "../io/safetensors.js";
import { CharTokenizer } from "../tokenizers/char.js";
import { Llama2cTokenizer } from "../tokenizers/llama2c.js";
import type { Tokenizer } from "../tokenizers/tokenizer.js";
import { HFTokenizer } from "../tokenizers/hf.js";
import { ChatTemplate } from "../tokenizers/chat-template.js";
import { readTextFile } from "../io/text.js";
import { minParamCount, parseModelConfig, type ModelConfig } from "./config.js";
import { loadLlama2c } from "./llama2c.js";
import { loadHFModel, readTokenizerFiles, type GenerationDefaults, type HFModelConfig } from "./hf/index.js";
import { TransformerLM } from "./transformer.js";

export interface LoadedModel {
  model: TransformerLM;
  tokenizer: Tokenizer | null;
  /** What the model came from: "tsformer", "hf" or "llama2c". */
  format: "tsformer" | "hf" | "llama2c";
  /** An HF directory's architecture, config.json and dtype. */
  hf?: HFModelConfig;
  /** Sampling defaults from generation_config.json. */
  generation?: GenerationDefaults | null;
  generationRaw?: Record<string, unknown> | null;
  /**
   * The chat template of tokenizer_config.json (or chat_template.jinja), or null when the model has
   * none. Parsed on call: a broken template fails chat, not generate or eval, which never use it.
   */
  chatTemplate: () => ChatTemplate | null;
  /** The tokenizer files of the directory (tokenizer.json, tokenizer_config.json, ...), to carry into a conversion. */
  tokenizerFiles?: Record<string, Uint8Array>;
}

const LOADABLE = "tsformer loads tsformer model or checkpoint directories (config.json + model.safetensors), HF model directories (config.json + safetensors weights) and llama2.c .bin files";

/** The config must fit the weights file: checked on its header, before the weights are read. */
function checkWeights(cfg: ModelConfig, h: SafetensorsHeader, dir: string): void {
  const emb = h.tensors["tok_emb.weight"]?.shape;
  if (emb && (emb[0] !== cfg.vocabSize || emb[1] !== cfg.dModel)) {
    throw new Error(`model ${dir}: config.json says vocabSize ${cfg.vocabSize}, dModel ${cfg.dModel} but model.safetensors holds tok_emb.weight of shape [${emb.join(", ")}]; the config does not belong to these weights`);
  }
  const need = minParamCount(cfg), have = h.dataBytes / 4;
  if (need > have) {
    throw new Error(`model ${dir}: config.json describes at least ${need} parameters (nLayers ${cfg.nLayers}, dModel ${cfg.dModel}, dFF ${cfg.dFF}) but model.safetensors holds ${have} values; the config does not belong to these weights`);
  }
}

async function loadModelDir(dir: string): Promise<{ model: TransformerLM; tokenizerJson: unknown }> {
  const source = join(dir, "config.json");
  let cfg: ModelConfig | undefined;
  const files = await loadModelFiles(dir, {
    checkWeights: (raw, header) => {
      cfg = parseModelConfig(raw, source);
      checkWeights(cfg, header, dir);
    },
  });
  const model = new TransformerLM(cfg ?? parseModelConfig(files.config, source));
  model.loadStateDict(files.model);
  return { model, tokenizerJson: files.extraFiles?.["tokenizer.json"] };
}

/** A tokenizer file by content: a llama2.c tokenizer .bin, a tsformer character tokenizer.json or an HF tokenizer.json (with the tokenizer_config.json beside it, if any). */
export async function loadTokenizer(file: string, vocabSize?: number): Promise<Tokenizer> {
  const d = detectFile(file);
  if (d.kind === "llama2c-tokenizer") return Llama2cTokenizer.load(file, vocabSize);
  if (d.kind === "char-tokenizer-json") return CharTokenizer.fromJSON(readJsonFile(file), file);
  if (d.kind === "hf-tokenizer-json") return HFTokenizer.fromFiles(file, besideConfig(file));
  throw new Error(`tokenizer ${file} is ${d.description}; expected a llama2.c tokenizer .bin, an HF tokenizer.json or a tsformer tokenizer.json`);
}

function besideConfig(tokenizerJson: string): string | undefined {
  const c = join(dirname(tokenizerJson), "tokenizer_config.json");
  return existsSync(c) ? c : undefined;
}

/** The chat template of an HF directory: chat_template.jinja (newer transformers) or tokenizer_config.json's field. */
function chatTemplateOf(dir: string): ChatTemplate | null {
  const cfgFile = join(dir, "tokenizer_config.json");
  const cfg = existsSync(cfgFile) ? readJsonFile(cfgFile) : {};
  const jinja = join(dir, "chat_template.jinja");
  if (existsSync(jinja)) {
    const base = typeof cfg === "object" && cfg !== null && !Array.isArray(cfg) ? cfg : {};
    return ChatTemplate.fromConfig({ ...base, chat_template: readTextFile(jinja, { label: jinja }) }, { file: jinja });
  }
  const has = typeof cfg === "object" && cfg !== null && "chat_template" in cfg && (cfg as Record<string, unknown>).chat_template !== null;
  return has ? ChatTemplate.fromConfig(cfg, { file: cfgFile }) : null;
}

/** tokenizerPath: a tokenizer file (see loadTokenizer); for a .bin model it defaults to tokenizer.bin, else tok512.bin, beside it. */
export async function loadModel(path: string, tokenizerPath?: string): Promise<LoadedModel> {
  let d = detectFile(path);
  if (d.kind === "missing" && await rollBack(path)) d = detectFile(path);
  let out: LoadedModel, tokSource = tokenizerPath;
  if (d.kind === "tsformer-model-dir" || d.kind === "tsformer-checkpoint") {
    if (existsSync(join(path, "adapter_config.json"))) {
      throw new Error(`model ${path} is a fine-tuning checkpoint that holds an adapter, not a whole model; load its base with --model <base> --adapter ${path} (or write a merged model with tsformer merge)`);
    }
    const loaded = await loadModelDir(path);
    out = { model: loaded.model, tokenizer: null, format: "tsformer", chatTemplate: () => null };
    if (!tokenizerPath && loaded.tokenizerJson !== undefined) {
      tokSource = join(path, "tokenizer.json");
      const isChar = typeof loaded.tokenizerJson === "object" && (loaded.tokenizerJson as { type?: unknown }).type === "char";
      out.tokenizer = isChar ? CharTokenizer.fromJSON(loaded.tokenizerJson, tokSource) : await HFTokenizer.fromFiles(tokSource, besideConfig(tokSource));
      if (!isChar) out.chatTemplate = () => chatTemplateOf(path);
    }
  } else if (d.kind === "hf-dir") {
    const h = await loadHFModel(path);
    out = {
      model: h.model, tokenizer: null, format: "hf", hf: h.hf, generation: h.generation, generationRaw: h.generationRaw,
      tokenizerFiles: readTokenizerFiles(path), chatTemplate: () => chatTemplateOf(path),
    };
    if (!tokenizerPath && existsSync(join(path, "tokenizer.json"))) {
      tokSource = join(path, "tokenizer.json");
      out.tokenizer = await HFTokenizer.fromFiles(tokSource, besideConfig(tokSource));
    }
  } else if (d.kind === "llama2c-model") {
    out = { model: await loadLlama2c(path), tokenizer: null, format: "llama2c", chatTemplate: () => null };
    const beside = ["tokenizer.bin", "tok512.bin"].map((f) => join(dirname(path), f)).find((f) => existsSync(f));
    if (!tokenizerPath && beside) tokSource = beside;
  } else {
    throw new Error(`model ${path} is ${d.description}; ${LOADABLE}`);
  }
  const { model } = out;
  if (!out.tokenizer && tokSource) out.tokenizer = await loadTokenizer(tokSource, model.config.vocabSize);
  const tok = out.tokenizer;
  // HF models may pad the embedding past the tokenizer's ids (Qwen2: 151936 rows for 151665 tokens).
  if (tok && (out.format === "hf" ? tok.vocabSize > model.config.vocabSize : tok.vocabSize !== model.config.vocabSize)) {
    throw new Error(`tokenizer ${tokSource} has ${tok.vocabSize} tokens but model ${path} has ${model.config.vocabSize} (vocabSize, the number of logits); expected the tokenizer the model was trained with`);
  }
  model.eval();
  return out;
}
