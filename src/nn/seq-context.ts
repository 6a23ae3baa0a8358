// SeqContext: what a model needs to know about the tokens of one forward call besides their values,
// passed down from the model to every mixer instead of a bare start position:
// - positions: start .. start + T - 1 by default; or explicit per-token positions ([T] shared by the
//   batch, or [B, T] row-major), which RoPE and learned position embeddings read (packing restarts
//   them per document, tree decoding gives a token its depth);
// - the mask: causal (default), bidirectional, causal within packed documents (cuSeqlens, the varlen
//   form of FlashAttention-2), or an explicit [Tq, S] visibility matrix (a speculative-decoding tree);
// - the decoding state (KV caches, recurrent states) with rollback: truncate(n) drops positions >= n;
// - key/value prefixes (prefix tuning, Li & Liang 2021 §4.2): per layer, keys and values in front of
//   the sequence's (and the cache's) that every query sees; the mixers that cannot take them refuse;
// - ragged segments (batched decoding, generate/batch.ts): one row holding the pending tokens of several
//   sequences back to back, each continuing its own decoding state; position-wise layers run on all of
//   them at once, attention runs per segment against that sequence's cache (no padding).

import type { Tensor } from "../tensor/tensor.js";

/** A decoding state: one layer's KV cache or recurrent state, or a model's list of them. */
export interface DecodingState {
  /** Positions consumed so far. */
  readonly length: number;
  /** Whether truncate(n) would succeed (n in [0, length] and the state can forget that far). */
  canTruncate(n: number): boolean;
  /** Forget positions >= n (n <= length); throws, changing nothing, when the state cannot roll back. */
  truncate(n: number): void;
}

/** The decoding states of a model's layers, rolled back together. */
export class LayerStates implements DecodingState {
  constructor(readonly layers: DecodingState[]) {}
  get length(): number {
    return this.layers.length ? this.layers[0].length : 0;
  }
  canTruncate(n: number): boolean {
    return this.layers.every((l) => l.canTruncate(n));
  }
  /** All layers or none: a layer that cannot roll back throws before any layer has changed. */
  truncate(n: number): void {
    checkTruncate(this, n);
    this.layers.find((l) => !l.canTruncate(n))?.truncate(n);
    for (const l of this.layers) l.truncate(n);
  }
}

/** A valid rollback target of s: an integer in [0, s.length]. */
export function validTruncate(s: DecodingState, n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0 && n <= s.length;
}

/** Validates a rollback target (for every truncate implementation). */
export function checkTruncate(s: DecodingState, n: number): void {
  if (!validTruncate(s, n)) throw new RangeError(`truncate: n must be an integer in [0, ${s.length}], got ${n}`);
}

/**
 * A recurrent state (linear attention's sum of phi(k) v^T, the mixed-chunk GAU's sum of K'^T V): every
 * position is folded into one sum, so only a no-op rollback is possible.
 */
export class RecurrentState implements DecodingState {
  length = 0;
  /** variant: the attention name that errors report. */
  constructor(readonly variant: string) {}

  canTruncate(n: number): boolean {
    return n === this.length;
  }

  truncate(n: number): void {
    checkTruncate(this, n);
    if (n < this.length) throw new Error(`${this.variant}: rollback not supported (the recurrent state cannot forget positions); keep a copy of the state instead`);
  }
}

/** An explicit visibility matrix: visible[i * S + j] != 0 iff query row i sees key j (keys include the cache). */
export interface ExplicitMask { visible: Uint8Array; rows: number; cols: number }

/** One layer's key/value prefix: k and v [Hkv, p, d], shared by the batch, given as they are (no RoPE). */
export interface KVPrefix { readonly k: Tensor; readonly v: Tensor }

/** Ragged segments: sequence i owns tokens [offsets[i], offsets[i + 1]) of the row and continues states[i]. */
export interface Segments { readonly offsets: Int32Array; readonly states: readonly DecodingState[] }

export interface SeqContextInit {
  /** First position when positions are implicit (default: the state's length, else 0). */
  start?: number;
  positions?: Int32Array | null;
  causal?: boolean;
  cuSeqlens?: Int32Array | null;
  mask?: ExplicitMask | null;
  state?: DecodingState | null;
  /** A model's key/value prefixes, one per layer (layer(i) hands layer i its own as `prefix`). */
  prefixes?: readonly KVPrefix[] | null;
  /** This layer's key/value prefix. */
  prefix?: KVPrefix | null;
  /** Ragged segments (see SeqContext.ragged). */
  segments?: Segments | null;
}

