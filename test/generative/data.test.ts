// MNIST loader (the real IDX files in data/mnist) and the 2D toys.
// Facts checked against MNIST itself (data/SOURCES.md): 60000 / 10000 examples, the first training labels
// 5 0 4 1 9 2 1 3 1 4, the first test labels 7 2 1 0 4 1 4 9 5 9.

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";
import * as T from "../../src/index.js";
import { loadMnist, MnistBatcher, parseIdx } from "../../src/data/mnist.js";
import { sampleToy } from "../../src/data/toys.js";

describe("MNIST loader", () => {
  test("test split: 10000 images of 28x28, first labels 7 2 1 0 4 1 4 9 5 9, pixels in [0, 1]", () => {
    const d = loadMnist("test");
    assert.equal(d.n, 10000);
    assert.equal(d.images.length, 10000 * 784);
    assert.deepEqual(Array.from(d.labels.subarray(0, 10)), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let lo = Infinity, hi = -Infinity;
    for (const v of d.images) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    assert.equal(lo, 0);
    assert.equal(hi, 1);
  });

  test("train split with limit: the first label is 5 (then 0 4 1 9 2 1 3 1 4); [-1, 1] normalization is 2p - 1", () => {
    const a = loadMnist("train", { limit: 10 }), b = loadMnist("train", { limit: 10, normalize: "[-1,1]" });
    assert.equal(a.n, 10);
    assert.deepEqual(Array.from(a.labels), [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    for (let i = 0; i < a.images.length; i++) assert.ok(Math.abs(b.images[i] - (2 * a.images[i] - 1)) < 1e-6);
    // the top-left pixel is background, and a "5" has ink in the middle rows
    assert.equal(a.images[0], 0);
    assert.ok(a.images.subarray(10 * 28, 18 * 28).some((v) => v > 0.9));
  });

  test("shuffled batches: a seeded permutation per epoch, every example once", () => {
    const d = loadMnist("test", { limit: 100 });
    const s1 = new MnistBatcher(d, 25, 7), s2 = new MnistBatcher(d, 25, 7), seen = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const b1 = s1.next(), b2 = s2.next();
      assert.deepEqual(b1.index, b2.index);
      assert.deepEqual(b1.x.shape, [25, 784]);
      assert.equal(b1.y.dtype, "int32");
      for (const k of b1.index) seen.add(k);
      assert.equal(b1.y.toTypedArray()[0], d.labels[b1.index[0]]);
    }
    assert.equal(seen.size, 100);
    assert.notDeepEqual(Array.from(s1.next().index), Array.from({ length: 25 }, (_, i) => i));
    assert.equal(s1.epoch, 2);
    assert.throws(() => new MnistBatcher(d, 101), /batchSize must be an integer in \[1, 100\], got 101/);
    // skip(n) lands where n calls of next() do, across an epoch boundary (a resumed run)
    const walked = new MnistBatcher(d, 30, 3), skipped = new MnistBatcher(d, 30, 3);
    for (let i = 0; i < 5; i++) walked.next();
    skipped.skip(5);
    assert.deepEqual(skipped.next().index, walked.next().index);
    assert.equal(skipped.epoch, walked.epoch);
  });

  test("bad files: truncated, wrong magic, wrong image size, unreadable gzip", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "mnist-"));
    const labels = gunzipSync(readFileSync(path.join(import.meta.dirname, "..", "..", "data", "mnist", "t10k-labels-idx1-ubyte.gz")));
    assert.throws(() => parseIdx(labels.subarray(0, 5000), "l", "labels"), /l: truncated IDX file: 5000 bytes, the header \[10000\] needs 10008/);
    assert.throws(() => parseIdx(labels.subarray(0, 6), "l", "labels"), /truncated IDX file: 6 bytes, the labels header alone needs 8/);
    assert.throws(() => parseIdx(labels, "l", "images"), /l: wrong IDX magic number 2049, expected 2051/);
    const img = new Uint8Array(16 + 2 * 27 * 27), v = new DataView(img.buffer);
    v.setUint32(0, 2051); v.setUint32(4, 2); v.setUint32(8, 27); v.setUint32(12, 27);
    assert.throws(() => parseIdx(img, "i", "images"), /i: images are 27x27, expected 28x28/);
    const imgs = gunzipSync(readFileSync(path.join(import.meta.dirname, "..", "..", "data", "mnist", "t10k-images-idx3-ubyte.gz")));
    writeFileSync(path.join(dir, "t10k-images-idx3-ubyte.gz"), gzipSync(imgs.subarray(0, 1000)));
    writeFileSync(path.join(dir, "t10k-labels-idx1-ubyte.gz"), gzipSync(labels));
    assert.throws(() => loadMnist("test", { dir }), /t10k-images-idx3-ubyte\.gz: truncated IDX file: 1000 bytes/);
    writeFileSync(path.join(dir, "t10k-images-idx3-ubyte.gz"), "not gzip");
    assert.throws(() => loadMnist("test", { dir }), /cannot read the gzipped IDX file/);
    assert.throws(() => loadMnist("test", { limit: 0 }), /limit must be a positive integer, got 0/);
  });
});

