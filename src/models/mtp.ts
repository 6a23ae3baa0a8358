// Multi-token prediction (DeepSeek-AI 2024, "DeepSeek-V3 Technical Report", arXiv 2412.19437, §2.2):
// D sequential modules on a TransformerLM, sharing its embedding and output head. Depth k (1..D) at
// position i combines the previous depth's representation with the embedding of token i + k,
//   h'_i^k = M_k [RMSNorm(h_i^{k-1}); RMSNorm(Emb(t_{i+k}))]          (eq. 21, M_k: 2d -> d)
//   h_{1:T-k}^k = TRM_k(h'_{1:T-k}^k)                                  (eq. 22, one causal block)
//   P_{i+k+1}^k = OutHead(h_i^k)                                       (eq. 23)
// and is trained with L^k = CE(P^k, t_{k+2:T+1}) (eq. 24), L_MTP = lambda / D * sum_k L^k (eq. 25)
// added to the main loss.
// Choices where the paper leaves room:
// - h^0 is "the representation given by the main model": here the main model's final hidden state
//   (after its final norm, i.e. what its output head reads; CausalLM.forward's `hidden`), as vLLM's
//   deepseek_mtp.py feeds the target's hidden states to the MTP layer's hnorm.
// - OutHead is the shared head after a norm of the depth's own (the released DeepSeek-V3 weights'
//   per-layer "shared_head.norm"), of the base's norm kind, since h^k is a pre-norm residual stream.
// - The concatenation order is the paper's eq. 21 ([h; emb]); vLLM's eh_proj takes [emb; h].
// - TRM_k is a decoder block of the base's config (models/block.ts), so it uses the base's mixer,
//   FFN, norm placement and positions (RoPE by position i; learned positions only enter through h).

import { existsSync } from "node:fs";
import * as path from "node:path";
import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import type { Tensor } from "../tensor/tensor.js";
import { RandomGenerator } from "../tensor/rng.js";
import { Module } from "../nn/module.js";
import { Linear, RMSNorm, makeNorm, skipInit, type Norm } from "../nn/layers.js";
import { initWeight } from "../nn/init.js";
import { SeqContext, type DecodingState } from "../nn/seq-context.js";
import { moeAuxLoss } from "../nn/moe/moe.js";
import { IGNORE_INDEX } from "../data/documents.js";
import type { Batch } from "../data/batches.js";
import { batchContext, type ObjectiveResult } from "../train/objectives.js";
import type { CheckpointParts } from "../train/trainer.js";
import { loadCheckpointPart } from "../io/checkpoint.js";
import { readJsonFile } from "../io/read.js";
import { Block, blockParts } from "./block.js";
import type { CausalLM, CausalLMOutput, ForwardOptions } from "./causal-lm.js";
import { parseModelConfig, type ModelConfig } from "./config.js";
import type { TransformerLM } from "./transformer.js";

/** DeepSeek-V3's lambda for its first 10T tokens (§4.2; 0.1 for the rest). */
export const MTP_DEFAULT_WEIGHT = 0.3;

/** One depth: hnorm, enorm, the 2d -> d projection M_k, the block TRM_k and the norm before the shared head. */
class MTPDepth extends Module {
  readonly hnorm: RMSNorm;
  readonly enorm: RMSNorm;
  readonly proj: Linear;
  readonly block: Block;
  readonly norm: Norm;
  constructor(c: ModelConfig, dropout: () => RandomGenerator) {
    super();
    this.hnorm = this.child("hnorm", new RMSNorm(c.dModel, c.normEps));
    this.enorm = this.child("enorm", new RMSNorm(c.dModel, c.normEps));
    this.proj = this.child("proj", new Linear(2 * c.dModel, c.dModel, false, { role: "ffn_in" }));
    // the last layer's parts (for a hybrid or MoE config, the block the head reads from)
    this.block = this.child("block", new Block(blockParts(c, c.nLayers - 1, dropout)));
    this.norm = this.child("norm", makeNorm(c.norm, c.dModel, c.normEps, c.bias || c.norm === "layernorm"));
  }
}

/** Checks an MTP depth D and loss weight lambda; `who` names the flag or field in the error. */
export function checkMTPOptions(depth: number, weight: number, who = { depth: "depth", weight: "weight" }): void {
  if (!Number.isSafeInteger(depth) || depth < 1) throw new RangeError(`mtp: ${who.depth} (the number of MTP modules D) must be an integer >= 1, got ${depth}`);
  if (!(Number.isFinite(weight) && weight >= 0)) throw new RangeError(`mtp: ${who.weight} (the MTP loss weight lambda) must be a finite number >= 0, got ${weight}`);
}

