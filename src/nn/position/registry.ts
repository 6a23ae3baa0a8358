// RoPE frequency schemes by name (a model config's ropeScaling.type; HF's rope_scaling.rope_type).
// Adding one = a file in nn/position/ + a line here.

import { z } from "zod";
import { dynamic } from "./dynamic-ntk.js";
import { linear } from "./linear.js";
import { llama3 } from "./llama3.js";
import { mixedBase } from "./mixed-base.js";
import { ntk } from "./ntk.js";
import type { RopeScaling, RopeScheme } from "./types.js";
import { yarn } from "./yarn.js";

export const ROPE_SCALINGS: Record<string, RopeScheme> = { linear, ntk, dynamic, yarn, llama3, mixed_base: mixedBase };

const positive = z.number().positive();

/** The config form of a scheme: type, factor > 0 and the scheme's own keys, nothing else. */
export const ropeScalingSchema = z.object({
  type: z.string(),
  factor: positive,
  originalMaxSeqLen: z.number().int().positive().optional(),
  betaFast: positive.optional(),
  betaSlow: positive.optional(),
  attentionFactor: positive.optional(),
  mscale: positive.optional(),
  mscaleAllDim: positive.optional(),
  truncate: z.boolean().optional(),
  lowFreqFactor: positive.optional(),
  highFreqFactor: positive.optional(),
  exponent: positive.optional(),
}).strict().superRefine((p, ctx) => {
  const s = Object.hasOwn(ROPE_SCALINGS, p.type) ? ROPE_SCALINGS[p.type] : undefined;
  if (!s) {
    ctx.addIssue({ code: "custom", path: ["type"], message: `unknown RoPE scaling "${p.type}"; expected one of ${Object.keys(ROPE_SCALINGS).join(", ")}` });
    return;
  }
  const allowed = new Set<string>(["type", "factor", "originalMaxSeqLen", ...s.keys]);
  for (const k of Object.keys(p)) {
    if (!allowed.has(k)) ctx.addIssue({ code: "custom", path: [k], message: `not a parameter of RoPE scaling "${p.type}" (it takes ${[...allowed].join(", ")})` });
  }
  if (p.type === "llama3" && (p.lowFreqFactor ?? 1) >= (p.highFreqFactor ?? 4)) {
    ctx.addIssue({ code: "custom", path: ["highFreqFactor"], message: "must exceed lowFreqFactor" });
  }
});

export function ropeScheme(p: RopeScaling): RopeScheme {
  return ROPE_SCALINGS[p.type];
}
