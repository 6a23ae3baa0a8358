// config.json of a Hugging Face model <-> tsformer's ModelConfig, for GPT2LMHeadModel,
// LlamaForCausalLM, Qwen2ForCausalLM and MistralForCausalLM. Field names and defaults follow
// transformers' configuration_gpt2.py / configuration_llama.py / configuration_qwen2.py /
// configuration_mistral.py. A field that changes the computation is mapped or refused by name;
// every other field is kept as it is and written back on save.

import { brief, isObject } from "../../io/read.js";
import { llamaConfig, gpt2Config, type ModelConfig } from "../config.js";
import { fromHFRopeScaling, toHFRopeScaling } from "../../nn/position/hf.js";
import type { RopeScaling } from "../../nn/position/types.js";

export type HFArch = "gpt2" | "llama" | "qwen2" | "mistral";

const ARCHITECTURES: Record<string, HFArch> = {
  GPT2LMHeadModel: "gpt2", LlamaForCausalLM: "llama", Qwen2ForCausalLM: "qwen2", MistralForCausalLM: "mistral",
};
const CLASS_OF: Record<HFArch, string> = Object.fromEntries(Object.entries(ARCHITECTURES).map(([k, v]) => [v, k])) as Record<HFArch, string>;
const SUPPORTED = Object.keys(ARCHITECTURES).join(", ");

export type HFDType = "float32" | "bfloat16" | "float16";

export interface HFModelConfig {
  arch: HFArch;
  config: ModelConfig;
  /** config.json as read: written back on save, with the mapped fields updated. */
  raw: Record<string, unknown>;
  /** torch_dtype / dtype: the dtype the weights are saved in. */
  dtype: HFDType;
  /** What the load changed or could not carry (e.g. a sliding window that bounds the context). */
  notes: string[];
}


/** Reads the fields of one config.json; every error names the file and the field. */
class Fields {
  constructor(readonly raw: Record<string, unknown>, readonly file: string) {}

  fail(field: string, problem: string): Error {
    return new Error(`${this.file}: field ${field} ${problem}`);
  }

  int(field: string, dflt?: number): number {
    const v = this.raw[field] ?? dflt;
    if (v === undefined) throw this.fail(field, "is missing; expected a positive integer");
    if (!Number.isSafeInteger(v) || (v as number) <= 0) throw this.fail(field, `is ${brief(v)}; expected a positive integer`);
    return v as number;
  }

  num(field: string, dflt: number): number {
    const v = this.raw[field] ?? dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw this.fail(field, `is ${brief(v)}; expected a positive number`);
    return v;
  }

  bool(field: string, dflt: boolean): boolean {
    const v = this.raw[field] ?? dflt;
    if (typeof v !== "boolean") throw this.fail(field, `is ${brief(v)}; expected true or false`);
    return v;
  }

  /** A field tsformer computes only at one value (absent / null counts as the default). */
  only(field: string, allowed: unknown[], why: string): void {
    const v = this.raw[field];
    if (v === undefined || v === null || allowed.includes(v)) return;
    throw this.fail(field, `is ${brief(v)}; tsformer supports only ${allowed.map((a) => JSON.stringify(a)).join(" or ")} (${why})`);
  }
}

function archOf(raw: Record<string, unknown>, file: string): HFArch {
  const archs = raw.architectures;
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length === 0 || typeof archs[0] !== "string") throw new Error(`${file}: field architectures is ${brief(archs)}; expected a list like ["LlamaForCausalLM"]`);
    const a = Object.hasOwn(ARCHITECTURES, archs[0]) ? ARCHITECTURES[archs[0]] : undefined;
    if (!a) throw new Error(`${file}: field architectures names ${archs[0]}, which tsformer cannot load; supported: ${SUPPORTED}`);
    return a;
  }
  const t = raw.model_type;
  if (t === "gpt2" || t === "llama" || t === "qwen2" || t === "mistral") return t;
  throw new Error(`${file}: field model_type is ${brief(t)} and there is no architectures field; supported: ${SUPPORTED} (model_type gpt2, llama, qwen2, mistral)`);
}

function dtypeOf(f: Fields): HFDType {
  const field = f.raw.dtype !== undefined ? "dtype" : "torch_dtype";
  const v = f.raw[field] ?? "float32";
  if (v === "float32" || v === "bfloat16" || v === "float16") return v;
  throw f.fail(field, `is ${brief(v)}; expected "float32", "bfloat16" or "float16"`);
}

