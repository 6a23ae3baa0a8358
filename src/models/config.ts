// TransformerLM configuration: a plain JSON object validated at the boundary (zod), with presets for
// the GPT-2 layout (learned positions, LayerNorm, GELU, biases) and the Llama layout (RoPE, RMSNorm,
// SwiGLU, GQA, no biases).

import { z } from "zod";
import { formatBytes, maxModelBytes } from "../io/read.js";
import { ATTENTION_VARIANTS, type AttentionName } from "../nn/attention/registry.js";
import { ropeScalingSchema } from "../nn/position/registry.js";

export const INIT_SCHEMES = ["nanogpt", "xavier", "kaiming", "deepnorm", "t5"] as const;

/** Sequence mixers by layer: "attention" (the `attention` variant), "mamba" (nn/ssm/mamba.ts), "s4d" (nn/ssm/s4d-layer.ts). */
export const MIXERS = ["attention", "mamba", "s4d"] as const;
export type MixerKind = (typeof MIXERS)[number];

/**
 * Upper bounds of the sizes, far above any real model (Llama 3 405B: dModel 16384, 126 layers, dFF
 * 53248, vocab 128256), so that a garbled config fails here; what the model's bytes may be is checked
 * against the user's limit (checkModelBytes).
 */
export const MAX = { vocabSize: 2 ** 24, dModel: 2 ** 16, nLayers: 2 ** 12, nHeads: 2 ** 12, dFF: 2 ** 20, maxSeqLen: 2 ** 20 } as const;

