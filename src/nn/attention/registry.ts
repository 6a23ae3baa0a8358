// Attention variants by config name. Adding a variant = a file in nn/attention/ + a line here.

import type { Attention, AttentionConfig } from "./types.js";
import { SelfAttention } from "./softmax.js";

export const ATTENTION_VARIANTS = {
  softmax: (c: AttentionConfig): Attention => new SelfAttention(c),
} as const;

export type AttentionName = keyof typeof ATTENTION_VARIANTS;

export function makeAttention(name: AttentionName, c: AttentionConfig): Attention {
  return ATTENTION_VARIANTS[name](c);
}
