// Medusa heads (Cai et al. 2024, "Medusa: Simple LLM Inference Acceleration Framework with Multiple
// Decoding Heads", sec. 2.1.1): K extra heads on the base's last hidden state h_t; head k predicts the
// token at t + k + 1 as softmax(W2_k (SiLU(W1_k h_t + b1_k) + h_t)). As the reference implementation
// (FasterDecoding/Medusa, medusa/model/medusa_model.py: ResBlock, MedusaModel) W1 starts at zero, so a
// fresh head is the base's own LM head applied to h_t, and W2 starts as a copy of the base's LM head.
// Medusa-1 (sec. 2.2.1) trains the heads alone on a frozen base with L = sum_k lambda_k CE_k,
// lambda_k = 0.8^k (k = 1..K, the paper's choice; the reference's medusa_decay_coefficient^i with
// i from 0 differs by a constant factor 0.8).
// Files: the reference's layout, medusa_lm_head.safetensors with "<k>.0.linear.weight",
// "<k>.0.linear.bias" and "<k>.1.weight" (head k from 0), and its config fields (medusa_num_heads,
// medusa_num_layers, base_model_name_or_path) in medusa_config.json (a checkpoint's config.json is the
// base's model config), plus hidden_size / vocab_size for the checks on load.

import * as path from "node:path";
import { existsSync } from "node:fs";
import * as ops from "../ops/index.js";
import { noGrad } from "../tensor/autograd.js";
import type { Tensor } from "../tensor/tensor.js";
import type { RandomGenerator } from "../tensor/rng.js";
import { Module } from "../nn/module.js";
import { Linear, skipInit } from "../nn/layers.js";
import type { DecodingState, SeqContext } from "../nn/seq-context.js";
import type { CausalLM, CausalLMOutput, ForwardOptions } from "../models/causal-lm.js";
import type { TransformerLM } from "../models/transformer.js";
import { IGNORE_INDEX } from "../data/documents.js";
import type { Batch } from "../data/batches.js";
import type { ObjectiveResult } from "../train/objectives.js";
import { encodeSafetensors, readSafetensors, type SafeTensor } from "../io/safetensors.js";
import { readJsonFile } from "../io/read.js";

export const MEDUSA_WEIGHTS = "medusa_lm_head.safetensors";
export const MEDUSA_CONFIG = "medusa_config.json";
/** lambda_k = MEDUSA_DECAY^k (Cai et al. 2024, sec. 2.2.1). */
export const MEDUSA_DECAY = 0.8;

/** h + SiLU(W h + b), W zero-initialised (the reference's ResBlock). */
class ResBlock extends Module {
  readonly linear: Linear;
  constructor(d: number) {
    super();
    this.linear = this.child("linear", skipInit(() => new Linear(d, d, true)));
  }
  forward(h: Tensor): Tensor {
    return ops.add(h, ops.silu(this.linear.forward(h)));
  }
}

/** One head: "0" the ResBlock, "1" the vocabulary projection (nn.Sequential's names in the reference). */
class MedusaHead extends Module {
  readonly block: ResBlock;
  readonly out: Linear;
  constructor(d: number, vocab: number) {
    super();
    this.block = this.child("0", new ResBlock(d));
    this.out = this.child("1", skipInit(() => new Linear(d, vocab, false)));
  }
  forward(h: Tensor): Tensor {
    return this.out.forward(this.block.forward(h));
  }
}

/** K Medusa heads over hidden states of width dModel. Parameters "<k>.0.linear.{weight,bias}", "<k>.1.weight". */
export class MedusaHeads extends Module {
  readonly heads: MedusaHead[];

  /** lmHead: [vocab, dModel], copied into every head's projection (zeros without it). */
  constructor(readonly numHeads: number, readonly dModel: number, readonly vocabSize: number, lmHead?: Tensor) {
    super();
    if (!Number.isSafeInteger(numHeads) || numHeads < 1) throw new RangeError(`medusa: heads must be an integer >= 1, got ${numHeads}`);
    this.heads = Array.from({ length: numHeads }, (_, k) => this.child(String(k), new MedusaHead(dModel, vocabSize)));
    if (lmHead) {
      const w = lmHead.toTypedArray() as Float32Array;
      for (const h of this.heads) (h.out.weight.data as Float32Array).set(w);
    }
  }

  /** Head k's (0-based) logits for hidden states [..., D]: its prediction of the token k + 2 places on. */
  head(k: number, hidden: Tensor): Tensor {
    return this.heads[k].forward(hidden);
  }
}

/**
 * Medusa-1 training: a CausalLM that decodes as the frozen base (its forward is the base's) and owns
 * the heads (its only parameters; the base is not a child, so its state dict is the heads').
 */
export class MedusaLM extends Module implements CausalLM {
  readonly config: { readonly vocabSize: number; readonly maxSeqLen: number };
  readonly medusa: MedusaHeads;

  constructor(readonly base: TransformerLM, o: { heads?: number } = {}) {
    super();
    const c = base.config;
    this.config = { vocabSize: c.vocabSize, maxSeqLen: c.maxSeqLen };
    this.medusa = this.child("medusa_head", new MedusaHeads(o.heads ?? 4, c.dModel, c.vocabSize, base.lmHead));
  }

  get dropoutGenerator(): RandomGenerator { return this.base.dropoutGenerator; }

  override train(on = true): this {
    super.train(on);
    this.base.train(on);
    return this;
  }