/**
 * rope_theta and the RoPE scaling, from the fields (rope_theta, rope_scaling) or from transformers v5's
 * rope_parameters, which holds both (nn/position/hf.ts maps the scaling types).
 */
function ropeOf(f: Fields, dflt: number): { ropeTheta: number; ropeScaling?: RopeScaling } {
  const p = f.raw.rope_parameters;
  if (isObject(p)) {
    const where = `${f.file} rope_parameters`;
    return { ropeTheta: new Fields(p, where).num("rope_theta", dflt), ropeScaling: fromHFRopeScaling(p, where) };
  }
  const sc = f.raw.rope_scaling;
  if (sc !== undefined && sc !== null && !isObject(sc)) throw f.fail("rope_scaling", `is ${brief(sc)}; expected an object or null`);
  return { ropeTheta: f.num("rope_theta", dflt), ropeScaling: isObject(sc) ? fromHFRopeScaling(sc, `${f.file} rope_scaling`) : undefined };
}

function gpt2(f: Fields): ModelConfig {
  f.only("activation_function", ["gelu_new", "gelu_pytorch_tanh", "gelu"], "the GPT-2 MLP uses GELU");
  f.only("scale_attn_weights", [true], "attention scores are divided by sqrt(head size)");
  f.only("scale_attn_by_inverse_layer_idx", [false], "no per-layer score scaling");
  f.only("add_cross_attention", [false], "tsformer's models are decoder-only");
  const d = f.int("n_embd");
  return gpt2Config({
    vocabSize: f.int("vocab_size"), dModel: d, nLayers: f.int("n_layer"), nHeads: f.int("n_head"),
    maxSeqLen: f.int("n_positions"), dFF: f.int("n_inner", 4 * d), normEps: f.num("layer_norm_epsilon", 1e-5),
    ffn: f.raw.activation_function === "gelu" ? "gelu" : "gelu_tanh", tieEmbeddings: f.bool("tie_word_embeddings", true),
  });
}

function llamaFamily(f: Fields, arch: HFArch, notes: string[]): ModelConfig {
  f.only("hidden_act", ["silu"], "the MLP is SwiGLU: silu(gate_proj x) * up_proj x");
  f.only("partial_rotary_factor", [1, 1.0], "RoPE rotates the whole head");
  if (arch !== "qwen2") {
    f.only("attention_bias", [false], "q/k/v/o projections without bias");
    f.only("mlp_bias", [false], "MLP projections without bias");
  }
  const d = f.int("hidden_size"), nHeads = f.int("num_attention_heads");
  if (f.raw.head_dim !== undefined && f.raw.head_dim !== null && f.raw.head_dim !== d / nHeads) {
    throw f.fail("head_dim", `is ${brief(f.raw.head_dim)}; tsformer supports only hidden_size / num_attention_heads = ${d / nHeads}`);
  }
  let maxSeqLen = f.int("max_position_embeddings", arch === "qwen2" ? 32768 : arch === "mistral" ? 131072 : 2048);
  // Sliding-window attention (Mistral; Qwen2 when use_sliding_window): exact as full attention up to
  // the window, so the context is bounded by it instead of refusing the model.
  const sliding = arch === "mistral" || (arch === "qwen2" && f.bool("use_sliding_window", false));
  const window = f.raw.sliding_window;
  if (sliding && window !== undefined && window !== null) {
    if (!Number.isSafeInteger(window) || (window as number) <= 0) throw f.fail("sliding_window", `is ${brief(window)}; expected a positive integer or null`);
    if ((window as number) < maxSeqLen) {
      notes.push(`sliding_window ${window} < max_position_embeddings ${maxSeqLen}: the context is limited to ${window} tokens (sliding-window attention is not implemented)`);
      maxSeqLen = window as number;
    }
  }
  return llamaConfig({
    vocabSize: f.int("vocab_size"), dModel: d, nLayers: f.int("num_hidden_layers"), nHeads,
    nKvHeads: f.int("num_key_value_heads", nHeads), dFF: f.int("intermediate_size"), maxSeqLen,
    normEps: f.num("rms_norm_eps", 1e-6), ...ropeOf(f, 10000),
    tieEmbeddings: f.bool("tie_word_embeddings", false), qkvBias: arch === "qwen2" ? true : undefined,
  });
}

/** Map an HF config.json (already parsed) to a tsformer ModelConfig; `file` names it in errors. */
export function fromHFConfig(raw: unknown, file: string): HFModelConfig {
  if (!isObject(raw)) throw new Error(`${file}: is not a JSON object; expected an HF config.json`);
  const arch = archOf(raw, file);
  const f = new Fields(raw, file), notes: string[] = [];
  const config = arch === "gpt2" ? gpt2(f) : llamaFamily(f, arch, notes);
  return { arch, config, raw, dtype: dtypeOf(f), notes };
}

