// Load a model for inference from a path, recognized by content (io/detect.ts): a tsformer model or
// checkpoint directory (config.json + model.safetensors [+ tokenizer.json]; the optimizer and trainer
// state are not needed) or a llama2.c .bin (+ its tokenizer .bin). The config is validated and its
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
import { minParamCount, parseModelConfig, type ModelConfig } from "./config.js";
import { loadLlama2c } from "./llama2c.js";
import { TransformerLM } from "./transformer.js";

export interface LoadedModel { model: TransformerLM; tokenizer: Tokenizer | null }

const LOADABLE = "tsformer loads tsformer model or checkpoint directories (config.json + model.safetensors), llama2.c .bin files and (soon) HF directories";

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

/** A tokenizer file by content: a llama2.c tokenizer .bin or a tsformer tokenizer.json. */
export async function loadTokenizer(file: string, vocabSize?: number): Promise<Tokenizer> {
  const d = detectFile(file);
  if (d.kind === "llama2c-tokenizer") return Llama2cTokenizer.load(file, vocabSize);
  if (d.kind === "char-tokenizer-json") return CharTokenizer.fromJSON(readJsonFile(file), file);
  throw new Error(`tokenizer ${file} is ${d.description}; expected a llama2.c tokenizer .bin or a tsformer tokenizer.json`);
}

/** tokenizerPath: a tokenizer file (see loadTokenizer); for a .bin model it defaults to tok512.bin beside it. */
export async function loadModel(path: string, tokenizerPath?: string): Promise<LoadedModel> {
  let d = detectFile(path);
  if (d.kind === "missing" && await rollBack(path)) d = detectFile(path);
  let model: TransformerLM, tokenizer: Tokenizer | null = null, tokSource = tokenizerPath;
  if (d.kind === "tsformer-model-dir" || d.kind === "tsformer-checkpoint") {
    const loaded = await loadModelDir(path);
    model = loaded.model;
    if (!tokenizerPath && loaded.tokenizerJson !== undefined) {
      tokSource = join(path, "tokenizer.json");
      tokenizer = CharTokenizer.fromJSON(loaded.tokenizerJson, tokSource);
    }
  } else if (d.kind === "llama2c-model") {
    model = await loadLlama2c(path);
    const beside = join(dirname(path), "tok512.bin");
    if (!tokenizerPath && existsSync(beside)) tokSource = beside;
  } else {
    throw new Error(`model ${path} is ${d.description}; ${LOADABLE}`);
  }
  if (!tokenizer && tokSource) tokenizer = await loadTokenizer(tokSource, model.config.vocabSize);
  if (tokenizer && tokenizer.vocabSize !== model.config.vocabSize) {
    throw new Error(`tokenizer ${tokSource} has ${tokenizer.vocabSize} tokens but model ${path} has ${model.config.vocabSize} (vocabSize, the number of logits); expected the tokenizer the model was trained with`);
  }
  return { model: model.eval(), tokenizer };
}
