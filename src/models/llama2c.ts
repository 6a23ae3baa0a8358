// Build a TransformerLM from a llama2.c checkpoint (.bin): Llama layout, interleaved RoPE
// (theta 10000), RMSNorm eps 1e-5, SwiGLU, GQA, classifier shared with the embedding unless the header
// says otherwise — as karpathy/llama2.c run.c computes it.

import { readLlama2cCheckpoint } from "../io/llama2c.js";
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
