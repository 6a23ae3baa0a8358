"""Golden fixtures for the Gated Attention Unit and FLASH mixed-chunk attention, from PyTorch.

Writes test/fixtures/gau.safetensors (run from the repo root via scripts/golden/run.sh).

Hua et al. 2022, "Transformer Quality in Linear Time" (src/nn/attention/gau.ts has the equations),
written by hand with torch ops in float64 from float32 parameters and inputs. For every case:
  <case>.param.<name>  F32  parameter (GauLayer naming: wu/wv/wz/wo .weight/.bias, gamma, beta, rel_bias)
  <case>.x             F32  [B, T, D] input (already normalized, as the block's norm1 would give)
  <case>.gout          F32  [B, T, D] random upstream gradient
  <case>.out           F64  [B, T, D] layer output
  <case>.grad.x        F64  d <out, gout> / d x
  <case>.grad.<name>   F64  d <out, gout> / d parameter, for every parameter
Metadata "cases": JSON list of {"name", "variant", "chunk", "config", "batch", "seq"}; "variant" is the
registry name, "config" the AttentionConfig (src/nn/attention/types.ts).

The mixed-chunk reference is written in its quadratic form (masks over all (i, j) pairs: same chunk and
j <= i -> relu^2 term, earlier chunk -> linear term), independent of the chunked cumulative-sum
implementation it checks.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "gau.safetensors")

torch.manual_seed(0)

EXPANSION, QK_DIM = 2, 128


def param_shapes(cfg, heads, bias_len):
    D = cfg["dModel"]
    e, s = EXPANSION * D, min(QK_DIM, D)
    shapes = {}
    for name, out_f, in_f in (("wu", e, D), ("wv", e, D), ("wz", s, D), ("wo", D, e)):
        shapes[name + ".weight"] = ([out_f, in_f], 0.2)
        if cfg["bias"]:
            shapes[name + ".bias"] = ([out_f], 0.1)
    shapes["gamma"] = ([heads, s], None)  # 1 + 0.3 N: queries/keys large enough for non-trivial scores
    shapes["beta"] = ([heads, s], 0.1)
    shapes["rel_bias"] = ([bias_len], 0.1)
    return shapes


def init_params(shapes):
    out = {}
    for name, (shape, std) in shapes.items():
        if std is None:
            out[name] = 1.0 + 0.3 * torch.randn(*shape, dtype=torch.float32)
        else:
            out[name] = std * torch.randn(*shape, dtype=torch.float32)
    return out


def linear(P, prefix, x):
    y = x @ P[prefix + ".weight"].t()
    b = P.get(prefix + ".bias")
    return y if b is None else y + b


def rope_interleaved(x, theta):
    """x [B, T, heads, s]; pairs (2j, 2j+1), freq_j = theta^(-2j/s), angle = pos * freq_j."""
    T, s = x.shape[1], x.shape[3]
    j = torch.arange(s // 2, dtype=torch.float64)
    freq = theta ** (-2.0 * j / s)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]  # [T, s/2]
    cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).reshape(x.shape)


def distances(T):
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    return i - j  # [T, T]


def gau(cfg, P, x, variant, chunk):
    B, T, D = x.shape
    s = min(QK_DIM, D)
    u = F.silu(linear(P, "wu", x))
    v = F.silu(linear(P, "wv", x))
    z = F.silu(linear(P, "wz", x))
    qk = z[:, :, None, :] * P["gamma"] + P["beta"]  # [B, T, heads, s]
    if cfg["rope"]:
        qk = rope_interleaved(qk, cfg["ropeTheta"])
    dist = distances(T)
    causal = dist >= 0
    if variant == "gau_mixed":
        qq, kq, ql, kl = qk.unbind(2)
        c = chunk
        same = (torch.arange(T)[:, None] // c) == (torch.arange(T)[None, :] // c)
        earlier = (torch.arange(T)[None, :] // c) < (torch.arange(T)[:, None] // c)
        bias = P["rel_bias"][dist.clamp(0, c - 1)]
        quad = torch.relu(qq @ kq.transpose(1, 2) / c + bias) ** 2 * (same & causal)
        lin = (ql @ kl.transpose(1, 2)) / c * earlier
        o = (quad + lin) @ v
    else:
        q, k = qk.unbind(2)
        bias = P["rel_bias"][dist.clamp(min=0)]
        scores = q @ k.transpose(1, 2)
        if variant == "gau":
            a = torch.relu(scores / cfg["maxSeqLen"] + bias) ** 2 * causal
        else:  # gau_softmax_plus: n_i = i + 1 visible keys
            n = torch.arange(1, T + 1, dtype=torch.float64)[:, None]
            logits = (scores / math.sqrt(s) + bias) * (torch.log(n) / math.log(512))
            a = torch.softmax(logits.masked_fill(~causal, float("-inf")), dim=-1)
        o = a @ v
    return linear(P, "wo", u * o)


CASES = []
TENSORS = {}


def case(name, variant, chunk=None, batch=2, seq=7, **over):
    cfg = {"dModel": 16, "nHeads": 2, "nKvHeads": 2, "bias": True, "rope": False, "ropeTheta": 10000,
           "scale": 1 / math.sqrt(8), "layer": 0, "nLayers": 1, "maxSeqLen": 12}
    for k in over:
        assert k in cfg, k
    cfg.update(over)
    heads, bias_len = (4, chunk) if variant == "gau_mixed" else (2, cfg["maxSeqLen"])
    params32 = init_params(param_shapes(cfg, heads, bias_len))
    x32 = torch.randn(batch, seq, cfg["dModel"], dtype=torch.float32)
    gout32 = torch.randn(batch, seq, cfg["dModel"], dtype=torch.float32)
    P = {n: t.to(torch.float64).requires_grad_(True) for n, t in params32.items()}
    x = x32.to(torch.float64).requires_grad_(True)
    out = gau(cfg, P, x, variant, chunk)
    (out * gout32.to(torch.float64)).sum().backward()
    for n, t in params32.items():
        TENSORS["%s.param.%s" % (name, n)] = t.numpy()
        g = P[n].grad
        assert g is not None and g.abs().max() > 0, (name, n)
        TENSORS["%s.grad.%s" % (name, n)] = g.detach().numpy().copy()
    TENSORS[name + ".x"] = x32.numpy()
    TENSORS[name + ".gout"] = gout32.numpy()
    TENSORS[name + ".out"] = out.detach().numpy().copy()
    TENSORS[name + ".grad.x"] = x.grad.detach().numpy().copy()
    CASES.append({"name": name, "variant": variant, "chunk": chunk, "config": cfg, "batch": batch, "seq": seq})


case("gau_relu2", "gau")
case("gau_relu2_rope_nobias", "gau", rope=True, bias=False)
case("gau_softmax_plus_rope", "gau_softmax_plus", rope=True)
# T = 11 with c = 4: two full chunks and a padded one; c = 3 without RoPE: T = 9 is exactly 3 chunks.
case("gau_mixed_rope", "gau_mixed", chunk=4, seq=11, rope=True, maxSeqLen=16)
case("gau_mixed_c3", "gau_mixed", chunk=3, seq=9, bias=False, maxSeqLen=16)

metadata = {
    "cases": json.dumps(CASES, separators=(",", ":")),
    "generator": "scripts/golden/gau.py",
    "torch_version": torch.__version__,
    "reference": "float64 from float32 parameters and inputs; grads of sum(out * gout)",
}
save_file(TENSORS, OUT_PATH, metadata)
print("wrote %s: %d cases, %d tensors, %d bytes (torch %s)"
      % (OUT_PATH, len(CASES), len(TENSORS), os.path.getsize(OUT_PATH), torch.__version__))
