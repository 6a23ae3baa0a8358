// Shared by conv.test.ts and image.test.ts: runs the cases of test/fixtures/conv/ops.safetensors
// (scripts/golden/conv.py: PyTorch's output and the gradients of <v, y>) on every backend, in float32
// (relative error <= 1e-5) and float64 (<= 1e-10).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import * as T from "../../src/index.js";
import * as O from "../../src/ops/index.js";
import { forEachBackend } from "../helpers/backends.js";
import { loadGolden, maxRelError, toTensor } from "../helpers/golden.js";

export const golden = loadGolden(new URL("../fixtures/conv/ops.safetensors", import.meta.url).pathname);

type Args = Record<string, unknown>;
const pair = (v: unknown) => v as number | [number, number];

/** The tsformer call for a fixture case (torch's keyword names mapped to ours). */
function run(op: string, a: Args, x: T.Tensor[]): T.Tensor {
  const conv = { stride: pair(a.stride ?? 1), padding: pair(a.padding ?? 0), dilation: pair(a.dilation ?? 1), groups: (a.groups as number) ?? 1 };
  switch (op) {
    case "conv2d": return O.conv2d(x[0], x[1], x[2] ?? null, conv);
    case "conv_transpose2d": return O.convTranspose2d(x[0], x[1], x[2] ?? null, { ...conv, outputPadding: pair(a.output_padding ?? 0) });
    case "group_norm": return O.groupNorm(x[0], a.num_groups as number, x[1] ?? null, x[2] ?? null, a.eps as number);
    case "upsample_nearest2d": return O.upsampleNearest2d(x[0], pair(a.scale_factor));
    case "upsample_bilinear2d":
      return O.upsampleBilinear2d(x[0], { size: a.size as [number, number] | undefined, scale: a.scale_factor as number | undefined, alignCorners: a.align_corners as boolean });
    case "avg_pool2d": return O.avgPool2d(x[0], pair(a.kernel_size), a.stride === undefined ? null : pair(a.stride), pair(a.padding ?? 0));
    default: throw new Error(`no mapping for ${op}`);
  }
}

export function goldenSuite(title: string, ops: string[]): void {
  forEachBackend(title, () => {
    for (const dtype of ["float32", "float64"] as const) {
      describe(dtype, () => {
        const tol = dtype === "float64" ? 1e-10 : 1e-5;
        for (const c of golden.cases.filter((k) => ops.includes(k.op))) {
          it(c.name, () => {
            const want = (k: string) => golden.tensors[`${c.name}.${k}`].data as Float64Array;
            const xs = c.inputs.map((n) => toTensor(golden.tensors[`${c.name}.${n}`], dtype, true));
            const y = run(c.op, c.args, xs);
            assert.deepEqual(y.shape, golden.tensors[`${c.name}.y`].shape, "output shape");
            const ey = maxRelError(y.toTypedArray(), want("y"));
            assert.ok(ey <= tol, `y: relative error ${ey}`);
            T.sum(T.mul(y, toTensor(golden.tensors[`${c.name}.v`], dtype))).backward();
            c.inputs.forEach((n, i) => {
              const e = maxRelError(xs[i].grad!.toTypedArray(), want(`d${n}`));
              assert.ok(e <= tol, `d${n}: relative error ${e}`);
            });
          });
        }
      });
    }
  });
}
