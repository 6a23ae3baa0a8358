import { test } from "node:test";
import assert from "node:assert/strict";
import { randomFillSync } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Llama2cCheckpointError, parseLlama2cCheckpoint, readLlama2cCheckpoint } from "../src/io/llama2c.js";

const CKPT = "data/stories260K.bin";

/** A small random version 0 checkpoint: header + `floats` random fp32 values (not zeros). */
function synthetic(header: number[], floats: number): { bytes: Buffer; values: Float32Array } {
  const values = new Float32Array(floats);
  const raw = new Uint32Array(floats);
  randomFillSync(raw);
  raw.forEach((r, i) => { values[i] = r / 2 ** 32 - 0.5; });
  const bytes = Buffer.concat([Buffer.from(Int32Array.from(header).buffer), Buffer.from(values.buffer)]);
  return { bytes, values };
}

test("stories260K: header, names, shapes, sane weights", async () => {
  const { config, weights } = await readLlama2cCheckpoint(CKPT);
  assert.deepEqual(config, { dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true });
  assert.equal(Object.keys(weights).length, 1 + 5 * 9 + 1);
  assert.equal(weights.output, undefined);
  const shapes: Record<string, number[]> = {
    tok_embeddings: [512, 64], norm: [64], "layers.0.attention_norm": [64], "layers.4.ffn_norm": [64],
    "layers.2.wq": [64, 64], "layers.2.wk": [32, 64], "layers.2.wv": [32, 64], "layers.2.wo": [64, 64],
    "layers.3.w1": [172, 64], "layers.3.w2": [64, 172], "layers.3.w3": [172, 64],
  };
  for (const [name, shape] of Object.entries(shapes)) {
    const w = weights[name];
    assert.ok(w, name);
    assert.deepEqual(w.shape, shape, name);
    assert.equal(w.data.length, shape.reduce((a, b) => a * b, 1), name);
  }
  // The first float after the header is tok_embeddings[0][0]; the last weight is norm[63], just before freq_cis.
  const file = await readFile(CKPT);
  assert.equal(weights.tok_embeddings!.data[0], file.readFloatLE(28));
  const normEnd = file.length - 2 * 512 * 4 * 4;
  assert.equal(weights.norm!.data[63], file.readFloatLE(normEnd - 4));
  for (const name of ["layers.0.attention_norm", "layers.4.ffn_norm", "norm"]) {
    const d = weights[name]!.data;
    assert.ok(d.every(Number.isFinite), `${name} finite`);
    assert.ok(d.some((x) => x !== d[0]), `${name} not constant`);
  }
  assert.notDeepEqual(weights["layers.0.wq"]!.data, weights["layers.1.wq"]!.data);
  // freq_cis_real row 0 is cos(0) = 1: the layout before it lines up.
  assert.equal(file.readFloatLE(normEnd), 1);
});

test("unshared classifier: negative vocab_size, output stored after freq_cis", () => {
  // dim 8, hidden 12, 2 layers, 4 heads, 2 kv heads, vocab 10 (unshared), seq_len 6.
  const [D, H, L, V, S, KV, half] = [8, 12, 2, 10, 6, 4, 1];
  const floats = V * D + L * D + L * D * D + 2 * L * KV * D + L * D * D + L * D + 3 * L * H * D + D + 2 * S * half + V * D;
  const { bytes, values } = synthetic([D, H, L, 4, 2, -V, S], floats);
  const { config, weights } = parseLlama2cCheckpoint(bytes, "tiny.bin");
  assert.equal(config.vocabSize, V);
  assert.equal(config.sharedClassifier, false);
  assert.deepEqual(weights.output!.shape, [V, D]);
  assert.deepEqual(weights.output!.data, values.subarray(floats - V * D));
  assert.deepEqual(weights["layers.1.wk"]!.shape, [KV, D]);
  const wkStart = V * D + L * D + L * D * D + KV * D; // after tok, rms_att, wq, layer 0 of wk
  assert.deepEqual(weights["layers.1.wk"]!.data, values.subarray(wkStart, wkStart + KV * D));
  // An unaligned input buffer is copied once rather than failing.
  const shifted = Buffer.alloc(bytes.length + 1);
  bytes.copy(shifted, 1);
  assert.deepEqual(parseLlama2cCheckpoint(shifted.subarray(1), "tiny.bin").weights.output!.data, values.subarray(floats - V * D));
});

