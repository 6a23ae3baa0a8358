"""Golden fixture for WGAN-GP's gradient penalty (Gulrajani et al. 2017, eq. 3 / Algorithm 1), from PyTorch.

Writes test/fixtures/generative/wgan_gp.safetensors (run from the repo root via scripts/golden/run.sh).

A fixed tiny ReLU critic 2 -> 4 -> 4 -> 1 (torch.nn.Linear layout, our ReluMLP's names net.<i>.weight/bias),
real and fake points [5, 2] and eps [5], all float64:
  x_hat = eps x + (1 - eps) x_fake
  gp    = mean((||dD(x_hat)/dx_hat||_2 - 1)^2), the input gradient from torch.autograd.grad(create_graph=True)
  loss  = mean D(x_fake) - mean D(x) + LAMBDA gp
Tensors: real, fake, eps, <param> (the critic), gp, loss, gp.d<param> and loss.d<param> (gradients; an
unused parameter's as zeros).
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "generative", "wgan_gp.safetensors")
LAMBDA = 10.0

torch.manual_seed(0)
D = torch.float64
critic = torch.nn.Sequential(
    torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1)
).to(D)
# our ReluMLP names its Linear layers net.0, net.1, net.2 (the ReLUs hold no parameters)
names = {"0": "net.0", "2": "net.1", "4": "net.2"}
params = [(names[k.split(".")[0]] + "." + k.split(".")[1], p) for k, p in critic.named_parameters()]

real = torch.randn(5, 2, dtype=D) * 2
fake = torch.randn(5, 2, dtype=D)
eps = torch.rand(5, dtype=D)

x_hat = (eps[:, None] * real + (1 - eps[:, None]) * fake).requires_grad_(True)
(g,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
gp = ((g.norm(2, dim=1) - 1) ** 2).mean()
loss = critic(fake).mean() - critic(real).mean() + LAMBDA * gp
# the penalty does not depend on the last bias at all, and on the others only through the ReLU masks
# (derivative 0): allow_unused, and an unused parameter's gradient is stored as zeros
d_gp = torch.autograd.grad(gp, [p for _, p in params], retain_graph=True, allow_unused=True)
d_gp = [torch.zeros_like(p) if a is None else a for (_, p), a in zip(params, d_gp)]
d_loss = torch.autograd.grad(loss, [p for _, p in params])

T = {"real": real.numpy().copy(), "fake": fake.numpy().copy(), "eps": eps.numpy().copy(),
     "gp": gp.detach().reshape(()).numpy().copy(), "loss": loss.detach().reshape(()).numpy().copy()}
for (n, p), a, b in zip(params, d_gp, d_loss):
    T[n] = p.detach().numpy().copy()
    T["gp.d" + n] = a.numpy().copy()
    T["loss.d" + n] = b.numpy().copy()

save_file(T, OUT_PATH, {"params": json.dumps([n for n, _ in params]), "lambda": str(LAMBDA),
                        "generator": "scripts/golden/wgan_gp.py", "torch_version": torch.__version__})
