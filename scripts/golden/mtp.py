"""Golden fixtures for the multi-token prediction modules (src/models/mtp.ts), from PyTorch.

Writes test/fixtures/mtp.safetensors (run from the repo root via scripts/golden/run.sh).

DeepSeek-V3 technical report (arXiv 2412.19437) §2.2, written from the equations, in float64 from
float32 parameters. Depth k = 1..D over the main model's final hidden states h^0 [B, T, d]:
  h'^k_i = M_k [RMSNorm(h^{k-1}_i); RMSNorm(Emb(x_{i+k}))]             (eq. 21), i = 0 .. T-k-1
  h^k = TRM_k(h'^k)  (one causal pre-norm decoder block of the base's kind) (eq. 22)
  logits^k_i = Norm_k(h^k_i) @ W_head^T                                  (eq. 23, the shared head)
  L^k = CE(logits^k, y_{k:T}) ignoring -100 (y_i = x_{i+1})              (eq. 24)
  L = lambda / D * sum_k L^k                                              (eq. 25)
For every case:
  <case>.h0 F32 [B, T, d], <case>.x I32 [B, T], <case>.y I32 [B, T]
  <case>.param.<name> F32 (tok_emb.weight, lm_head.weight when untied, mtp.<MTPModules name>)
  <case>.logits.<k> F64 [B, T-k, V], <case>.loss.<k> F64 [], <case>.loss F64 []
  <case>.grad.h0 and <case>.grad.<name> F64: d loss / d input
Metadata "cases": JSON list of {"name", "config", "depth", "weight"}.
"""

import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "mtp.safetensors")
torch.manual_seed(0)
B, T = 2, 9


