// groupedLinear: G Linear layers without bias applied to consecutive row ranges of one input, as the
// experts of a mixture-of-experts layer see their tokens once the tokens are sorted by expert
// (MegaBlocks' grouped GEMM, Gale et al. 2023): y[o_g:o_g+1] = x[o_g:o_g+1] W_g^T. One kernel call
// forward, one for the input gradient (g W_g per group) and one for the weight gradients
// (g_g^T x_g per group), instead of a gather, a GEMM and a scatter per expert.

import type { FloatArray } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { needsGrad, record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData } from "./util.js";

/** x [N, in] with rows grouped at offsets (G + 1 values, 0 .. N), weights G tensors [out, in] -> [N, out]. */
export function groupedLinear(x: Tensor, weights: Tensor[], offsets: Int32Array): Tensor {
  const dtype = commonFloat("groupedLinear", x, ...weights);
  const G = weights.length;
  if (G === 0) throw new RangeError("groupedLinear: needs at least one weight");
  const [out, inF] = weights[0].shape;
  if (x.ndim !== 2 || x.shape[1] !== inF || weights.some((w) => w.ndim !== 2 || w.shape[0] !== out || w.shape[1] !== inF)) {
    throw new RangeError(`groupedLinear: input ${fmtShape(x.shape)} and weights ${weights.map((w) => fmtShape(w.shape)).join(", ")} do not fit (every weight [out, in], input [N, in])`);
  }
  const N = x.shape[0];
  if (!(offsets instanceof Int32Array) || offsets.length !== G + 1 || offsets[0] !== 0 || offsets[G] !== N || offsets.some((o, i) => i > 0 && o < offsets[i - 1])) {
    throw new RangeError(`groupedLinear: offsets must be an Int32Array of ${G + 1} non-decreasing values from 0 to ${N}, got [${Array.from(offsets ?? []).join(", ")}]`);
  }
  const xd = floatData(x, "groupedLinear"), wd = weights.map((w) => floatData(w, "groupedLinear"));
  const y = Tensor.empty([N, out], dtype);
  backend().gemmGrouped({ mode: "rows", offsets, m: 0, n: out, k: inF, a: xd, lda: inF, bs: wd, ldb: inF, transB: true, c: y.data as FloatArray, ldc: out });
  // x is saved only for the weight gradients (none when every expert is frozen)
  const wantW = weights.some((w) => w.requiresGrad);
  return record(y, "grouped_linear", [x, ...weights], (g, { needsInputGrad: [nx, ...nw], saved }) => {
    const gd = floatData(g, "groupedLinear");
    const ws = saved.slice(0, G).map((w) => floatData(w, "groupedLinear"));
    let gx: Tensor | null = null;
    if (nx) {
      gx = Tensor.empty([N, inF], dtype);
      backend().gemmGrouped({ mode: "rows", offsets, m: 0, n: inF, k: out, a: gd, lda: out, bs: ws, ldb: inF, transB: false, c: gx.data as FloatArray, ldc: inF });
    }
    const gw = nw.map((need) => (need ? Tensor.empty([out, inF], dtype) : null));
    if (nw.some(Boolean)) {
      // a frozen expert's product is still computed (one call for all), into a scratch tensor
      const cs = gw.map((t) => (t ?? Tensor.empty([out, inF], dtype)).data as FloatArray);
      backend().gemmGrouped({ mode: "k", offsets, m: out, n: inF, k: 0, a: gd, lda: out, b: floatData(saved[G], "groupedLinear"), ldb: inF, transB: false, cs, ldc: inF });
    }
    return [gx, ...gw];
  }, wantW ? [...weights, x] : weights);
}

/**
 * Inference only (no graph): a mixture-of-experts layer's experts in one fused kernel (Backend.moeFfn):
 * y[t] = sum over the slots s of token t of gates[s] * FFN_e(s)(x[t]), FFN_e(v) = W2_e (act(W1_e v)
 * [* W3_e v]) (W3: the gated form, SwiGLU with act = silu). Slots come sorted by expert (offsets, E + 1
 * values) with their token rows and gates. The products are those of groupedLinear; fused, a decoding
 * step pays one call instead of a dozen small ops.
 */
export function moeFfn(x: Tensor, slots: { tokens: Int32Array; offsets: Int32Array; gates: Float32Array }, w: { w1: Tensor[]; w2: Tensor[]; w3?: Tensor[] }, act: "silu" | "gelu_erf" | "gelu_tanh"): Tensor {
  const all = [...w.w1, ...w.w2, ...(w.w3 ?? [])];
  if (needsGrad([x, ...all])) throw new Error("moeFfn: inference only (call it under noGrad, or use groupedLinear to train)");
  const dtype = commonFloat("moeFfn", x, ...all);
  const E = w.w1.length, [f, d] = w.w1[0]?.shape ?? [0, 0];
  const fits = (ws: Tensor[] | undefined, shape: number[]) => !ws || (ws.length === E && ws.every((t) => t.ndim === 2 && t.shape[0] === shape[0] && t.shape[1] === shape[1]));
  if (E === 0 || x.ndim !== 2 || x.shape[1] !== d || !fits(w.w1, [f, d]) || !fits(w.w3, [f, d]) || !fits(w.w2, [d, f])) {
    throw new RangeError(`moeFfn: input ${fmtShape(x.shape)} and ${E} experts do not fit (input [N, d], W1 and W3 [f, d], W2 [d, f] for every expert)`);
  }
  const { tokens, offsets } = slots, S = tokens.length;
  if (offsets.length !== E + 1 || offsets[0] !== 0 || offsets[E] !== S || offsets.some((o, i) => i > 0 && o < offsets[i - 1]) || slots.gates.length !== S || tokens.some((t) => !(t >= 0 && t < x.shape[0]))) {
    throw new RangeError(`moeFfn: slots must be ${E + 1} non-decreasing offsets from 0 to the slot count, with a token row in [0, ${x.shape[0]}) and a gate per slot`);
  }
  const y = Tensor.zeros([x.shape[0], d], dtype);
  const data = (ws: Tensor[]) => ws.map((t) => floatData(t, "moeFfn"));
  const gates = dtype === "float32" ? slots.gates : Float64Array.from(slots.gates);
  backend().moeFfn({ x: floatData(x, "moeFfn"), y: y.data as FloatArray, d, f, tokens, offsets, gates, w1: data(w.w1), w3: w.w3 ? data(w.w3) : null, w2: data(w.w2), act });
  return y;
}
