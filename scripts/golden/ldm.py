"""Golden fixture for latent diffusion (Rombach et al. 2022): the KL autoencoder's loss and the cross-attention
latent denoiser, written independently in PyTorch (float64 math on float32-representable weights and inputs).

Writes test/fixtures/ldm.safetensors (run from the repo root via scripts/golden/run.sh).

Autoencoder (latent c = 2, channels 8, GroupNorm groups 4), torch layout:
  encoder_in: Conv2d(1, 8, 3, p=1); encoder.i: GroupNorm -> SiLU -> Conv2d 3x3 (stride 2, 2, 1): 8 -> 16 -> 16 -> 2c
  decoder_in: Conv2d(c, 16, 3, p=1); decoder.i: GroupNorm -> SiLU -> [nearest x2] -> Conv2d 3x3: 16 -> 16 -> 8 -> 1
  mean, logvar = chunk(encoder(x), 2, dim=1), logvar clamped to [-30, 20]; z = mean + exp(logvar / 2) eps
  recon_l2 = sum((decode(z) - x)^2) / B, recon_l1 = sum(|decode(z) - x|) / B
  kl = 0.5 sum(mean^2 + exp(logvar) - 1 - logvar) / B, loss = recon_l2 + BETA kl
Tensors: ae.<param>, ae.x [3, 1, 28, 28], ae.eps [3, 2, 7, 7], ae.recon_l2, ae.recon_l1, ae.kl, ae.loss and
ae.d.<param> (gradients of loss). kl.mean / kl.logvar / kl.value: the closed form against
torch.distributions.kl_divergence(Normal(mean, sigma), Normal(0, 1)).sum() (checked here to agree).

Denoiser (latent c = 2 on 7 x 7, dim 16, depth 2, heads 2, ctxTokens 2, 10 classes + null label 10):
  h = in_proj(z as [B, 49, c]) + pos; e = SiLU(time2(SiLU(time1(sinusoid(t, 16)))))  (cos first, period 1e4)
  ctx = label(y) as [B, 2, 16]; per block: h += temb(e)[:, None]; a = norm1(h); h += attn1(a, a);
  h += attn2(norm2(h), ctx); h += fc2(SiLU(fc1(norm3(h)))); out = out_proj(norm_out(h)) as [B, c, 7, 7]
  attn(x, ctx) = o(softmax(q(x) k(ctx)^T / sqrt(d)) v(ctx)) per head (q, k, v without bias)
Tensors: unet.<param>, unet.z [3, 2, 7, 7], unet.t [3], unet.y [3] (one label is the null label), unet.r
[3, 2, 7, 7], unet.out, unet.out_null (every label null), unet.d.<param> = d sum(out * r) / d param,
unet.dz, unet.guided (w = GUIDANCE: out_null + w (out - out_null)).
"""

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "ldm.safetensors")
BETA = 0.01
GUIDANCE = 3.0
D = torch.float64
torch.manual_seed(0)


def f32(t):
    """Round to float32 and back: weights and inputs the float32 side holds exactly."""
    return t.float().double()


def param(shape, scale):
    return f32(torch.randn(*shape, dtype=D) * scale).requires_grad_(True)


# ---------------------------------------------------------------- autoencoder
C, CH, G = 2, 8, 4
ae = {}


def conv(name, cin, cout):
    ae[name + ".weight"] = param((cout, cin, 3, 3), 1 / math.sqrt(cin * 9))
    ae[name + ".bias"] = param((cout,), 0.1)


def gn(name, ch):
    ae[name + ".weight"] = f32(1 + 0.1 * torch.randn(ch, dtype=D)).requires_grad_(True)
    ae[name + ".bias"] = param((ch,), 0.1)


conv("encoder_in", 1, CH)
for i, (cin, cout) in enumerate([(CH, 2 * CH), (2 * CH, 2 * CH), (2 * CH, 2 * C)]):
    gn("encoder.%d.norm" % i, cin)
    conv("encoder.%d.conv" % i, cin, cout)
