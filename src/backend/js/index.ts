// The pure-TypeScript backend: every kernel, in float32 or float64. The reference every other backend
// must agree with.

import type { Backend } from "../backend.js";
import { binary, unary, unaryBackward, where } from "./elementwise.js";
import { cumsum, reduce, stridedCopy } from "./reduce.js";
import { gemm, gemmBf16, gemmGrouped, toBf16 } from "./gemm.js";
import { crossEntropy, crossEntropyBackward, softmax, softmaxBackward } from "./softmax.js";
import { layerNorm, layerNormBackward, rmsNorm, rmsNormBackward } from "./norm.js";
import { adamw, indexAdd, indexSelect } from "./index-ops.js";
import { flashBackward, flashForward } from "./flash.js";
import { col2im, im2col } from "./conv.js";
import { selectiveScan, selectiveScanBackward } from "./scan.js";
import { gemmQuant } from "./quant.js";
import { moeFfn } from "./moe.js";

export const jsBackend: Backend = {
  name: "js",
  unary, unaryBackward, binary, where, reduce, cumsum, stridedCopy, gemm, gemmBf16, gemmGrouped, moeFfn, toBf16,
  softmax, softmaxBackward, crossEntropy, crossEntropyBackward,
  layerNorm, layerNormBackward, rmsNorm, rmsNormBackward, indexSelect, indexAdd, adamw,
  flashForward, flashBackward, im2col, col2im,
  selectiveScan, selectiveScanBackward,
  gemmQuant,
};
