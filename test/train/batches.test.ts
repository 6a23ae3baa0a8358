// Token dataset split and the random-window batch sampler (determinism, exact resume, errors).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BatchSampler, TokenDataset } from "../../src/index.js";

const ramp = (n: number) => new TokenDataset(Int32Array.from({ length: n }, (_, i) => i), "ramp");

describe("TokenDataset", () => {
  it("split is contiguous: the first part is train, the rest val", () => {
    const { train, val } = ramp(100).split(0.1);
    assert.deepEqual(Array.from(train.ids), Array.from({ length: 90 }, (_, i) => i));
    assert.deepEqual(Array.from(val.ids), Array.from({ length: 10 }, (_, i) => 90 + i));
    assert.throws(() => ramp(10).split(1), /valFraction must be in \[0, 1\)/);
  });
});

describe("BatchSampler", () => {
  it("draws windows x = ids[i, i+T), y = ids[i+1, i+T+1] as int32 [B, T], covering every start", () => {
    const s = new BatchSampler(ramp(20), 4, 8, 7);
    const starts = new Set<number>();
    for (let k = 0; k < 50; k++) {
      const { x, y } = s.next();
      assert.deepEqual(x.shape, [4, 8]);
      assert.equal(x.dtype, "int32");
      assert.equal(y.dtype, "int32");
      const xs = x.toArray() as number[][], ys = y.toArray() as number[][];
      xs.forEach((row, b) => {
        assert.deepEqual(row, Array.from({ length: 8 }, (_, j) => row[0] + j));
        assert.deepEqual(ys[b], row.map((v) => v + 1));
        assert.ok(row[0] >= 0 && row[0] + 8 < 20);
        starts.add(row[0]);
      });
    }
    assert.equal(starts.size, 12); // every start in [0, n - T)
  });
  it("is deterministic per seed and resumes exactly from getState", () => {
    const a = new BatchSampler(ramp(1000), 3, 5, 42), b = new BatchSampler(ramp(1000), 3, 5, 42);
    for (let k = 0; k < 3; k++) assert.deepEqual(a.next().x.toArray(), b.next().x.toArray());
    const state = a.getState();
    const expected = [a.next(), a.next()].map((t) => t.y.toArray());
    const c = new BatchSampler(ramp(1000), 3, 5, 0);
    c.setState(JSON.parse(JSON.stringify(state)));
    assert.deepEqual([c.next(), c.next()].map((t) => t.y.toArray()), expected);
    assert.notDeepEqual(new BatchSampler(ramp(1000), 3, 5, 43).next().x.toArray(), new BatchSampler(ramp(1000), 3, 5, 42).next().x.toArray());
  });
  it("errors clearly when the dataset is shorter than blockSize + 1", () => {
    assert.throws(() => new BatchSampler(ramp(8), 2, 8), /ramp has 8 tokens; a window of blockSize 8 needs at least 9/);
    assert.ok(new BatchSampler(ramp(9), 2, 8).next());
    assert.throws(() => new BatchSampler(ramp(9), 0, 8), /batchSize must be a positive integer/);
  });
});
