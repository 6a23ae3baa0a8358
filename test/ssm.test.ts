// State space models (src/nn/ssm): HiPPO-LegS against an independent Legendre projection, S4D's two
// forms, the selective scan against a PyTorch golden (scripts/golden/ssm.py).

import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as T from "../src/index.js";
import { legsEncode, legsMatrices, legsReconstruct } from "../src/nn/ssm/hippo.js";
import { Mamba } from "../src/nn/ssm/mamba.js";
import { S4D } from "../src/nn/ssm/s4d.js";
import { selectiveScan } from "../src/nn/ssm/scan.js";
import { readFileSync } from "node:fs";
import { decodeSafetensors } from "../src/io/safetensors.js";
import { loadGolden, maxScaledError, toTensor } from "./helpers/golden.js";
import { availableBackends, backend, setBackend } from "../src/backend/registry.js";
import { native } from "../src/backend/native/addon.js";

// ---------------------------------------------------------------- HiPPO-LegS

const binom = (n: number, k: number) => { let r = 1; for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i; return r; };
/** Shifted Legendre polynomial on [0, 1] from its explicit sum (not the recurrence the code uses). */
const shiftedLegendre = (n: number, x: number) => {
  let s = 0;
  for (let k = 0; k <= n; k++) s += binom(n, k) * binom(n + k, k) * (-x) ** k;
  return (-1) ** n * s;
};

describe("HiPPO-LegS", () => {
  it("A and B are the paper's (Theorem 2, sign folded into A)", () => {
    const { A, B } = legsMatrices(3);
    const s = Math.sqrt;
    assert.deepEqual(Array.from(B), [1, s(3), s(5)]);
    const want = [-1, 0, 0, -s(3), -2, 0, -s(5), -s(5) * s(3), -3];
    want.forEach((w, i) => assert.ok(Math.abs(A[i] - w) < 1e-15, `A[${i}] = ${A[i]}, want ${w}`));
  });

  it("reconstructs a smooth signal's history with the error of the best Legendre projection", () => {
    const g = (x: number) => Math.sin(4 * x) + 0.5 * x * x - x;
    const N = 6, L = 4000, M = 2000;
    const c = legsEncode(Array.from({ length: L }, (_, t) => g((t + 1) / L)), N);
    // The optimal projection of g on [0, 1]: coefficients by composite Simpson quadrature.
    const xs = Array.from({ length: M + 1 }, (_, i) => i / M);
    const best = Array.from({ length: N }, (_, n) => {
      let s = 0;
      xs.forEach((x, i) => { s += (i === 0 || i === M ? 1 : i % 2 ? 4 : 2) * g(x) * Math.sqrt(2 * n + 1) * shiftedLegendre(n, x); });
      return s / (3 * M);
    });
    const proj = (x: number) => best.reduce((a, cn, n) => a + cn * Math.sqrt(2 * n + 1) * shiftedLegendre(n, x), 0);
    const rec = legsReconstruct(c, xs);
    const rms = (e: (i: number) => number) => Math.sqrt(xs.reduce((a, _, i) => a + e(i) ** 2, 0) / xs.length);
    const eBest = rms((i) => proj(xs[i]) - g(xs[i])), eOurs = rms((i) => rec[i] - g(xs[i]));
    assert.ok(eBest > 1e-3, `the test signal must not be a degree-${N - 1} polynomial (best error ${eBest})`);
    assert.ok(eOurs < 1.05 * eBest, `LegS error ${eOurs} vs best projection ${eBest}`);
    // The coefficients themselves converge to the projection's as the step 1/L shrinks (O(1/L)).
    best.forEach((b, n) => assert.ok(Math.abs(c[n] - b) < 2 / L, `c[${n}] = ${c[n]}, projection ${b}`));
  });

  it("rejects a state size of 0", () => {
    assert.throws(() => legsMatrices(0), /state size N must be an integer >= 1, got 0/);
    assert.throws(() => legsEncode([1, 2], 0), /legsEncode: the state size N/);
  });
});

// ---------------------------------------------------------------- S4D

