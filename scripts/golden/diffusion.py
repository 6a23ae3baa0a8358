"""Reference values for tsformer's diffusion schedules and samplers (src/generative/{schedules,ddpm,ddim,
pf-ode,time-mlp}.ts), written independently from the papers' formulas in numpy/torch, float64.
Writes test/fixtures/generative/diffusion.json.

- linear betas: np.linspace(1e-4, 0.02, T) (Ho et al. 2020 get_beta_schedule); cosine: Nichol & Dhariwal 2021
  eq. 17 via betas_for_alpha_bar (max beta 0.999); alpha_bar = cumprod(1 - beta).
- DDPM ancestral step: Ho et al. Algorithm 2 line 4, sigma^2 = beta_t or beta~_t (eq. 7).
- DDIM step: Song et al. 2021 eq. 12 with sigma of eq. 16, eta = 0 and 1; the "uniform" step subsequence
  range(0, T, T // S) and "quad" (linspace(0, sqrt(0.8 T), S) ** 2) of the DDIM repository.
- Probability-flow ODE of the VP SDE (Song et al. 2021 eq. 13), beta(t) = 0.1 + 19.9 t, with the toy
  denoiser eps(x, t) = 0.5 tanh(x) + 0.2 t: one Euler step and one Heun step.
- ADM's timestep_embedding (cos first) in torch, max_period 10000.
"""
import json
import math
import os

import numpy as np
import torch

rng = np.random.default_rng(21)
L = lambda a: [float(v) for v in np.asarray(a).reshape(-1)]


def linear(T):
    return np.linspace(1e-4, 0.02, T, dtype=np.float64)


def cosine(T, s=0.008):
    f = lambda t: math.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return np.array([min(1 - f((i + 1) / T) / f(i / T), 0.999) for i in range(T)])


out = {"generator": "scripts/golden/diffusion.py", "numpy": np.__version__, "torch": torch.__version__}
out["schedules"] = []
for kind, fn in (("linear", linear), ("cosine", cosine)):
    for T in (10, 1000):
        b = fn(T)
        out["schedules"].append({"kind": kind, "T": T, "betas": L(b), "alphaBars": L(np.cumprod(1 - b))})

T = 1000
b = linear(T)
a = 1 - b
ab = np.cumprod(a)
shape = (4, 3)
xt = rng.standard_normal(shape)
eps = rng.standard_normal(shape)
z = rng.standard_normal(shape)
out["inputs"] = {"shape": list(shape), "xt": L(xt), "eps": L(eps), "z": L(z)}

out["ddpm"] = []
for t in (500, 1, 0):
    for var in ("beta", "betaTilde"):
        prev = ab[t - 1] if t > 0 else 1.0
        sigma2 = b[t] if var == "beta" else (1 - prev) / (1 - ab[t]) * b[t]
        mean = (xt - b[t] / np.sqrt(1 - ab[t]) * eps) / np.sqrt(a[t])
        x = mean + (np.sqrt(sigma2) * z if t > 0 else 0)
        out["ddpm"].append({"t": t, "variance": var, "x": L(x)})

out["ddim"] = []
for t, tprev in ((600, 580), (999, 979), (20, -1)):
    for eta in (0.0, 1.0):
        at, ap = ab[t], (ab[tprev] if tprev >= 0 else 1.0)
        sigma = eta * np.sqrt((1 - ap) / (1 - at) * (1 - at / ap))
        x0 = (xt - np.sqrt(1 - at) * eps) / np.sqrt(at)
        x = np.sqrt(ap) * x0 + np.sqrt(1 - ap - sigma ** 2) * eps + sigma * z
        out["ddim"].append({"t": t, "tPrev": tprev, "eta": eta, "x": L(x)})
out["ddimTimesteps"] = [
    {"T": 1000, "steps": 50, "kind": "uniform", "seq": list(range(0, 1000, 1000 // 50))},
    {"T": 1000, "steps": 30, "kind": "uniform", "seq": list(range(0, 1000, 1000 // 30))},
    {"T": 1000, "steps": 20, "kind": "quad", "seq": [int(s) for s in np.linspace(0, np.sqrt(1000 * 0.8), 20) ** 2]},
]

# A whole DDIM run as the DDIM repository's generalized_steps does it (eta 0, "quad" with S = 50, whose
# subsequence repeats its first steps; a step from t to the same t leaves x as it is), from x_T = xt with the
# toy denoiser eps(x, t) = 0.5 tanh(x) + 0.2 t / T.
seq = [int(v) for v in np.linspace(0, np.sqrt(1000 * 0.8), 50) ** 2]
x = xt.copy()
for i, j in zip(reversed(seq), reversed([-1] + seq[:-1])):
    at, an = ab[i], (ab[j] if j >= 0 else 1.0)
    e = 0.5 * np.tanh(x) + 0.2 * i / 1000
    x0 = (x - e * np.sqrt(1 - at)) / np.sqrt(at)
    x = np.sqrt(an) * x0 + np.sqrt(1 - an) * e
out["ddimRun"] = {"T": 1000, "steps": 50, "kind": "quad", "repeats": len(seq) - len(set(seq)), "x0": L(x)}

beta = lambda t: 0.1 + t * 19.9
abar = lambda t: math.exp(-(0.1 * t + 0.5 * 19.9 * t * t))
model = lambda x, t: 0.5 * np.tanh(x) + 0.2 * t
drift = lambda x, t: -0.5 * beta(t) * (x - model(x, t) / math.sqrt(1 - abar(t)))
out["pfode"] = []
for t, tn in ((1.0, 0.95), (0.3, 0.25)):
    h = tn - t
    d1 = drift(xt, t)
    euler = xt + h * d1
    heun = xt + h / 2 * (d1 + drift(euler, tn))
    out["pfode"].append({"t": t, "tNext": tn, "euler": L(euler), "heun": L(heun)})

ts = torch.tensor([0.0, 1.0, 17.5, 999.0], dtype=torch.float64)
half = 4
freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half)
args = ts[:, None] * freqs[None]
emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
out["embedding"] = {"t": L(ts.numpy()), "dim": 8, "emb": L(emb.numpy())}

path = "test/fixtures/generative/diffusion.json"
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path + ".tmp", "w") as f:
    json.dump(out, f)
os.replace(path + ".tmp", path)
