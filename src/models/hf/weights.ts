// Tensor names and layouts between HF checkpoints and TransformerLM's state dict.
// GPT-2 (transformers modeling_gpt2.py): Conv1D weights are stored [in, out] (y = x W + b) and
// attn.c_attn fuses q, k, v along the output; the head is tied to wte. Llama / Qwen2 / Mistral
// (modeling_llama.py): nn.Linear [out, in]; gate_proj / up_proj / down_proj are our w1 / w3 / w2;
// Qwen2 adds q/k/v biases. HF rotates q and k with rotate_half (pairs (j, j + d/2)); TransformerLM
// rotates interleaved pairs (2j, 2j + 1) as Meta's Llama does, so the rows of q_proj and k_proj (and
// their biases) are permuted within each head, the inverse of convert_llama_weights_to_hf.py `permute`.
// q.k is unchanged by permuting both, so the logits are the same.

import type { SafeTensor } from "../../io/safetensors.js";
import * as ops from "../../ops/index.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../backend/js/half.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { ModelConfig } from "../config.js";
import type { HFArch, HFDType } from "./config.js";

export interface Mat { data: Float32Array; shape: number[] }

/** Buffers HF checkpoints may carry that hold no weights (causal-mask and RoPE caches). */
const IGNORED = /(^|\.)(attn\.bias|attn\.masked_bias|rotary_emb\.inv_freq)$/;

function transpose({ data, shape: [r, c] }: Mat): Mat {
  const out = new Float32Array(data.length);
  for (let i = 0; i < r!; i++) for (let j = 0; j < c!; j++) out[j * r! + i] = data[i * c! + j]!;
  return { data: out, shape: [c!, r!] };
}

/**
 * Rows of a [heads * d, ...] tensor between HF's half layout and the interleaved one: interleaved
 * row 2j + t of a head is HF row t * d/2 + j (t = 0, 1).
 */
export function permuteRope({ data, shape }: Mat, heads: number, toHF: boolean): Mat {
  const cols = shape.length > 1 ? shape[1]! : 1, d = shape[0]! / heads, half = d / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < half; j++) {
      for (let t = 0; t < 2; t++) {
        const inter = (h * d + 2 * j + t) * cols, hf = (h * d + t * half + j) * cols;
        out.set(data.subarray(toHF ? inter : hf, (toHF ? inter : hf) + cols), toHF ? hf : inter);
      }
    }
  }
  return { data: out, shape };
}

/** One HF tensor and how it relates to ours: `ours` names and a pair of layout maps. */
interface Rule {
  hf: string; shape: number[]; ours: string[]; load: (m: Mat) => Mat[]; save: (ms: Mat[]) => Mat;
  /** q_proj / k_proj: the rows are permuted within each of `ropeHeads` heads. */
  ropeHeads?: number;
}

const same = (name: string, hf: string, shape: number[]): Rule => ({ hf, shape, ours: [name], load: (m) => [m], save: ([m]) => m! });
const conv1d = (name: string, hf: string, shape: number[]): Rule => ({ hf, shape, ours: [name], load: (m) => [transpose(m)], save: ([m]) => transpose(m!) });
const roped = (name: string, hf: string, shape: number[], heads: number): Rule => ({
  hf, shape, ours: [name], load: (m) => [permuteRope(m, heads, false)], save: ([m]) => permuteRope(m!, heads, true), ropeHeads: heads,
});

/** c_attn [D, 3D] (Conv1D) <-> wq, wk, wv [D, D]; its bias [3D] <-> three [D]. */
function fusedQKV(prefix: string, hf: string, D: number, isBias: boolean): Rule {
  const names = ["wq", "wk", "wv"].map((w) => `${prefix}.attn.${w}.${isBias ? "bias" : "weight"}`);
  const split = (m: Mat): Mat[] => [0, 1, 2].map((p) => {
    if (isBias) return { data: m.data.slice(p * D, (p + 1) * D), shape: [D] };
    const part = new Float32Array(D * D);
    for (let i = 0; i < D; i++) part.set(m.data.subarray(i * 3 * D + p * D, i * 3 * D + (p + 1) * D), i * D);
    return transpose({ data: part, shape: [D, D] });
  });
  const join = (ms: Mat[]): Mat => {
    if (isBias) return { data: Float32Array.from(ms.flatMap((m) => [...m.data])), shape: [3 * D] };
    const out = new Float32Array(3 * D * D);
    ms.forEach((m, p) => {
      const t = transpose(m);
      for (let i = 0; i < D; i++) out.set(t.data.subarray(i * D, (i + 1) * D), i * 3 * D + p * D);
    });
    return { data: out, shape: [D, 3 * D] };
  };
  return { hf, shape: isBias ? [3 * D] : [D, 3 * D], ours: names, load: split, save: join };
}

