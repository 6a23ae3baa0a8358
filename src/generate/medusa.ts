// Medusa decoding (Cai et al. 2024, "Medusa: Simple LLM Inference Acceleration Framework with Multiple
// Decoding Heads"): the base's next token (the tree's root) plus candidates from the Medusa heads' top-k
// (sec. 2.1.2: a static "sparse tree" of top-k index paths, the reference's medusa_choices), all verified
// in one forward pass of the base with a tree attention mask (each node sees the cached prefix and its
// ancestors, at position prefix + depth).
// Acceptance: with temperature 0 a node is kept iff its token is the base's greedy choice at its parent,
// so the output is the base's greedy output; with temperature > 0 typical acceptance (sec. 2.3.1): a node
// x is kept if p(x) > min(eps, delta * exp(-H(p))), p the base's sampling distribution at its parent, and
// the longest kept path wins (the first in tree order on ties). The token after the kept path is the
// base's own (greedy or sampled) choice there, the next round's root.
// KV cache: the tree's nodes are laid out in DFS order, so the top-1 chain [0], [0, 0], ... follows the
// root; after a round the cache is truncated to the prefix, the root and the kept nodes that are that
// chain's leading part; kept nodes off it are fed again (with causal masking) in front of the next tree,
// which costs no extra forward pass.

import { RandomGenerator } from "../tensor/rng.js";
import * as ops from "../ops/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { SeqContext, type DecodingState, type ExplicitMask } from "../nn/seq-context.js";
import type { MedusaHeads } from "../peft/medusa.js";
import { checkPrompt, decodeStep, rowsOf, type GenerateOptions, type GenerateResult } from "./generate.js";
import { OutputSink } from "./output.js";
import { sampleNext, validateSampling } from "./sampling.js";
import { samplingProbs } from "./speculative.js";

/** A small sparse tree for 4 heads: top-k index paths, [i] = head 1's (i+1)-th choice after the root. */
export const DEFAULT_MEDUSA_TREE: readonly (readonly number[])[] = [
  [0], [0, 0], [0, 0, 0], [0, 0, 0, 0], [1], [0, 1], [2], [1, 0], [0, 0, 1], [0, 2], [3], [0, 1, 0], [1, 1], [2, 0], [0, 0, 0, 1],
];

export interface MedusaOptions extends Omit<GenerateOptions, "noCache"> {
  heads: MedusaHeads;
  /** Candidate paths of top-k indices (default DEFAULT_MEDUSA_TREE cut to the heads' depth); no deeper than the heads. */
  tree?: readonly (readonly number[])[];
  /** Typical acceptance's hard threshold eps and entropy factor delta (the reference's medusa_generate defaults 0.09, 0.3). */
  eps?: number;
  delta?: number;
}

export interface MedusaStats {
  /** Base forward passes (prefills and tree rounds) and tree rounds. */
  calls: number;
  rounds: number;
  tokens: number;
  /** Head candidates kept over all rounds. */
  accepted: number;
  /** Tokens produced per tree round: the kept candidates + the base's own token (Medusa's acceleration rate). */
  tokensPerRound: number;
  treeSize: number;
}

export interface MedusaResult extends GenerateResult { stats: MedusaStats }

/** A compiled tree: node 0 is the root; nodes 1.. in DFS order with their parent, depth and top-k index. */
export interface MedusaTree { parent: number[]; depth: number[]; rank: number[]; children: number[][]; topK: number[] }

/** Validates the paths (integers >= 0, each path's parent present, no deeper than `heads`) and lays them out. */
export function compileMedusaTree(paths: readonly (readonly number[])[], heads: number): MedusaTree {
  const key = (p: readonly number[]) => p.join(",");
  const seen = new Set<string>();
  for (const p of paths) {
    if (!Array.isArray(p) || !p.length || p.some((i) => !Number.isSafeInteger(i) || i < 0)) throw new RangeError(`medusa tree: every path must be a non-empty list of integers >= 0, got ${JSON.stringify(p)}`);
    if (p.length > heads) throw new RangeError(`medusa tree: path ${JSON.stringify(p)} has depth ${p.length} but there are only ${heads} heads; the tree can be no deeper than the heads`);
    if (seen.has(key(p))) throw new RangeError(`medusa tree: path ${JSON.stringify(p)} is listed twice`);
    seen.add(key(p));
  }
  // lexicographic order with a prefix first is a DFS preorder, children by rank
  const sorted = [...paths].sort((a, b) => { for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i]; return a.length - b.length; });
  const index = new Map<string, number>([["", 0]]);
  const t: MedusaTree = { parent: [-1], depth: [0], rank: [0], children: [[]], topK: new Array<number>(heads).fill(0) };
  sorted.forEach((p, i) => {
    const par = index.get(key(p.slice(0, -1)));
    if (par === undefined) throw new RangeError(`medusa tree: path ${JSON.stringify(p)} has no parent ${JSON.stringify(p.slice(0, -1))} in the tree`);
    index.set(key(p), i + 1);
    t.parent.push(par); t.depth.push(p.length); t.rank.push(p[p.length - 1]); t.children.push([]);
    t.children[par].push(i + 1);
    t.topK[p.length - 1] = Math.max(t.topK[p.length - 1], p[p.length - 1] + 1);
  });
  return t;
}

