// extractLora: the truncated SVD against numpy's singular values (golden), its Eckart-Young optimality,
// and an adapter extracted from a fine-tune's delta that reproduces the fine-tune.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import { loadLlama2c } from "../../src/models/llama2c.js";
import { extractLora, truncatedSvd } from "../../src/peft/extract.js";
import * as T from "../../src/index.js";

const golden = JSON.parse(readFileSync(path.join(import.meta.dirname, "..", "fixtures", "svd.json"), "utf8")) as { cases: { m: number; n: number; a: number[]; s: number[] }[] };

describe("truncatedSvd", () => {
  for (const c of golden.cases) {
    test(`${c.m}x${c.n}: singular values = numpy's (<= 1e-9 relative); U, V orthonormal; A = U S V^T`, () => {
      const a = Float64Array.from(c.a), k = Math.min(c.m, c.n);
      const { U, s, V } = truncatedSvd(a, c.m, c.n, k);
      for (let i = 0; i < k; i++) assert.ok(Math.abs(s[i]! - c.s[i]!) <= 1e-9 * c.s[0]!, `s[${i}] ${s[i]} vs ${c.s[i]}`);
      for (const [M, rows] of [[U, c.m], [V, c.n]] as const) {
        for (let p = 0; p < k; p++) {
          for (let q = 0; q < k; q++) {
            if (s[p]! < 1e-6 * s[0]! || s[q]! < 1e-6 * s[0]!) continue;
            let dot = 0;
            for (let i = 0; i < rows; i++) dot += M[i * k + p]! * M[i * k + q]!;
            // the Gram matrix squares the condition number: vectors of tiny singular values are less exact
            assert.ok(Math.abs(dot - (p === q ? 1 : 0)) < 1e-6, `orthonormal ${p},${q}: ${dot}`);
          }
        }
      }
      let worst = 0;
      for (let i = 0; i < c.m; i++) for (let j = 0; j < c.n; j++) {
        let x = 0;
        for (let t = 0; t < k; t++) x += U[i * k + t]! * s[t]! * V[j * k + t]!;
        worst = Math.max(worst, Math.abs(x - a[i * c.n + j]!));
      }
      assert.ok(worst < 1e-9, `reconstruction ${worst}`);
      // Eckart-Young: the rank-2 error is the energy of the discarded singular values
      const r2 = truncatedSvd(a, c.m, c.n, 2);
      let e = 0;
      for (let i = 0; i < c.m; i++) for (let j = 0; j < c.n; j++) {
        let x = 0;
        for (let t = 0; t < 2; t++) x += r2.U[i * 2 + t]! * r2.s[t]! * r2.V[j * 2 + t]!;
        e += (x - a[i * c.n + j]!) ** 2;
      }
      const discarded = c.s.slice(2).reduce((acc, v) => acc + v * v, 0);
      assert.ok(Math.abs(e - discarded) <= 1e-9 * Math.max(discarded, 1), `${e} vs ${discarded}`);
    });
  }
});

describe("extractLora", () => {
  test("a rank-3 fine-tune of wq / wv is recovered exactly at r = 3 and approximated at r = 1", async () => {
    const file = path.join(import.meta.dirname, "..", "..", "data", "stories260K.bin");
    const base = await loadLlama2c(file), tuned = await loadLlama2c(file);
    // tuned = base + a rank-3 delta on every wq and wv
    T.noGrad(() => {
      for (const [n, p] of tuned.namedParameters()) {
        if (!/attn\.w[qv]\.weight$/.test(n)) continue;
        const [m, k] = p.shape as [number, number], d = p.data as Float32Array;
        for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) d[i * k + j]! += 0.05 * (Math.sin(i + 2 * j) + Math.cos(3 * i) * Math.sin(j));  // rank 2 + rank 1
      }
    });
    const ids = T.tensor(Int32Array.from([1, 403, 407, 261, 378, 30, 12]), { shape: [1, 7] });
    const want = tuned.forward(ids).logits.toTypedArray();
    const one = extractLora(await loadLlama2c(file), tuned, { r: 1, targetModules: ["wq", "wv"] });
    assert.ok(one.relError > 0.01, `rank 1 leaves an error: ${one.relError}`);
    const r = extractLora(base, tuned, { r: 3, targetModules: ["wq", "wv"] });
    assert.equal(r.layers.length, 10);
    assert.ok(r.relError < 1e-5, `rank 3: ${r.relError}`);
    const got = base.forward(ids).logits.toTypedArray();
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    assert.ok(worst < 1e-4, `logits of base + extracted adapter vs the fine-tune: ${worst}`);
  });
});
