// LoRA from a full fine-tune (the seed's "save the increment by SVD, merge it at inference"): for each
// targeted Linear, the delta W_tuned - W_base is replaced by its best rank-r approximation
// (Eckart-Young: the truncated SVD U_r S_r V_r^T), written as a LoRA adapter B = U_r S_r^(1/2),
// A = S_r^(1/2) V_r^T with alpha = r (scaling 1). The SVD comes from the symmetric eigenproblem of the
// smaller Gram matrix (cyclic Jacobi, float64), enough for the top singular values of these sizes.

import { Linear } from "../nn/layers.js";
import type { TransformerLM } from "../models/transformer.js";
import { noGrad } from "../tensor/autograd.js";
import { applyLora, loraLayers, type LoraConfig } from "./index.js";
import { moduleNaming, selectModules, type TargetModules } from "./targets.js";

/** Eigenvalues (descending) and column eigenvectors of a symmetric n x n matrix (row-major), by cyclic Jacobi rotations. */
export function symmetricEigen(g: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(g), v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0, diag = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) (i === j ? (diag += a[i * n + j]! ** 2) : (off += a[i * n + j]! ** 2));
    if (off <= 1e-30 * Math.max(diag, 1e-300)) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (apq === 0) continue;
        // Golub & Van Loan, Algorithm 8.5.2 (symmetric Schur decomposition of the 2 x 2 block)
        const tau = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(tau || 1) / (Math.abs(tau) + Math.sqrt(1 + tau * tau));
        const c = 1 / Math.sqrt(1 + t * t), s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!, akq = a[k * n + q]!;
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!, aqk = a[q * n + k]!;
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!, vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j]! - a[i * n + i]!);
  const values = Float64Array.from(order, (i) => a[i * n + i]!);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => { for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src]!; });
  return { values, vectors };
}

/** The rank-r truncated SVD of an m x n matrix: U [m, r], s [r], V [n, r] (row-major). */
export function truncatedSvd(d: Float64Array, m: number, n: number, r: number): { U: Float64Array; s: Float64Array; V: Float64Array } {
  const k = Math.min(m, n), rank = Math.min(r, k);
  const left = m <= n; // eigen-decompose the smaller Gram matrix: D D^T (m x m) or D^T D (n x n)
  const gram = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = i; j < k; j++) {
      let acc = 0;
      if (left) for (let t = 0; t < n; t++) acc += d[i * n + t]! * d[j * n + t]!;
      else for (let t = 0; t < m; t++) acc += d[t * n + i]! * d[t * n + j]!;
      gram[i * k + j] = gram[j * k + i] = acc;
    }
  }
  const { values, vectors } = symmetricEigen(gram, k);
  const s = Float64Array.from({ length: rank }, (_, i) => Math.sqrt(Math.max(values[i]!, 0)));
  const U = new Float64Array(m * rank), V = new Float64Array(n * rank);
  for (let c = 0; c < rank; c++) {
    const inv = s[c]! > 0 ? 1 / s[c]! : 0;
    if (left) {
      for (let i = 0; i < m; i++) U[i * rank + c] = vectors[i * k + c]!;
      for (let j = 0; j < n; j++) { let acc = 0; for (let i = 0; i < m; i++) acc += d[i * n + j]! * U[i * rank + c]!; V[j * rank + c] = acc * inv; }
    } else {
      for (let j = 0; j < n; j++) V[j * rank + c] = vectors[j * k + c]!;
      for (let i = 0; i < m; i++) { let acc = 0; for (let j = 0; j < n; j++) acc += d[i * n + j]! * V[j * rank + c]!; U[i * rank + c] = acc * inv; }
    }
  }
  return { U, s, V };
}

export interface ExtractedLora {
  config: LoraConfig;
  /** Per adapted layer: ||delta - B A||_F / ||delta||_F. */
  layers: { path: string; relError: number }[];
  /** Over all adapted layers together. */
  relError: number;
}

/**
 * Add to `base` (in place) a rank-r LoRA adapter approximating `tuned - base` on the Linear layers
 * `targetModules` selects (both models of one config). Returns its config and reconstruction errors.
 */
export function extractLora(base: TransformerLM, tuned: TransformerLM, o: { r: number; targetModules: TargetModules; name?: string }): ExtractedLora {
  if (JSON.stringify(base.config) !== JSON.stringify(tuned.config)) throw new Error("extractLora: the base and the tuned model have different configs; expected a fine-tune of this base");
  const naming = moduleNaming(base.config);
  const paths = selectModules(base, o.targetModules, naming, (m) => m instanceof Linear, "Linear", "extractLora").map(([p]) => p);
  const tunedSd = tuned.stateDict(), baseSd = base.stateDict();
  const factors = new Map<string, { A: Float32Array; B: Float32Array }>();
  const layers: ExtractedLora["layers"] = [];
  let errSq = 0, normSq = 0;
  for (const p of paths) {
    const w0 = baseSd[`${p}.weight`]!, w1 = tunedSd[`${p}.weight`]!;
    const [m, n] = w0.shape as [number, number];
    const a0 = w0.toTypedArray(), a1 = w1.toTypedArray();
    const delta = Float64Array.from({ length: m * n }, (_, i) => a1[i]! - a0[i]!);
    const { U, s, V } = truncatedSvd(delta, m, n, o.r);
    const r = s.length;
    const B = new Float32Array(m * o.r), A = new Float32Array(o.r * n);
    for (let c = 0; c < r; c++) {
      const h = Math.sqrt(s[c]!);
      for (let i = 0; i < m; i++) B[i * o.r + c] = U[i * r + c]! * h;
      for (let j = 0; j < n; j++) A[c * n + j] = V[j * r + c]! * h;
    }
    let e = 0, d = 0;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let ba = 0;
        for (let c = 0; c < o.r; c++) ba += B[i * o.r + c]! * A[c * n + j]!;
        e += (delta[i * n + j]! - ba) ** 2;
        d += delta[i * n + j]! ** 2;
      }
    }
    layers.push({ path: p, relError: d > 0 ? Math.sqrt(e / d) : 0 });
    errSq += e;
    normSq += d;
    factors.set(p, { A, B });
  }
  const config: LoraConfig = { r: o.r, alpha: o.r, targetModules: o.targetModules, name: o.name };
  applyLora(base, config);
  noGrad(() => {
    for (const [p, l] of loraLayers(base)) {
      const f = factors.get(p);
      if (!f) continue;
      const a = l.adapter(o.name ?? "default");
      (a.A.data as Float32Array).set(f.A);
      (a.B.data as Float32Array).set(f.B);
    }
  });
  return { config, layers, relError: normSq > 0 ? Math.sqrt(errSq / normSq) : 0 };
}