conv("decoder_in", C, 2 * CH)
for i, (cin, cout) in enumerate([(2 * CH, 2 * CH), (2 * CH, CH), (CH, 1)]):
    gn("decoder.%d.norm" % i, cin)
    conv("decoder.%d.conv" % i, cin, cout)


def block(h, name, stride=1, up=False):
    h = F.silu(F.group_norm(h, G, ae[name + ".norm.weight"], ae[name + ".norm.bias"], eps=1e-5))
    if up:
        h = F.interpolate(h, scale_factor=2, mode="nearest")
    return F.conv2d(h, ae[name + ".conv.weight"], ae[name + ".conv.bias"], stride=stride, padding=1)


def encode(x):
    h = F.conv2d(x, ae["encoder_in.weight"], ae["encoder_in.bias"], padding=1)
    h = block(h, "encoder.0", 2)
    h = block(h, "encoder.1", 2)
    h = block(h, "encoder.2")
    mean, logvar = torch.chunk(h, 2, dim=1)
    return mean, torch.clamp(logvar, -30, 20)


def decode(z):
    h = F.conv2d(z, ae["decoder_in.weight"], ae["decoder_in.bias"], padding=1)
    h = block(h, "decoder.0", up=True)
    h = block(h, "decoder.1", up=True)
    return block(h, "decoder.2")


B = 3
x = f32(torch.rand(B, 1, 28, 28, dtype=D) * 2 - 1)
eps = f32(torch.randn(B, C, 7, 7, dtype=D))
mean, logvar = encode(x)
xr = decode(mean + torch.exp(0.5 * logvar) * eps)
recon_l2 = ((xr - x) ** 2).sum() / B
recon_l1 = (xr - x).abs().sum() / B
kl = 0.5 * (mean ** 2 + torch.exp(logvar) - 1 - logvar).sum() / B
loss = recon_l2 + BETA * kl
ae_names = list(ae)
ae_grads = torch.autograd.grad(loss, [ae[n] for n in ae_names])

# the closed form against torch.distributions on an independent (mean, logvar)
km, klv = f32(torch.randn(2, 3, 4, dtype=D)), f32(torch.randn(2, 3, 4, dtype=D))
kl_closed = 0.5 * (km ** 2 + torch.exp(klv) - 1 - klv).sum()
kl_dist = torch.distributions.kl_divergence(
    torch.distributions.Normal(km, torch.exp(0.5 * klv)), torch.distributions.Normal(torch.zeros_like(km), torch.ones_like(km))).sum()
assert abs(kl_closed.item() - kl_dist.item()) < 1e-10 * abs(kl_dist.item()), (kl_closed, kl_dist)

# ---------------------------------------------------------------- latent denoiser
DIM, DEPTH, HEADS, CTX, S = 16, 2, 2, 2, 7
un = {}


def linear(name, fin, fout, bias=True):
    un[name + ".weight"] = param((fout, fin), 1 / math.sqrt(fin))
    if bias:
        un[name + ".bias"] = param((fout,), 0.1)


def layernorm(name):
    un[name + ".weight"] = f32(1 + 0.1 * torch.randn(DIM, dtype=D)).requires_grad_(True)
    un[name + ".bias"] = param((DIM,), 0.1)


linear("in_proj", C, DIM)
un["pos"] = param((S * S, DIM), 0.1)
linear("time1", DIM, DIM)
linear("time2", DIM, DIM)
un["label.weight"] = param((11, CTX * DIM), 1.0)
for b in range(DEPTH):
    p = "blocks.%d." % b
    linear(p + "temb", DIM, DIM)
    for a in ("attn1", "attn2"):
        for n in "qkv":
            linear(p + a + "." + n, DIM, DIM, bias=False)
        linear(p + a + ".o", DIM, DIM)
    for n in ("norm1", "norm2", "norm3"):
        layernorm(p + n)
    linear(p + "fc1", DIM, 4 * DIM)
    linear(p + "fc2", 4 * DIM, DIM)
