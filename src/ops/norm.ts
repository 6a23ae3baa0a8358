// Fused normalization ops over the last axis: layer_norm and rms_norm, one kernel each way. A
// createGraph backward uses the same derivative written in differentiable ops (recomputing x̂ from x).

import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import { Tensor } from "../tensor/tensor.js";
import { commonFloat, floatData } from "./util.js";
import { add, mul, sub } from "./binary.js";
import { mean as avg, sum } from "./reduce.js";
import { rsqrt, square } from "./unary.js";
import { reshape } from "./views.js";

function rowsCols(x: Tensor, w: Tensor | null, op: string): [number, number] {
  const cols = x.shape[x.ndim - 1];
  // torch also refuses an empty normalized shape; without this check rows = numel / 0 is NaN
  if (!cols) throw new RangeError(`${op}: the normalized dimension (the last axis of ${fmtShape(x.shape)}) is ${x.ndim ? "0" : "missing"}; expected at least one element`);
  if (w && (w.ndim !== 1 || w.shape[0] !== cols)) throw new RangeError(`${op}: weight ${fmtShape(w.shape)} does not match last axis ${cols} of ${fmtShape(x.shape)}`);
  return [x.numel / cols, cols];
}

export function layerNorm(x: Tensor, weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const dtype = commonFloat("layer_norm", x, ...(weight ? [weight] : []), ...(bias ? [bias] : []));
  const [rows, cols] = rowsCols(x, weight, "layer_norm");
  if (bias) rowsCols(x, bias, "layer_norm");
  const xd = floatData(x, "layer_norm");
  const wd = weight && floatData(weight, "layer_norm");
  const bd = bias && floatData(bias, "layer_norm");
  const out = Tensor.empty(x.shape, dtype), mean = Tensor.empty([rows], dtype), rstd = Tensor.empty([rows], dtype);
  backend().layerNorm(xd, wd, bd, rows, cols, eps, out.data as typeof xd, mean.data as typeof xd, rstd.data as typeof xd);
  return record(out, "layer_norm", [x, weight, bias], (g, { needsInputGrad: [nx, nw, nb], saved: [xs, mu, rs, ws] }) => {
    const gx = Tensor.empty(x.shape, dtype);  // the kernel always writes gx
    const gw = nw ? Tensor.zeros([cols], dtype) : null;
    const gb = nb ? Tensor.zeros([cols], dtype) : null;
    backend().layerNormBackward(floatData(xs, "layer_norm"), ws ? floatData(ws, "layer_norm") : null, floatData(mu, "layer_norm"), floatData(rs, "layer_norm"),
      floatData(g, "layer_norm"), rows, cols, gx.data as typeof xd, gw && (gw.data as typeof xd), gb && (gb.data as typeof xd));
    return [nx ? gx : null, gw, gb];
  }, [x, mean, rstd, ...(weight ? [weight] : [])], (g, { needsInputGrad: [nx, nw, nb], saved: [xs, , , ws] }) => {
    const xc = sub(xs, avg(xs, -1, true));
    const r = rsqrt(add(avg(square(xc), -1, true), eps));
    const h = mul(xc, r);
    const gh = ws ? mul(g, ws) : g;
    // dx = r (gh - mean(gh) - x̂ mean(gh x̂)), gh = g w
    return [
      nx ? mul(r, sub(sub(gh, avg(gh, -1, true)), mul(h, avg(mul(gh, h), -1, true)))) : null,
      nw ? sum(reshape(mul(g, h), [rows, cols]), 0) : null,
      nb ? sum(reshape(g, [rows, cols]), 0) : null,
    ];
  });
}

export function rmsNorm(x: Tensor, weight: Tensor | null = null, eps = 1e-6): Tensor {
  const dtype = commonFloat("rms_norm", x, ...(weight ? [weight] : []));
  const [rows, cols] = rowsCols(x, weight, "rms_norm");
  const xd = floatData(x, "rms_norm");
  const wd = weight && floatData(weight, "rms_norm");
  const out = Tensor.empty(x.shape, dtype), rstd = Tensor.empty([rows], dtype);
  backend().rmsNorm(xd, wd, rows, cols, eps, out.data as typeof xd, rstd.data as typeof xd);
  return record(out, "rms_norm", [x, weight], (g, { needsInputGrad: [nx, nw], saved: [xs, rs, ws] }) => {
    const gx = Tensor.empty(x.shape, dtype);  // the kernel always writes gx
    const gw = nw ? Tensor.zeros([cols], dtype) : null;
    backend().rmsNormBackward(floatData(xs, "rms_norm"), ws ? floatData(ws, "rms_norm") : null, floatData(rs, "rms_norm"), floatData(g, "rms_norm"),
      rows, cols, gx.data as typeof xd, gw && (gw.data as typeof xd));
    return [nx ? gx : null, gw];
  }, [x, rstd, ...(weight ? [weight] : [])], (g, { needsInputGrad: [nx, nw], saved: [xs, , ws] }) => {
    const r = rsqrt(add(avg(square(xs), -1, true), eps));
    const h = mul(xs, r);
    const gh = ws ? mul(g, ws) : g;
    // dx = r (gh - x̂ mean(gh x̂)), gh = g w
    return [
      nx ? mul(r, sub(gh, mul(h, avg(mul(gh, h), -1, true)))) : null,
      nw ? sum(reshape(mul(g, h), [rows, cols]), 0) : null,
    ];
  });
}
