// Fused normalization ops over the last axis: layer_norm and rms_norm, one kernel each way.

import { backend } from "../backend/registry.js";
import { record } from "../tensor/autograd.js";
import { fmtShape } from "../tensor/shape.js";
import type { Tensor } from "../tensor/tensor.js";
import { commonFloat, empty, floatData, output } from "./util.js";

function rowsCols(x: Tensor, w: Tensor | null, op: string): [number, number] {
  const cols = x.shape[x.ndim - 1];
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
  const out = output(x.shape, dtype), mean = output([rows], dtype), rstd = output([rows], dtype);
  backend().layerNorm(xd, wd, bd, rows, cols, eps, out.data as typeof xd, mean.data as typeof xd, rstd.data as typeof xd);
  return record(out, "layer_norm", [x, weight, bias], (g) => {
    const gx = output(x.shape, dtype);
    const gw = weight ? empty([cols], dtype) : null;
    const gb = bias ? empty([cols], dtype) : null;
    backend().layerNormBackward(xd, wd, mean.data as typeof xd, rstd.data as typeof xd, floatData(g, "layer_norm"), rows, cols,
      gx.data as typeof xd, gw && (gw.data as typeof xd), gb && (gb.data as typeof xd));
    return [gx, gw, gb];
  }, [x, mean, rstd]);
}

export function rmsNorm(x: Tensor, weight: Tensor | null = null, eps = 1e-6): Tensor {
  const dtype = commonFloat("rms_norm", x, ...(weight ? [weight] : []));
  const [rows, cols] = rowsCols(x, weight, "rms_norm");
  const xd = floatData(x, "rms_norm");
  const wd = weight && floatData(weight, "rms_norm");
  const out = output(x.shape, dtype), rstd = output([rows], dtype);
  backend().rmsNorm(xd, wd, rows, cols, eps, out.data as typeof xd, rstd.data as typeof xd);
  return record(out, "rms_norm", [x, weight], (g) => {
    const gx = output(x.shape, dtype);
    const gw = weight ? empty([cols], dtype) : null;
    backend().rmsNormBackward(xd, wd, rstd.data as typeof xd, floatData(g, "rms_norm"), rows, cols, gx.data as typeof xd, gw && (gw.data as typeof xd));
    return [gx, gw];
  }, [x, rstd]);
}
