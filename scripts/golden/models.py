"""Golden fixtures for whole Transformer LMs (TransformerLM), from PyTorch.

Writes test/fixtures/models.safetensors (run from the repo root via scripts/golden/run.sh).

The model is written by hand with torch ops (not nn.Transformer), in float64, from float32
parameters, following the TransformerLM config (src/models/config.ts). For every case:
  <case>.param.<name>  F32  parameter (TransformerLM naming; no lm_head entry when tied)
  <case>.ids           I32  [B, T] token ids
  <case>.targets       I32  [B, T] next-token targets
  <case>.logits        F64  [B, T, V]
  <case>.loss          F64  []  cross_entropy(logits.view(-1, V), targets.view(-1)), mean
  <case>.grad.<name>   F64  d loss / d param, for every parameter
Metadata "cases": JSON list of {"name", "config", "batch", "seq"}; "config" is the full model config
JSON, exactly what parseModelConfig accepts.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "models.safetensors")

torch.manual_seed(0)

# ---------------------------------------------------------------- parameters


def param_shapes(cfg):
    """Ordered dict name -> (shape, kind) with kind in weight / emb / norm_w / bias."""
    V, D, L = cfg["vocabSize"], cfg["dModel"], cfg["nLayers"]
    H, Hkv, FF = cfg["nHeads"], cfg["nKvHeads"], cfg["dFF"]
    Dh = D // H
    bias = cfg["bias"]
    shapes = {}

    def norm(prefix):
        shapes[prefix + ".weight"] = ([D], "norm_w")
        if cfg["norm"] == "layernorm":
            shapes[prefix + ".bias"] = ([D], "bias")

    def linear(prefix, out_f, in_f, with_bias):
        shapes[prefix + ".weight"] = ([out_f, in_f], "weight")
        if with_bias:
            shapes[prefix + ".bias"] = ([out_f], "bias")

    shapes["tok_emb.weight"] = ([V, D], "emb")
    if cfg["position"] == "learned":
        shapes["pos_emb.weight"] = ([cfg["maxSeqLen"], D], "emb")
    for i in range(L):
        p = "blocks.%d." % i
        norm(p + "norm1")
        linear(p + "attn.wq", H * Dh, D, bias)
        linear(p + "attn.wk", Hkv * Dh, D, bias)
        linear(p + "attn.wv", Hkv * Dh, D, bias)
        linear(p + "attn.wo", D, H * Dh, bias)
        norm(p + "norm2")
        if cfg["normPlacement"] == "sandwich":
            norm(p + "norm1_post")
            norm(p + "norm2_post")
        if cfg["ffn"] == "swiglu":
            linear(p + "mlp.w1", FF, D, bias)
            linear(p + "mlp.w3", FF, D, bias)
            linear(p + "mlp.w2", D, FF, bias)
        else:
            linear(p + "mlp.fc1", FF, D, bias)
            linear(p + "mlp.fc2", D, FF, bias)
    if cfg["normPlacement"] in ("pre", "sandwich"):
        norm("norm_f")
    if not cfg["tieEmbeddings"]:
        shapes["lm_head.weight"] = ([V, D], "weight")
    return shapes


def init_params(cfg):
    """Random float32 parameters, large enough that every gradient is non-trivial."""
    out = {}
    for name, (shape, kind) in param_shapes(cfg).items():
        if kind == "weight":
            t = torch.randn(*shape, dtype=torch.float32) * 0.2
        elif kind == "emb":
            t = torch.randn(*shape, dtype=torch.float32) * 0.3
        elif kind == "norm_w":
            t = 1.0 + torch.randn(*shape, dtype=torch.float32) * 0.1
        else:  # bias
            t = torch.randn(*shape, dtype=torch.float32) * 0.1
        out[name] = t
    return out


# ---------------------------------------------------------------- model (float64, by hand)


def make_norm(cfg, P, prefix):
    eps = cfg["normEps"]
    D = cfg["dModel"]
    if cfg["norm"] == "layernorm":
        return lambda x: F.layer_norm(x, [D], P[prefix + ".weight"], P[prefix + ".bias"], eps=eps)
    return lambda x: x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * P[prefix + ".weight"]


def linear(P, prefix, x):
    y = x @ P[prefix + ".weight"].t()
    b = P.get(prefix + ".bias")
    return y if b is None else y + b


def rope_interleaved(x, theta):
    """x [B, heads, T, Dh]; pairs (2j, 2j+1), freq_j = theta^(-2j/Dh), angle = pos * freq_j."""
    T, Dh = x.shape[2], x.shape[3]
    j = torch.arange(Dh // 2, dtype=torch.float64)
    freq = theta ** (-2.0 * j / Dh)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * freq[None, :]  # [T, Dh/2]
    cos, sin = torch.cos(ang), torch.sin(ang)
    a, b = x[..., 0::2], x[..., 1::2]
    ra = a * cos - b * sin
    rb = a * sin + b * cos
    return torch.stack([ra, rb], dim=-1).reshape(x.shape)


def attention(cfg, P, prefix, x):
    B, T, D = x.shape
    H, Hkv = cfg["nHeads"], cfg["nKvHeads"]
    Dh = D // H
    q = linear(P, prefix + "wq", x).view(B, T, H, Dh).transpose(1, 2)
    k = linear(P, prefix + "wk", x).view(B, T, Hkv, Dh).transpose(1, 2)
    v = linear(P, prefix + "wv", x).view(B, T, Hkv, Dh).transpose(1, 2)
    if cfg["position"] == "rope":
        q = rope_interleaved(q, cfg["ropeTheta"])
        k = rope_interleaved(k, cfg["ropeTheta"])
    if Hkv != H:
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
    scale = 1.0 if cfg["init"] == "t5" else 1.0 / math.sqrt(Dh)
    s = (q @ k.transpose(-1, -2)) * scale
    mask = torch.ones(T, T, dtype=torch.bool).triu(1)
    s = s.masked_fill(mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    o = (p @ v).transpose(1, 2).reshape(B, T, H * Dh)
    return linear(P, prefix + "wo", o)


def mlp(cfg, P, prefix, x):
    if cfg["ffn"] == "swiglu":
        return linear(P, prefix + "w2", F.silu(linear(P, prefix + "w1", x)) * linear(P, prefix + "w3", x))
    approx = "tanh" if cfg["ffn"] == "gelu_tanh" else "none"
    return linear(P, prefix + "fc2", F.gelu(linear(P, prefix + "fc1", x), approximate=approx))


def forward(cfg, P, ids):
    B, T = ids.shape
    x = P["tok_emb.weight"][ids]
    if cfg["position"] == "learned":
        x = x + P["pos_emb.weight"][:T]
    place = cfg["normPlacement"]
    alpha = (2 * cfg["nLayers"]) ** 0.25
    for i in range(cfg["nLayers"]):
        p = "blocks.%d." % i
        n1, n2 = make_norm(cfg, P, p + "norm1"), make_norm(cfg, P, p + "norm2")
        att = lambda h: attention(cfg, P, p + "attn.", h)  # noqa: E731
        ff = lambda h: mlp(cfg, P, p + "mlp.", h)  # noqa: E731
        if place == "pre":
            x = x + att(n1(x))
            x = x + ff(n2(x))
        elif place == "post":
            x = n1(x + att(x))
            x = n2(x + ff(x))
        elif place == "sandwich":
            n1p, n2p = make_norm(cfg, P, p + "norm1_post"), make_norm(cfg, P, p + "norm2_post")
            x = x + n1p(att(n1(x)))
            x = x + n2p(ff(n2(x)))
        elif place == "deepnorm":
            x = n1(alpha * x + att(x))
            x = n2(alpha * x + ff(x))
        else:
            raise ValueError(place)
    if place in ("pre", "sandwich"):
        x = make_norm(cfg, P, "norm_f")(x)
    W = P["tok_emb.weight"] if cfg["tieEmbeddings"] else P["lm_head.weight"]
    return x @ W.t()


# ---------------------------------------------------------------- cases

CASES = []
TENSORS = {}

BATCH, SEQ = 2, 9


def config(**over):
    base = {
        "vocabSize": 37, "dModel": 16, "nLayers": 2, "nHeads": 4, "nKvHeads": 4, "dFF": 64,
        "maxSeqLen": 16, "position": "learned", "ropeTheta": 10000, "norm": "layernorm",
        "normEps": 1e-5, "ffn": "gelu_tanh", "bias": True, "normPlacement": "pre",
        "tieEmbeddings": True, "dropout": 0, "init": "nanogpt", "attention": "softmax",
    }
    for k in over:
        assert k in base, k
    base.update(over)
    return base


def gpt2(**over):
    return config(**over)


def llama(**over):
    c = dict(position="rope", norm="rmsnorm", ffn="swiglu", bias=False, tieEmbeddings=False,
             nKvHeads=2, dFF=32)
    c.update(over)
    return config(**c)


def case(name, cfg):
    assert all(c["name"] != name for c in CASES), name
    V = cfg["vocabSize"]
    params32 = init_params(cfg)
    ids = torch.randint(0, V, (BATCH, SEQ), dtype=torch.int32)
    targets = torch.randint(0, V, (BATCH, SEQ), dtype=torch.int32)
    P = {n: t.to(torch.float64).requires_grad_(True) for n, t in params32.items()}
    logits = forward(cfg, P, ids.to(torch.int64))
    loss = F.cross_entropy(logits.reshape(-1, V), targets.to(torch.int64).reshape(-1))
    loss.backward()
    for n, t in params32.items():
        TENSORS["%s.param.%s" % (name, n)] = t.numpy()
        g = P[n].grad
        assert g is not None and g.abs().max() > 0, (name, n)
        TENSORS["%s.grad.%s" % (name, n)] = g.detach().numpy().copy()
    TENSORS[name + ".ids"] = ids.numpy()
    TENSORS[name + ".targets"] = targets.numpy()
    TENSORS[name + ".logits"] = logits.detach().numpy().copy()
    TENSORS[name + ".loss"] = loss.detach().numpy().copy()
    CASES.append({"name": name, "config": cfg, "batch": BATCH, "seq": SEQ})


# D=16 (head size 4) keeps the file under 1 MB; llama_gqa_untied uses D=32 (head size 8) so that RoPE
# runs with 4 frequency pairs.
case("gpt2_tied_mha", gpt2())
case("gpt2_untied_mqa", gpt2(tieEmbeddings=False, nKvHeads=1))
case("llama_gqa_untied", llama(dModel=32, dFF=64))
case("llama_gqa_tied", llama(tieEmbeddings=True))
case("post_ln", gpt2(normPlacement="post", ffn="gelu"))
case("sandwich_ln", gpt2(normPlacement="sandwich"))
case("deepnorm", gpt2(normPlacement="deepnorm"))
case("t5_noscale", llama(init="t5"))

# ---------------------------------------------------------------- write

metadata = {
    "cases": json.dumps(CASES, separators=(",", ":")),
    "generator": "scripts/golden/models.py",
    "torch_version": torch.__version__,
    "reference": "float64 from float32 parameters; loss = mean cross-entropy; grads of the loss",
}
save_file(TENSORS, OUT_PATH, metadata)
print("wrote %s: %d cases, %d tensors, %d bytes (torch %s)"
      % (OUT_PATH, len(CASES), len(TENSORS), os.path.getsize(OUT_PATH), torch.__version__))