describe("S4D", () => {
  it("the kernel is 2 Re(sum C dB dA^l) with ZOH, by plain complex arithmetic from the parameters", () => {
    for (const init of ["lin", "inv"] as const) {
      const m = new S4D(3, 8, { init, dtype: "float64", generator: new T.RandomGenerator(1) });
      const L = 12, K = m.kernel(L).toTypedArray();
      const p = (t: T.Tensor, i: number) => t.data[i];
      for (let h = 0; h < 3; h++) {
        const dt = Math.exp(p(m.logDt, h));
        for (let l = 0; l < L; l++) {
          let k = 0;
          for (let n = 0; n < 4; n++) {
            const i = h * 4 + n, ar = -Math.exp(p(m.logAReal, i)), ai = p(m.aImag, i);
            // paper section 4.1: S4D-Lin Im A = pi n, S4D-Inv Im A = N/pi (N/(2n+1) - 1)
            assert.ok(Math.abs(ai - (init === "lin" ? Math.PI * n : (8 / Math.PI) * (8 / (2 * n + 1) - 1))) < 1e-12);
            const e = Math.exp(dt * ar), dAr = e * Math.cos(dt * ai), dAi = e * Math.sin(dt * ai);
            const q = ar * ar + ai * ai, dBr = ((dAr - 1) * ar + dAi * ai) / q, dBi = (dAi * ar - (dAr - 1) * ai) / q;
            const el = Math.exp(l * dt * ar), vr = el * Math.cos(l * dt * ai), vi = el * Math.sin(l * dt * ai);
            const cr = p(m.cRe, i) * dBr - p(m.cIm, i) * dBi, ci = p(m.cRe, i) * dBi + p(m.cIm, i) * dBr;
            k += 2 * (cr * vr - ci * vi);
          }
          assert.ok(Math.abs(K[h * L + l] - k) < 1e-12, `${init} K[${h}, ${l}] = ${K[h * L + l]}, want ${k}`);
        }
      }
    }
  });

  it("convolution form == recurrent form (float32, <= 1e-5), and the state continues", () => {
    for (const init of ["lin", "inv"] as const) {
      const g = new T.RandomGenerator(2);
      // dt up to 0.5 so that the kernel still matters at the end of the sequence.
      const m = new S4D(4, 16, { init, dtMin: 0.01, dtMax: 0.5, generator: g });
      const x = T.randn([2, 40, 4], { generator: g });
      const conv = m.forward(x), rec = m.forwardRecurrent(x).y;
      const e = maxScaledError(rec.toTypedArray(), conv.toTypedArray());
      assert.ok(e <= 1e-5, `${init}: conv vs recurrent scaled error ${e}`);
      // Recurrent decoding from the state after 25 steps gives the last 15 outputs of the full pass.
      const head = m.forwardRecurrent(T.narrow(x, 1, 0, 25));
      const tail = m.forwardRecurrent(T.narrow(x, 1, 25, 15), head.state).y;
      const e2 = maxScaledError(tail.toTypedArray(), T.narrow(conv, 1, 25, 15).toTypedArray());
      assert.ok(e2 <= 1e-5, `${init}: continued state scaled error ${e2}`);
    }
  });

  it("float64 gradcheck of the convolution form in the input and every parameter", () => {
    const m = new S4D(2, 4, { dtype: "float64", dtMin: 0.05, dtMax: 0.5, generator: new T.RandomGenerator(4) });
    const x = T.randn([1, 5, 2], { dtype: "float64", generator: new T.RandomGenerator(5), requiresGrad: true });
    T.gradcheck((xi) => m.forward(xi), [x, ...m.parameters()], { generator: new T.RandomGenerator(6) });
    T.gradcheck((xi) => m.forwardRecurrent(xi).y, [x, ...m.parameters()], { generator: new T.RandomGenerator(6) });
  });

  it("rejects a state size of 0 (or odd) and a wrong input by name", () => {
    assert.throws(() => new S4D(2, 0), /S4D: the state size N must be an even integer >= 2 \(N\/2 complex modes\), got 0/);
    assert.throws(() => new S4D(2, 3), /got 3/);
    assert.throws(() => new S4D(2, 4).forward(T.zeros([1, 5, 3])), /S4D: the input must be \[B, L, H=2\], got \[1, 5, 3\]/);
  });
});

// ---------------------------------------------------------------- selective scan

const golden = loadGolden(new URL("./fixtures/ssm.safetensors", import.meta.url).pathname);
const cases = golden.cases as unknown as { name: string; b: number; d: number; n: number; L: number }[];
const NAMES = ["u", "delta", "A", "B", "C", "D"] as const;

const withBackend = (name: string, f: () => void) => {
  const before = backend().name;
  setBackend(name);
  try { f(); } finally { setBackend(before); }
};

