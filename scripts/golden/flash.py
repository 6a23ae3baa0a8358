"""Golden fixtures for attention with masks (flash and softmax paths), from PyTorch.

Writes test/fixtures/flash.safetensors (run from the repo root via scripts/golden/run.sh).

Reference: materialized float64 attention softmax(scale q k^T + mask) v from float32 inputs, GQA by
repeating each kv head over its H / Hkv consecutive query heads. For every case:
  <case>.in0/.in1/.in2   q [B, H, Tq, d], k [B, Hkv, S, d], v [B, Hkv, S, d], F32
  <case>.out0            attention output [B, H, Tq, d], F64
  <case>.gout0           random upstream gradient, F32
  <case>.grad0/1/2       d<out, gout>/d(q, k, v), F64
Metadata "cases": JSON list of {"name", "op": "attention", "args": {"causal", "scale", "window",
"cu_seqlens"}, "inputs", "outputs"}. Mask rule (backend.ts AttentionMaskArgs): query row t has
position i = t + S - Tq, key j position j (both relative to their sequence with cu_seqlens); key
visible iff same sequence, j <= i if causal, j > i - window if window > 0.
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "flash.safetensors")

torch.manual_seed(0)

CASES = []
TENSORS = {}


def visible(Tq, S, causal, window, cu):
    """[Tq, S] bool: the mask rule above."""
    t = torch.arange(Tq)[:, None]
    j = torch.arange(S)[None, :]
    if cu is None:
        qi, kj, same = t + (S - Tq), j.expand(Tq, S), torch.ones(Tq, S, dtype=torch.bool)
    else:
        starts = torch.tensor(cu[:-1])
        seg = torch.bucketize(torch.arange(S), torch.tensor(cu[1:]), right=True)
        qi, kj = (t - starts[seg][:, None]).expand(Tq, S), j - starts[seg][None, :]
        same = seg[:, None] == seg[None, :]
    ok = same.clone()
    if causal:
        ok &= kj <= qi
    if window > 0:
        ok &= kj > qi - window
    return ok


def attention(q, k, v, scale, mask):
    group = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(group, dim=1)
    v = v.repeat_interleave(group, dim=1)
    s = scale * q @ k.transpose(-1, -2)
    s = s.masked_fill(~mask, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


def case(name, B, H, Hkv, Tq, S, d, causal=True, window=0, cu=None, scale=None):
    assert all(c["name"] != name for c in CASES), name
    assert cu is None or (Tq == S and cu[0] == 0 and cu[-1] == S)
    sc = 1 / math.sqrt(d) if scale is None else scale
    ins = [torch.randn(B, H, Tq, d), torch.randn(B, Hkv, S, d), torch.randn(B, Hkv, S, d)]
    ref = []
    for i, x in enumerate(ins):
        TENSORS["%s.in%d" % (name, i)] = x.numpy()
        ref.append(x.to(torch.float64).requires_grad_(True))
    mask = visible(Tq, S, causal, window, cu)
    assert mask.any(dim=1).all(), name  # every query sees a key (no NaN rows in the reference)
    out = attention(*ref, sc, mask)
    g = torch.randn(out.shape, dtype=torch.float32)
    TENSORS["%s.out0" % name] = out.detach().numpy().copy()
    TENSORS["%s.gout0" % name] = g.numpy()
    out.backward(g.to(torch.float64))
    for i, r in enumerate(ref):
        TENSORS["%s.grad%d" % (name, i)] = r.grad.numpy().copy()
    args = {"causal": causal, "window": window, "cu_seqlens": cu}
    if scale is not None:
        args["scale"] = scale
    CASES.append({"name": name, "op": "attention", "args": args, "inputs": ["F32"] * 3, "outputs": 1})


# non-causal and causal, odd lengths
case("noncausal_t7", 2, 2, 2, 7, 7, 8, causal=False)
case("causal_t7", 2, 2, 2, 7, 7, 8)
case("causal_t1", 2, 2, 2, 1, 1, 8)
case("causal_t129", 1, 2, 2, 129, 129, 16)
case("noncausal_t129_scale", 1, 2, 2, 129, 129, 16, causal=False, scale=0.3)
case("causal_t1000", 1, 1, 1, 1000, 1000, 16)
# GQA (H = 4, Hkv = 2)
case("gqa_causal_t33", 2, 4, 2, 33, 33, 8)
case("gqa_noncausal_t65", 1, 4, 2, 65, 65, 8, causal=False)
# sliding window
case("window24_t129", 1, 2, 1, 129, 129, 16, window=24)
case("window5_noncausal_t70", 1, 2, 2, 70, 70, 8, causal=False, window=5)
# varlen: 3 sequences packed in one row
case("varlen3_t77", 1, 4, 2, 77, 77, 8, cu=[0, 13, 50, 77])
case("varlen3_window_t150", 2, 2, 2, 150, 150, 8, window=9, cu=[0, 70, 71, 150])
# KV-cache decoding: the queries are the last Tq of S positions
case("decode_5_of_70", 2, 4, 2, 5, 70, 8)
case("decode_1_of_129", 1, 2, 1, 1, 129, 16)
case("decode_window_7_of_100", 1, 2, 2, 7, 100, 8, window=30)

metadata = {
    "cases": json.dumps(CASES, separators=(",", ":")),
    "generator": "scripts/golden/flash.py",
    "torch_version": torch.__version__,
    "reference": "float64 materialized masked softmax attention from float32 inputs; grads of <out, gout>",
}
save_file(TENSORS, OUT_PATH, metadata)
print("wrote %s: %d cases, %d tensors, %d bytes (torch %s)"
      % (OUT_PATH, len(CASES), len(TENSORS), os.path.getsize(OUT_PATH), torch.__version__))
