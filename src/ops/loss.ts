// Cross-entropy over [N, C] logits and int32 targets, fused with the softmax (one pass forward, one
// backward, no probability tensor kept).

import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { commonFloat, contiguousData, floatData } from "./util.js";
import { reshape } from "./views.js";

export interface CrossEntropyOptions {
  /** Target value whose rows contribute nothing (default -100, as torch). */
  ignoreIndex?: number;
  /** Label smoothing epsilon in [0, 1). */
  labelSmoothing?: number;
  reduction?: "mean" | "sum" | "none";
}

export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const { ignoreIndex = -100, labelSmoothing = 0, reduction = "mean" } = opts;
  const dtype = commonFloat("cross_entropy", logits);
  if (targets.dtype !== "int32") throw new TypeError(`cross_entropy: targets must be int32, got ${targets.dtype}`);
  if (!(labelSmoothing >= 0 && labelSmoothing < 1)) throw new RangeError(`cross_entropy: labelSmoothing must be in [0, 1), got ${labelSmoothing}`);
  const cols = logits.shape[logits.ndim - 1];
  const rows = logits.numel / cols;
  if (targets.numel !== rows) {
    throw new RangeError(`cross_entropy: ${rows} rows of logits ${fmtShape(logits.shape)} but ${targets.numel} targets ${fmtShape(targets.shape)}`);
  }
  const ld = floatData(logits, "cross_entropy");
  const td = contiguousData(targets) as Int32Array;
  const loss = Tensor.zeros([rows], dtype);
  const lse = Tensor.zeros([rows], dtype);
  backend().crossEntropy(ld, td, rows, cols, ignoreIndex, labelSmoothing, loss.data as typeof ld, lse.data as typeof ld);
  let counted = 0;
  for (let r = 0; r < rows; r++) if (td[r] !== ignoreIndex) counted++;
  // Mean over non-ignored rows (torch: 0/0 = NaN when every row is ignored).
  const scale = reduction === "mean" ? 1 / counted : 1;
  let out: Tensor;
  if (reduction === "none") out = reshape(loss, targets.shape);
  else {
    let s = 0;
    for (let r = 0; r < rows; r++) s += loss.data[r];
    out = Tensor.zeros([], dtype);
    out.data[0] = s * scale;
  }
  return record(out, "cross_entropy", [logits], (g, { saved: [lg, tg, ls] }) => {
    const gRows = reduction === "none" ? floatData(g, "cross_entropy")
      : (Tensor.zeros([rows], dtype).data.fill(g.item() * scale) as typeof ld);
    const gl = Tensor.empty(logits.shape, dtype);
    backend().crossEntropyBackward(floatData(lg, "cross_entropy"), contiguousData(tg) as Int32Array, floatData(ls, "cross_entropy"), gRows, rows, cols,
      ignoreIndex, labelSmoothing, gl.data as typeof ld);
    return [gl];
  }, [logits, targets, lse]);
}
