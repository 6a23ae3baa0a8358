// 16-bit float conversions (tensor/half.ts) against IEEE 754 binary16 / bfloat16 definitions: exact
// known encodings, round-to-nearest-even at the halfway points, every bit pattern round-tripping.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { loadHFModel, saveHFModel } from "../src/models/hf/index.js";
import * as T from "../src/index.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../src/backend/js/half.js";

const f16 = (x: number) => f32ToF16(Float32Array.of(x))[0];
const bf16 = (x: number) => f32ToBf16(Float32Array.of(x))[0];

describe("float16", () => {
  test("known encodings (IEEE 754 binary16)", () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [-2, 0xc000], [0.5, 0x3800], [65504, 0x7bff], [2 ** -14, 0x0400], [2 ** -24, 0x0001],
      [0, 0x0000], [-0, 0x8000], [Infinity, 0x7c00], [-Infinity, 0xfc00], [1e6, 0x7c00], [2 ** -26, 0x0000],
      [1 + 2 ** -11, 0x3c00], // halfway between 1 and 1 + 2^-10: to even (1)
      [1 + 3 * 2 ** -11, 0x3c02], // halfway between 1 + 2^-10 and 1 + 2^-9: to even
      [65520, 0x7c00], // halfway between the largest finite and the next binade: rounds to Infinity
      [3 * 2 ** -25, 0x0002], // subnormal halfway (1.5 ulp): to even
    ];
    for (const [x, bits] of cases) assert.equal(f16(x), bits, `${x}`);
    assert.ok(Number.isNaN(f16ToF32(Uint16Array.of(f16(NaN)))[0]));
  });
  test("every binary16 bit pattern widens exactly and narrows back to itself", () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const wide = f16ToF32(all), back = f32ToF16(wide);
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(wide[i])) assert.ok((back[i]! & 0x7c00) === 0x7c00 && (back[i]! & 0x3ff) !== 0);
      else assert.equal(back[i], i, `0x${i.toString(16)}`);
    }
    assert.equal(f16ToF32(Uint16Array.of(0x3555))[0], 0.333251953125); // binary16's 1/3
  });
});

describe("bfloat16", () => {
  test("known encodings: the top half of the float32, rounded to nearest even", () => {
    assert.equal(bf16(1), 0x3f80);
    assert.equal(bf16(-2), 0xc000);
    assert.equal(bf16(1 + 2 ** -8), 0x3f80); // halfway: to even
    assert.equal(bf16(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(bf16(3.4e38), 0x7f80); // past the largest bf16: Infinity
    assert.ok((bf16(NaN) & 0x7f80) === 0x7f80 && (bf16(NaN) & 0x7f) !== 0);
  });
  test("every bf16 bit pattern widens exactly and narrows back to itself", () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const back = f32ToBf16(bf16ToF32(all));
    for (let i = 0; i < 65536; i++) {
      const nan = (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
      if (!nan) assert.equal(back[i], i, `0x${i.toString(16)}`);
    }
  });
});

describe("an HF model in float16", () => {
  test("saved as float16 (torch_dtype float16), it loads back with the logits of its float32 source within binary16 rounding", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "tsformer-f16-"));
    try {
      const src = await loadHFModel(path.join(import.meta.dirname, "fixtures", "hf", "qwen2"));
      saveHFModel(src.model, path.join(dir, "m"), { arch: src.hf.arch, dtype: "float16", baseConfig: src.hf.raw });
      assert.equal((JSON.parse(readFileSync(path.join(dir, "m", "config.json"), "utf8")) as { torch_dtype: string }).torch_dtype, "float16");
      const back = await loadHFModel(path.join(dir, "m"));
      assert.equal(back.hf.dtype, "float16");
      const ids = T.tensor(Int32Array.from([3, 14, 15, 92, 65]), { shape: [1, 5] });
      const a = src.model.forward(ids).logits.toTypedArray(), b = back.model.forward(ids).logits.toTypedArray();
      const scale = Math.max(...a.map(Math.abs));
      let worst = 0;
      for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!) / scale);
      assert.ok(worst > 0 && worst < 5e-3, `relative logit change ${worst}`);
      // weights stored exactly as their binary16 rounding
      const w = src.model.stateDict()["blocks.0.attn.wv.weight"]!.toTypedArray() as Float32Array;
      assert.deepEqual(back.model.stateDict()["blocks.0.attn.wv.weight"]!.toTypedArray(), f16ToF32(f32ToF16(w)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
