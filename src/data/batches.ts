// Language-model batches from one long stream of token ids, as nanoGPT's get_batch: random windows
// x = ids[i, i+T), y = ids[i+1, i+T+1] with i uniform in [0, n - T). The window starts come from a
// counter-based RandomGenerator, so the sampler's whole state (the data position) is the RNG state.

import { RandomGenerator, type RngState } from "../tensor/rng.js";
import { Tensor } from "../tensor/tensor.js";
import { trackStorage } from "../tensor/memory.js";

export class TokenDataset {
  constructor(readonly ids: Int32Array, readonly name = "dataset") {
    if (!(ids instanceof Int32Array)) throw new TypeError(`${name}: token ids must be an Int32Array`);
  }

  get length(): number { return this.ids.length; }

  /** Contiguous split (nanoGPT): the first (1 - valFraction) of the stream is train, the rest val. */
  split(valFraction: number): { train: TokenDataset; val: TokenDataset } {
    if (!(valFraction >= 0 && valFraction < 1)) throw new RangeError(`${this.name}.split: valFraction must be in [0, 1), got ${valFraction}`);
    const n = Math.floor(this.ids.length * (1 - valFraction));
    return {
      train: new TokenDataset(this.ids.subarray(0, n), `${this.name} (train split)`),
      val: new TokenDataset(this.ids.subarray(n), `${this.name} (val split)`),
    };
  }
}

export interface Batch {
  x: Tensor;
  y: Tensor;
  /** Packed documents (documents.ts): cumulative lengths over x's single row, and per-token positions
   * restarting at 0 in each segment (SeqContext's cuSeqlens and positions). */
  cuSeqlens?: Int32Array;
  positions?: Int32Array;
  /** Real target tokens (default x.numel): what tokens/s counts. */
  tokens?: number;
}

/** A stream of batches whose whole state is {seed, counter} (exact resume; counter 0 restarts it). */
export interface Sampler {
  next(): Batch;
  getState(): RngState;
  setState(s: RngState): void;
}

export class BatchSampler implements Sampler {
  private readonly gen: RandomGenerator;

  constructor(readonly data: TokenDataset, readonly batchSize: number, readonly blockSize: number, seed = 0) {
    for (const [k, v] of [["batchSize", batchSize], ["blockSize", blockSize]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`BatchSampler: ${k} must be a positive integer, got ${v}`);
    }
    if (data.length < blockSize + 1) {
      throw new RangeError(`BatchSampler: ${data.name} has ${data.length} tokens; a window of blockSize ${blockSize} needs at least ${blockSize + 1} (blockSize + 1 for the shifted targets)`);
    }
    this.gen = new RandomGenerator(seed);
  }

  /** Next batch: x and y int32 [B, T]. */
  next(): Batch {
    const { batchSize: B, blockSize: T } = this;
    const starts = new Int32Array(B);
    this.gen.randint(starts, this.data.length - T);
    const x = new Int32Array(B * T), y = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      x.set(this.data.ids.subarray(starts[b], starts[b] + T), b * T);
      y.set(this.data.ids.subarray(starts[b] + 1, starts[b] + T + 1), b * T);
    }
    trackStorage(x);
    trackStorage(y);
    return { x: new Tensor(x, [B, T]), y: new Tensor(y, [B, T]) };
  }

  getState(): RngState { return this.gen.getState(); }

  setState(s: RngState): void { this.gen.setState(s); }
}