layernorm("norm_out")
linear("out_proj", DIM, C)


def lin(h, name):
    return F.linear(h, un[name + ".weight"], un.get(name + ".bias"))


def sinusoid(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=D) / half)
    args = t[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def attend(h, ctx, name):
    Bq, T, _ = h.shape
    dh = DIM // HEADS
    q = lin(h, name + ".q").reshape(Bq, T, HEADS, dh).transpose(1, 2)
    k = lin(ctx, name + ".k").reshape(Bq, ctx.shape[1], HEADS, dh).transpose(1, 2)
    v = lin(ctx, name + ".v").reshape(Bq, ctx.shape[1], HEADS, dh).transpose(1, 2)
    p = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh), dim=-1)
    return lin((p @ v).transpose(1, 2).reshape(Bq, T, DIM), name + ".o")


def ln(h, name):
    return F.layer_norm(h, (DIM,), un[name + ".weight"], un[name + ".bias"], eps=1e-5)


def denoise(z, t, y):
    Bz = z.shape[0]
    h = lin(z.reshape(Bz, C, S * S).transpose(1, 2), "in_proj") + un["pos"]
    e = F.silu(lin(F.silu(lin(sinusoid(t, DIM), "time1")), "time2"))
    ctx = un["label.weight"][y].reshape(Bz, CTX, DIM)
    for b in range(DEPTH):
        p = "blocks.%d." % b
        h = h + lin(e, p + "temb")[:, None]
        a = ln(h, p + "norm1")
        h = h + attend(a, a, p + "attn1")
        h = h + attend(ln(h, p + "norm2"), ctx, p + "attn2")
        h = h + lin(F.silu(lin(ln(h, p + "norm3"), p + "fc1")), p + "fc2")
    out = lin(ln(h, "norm_out"), "out_proj")
    return out.transpose(1, 2).reshape(Bz, C, S, S)


z = f32(torch.randn(B, C, S, S, dtype=D)).requires_grad_(True)
t = torch.tensor([0.0, 417.0, 999.0], dtype=D)
y = torch.tensor([3, 10, 7])
r = f32(torch.randn(B, C, S, S, dtype=D))
out = denoise(z, t, y)
un_names = list(un)
grads = torch.autograd.grad((out * r).sum(), [un[n] for n in un_names] + [z])
with torch.no_grad():
    out_null = denoise(z, t, torch.full((B,), 10))
    guided = out_null + GUIDANCE * (out - out_null)

T = {"ae.x": x, "ae.eps": eps, "ae.recon_l2": recon_l2, "ae.recon_l1": recon_l1, "ae.kl": kl, "ae.loss": loss,
     "kl.mean": km, "kl.logvar": klv, "kl.value": kl_closed,
     "unet.z": z, "unet.t": t, "unet.y": y.int(), "unet.r": r, "unet.out": out, "unet.out_null": out_null,
     "unet.guided": guided, "unet.dz": grads[-1]}
for n, g in zip(ae_names, ae_grads):
    T["ae." + n], T["ae.d." + n] = ae[n], g
for n, g in zip(un_names, grads):
    T["unet." + n], T["unet.d." + n] = un[n], g
T = {k: (v.detach().numpy().astype(np.int32) if v.dtype in (torch.int32, torch.int64) else v.detach().double().numpy()).copy().reshape(v.shape)
     for k, v in T.items()}
save_file(T, OUT_PATH, {"beta": str(BETA), "guidance": str(GUIDANCE), "ae_params": ",".join(ae_names), "unet_params": ",".join(un_names),
                        "generator": "scripts/golden/ldm.py", "torch_version": torch.__version__})
print("wrote", OUT_PATH, os.path.getsize(OUT_PATH), "bytes")
