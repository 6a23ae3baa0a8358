"""Reference values for tsformer's PFGM (src/generative/pfgm.ts), written from the equations of Xu et al. 2022,
"Poisson Flow Generative Models" (arXiv 2209.11178) in numpy, float64. Writes test/fixtures/pfgm.json.

- the empirical Poisson field of charges x_i on z = 0: E(xt) = 1/n sum_i (xt - (x_i, 0)) / ||xt - (x_i, 0)||^(N+1);
- Algorithm 1's target -sqrt(N) E_hat / (||E_hat|| + gamma), E_hat = c(xt) sum_i (...) with
  c(xt) = 1 / sum_i ||xt - (x_i, 0)||^-(N+1), here computed directly (no rescaling by the nearest distance);
- one step of the backward ODE (eq. 5) in t = ln z, dx/dt = z f_x / f_z, from z_max to z_min with f the target
  field of the same charges: an Euler step and a Heun step (the trapezoid of the drifts at both ends).
"""
import json
import os

import numpy as np

rng = np.random.default_rng(9305)


def augment(x):
    return np.concatenate([x, np.zeros((len(x), 1))], 1)


def field(xt, data):
    diff = xt[:, None, :] - augment(data)[None, :, :]
    r = np.linalg.norm(diff, axis=-1)
    n_dim = data.shape[1]
    return (diff / r[..., None] ** (n_dim + 1)).mean(1)


def target(xt, data, gamma):
    diff = xt[:, None, :] - augment(data)[None, :, :]
    w = np.linalg.norm(diff, axis=-1) ** -(data.shape[1] + 1)
    e_hat = (w[..., None] * diff).sum(1) / w.sum(1, keepdims=True)
    return -np.sqrt(data.shape[1]) * e_hat / (np.linalg.norm(e_hat, axis=1, keepdims=True) + gamma)


def drift(x, z, data, gamma):
    f = target(np.concatenate([x, np.full((len(x), 1), z)], 1), data, gamma)
    return z * f[:, :-1] / f[:, -1:]


def ode_step(x, data, gamma, z_max, z_min, heun):
    t0, t1 = np.log(z_max), np.log(z_min)
    d1 = drift(x, z_max, data, gamma)
    if not heun:
        return x + (t1 - t0) * d1
    d2 = drift(x + (t1 - t0) * d1, z_min, data, gamma)
    return x + (t1 - t0) * (d1 + d2) / 2


L = lambda a: [float(v) for v in np.asarray(a).reshape(-1)]
cases = []
for n_dim, n, b, gamma in [(2, 7, 5, 0.5), (3, 6, 4, 0.0)]:
    data = rng.standard_normal((n, n_dim))
    xt = np.concatenate([rng.standard_normal((b, n_dim)) * 2, rng.uniform(0.2, 3.0, (b, 1))], 1)
    x0 = rng.standard_normal((b, n_dim)) * 3
    z_max, z_min = 4.0, 1.5
    cases.append({"N": n_dim, "n": n, "B": b, "gamma": gamma, "data": L(data), "xt": L(xt),
                  "field": L(field(xt, data)), "target": L(target(xt, data, gamma)),
                  "zMax": z_max, "zMin": z_min, "x0": L(x0),
                  "euler": L(ode_step(x0, data, gamma, z_max, z_min, False)),
                  "heun": L(ode_step(x0, data, gamma, z_max, z_min, True))})

out = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "pfgm.json")
with open(out, "w") as fh:
    json.dump({"cases": cases}, fh, indent=1)
print("wrote", os.path.relpath(out))
