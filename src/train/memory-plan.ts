// The training-memory planner (`tsformer memory`): bytes per device of the parameters, gradients,
// optimizer state and activations of training a model, each row with the formula it uses.
// - Model states: Rajbhandari et al. 2020, "ZeRO: Memory Optimizations Toward Training Trillion
//   Parameter Models", §3.1 and Fig. 1. Mixed-precision Adam keeps 2 Psi (16-bit weights) + 2 Psi
//   (16-bit gradients) + K Psi with K = 12 (fp32 master weights, momentum, variance); stage 1 (P_os)
//   splits the optimizer state over the Nd data-parallel devices, stage 2 (P_os+g) also the gradients,
//   stage 3 (P_os+g+p) also the weights. In fp32 nothing is kept twice: 4 + 4 + 8 (m, v) bytes per
//   parameter, as tsformer's AdamW (train/optim.ts) keeps m and v in fp32.
// - Activations: Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
//   Models", §4.1 eq. 1: per layer s b h (34 + 5 a s / h) bytes in 16-bit: attention 11 s b h + 5 a s^2 b
//   (its input 2, Q and K 4, V 2, the output projection's input 2, a 1-byte dropout mask 1; softmax
//   output 2 a s^2 b, its dropout mask a s^2 b and output 2 a s^2 b), MLP 19 s b h (input 2, GELU input 8,
//   GELU output 8, mask 1), two norms' inputs 4 s b h. Full recomputation keeps 2 s b h per layer (§4.2).
//   activationTerms lists instead what tsformer's ops save for backward (ops/*.ts `record(..., saved)`):
//   without dropout and with "softmax" attention that is the paper's list term by term, s b h (32 + 2 a s / h)
//   at 2 bytes (tsformer has no dropout on the attention probabilities, and keeps dropout masks at the
//   activations' element size); "flash" keeps the output O and the row logsumexp instead of the s x s
//   probabilities (the paper's selective recomputation drops the same 5 a s^2 b); tsformer also keeps
//   the norms' fp32 statistics, which the paper leaves out as small.

import { rotaryOf } from "../models/block.js";
import { parseModelConfig, type ModelConfig } from "../models/config.js";
import { fromHFConfig, type HFDType } from "../models/hf/config.js";
import { PRECISIONS, type Precision } from "../ops/autocast.js";

export const OPTIMIZERS = ["adamw", "sgd"] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];
export const CHECKPOINTINGS = ["none", "block"] as const;
export type Checkpointing = (typeof CHECKPOINTINGS)[number];
export const ZERO_STAGES = [0, 1, 2, 3] as const;
export type ZeroStage = (typeof ZERO_STAGES)[number];

export interface PlanOptions {
  precision: Precision;
  optimizer: OptimizerName;
  /** ZeRO stage over `devices` data-parallel devices. */
  zero: ZeroStage;
  devices: number;
  /** Sequences per device (micro-batch) and their length: the activations' b and s. */
  batch: number;
  seq: number;
  checkpointing: Checkpointing;
  /** LoRA of rank r on q, k, v, o with the base frozen (PEFT's lora_A [r, in], lora_B [out, r]). */
  loraR?: number;
}

/** What is planned: a model config, or a bare parameter count (model states only). */
export type PlanModel = { config: ModelConfig } | { parameters: number };

export type RowName = "parameters" | "gradients" | "optimizer state" | "activations" | "total";
export interface MemoryRow { row: RowName; /** per device; null when not derived */ bytes: number | null; formula: string }

/** One tensor (or a group of same-sized ones) kept for backward: coef bytes x the size named by sym, per token. */
export interface ActivationTerm { what: string; coef: number; sym: Sym }
const SYMS = ["h", "kv", "f", "a s", "a", "r", "V", "1"] as const;
type Sym = (typeof SYMS)[number];

