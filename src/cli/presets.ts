// Model config presets by name (`train --preset NAME`, or `"preset": NAME` in a --config file): a
// partial config takes its missing fields from a preset, and vocabSize from the tokenizer.

import { gpt2Config, llamaConfig, parseModelConfig, type ModelConfig, type ModelConfigInput } from "../index.js";

interface Preset { layout: "gpt2" | "llama"; about: string; base: Partial<ModelConfigInput> }

export const PRESETS: Record<string, Preset> = {
  "gpt2-tiny-char": { layout: "gpt2", about: "npm start's model: GPT-2 layout, d 96, 3 layers, 4 heads, context 64", base: { dModel: 96, nLayers: 3, nHeads: 4, maxSeqLen: 64 } },
  "gpt2-small-char": { layout: "gpt2", about: "nanoGPT's shakespeare-char: d 384, 6 layers, 6 heads, context 256, dropout 0.2", base: { dModel: 384, nLayers: 6, nHeads: 6, maxSeqLen: 256, dropout: 0.2 } },
  "llama-small-char": { layout: "llama", about: "Llama layout (RoPE, RMSNorm, SwiGLU, GQA): d 128, 4 layers, 8 heads / 4 kv, context 128", base: { dModel: 128, nLayers: 4, nHeads: 8, nKvHeads: 4, maxSeqLen: 128 } },
};
export const DEFAULT_PRESET = "gpt2-tiny-char";

export function presetHelp(): string {
  return Object.entries(PRESETS).map(([n, p]) => `  ${n.padEnd(18)} ${p.about}`).join("\n");
}

function preset(name: string, source: string): Preset {
  const p = PRESETS[name];
  if (!p) throw new Error(`${source}: unknown preset ${JSON.stringify(name)}; expected one of ${Object.keys(PRESETS).join(", ")}`);
  return p;
}

/** The preset's config with `over` on top; vocabSize defaults to the tokenizer's. */
export function presetConfig(name: string, over: Partial<ModelConfigInput>, vocabSize: number, source = "--preset"): ModelConfig {
  const p = preset(name, source);
  const given = Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined));
  const o = { ...p.base, vocabSize, ...given } as ModelConfigInput;
  try {
    // Llama's FFN width: 8/3 of dModel rounded up to a multiple of 32 (its SwiGLU keeps the 4x FFN's parameters).
    return p.layout === "gpt2" ? gpt2Config(o) : llamaConfig({ ...o, dFF: o.dFF ?? Math.ceil((8 * o.dModel) / 3 / 32) * 32 });
  } catch (e) {
    throw new Error(`${source}: ${(e as Error).message.replace(/^model config: /, "")}`, { cause: e });
  }
}

/** A --config file's object: complete, or partial with the rest from its "preset" (default DEFAULT_PRESET). */
export function configFromObject(raw: unknown, vocabSize: number, source: string, log: (s: string) => void): ModelConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new Error(`${source}: expected a JSON object of model config fields`);
  const { preset: name, ...fields } = raw as Record<string, unknown>;
  if (name !== undefined && typeof name !== "string") throw new Error(`${source}: "preset" must be a preset name; expected one of ${Object.keys(PRESETS).join(", ")}`);
  if (fields.vocabSize !== undefined && fields.vocabSize !== vocabSize) throw new Error(`${source}: vocabSize ${JSON.stringify(fields.vocabSize)} does not match the tokenizer's ${vocabSize} (omit it to take the tokenizer's)`);
  const required = ["dModel", "nLayers", "nHeads", "dFF", "maxSeqLen", "position", "norm", "ffn", "bias"];
  const missing = required.filter((k) => !(k in fields));
  if (name === undefined && missing.length === 0) return parseModelConfig({ vocabSize, ...fields }, source);
  const from = name ?? DEFAULT_PRESET;
  if (missing.length) log(`config: ${missing.join(", ")} from preset ${from}${fields.vocabSize === undefined ? `; vocabSize ${vocabSize} from the tokenizer` : ""}`);
  return presetConfig(from, fields as Partial<ModelConfigInput>, vocabSize, source);
}