function gpt2Rules(c: ModelConfig): Rule[] {
  const D = c.dModel, F = c.dFF;
  const rules = [same("tok_emb.weight", "transformer.wte.weight", [c.vocabSize, D]), same("pos_emb.weight", "transformer.wpe.weight", [c.maxSeqLen, D])];
  for (let i = 0; i < c.nLayers; i++) {
    const h = `transformer.h.${i}`, b = `blocks.${i}`;
    rules.push(
      same(`${b}.norm1.weight`, `${h}.ln_1.weight`, [D]), same(`${b}.norm1.bias`, `${h}.ln_1.bias`, [D]),
      fusedQKV(b, `${h}.attn.c_attn.weight`, D, false), fusedQKV(b, `${h}.attn.c_attn.bias`, D, true),
      conv1d(`${b}.attn.wo.weight`, `${h}.attn.c_proj.weight`, [D, D]), same(`${b}.attn.wo.bias`, `${h}.attn.c_proj.bias`, [D]),
      same(`${b}.norm2.weight`, `${h}.ln_2.weight`, [D]), same(`${b}.norm2.bias`, `${h}.ln_2.bias`, [D]),
      conv1d(`${b}.mlp.fc1.weight`, `${h}.mlp.c_fc.weight`, [D, F]), same(`${b}.mlp.fc1.bias`, `${h}.mlp.c_fc.bias`, [F]),
      conv1d(`${b}.mlp.fc2.weight`, `${h}.mlp.c_proj.weight`, [F, D]), same(`${b}.mlp.fc2.bias`, `${h}.mlp.c_proj.bias`, [D]),
    );
  }
  rules.push(same("norm_f.weight", "transformer.ln_f.weight", [D]), same("norm_f.bias", "transformer.ln_f.bias", [D]));
  if (!c.tieEmbeddings) rules.push(same("lm_head.weight", "lm_head.weight", [c.vocabSize, D]));
  return rules;
}

function llamaRules(c: ModelConfig): Rule[] {
  const D = c.dModel, F = c.dFF, H = c.nHeads, KV = c.nKvHeads ?? H, kvDim = (D / H) * KV;
  const rules = [same("tok_emb.weight", "model.embed_tokens.weight", [c.vocabSize, D])];
  for (let i = 0; i < c.nLayers; i++) {
    const h = `model.layers.${i}`, b = `blocks.${i}`;
    rules.push(
      same(`${b}.norm1.weight`, `${h}.input_layernorm.weight`, [D]),
      roped(`${b}.attn.wq.weight`, `${h}.self_attn.q_proj.weight`, [D, D], H),
      roped(`${b}.attn.wk.weight`, `${h}.self_attn.k_proj.weight`, [kvDim, D], KV),
      same(`${b}.attn.wv.weight`, `${h}.self_attn.v_proj.weight`, [kvDim, D]),
    );
    if (c.qkvBias) {
      rules.push(
        roped(`${b}.attn.wq.bias`, `${h}.self_attn.q_proj.bias`, [D], H),
        roped(`${b}.attn.wk.bias`, `${h}.self_attn.k_proj.bias`, [kvDim], KV),
        same(`${b}.attn.wv.bias`, `${h}.self_attn.v_proj.bias`, [kvDim]),
      );
    }
    rules.push(
      same(`${b}.attn.wo.weight`, `${h}.self_attn.o_proj.weight`, [D, D]),
      same(`${b}.norm2.weight`, `${h}.post_attention_layernorm.weight`, [D]),
      same(`${b}.mlp.w1.weight`, `${h}.mlp.gate_proj.weight`, [F, D]),
      same(`${b}.mlp.w3.weight`, `${h}.mlp.up_proj.weight`, [F, D]),
      same(`${b}.mlp.w2.weight`, `${h}.mlp.down_proj.weight`, [D, F]),
    );
  }
  rules.push(same("norm_f.weight", "model.norm.weight", [D]));
  if (!c.tieEmbeddings) rules.push(same("lm_head.weight", "lm_head.weight", [c.vocabSize, D]));
  return rules;
}

