// Attention variants by config name. Adding a variant = a file in nn/attention/ + a line here.

import type { Attention, AttentionConfig } from "./types.js";
import { SelfAttention } from "./softmax.js";
import { flashSelfAttention } from "./flash.js";
import { SPARSE_DEFAULT, SPARSE_FIXED_DEFAULT, SPARSE_LOCAL_DEFAULT, sparseAttention } from "./sparse.js";
import { LinearAttention } from "./linear.js";
import { PerformerAttention } from "./performer.js";
import { makeTransNormer } from "./transnormer.js";
import { GatedAttentionUnit, MixedChunkGAU } from "./gau.js";

export const ATTENTION_VARIANTS = {
  softmax: (c: AttentionConfig): Attention => new SelfAttention(c),
  flash: (c: AttentionConfig): Attention => flashSelfAttention(c),
  sparse: sparseAttention(SPARSE_DEFAULT),
  sparse_local: sparseAttention(SPARSE_LOCAL_DEFAULT),
  sparse_fixed: sparseAttention(SPARSE_FIXED_DEFAULT),
  linear: (c: AttentionConfig): Attention => new LinearAttention(c),
  performer: (c: AttentionConfig): Attention => new PerformerAttention(c),
  transnormer: (c: AttentionConfig): Attention => makeTransNormer(c),
  gau: (c: AttentionConfig): Attention => new GatedAttentionUnit(c, "relu2"),
  gau_softmax_plus: (c: AttentionConfig): Attention => new GatedAttentionUnit(c, "softmax_plus"),
  gau_mixed: (c: AttentionConfig): Attention => new MixedChunkGAU(c),
} as const;

export type AttentionName = keyof typeof ATTENTION_VARIANTS;

export function makeAttention(name: AttentionName, c: AttentionConfig): Attention {
  return ATTENTION_VARIANTS[name](c);
}