/** The first k ids by descending value (ties by id). */
function topIds(row: Float32Array, k: number): number[] {
  const out: number[] = [];
  for (let j = 0; j < k; j++) {
    let best = -1;
    for (let i = 0; i < row.length; i++) if (!out.includes(i) && (best < 0 || row[i] > row[best])) best = i;
    out.push(best);
  }
  return out;
}

/**
 * The mask and positions of one verification pass over L cached tokens: P pending tokens (causal; the
 * last is the tree's root) then the tree's `nodes` after the root (a subset of t's, DFS order, closed
 * under parents), each seeing the cache, the pending tokens and its ancestors, at position
 * L + P - 1 + depth. row: tree node -> its row in the pass.
 */
export function treeMask(t: MedusaTree, nodes: readonly number[], L: number, P: number): { mask: ExplicitMask; positions: Int32Array; row: Map<number, number> } {
  const rows = P - 1 + nodes.length, cols = L + rows;
  const visible = new Uint8Array(rows * cols), positions = new Int32Array(rows);
  const row = new Map<number, number>(nodes.map((i, j) => [i, P - 1 + j]));
  for (let q = 0; q < P; q++) { visible.fill(1, q * cols, q * cols + L + q + 1); positions[q] = L + q; }
  nodes.forEach((i, j) => {
    if (j === 0) return;
    const q = P - 1 + j;
    visible.fill(1, q * cols, q * cols + L + P);
    for (let a = i; a > 0; a = t.parent[a]) visible[q * cols + L + row.get(a)!] = 1;
    positions[q] = L + P - 1 + t.depth[i];
  });
  return { mask: { visible, rows, cols }, positions, row };
}


/**
 * Generates from `model` as generate() does (same options and stop rules), with Medusa heads proposing
 * a tree of candidates per forward pass. Greedy output is the model's greedy output as far as its
 * logits in a tree pass equal its logits one token at a time (float rounding can flip a near-tie).
 */
