// A model ready for inference as the CLI and the server load it: the model file under optional
// position overrides, with an adapter on top (LoRA merged into the weights for speed; prefix and
// prompt tuning wrap the model), its Linear weights optionally stored as bf16 / int8 for inference
// (models/quantize.ts; after a LoRA merge, so the merged weights are what is stored), and the ids that
// end its replies.

import type { Module } from "../nn/module.js";
import type { CausalLM } from "../models/causal-lm.js";
import { loadModel, type LoadedModel } from "../models/load.js";
import type { GenerationDefaults } from "../models/hf/index.js";
import { withPositions, type PositionOptions } from "../models/positions.js";
import { quantizeForInference } from "../models/quantize.js";
import { parseWeightFormat } from "../ops/quantize.js";
import type { Tokenizer } from "../tokenizers/tokenizer.js";
import { mergeLora } from "./index.js";
import { loadPeft } from "./methods.js";

/**
 * model (+ tokenizer file), position overrides, then the adapter directory on top; weights: "fp32"
 * (default), "bf16" or "int8" Linear weights (--weights; checked before anything is loaded).
 */
export async function loadForInference(model: string, tokenizer?: string, adapter?: string, positions: PositionOptions = {}, weights?: string): Promise<Omit<LoadedModel, "model"> & { model: CausalLM & Module }> {
  const format = weights === undefined ? "fp32" : parseWeightFormat(weights, "--weights");
  const l = await loadModel(model, tokenizer);
  if (Object.keys(positions).length) l.model = withPositions(l.model, positions);
  const p = adapter ? await loadPeft(l.model, adapter) : null;
  if (p?.lora) mergeLora(l.model);
  if (format !== "fp32") quantizeForInference(l.model, format);
  if (!p) return l;
  p.model.eval();
  return { ...l, model: p.model };
}

/** The ids that end generation: generation_config.json's eos_token_id list and the tokenizer's EOS. */
export function eosIdsOf(generation: GenerationDefaults | null | undefined, tokenizer: Tokenizer): number[] {
  return [...new Set([...(generation?.eosIds ?? []), ...(tokenizer.eosId !== undefined ? [tokenizer.eosId] : [])])];
}
