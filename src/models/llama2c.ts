// Build a TransformerLM from a llama2.c checkpoint (.bin): Llama layout, interleaved RoPE
// (theta 10000), RMSNorm eps 1e-5, SwiGLU, GQA, classifier shared with the embedding unless the header
// says otherwise — as karpathy/llama2.c run.c computes it; and the way back (toLlama2c).

import { encodeLlama2c, readLlama2cCheckpoint } from "../io/llama2c.js";
import * as ops from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import { llamaConfig } from "./config.js";
import { TransformerLM } from "./transformer.js";

const NAMES: Record<string, string> = {
  attention_norm: "norm1.weight", ffn_norm: "norm2.weight", wq: "attn.wq.weight", wk: "attn.wk.weight",
  wv: "attn.wv.weight", wo: "attn.wo.weight", w1: "mlp.w1.weight", w2: "mlp.w2.weight", w3: "mlp.w3.weight",
};

export async function loadLlama2c(file: string): Promise<TransformerLM> {
  const { config: c, weights } = await readLlama2cCheckpoint(file);
  const model = new TransformerLM(llamaConfig({
    vocabSize: c.vocabSize, dModel: c.dim, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads,
    dFF: c.hiddenDim, maxSeqLen: c.seqLen, normEps: 1e-5, ropeTheta: 10000, tieEmbeddings: c.sharedClassifier,
  }));
  const sd: Record<string, Tensor> = {};
  for (const [name, w] of Object.entries(weights)) {
    const m = /^layers\.(\d+)\.(\w+)$/.exec(name);
    const ours = m ? `blocks.${m[1]}.${NAMES[m[2]]}` : { tok_embeddings: "tok_emb.weight", norm: "norm_f.weight", output: "lm_head.weight" }[name];
    if (!ours) throw new Error(`${file}: unexpected weight ${name}`);
    sd[ours] = ops.tensor(w.data, { shape: w.shape });
  }
  model.loadStateDict(sd);
  return model.eval();
}

/**
 * A TransformerLM as a llama2.c version 0 .bin. run.c computes only one layout (RoPE theta 10000 in
 * interleaved pairs, RMSNorm eps 1e-5, SwiGLU, no biases, pre-norm), so any other config is refused
 * with the fields that differ.
 */
export function toLlama2c(model: TransformerLM): Uint8Array {
  const c = model.config;
  const diff: string[] = [];
  if (c.position !== "rope") diff.push(`position ${c.position} (expected rope)`);
  if (c.ropeTheta !== 10000) diff.push(`ropeTheta ${c.ropeTheta} (expected 10000)`);
  if (c.norm !== "rmsnorm" || c.normEps !== 1e-5) diff.push(`norm ${c.norm} eps ${c.normEps} (expected rmsnorm 1e-5)`);
  if (c.ffn !== "swiglu") diff.push(`ffn ${c.ffn} (expected swiglu)`);
  if (c.bias || c.qkvBias) diff.push("biases (expected none)");
  if (c.normPlacement !== "pre") diff.push(`normPlacement ${c.normPlacement} (expected pre)`);
  if (c.attention !== "flash" && c.attention !== "softmax") diff.push(`attention ${c.attention} (expected softmax attention)`);
  if (diff.length) throw new Error(`this model cannot be written as a llama2.c .bin, whose run.c computes one fixed Llama layout: ${diff.join("; ")}`);
  const ours = Object.fromEntries(Object.entries(NAMES).map(([k, v]) => [v, k]));
  const w: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(model.stateDict())) {
    const m = /^blocks\.(\d+)\.(.+)$/.exec(name);
    const theirs = m ? `layers.${m[1]}.${ours[m[2]!]}` : { "tok_emb.weight": "tok_embeddings", "norm_f.weight": "norm", "lm_head.weight": "output" }[name];
    if (theirs) w[theirs] = t.toTypedArray() as Float32Array;
  }
  return encodeLlama2c({
    dim: c.dModel, hiddenDim: c.dFF, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads ?? c.nHeads,
    vocabSize: c.vocabSize, seqLen: c.maxSeqLen, sharedClassifier: c.tieEmbeddings,
  }, w);
}
