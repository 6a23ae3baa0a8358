// Per-layer key/value cache for incremental decoding: [B, Hkv, capacity, d] buffers, filled in place.
// GQA-aware: it stores the Hkv key/value heads, never the repeated query-head copies.

import { backend } from "../../backend/registry.js";
import * as ops from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import { checkTruncate, validTruncate } from "../seq-context.js";
import type { AttentionState } from "./types.js";

export class KVCache implements AttentionState {
  private k: Tensor | null = null;
  private v: Tensor | null = null;
  length = 0;

  constructor(readonly capacity: number) {}

  /** Append k, v of shape [B, Hkv, T, d]; returns views of everything cached so far. */
  append(k: Tensor, v: Tensor): [Tensor, Tensor] {
    const [B, H, T, d] = k.shape;
    if (this.length + T > this.capacity) {
      throw new RangeError(`KV cache full: ${this.length} + ${T} tokens exceed the context of ${this.capacity}`);
    }
    if (!this.k || !this.v) {
      this.k = ops.zeros([B, H, this.capacity, d], { dtype: k.dtype });
      this.v = ops.zeros([B, H, this.capacity, d], { dtype: v.dtype });
    }
    // one strided copy per tensor, straight from the (possibly transposed) source into the buffer
    const dstStrides = [H * this.capacity * d, this.capacity * d, d, 1];
    for (const [src, dst] of [[k, this.k], [v, this.v]] as const) {
      backend().stridedCopy(src.data, src.offset, src.strides, dst.data, this.length * d, dstStrides, [B, H, T, d]);
    }
    this.length += T;
    return [this.k.narrow(2, 0, this.length), this.v.narrow(2, 0, this.length)];
  }

  reset(): void {
    this.length = 0;
  }

  canTruncate(n: number): boolean {
    return validTruncate(this, n);
  }

  /** Rollback: positions >= n are overwritten by the next append. */
  truncate(n: number): void {
    checkTruncate(this, n);
    this.length = n;
  }
}
