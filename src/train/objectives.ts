// Training objectives: a function of (model, batch) returning the loss to minimize plus named auxiliary
// terms (e.g. an MoE load-balancing loss, an MTP head's loss) that the trainer logs in metrics.jsonl.

import type { Batch } from "../data/batches.js";
import { IGNORE_INDEX } from "../data/documents.js";
import type { CausalLM } from "../models/causal-lm.js";
import type { Module } from "../nn/module.js";
import { moeAuxLoss } from "../nn/moe/moe.js";
import { SeqContext } from "../nn/seq-context.js";
import { add } from "../ops/binary.js";
import { crossEntropy } from "../ops/loss.js";
import type { Tensor } from "../tensor/tensor.js";

export interface ObjectiveResult {
  /** Scalar to minimize. */
  loss: Tensor;
  /** Logged terms (mean over micro-batches), already included in loss if they are part of it. */
  aux?: Record<string, Tensor | number>;
}

export type Objective<M extends Module = CausalLM> = (model: M, batch: Batch) => ObjectiveResult;

/** The context of a batch: packed documents (cuSeqlens, positions per document) or plain causal. */
export function batchContext(batch: Batch): SeqContext | undefined {
  const { cuSeqlens, positions } = batch;
  return cuSeqlens || positions ? new SeqContext({ cuSeqlens, positions }) : undefined;
}

/** Mean cross-entropy of the next-token prediction over the real targets (padding's, IGNORE_INDEX,
 * are not counted), plus the weighted MoE auxiliary losses of a
 * model with MoE layers in training mode (then aux logs lm, the cross-entropy alone). */
export const lmObjective: Objective = (model, batch) => {
  const { x, y } = batch;
  const { logits } = model.forward(x, batchContext(batch));
  const V = logits.shape[logits.ndim - 1];
  const lm = crossEntropy(logits.reshape(-1, V), y.reshape(-1), { ignoreIndex: IGNORE_INDEX });
  const moe = moeAuxLoss(model);
  return moe ? { loss: add(lm, moe.loss), aux: { lm, ...moe.aux } } : { loss: lm };
};
