"""Reference values for tsformer's DDPM U-Net (src/generative/unet.ts) and its loss, built here in torch from
Ho et al. 2020 App. B and their diffusion_tf/models/unet.py (not translated from the TypeScript), float64.
Writes test/fixtures/unet.safetensors.

The network, scaled down: widths (c0, c1, c2) at full, 1/2 and 1/4 resolution, one residual block per
level, 2x2 average pooling down and nearest 2x upsampling (resamp_with_conv = False), a middle residual
block then one single-head self-attention block, up blocks that concatenate each level's skip, and
GroupNorm - SiLU - conv3x3 out. Residual block: GN - SiLU - conv3x3, + Dense(SiLU(temb)), GN - SiLU -
conv3x3, + x (1x1 conv when widths differ). temb = Dense(4 c0)(SiLU(Dense(4 c0)(sinusoidal_c0(t)))) plus
a label embedding (classes + 1 rows, the last the null label). Sinusoidal: ADM's timestep_embedding
(cos first, max_period 10000).

Every parameter is drawn N(0, 0.2²) (norm weights 1 + N(0, 0.1²)), so that the zero-initialized layers
of the real init do not hide any path. Recorded: the weights, x0, t, labels, eps, the ε-prediction at
x_t = sqrt(ᾱ_t) x0 + sqrt(1 - ᾱ_t) eps (Ho et al. eq. 4; linear β 1e-4 .. 0.02, T = 1000), the loss
sum((eps - ε_θ)²) / B (eq. 14, summed over pixels as src/generative/ddpm.ts does) and its gradient for
every parameter.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save_file  # noqa: E402

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

C0, C1, C2, GROUPS, CLASSES, IN_CH, H, W, B, T = 8, 8, 16, 4, 3, 1, 8, 8, 2, 1000


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
    args = t[:, None].double() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, emb):
        super().__init__()
        self.norm1 = nn.GroupNorm(GROUPS, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(emb, cout)
        self.norm2 = nn.GroupNorm(GROUPS, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb_act):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(emb_act)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.GroupNorm(GROUPS, c)
        self.q, self.k, self.v, self.proj = (nn.Linear(c, c) for _ in range(4))

    def forward(self, x):
        b, c, h, w = x.shape
        tok = self.norm(x).reshape(b, c, h * w).transpose(1, 2)  # [B, HW, C]
        q, k, v = self.q(tok), self.k(tok), self.v(tok)
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1) @ v
        return x + self.proj(a).transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    def __init__(self):
        super().__init__()
        E = 4 * C0
        self.conv_in = nn.Conv2d(IN_CH, C0, 3, padding=1)
        self.temb0 = nn.Linear(C0, E)
        self.temb1 = nn.Linear(E, E)
        self.label_emb = nn.Embedding(CLASSES + 1, E)
        self.down = nn.ModuleList([ResBlock(C0, C0, E), ResBlock(C0, C1, E), ResBlock(C1, C2, E)])
        self.mid = ResBlock(C2, C2, E)
        self.attn = AttnBlock(C2)
        self.up = nn.ModuleList([ResBlock(C2 + C2, C2, E), ResBlock(C2 + C1, C1, E), ResBlock(C1 + C0, C0, E)])
        self.norm_out = nn.GroupNorm(GROUPS, C0)
        self.conv_out = nn.Conv2d(C0, IN_CH, 3, padding=1)

    def forward(self, x, t, y):
        emb = self.temb1(F.silu(self.temb0(timestep_embedding(t, C0)))) + self.label_emb(y)
        e = F.silu(emb)
        h = self.conv_in(x)
        skips = []
        for i, blk in enumerate(self.down):
            h = blk(F.avg_pool2d(h, 2) if i else h, e)
            skips.append(h)
        h = self.attn(self.mid(h, e))
        for i, blk in enumerate(self.up):
            if i:
                h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = blk(torch.cat([h, skips.pop()], dim=1), e)
        return self.conv_out(F.silu(self.norm_out(h)))


net = UNet()
with torch.no_grad():
    for name, p in net.named_parameters():
        is_norm_w = name.endswith("weight") and "norm" in name
        p.copy_((1 + 0.1 * torch.randn_like(p)) if is_norm_w else 0.2 * torch.randn_like(p))

betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
abar = np.cumprod(1 - betas)
x0 = torch.rand(B, IN_CH, H, W) * 2 - 1
eps = torch.randn(B, IN_CH, H, W)
t = torch.tensor([3, 700])
y = torch.tensor([1, CLASSES])  # a class and the null label
a = torch.tensor(np.sqrt(abar[t.numpy()]))[:, None, None, None]
s = torch.tensor(np.sqrt(1 - abar[t.numpy()]))[:, None, None, None]
xt = a * x0 + s * eps
out = net(xt, t, y)
loss = ((eps - out) ** 2).sum() / B
loss.backward()

f32 = lambda v: v.detach().numpy().astype(np.float32)
tensors = {f"param.{n}": f32(p) for n, p in net.named_parameters()}
tensors.update({f"grad.{n}": f32(p.grad) for n, p in net.named_parameters()})
tensors.update({"x0": f32(x0), "eps": f32(eps), "xt": f32(xt), "out": f32(out), "loss": f32(loss.reshape(1)),
                "t": t.numpy().astype(np.int32), "labels": y.numpy().astype(np.int32)})
meta = {"generator": "scripts/golden/unet.py", "torch": torch.__version__,
        "config": json.dumps({"channels": [C0, C1, C2], "groups": GROUPS, "classes": CLASSES, "attention": True, "inChannels": IN_CH, "T": T})}
path = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "unet.safetensors")
save_file(tensors, path, meta)
print("wrote", os.path.normpath(path), "loss", float(loss))
