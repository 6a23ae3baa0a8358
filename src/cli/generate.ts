// `tsformer generate` and `tsformer eval`: inference on a tsformer checkpoint, an HF directory or a
// llama2.c .bin. Sampling flags not given come from the model's generation_config.json, else the
// defaults below.

import { generate, loadModel, loadPeft, mergeLora, scoreTokens, writeFileAtomic, type CausalLM, type GenerateResult, type LoadedModel, type Module } from "../index.js";
import { readTextInput } from "./text-input.js";

export interface GenerateCliOptions {
  model: string; tokenizer?: string; adapter?: string; prompt: string; maxNewTokens?: number; temperature?: number;
  topK?: number; topP?: number; repetitionPenalty?: number; seed: number; stop: string[];
}

/** The model of --model with the adapter of --adapter on it (LoRA merged into the weights for speed; prefix / prompt tuning wrap it). */
export async function loadForInference(model: string, tokenizer?: string, adapter?: string): Promise<Omit<LoadedModel, "model"> & { model: CausalLM & Module }> {
  const l = await loadModel(model, tokenizer);
  if (!adapter) return l;
  const p = await loadPeft(l.model, adapter);
  if (p.lora) mergeLora(l.model);
  p.model.eval();
  return { ...l, model: p.model };
}

export const SAMPLING_DEFAULTS = { maxNewTokens: 200, temperature: 0.8, topK: 0, topP: 1, repetitionPenalty: 1 };

export async function runGenerate(o: GenerateCliOptions, write = (s: string) => process.stdout.write(s)): Promise<GenerateResult> {
  const { model, tokenizer, generation } = await loadForInference(o.model, o.tokenizer, o.adapter);
  if (!tokenizer) throw new Error(`no tokenizer for ${o.model}: pass --tokenizer (a llama2.c tokenizer .bin or a tokenizer.json)`);
  const g = { ...SAMPLING_DEFAULTS, ...Object.fromEntries(Object.entries(generation ?? {}).filter(([, v]) => v !== undefined)) };
  const eos = [...new Set([...(generation?.eosIds ?? []), ...(tokenizer.eosId !== undefined ? [tokenizer.eosId] : [])])];
  const prompt = tokenizer.encode(o.prompt, tokenizer.bosId !== undefined ? { bos: true } : {});
  if (prompt.length === 0) throw new Error("--prompt is empty and the tokenizer has no BOS token to start from");
  // Checked before the prompt is echoed: a refused prompt prints nothing on stdout.
  const ctx = model.config.maxSeqLen;
  if (prompt.length > ctx) throw new Error(`--prompt has ${prompt.length} tokens, longer than the context of ${ctx}`);
  write(o.prompt);
  const r = generate(model, prompt, {
    maxNewTokens: o.maxNewTokens ?? g.maxNewTokens, temperature: o.temperature ?? g.temperature, topK: o.topK ?? g.topK,
    topP: o.topP ?? g.topP, repetitionPenalty: o.repetitionPenalty ?? g.repetitionPenalty, seed: o.seed, stop: o.stop,
    tokenizer, eosId: eos, onText: write,
  });
  write("\n");
  return r;
}

export interface EvalCliOptions { model: string; tokenizer?: string; adapter?: string; text: string; logprobs?: string }

export async function runEval(o: EvalCliOptions): Promise<{ tokens: number; loss: number; perplexity: number }> {
  const { text } = readTextInput(o.text, "--text");
  const { model, tokenizer } = await loadForInference(o.model, o.tokenizer, o.adapter);
  if (!tokenizer) throw new Error(`no tokenizer for ${o.model}: pass --tokenizer`);
  const ids = tokenizer.encode(text, tokenizer.bosId !== undefined ? { bos: true } : {});
  const r = scoreTokens(model, ids, { logprobs: Boolean(o.logprobs) });
  if (o.logprobs) writeFileAtomic(o.logprobs, JSON.stringify(r.logprobs));
  return { tokens: r.tokens, loss: r.loss, perplexity: r.perplexity };
}