export const modelConfigSchema = z.object({
  vocabSize: z.number().int().positive().max(MAX.vocabSize),
  dModel: z.number().int().positive().max(MAX.dModel),
  nLayers: z.number().int().positive().max(MAX.nLayers),
  nHeads: z.number().int().positive().max(MAX.nHeads),
  /** Key/value heads: nHeads = MHA, 1 = MQA, in between = GQA (must divide nHeads). */
  nKvHeads: z.number().int().positive().max(MAX.nHeads).optional(),
  /** FFN hidden width. */
  dFF: z.number().int().positive().max(MAX.dFF),
  maxSeqLen: z.number().int().positive().max(MAX.maxSeqLen),
  /** learned (GPT-2), rope (Llama), sinusoidal (Vaswani et al.), alibi (Press et al.: per-head linear score biases), none. */
  position: z.enum(["learned", "rope", "sinusoidal", "alibi", "none"]),
  ropeTheta: z.number().positive().default(10000),
  /** RoPE's pairing of dimensions: "interleaved" (2t, 2t+1) as Meta / llama2.c (default), "half" (t, t + d/2) as HF. */
  ropeLayout: z.enum(["interleaved", "half"]).optional(),
  /** A RoPE frequency scheme for context extension (nn/position/registry.ts), as HF's rope_scaling. */
  ropeScaling: ropeScalingSchema.optional(),
  /** ReRoPE / Leaky ReRoPE (Su): relative positions past `window` advance by `leak` per token (0 = ReRoPE). */
  rerope: z.object({ window: z.number().int().positive(), leak: z.number().min(0) }).strict().optional(),
  /** Scale query i by max(1, log_maxSeqLen(i + 1)) (log-n attention scaling). */
  logn: z.boolean().optional(),
  norm: z.enum(["layernorm", "rmsnorm"]),
  normEps: z.number().positive().default(1e-5),
  ffn: z.enum(["gelu", "gelu_tanh", "swiglu"]),
  bias: z.boolean(),
  /** Biases on the q/k/v projections only (Qwen2); default: \`bias\`. */
  qkvBias: z.boolean().optional(),
  normPlacement: z.enum(["pre", "post", "sandwich", "deepnorm"]).default("pre"),
  tieEmbeddings: z.boolean().default(true),
  dropout: z.number().min(0).max(0.99).default(0),
  init: z.enum(INIT_SCHEMES).default("nanogpt"),
  attention: z.string().default("flash").refine((a): a is AttentionName => a in ATTENTION_VARIANTS, {
    message: `unknown attention variant; expected one of ${Object.keys(ATTENTION_VARIANTS).join(", ")}`,
  }),
  /** Gradient checkpointing in training (nn/checkpoint.ts): recompute each block ("block") or each run of k blocks in backward. */
  checkpointing: z.union([z.enum(["none", "block"]), z.object({ every: z.number().int().min(1) }).strict()], {
    error: 'expected "none", "block" or { "every": k } with k an integer >= 1',
  }).optional(),
  /** Mixture-of-experts FFN (nn/moe/moe.ts) in every `every`-th layer (0-based layers every - 1, 2 every - 1, ...); each expert is an FFN of width dFF. */
  moe: z.object({
    experts: z.number().int().min(1),
    topK: z.number().int().min(1),
    capacityFactor: z.number().positive().optional(),
    sharedExperts: z.number().int().min(0).optional(),
    /** "topk_softmax" (Mixtral, default), "softmax" (Switch: the chosen probabilities; for topK 1) or "sigmoid" (DeepSeek-V3, with a selection bias updated at biasUpdateRate). */
    gate: z.enum(["topk_softmax", "softmax", "sigmoid"]).optional(),
    biasUpdateRate: z.number().min(0).optional(),
    balanceWeight: z.number().min(0).optional(),
    zWeight: z.number().min(0).optional(),
    every: z.number().int().min(1).default(1),
  }).strict().refine((m) => m.topK <= m.experts, { message: "topK must be at most the number of experts" }).optional(),
  /** Mixer of every layer, or one per layer (a hybrid, e.g. Jamba's one attention layer in eight); default "attention". */
  mixer: z.union([z.enum(MIXERS), z.array(z.enum(MIXERS)).min(1)], {
    error: `expected one of ${MIXERS.map((m) => `"${m}"`).join(", ")} or a list of them, one per layer`,
  }).optional(),
  /** Options of the SSM mixers (defaults as mamba_ssm's Mamba); ffn false: SSM layers have no FFN part (the Mamba paper's LM). */
  ssm: z.object({
    dState: z.number().int().min(1).optional(),
    dConv: z.number().int().min(1).optional(),
    expand: z.number().int().min(1).optional(),
    dtRank: z.number().int().min(1).optional(),
    s4dInit: z.enum(["lin", "inv"]).optional(),
    ffn: z.boolean().optional(),
  }).strict().optional(),
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
  checkPositions(c, source);
  checkMixers(c, source);
  // checkpointing replays blocks in backward; the MoE auxiliary losses read after forward would miss their gradient
  if (c.moe && (c.checkpointing ?? "none") !== "none") throw new Error(`${source}: moe is not supported with checkpointing yet; set checkpointing "none"`);
  checkModelBytes(c, source);
  return c;
}

/** The RoPE options need RoPE; ReRoPE needs exact attention and a window inside the training length. */
function checkPositions(c: ModelConfig, source: string): void {
  const ropeOnly = (["ropeLayout", "ropeScaling", "rerope", "logn"] as const).filter((k) => c[k] !== undefined && c[k] !== false);
  if (c.position !== "rope" && ropeOnly.length) throw new Error(`${source}: ${ropeOnly.join(", ")} need position "rope", got "${c.position}"`);
  if (c.rerope) {
    if (c.attention !== "softmax" && c.attention !== "flash") throw new Error(`${source}: rerope needs attention "softmax" or "flash", got "${c.attention}"`);
    const L = c.ropeScaling?.originalMaxSeqLen ?? c.maxSeqLen;
    if (c.rerope.window >= L) throw new Error(`${source}: rerope.window ${c.rerope.window} must be below the training length ${L} (a window that long is plain RoPE)`);
  }
  if (c.position === "alibi" && c.attention !== "softmax" && c.attention !== "flash") throw new Error(`${source}: position "alibi" needs attention "softmax" or "flash", got "${c.attention}"`);
  if (c.logn && c.attention.startsWith("gau")) throw new Error(`${source}: logn is not supported with attention "${c.attention}"`);
}

/** The mixer of layer `layer` (0-based). */
export function mixerOf(c: ModelConfig, layer: number): MixerKind {
  const m = c.mixer ?? "attention";
  return typeof m === "string" ? m : m[layer];
}

/** Whether layer `layer` has an FFN part (an SSM layer has none with ssm.ffn false; a GAU includes its own). */
export function hasFFN(c: ModelConfig, layer: number): boolean {
  return mixerOf(c, layer) === "attention" ? !c.attention.startsWith("gau") : c.ssm?.ffn !== false;
}

function checkMixers(c: ModelConfig, source: string): void {
  if (Array.isArray(c.mixer) && c.mixer.length !== c.nLayers) throw new Error(`${source}: mixer lists ${c.mixer.length} layers, but nLayers is ${c.nLayers}; give one name per layer or one name for all`);
  const kinds = new Set(Array.from({ length: c.nLayers }, (_, i) => mixerOf(c, i)));
  if (kinds.has("s4d") && (c.ssm?.dState ?? 16) % 2) throw new Error(`${source}: ssm.dState must be even for mixer "s4d" (N/2 complex modes), got ${c.ssm?.dState}`);
  if (c.ssm && !kinds.has("mamba") && !kinds.has("s4d")) throw new Error(`${source}: ssm options are given but no layer has mixer "mamba" or "s4d"`);
}

/**
 * A lower bound on the parameter count, computed from the config alone: the embeddings (and the
 * learned positions, the untied head) plus per layer an output projection of D x D (every mixer has
 * at least that) and, in the layers with an FFN part (hasFFN), the FFN's weight matrices.
 */
export function minParamCount(c: ModelConfig): number {
  const D = c.dModel, L = c.nLayers;
  const ffn = (c.ffn === "swiglu" ? 3 : 2) * D * c.dFF;
  const emb = c.vocabSize * D * (c.tieEmbeddings ? 1 : 2) + (c.position === "learned" ? c.maxSeqLen * D : 0);
  let layers = 0;
  for (let i = 0; i < L; i++) layers += D * D + (hasFFN(c, i) ? ffn : 0);
  return emb + layers;
}

/** Bytes of a float32 KV cache for one sequence of maxSeqLen tokens (generate allocates it). */
export function kvCacheBytes(c: ModelConfig): number {
  let attention = 0;
  for (let i = 0; i < c.nLayers; i++) if (mixerOf(c, i) === "attention") attention++;
  return 4 * 2 * attention * c.maxSeqLen * (c.nKvHeads ?? c.nHeads) * (c.dModel / c.nHeads);
}

/** Refuses, before anything is allocated, a model whose float32 parameters or KV cache exceed TSFORMER_MAX_MODEL_BYTES. */
export function checkModelBytes(c: ModelConfig, source = "model config"): void {
  const limit = maxModelBytes(), params = minParamCount(c), weights = 4 * params, cache = kvCacheBytes(c);
  const raise = `the limit is TSFORMER_MAX_MODEL_BYTES = ${formatBytes(limit)} (set it higher to allow a larger model)`;
  if (weights > limit) {
    throw new RangeError(`${source}: the model has at least ${params.toExponential(3)} parameters, ${formatBytes(weights)} as float32 (vocabSize ${c.vocabSize}, dModel ${c.dModel}, nLayers ${c.nLayers}, dFF ${c.dFF}); ${raise}`);
  }
  if (cache > limit) {
    throw new RangeError(`${source}: a KV cache for one sequence of maxSeqLen ${c.maxSeqLen} tokens takes ${formatBytes(cache)} (nLayers ${c.nLayers}, dModel ${c.dModel}); ${raise}`);
  }
}

export function gpt2Config(o: Pick<ModelConfigInput, "vocabSize" | "dModel" | "nLayers" | "nHeads" | "maxSeqLen"> & Partial<ModelConfigInput>): ModelConfig {
  return parseModelConfig({ dFF: 4 * o.dModel, position: "learned", norm: "layernorm", ffn: "gelu_tanh", bias: true, ...o });
}

export function llamaConfig(o: Pick<ModelConfigInput, "vocabSize" | "dModel" | "nLayers" | "nHeads" | "maxSeqLen" | "dFF"> & Partial<ModelConfigInput>): ModelConfig {
  return parseModelConfig({ position: "rope", norm: "rmsnorm", ffn: "swiglu", bias: false, tieEmbeddings: false, ...o });
}
