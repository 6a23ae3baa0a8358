// Every op against PyTorch (float64 reference from float32 inputs), forward and gradients, on every
// backend. Tolerance: 1e-5 relative (DESIGN.md), exact for integer/indexing outputs.

import { it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { loadGolden, maxRelError, runCase, toTensor } from "../helpers/golden.js";
import { forEachBackend } from "../helpers/backends.js";

const golden = loadGolden(new URL("../fixtures/ops.safetensors", import.meta.url).pathname);
const TOL = 1e-5;

forEachBackend("ops vs PyTorch golden fixtures", () => {
  for (const c of golden.cases) {
      it(c.name, () => {
        const xs = c.inputs.map((_, i) => toTensor(golden.tensors[`${c.name}.in${i}`], "float32", true));
        const outs = runCase(c, xs);
        assert.equal(outs.length, c.outputs);
        outs.forEach((o, j) => {
          const want = golden.tensors[`${c.name}.out${j}`];
          assert.deepEqual(o.shape, want.shape, `${c.name} out${j} shape`);
          const err = maxRelError(o.toTypedArray(), want.data as Float64Array);
          assert.ok(err <= TOL, `${c.name} out${j}: relative error ${err}`);
        });
        const live = outs.filter((o) => o.requiresGrad);
        if (live.length === 0) return;
        const loss = live.map((o, j) => T.sum(T.mul(o, toTensor(golden.tensors[`${c.name}.gout${j}`]))))
          .reduce((p, q) => T.add(p, q));
        loss.backward();
        xs.forEach((x, i) => {
          const want = golden.tensors[`${c.name}.grad${i}`];
          if (!want) return;
          assert.ok(x.grad, `${c.name} grad${i} missing`);
          assert.deepEqual(x.grad.shape, want.shape, `${c.name} grad${i} shape`);
          const err = maxRelError(x.grad.toTypedArray(), want.data as Float64Array);
          assert.ok(err <= TOL, `${c.name} grad${i}: relative error ${err}`);
        });
      });
  }
});
