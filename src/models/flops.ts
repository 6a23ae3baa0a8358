// Forward FLOPs of a TransformerLM config for a sequence of T tokens, split per layer into attention
// scores, projections and FFN (one multiply-add = 2 FLOPs, weights [out, in]: Kaplan et al. 2020,
// "Scaling Laws for Neural Language Models", Table 1), and T*, the first sequence length at which the
// score FLOPs reach projections + FFN: the argument of the article "Linear Transformers are probably
// not the model you are waiting for" (below T*, making attention linear saves little). With exact
// attention every layer costs 4 D T^2 (scores) + 24 D^2 T (GPT-2: QKV + O = 8 D^2 T, GELU MLP with
// dFF = 4D: 16 D^2 T), so T* = 24 D^2 / 4 D = 6 D: 4608 for GPT-2 small (D = 768).
// Conventions (say what is counted):
// - exact attention counts the full T x T square for QK^T and for A V, 2 * 2 * T^2 * d per query head,
//   although it is causal (as Kaplan et al.; the materializing kernel computes all of it, the flash
//   kernel skips the tiles above the diagonal, about half);
// - block-local attention (TransNormer's DiagAttention, FLASH's chunks) counts each block's full square;
//   sparse attention every tile its block mask allows (rows x cols positions; T* then at whole blocks);
// - kernelized attention (linear, performer, TransNormer's NormAttention) counts the recurrent form:
//   k' v^T per kv head and q'^T S per query head, 2 m d each per token (m features; m = d gives
//   2 * 2 * T * d * d per head for MHA); Performer adds its feature maps, 2 m d per head for q and k;
// - GAU (FLASH): scores 2 T^2 (s + e) (Q K^T over s, A V over e), projections u, v, z and o, no FFN;
//   mixed chunk: 2 c^2 (s + e) per chunk + 4 T s e for the linear part;
// - not counted: embedding lookups, norms, biases, activations, softmax, RoPE (all O(T D)).

import type { BlockMask } from "../backend/backend.js";
import { MIXED_CHUNK, GAU_EXPANSION, GAU_QK_DIM } from "../nn/attention/gau.js";
import { defaultFeatures } from "../nn/attention/performer.js";
import { SPARSE_DEFAULT, SPARSE_FIXED_DEFAULT, SPARSE_LOCAL_DEFAULT } from "../nn/attention/sparse.js";
import { TRANSNORMER_DEFAULTS } from "../nn/attention/transnormer.js";
import { mixerOf, type ModelConfig } from "./config.js";

export interface LayerFlops { layer: number; kind: string; scores: number; projections: number; ffn: number }

export interface FlopsReport {
  seq: number;
  attention: string;
  layers: LayerFlops[];
  /** Sums over the layers. */
  scores: number;
  projections: number;
  ffn: number;
  lmHead: number;
  total: number;
  perToken: number;
  /** First T with score FLOPs >= projections + FFN over all layers; null if never (sparse: none up to SCAN_LIMIT). */
  crossover: number | null;
}

/** Longest sequence the sparse-mask search for T* looks at. */
export const SCAN_LIMIT = 1 << 18;

/**
 * How one layer's score FLOPs grow. `flops(T)` is the exact count. Per token at whole blocks it is
 * slope * min(T, window) + perToken (window Infinity: exact attention, 0: kernelized), except for sparse
 * masks, whose T* is found by scanning the mask block by block.
 */
interface ScoreModel {
  kind: string;
  flops(T: number): number;
  growth: { slope: number; window: number; perToken: number } | { mask: BlockMask; coef: number };
}

/** Sum of squared block lengths of T positions cut into blocks of b (aligned at 0). */
const blockSquares = (T: number, b: number) => Math.floor(T / b) * b * b + (T % b) ** 2;

function maskAllow(mask: BlockMask): (qb: number, kb: number) => boolean {
  if (typeof mask.allow !== "function") throw new Error("flops: table block masks are not supported");
  return mask.allow;
}

function scoreModel(cfg: ModelConfig, layer: number): ScoreModel {
  const D = cfg.dModel, H = cfg.nHeads, Hkv = cfg.nKvHeads ?? H, d = D / H;
  const e = GAU_EXPANSION * D, s = Math.min(GAU_QK_DIM, D);
  const quadratic = (kind: string, slope: number, window = Infinity, perToken = 0): ScoreModel => ({
    kind, growth: { slope, window, perToken },
    flops: (T) => slope * (window === Infinity ? T * T : blockSquares(T, window)) + perToken * T,
  });
  const kernelized = (kind: string, m: number, featureMaps = 0): ScoreModel => {
    const perToken = 2 * m * d * (H + Hkv) + featureMaps;
    return { kind, growth: { slope: 0, window: 0, perToken }, flops: (T) => perToken * T };
  };
  const sparse = (kind: string, mask: BlockMask): ScoreModel => {
    const allow = maskAllow(mask), b = mask.blockSize;
    const flops = (T: number) => {
      let pairs = 0;
      for (let qb = 0; qb * b < T; qb++) {
        for (let kb = 0; kb <= qb; kb++) if (allow(qb, kb)) pairs += Math.min(b, T - qb * b) * Math.min(b, T - kb * b);
      }
      return 4 * D * pairs;
    };
    return { kind, flops, growth: { mask, coef: 4 * D } };
  };
  switch (cfg.attention) {
    case "softmax": case "flash": return quadratic("exact (full T x T square)", 4 * D);
    case "sparse": return sparse("sparse strided (allowed tiles)", SPARSE_DEFAULT);
    case "sparse_local": return sparse("sparse local (allowed tiles)", SPARSE_LOCAL_DEFAULT);
    case "sparse_fixed": return sparse("sparse fixed (allowed tiles)", SPARSE_FIXED_DEFAULT);
    case "linear": return kernelized("linear (recurrent form)", d);
    case "performer": {
      const m = defaultFeatures(d);
      return kernelized(`performer (m = ${m} features)`, m, 2 * m * d * (H + Hkv));
    }
    case "transnormer": {
      const b = TRANSNORMER_DEFAULTS.blockSize;
      return layer < cfg.nLayers / 2 ? quadratic(`transnormer diag (blocks of ${b})`, 4 * D, b) : kernelized("transnormer norm (linear)", d);
    }
    case "gau": case "gau_softmax_plus": return quadratic("GAU (full T x T square)", 2 * (s + e));
    case "gau_mixed": {
      const c = Math.min(MIXED_CHUNK, cfg.maxSeqLen);
      return quadratic(`FLASH mixed chunk (c = ${c})`, 2 * (s + e), c, 4 * s * e);
    }
    default: throw new Error(`flops: no FLOP model for attention variant "${cfg.attention}"`);
  }
}