export interface MemoryPlan {
  options: PlanOptions;
  /** Psi: every parameter (with LoRA: the base's and the adapters'); trainable: Psi_t. */
  parameters: number;
  trainable: number;
  rows: MemoryRow[];
  /** The symbols of the formulas and their values. */
  where: Record<string, number>;
  /** Per layer / head / position, as activationTerms (null when not derived). */
  activationTerms: { layer: ActivationTerm[]; firstLayerSkips: ActivationTerm[]; head: ActivationTerm[]; perPosition: ActivationTerm[] } | null;
  notes: string[];
}

// ---- model states (ZeRO §3.1, Fig. 1) ----

/** Bytes of one weight and of one gradient: fp32 4; 16-bit mixed precision 2 (fp16 and bf16 alike). */
export function weightBytes(p: Precision): number {
  return p === "fp32" ? 4 : 2;
}

/**
 * K, the optimizer-state bytes per trainable parameter. AdamW: m and v in fp32 (8; tsformer's AdamW),
 * plus the fp32 master weights in mixed precision (ZeRO §3.1: K = 12). SGD with momentum (tsformer's
 * SGD with momentum > 0): the fp32 momentum buffer (4), plus the master weights in mixed precision.
 */
export function optimizerK(o: OptimizerName, p: Precision): number {
  return (o === "adamw" ? 8 : 4) + (p === "fp32" ? 0 : 4);
}

/** ZeRO stage `stage` and above divide a state by Nd. */
const shard = (zero: ZeroStage, stage: number, devices: number) => (zero >= stage ? devices : 1);

/** Parameters row: w Psi, split over the devices from ZeRO stage 3 (P_os+g+p). */
export function parameterBytes(psi: number, o: PlanOptions): number {
  return (weightBytes(o.precision) * psi) / shard(o.zero, 3, o.devices);
}

/** Gradients row: w Psi_t (trainable parameters only), split from ZeRO stage 2 (P_os+g). */
export function gradientBytes(psiTrainable: number, o: PlanOptions): number {
  return (weightBytes(o.precision) * psiTrainable) / shard(o.zero, 2, o.devices);
}

/** Optimizer-state row: K Psi_t, split from ZeRO stage 1 (P_os). */
export function optimizerBytes(psiTrainable: number, o: PlanOptions): number {
  return (optimizerK(o.optimizer, o.precision) * psiTrainable) / shard(o.zero, 1, o.devices);
}

// ---- parameter counts ----

const kvWidth = (c: ModelConfig) => (c.nKvHeads ?? c.nHeads) * (c.dModel / c.nHeads);

/**
 * The exact parameter count of a TransformerLM config, from its module tree (models/transformer.ts,
 * models/block.ts, nn/attention/projections.ts, nn/ffn/mlp.ts); a tied LM head counts once.
 */
export function parameterCount(c: ModelConfig): number {
  if (c.attention.startsWith("gau")) throw new Error(`memory: the parameter count of attention "${c.attention}" is not derived (the planner knows the mixers with q/k/v/o projections)`);
  const D = c.dModel, kv = kvWidth(c), F = c.dFF, L = c.nLayers;
  const qkvBias = (c.qkvBias ?? c.bias) ? 1 : 0, bias = c.bias ? 1 : 0;
  const norm = c.norm === "layernorm" ? 2 * D : D;  // makeNorm: a LayerNorm always has its bias
  const attn = 2 * D * D + 2 * D * kv + qkvBias * (D + 2 * kv) + bias * D;
  const ffn = c.ffn === "swiglu" ? 3 * D * F + bias * (2 * F + D) : 2 * D * F + bias * (F + D);
  const norms = c.normPlacement === "sandwich" ? 4 : 2;
  // TransNormer's NormAttention (the upper half of the layers) has an RMSNorm gain of its own
  const transNormer = c.attention === "transnormer" ? (L - Math.ceil(L / 2)) * D : 0;
  const emb = c.vocabSize * D * (c.tieEmbeddings ? 1 : 2) + (c.position === "learned" ? c.maxSeqLen * D : 0);
  const finalNorm = c.normPlacement === "pre" || c.normPlacement === "sandwich" ? norm : 0;
  return emb + L * (attn + ffn + norms * norm) + transNormer + finalNorm;
}

