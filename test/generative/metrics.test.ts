// Sample-quality metrics against scripts/golden/generative.py (numpy, float64): MMD² (unbiased, Gretton et
// al. 2012 eq. 3) with a fixed and a median bandwidth, sliced Wasserstein on the golden's directions, and
// the Fréchet distance (numpy's eigenvalues of S1 S2, a different route from our Jacobi solver).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, test } from "node:test";
import * as T from "../../src/index.js";
import { frechetFeatureDistance, medianBandwidth, mmd2, randomDirections, slicedWasserstein } from "../../src/generative/metrics.js";

const g = JSON.parse(readFileSync(path.join(import.meta.dirname, "..", "fixtures", "generative", "metrics.json"), "utf8"));
const pts = (v: number[], d: number) => T.tensor(Float64Array.from(v), { shape: [v.length / d, d] });
const rel = (got: number, want: number, tol = 1e-6) => assert.ok(Math.abs(got - want) <= tol * Math.abs(want), `got ${got}, want ${want} (relative ${Math.abs(got - want) / Math.abs(want)})`);

describe("generative metrics vs numpy", () => {
  test("MMD² unbiased, fixed bandwidth and the median heuristic (<= 1e-6 relative)", () => {
    for (const c of g.mmd) {
      const x = pts(c.x, c.d), y = pts(c.y, c.d);
      const r = mmd2(x, y, { bandwidth: c.bandwidth });
      if (c.bandwidth === "median") rel(medianBandwidth(x, y), c.median);
      rel(r.mmd2, c.mmd2);
    }
  });

  test("MMD² of a sample with itself is ~0 and rejects a bad bandwidth", () => {
    const c = g.mmd[0], x = pts(c.x, c.d);
    assert.ok(Math.abs(mmd2(x, x, { bandwidth: 1 }).mmd2) < 0.05);
    assert.throws(() => mmd2(x, x, { bandwidth: -1 }), /bandwidth must be a finite number > 0/);
    assert.throws(() => mmd2(x, pts([1, 2, 3, 4, 5, 6], 3)), /X has 2 features per point, Y has 3/);
  });

  test("sliced Wasserstein p = 1 and 2 on the golden's directions (<= 1e-6 relative)", () => {
    for (const c of g.sliced) rel(slicedWasserstein(pts(c.x, c.d), pts(c.y, c.d), Float64Array.from(c.dirs), { p: c.p }), c.sw);
  });

  test("random directions are unit rows from the seeded generator", () => {
    const a = randomDirections(5, 3, new T.RandomGenerator(1)), b = randomDirections(5, 3, new T.RandomGenerator(1));
    assert.deepEqual(a, b);
    for (let l = 0; l < 5; l++) rel(a[3 * l] ** 2 + a[3 * l + 1] ** 2 + a[3 * l + 2] ** 2, 1, 1e-12);
  });

  test("Fréchet distance d = 8 and 32 (<= 1e-6 relative)", () => {
    for (const c of g.frechet) rel(frechetFeatureDistance(pts(c.a, c.d), pts(c.b, c.d)), c.fd);
    const c = g.frechet[0], a = pts(c.a, c.d);
    assert.ok(Math.abs(frechetFeatureDistance(a, a)) < 1e-9, "FD(a, a) = 0");
  });
});