/** D MTP modules for a base of this config. Parameters "layers.<k>.{hnorm,enorm,proj,block,norm}.*" (k from 0). */
export class MTPModules extends Module {
  readonly depths: MTPDepth[];

  constructor(readonly config: ModelConfig, readonly depth: number, o: { generator?: RandomGenerator; dropoutGenerator?: () => RandomGenerator } = {}) {
    super();
    checkMTPOptions(depth, 0);
    const dg = o.dropoutGenerator ?? (() => new RandomGenerator(0x5eed));
    this.depths = this.childList("layers", skipInit(() => Array.from({ length: depth }, () => new MTPDepth(config, dg))));
    // drawn by role as TransformerLM.initialize does (a depth is one more layer of the same scheme)
    const c = config, g = o.generator ?? new RandomGenerator(0x3770);
    const ctx = { nLayers: c.nLayers, dModel: c.dModel, dFF: c.dFF, headDim: c.dModel / c.nHeads, nHeads: c.nHeads };
    for (const [, p, role] of this.namedRoles()) initWeight(c.init, role, p, ctx, g);
  }

  /** Throws unless these modules fit `base` (its width, vocabulary and block layout). */
  checkBase(base: { config: ModelConfig }, who = "mtp"): void {
    const a = this.config, b = base.config;
    for (const k of ["vocabSize", "dModel", "nHeads", "dFF", "norm", "ffn", "position", "attention"] as const) {
      if (a[k] !== b[k]) throw new RangeError(`${who}: the MTP modules are for a model with ${k} ${JSON.stringify(a[k])} but this model has ${JSON.stringify(b[k])}; they were trained for another base`);
    }
  }

  /** h^k [B, T, D] of depth k (1-based) from h^{k-1} [B, T, D] and the ids t_{i+k} [B, T] (eqs. 21-22). */
  step(k: number, prev: Tensor, ids: Tensor, base: TransformerLM, ctx = SeqContext.causal()): Tensor {
    const m = this.depths[k - 1];
    const x = ops.cat([m.hnorm.forward(prev), m.enorm.forward(base.tokEmb.forward(ids))], -1);
    return m.block.forward(m.proj.forward(x), ctx);
  }

  /** Depth k's logits (eq. 23) for h^k: the shared head after the depth's norm. */
  logits(k: number, h: Tensor, base: TransformerLM): Tensor {
    return ops.linear(this.depths[k - 1].norm.forward(h), base.lmHead);
  }

  /** One decoding state per depth (its block's KV cache). */
  newStates(capacity: number): DecodingState[] {
    return this.depths.map((m) => m.block.attn.newState(capacity));
  }

  /**
   * The per-depth cross-entropies L^k (eq. 24) of a batch whose main pass gave `hidden` (h^0):
   * ids x [B, T], targets y [B, T] (y[i] = x[i + 1]). Depth k covers positions 0 .. T-k-1: input
   * x[i + k], target y[i + k] = t_{i+k+1}. Depths with no position left are skipped.
   */
  losses(hidden: Tensor, x: Tensor, y: Tensor, base: TransformerLM): Tensor[] {
    const T = x.shape[1], out: Tensor[] = [];
    let h = hidden;
    for (let k = 1; k <= this.depth && k < T; k++) {
      const n = T - k;
      h = this.step(k, ops.narrow(h, 1, 0, n), ops.narrow(x, 1, k, n).contiguous(), base);
      const logits = this.logits(k, h, base);
      out.push(ops.crossEntropy(logits.reshape(-1, logits.shape[2]), ops.narrow(y, 1, k, n).contiguous().reshape(-1), { ignoreIndex: IGNORE_INDEX }));
    }
    return out;
  }
}

/**
 * A TransformerLM trained with MTP modules: decodes as the base (forward and state are the base's);
 * children "model" (the base) and "mtp" (the modules), both trained.
 */
export class MTPLM extends Module implements CausalLM {
  readonly config: { readonly vocabSize: number; readonly maxSeqLen: number };
  readonly model: TransformerLM;
  readonly mtp: MTPModules;
  /** lambda of eq. 25. */
  readonly weight: number;