/** LoRA on q, k, v, o: r (in + out) per projection (lora_A [r, in] + lora_B [out, r]), per layer. */
export function loraParameterCount(c: ModelConfig, r: number): number {
  const D = c.dModel, kv = kvWidth(c);
  return c.nLayers * r * (2 * D + 2 * (D + kv) + 2 * D);
}

// ---- activations (Korthikanti et al. 2022 §4, itemized for tsformer's ops) ----

/** Why the activation terms below do not describe c, or null when they do. */
function activationsUnsupported(c: ModelConfig): string | null {
  if (c.attention !== "softmax" && c.attention !== "flash") return `attention "${c.attention}" (derived for "softmax" and "flash")`;
  if (c.normPlacement !== "pre") return `normPlacement "${c.normPlacement}" (derived for pre-norm blocks)`;
  if (!["learned", "rope", "none", "sinusoidal"].includes(c.position)) return `position "${c.position}"`;
  if (c.logn || rotaryOf(c)?.rawKeys) return "ReRoPE, dynamic RoPE scaling and log-n scaling (their extra tensors are not itemized)";
  return null;
}

/**
 * What tsformer's ops keep for backward in one pre-norm block and around the blocks, per token, at E
 * bytes per activation element. Row statistics (norm mean / rstd, flash's logsumexp) and the loss's
 * logits are fp32 (4 bytes) at any precision, as mixed-precision kernels keep them; ids are int32.
 * Parameters the ops keep (linear and norm weights) are references, counted in the parameters row.
 * With LoRA every base weight is frozen, and an op whose weight is frozen keeps no input for it
 * (ops/linear.ts): the FFN's input, the LM head's input and the embeddings' ids go.
 */
export function activationTerms(c: ModelConfig, E: number, loraR?: number): NonNullable<MemoryPlan["activationTerms"]> {
  const t = (what: string, coef: number, sym: Sym): ActivationTerm => ({ what, coef, sym });
  const frozen = loraR !== undefined, drop = c.dropout > 0;
  const stats = (n: string) => (c.norm === "layernorm" ? t(`${n} mean and rstd (fp32)`, 8, "1") : t(`${n} rstd (fp32)`, 4, "1"));
  const norm1 = [t("norm1 input", E, "h"), stats("norm1")];
  const core = c.attention === "flash"
    ? [t("attention output O (flash backward)", E, "h"), t("attention row logsumexp (fp32)", 4, "a")]
    : [t("attention probabilities P, s per head", E, "a s")];
  const ffn = c.ffn === "swiglu"
    ? [...(frozen ? [] : [t("w1/w3 input (norm2 output)", E, "h")]), t("SiLU input (w1 output)", E, "f"), t("SiLU output", E, "f"),
      t("w3 output", E, "f"), ...(frozen ? [] : [t("w2 input (SiLU(w1 x) w3 x)", E, "f")])]
    : [...(frozen ? [] : [t("fc1 input (norm2 output)", E, "h")]), t("GELU input (fc1 output)", E, "f"), t("GELU output (fc2 input)", E, "f")];
  const layer = [
    ...norm1,
    t("q/k/v input (norm1 output, one tensor for the three)", E, "h"),
    t("q as the attention kernel reads it ([B, H, T, d] copy)", E, "h"), t("k, v as the attention kernel reads them", 2 * E, "kv"),
    ...core,
    t("output projection input (the heads merged back: a copy)", E, "h"),
    ...(drop ? [t("dropout mask after attention", E, "h")] : []),
    t("norm2 input", E, "h"), stats("norm2"),
    ...ffn,
    ...(drop ? [t("dropout mask after the FFN", E, "h")] : []),
    ...(frozen ? [t("LoRA x A^T for q, k, v, o (the fused loraLinear keeps it: 4 tensors of r)", 4 * E, "r")] : []),
  ];
  const head = [
    ...(frozen ? [] : [t("token ids (int32)", 4, "1")]),
    ...(drop && !frozen ? [t("embedding dropout mask", E, "h")] : []),
    t("final norm input", E, "h"), stats("final norm"),
    ...(frozen ? [] : [t("LM head input (final norm output)", E, "h")]),
    t("logits for the loss (fp32)", 4, "V"), t("targets (int32) and the loss's logsumexp (fp32)", 8, "1"),
  ];
  return {
    layer, head,
    // layer 0's norm reads the frozen embeddings, which need no gradient: it records nothing
    firstLayerSkips: frozen ? norm1 : [],
    perPosition: c.position === "learned" && !frozen ? [t("position ids (int32, shared by the batch)", 4, "1")] : [],
  };
}

