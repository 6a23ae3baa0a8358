// The attention mask rules, shared by both backends' flash kernels and the materializing attention op
// (ops/attention.ts) so that all see the same keys: the mask arguments, their validation, and the
// visibility test in per-tile and per-element form. (The native kernels receive the block table and
// re-check the arguments with the same messages, native/napi/flash.cc.)


/**
 * Block-sparse attention mask (Child et al. 2019): positions are cut into blocks of `blockSize`; the
 * keys of block kb are visible to the queries of block qb iff allow(qb, kb), or allow[qb * nBlocks + kb]
 * != 0 for a table, with nBlocks = ceil(S / blockSize) on both axes. Blocks index positions (see
 * AttentionMaskArgs), not storage rows. A native kernel receives the table (blockMaskTable). A table may
 * also hold only the rows of the query blocks, floor((S - Tq) / blockSize) .. nBlocks - 1 (the queries
 * are the last Tq positions): with blockSize 1 that is an explicit [Tq, S] visibility matrix, e.g. a
 * speculative-decoding token tree after a cached prefix.
 */
export interface BlockMask {
  blockSize: number;
  allow: Uint8Array | ((qb: number, kb: number) => boolean);
}

/**
 * Which keys a query sees; shared by the flash kernels and the materializing attention op. A query at
 * storage row t has position i = t + (S - Tq) (KV-cache decoding: the queries are the last Tq of S);
 * key row j has position j. With cuSeqlens both are taken relative to their sequence start. Key j is
 * visible to query i iff all of: same sequence; j <= i if causal; j > i - window if window > 0;
 * the block mask allows (floor(i / blockSize), floor(j / blockSize)). A query with no visible key
 * gets output 0 and logsumexp -Infinity.
 */
export interface AttentionMaskArgs {
  causal: boolean;
  /** Sliding window w (Beltagy et al. 2020): 0 = unlimited. */
  window: number;
  /**
   * Varlen packing: sequences of lengths l1, l2, ... packed in every row of length T = Tq = S, as the
   * cumulative lengths [0, l1, l1 + l2, ..., T]. No query attends across a boundary; positions restart.
   */
  cuSeqlens: Int32Array | null;
  blockMask: BlockMask | null;
}

/** A tile is skipped (no visible pair), partial (mask per element) or full (no mask). */
export const Tile = { Skip: 0, Partial: 1, Full: 2 } as const;
export type Tile = (typeof Tile)[keyof typeof Tile];

/** Queries rows q0 .. q0 + nq - 1 against key rows k0 .. k0 + nk - 1; query row q0 + t has position t + off. */
export interface Segment { q0: number; k0: number; nq: number; nk: number; off: number }

/**
 * The block mask as a table (what a native kernel takes) of nBlocks = ceil(S / blockSize) columns and
 * either all nBlocks rows (qb0 = 0) or only the query blocks' rows from qb0 = floor((S - Tq) / blockSize).
 */
export function blockMaskTable(m: BlockMask, Tq: number, S: number): { table: Uint8Array; qb0: number } {
  if (!Number.isInteger(m.blockSize) || m.blockSize < 1) throw new RangeError(`attention mask: blockSize must be a positive integer, got ${m.blockSize}`);
  const nb = Math.ceil(S / m.blockSize), qb0 = Tq < S ? Math.floor((S - Tq) / m.blockSize) : 0;
  const allow = m.allow;
  if (allow instanceof Uint8Array) {
    if (allow.length === nb * nb) return { table: allow, qb0: 0 };
    if (allow.length === (nb - qb0) * nb) return { table: allow, qb0 };
    throw new RangeError(`attention mask: block table has ${allow.length} entries, expected ${nb} x ${nb} (or ${nb - qb0} x ${nb}: the query blocks only)`);
  }
  const table = new Uint8Array(nb * nb);
  for (let qb = 0; qb < nb; qb++) for (let kb = 0; kb < nb; kb++) table[qb * nb + kb] = allow(qb, kb) ? 1 : 0;
  return { table, qb0: 0 };
}