export class SeqContext {
  readonly start: number;
  /** Explicit per-token positions, length T or B * T; null = start .. start + T - 1. */
  readonly positions: Int32Array | null;
  /** Query i sees keys j <= i (with an explicit mask: the mask decides and this is ignored). */
  readonly causal: boolean;
  /** Packed documents: [0, l1, l1 + l2, ..., T], shared by every batch row. */
  readonly cuSeqlens: Int32Array | null;
  readonly mask: ExplicitMask | null;
  /** The state of the module receiving this context (a model's LayerStates, a layer's cache). */
  readonly state: DecodingState | null;
  /** A model's per-layer key/value prefixes (prefix tuning), or null. */
  readonly prefixes: readonly KVPrefix[] | null;
  /** This layer's key/value prefix, or null. */
  readonly prefix: KVPrefix | null;
  /** Ragged segments, each with its own state (a model's LayerStates, or a layer's), or null. */
  readonly segments: Segments | null;

  constructor(o: SeqContextInit = {}) {
    this.state = o.state ?? null;
    this.start = o.start ?? this.state?.length ?? 0;
    this.positions = o.positions ?? null;
    this.causal = o.causal ?? true;
    this.cuSeqlens = o.cuSeqlens ?? null;
    this.mask = o.mask ?? null;
    this.prefixes = o.prefixes ?? null;
    this.prefix = o.prefix ?? null;
    this.segments = o.segments ?? null;
    if (this.segments && (this.state || this.mask || this.cuSeqlens || this.prefixes || this.prefix || !this.positions || !this.causal)) {
      throw new RangeError("SeqContext: ragged segments carry their own states and need explicit positions, a causal mask and no prefixes");
    }
    if (!Number.isSafeInteger(this.start) || this.start < 0) throw new RangeError(`SeqContext: start must be an integer >= 0, got ${this.start}`);
    if (this.cuSeqlens && this.state) throw new RangeError("SeqContext: packed documents (cuSeqlens) cannot continue a decoding state");
    if (this.mask && this.cuSeqlens) throw new RangeError("SeqContext: give either an explicit mask or packed documents (cuSeqlens), not both");
    // a mask's columns and packed documents' offsets would have to count the prefix keys: not supported
    if ((this.prefixes || this.prefix) && (this.mask || this.cuSeqlens)) throw new RangeError("SeqContext: key/value prefixes (prefix tuning) cannot be combined with an explicit mask or packed documents");
    if (this.state && this.start !== this.state.length) {
      throw new RangeError(`SeqContext: start ${this.start} does not continue the decoding state, which holds ${this.state.length} positions`);
    }
  }

  /** Causal attention at positions start .. start + T - 1 (what every model did before SeqContext). */
  static causal(o: { start?: number } = {}): SeqContext {
    return o.start ? new SeqContext(o) : DEFAULT;
  }

  /** Every token sees every token (encoders, ViT, diffusion denoisers). */
  static bidirectional(): SeqContext {
    return new SeqContext({ causal: false });
  }

  /** Documents of these lengths packed into each row: causal inside a document, positions restart at 0. */
  static packed(lengths: readonly number[]): SeqContext {
    if (!lengths.length || lengths.some((l) => !Number.isSafeInteger(l) || l < 1)) throw new RangeError(`SeqContext.packed: lengths must be integers >= 1, got [${lengths.join(", ")}]`);
    const cu = new Int32Array(lengths.length + 1);
    lengths.forEach((l, i) => { cu[i + 1] = cu[i] + l; });
    const positions = new Int32Array(cu[lengths.length]);
    lengths.forEach((l, i) => { for (let p = 0; p < l; p++) positions[cu[i] + p] = p; });
    return new SeqContext({ cuSeqlens: cu, positions });
  }

  /** Explicit per-token positions (length T, or B * T row by row) with a causal mask. */
  static atPositions(positions: Int32Array): SeqContext {
    return new SeqContext({ positions });
  }

  /** An explicit [Tq, S] visibility matrix over cached + new keys (e.g. a token tree after a cached prefix). */
  static masked(mask: ExplicitMask | boolean[][], o: { positions?: Int32Array; state?: DecodingState } = {}): SeqContext {
    if (!Array.isArray(mask)) return new SeqContext({ ...o, mask });
    const cols = mask.length ? mask[0].length : 0;
    if (mask.some((r) => r.length !== cols)) throw new RangeError("SeqContext.masked: the mask rows differ in length");
    return new SeqContext({ ...o, mask: { visible: Uint8Array.from(mask.flat(), Number), rows: mask.length, cols } });
  }

