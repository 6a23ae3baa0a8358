// Named initialization schemes. Each rule maps a parameter (by its role) to a distribution.
// In every scheme, embeddings and the LM head draw from N(0, 0.02) (GPT-2 / nanoGPT), which keeps the
// step-0 logits near zero so the initial loss is ~ln(vocab); the schemes differ in the blocks.

import type { RandomGenerator } from "../tensor/rng.js";
import type { Tensor } from "../tensor/tensor.js";
import { normal_, uniform_ } from "./init-fns.js";

export type InitScheme = "nanogpt" | "xavier" | "kaiming" | "deepnorm" | "t5";

/**
 * What a parameter is, as far as initialization cares; declared by the module that creates it
 * (Module.param). "norm" gains and "bias" vectors keep their constructed ones and zeros.
 */
/** ssm: a state-space model's own dynamics (A, D, the step size): initialized by its mixer, never weight-decayed. */
export type Role = "embedding" | "head" | "q" | "k" | "v" | "o" | "ffn_in" | "ffn_out" | "norm" | "bias" | "ssm";

export interface InitContext { nLayers: number; dModel: number; dFF: number; headDim: number; nHeads: number }

const normal = (t: Tensor, std: number, generator: RandomGenerator) => void normal_(t, 0, std, { generator });
const uniform = (t: Tensor, bound: number, generator: RandomGenerator) => void uniform_(t, -bound, bound, { generator });

/** Initialize one parameter of the given role (a weight is [out, in]); draws nothing for norms and biases. */
export function initWeight(scheme: InitScheme, role: Role, w: Tensor, ctx: InitContext, g: RandomGenerator): void {
  if (role === "norm" || role === "bias" || role === "ssm") return;
  if (role === "embedding" || role === "head") return normal(w, 0.02, g);
  const [fanOut, fanIn] = w.shape;
  switch (scheme) {
    case "nanogpt":
      // GPT-2 (Radford et al. 2019, sec. 2.3): residual projections scaled by 1/sqrt(N), N = 2L residual layers.
      return normal(w, role === "o" || role === "ffn_out" ? 0.02 / Math.sqrt(2 * ctx.nLayers) : 0.02, g);
    case "xavier":
      // Glorot & Bengio 2010, eq. 16: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
      return uniform(w, Math.sqrt(6 / (fanIn + fanOut)), g);
    case "kaiming":
      // He et al. 2015, eq. 10: N(0, 2 / fan_in).
      return normal(w, Math.sqrt(2 / fanIn), g);
    case "deepnorm": {
      // DeepNet (Wang et al. 2022), Fig. 2: Xavier normal, gain beta = (8N)^(-1/4) on v, o and the FFN.
      const beta = Math.pow(8 * ctx.nLayers, -0.25);
      const gain = role === "q" || role === "k" ? 1 : beta;
      return normal(w, gain * Math.sqrt(2 / (fanIn + fanOut)), g);
    }
    case "t5": {
      // T5 (Mesh TensorFlow init): the attention logits are not scaled by 1/sqrt(d); instead
      // q ~ N(0, (D * d_kv)^-1), k, v ~ N(0, 1/D), o ~ N(0, 1/(H * d_kv)), FFN in 1/D, out 1/d_ff.
      const std = {
        q: Math.pow(ctx.dModel * ctx.headDim, -0.5), k: Math.pow(ctx.dModel, -0.5), v: Math.pow(ctx.dModel, -0.5),
        o: Math.pow(ctx.nHeads * ctx.headDim, -0.5), ffn_in: Math.pow(ctx.dModel, -0.5), ffn_out: Math.pow(ctx.dFF, -0.5),
      }[role];
      return normal(w, std, g);
    }
  }
}