function symValues(c: ModelConfig, o: PlanOptions): Record<Sym, number> {
  return { h: c.dModel, kv: kvWidth(c), f: c.dFF, "a s": c.nHeads * o.seq, a: c.nHeads, V: c.vocabSize, r: o.loraR ?? 0, "1": 1 };
}

const sumTerms = (terms: ActivationTerm[], v: Record<Sym, number>) => terms.reduce((s, x) => s + x.coef * v[x.sym], 0);

/** "68 h + 4 a + 16": the terms' coefficients gathered by symbol. */
function symbolic(terms: ActivationTerm[]): string {
  const by = new Map<Sym, number>();
  for (const x of terms) by.set(x.sym, (by.get(x.sym) ?? 0) + x.coef);
  const parts = [...by].sort(([x], [y]) => SYMS.indexOf(x) - SYMS.indexOf(y)).filter(([, k]) => k !== 0).map(([sym, k]) => (sym === "1" ? `${k}` : `${k} ${sym}`));
  return parts.length ? parts.join(" + ") : "0";
}

/**
 * Activations row: the peak of the bytes kept for backward, with b sequences of s tokens per device
 * (ZeRO does not split activations). tsformer frees a graph's saved tensors when backward ends
 * (tensor/autograd.ts runBackward), not node by node as torch does, so nothing saved in forward is
 * gone before the last one is used. Checkpointing "block" (nn/checkpoint.ts; Chen et al. 2016;
 * Korthikanti's full recomputation, 2 s b h per layer): each block keeps only its input, and backward
 * replays one block at a time on top of everything the forward kept.
 */
export function activationBytes(c: ModelConfig, o: PlanOptions): { bytes: number; formula: string } {
  const E = weightBytes(o.precision), v = symValues(c, o), T = activationTerms(c, E, o.loraR);
  const L = c.nLayers, sb = o.seq * o.batch;
  const layer = sumTerms(T.layer, v), head = sumTerms(T.head, v), pos = o.seq * sumTerms(T.perPosition, v);
  const posF = T.perPosition.length ? ` + ${symbolic(T.perPosition)} s` : "";
  if (o.checkpointing === "block") {
    // the replayed block's norm1 input is the block input its checkpoint keeps: counted once
    return {
      bytes: sb * (L * E * v.h + head + layer - E * v.h) + pos,
      formula: `s b (L ${E} h + ${symbolic(T.head)} + (${symbolic(T.layer)}) - ${E} h)${posF}`,
    };
  }
  const skip = sumTerms(T.firstLayerSkips, v);
  return {
    bytes: sb * (L * layer - skip + head) + pos,
    formula: `s b (L (${symbolic(T.layer)})${skip ? ` - (${symbolic(T.firstLayerSkips)})` : ""} + ${symbolic(T.head)})${posF}`,
  };
}

// ---- the plan ----

function checkOptions(o: PlanOptions): void {
  const int = (name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (!Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`memory: ${name} must be an integer in [${min}, ${max}], got ${v}`);
  };
  const oneOf = (name: string, v: unknown, list: readonly unknown[]) => {
    if (!list.includes(v)) throw new RangeError(`memory: ${name} must be one of ${list.join(", ")}, got ${JSON.stringify(v)}`);
  };
  oneOf("precision", o.precision, PRECISIONS);
  oneOf("optimizer", o.optimizer, OPTIMIZERS);
  oneOf("checkpointing", o.checkpointing, CHECKPOINTINGS);
  oneOf("zero", o.zero, ZERO_STAGES);
  int("devices", o.devices, 1);
  int("batch", o.batch, 1);
  int("seq", o.seq, 1);
  if (o.loraR !== undefined) int("loraR", o.loraR, 1);
}

