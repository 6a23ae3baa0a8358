// groupedLinear: G Linear layers without bias applied to consecutive row ranges of one input, as the
// experts of a mixture-of-experts layer see their tokens once the tokens are sorted by expert
// (MegaBlocks' grouped GEMM, Gale et al. 2023): y[o_g:o_g+1] = x[o_g:o_g+1] W_g^T. One kernel call
// forward, one for the input gradient (g W_g per group) and one for the weight gradients
// (g_g^T x_g per group), instead of a gather, a GEMM and a scatter per expert.

import type { FloatArray } from "../backend/backend.js";
import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
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