  forward(ids: Tensor, ctx?: SeqContext, o?: ForwardOptions): CausalLMOutput { return this.base.forward(ids, ctx, o); }
  newState(capacity?: number): DecodingState { return this.base.newState(capacity); }
}

/**
 * Medusa-1's loss: sum_k 0.8^k CE(head k at t, token t + k + 1) (k = 1..K) on the frozen base's hidden
 * states (computed without a graph); aux logs each head's cross-entropy as medusa<k>.
 */
export function medusaObjective(model: MedusaLM, batch: Batch): ObjectiveResult {
  const { x, y } = batch;
  if (batch.cuSeqlens) throw new Error("medusa: packed documents are not supported (a head's target would cross into the next document)");
  const [, T] = x.shape;
  const hidden = noGrad(() => model.base.forward(x, undefined, { logitRows: Int32Array.of(T - 1) }).hidden!);
  const aux: Record<string, Tensor> = {};
  let loss: Tensor | null = null;
  for (let k = 1; k <= model.medusa.numHeads && k < T; k++) {
    // y[t] = x[t + 1], so token t + k + 1 is y[t + k]
    const logits = model.medusa.head(k - 1, ops.narrow(hidden, 1, 0, T - k));
    const ce = ops.crossEntropy(logits.reshape(-1, logits.shape[2]), ops.narrow(y, 1, k, T - k).contiguous().reshape(-1), { ignoreIndex: IGNORE_INDEX });
    aux[`medusa${k}`] = ce;
    const term = ops.mul(ce, MEDUSA_DECAY ** k);
    loss = loss ? ops.add(loss, term) : term;
  }
  if (!loss) throw new Error(`medusa: sequences of ${T} tokens leave no target for any head`);
  return { loss, aux };
}

/** medusa_config.json and medusa_lm_head.safetensors for these heads. */
export function medusaFiles(m: MedusaHeads, baseModel: string | null = null): Record<string, unknown> {
  const tensors: Record<string, SafeTensor> = {};
  for (const [n, t] of Object.entries(m.stateDict())) tensors[n] = { dtype: "F32", shape: [...t.shape], data: Float32Array.from(t.toTypedArray() as Float32Array) };
  return {
    [MEDUSA_CONFIG]: { medusa_num_heads: m.numHeads, medusa_num_layers: 1, base_model_name_or_path: baseModel, hidden_size: m.dModel, vocab_size: m.vocabSize },
    [MEDUSA_WEIGHTS]: encodeSafetensors(tensors, { format: "pt" }, MEDUSA_WEIGHTS),
  };
}

/**
 * Reads heads saved by medusaFiles (a directory, or its medusa_lm_head.safetensors) for a base of this
 * width and vocabulary; every mismatch is one error naming the file and the field.
 */
export async function loadMedusaHeads(file: string, base: { dModel: number; vocabSize: number }): Promise<MedusaHeads> {
  const dir = file.endsWith(".safetensors") ? path.dirname(file) : file;
  const weights = file.endsWith(".safetensors") ? file : path.join(dir, MEDUSA_WEIGHTS);
  if (!existsSync(weights)) throw new Error(`medusa ${file}: no ${MEDUSA_WEIGHTS}; expected a finetune --method medusa checkpoint`);
  const st = await readSafetensors(weights);
  const cfgFile = path.join(dir, MEDUSA_CONFIG);
  const cfg = existsSync(cfgFile) ? readJsonFile(cfgFile) as Record<string, unknown> : {};
  if (cfg.medusa_num_layers !== undefined && cfg.medusa_num_layers !== 1) throw new Error(`medusa ${cfgFile}: medusa_num_layers is ${JSON.stringify(cfg.medusa_num_layers)}; only 1 ResBlock per head is supported`);
  const K = Object.keys(st.tensors).filter((n) => /^\d+\.1\.weight$/.test(n)).length;
  if (cfg.medusa_num_heads !== undefined && cfg.medusa_num_heads !== K) throw new Error(`medusa ${cfgFile}: medusa_num_heads is ${JSON.stringify(cfg.medusa_num_heads)} but ${MEDUSA_WEIGHTS} holds ${K} heads`);
  if (K < 1) throw new Error(`medusa ${weights}: no "<k>.1.weight" tensors; expected the medusa_lm_head layout`);
  const w = st.tensors["0.1.weight"];
  if (!w || w.shape.length !== 2 || w.shape[0] !== base.vocabSize || w.shape[1] !== base.dModel) {
    throw new Error(`medusa ${weights}: the heads are [vocab ${w?.shape[0]}, hidden ${w?.shape[1]}] but the model has vocabSize ${base.vocabSize} and dModel ${base.dModel}; the heads were trained for another base`);
  }
  const heads = new MedusaHeads(K, base.dModel, base.vocabSize);
  const sd: Record<string, Tensor> = {};
  for (const [n, t] of Object.entries(st.tensors)) {
    if (t.dtype !== "F32") throw new Error(`medusa ${weights}: ${n} is ${t.dtype}; expected F32`);
    sd[n] = ops.tensor(t.data as Float32Array, { shape: t.shape });
  }
  try {
    noGrad(() => heads.loadStateDict(sd));
  } catch (e) {
    throw new Error(`medusa ${weights}: ${(e as Error).message}`, { cause: e });
  }
  heads.requiresGrad_(false);
  return heads;
}
