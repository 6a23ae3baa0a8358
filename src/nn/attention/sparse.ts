// "sparse": Sparse Transformer attention (Child et al. 2019, "Generating Long Sequences with Sparse
// Transformers", sec. 4.2) as block masks over the flash kernel, which skips every tile the mask hides.
// Patterns are at block granularity (blocks of `blockSize` positions), all causal, one merged head
// (sec. 4.3, "merged" attention: every head sees the union of the pattern's subsets):
//   local:   the previous `windowBlocks` blocks, including its own
//   strided: A(1) local over `stride` blocks + A(2) the blocks kb with (qb - kb) mod stride = 0
//   fixed:   A(1) its own stride period of `stride` blocks + A(2) the "summary" last block of every
//            earlier period (c = blockSize positions of each l = stride * blockSize)
// The registry's "sparse" is strided with 64-position blocks (one flash tile) and stride 4.

import type { BlockMask } from "../../backend/backend.js";
import * as ops from "../../ops/index.js";
import { SelfAttention } from "./softmax.js";
import type { Attention, AttentionConfig } from "./types.js";

export function localPattern(blockSize: number, windowBlocks: number): BlockMask {
  return { blockSize, allow: (qb, kb) => kb <= qb && kb > qb - windowBlocks };
}

export function stridedPattern(blockSize: number, stride: number): BlockMask {
  return { blockSize, allow: (qb, kb) => kb <= qb && (qb - kb < stride || (qb - kb) % stride === 0) };
}

export function fixedPattern(blockSize: number, stride: number): BlockMask {
  return { blockSize, allow: (qb, kb) => kb <= qb && (Math.floor(kb / stride) === Math.floor(qb / stride) || kb % stride === stride - 1) };
}

/** A variant factory: causal self-attention restricted to `pattern`, computed by the flash kernel. */
export function sparseAttention(pattern: BlockMask): (c: AttentionConfig) => Attention {
  // The patterns are causal by construction; an explicit mask would drop them, so both are refused.
  return (c) => new SelfAttention(c, (q, k, v, o) => ops.flashAttention(q, k, v, { ...o, blockMask: pattern }), "sparse",
    { bidirectional: false, packed: true, mask: false });
}

export const SPARSE_DEFAULT = stridedPattern(64, 4);
export const SPARSE_LOCAL_DEFAULT = localPattern(64, 4);
export const SPARSE_FIXED_DEFAULT = fixedPattern(32, 4);