/** The HF architecture a tsformer config can be saved as, or an error naming what HF cannot express. */
export function hfArchFor(c: ModelConfig): HFArch {
  const why: string[] = [];
  if (c.attention !== "flash" && c.attention !== "softmax") why.push(`attention ${c.attention}`);
  if (c.normPlacement !== "pre") why.push(`normPlacement ${c.normPlacement}`);
  if (c.moe) why.push("moe (the HF layouts here are dense)");
  if (c.mixer !== undefined && [c.mixer].flat().some((m) => m !== "attention")) why.push("an SSM mixer (the HF layouts here are attention models)");
  if (c.rerope) why.push("rerope (HF has no ReRoPE)");
  if (c.logn) why.push("logn (HF has no log-n scaling)");
  if (c.ropeLayout === "half") why.push("ropeLayout half (HF directories hold the weights for the interleaved computation's permutation)");
  if (c.position === "learned" && c.norm === "layernorm" && c.bias && c.ffn !== "swiglu" && c.qkvBias === undefined && (c.nKvHeads ?? c.nHeads) === c.nHeads) {
    if (!why.length) return "gpt2";
  } else if (c.position === "rope" && c.norm === "rmsnorm" && c.ffn === "swiglu" && !c.bias) {
    if (!why.length) return c.qkvBias ? "qwen2" : "llama";
  } else {
    why.push(`position ${c.position}, norm ${c.norm}, ffn ${c.ffn}, bias ${c.bias}`);
  }
  throw new Error(`this model cannot be written as an HF directory: ${why.join("; ")}; expected the GPT-2 layout (learned positions, layernorm, gelu, biases, pre-norm) or the Llama layout (rope, rmsnorm, swiglu, no biases, pre-norm)`);
}

/**
 * config.json for `c` as `arch`: the mapped fields over `base` (a loaded model's own config.json,
 * whose other fields are kept), with torch_dtype = dtype.
 */
export function toHFConfig(c: ModelConfig, arch: HFArch, dtype: HFDType, base: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base, architectures: [CLASS_OF[arch]], model_type: arch };
  if (arch === "gpt2") {
    Object.assign(out, {
      vocab_size: c.vocabSize, n_embd: c.dModel, n_layer: c.nLayers, n_head: c.nHeads, n_positions: c.maxSeqLen,
      n_inner: c.dFF === 4 * c.dModel && base.n_inner == null ? null : c.dFF, layer_norm_epsilon: c.normEps,
      activation_function: c.ffn === "gelu" ? "gelu" : (base.activation_function ?? "gelu_new"),
    });
  } else {
    const window = base.sliding_window;
    Object.assign(out, {
      vocab_size: c.vocabSize, hidden_size: c.dModel, num_hidden_layers: c.nLayers, num_attention_heads: c.nHeads,
      num_key_value_heads: c.nKvHeads ?? c.nHeads, intermediate_size: c.dFF, hidden_act: "silu",
      // a sliding window bounded maxSeqLen on load: keep the model's own max_position_embeddings
      max_position_embeddings: typeof window === "number" && window === c.maxSeqLen && typeof base.max_position_embeddings === "number" ? base.max_position_embeddings : c.maxSeqLen,
      rms_norm_eps: c.normEps,
    });
    // the base's own object when it says the same (legacy keys kept), else the mapped scaling
    const same = (o: unknown) => isObject(o) && JSON.stringify(fromHFRopeScaling(o, "rope_scaling")) === JSON.stringify(c.ropeScaling);
    const scaling = c.ropeScaling ? toHFRopeScaling(c.ropeScaling) : null;
    if (isObject(base.rope_parameters)) {
      out.rope_parameters = { ...(same(base.rope_parameters) ? base.rope_parameters : scaling ?? { rope_type: "default" }), rope_theta: c.ropeTheta };
    } else {
      out.rope_theta = c.ropeTheta;
      if (scaling || "rope_scaling" in base) out.rope_scaling = same(base.rope_scaling) ? base.rope_scaling : scaling;
    }
  }
  // written when it is not the class default (GPT2Config ties, the Llama family does not) or was there
  if ("tie_word_embeddings" in base || c.tieEmbeddings !== (arch === "gpt2")) out.tie_word_embeddings = c.tieEmbeddings;
  out[base.dtype !== undefined ? "dtype" : "torch_dtype"] = dtype;
  return out;
}
