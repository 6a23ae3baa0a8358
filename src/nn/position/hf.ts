// HF's rope_scaling (transformers <= 4.x) / rope_parameters (v5) <-> a RopeScaling, following
// modeling_rope_utils.py: the type is rope_type, else the legacy type; "default" is no scaling; each
// type's keys are mapped by name and anything else is refused (it would change the computation).

import { ropeScalingSchema } from "./registry.js";
import type { RopeScaling } from "./types.js";

const KEYS: Record<string, keyof RopeScaling> = {
  factor: "factor", original_max_position_embeddings: "originalMaxSeqLen", beta_fast: "betaFast", beta_slow: "betaSlow",
  attention_factor: "attentionFactor", mscale: "mscale", mscale_all_dim: "mscaleAllDim", truncate: "truncate",
  low_freq_factor: "lowFreqFactor", high_freq_factor: "highFreqFactor",
};
const HF_TYPES = ["linear", "dynamic", "yarn", "llama3"];
/** Keys HF carries in rope_parameters that are not scaling parameters. */
const NOT_SCALING = new Set(["rope_type", "type", "rope_theta", "partial_rotary_factor"]);

/** The scaling HF's object describes (undefined for "default"), or one error naming `where` and the key. */
export function fromHFRopeScaling(raw: Record<string, unknown>, where: string): RopeScaling | undefined {
  const type = raw.rope_type ?? raw.type ?? "default";
  if (type === "default") return undefined;
  if (typeof type !== "string" || !HF_TYPES.includes(type)) {
    throw new Error(`${where}: rope_type ${JSON.stringify(type)} is not supported; expected one of default, ${HF_TYPES.join(", ")}`);
  }
  const p: Record<string, unknown> = { type };
  for (const [k, v] of Object.entries(raw)) {
    if (NOT_SCALING.has(k) || v === null) continue;
    // HF's dynamic NTK reads max_position_embeddings and ignores this key (modeling_rope_utils.py)
    if (type === "dynamic" && k === "original_max_position_embeddings") continue;
    if (!Object.hasOwn(KEYS, k)) throw new Error(`${where}: key ${JSON.stringify(k)} is not supported for rope_type "${type}"`);
    p[KEYS[k]] = v;
  }
  const r = ropeScalingSchema.safeParse(p);
  if (!r.success) {
    const back = (f: string) => Object.keys(KEYS).find((k) => KEYS[k] === f) ?? f;
    throw new Error(`${where}: ${r.error.issues.map((i) => `${i.path.map(String).map(back).join(".")}: ${i.message}`).join("; ")}`);
  }
  return r.data;
}

/** The HF form of a scaling with an HF equivalent, else one error. */
export function toHFRopeScaling(p: RopeScaling): Record<string, unknown> {
  if (!HF_TYPES.includes(p.type)) throw new Error(`RoPE scaling "${p.type}" has no HF rope_type (HF has ${HF_TYPES.join(", ")})`);
  const out: Record<string, unknown> = { rope_type: p.type };
  for (const [k, ours] of Object.entries(KEYS)) if (p[ours] !== undefined) out[k] = p[ours];
  return out;
}