/** Variants whose layer is a Gated Attention Unit: attention and FFN in one (no separate FFN). */
const GAU_VARIANTS = new Set(["gau", "gau_softmax_plus", "gau_mixed"]);

/** Projections + FFN FLOPs per token of one layer. */
function denseParts(cfg: ModelConfig): { projections: number; ffn: number } {
  const D = cfg.dModel, kv = (cfg.nKvHeads ?? cfg.nHeads) * (D / cfg.nHeads);
  if (GAU_VARIANTS.has(cfg.attention)) {
    const e = GAU_EXPANSION * D, s = Math.min(GAU_QK_DIM, D);
    return { projections: 2 * D * (2 * e + s) + 2 * e * D, ffn: 0 };
  }
  return { projections: 2 * D * (2 * D + 2 * kv), ffn: (cfg.ffn === "swiglu" ? 3 : 2) * 2 * D * cfg.dFF };
}

/**
 * First T with sum_l scores_l(T) >= omega T. Per token, the scores are piecewise linear and
 * nondecreasing in T (breakpoints at the block windows), so each piece is solved in closed form.
 */
function solveCrossover(models: ScoreModel[], omega: number): number | null {
  const g = models.map((m) => m.growth as { slope: number; window: number; perToken: number });
  const breaks = [...new Set(g.map((x) => x.window).filter((w) => w > 0 && Number.isFinite(w)))].sort((a, b) => a - b);
  let lo = 1;
  for (const hi of [...breaks, Infinity]) {
    // On [lo, hi]: layers with window >= hi grow as slope T, the others are saturated at slope window.
    let A = 0, C = 0;
    for (const x of g) {
      C += x.perToken;
      if (x.window >= hi) A += x.slope;
      else C += x.slope * Math.min(x.window, lo);
    }
    const t = A > 0 ? Math.max(lo, Math.ceil((omega - C) / A)) : C >= omega ? lo : Infinity;
    if (Number.isFinite(t) && t <= hi) return t;
    lo = hi;
  }
  return null;
}

/** Sparse masks (every layer the same): the first whole block count Q with scores(Q b) >= omega Q b. */
function scanCrossover(mask: BlockMask, coef: number, layers: number, omega: number): number | null {
  const allow = maskAllow(mask), b = mask.blockSize;
  let tiles = 0;
  for (let q = 1; q * b <= SCAN_LIMIT; q++) {
    for (let kb = 0; kb < q; kb++) if (allow(q - 1, kb)) tiles++;
    if (layers * coef * b * b * tiles >= omega * q * b) return q * b;
  }
  return null;
}

export function modelFlops(cfg: ModelConfig, seq: number): FlopsReport {
  if (!Number.isInteger(seq) || seq < 1) throw new RangeError(`flops: the sequence length must be an integer >= 1, got ${seq}`);
  const ssm = Array.from({ length: cfg.nLayers }, (_, l) => mixerOf(cfg, l)).find((m) => m !== "attention");
  if (ssm) throw new Error(`flops: no FLOP model for mixer "${ssm}" (the report counts attention layers only)`);
  const models = Array.from({ length: cfg.nLayers }, (_, l) => scoreModel(cfg, l));
  const dense = denseParts(cfg);
  const layers = models.map((m, layer) => ({ layer, kind: m.kind, scores: m.flops(seq), projections: dense.projections * seq, ffn: dense.ffn * seq }));
  const sum = (k: "scores" | "projections" | "ffn") => layers.reduce((a, l) => a + l[k], 0);
  const lmHead = 2 * seq * cfg.dModel * cfg.vocabSize;
  const total = sum("scores") + sum("projections") + sum("ffn") + lmHead;
  const omega = cfg.nLayers * (dense.projections + dense.ffn);
  const first = models[0].growth;
  const crossover = "mask" in first ? scanCrossover(first.mask, first.coef, cfg.nLayers, omega) : solveCrossover(models, omega);
  return {
    seq, attention: cfg.attention, layers, scores: sum("scores"), projections: sum("projections"), ffn: sum("ffn"),
    lmHead, total, perToken: total / seq, crossover,
  };
}