  /**
   * Ragged batched decoding: sequence i contributes lengths[i] tokens (laid back to back in one row,
   * [1, sum]) continuing states[i]; positions are each state's length onwards.
   */
  static ragged(states: readonly DecodingState[], lengths: readonly number[]): SeqContext {
    if (!states.length || states.length !== lengths.length || lengths.some((l) => !Number.isSafeInteger(l) || l < 1)) {
      throw new RangeError(`SeqContext.ragged: one length >= 1 per state expected, got ${states.length} states and lengths [${lengths.join(", ")}]`);
    }
    const offsets = new Int32Array(lengths.length + 1);
    lengths.forEach((l, i) => { offsets[i + 1] = offsets[i] + l; });
    const positions = new Int32Array(offsets[lengths.length]);
    states.forEach((s, i) => { for (let t = 0; t < lengths[i]; t++) positions[offsets[i] + t] = s.length + t; });
    return new SeqContext({ positions, segments: { offsets, states } });
  }

  /** Continue from a decoding state: positions start at its length. */
  static decode(state: DecodingState): SeqContext {
    return new SeqContext({ state });
  }

  /** The same context continuing another state (start = its length, or 0 without one). */
  withState(state: DecodingState | null): SeqContext {
    return new SeqContext({ ...this.fields(), state, start: state?.length ?? 0 });
  }

  /** The context for layer i: its own state and prefix out of the model's (no copy without either). */
  layer(i: number): SeqContext {
    if (this.segments) {
      const states = this.segments.states.map((s) => {
        if (!(s instanceof LayerStates)) throw new TypeError("SeqContext.layer: a segment's state is not a model's LayerStates");
        return s.layers[i];
      });
      return new SeqContext({ ...this.fields(), segments: { offsets: this.segments.offsets, states } });
    }
    if (!this.state && !this.prefixes) return this;
    if (this.state && !(this.state instanceof LayerStates)) throw new TypeError("SeqContext.layer: the state is not a model's LayerStates");
    const prefix = this.prefixes ? this.prefixes[i] : null;
    if (prefix === undefined) throw new RangeError(`SeqContext.layer: no key/value prefix for layer ${i} (${this.prefixes!.length} given)`);
    return new SeqContext({ ...this.fields(), state: this.state ? this.state.layers[i] : null, prefixes: null, prefix });
  }

  /** RoPE's argument: the start, or the explicit positions. */
  get ropePositions(): number | Int32Array {
    return this.positions ?? this.start;
  }

  /**
   * Checks the context against B x T tokens and returns the largest position + 1 (for the context
   * length check). An explicit mask must be [T, S], S = (state length) + T.
   */
  check(B: number, T: number): number {
    const cu = this.cuSeqlens;
    if (cu && cu[cu.length - 1] !== T) throw new RangeError(`SeqContext: packed lengths sum to ${cu[cu.length - 1]}, but the input has ${T} tokens`);
    const p = this.positions;
    if (p && p.length !== T && p.length !== B * T) throw new RangeError(`SeqContext: ${p.length} positions for ${B} x ${T} tokens (expected ${T} or ${B * T})`);
    if (this.mask) {
      const S = (this.state?.length ?? 0) + T, m = this.mask;
      if (m.rows !== T || m.cols !== S || m.visible.length !== T * S) throw new RangeError(`SeqContext: the mask is ${m.rows} x ${m.cols} (${m.visible.length} entries), expected ${T} x ${S} (queries x cached + new keys)`);
      for (let i = 0; i < T; i++) if (!m.visible.subarray(i * S, (i + 1) * S).some((v) => v !== 0)) throw new RangeError(`SeqContext: query ${i} of the mask sees no key`);
    }
    if (!p) return this.start + T;
    let max = -1;
    for (const v of p) {
      if (v < 0) throw new RangeError(`SeqContext: positions must be >= 0, got ${v}`);
      if (v > max) max = v;
    }
    return max + 1;
  }

  /** Throws a clear error naming the variant when the context asks for something it cannot do. */
  require(variant: string, can: { positions?: boolean; packed?: boolean; bidirectional?: boolean; mask?: boolean; prefix?: boolean; ragged?: boolean }): void {
    const no = (what: string) => { throw new Error(`attention "${variant}" does not support ${what}`); };
    if (this.segments && !can.ragged) no("ragged batches (segments with their own states)");
    if ((this.prefix || this.prefixes) && !can.prefix) no("key/value prefixes (prefix tuning)");
    if (this.cuSeqlens && !can.packed) no("packed documents (cuSeqlens)");
    if (this.mask && !can.mask) no("an explicit attention mask");
    if (!this.causal && !can.bidirectional) no("bidirectional attention");
    if (this.positions && !can.positions) no("explicit per-token positions");
  }

  private fields(): SeqContextInit {
    return { start: this.start, positions: this.positions, causal: this.causal, cuSeqlens: this.cuSeqlens, mask: this.mask, state: this.state, prefixes: this.prefixes, prefix: this.prefix, segments: this.segments };
  }
}

const DEFAULT = new SeqContext();
