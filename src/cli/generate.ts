// `tsformer generate` and `tsformer eval`: inference on a checkpoint directory or a llama2.c .bin.

import { generate, loadModel, scoreTokens, writeFileAtomic, type GenerateResult } from "../index.js";
import { readTextInput } from "./text-input.js";

export interface GenerateCliOptions {
  model: string; tokenizer?: string; prompt: string; maxNewTokens: number; temperature: number;
  topK: number; topP: number; repetitionPenalty: number; seed: number; stop: string[];
}

export async function runGenerate(o: GenerateCliOptions, write = (s: string) => process.stdout.write(s)): Promise<GenerateResult> {
  const { model, tokenizer } = await loadModel(o.model, o.tokenizer);
  if (!tokenizer) throw new Error(`no tokenizer for ${o.model}: pass --tokenizer (a llama2.c tokenizer .bin)`);
  const prompt = tokenizer.encode(o.prompt, tokenizer.bosId !== undefined ? { bos: true } : {});
  if (prompt.length === 0) throw new Error("--prompt is empty and the tokenizer has no BOS token to start from");
  // Checked before the prompt is echoed: a refused prompt prints nothing on stdout.
  const ctx = model.config.maxSeqLen;
  if (prompt.length > ctx) throw new Error(`--prompt has ${prompt.length} tokens, longer than the context of ${ctx}`);
  write(o.prompt);
  const r = generate(model, prompt, {
    maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP,
    repetitionPenalty: o.repetitionPenalty, seed: o.seed, stop: o.stop, tokenizer, eosId: tokenizer.eosId, onText: write,
  });
  write("\n");
  return r;
}

export interface EvalCliOptions { model: string; tokenizer?: string; text: string; logprobs?: string }

export async function runEval(o: EvalCliOptions): Promise<{ tokens: number; loss: number; perplexity: number }> {
  const { text } = readTextInput(o.text, "--text");
  const { model, tokenizer } = await loadModel(o.model, o.tokenizer);
  if (!tokenizer) throw new Error(`no tokenizer for ${o.model}: pass --tokenizer`);
  const ids = tokenizer.encode(text, tokenizer.bosId !== undefined ? { bos: true } : {});
  const r = scoreTokens(model, ids, { logprobs: Boolean(o.logprobs) });
  if (o.logprobs) writeFileAtomic(o.logprobs, JSON.stringify(r.logprobs));
  return { tokens: r.tokens, loss: r.loss, perplexity: r.perplexity };
}
