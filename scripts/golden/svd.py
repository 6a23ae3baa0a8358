"""Singular values of fixed matrices from numpy.linalg.svd (LAPACK gesdd), the reference for
tsformer's truncatedSvd (src/peft/extract.ts, used by extractLora). Writes test/fixtures/svd.json:
{"cases": [{"m", "n", "a": row-major values, "s": singular values descending}]}."""
import json
import os

import numpy as np

rng = np.random.default_rng(7)
cases = []
for m, n, rank in [(12, 7, 7), (9, 20, 9), (16, 16, 3)]:
    a = rng.standard_normal((m, n))
    if rank < min(m, n):  # a low-rank matrix plus small noise: a fast-decaying spectrum, as a fine-tune's delta
        a = rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n)) + 1e-3 * rng.standard_normal((m, n))
    s = np.linalg.svd(a, compute_uv=False)
    cases.append({"m": m, "n": n, "a": [float(x) for x in a.reshape(-1)], "s": [float(x) for x in s]})

out = "test/fixtures/svd.json"
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump({"generator": "scripts/golden/svd.py", "numpy": np.__version__, "cases": cases}, f)
os.replace(tmp, out)