const rulesFor = (arch: HFArch, c: ModelConfig) => (arch === "gpt2" ? gpt2Rules(c) : llamaRules(c));

function widen(t: SafeTensor): Float32Array {
  if (t.dtype === "F32") return t.data as Float32Array;
  if (t.dtype === "BF16") return bf16ToF32(t.data as Uint16Array);
  if (t.dtype === "F16") return f16ToF32(t.data as Uint16Array);
  return Float32Array.from(t.data as Float64Array);
}

/**
 * TransformerLM's state dict from an HF checkpoint's tensors (16-bit ones widened to float32,
 * exactly). `where` names the files in errors.
 */
export function fromHFWeights(arch: HFArch, c: ModelConfig, tensors: Record<string, SafeTensor>, where: string): Record<string, Tensor> {
  // GPT-2 checkpoints saved from GPT2Model have no "transformer." prefix.
  const find = (name: string) => tensors[name] ?? (arch === "gpt2" ? tensors[name.replace(/^transformer\./, "")] : undefined);
  const used = new Set<SafeTensor>();
  const sd: Record<string, Tensor> = {};
  for (const r of rulesFor(arch, c)) {
    const t = find(r.hf);
    if (!t) throw new Error(`${where}: tensor ${r.hf} is missing; the config (${arch}, ${c.nLayers} layers) needs it`);
    if (t.shape.length !== r.shape.length || t.shape.some((s, i) => s !== r.shape[i])) {
      throw new Error(`${where}: tensor ${r.hf} has shape [${t.shape.join(", ")}]; config.json (vocab ${c.vocabSize}, hidden ${c.dModel}, intermediate ${c.dFF}, heads ${c.nHeads}/${c.nKvHeads ?? c.nHeads}) expects [${r.shape.join(", ")}]`);
    }
    used.add(t);
    r.load({ data: widen(t), shape: t.shape }).forEach((m, i) => { sd[r.ours[i]!] = ops.tensor(m.data, { shape: m.shape }); });
  }
  const head = find("lm_head.weight");
  if (c.tieEmbeddings && head) used.add(head); // a tied head saved anyway is the embedding again
  const extra = Object.entries(tensors).filter(([n, t]) => !used.has(t) && !IGNORED.test(n)).map(([n]) => n);
  if (extra.length) throw new Error(`${where}: unexpected tensor${extra.length > 1 ? "s" : ""} ${extra.slice(0, 5).join(", ")}${extra.length > 5 ? ", ..." : ""}; the ${arch} config does not use them (is the config.json for these weights?)`);
  return sd;
}

function narrow(data: Float32Array, dtype: HFDType): SafeTensor["data"] {
  return dtype === "float32" ? data : dtype === "bfloat16" ? f32ToBf16(data) : f32ToF16(data);
}

const SAFE = { float32: "F32", bfloat16: "BF16", float16: "F16" } as const;

/** The HF tensors of a state dict, in HF's order, stored as `dtype`. */
export function toHFWeights(arch: HFArch, c: ModelConfig, sd: Record<string, Tensor>, dtype: HFDType): [string, SafeTensor][] {
  return rulesFor(arch, c).map((r) => {
    const m = r.save(r.ours.map((n) => {
      const t = sd[n];
      if (!t) throw new Error(`toHFWeights: the state dict lacks ${n}`);
      return { data: t.toTypedArray() as Float32Array, shape: [...t.shape] };
    }));
    return [r.hf, { dtype: SAFE[dtype], shape: m.shape, data: narrow(m.data, dtype) }];
  });
}

/** An HF module path for one of ours (a Linear or Embedding that maps 1:1), and its RoPE row permutation. */
export interface HFModuleName { hf: string; ropeHeads: number | null }

/**
 * Our module path -> HF's (e.g. blocks.0.attn.wq -> model.layers.0.self_attn.q_proj), for every weight
 * that maps one to one: what PEFT target_modules and adapter keys name. GPT-2's fused c_attn has no
 * single module of ours and is left out.
 */
export function hfModuleNames(arch: HFArch, c: ModelConfig): Map<string, HFModuleName> {
  const out = new Map<string, HFModuleName>();
  for (const r of rulesFor(arch, c)) {
    if (r.ours.length !== 1 || !r.hf.endsWith(".weight") || !r.ours[0]!.endsWith(".weight")) continue;
    out.set(r.ours[0]!.slice(0, -".weight".length), { hf: r.hf.slice(0, -".weight".length), ropeHeads: r.ropeHeads ?? null });
  }
  return out;
}
