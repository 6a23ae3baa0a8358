// TransformerLM configuration: a plain JSON object validated at the boundary (zod), with presets for
// the GPT-2 layout (learned positions, LayerNorm, GELU, biases) and the Llama layout (RoPE, RMSNorm,
// SwiGLU, GQA, no biases).

import { z } from "zod";
import { ATTENTION_VARIANTS, type AttentionName } from "../nn/attention/registry.js";

export const INIT_SCHEMES = ["nanogpt", "xavier", "kaiming", "deepnorm", "t5"] as const;

export const modelConfigSchema = z.object({
  vocabSize: z.number().int().positive(),
  dModel: z.number().int().positive(),
  nLayers: z.number().int().positive(),
  nHeads: z.number().int().positive(),
  /** Key/value heads: nHeads = MHA, 1 = MQA, in between = GQA (must divide nHeads). */
  nKvHeads: z.number().int().positive().optional(),
  /** FFN hidden width. */
  dFF: z.number().int().positive(),
  maxSeqLen: z.number().int().positive(),
  position: z.enum(["learned", "rope", "none"]),
  ropeTheta: z.number().positive().default(10000),
  norm: z.enum(["layernorm", "rmsnorm"]),
  normEps: z.number().positive().default(1e-5),
  ffn: z.enum(["gelu", "gelu_tanh", "swiglu"]),
  bias: z.boolean(),
  normPlacement: z.enum(["pre", "post", "sandwich", "deepnorm"]).default("pre"),
  tieEmbeddings: z.boolean().default(true),
  dropout: z.number().min(0).max(0.99).default(0),
  init: z.enum(INIT_SCHEMES).default("nanogpt"),
  attention: z.string().default("flash").refine((a): a is AttentionName => a in ATTENTION_VARIANTS, {
    message: `unknown attention variant; expected one of ${Object.keys(ATTENTION_VARIANTS).join(", ")}`,
  }),
}).strict();

export type ModelConfigInput = z.input<typeof modelConfigSchema>;
export type ModelConfig = z.output<typeof modelConfigSchema>;

/** Validate a config object; the error lists every bad field with what was expected. */
export function parseModelConfig(raw: unknown, source = "model config"): ModelConfig {
  const r = modelConfigSchema.safeParse(raw);
  if (!r.success) {
    const msgs = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new Error(`${source}: ${msgs.join("; ")}`);
  }
  const c = r.data;
  const kv = c.nKvHeads ?? c.nHeads;
  if (c.dModel % c.nHeads !== 0) throw new Error(`${source}: dModel ${c.dModel} must be divisible by nHeads ${c.nHeads}`);
  if (c.nHeads % kv !== 0) throw new Error(`${source}: nKvHeads ${kv} must divide nHeads ${c.nHeads}`);
  if (c.position === "rope" && (c.dModel / c.nHeads) % 2 !== 0) throw new Error(`${source}: RoPE needs an even head size, got ${c.dModel / c.nHeads}`);
  return c;
}

export function gpt2Config(o: Pick<ModelConfigInput, "vocabSize" | "dModel" | "nLayers" | "nHeads" | "maxSeqLen"> & Partial<ModelConfigInput>): ModelConfig {
  return parseModelConfig({ dFF: 4 * o.dModel, position: "learned", norm: "layernorm", ffn: "gelu_tanh", bias: true, ...o });
}

export function llamaConfig(o: Pick<ModelConfigInput, "vocabSize" | "dModel" | "nLayers" | "nHeads" | "maxSeqLen" | "dFF"> & Partial<ModelConfigInput>): ModelConfig {
  return parseModelConfig({ position: "rope", norm: "rmsnorm", ffn: "swiglu", bias: false, tieEmbeddings: false, ...o });
}
