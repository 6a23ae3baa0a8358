# PyTorch peer of bench/dit.ts: images/s of one DiT training step (forward, rectified-flow loss with
# logit-normal t and label dropout, backward, AdamW), float32, 2 threads. The same architecture as
# src/generative/dit.ts (DiT, Peebles & Xie 2023, with SD3's per-head RMSNorm QK-norm), written with torch.nn.
# One request per stdin line ({config, batch, warmup, reps}), one reply line with images/s per repetition;
# the model and optimizer of a (config, batch) are built once and kept, so bench/dit.ts can alternate rounds.
import json
import math
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, __import__("os").path.dirname(__file__))
from peer import hello, rates, reply, requests

hello()


def sincos_2d(dim, grid):
    # MAE's get_2d_sincos_pos_embed: first half from the column index, second from the row index
    om = 1.0 / 10000 ** (np.arange(dim // 4) / (dim / 4.0))
    ii, jj = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    e = lambda pos: np.concatenate([np.sin(np.outer(pos.reshape(-1), om)), np.cos(np.outer(pos.reshape(-1), om))], 1)
    return torch.tensor(np.concatenate([e(jj), e(ii)], 1), dtype=torch.float32)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps, self.weight = eps, nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Block(nn.Module):
    def __init__(self, d, heads, ratio):
        super().__init__()
        self.h = heads
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.qn, self.kn = RMSNorm(d // heads), RMSNorm(d // heads)
        self.fc1, self.fc2 = nn.Linear(d, ratio * d), nn.Linear(ratio * d, d)
        self.ada = nn.Linear(d, 6 * d)

    def attn(self, x):
        N, T, d = x.shape
        q, k, v = self.qkv(x).reshape(N, T, 3, self.h, d // self.h).permute(2, 0, 3, 1, 4)
        a = torch.softmax(self.qn(q) @ self.kn(k).transpose(-2, -1) / math.sqrt(d // self.h), -1)
        return self.proj((a @ v).transpose(1, 2).reshape(N, T, d))

    def forward(self, x, sc):
        sa, ca, ga, sm, cm, gm = self.ada(sc).chunk(6, 1)
        d = x.shape[-1]
        x = x + ga.unsqueeze(1) * self.attn(modulate(F.layer_norm(x, (d,), eps=1e-6), sa, ca))
        m = self.fc2(F.gelu(self.fc1(modulate(F.layer_norm(x, (d,), eps=1e-6), sm, cm)), approximate="tanh"))
        return x + gm.unsqueeze(1) * m


class DiT(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        d, C, p = c["dim"], c["channels"], c["patch"]
        self.grid = c["imageSize"] // p
        self.x_embed = nn.Conv2d(C, d, p, stride=p)
        self.register_buffer("pos", sincos_2d(d, self.grid))
        self.t1, self.t2 = nn.Linear(c["freqDim"], d), nn.Linear(d, d)
        self.y = nn.Embedding(c["numClasses"] + 1, d)
        self.blocks = nn.ModuleList([Block(d, c["heads"], c["mlpRatio"]) for _ in range(c["depth"])])
        self.fada, self.flin = nn.Linear(d, 2 * d), nn.Linear(d, C * p * p)

    def forward(self, x, t, y):
        c, N = self.c, x.shape[0]
        h = self.x_embed(x).flatten(2).transpose(1, 2) + self.pos
        half = c["freqDim"] // 2
        f = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        a = (t * c["timeScale"])[:, None] * f[None]
        sc = F.silu(self.t2(F.silu(self.t1(torch.cat([torch.cos(a), torch.sin(a)], -1)))) + self.y(y))
        for b in self.blocks:
            h = b(h, sc)
        shift, scale = self.fada(sc).chunk(2, 1)
        o = self.flin(modulate(F.layer_norm(h, (h.shape[-1],), eps=1e-6), shift, scale))
        C, p, G = c["channels"], c["patch"], self.grid
        return torch.einsum("nhwcpq->nchpwq", o.reshape(N, G, G, C, p, p)).reshape(N, C, G * p, G * p)


def make_step(c, B):
    m = DiT(c)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0)
    x = torch.rand(B, c["channels"], c["imageSize"], c["imageSize"]) * 2 - 1
    labels = torch.arange(B) % c["numClasses"]

    def step():
        eps = torch.randn_like(x)
        t = torch.sigmoid(torch.randn(B) * c["logitStd"] + c["logitMean"])
        y = torch.where(torch.rand(B) < c["classDropout"], torch.full_like(labels, c["numClasses"]), labels)
        tt = t.view(B, 1, 1, 1)
        loss = ((m((1 - tt) * x + tt * eps, t, y) - (eps - x)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


steps = {}
for r in requests():
    key = (json.dumps(r["config"], sort_keys=True), r["batch"])
    if key not in steps:
        steps[key] = make_step(r["config"], r["batch"])
    reply({"images_per_s": rates(steps[key], r["batch"], r["warmup"], r["reps"])})