export function medusaGenerate(model: CausalLM, prompt: number[], o: MedusaOptions): MedusaResult {
  validateSampling(o);
  if ((o as { noCache?: boolean }).noCache) throw new RangeError("medusa: noCache is not supported (verification rolls the KV cache back)");
  const { heads } = o;
  const D = (model.config as { dModel?: number }).dModel;
  if (heads.vocabSize !== model.config.vocabSize || (D !== undefined && heads.dModel !== D)) {
    throw new RangeError(`medusa: the heads are for vocabSize ${heads.vocabSize} and dModel ${heads.dModel} but the model has vocabSize ${model.config.vocabSize} and dModel ${D}`);
  }
  const eps = o.eps ?? 0.09, delta = o.delta ?? 0.3;
  if (!(eps > 0 && eps <= 1) || !(delta > 0)) throw new RangeError(`medusa: eps must be in (0, 1] and delta > 0, got eps ${eps}, delta ${delta}`);
  const full = compileMedusaTree(o.tree ?? DEFAULT_MEDUSA_TREE.filter((p) => p.length <= heads.numHeads), heads.numHeads);
  const ctx = checkPrompt("medusa", model, prompt, o.context);
  const g = new RandomGenerator(o.seed ?? 0);
  const sink = new OutputSink(o, prompt);
  const tokens = [...prompt];
  const greedy = (o.temperature ?? 1) === 0;
  const n = { calls: 0, rounds: 0, tokens: 0, accepted: 0 };
  const capacity = ctx + full.parent.length;
  let state: DecodingState = model.newState(capacity);
  let ws = 0, left = o.maxNewTokens;
  // the head candidates for the token after the root (null: the root is not known yet, prefill first)
  let cands: number[][] | null = null;
  const seenWith = (path: number[]): Iterable<number> => ({ *[Symbol.iterator]() { yield* tokens; yield* path; } });
  const emit = (id: number): boolean => {
    if (left <= 0 || !sink.push(id)) { left = 0; return false; }
    tokens.push(id);
    n.tokens++;
    return --left > 0;
  };
  const headCandidates = (hidden: Float32Array, t: MedusaTree): number[][] => {
    const h = ops.tensor(hidden, { shape: [1, 1, hidden.length] });
    return decodeStep(null, () => t.topK.map((k, d) => (k ? topIds(heads.head(d, h).toTypedArray() as Float32Array, k) : [])));
  };
  const forward = (ids: number[], c: SeqContext, logitRows?: Int32Array) => {
    n.calls++;
    return decodeStep(c.state, () => {
      const out = model.forward(ops.tensor(Int32Array.from(ids), { shape: [1, ids.length] }), c, { logitRows });
      if (!out.hidden) throw new Error("medusa: the model's forward returns no hidden states, which the heads read");
      if (!c.state!.canTruncate(c.state!.length - 1)) throw new Error("medusa: the model's decoding state cannot roll back (a recurrent state folds every position in); use a model with a KV cache");
      return { logits: rowsOf(out.logits), hidden: rowsOf(out.hidden) };
    });
  };

  const wasTraining = model.training;
  model.eval();
  try {
    while (left > 0) {
      if (tokens.length - ws > ctx) {
        // slide as generate does: keep the newest half, prefill it again
        ws = tokens.length - Math.max(1, ctx >> 1);
        state = model.newState(capacity);
        cands = null;
      }
      const L = state.length, pending = tokens.slice(ws + L);
      if (!cands) {
        const out = forward(pending, SeqContext.decode(state), Int32Array.of(pending.length - 1));
        const last = out.logits.length - 1;
        if (!emit(sampleNext(Float32Array.from(out.logits[last]), tokens, o, g))) break;
        cands = headCandidates(out.hidden[out.hidden.length - 1], full);
        continue;
      }
      // the root is tokens' last (pending's last); a node at depth d stands for token r + d, whose
      // logits read a window of r + d - ws + 1 tokens: no more than ctx
      const r = tokens.length - 1, maxDepth = ctx - 1 - (r - ws);
      const nodes = full.parent.map((_, i) => i).filter((i) => full.depth[i] <= maxDepth);
      const tok = nodes.map((i) => (i === 0 ? tokens[r] : cands![full.depth[i] - 1][full.rank[i]]));
      const P = pending.length, { mask, positions, row } = treeMask(full, nodes, L, P);
      // a chain (each node the previous one's child) is plain causal decoding: the fused kernels run it
      const chain = nodes.every((i, j) => j === 0 || full.parent[i] === nodes[j - 1]);
      const out = forward([...pending.slice(0, P - 1), ...tok], chain ? SeqContext.decode(state) : SeqContext.masked(mask, { positions, state }));
      n.rounds++;
      const logitsAt = (i: number) => Float32Array.from(out.logits[row.get(i)!]);
      const tokOf = (i: number) => tok[nodes.indexOf(i)];
      const kids = (i: number) => full.children[i].filter((c) => row.has(c));
      // the kept path (tree nodes after the root)
      let path: number[] = [];
      if (greedy) {
        for (let cur = 0; ;) {
          const want = sampleNext(logitsAt(cur), seenWith(path.map(tokOf)), o, g);
          const next = kids(cur).find((c) => tokOf(c) === want);
          if (next === undefined) break;
          path.push(next);
          cur = next;
        }
      } else {
        // typical acceptance, the longest kept path by DFS (the first in tree order on ties)
        const best = (cur: number, sofar: number[]): number[] => {
          const p = samplingProbs(out.logits[row.get(cur)!], seenWith(sofar.map(tokOf)), o);
          const H = -p.reduce((s, x) => s + (x > 0 ? x * Math.log(x) : 0), 0);
          const thr = Math.min(eps, delta * Math.exp(-H));
          let longest = sofar;
          for (const c of kids(cur)) {
            if (!(p[tokOf(c)] > thr)) continue;
            const got = best(c, [...sofar, c]);
            if (got.length > longest.length) longest = got;
          }
          return longest;
        };
        path = best(0, []);
      }
      const last = path.length ? path[path.length - 1] : 0;
      const after = sampleNext(logitsAt(last), seenWith(path.map(tokOf)), o, g);
      n.accepted += path.length;
      // keep the cache through the root and the kept nodes that lead the DFS layout
      let lead = 0;
      while (lead < path.length && nodes[lead + 1] === path[lead]) lead++;
      state.truncate(L + P + lead);
      cands = headCandidates(out.hidden[row.get(last)!], full);
      let go = true;
      for (const i of path) if (!(go = emit(tokOf(i)))) break;
      if (!go || !emit(after)) break;
    }
  } finally {
    model.train(wasTraining);
  }
  const stats: MedusaStats = { ...n, tokensPerRound: n.rounds ? (n.accepted + n.rounds) / n.rounds : 0, treeSize: full.parent.length - 1 };
  return { ...sink.finish(), stats };
}
