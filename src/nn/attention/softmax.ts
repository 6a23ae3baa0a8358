// Multi-head self-attention with GQA/MQA (nKvHeads <= nHeads), optional RoPE and a KV cache.
// The projections are shared by every exact variant; the core that turns q, k, v into the output is
// the only thing that differs ("softmax" materializes the scores, "flash" never does). The mask comes
// from the SeqContext: causal, bidirectional or packed documents go to the core as they are; an
// explicit [Tq, S] visibility matrix (a token tree) goes as a block mask of block size 1 holding only
// the query rows (backend/mask.ts), which the flash kernels skip tile by tile. A layer's key/value prefix (prefix tuning, SeqContext.prefix) goes in front of the cached
// and new keys: with keys = p + S, the bottom-right aligned causal mask lets every query see all of it.

import * as ops from "../../ops/index.js";
import type { AttentionOptions } from "../../ops/attention.js";
import type { Tensor } from "../../tensor/tensor.js";
import { SeqContext, type KVPrefix } from "../seq-context.js";
import { HeadProjections } from "./projections.js";
import { KVCache } from "./kv-cache.js";
import { alibiAttention } from "../position/alibi.js";
import type { AttentionConfig } from "./types.js";

/**
 * q [B, H, Tq, d]; k, v [B, Hkv, S, d] -> [B, H, Tq, d]; with opts.causal, the query block ends at S.
 * opts carries scale, causal and cuSeqlens.
 */
export type AttentionCore = (q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions) => Tensor;

/** What a core can do beyond causal attention (SeqContext.require); prefix: key/value prefixes. */
export interface CoreSupport { bidirectional: boolean; packed: boolean; mask: boolean; prefix?: boolean }

const ALL: CoreSupport = { bidirectional: true, packed: true, mask: true, prefix: true };

/** kh, vh [B, Hkv, S, d] with the prefix [Hkv, p, d] (broadcast over the batch) in front: [B, Hkv, p + S, d]. */
function withPrefix(prefix: KVPrefix, kh: Tensor, vh: Tensor): [Tensor, Tensor] {
  const B = kh.shape[0];
  const front = (t: Tensor) => ops.expand(ops.unsqueeze(t, 0), [B, ...t.shape]);
  return [ops.cat([front(prefix.k), kh], 2), ops.cat([front(prefix.v), vh], 2)];
}

export class SelfAttention extends HeadProjections {
  constructor(cfg: AttentionConfig, private readonly core: AttentionCore = ops.attention,
    readonly variant = "softmax", private readonly support: CoreSupport = ALL) {
    super(cfg);
  }

  /** Whether this variant takes key/value prefixes (prefix tuning): "softmax" and "flash" do, "sparse" does not. */
  get acceptsPrefix(): boolean {
    return this.support.prefix === true;
  }

  newState(capacity: number): KVCache {
    return new KVCache(capacity);
  }

  forward(x: Tensor, ctx = SeqContext.causal()): Tensor {
    const [B, T] = x.shape;
    if (this.cfg.rope?.rawKeys) return this.forwardRawKeys(x, ctx);
    if (this.cfg.alibi) ctx.require(`${this.variant} with ALiBi`, {});
    else ctx.require(this.variant, { positions: true, ragged: true, ...this.support });
    const [q, k, v] = this.projectHeads(x, ctx);
    if (ctx.segments) return this.wo.forward(this.raggedCore(q, k, v, ctx));
    let kh = ops.transpose(k, 1, 2), vh = ops.transpose(v, 1, 2);
    if (ctx.state) [kh, vh] = (ctx.state as KVCache).append(kh, vh);
    if (ctx.prefix) [kh, vh] = withPrefix(ctx.prefix, kh, vh);
    const qh = ops.transpose(q, 1, 2), scale = this.cfg.scale;
    const o = this.cfg.alibi ? alibiAttention(qh, kh, vh, scale)
      : ctx.mask ? this.core(qh, kh, vh, { causal: false, scale, blockMask: { blockSize: 1, allow: ctx.mask.visible } })
      : this.core(qh, kh, vh, { causal: ctx.causal, scale, cuSeqlens: ctx.cuSeqlens ?? undefined });
    return this.wo.forward(ops.reshape(ops.transpose(o, 1, 2), [B, T, this.cfg.dModel]));
  }

  /**
   * Ragged segments (SeqContext.ragged): q [1, T, H, d], k, v [1, T, Hkv, d] hold several sequences'
   * tokens back to back; each segment appends to its own cache and attends causally to it alone.
   * Returns the heads merged, [1, T, D], for the shared output projection.
   */
  private raggedCore(q: Tensor, k: Tensor, v: Tensor, ctx: SeqContext): Tensor {
    const { offsets, states } = ctx.segments!;
    const [B, T] = q.shape;
    if (B !== 1 || offsets[offsets.length - 1] !== T) throw new RangeError(`${this.variant}: ragged segments of ${offsets[offsets.length - 1]} tokens in one row, but the input is [${B}, ${T}]`);
    const qh = ops.transpose(q, 1, 2), kh = ops.transpose(k, 1, 2), vh = ops.transpose(v, 1, 2);
    const outs = states.map((st, i) => {
      const o = offsets[i], n = offsets[i + 1] - o;
      const [ks, vs] = (st as KVCache).append(ops.narrow(kh, 2, o, n), ops.narrow(vh, 2, o, n));
      return this.core(ops.narrow(qh, 2, o, n), ks, vs, { causal: true, scale: this.cfg.scale });
    });
    const out = outs.length === 1 ? outs[0] : ops.cat(outs, 2);
    return ops.reshape(ops.transpose(out, 1, 2), [1, T, this.cfg.dModel]);
  }

  /**
   * Position schemes that rotate keys by more than their own position (ReRoPE's two streams, dynamic
   * scaling's length-dependent frequencies): pre-RoPE keys go into the cache and Rotary.attend rotates
   * them for every step, so decoding equals recomputing the whole sequence. Causal, implicit positions.
   */
  private forwardRawKeys(x: Tensor, ctx: SeqContext): Tensor {
    const [B, T] = x.shape;
    const rope = this.cfg.rope!;
    ctx.require(`${this.variant} with ${rope.cfg.rerope ? "ReRoPE" : "dynamic RoPE scaling"}`, {});
    const [q, k, v] = this.projectHeads(x, ctx, false);
    let kh = ops.transpose(k, 1, 2), vh = ops.transpose(v, 1, 2);
    if (ctx.state) [kh, vh] = (ctx.state as KVCache).append(kh, vh);
    const o = rope.attend(q, kh, vh, this.cfg.scale, (q1, k1, v1) => this.core(q1, k1, v1, { causal: true, scale: this.cfg.scale }));
    return this.wo.forward(ops.reshape(ops.transpose(o, 1, 2), [B, T, this.cfg.dModel]));
  }
}