test("broken checkpoints give one clear error naming the file, field and expectation", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tsformer-l2c-"));
  try {
    const good = await readFile(CKPT);
    const write = async (name: string, bytes: Uint8Array) => { const f = join(dir, name); await writeFile(f, bytes); return f; };
    const isErr = (re: RegExp) => (e: Error) => e instanceof Llama2cCheckpointError && re.test(e.message);
    await assert.rejects(readLlama2cCheckpoint(await write("cut.bin", good.subarray(0, good.length - 4))),
      isErr(/cut\.bin: file is 1056536 bytes \(truncated\); the header \(dim=64, .*\) implies exactly 1056540 bytes/));
    await assert.rejects(readLlama2cCheckpoint(await write("big.bin", Buffer.concat([good, Buffer.alloc(8)]))),
      isErr(/big\.bin: file is 1056548 bytes \(8 trailing bytes\); the header .* implies exactly 1056540 bytes/));
    await assert.rejects(readLlama2cCheckpoint(await write("short.bin", good.subarray(0, 20))),
      isErr(/short\.bin: file is 20 bytes; expected at least the 28-byte header/));
    const withHeader = async (name: string, field: number, value: number) => {
      const b = Buffer.from(good);
      b.writeInt32LE(value, field * 4);
      return write(name, b);
    };
    await assert.rejects(readLlama2cCheckpoint(await withHeader("h1.bin", 3, 7)), isErr(/h1\.bin: header field n_heads=7 does not divide dim=64/));
    await assert.rejects(readLlama2cCheckpoint(await withHeader("h2.bin", 4, 3)), isErr(/h2\.bin: header field n_kv_heads=3 does not divide n_heads=8/));
    await assert.rejects(readLlama2cCheckpoint(await withHeader("h3.bin", 1, 0)), isErr(/h3\.bin: header field hidden_dim is 0; expected a positive int32/));
    await assert.rejects(readLlama2cCheckpoint(await withHeader("h4.bin", 6, -5)), isErr(/h4\.bin: header field seq_len is -5/));
    await assert.rejects(readLlama2cCheckpoint(await withHeader("h5.bin", 5, 0)), isErr(/h5\.bin: header field vocab_size is 0/));
    await assert.rejects(readLlama2cCheckpoint(await withHeader("h6.bin", 3, 64)), isErr(/h6\.bin: head size dim\/n_heads = 1 is odd/));
    // An unshared-classifier header on a shared file: the size check catches it.
    await assert.rejects(readLlama2cCheckpoint(await withHeader("h7.bin", 5, -512)), isErr(/h7\.bin: .*\(truncated\).*vocab_size=512 unshared/));
    await assert.rejects(readLlama2cCheckpoint(await withHeader("v1.bin", 0, 0x616b3432)), isErr(/v1\.bin: starts with the magic "ak42" of a llama2\.c version \d+ export/));
    await assert.rejects(readLlama2cCheckpoint(join(dir, "none.bin")), isErr(/none\.bin: cannot read the checkpoint file/));
    // Non-finite weights: export.py's layout puts layers.2.wq after tok_embeddings [512, 64],
    // attention_norm [5, 64] and wq of layers 0-1 [2, 64, 64]; norm [64] just before freq_cis.
    const withFloat = async (name: string, index: number, value: number) => {
      const b = Buffer.from(good);
      b.writeFloatLE(value, 28 + 4 * index);
      return write(name, b);
    };
    await assert.rejects(readLlama2cCheckpoint(await withFloat("nan.bin", 512 * 64 + 5 * 64 + 2 * 64 * 64 + 5, NaN)),
      isErr(/nan\.bin: tensor layers\.2\.wq holds NaN at element 5; expected finite weights/));
    await assert.rejects(readLlama2cCheckpoint(await withFloat("inf.bin", (good.length - 28) / 4 - 2 * 512 * 4 - 64 + 3, -Infinity)),
      isErr(/inf\.bin: tensor norm holds -Infinity at element 3; expected finite weights/));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
