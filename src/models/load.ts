// Load a model for inference from a path: a llama2.c .bin (+ its tokenizer .bin) or a tsformer
// checkpoint directory (config.json + model.safetensors [+ tokenizer.json]).

import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { loadCheckpoint } from "../io/checkpoint.js";
import { CharTokenizer } from "../tokenizers/char.js";
import { Llama2cTokenizer } from "../tokenizers/llama2c.js";
import type { Tokenizer } from "../tokenizers/tokenizer.js";
import { parseModelConfig } from "./config.js";
import { loadLlama2c } from "./llama2c.js";
import { TransformerLM } from "./transformer.js";

export interface LoadedModel { model: TransformerLM; tokenizer: Tokenizer | null }

/** tokenizerPath: a llama2.c tokenizer .bin; for a .bin model it defaults to tok512.bin beside it. */
export async function loadModel(path: string, tokenizerPath?: string): Promise<LoadedModel> {
  if (!existsSync(path)) throw new Error(`model ${path} does not exist: expected a llama2.c .bin file or a checkpoint directory`);
  if (statSync(path).isDirectory()) {
    const ck = await loadCheckpoint(path);
    const model = new TransformerLM(parseModelConfig(ck.config, join(path, "config.json")));
    model.loadStateDict(ck.model);
    const tj = ck.extraFiles?.["tokenizer.json"];
    const tokenizer = tokenizerPath ? await Llama2cTokenizer.load(tokenizerPath, model.config.vocabSize)
      : tj ? CharTokenizer.fromJSON(tj, join(path, "tokenizer.json")) : null;
    return { model: model.eval(), tokenizer };
  }
  const model = await loadLlama2c(path);
  const tp = tokenizerPath ?? join(dirname(path), "tok512.bin");
  const tokenizer = existsSync(tp) ? await Llama2cTokenizer.load(tp, model.config.vocabSize) : null;
  return { model, tokenizer };
}
