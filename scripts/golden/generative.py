"""Reference values for tsformer's sample-quality metrics (src/generative/metrics.ts), written from the
papers' formulas in numpy, float64. Writes test/fixtures/generative/metrics.json.

- MMD^2, unbiased (Gretton et al. 2012, eq. 3), Gaussian kernel exp(-||x-y||^2 / (2 sigma^2)); sigma fixed or
  the median pairwise distance of the pooled sample.
- Sliced Wasserstein-p over given unit directions: W_p^p of sorted 1D projections, averaged, ^(1/p).
- Frechet distance ||mu1-mu2||^2 + Tr(S1 + S2) - 2 Tr((S1 S2)^(1/2)); the last trace is the sum of square roots
  of the eigenvalues of S1 S2 (numpy.linalg.eigvals of the non-symmetric product, which is similar to the
  PSD S1^(1/2) S2 S1^(1/2)) -- a different route from tsformer's symmetric Jacobi solver.
"""
import json
import os

import numpy as np

rng = np.random.default_rng(20)


def sqdist(a, b):
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def mmd2(x, y, sigma):
    k = lambda a, b: np.exp(-sqdist(a, b) / (2 * sigma * sigma))
    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return ((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
            - 2 * k(x, y).mean())


def median_bw(x, y):
    z = np.concatenate([x, y])
    d = np.sqrt(sqdist(z, z))
    iu = np.triu_indices(len(z), 1)
    return float(np.median(d[iu]))


def sliced(x, y, dirs, p):
    px, py = np.sort(x @ dirs.T, axis=0), np.sort(y @ dirs.T, axis=0)
    return float((np.abs(px - py) ** p).mean(0).mean() ** (1 / p))


def frechet(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ev = np.linalg.eigvals(s1 @ s2)
    tr_sqrt = np.sqrt(np.clip(ev.real, 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


L = lambda a: [float(v) for v in np.asarray(a).reshape(-1)]
cases = {"mmd": [], "sliced": [], "frechet": []}

x = rng.standard_normal((60, 2))
y = rng.standard_normal((50, 2)) * 1.3 + np.array([0.5, -0.2])
bw = median_bw(x, y)
cases["mmd"].append({"x": L(x), "y": L(y), "d": 2, "bandwidth": 1.0, "mmd2": float(mmd2(x, y, 1.0))})
cases["mmd"].append({"x": L(x), "y": L(y), "d": 2, "bandwidth": "median", "median": bw, "mmd2": float(mmd2(x, y, bw))})

x = rng.standard_normal((64, 3))
y = rng.standard_normal((64, 3)) @ np.diag([2.0, 0.5, 1.0]) + 0.3
dirs = rng.standard_normal((16, 3))
dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
for p in (1, 2):
    cases["sliced"].append({"x": L(x), "y": L(y), "d": 3, "dirs": L(dirs), "p": p, "sw": sliced(x, y, dirs, p)})

for n, d in ((40, 8), (120, 32)):
    a = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.5
    b = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.5 + 0.1
    cases["frechet"].append({"a": L(a), "b": L(b), "d": d, "fd": frechet(a, b)})

out = "test/fixtures/generative/metrics.json"
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out + ".tmp", "w") as f:
    json.dump({"generator": "scripts/golden/generative.py", "numpy": np.__version__, **cases}, f)
os.replace(out + ".tmp", out)
