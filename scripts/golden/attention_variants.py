"""Golden fixtures for the kernelized attention variants (src/nn/attention/{linear,transnormer}.ts).

Writes test/fixtures/attention_variants.safetensors (run from the repo root via scripts/golden/run.sh).

Each layer is written by hand with torch ops in float64 from float32 parameters and inputs, in the direct
quadratic (masked) form, independent of the chunked recurrence the TypeScript code runs:
  linear       Katharopoulos et al. 2020, eq. 9: out_i = sum_{j<=i} (phi_q_i . phi_k_j) v_j / (sum_{j<=i} phi_q_i . phi_k_j + eps),
               phi = elu + 1, eps = 1e-6
  transnormer  Qin et al. 2022: layer < nLayers / 2 -> DiagAttention (softmax inside blocks of blockSize,
               causal, scale 1/sqrt(d)); else NormAttention: RMSNorm_w(concat_h sum_{j<=i} (phi_q_i . phi_k_j) v_j),
               phi = 1 + elu, RMSNorm eps = 1e-6
For every case:
  <case>.param.<name>  F32  module parameter (wq.weight, wq.bias, ..., norm.weight)
  <case>.x             F32  [B, T, D] input
  <case>.gout          F32  [B, T, D] upstream gradient
  <case>.out           F64  [B, T, D] layer output
  <case>.grad.x        F64  d <out, gout> / d x
  <case>.grad.<name>   F64  d <out, gout> / d parameter
Metadata "cases": JSON list of {"name", "variant", "config", "options"}; "config" is the AttentionConfig,
"options" the constructor options of the TypeScript module (chunk, blockSize).
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "attention_variants.safetensors")
B, T, D = 2, 9, 16
LINEAR_EPS = 1e-6
NORM_EPS = 1e-6

torch.manual_seed(0)


def rope_interleaved(x, theta):
    """As models.py: x [B, heads, T, d]; pairs (2j, 2j+1) rotate by pos * theta^(-2j/d)."""
    d = x.shape[3]
    freq = theta ** (-2.0 * torch.arange(d // 2, dtype=torch.float64) / d)
    ang = torch.arange(x.shape[2], dtype=torch.float64)[:, None] * freq[None, :]
    cos, sin = torch.cos(ang), torch.sin(ang)
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).reshape(x.shape)


def linear(P, prefix, x):
    y = x @ P[prefix + ".weight"].t()
    b = P.get(prefix + ".bias")
    return y if b is None else y + b


def project(cfg, P, x):
    """q, k, v [B, H, T, d]: kv heads repeated to query heads (head h reads kv head h // (H / Hkv))."""
    H, Hkv = cfg["nHeads"], cfg["nKvHeads"]
    d = D // H
    q = linear(P, "wq", x).view(B, T, H, d).transpose(1, 2)
    k = linear(P, "wk", x).view(B, T, Hkv, d).transpose(1, 2)
    v = linear(P, "wv", x).view(B, T, Hkv, d).transpose(1, 2)
    if cfg["rope"]:
        q, k = rope_interleaved(q, cfg["ropeTheta"]), rope_interleaved(k, cfg["ropeTheta"])
    return q, k.repeat_interleave(H // Hkv, dim=1), v.repeat_interleave(H // Hkv, dim=1)


def merge(o):
    return o.transpose(1, 2).reshape(B, T, D)


def causal_kernel(q, k):
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    return (phi_q @ phi_k.transpose(-1, -2)).tril()


def linear_attention(cfg, opts, P, x):
    q, k, v = project(cfg, P, x)
    a = causal_kernel(q, k)
    o = (a @ v) / (a.sum(-1, keepdim=True) + LINEAR_EPS)
    return linear(P, "wo", merge(o))


def norm_attention(cfg, opts, P, x):
    q, k, v = project(cfg, P, x)
    o = merge(causal_kernel(q, k) @ v)
    o = o * torch.rsqrt((o * o).mean(-1, keepdim=True) + NORM_EPS) * P["norm.weight"]
    return linear(P, "wo", o)


def diag_attention(cfg, opts, P, x):
    q, k, v = project(cfg, P, x)
    i = torch.arange(T)
    bs = opts["blockSize"]
    allowed = (i[None, :] <= i[:, None]) & (i[None, :] // bs == i[:, None] // bs)
    s = (q @ k.transpose(-1, -2)) * cfg["scale"]
    p = torch.softmax(s.masked_fill(~allowed, float("-inf")), dim=-1)
    return linear(P, "wo", merge(p @ v))


def param_shapes(cfg, norm):
    H, Hkv = cfg["nHeads"], cfg["nKvHeads"]
    d = D // H
    shapes = {}
    for name, out_f in (("wq", H * d), ("wk", Hkv * d), ("wv", Hkv * d), ("wo", D)):
        shapes[name + ".weight"] = [out_f, D]
        if cfg["bias"]:
            shapes[name + ".bias"] = [out_f]
    if norm:
        shapes["norm.weight"] = [D]
    return shapes


CASES = []
TENSORS = {}


def case(name, variant, layer_fn, options, **over):
    cfg = {"dModel": D, "nHeads": 2, "nKvHeads": 2, "bias": True, "rope": False, "ropeTheta": 10000.0,
           "layer": 0, "nLayers": 2, "maxSeqLen": 16}
    cfg.update(over)
    cfg["scale"] = 1.0 / math.sqrt(D // cfg["nHeads"])
    params32 = {}
    for n, shape in param_shapes(cfg, layer_fn is norm_attention).items():
        if n == "norm.weight":
            params32[n] = 1.0 + 0.1 * torch.randn(*shape, dtype=torch.float32)
        elif n.endswith(".bias"):
            params32[n] = 0.1 * torch.randn(*shape, dtype=torch.float32)
        else:
            params32[n] = 0.3 * torch.randn(*shape, dtype=torch.float32)
    x32 = torch.randn(B, T, D, dtype=torch.float32)
    gout32 = torch.randn(B, T, D, dtype=torch.float32)
    P = {n: t.to(torch.float64).requires_grad_(True) for n, t in params32.items()}
    x = x32.to(torch.float64).requires_grad_(True)
    out = layer_fn(cfg, options, P, x)
    (out * gout32.to(torch.float64)).sum().backward()
    for n, t in params32.items():
        assert P[n].grad is not None and P[n].grad.abs().max() > 0, (name, n)
        TENSORS["%s.param.%s" % (name, n)] = t.numpy()
        TENSORS["%s.grad.%s" % (name, n)] = P[n].grad.numpy().copy()
    TENSORS[name + ".x"] = x32.numpy()
    TENSORS[name + ".gout"] = gout32.numpy()
    TENSORS[name + ".out"] = out.detach().numpy().copy()
    TENSORS[name + ".grad.x"] = x.grad.numpy().copy()
    CASES.append({"name": name, "variant": variant, "config": cfg, "options": options})


# Chunk 4 (< T = 9) runs the cross-chunk recurrence; block size 4 makes the diagonal blocks matter.
# Softmax ignores a per-row shift, so without RoPE wk.bias would get an exactly-zero gradient: no bias there.
case("linear_mha", "linear", linear_attention, {})
case("linear_gqa_rope_chunked", "linear", linear_attention, {"chunk": 4}, nHeads=4, bias=False, rope=True)
case("transnormer_norm_mqa", "transnormer", norm_attention, {"chunk": 4}, layer=1, nKvHeads=1)
case("transnormer_norm_rope", "transnormer", norm_attention, {}, layer=1, rope=True, bias=False)
case("transnormer_diag", "transnormer", diag_attention, {"blockSize": 4}, bias=False)
case("transnormer_diag_gqa_rope", "transnormer", diag_attention, {"blockSize": 4}, nHeads=4, rope=True)

metadata = {
    "cases": json.dumps(CASES, separators=(",", ":")),
    "generator": "scripts/golden/attention_variants.py",
    "torch_version": torch.__version__,
    "reference": "float64 from float32 parameters and inputs; grads of sum(out * gout)",
}
save_file(TENSORS, OUT_PATH, metadata)
print("wrote %s: %d cases, %d tensors, %d bytes (torch %s)"
      % (OUT_PATH, len(CASES), len(TENSORS), os.path.getsize(OUT_PATH), torch.__version__))