/** The visibility rule of AttentionMaskArgs, validated, in per-tile and per-element form. */
export class AttentionMask {
  readonly segments: Segment[];
  /** True when every query sees every key of its row (no masking to apply). */
  readonly trivial: boolean;
  private readonly causal: boolean;
  private readonly window: number;
  private readonly table: Uint8Array | null;
  private readonly bs: number;
  private readonly nb: number;
  private readonly qb0: number;
  private readonly cu: Int32Array | null;

  constructor(a: AttentionMaskArgs, Tq: number, S: number) {
    if (!Number.isInteger(a.window) || a.window < 0) throw new RangeError(`attention mask: window must be an integer >= 0 (0 = unlimited), got ${a.window}`);
    this.causal = a.causal;
    this.window = a.window;
    const bt = a.blockMask ? blockMaskTable(a.blockMask, Tq, S) : null;
    this.table = bt?.table ?? null;
    this.qb0 = bt?.qb0 ?? 0;
    this.bs = a.blockMask ? a.blockMask.blockSize : 1;
    this.nb = Math.ceil(S / this.bs);
    this.cu = a.cuSeqlens;
    if (this.cu) {
      const cu = this.cu;
      if (Tq !== S) throw new RangeError(`attention mask: cuSeqlens needs as many queries as keys (packed self-attention), got ${Tq} and ${S}`);
      let ok = cu.length >= 2 && cu[0] === 0 && cu[cu.length - 1] === S;
      for (let i = 1; ok && i < cu.length; i++) ok = cu[i] >= cu[i - 1];
      if (!ok) throw new RangeError(`attention mask: cuSeqlens must rise from 0 to the sequence length ${S}, got [${Array.from(cu).join(", ")}]`);
      this.segments = [];
      for (let i = 1; i < cu.length; i++) {
        const n = cu[i] - cu[i - 1];
        if (n > 0) this.segments.push({ q0: cu[i - 1], k0: cu[i - 1], nq: n, nk: n, off: 0 });
      }
    } else {
      this.segments = [{ q0: 0, k0: 0, nq: Tq, nk: S, off: S - Tq }];
    }
    this.trivial = !a.causal && a.window === 0 && !this.table && !this.cu;
  }

  /** Key position j visible to query position i (same sequence assumed). */
  visible(i: number, j: number): boolean {
    if (this.causal && j > i) return false;
    if (this.window > 0 && j <= i - this.window) return false;
    return !this.table || i < 0 || this.table[(Math.floor(i / this.bs) - this.qb0) * this.nb + Math.floor(j / this.bs)] !== 0;
  }

  /** Status of the tile of query positions i0..i1 x key positions j0..j1 (inclusive). */
  tile(i0: number, i1: number, j0: number, j1: number): Tile {
    let full = true;
    if (this.causal) {
      if (j0 > i1) return Tile.Skip;
      if (j1 > i0) full = false;
    }
    if (this.window > 0) {
      if (j1 <= i0 - this.window) return Tile.Skip;
      if (j0 <= i1 - this.window) full = false;
    }
    if (this.table) {
      const b0 = Math.floor(i0 / this.bs), b1 = Math.floor(i1 / this.bs), c0 = Math.floor(j0 / this.bs), c1 = Math.floor(j1 / this.bs);
      let any = false, all = true;
      for (let qb = b0; qb <= b1; qb++) {
        for (let kb = c0; kb <= c1; kb++) {
          if (this.table[(qb - this.qb0) * this.nb + kb]) any = true;
          else all = false;
        }
      }
      if (!any) return Tile.Skip;
      if (!all) full = false;
    }
    return full ? Tile.Full : Tile.Partial;
  }

  /** Materializing path: set row[base + j] = -Infinity for every key row j that query row t cannot see. Returns whether any key is visible. */
  maskRow(t: number, row: Float32Array | Float64Array, base: number, S: number): boolean {
    const sg = this.segmentOf(t);
    let any = false;
    for (let j = 0; j < S; j++) {
      const jl = j - sg.k0;
      if (jl >= 0 && jl < sg.nk && this.visible(t - sg.q0 + sg.off, jl)) any = true;
      else row[base + j] = -Infinity;
    }
    return any;
  }

  private segmentOf(t: number): Segment {
    let lo = 0, hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.segments[mid].q0 <= t) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo];
  }
}