def rms(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def norm(cfg, P, p, x):
    if cfg["norm"] == "layernorm":
        return F.layer_norm(x, [x.shape[-1]], P[p + ".weight"], P[p + ".bias"], eps=cfg["normEps"])
    return rms(x, P[p + ".weight"], cfg["normEps"])


def lin(P, p, x):
    y = x @ P[p + ".weight"].t()
    return y + P[p + ".bias"] if p + ".bias" in P else y


def rope(x, theta):
    """x [B, H, T, Dh], interleaved pairs (2j, 2j+1) at positions 0..T-1 (Meta / llama2.c layout)."""
    n, Dh = x.shape[2], x.shape[3]
    freq = theta ** (-2.0 * torch.arange(Dh // 2, dtype=torch.float64) / Dh)
    ang = torch.arange(n, dtype=torch.float64)[:, None] * freq[None, :]
    a, b = x[..., 0::2], x[..., 1::2]
    return torch.stack([a * ang.cos() - b * ang.sin(), a * ang.sin() + b * ang.cos()], -1).reshape(x.shape)


def block(cfg, P, p, x):
    Bn, n, d = x.shape
    H = cfg["nHeads"]
    Dh = d // H
    h = norm(cfg, P, p + "norm1", x)
    q, k, v = (lin(P, p + "attn." + w, h).view(Bn, n, H, Dh).transpose(1, 2) for w in ("wq", "wk", "wv"))
    if cfg["position"] == "rope":
        q, k = rope(q, cfg["ropeTheta"]), rope(k, cfg["ropeTheta"])
    s = (q @ k.transpose(-1, -2)) / math.sqrt(Dh)
    s = s.masked_fill(torch.ones(n, n, dtype=torch.bool).triu(1), float("-inf"))
    x = x + lin(P, p + "attn.wo", (s.softmax(-1) @ v).transpose(1, 2).reshape(Bn, n, d))
    h = norm(cfg, P, p + "norm2", x)
    if cfg["ffn"] == "swiglu":
        f = lin(P, p + "mlp.w2", F.silu(lin(P, p + "mlp.w1", h)) * lin(P, p + "mlp.w3", h))
    else:
        f = lin(P, p + "mlp.fc2", F.gelu(lin(P, p + "mlp.fc1", h), approximate="tanh"))
    return x + f


def shapes(cfg, depth):
    V, d, FF, bias = cfg["vocabSize"], cfg["dModel"], cfg["dFF"], cfg["bias"]
    out = {"tok_emb.weight": ([V, d], "emb")}
    if not cfg["tieEmbeddings"]:
        out["lm_head.weight"] = ([V, d], "w")

    def nrm(p, rms_only=False):
        out[p + ".weight"] = ([d], "n")
        if not rms_only and cfg["norm"] == "layernorm":
            out[p + ".bias"] = ([d], "b")

    def linear(p, o, i, b):
        out[p + ".weight"] = ([o, i], "w")
        if b:
            out[p + ".bias"] = ([o], "b")

    for k in range(depth):
        p = "mtp.layers.%d." % k
        nrm(p + "hnorm", True)
        nrm(p + "enorm", True)
        linear(p + "proj", d, 2 * d, False)
        nrm(p + "block.norm1")
        for w in ("wq", "wk", "wv", "wo"):
            linear(p + "block.attn." + w, d, d, bias)
        nrm(p + "block.norm2")
        if cfg["ffn"] == "swiglu":
            linear(p + "block.mlp.w1", FF, d, bias)
            linear(p + "block.mlp.w3", FF, d, bias)
            linear(p + "block.mlp.w2", d, FF, bias)
        else:
            linear(p + "block.mlp.fc1", FF, d, bias)
            linear(p + "block.mlp.fc2", d, FF, bias)
        nrm(p + "norm")
    return out


TENSORS, CASES = {}, []


def case(name, cfg, depth, weight):
    V, d = cfg["vocabSize"], cfg["dModel"]
    P32 = {}
    for n, (shape, kind) in shapes(cfg, depth).items():
        r = torch.randn(*shape, dtype=torch.float32)
        P32[n] = {"emb": r * 0.5, "w": r * 0.25, "n": 1 + r * 0.1, "b": r * 0.1}[kind]
    h0_32 = torch.randn(B, T, d, dtype=torch.float32)
    x = torch.randint(0, V, (B, T), dtype=torch.int64)
    y = torch.cat([x[:, 1:], torch.randint(0, V, (B, 1))], 1)
    y[1, 6] = -100  # a padding target (IGNORE_INDEX)
    P = {n: t.to(torch.float64).requires_grad_(True) for n, t in P32.items()}
    h0 = h0_32.to(torch.float64).requires_grad_(True)
    W = P["tok_emb.weight"] if cfg["tieEmbeddings"] else P["lm_head.weight"]
    h, total = h0, 0
    for k in range(1, depth + 1):
        p = "mtp.layers.%d." % (k - 1)
        n = T - k
        e = P["tok_emb.weight"][x[:, k:]]
        cat = torch.cat([rms(h[:, :n], P[p + "hnorm.weight"], cfg["normEps"]), rms(e, P[p + "enorm.weight"], cfg["normEps"])], -1)
        h = block(cfg, P, p + "block.", cat @ P[p + "proj.weight"].t())
        logits = norm(cfg, P, p + "norm", h) @ W.t()
        lk = F.cross_entropy(logits.reshape(-1, V), y[:, k:].reshape(-1), ignore_index=-100)
        TENSORS["%s.logits.%d" % (name, k)] = logits.detach().numpy().copy()
        TENSORS["%s.loss.%d" % (name, k)] = lk.detach().numpy().copy()
        total = total + lk
    loss = total * weight / depth
    loss.backward()
    TENSORS[name + ".loss"] = loss.detach().numpy().copy()
    TENSORS[name + ".h0"] = h0_32.numpy()
    TENSORS[name + ".grad.h0"] = h0.grad.numpy().copy()
    TENSORS[name + ".x"] = x.to(torch.int32).numpy()
    TENSORS[name + ".y"] = y.to(torch.int32).numpy()
    for n, t in P32.items():
        assert P[n].grad is not None and P[n].grad.abs().max() > 0, (name, n)
        TENSORS["%s.param.%s" % (name, n)] = t.numpy()
        TENSORS["%s.grad.%s" % (name, n)] = P[n].grad.numpy().copy()
    CASES.append({"name": name, "config": cfg, "depth": depth, "weight": weight})


BASE = {"vocabSize": 23, "dModel": 16, "nLayers": 2, "nHeads": 2, "dFF": 32, "maxSeqLen": 16, "ropeTheta": 10000,
        "normEps": 1e-5, "normPlacement": "pre", "dropout": 0, "init": "nanogpt", "attention": "softmax"}
case("llama", dict(BASE, position="rope", norm="rmsnorm", ffn="swiglu", bias=False, tieEmbeddings=False), 3, 0.3)
case("gpt2", dict(BASE, position="learned", norm="layernorm", ffn="gelu_tanh", bias=True, tieEmbeddings=True), 2, 0.1)

save_file(TENSORS, OUT_PATH, {
    "cases": json.dumps(CASES, separators=(",", ":")),
    "generator": "scripts/golden/mtp.py",
    "torch_version": torch.__version__,
    "reference": "DeepSeek-V3 §2.2 eqs. 21-25 in float64 from float32 parameters; grads of lambda/D sum_k L^k",
})
print("wrote %s: %d cases, %d tensors, %d bytes" % (OUT_PATH, len(CASES), len(TENSORS), os.path.getsize(OUT_PATH)))