function kWords(o: PlanOptions): string {
  const master = o.precision === "fp32" ? "" : "fp32 master weights, ";
  return o.optimizer === "adamw" ? `${master}AdamW m and v in fp32` : `${master}SGD momentum in fp32`;
}

/** The plan: every row per device, with its formula; model states from ZeRO, activations itemized. */
export function planMemory(model: PlanModel, o: PlanOptions): MemoryPlan {
  checkOptions(o);
  const c = "config" in model ? model.config : null;
  if (o.loraR !== undefined && !c) throw new Error("memory: LoRA needs a model config (its projections' sizes), not a bare parameter count");
  const base = "config" in model ? parameterCount(model.config) : model.parameters;
  if (!c && (!Number.isSafeInteger(base) || base < 1)) throw new RangeError(`memory: the parameter count must be a positive integer, got ${base}`);
  if (c && o.seq > c.maxSeqLen && c.position === "learned") throw new RangeError(`memory: seq ${o.seq} exceeds the model's ${c.maxSeqLen} learned positions`);
  const lora = c && o.loraR !== undefined ? loraParameterCount(c, o.loraR) : 0;
  const psi = base + lora, trainable = lora || base;
  const w = weightBytes(o.precision), K = optimizerK(o.optimizer, o.precision);
  const nd = (stage: number) => (o.zero >= stage ? " / Nd" : "");
  const trained = lora ? "Psi_t" : "Psi";
  const notes: string[] = [];
  const rows: MemoryRow[] = [
    { row: "parameters", bytes: parameterBytes(psi, o), formula: `${w} Psi${nd(3)}  (${o.precision} weights${lora ? ", base and LoRA" : ""})` },
    { row: "gradients", bytes: gradientBytes(trainable, o), formula: `${w} ${trained}${nd(2)}  (${o.precision} gradients${lora ? " of the LoRA weights" : ""})` },
    { row: "optimizer state", bytes: optimizerBytes(trainable, o), formula: `${K} ${trained}${nd(1)}  (K = ${K}: ${kWords(o)})` },
  ];
  let terms: MemoryPlan["activationTerms"] = null;
  const why = c ? activationsUnsupported(c) : "a bare parameter count has no layer shapes";
  if (c && !why) {
    const a = activationBytes(c, o);
    terms = activationTerms(c, w, o.loraR);
    rows.push({ row: "activations", bytes: a.bytes, formula: `${a.formula}  (saved for backward, per device)` });
  } else {
    rows.push({ row: "activations", bytes: null, formula: `not derived: ${why}` });
    notes.push(`the total leaves out the activations (not derived: ${why})`);
  }
  const total = rows.reduce((s, r) => s + (r.bytes ?? 0), 0);
  rows.push({ row: "total", bytes: total, formula: "the rows above" });
  const where: Record<string, number> = { Psi: psi, ...(lora ? { Psi_t: trainable } : {}), ...(o.zero ? { Nd: o.devices } : {}) };
  if (terms && c) Object.assign(where, { L: c.nLayers, h: c.dModel, kv: kvWidth(c), f: c.dFF, a: c.nHeads, V: c.vocabSize, s: o.seq, b: o.batch, ...(lora ? { r: o.loraR } : {}) });
  if (o.zero && o.devices === 1) notes.push("ZeRO over 1 device partitions nothing");
  return { options: o, parameters: psi, trainable, rows, where, activationTerms: terms, notes };
}

// ---- model sources ----

/**
 * A config object to plan for: an HF config.json (it has model_type or architectures) or a tsformer
 * model config. The model-size limit (TSFORMER_MAX_MODEL_BYTES) guards loading weights; a plan
 * allocates nothing, so it is lifted while the config is validated.
 */