  constructor(base: TransformerLM, o: { depth: number; weight?: number; generator?: RandomGenerator; mtp?: MTPModules }) {
    super();
    this.weight = o.weight ?? MTP_DEFAULT_WEIGHT;
    checkMTPOptions(o.depth, this.weight);
    this.config = { vocabSize: base.config.vocabSize, maxSeqLen: base.config.maxSeqLen };
    this.model = this.child("model", base);
    const mtp = o.mtp ?? new MTPModules(base.config, o.depth, { generator: o.generator, dropoutGenerator: () => base.dropoutGenerator });
    mtp.checkBase(base);
    if (mtp.depth !== o.depth) throw new RangeError(`mtp: the modules have depth ${mtp.depth} but depth ${o.depth} was asked for`);
    this.mtp = this.child("mtp", mtp);
  }

  get dropoutGenerator(): RandomGenerator { return this.model.dropoutGenerator; }
  forward(ids: Tensor, ctx?: SeqContext, o?: ForwardOptions): CausalLMOutput { return this.model.forward(ids, ctx, o); }
  newState(capacity?: number): DecodingState { return this.model.newState(capacity); }
}

/**
 * The main next-token loss plus lambda / D * sum_k L^k (eq. 25), plus the MoE auxiliary losses of a
 * base with MoE layers; aux logs lm (the main cross-entropy) and mtp<k> (each depth's L^k).
 */
export function mtpObjective(m: MTPLM, batch: Batch): ObjectiveResult {
  if (batch.cuSeqlens) throw new Error("mtp: packed documents are not supported (a depth's input and target would cross into the next document); use padded rows");
  const { x, y } = batch;
  const { logits, hidden } = m.model.forward(x, batchContext(batch));
  const lm = ops.crossEntropy(logits.reshape(-1, logits.shape[2]), y.reshape(-1), { ignoreIndex: IGNORE_INDEX });
  const per = m.mtp.losses(hidden!, x, y, m.model);
  const aux: Record<string, Tensor> = { lm };
  per.forEach((l, k) => { aux[`mtp${k + 1}`] = l; });
  let loss = per.length ? ops.add(lm, ops.mul(per.reduce((a, b) => ops.add(a, b)), m.weight / m.mtp.depth)) : lm;
  const moe = moeAuxLoss(m.model);
  if (moe) { loss = ops.add(loss, moe.loss); Object.assign(aux, moe.aux); }
  return { loss, aux };
}

/** The file of a checkpoint that holds its MTP modules (metadata: depth D and loss weight lambda). */
export const MTP_FILE = "mtp.safetensors";

/** An MTPLM's checkpoint layout: the base in model.safetensors (a checkpoint loads as the plain base), the modules in MTP_FILE. */
export function mtpCheckpointParts(m: MTPLM): CheckpointParts {
  return { model: m.model, files: { [MTP_FILE]: { module: m.mtp, metadata: { depth: String(m.mtp.depth), weight: String(m.weight) } } } };
}

/**
 * The MTP modules of a checkpoint written by a run with MTPLM (mtpCheckpointParts): MTP_FILE, for the
 * base described by its config.json; `who` names the flag in errors.
 */
export async function loadMTPModules(dir: string, who = "mtp"): Promise<{ mtp: MTPModules; weight: number }> {
  const file = path.join(dir, MTP_FILE), cfgFile = path.join(dir, "config.json");
  if (!existsSync(file)) throw new Error(`${who} ${dir}: no ${MTP_FILE}; expected a checkpoint of a run trained with MTP modules (tsformer train --mtp D)`);
  if (!existsSync(cfgFile)) throw new Error(`${who} ${dir}: no config.json beside ${MTP_FILE}; expected the checkpoint's base model config`);
  const config = parseModelConfig(readJsonFile(cfgFile), cfgFile);
  const { state, metadata } = await loadCheckpointPart(dir, MTP_FILE);
  const depth = Number(metadata.depth), weight = Number(metadata.weight);
  checkMTPOptions(depth, weight, { depth: `${file} metadata "depth"`, weight: `${file} metadata "weight"` });
  const mtp = new MTPModules(config, depth);
  try {
    noGrad(() => mtp.loadStateDict(state));
  } catch (e) {
    throw new Error(`${who} ${file}: ${(e as Error).message}`, { cause: e });
  }
  return { mtp, weight };
}
