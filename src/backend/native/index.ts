// The native backend: the js backend with native kernels laid over it. Each native kernel handles
// float32; float64 (gradcheck) and anything not yet native fall through to the js reference twin.

import type { Backend, FloatArray, GemmArgs } from "../backend.js";
import { jsBackend } from "../js/index.js";
import { native } from "./addon.js";
import { nativeGemm } from "./gemm.js";

const f32 = (...xs: (FloatArray | null)[]) => xs.every((x) => x === null || x instanceof Float32Array);

export function makeNativeBackend(): Backend | null {
  if (!native) return null;
  return {
    ...jsBackend,
    name: "native",
    gemm: (g: GemmArgs) => (f32(g.a, g.b, g.c) ? nativeGemm(g as GemmArgs<Float32Array>) : jsBackend.gemm(g)),
  };
}
