"""Golden fixture for the SD3-style DiT (src/generative/dit.ts, dit-method.ts), written from the papers in torch.

Writes test/fixtures/generative/dit.safetensors (run from the repo root via scripts/golden/run.sh).

A tiny DiT (Peebles & Xie 2023, models.py's DiT; Esser et al. 2024 for QK-norm and the rectified flow):
  images [B, C, S, S] -> Conv2d(C, d, p, stride p) patch embedding + MAE's 2D sin-cos positions
  c = MLP(sinusoid(1000 t)) + class embedding (numClasses + 1 rows, the last the null class)
  blocks: adaLN-Zero (shift, scale, gate for attention and MLP from Linear(SiLU(c))), LayerNorm without
          affine (eps 1e-6), multi-head attention with per-head RMSNorm on q and k (eps 1e-6, learnable
          scale), MLP fc1 -> GELU(tanh) -> fc2
  final: adaLN (shift, scale), Linear to C p^2 pixels per patch, unpatchify.
Our final Linear lays each patch's pixels out as (c, py, px), the conv weight's order; DiT's models.py uses
(py, px, c); the two differ by a permutation of that Linear's rows (identical for C = 1).
Every parameter is drawn at random here (not DiT's zero init, which would make most gradients 0).

Computed in float64 from float32-rounded weights and inputs:
  out  = v(x, t, y)                                 (the network at the data itself)
  loss = mean((v(z_t, t, y) - (eps - x))^2),  z_t = (1 - t) x + t eps   (SD3 eq. 2-3 with the velocity target)
  grad.<param> = d loss / d param
Tensors: x, t, eps, labels (int32), <param> (F32, our names and shapes), out, loss, grad.<param> (F64).
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "generative", "dit.safetensors")
CFG = dict(imageSize=8, channels=2, patch=2, dim=16, depth=2, heads=2, mlpRatio=4, numClasses=3,
           qkNorm="rmsnorm", freqDim=8, timeScale=1000)
B = 3
D = torch.float64


def sincos_1d(dim, pos):
    # MAE util/pos_embed.py get_1d_sincos_pos_embed_from_grid: omega = 1 / 10000^(k / (dim/2)), [sin, cos]
    omega = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float64) / (dim / 2.0))
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim, grid):
    # MAE get_2d_sincos_pos_embed: meshgrid(grid_w, grid_h), the first half from grid[0] (the column index)
    gh = np.arange(grid, dtype=np.float64)
    gw = np.arange(grid, dtype=np.float64)
    g = np.meshgrid(gw, gh)
    return np.concatenate([sincos_1d(dim // 2, g[0]), sincos_1d(dim // 2, g[1])], axis=1)


def timestep_embedding(t, dim, max_period=10000):
    # DiT's TimestepEmbedder.timestep_embedding (from ADM): [cos(t f), sin(t f)], f_j = max_period^(-j/half)
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=D) / half)
    args = t[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


torch.manual_seed(0)
d, C, p, S, H = CFG["dim"], CFG["channels"], CFG["patch"], CFG["imageSize"], CFG["heads"]
hd, G, M, K = d // H, S // p, CFG["mlpRatio"] * d, CFG["numClasses"]


def rnd(*shape, std=0.3):
    # float32-rounded values held in float64, so that our float32 model sees exactly these weights
    return (torch.randn(*shape) * std).float().to(D).requires_grad_(True)


P = {}  # our names -> tensors in our shapes
conv_w = rnd(d, C, p, p)
P["xEmbed.weight"] = conv_w
P["xEmbed.bias"] = rnd(d)
P["tEmbed1.weight"], P["tEmbed1.bias"] = rnd(d, CFG["freqDim"]), rnd(d)
P["tEmbed2.weight"], P["tEmbed2.bias"] = rnd(d, d), rnd(d)
P["yEmbed.weight"] = rnd(K + 1, d)
for i in range(CFG["depth"]):
    b = "blocks.%d." % i
    P[b + "attn.qkv.weight"], P[b + "attn.qkv.bias"] = rnd(3 * d, d), rnd(3 * d)
    P[b + "attn.qNorm.weight"] = (1 + rnd(hd).detach()).requires_grad_(True)
    P[b + "attn.kNorm.weight"] = (1 + rnd(hd).detach()).requires_grad_(True)
    P[b + "attn.proj.weight"], P[b + "attn.proj.bias"] = rnd(d, d), rnd(d)
    P[b + "fc1.weight"], P[b + "fc1.bias"] = rnd(M, d), rnd(M)
    P[b + "fc2.weight"], P[b + "fc2.bias"] = rnd(d, M), rnd(d)
    P[b + "adaLN.weight"], P[b + "adaLN.bias"] = rnd(6 * d, d), rnd(6 * d)
P["finalAdaLN.weight"], P["finalAdaLN.bias"] = rnd(2 * d, d), rnd(2 * d)
P["finalLinear.weight"], P["finalLinear.bias"] = rnd(C * p * p, d), rnd(C * p * p)

pos = torch.tensor(sincos_2d(d, G), dtype=D)


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def rms(x, w, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def attention(x, b):
    N, T, _ = x.shape
    qkv = F.linear(x, P[b + "qkv.weight"], P[b + "qkv.bias"]).reshape(N, T, 3, H, hd).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]                    # [N, H, T, hd]
    q, k = rms(q, P[b + "qNorm.weight"]), rms(k, P[b + "kNorm.weight"])
    a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1)
    o = (a @ v).transpose(1, 2).reshape(N, T, d)
    return F.linear(o, P[b + "proj.weight"], P[b + "proj.bias"])


def dit(x, t, y):
    N = x.shape[0]
    h = F.conv2d(x, conv_w, P["xEmbed.bias"], stride=p).flatten(2).transpose(1, 2) + pos
    te = timestep_embedding(t * CFG["timeScale"], CFG["freqDim"])
    te = F.linear(F.silu(F.linear(te, P["tEmbed1.weight"], P["tEmbed1.bias"])), P["tEmbed2.weight"], P["tEmbed2.bias"])
    c = te + P["yEmbed.weight"][y]
    sc = F.silu(c)
    for i in range(CFG["depth"]):
        b = "blocks.%d." % i
        sh_a, sc_a, g_a, sh_m, sc_m, g_m = F.linear(sc, P[b + "adaLN.weight"], P[b + "adaLN.bias"]).chunk(6, dim=1)
        h = h + g_a.unsqueeze(1) * attention(modulate(F.layer_norm(h, (d,), eps=1e-6), sh_a, sc_a), b + "attn.")
        m = modulate(F.layer_norm(h, (d,), eps=1e-6), sh_m, sc_m)
        m = F.linear(F.gelu(F.linear(m, P[b + "fc1.weight"], P[b + "fc1.bias"]), approximate="tanh"), P[b + "fc2.weight"], P[b + "fc2.bias"])
        h = h + g_m.unsqueeze(1) * m
    shift, scale = F.linear(sc, P["finalAdaLN.weight"], P["finalAdaLN.bias"]).chunk(2, dim=1)
    o = F.linear(modulate(F.layer_norm(h, (d,), eps=1e-6), shift, scale), P["finalLinear.weight"], P["finalLinear.bias"])
    # unpatchify with each patch's pixels in (c, py, px) order
    o = o.reshape(N, G, G, C, p, p)
    return torch.einsum("nhwcpq->nchpwq", o).reshape(N, C, S, S)


x = torch.rand(B, C, S, S).mul(2).sub(1).float().to(D)
t = torch.tensor([0.07, 0.5, 0.93]).float().to(D)
eps = torch.randn(B, C, S, S).float().to(D)
labels = torch.tensor([0, 2, K])  # the last: the null class

out = dit(x, t, labels)
tt = t.view(B, 1, 1, 1)
loss = ((dit((1 - tt) * x + tt * eps, t, labels) - (eps - x)) ** 2).mean()
names = list(P.keys())
grads = torch.autograd.grad(loss, [P[n] for n in names])

T = {"x": x.float().numpy(), "t": t.float().numpy(), "eps": eps.float().numpy(),
     "labels": labels.to(torch.int32).numpy(), "out": out.detach().numpy(), "loss": loss.detach().reshape(()).numpy()}
for n, g in zip(names, grads):
    w = P[n].detach()
    T[n] = (w.reshape(d, C * p * p) if n == "xEmbed.weight" else w).float().numpy()
    T["grad." + n] = (g.reshape(d, C * p * p) if n == "xEmbed.weight" else g).numpy()
T = {k: np.ascontiguousarray(v) for k, v in T.items()}
save_file(T, OUT_PATH, {"config": json.dumps(CFG), "params": json.dumps(names),
                        "generator": "scripts/golden/dit.py", "torch_version": torch.__version__})
print("wrote", OUT_PATH, "loss", float(loss))
