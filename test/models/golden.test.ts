// Whole TransformerLM against PyTorch (scripts/golden/models.py, float64 reference from float32
// parameters): logits, loss and every parameter's gradient, on every backend, <= 1e-4 relative.
// Cases cover GPT-2 (learned positions, LayerNorm, GELU, biases, tied/untied, MHA/MQA), Llama (RoPE,
// RMSNorm, SwiGLU, GQA, tied/untied), post-LN, sandwich-LN, DeepNorm and T5's unscaled attention.

import { it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../../src/index.js";
import { TransformerLM } from "../../src/models/transformer.js";
import { parseModelConfig } from "../../src/models/config.js";
import { loadGolden, maxRelError, toTensor } from "../helpers/golden.js";
import { forEachBackend } from "../helpers/backends.js";

interface ModelCase { name: string; config: Record<string, unknown>; batch: number; seq: number }

const golden = loadGolden(new URL("../fixtures/models.safetensors", import.meta.url).pathname);
const cases = golden.cases as unknown as ModelCase[];
const TOL = 1e-4;

/** Fixture tensor names under `<case>.<kind>.` with the prefix stripped, sorted. */
function namesOf(c: string, kind: "param" | "grad"): string[] {
  const prefix = `${c}.${kind}.`;
  return Object.keys(golden.tensors).filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length)).sort();
}

const maxAbs = (a: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

forEachBackend("TransformerLM vs PyTorch golden fixtures", () => {
  for (const c of cases) {
    it(c.name, () => {
      const cfg = parseModelConfig(c.config, `fixture ${c.name} config`);
      const V = cfg.vocabSize;
      const model = new TransformerLM(cfg, { generator: new T.RandomGenerator(0) });

      // Same parameter names as PyTorch (a tied lm_head has no entry of its own).
      const want = namesOf(c.name, "param");
      const got = [...new Set([...model.namedParameters()].map(([n]) => n))].sort();
      const missing = want.filter((n) => !got.includes(n));
      const extra = got.filter((n) => !want.includes(n));
      assert.ok(missing.length === 0 && extra.length === 0,
        `${c.name}: parameter names differ from PyTorch; missing in TS: [${missing.join(", ")}]; extra in TS: [${extra.join(", ")}]`);

      const sd: Record<string, T.Tensor> = {};
      for (const n of want) sd[n] = toTensor(golden.tensors[`${c.name}.param.${n}`]);
      model.loadStateDict(sd);

      const ids = toTensor(golden.tensors[`${c.name}.ids`]);
      const targets = toTensor(golden.tensors[`${c.name}.targets`]);
      const { logits } = model.forward(ids);
      const wantLogits = golden.tensors[`${c.name}.logits`];
      assert.deepEqual(logits.shape, wantLogits.shape, `${c.name} logits shape`);

      const failures: string[] = [];
      const check = (what: string, g: ArrayLike<number>, w: ArrayLike<number>) => {
        const err = maxRelError(g, w);
        if (!(err <= TOL)) failures.push(`${what}: relative error ${err.toExponential(3)}`);
      };
      check("logits", logits.toTypedArray(), wantLogits.data as Float64Array);

      const loss = T.crossEntropy(logits.reshape(-1, V), targets.reshape(-1));
      check("loss", loss.toTypedArray(), golden.tensors[`${c.name}.loss`].data as Float64Array);
      loss.backward();

      // Largest reference gradient of the case: the yardstick for gradients that are exactly zero in
      // exact arithmetic (attn.wk.bias: softmax ignores a per-row shift), where only roundoff is left.
      const grads = namesOf(c.name, "grad");
      const scale = Math.max(...grads.map((n) => maxAbs(golden.tensors[`${c.name}.grad.${n}`].data as Float64Array)));
      const params = new Map(model.namedParameters());
      for (const n of grads) {
        const p = params.get(n)!;
        const w = golden.tensors[`${c.name}.grad.${n}`];
        if (!p.grad) { failures.push(`grad ${n}: missing (null)`); continue; }
        if (!p.grad.shape.every((d, i) => d === w.shape[i]) || p.grad.shape.length !== w.shape.length) {
          failures.push(`grad ${n}: shape [${p.grad.shape}] but PyTorch has [${w.shape}]`);
          continue;
        }
        const g = p.grad.toTypedArray();
        const wd = w.data as Float64Array;
        if (maxAbs(wd) <= 1e-12 * scale) {
          const m = maxAbs(g);
          if (!(m <= 1e-5 * scale)) failures.push(`grad ${n}: should be ~0 (max|want| ${maxAbs(wd).toExponential(2)}), max|got| ${m.toExponential(3)}`);
        } else {
          check(`grad ${n}`, g, wd);
        }
      }
      assert.ok(failures.length === 0, `${c.name}: ${failures.length} tensor(s) differ from PyTorch (tol ${TOL}):\n  ${failures.join("\n  ")}`);
    });
  }
});