describe("selective scan vs PyTorch's sequential recurrence", () => {
  for (const c of cases) {
    // float32 runs the native kernel when the addon is built (float64 is always the js twin)
    for (const [dtype, tol, be] of [...availableBackends().map((b) => ["float32", 1e-5, b] as const), ["float64", 1e-12, "js"] as const]) {
      for (const chunk of [1, 8, 64]) {
        it(`${c.name} (${dtype}, ${be}, chunk ${chunk}): y, the last state and every gradient`, () => withBackend(be, () => {
          const x = NAMES.map((k) => toTensor(golden.tensors[`${c.name}.${k}`], dtype, true));
          const { y, lastState } = selectiveScan(x[0], x[1], x[2], x[3], x[4], x[5], { chunk });
          const check = (what: string, got: T.Tensor, key: string) => {
            const want = golden.tensors[`${c.name}.${key}`].data as Float64Array;
            // A zero reference (grad A after one step: h_{-1} = 0) is compared absolutely.
            const e = want.some((v) => v !== 0) ? maxScaledError(got.toTypedArray() as Float64Array, want) : Math.max(...Array.from(got.toTypedArray(), Math.abs));
            assert.ok(e <= tol, `${what}: scaled error ${e}`);
          };
          check("y", y, "y");
          check("last state", lastState, "last");
          T.sum(T.mul(y, toTensor(golden.tensors[`${c.name}.gy`], dtype))).backward();
          NAMES.forEach((k, i) => check(`grad ${k}`, x[i].grad!, `grad_${k}`));
        }));
      }
    }
  }

  it("native (every ISA) == js twin on random problems with h0, channel groups and ragged chunks, forward and every gradient", { skip: native ? false : "native addon not built" }, () => {
    const g = new T.RandomGenerator(21);
    const [b, d, n, L] = [2, 19, 16, 150];
    const inputs = () => {
      const r = (s: number[], f = (t: T.Tensor) => t) => f(T.randn(s, { generator: g })).detach().requiresGrad_();
      return [r([b, d, L]), r([b, d, L], (t) => T.softplus(T.sub(t, 1))), r([d, n], (t) => T.neg(T.exp(T.mul(t, 0.5)))), r([b, n, L]), r([b, n, L]), r([d])];
    };
    const x = inputs(), h0 = T.randn([b, d, n], { generator: g }), gy = T.randn([b, d, L], { generator: g });
    const run = (be: string) => {
      let out: T.Tensor[] = [];
      withBackend(be, () => {
        const xs = x.map((t) => t.detach().requiresGrad_());
        const { y, lastState } = selectiveScan(xs[0], xs[1], xs[2], xs[3], xs[4], xs[5], { chunk: 64, h0 });
        T.sum(T.mul(y, gy)).backward();
        out = [y, lastState, ...xs.map((t) => t.grad!)];
      });
      return out;
    };
    const ref = run("js");
    const isas = ["scalar", "avx2", "avx512"].filter((i) => native!.setIsa(i as "scalar") === i);
    native!.setIsa("auto");
    assert.ok(isas.length >= 1);
    try {
      for (const isa of isas) {
        native!.setIsa(isa as "scalar");
        run("native").forEach((t, i) => {
          const e = maxScaledError(t.toTypedArray(), ref[i].toTypedArray());
          assert.ok(e <= 1e-5, `${isa}: ${["y", "last state", ...NAMES.map((k) => `grad ${k}`)][i]} scaled error ${e}`);
        });
      }
    } finally {
      native!.setIsa("auto");
    }
  });

  it("saves memory linear in L (inputs + one state per chunk), far below all states", () => {
    const [b, d, n, chunk] = [1, 4, 16, 32];
    const saved = (L: number) => {
      const g = new T.RandomGenerator(3);
      const r = (s: number[]) => T.randn(s, { generator: g });
      const x = [r([b, d, L]), T.softplus(r([b, d, L])), T.neg(T.exp(r([d, n]))), r([b, n, L]), r([b, n, L]), r([d])].map((t) => t.requiresGrad_());
      const before = T.memoryStats().savedBytes;
      const { y } = selectiveScan(x[0], x[1], x[2], x[3], x[4], x[5], { chunk });
      const bytes = T.memoryStats().savedBytes - before;
      T.sum(y).backward();
      return bytes;
    };
    const [s1, s2, s4] = [256, 512, 1024].map(saved);
    assert.equal(s4 - s2, 2 * (s2 - s1), `saved bytes ${s1}, ${s2}, ${s4} are not linear in L`);
    // float32 inputs: u, delta, B, C (2 b d L + 2 b n L values), A, D; float64 states every `chunk` steps.
    const L = 1024;
    assert.equal(s4, 4 * (2 * b * d * L + 2 * b * n * L + d * n + d) + 8 * b * d * n * (L / chunk));
    assert.ok(s4 < 8 * b * d * n * L, "below what storing every state would take");
  });

  it("rejects bad shapes and a state size of 0 by name", () => {
    const z = (...s: number[]) => T.zeros(s);
    assert.throws(() => selectiveScan(z(1, 2, 3), z(1, 2, 3), z(2, 0), z(1, 0, 3), z(1, 0, 3), z(2)), /state size N \(A's second dim\) must be >= 1, got 0/);
    assert.throws(() => selectiveScan(z(1, 2, 3), z(1, 2, 4), z(2, 2), z(1, 2, 3), z(1, 2, 3), z(2)), /delta must be \[1, 2, 3\], got \[1, 2, 4\]/);
    assert.throws(() => selectiveScan(z(1, 2, 3), z(1, 2, 3), z(2, 2), z(1, 2, 3), z(1, 2, 3), z(2), { chunk: 0 }), /chunk must be an integer >= 1/);
  });
});

// ---------------------------------------------------------------- Mamba block

describe("Mamba block", () => {
  it("equals PyTorch's reference Mamba (mamba_simple.py's names) in y and every gradient (float32, <= 1e-5)", () => {
    const path = new URL("./fixtures/ssm.safetensors", import.meta.url).pathname;
    const cfg = JSON.parse(decodeSafetensors(readFileSync(path), path).metadata.mamba) as Record<string, number>;
    const m = new Mamba(cfg.d_model, { dState: cfg.d_state, dConv: cfg.d_conv, expand: cfg.expand, dtRank: cfg.dt_rank, chunk: 4 });
    const weights = Object.keys(golden.tensors).filter((k) => k.startsWith("mamba.w.")).map((k) => k.slice("mamba.w.".length));
    const r = m.loadStateDict(Object.fromEntries(weights.map((k) => [k, toTensor(golden.tensors[`mamba.w.${k}`])])));
    assert.deepEqual(r, { missing: [], unexpected: [] });
    const u = toTensor(golden.tensors["mamba.u"], "float32", true);
    const y = m.forward(u);
    const check = (what: string, got: T.Tensor, key: string) => {
      const e = maxScaledError(got.toTypedArray(), golden.tensors[key].data as Float64Array);
      assert.ok(e <= 1e-5, `${what}: scaled error ${e}`);
    };
    check("y", y, "mamba.y");
    T.sum(T.mul(y, toTensor(golden.tensors["mamba.gy"]))).backward();
    check("grad u", u.grad!, "mamba.grad_u");
    const params = new Map(m.namedParameters());
    assert.equal(params.size, weights.length);
    for (const k of weights) check(`grad ${k}`, params.get(k)!.grad!, `mamba.grad.${k}`);
  });

  it("the parallel path equals step-by-step decoding, and decoding continues a prefill", () => {
    const g = new T.RandomGenerator(8);
    const m = new Mamba(8, { dState: 4, dConv: 3, dtMin: 0.01, dtMax: 0.5, chunk: 5, generator: g });
    const u = T.randn([2, 13, 8], { generator: g });
    const full = m.forward(u);
    let state = m.zeroState(2);
    const ys: T.Tensor[] = [];
    for (let t = 0; t < 13; t++) {
      const r = m.step(T.squeeze(T.narrow(u, 1, t, 1), 1), state);
      ys.push(r.y);
      state = r.state;
    }
    const e = maxScaledError(T.stack(ys, 1).toTypedArray(), full.toTypedArray());
    assert.ok(e <= 1e-5, `parallel vs step-by-step scaled error ${e}`);
    let { state: s } = m.prefill(T.narrow(u, 1, 0, 9));
    for (let t = 9; t < 13; t++) {
      const r = m.step(T.squeeze(T.narrow(u, 1, t, 1), 1), s);
      const e2 = maxScaledError(r.y.toTypedArray(), T.squeeze(T.narrow(full, 1, t, 1), 1).toTypedArray());
      assert.ok(e2 <= 1e-5, `step ${t} after a prefill: scaled error ${e2}`);
      s = r.state;
    }
  });

  it("rejects a state size of 0 and a wrong input by name", () => {
    assert.throws(() => new Mamba(8, { dState: 0 }), /Mamba: dState \(the SSM state size\) must be an integer >= 1, got 0/);
    assert.throws(() => new Mamba(8).forward(T.zeros([1, 4, 6])), /Mamba: the input must be \[B, L, d_model=8\], got \[1, 4, 6\]/);
  });
});