export function planConfig(raw: unknown, source: string): { config: ModelConfig; dtype: HFDType | null } {
  const hf = typeof raw === "object" && raw !== null && ("model_type" in raw || "architectures" in raw);
  const prev = process.env.TSFORMER_MAX_MODEL_BYTES;
  process.env.TSFORMER_MAX_MODEL_BYTES = String(Number.MAX_SAFE_INTEGER);
  try {
    if (!hf) return { config: parseModelConfig(raw, source), dtype: null };
    const m = fromHFConfig(raw, source);
    return { config: m.config, dtype: m.dtype };
  } finally {
    if (prev === undefined) delete process.env.TSFORMER_MAX_MODEL_BYTES;
    else process.env.TSFORMER_MAX_MODEL_BYTES = prev;
  }
}

/** The default precision for a model: mixed 16-bit when its HF config says its weights are 16-bit, else fp32. */
export function defaultPrecision(dtype: HFDType | null): Precision {
  return dtype === "bfloat16" ? "bf16" : dtype === "float16" ? "fp16" : "fp32";
}

// ---- named models (`--preset`): the fields of each published config.json on the Hugging Face Hub
// that fix its shapes and dtype (the rest of the file does not change the memory) ----

export const MEMORY_PRESETS: Record<string, { about: string; hf: Record<string, unknown> }> = {
  // https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json
  "llama-2-7b": {
    about: "meta-llama/Llama-2-7b-hf, 6.74 B",
    hf: {
      architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 4096, intermediate_size: 11008,
      num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 32, max_position_embeddings: 4096,
      vocab_size: 32000, hidden_act: "silu", rms_norm_eps: 1e-5, rope_scaling: null, tie_word_embeddings: false, torch_dtype: "float16",
    },
  },
  // https://huggingface.co/meta-llama/Llama-2-13b-hf/blob/main/config.json
  "llama-2-13b": {
    about: "meta-llama/Llama-2-13b-hf, 13.0 B",
    hf: {
      architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: 5120, intermediate_size: 13824,
      num_hidden_layers: 40, num_attention_heads: 40, num_key_value_heads: 40, max_position_embeddings: 4096,
      vocab_size: 32000, hidden_act: "silu", rms_norm_eps: 1e-5, rope_scaling: null, tie_word_embeddings: false, torch_dtype: "float16",
    },
  },
  // https://huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json
  "qwen2.5-7b": {
    about: "Qwen/Qwen2.5-7B, 7.62 B, GQA 28 / 4 heads",
    hf: {
      architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", hidden_size: 3584, intermediate_size: 18944,
      num_hidden_layers: 28, num_attention_heads: 28, num_key_value_heads: 4, max_position_embeddings: 131072,
      vocab_size: 152064, hidden_act: "silu", rms_norm_eps: 1e-6, rope_theta: 1000000.0, sliding_window: 131072,
      use_sliding_window: false, tie_word_embeddings: false, torch_dtype: "bfloat16",
    },
  },
  // https://huggingface.co/openai-community/gpt2/blob/main/config.json (no torch_dtype: float32)
  gpt2: {
    about: "openai-community/gpt2, 124 M",
    hf: {
      architectures: ["GPT2LMHeadModel"], model_type: "gpt2", n_embd: 768, n_layer: 12, n_head: 12, n_positions: 1024,
      vocab_size: 50257, activation_function: "gelu_new", layer_norm_epsilon: 1e-5,
    },
  },
};

/** A preset's config and the dtype its config.json names; an unknown name is one error listing the presets. */
export function memoryPreset(name: string): { config: ModelConfig; dtype: HFDType | null } {
  const p = Object.hasOwn(MEMORY_PRESETS, name) ? MEMORY_PRESETS[name] : undefined;
  if (!p) throw new Error(`unknown preset ${JSON.stringify(name)}; expected one of ${Object.keys(MEMORY_PRESETS).join(", ")}`);
  return planConfig(p.hf, `preset ${name}`);
}