describe("2D toys", () => {
  const stats = (t: T.Tensor) => {
    const v = t.toTypedArray() as Float32Array, n = v.length / 2, m = [0, 0];
    for (let i = 0; i < n; i++) { m[0] += v[2 * i] / n; m[1] += v[2 * i + 1] / n; }
    return { v, n, m };
  };
  test("seeded: the same generator state gives the same points", () => {
    for (const name of ["moons", "8gaussians", "checkerboard"] as const) {
      assert.deepEqual(sampleToy(name, 50, new T.RandomGenerator(4)).toTypedArray(), sampleToy(name, 50, new T.RandomGenerator(4)).toTypedArray());
    }
  });
  test("8 gaussians: every point within 2 std of one of the 8 centers 4/1.414 (cos kπ/4, sin kπ/4)", () => {
    const { v, n, m } = stats(sampleToy("8gaussians", 4000, new T.RandomGenerator(1)));
    let near = 0;
    for (let i = 0; i < n; i++) {
      let best = Infinity;
      for (let k = 0; k < 8; k++) best = Math.min(best, Math.hypot(v[2 * i] - (4 * Math.cos((k * Math.PI) / 4)) / 1.414, v[2 * i + 1] - (4 * Math.sin((k * Math.PI) / 4)) / 1.414));
      if (best < (2 * 0.5) / 1.414) near++;
    }
    assert.ok(near / n > 0.8, `fraction near a center ${near / n}`); // P(chi_2 < 4) = 0.865
    assert.ok(Math.abs(m[0]) < 0.15 && Math.abs(m[1]) < 0.15);
  });
  test("checkerboard: x in [-4, 4], and the occupied cells alternate (floor(x1/2) + floor(x2/2) even)", () => {
    const { v, n } = stats(sampleToy("checkerboard", 2000, new T.RandomGenerator(2)));
    for (let i = 0; i < n; i++) {
      const x = v[2 * i], y = v[2 * i + 1];
      assert.ok(x >= -4 && x <= 4 && y >= -4 && y <= 4, `point ${x}, ${y}`);
      assert.equal((((Math.floor(x / 2) + Math.floor(y / 2)) % 2) + 2) % 2, 0, `point ${x}, ${y} in an empty cell`);
    }
  });
  test("moons: mean (0, 0.3) up to noise (make_moons' mean (0.5, 0.25), x2 - (1, 0.2))", () => {
    const { m } = stats(sampleToy("moons", 8000, new T.RandomGenerator(3)));
    assert.ok(Math.abs(m[0]) < 0.05 && Math.abs(m[1] - 0.3) < 0.05, `mean ${m}`);
    assert.throws(() => sampleToy("spirals" as "moons", 10, new T.RandomGenerator(0)), /unknown toy "spirals"/);
  });
});
