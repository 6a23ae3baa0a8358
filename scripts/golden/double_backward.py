"""Golden fixtures for higher-order gradients (createGraph), from PyTorch's create_graph=True.

Writes test/fixtures/double_backward.safetensors (run from the repo root via scripts/golden/run.sh).

For every case, with f(x, params) = <v, op(x, params)> for a fixed random cotangent v, the gradient
penalty P = ||df/dx||^2 (as in WGAN-GP) and its gradients, all float64:
  <case>.x, <case>.v, <case>.<param>   inputs
  <case>.P                             the penalty
  <case>.dx, <case>.d<param>           dP/dx and dP/d<param> (for the params listed in "graded")
Metadata "cases": JSON list of {"name", "op", "params": [names], "graded": [names], "args"}.
"""

import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_io import save_file  # noqa: E402

OUT_PATH = os.path.join("test", "fixtures", "double_backward.safetensors")

torch.manual_seed(0)
D = torch.float64
CASES = []
TENSORS = {}


def case(name, op, x, params, fn, args=None):
    """fn(x, *params) -> the op's output; params is a list of (name, tensor)."""
    x = x.to(D).requires_grad_(True)
    ps = [p.to(D).requires_grad_(True) for _, p in params]
    y = fn(x, *ps)
    v = torch.randn(y.shape, dtype=D)
    (gx,) = torch.autograd.grad((v * y).sum(), x, create_graph=True)
    pen = (gx * gx).sum()
    grads = torch.autograd.grad(pen, [x] + ps, allow_unused=True)
    TENSORS[name + ".x"] = x.detach().numpy().copy()
    TENSORS[name + ".v"] = v.numpy().copy()
    TENSORS[name + ".P"] = pen.detach().reshape(()).numpy().copy()
    TENSORS[name + ".dx"] = grads[0].numpy().copy()
    for (pname, _), p, g in zip(params, ps, grads[1:]):
        TENSORS["%s.%s" % (name, pname)] = p.detach().numpy().copy()
        if g is not None:  # df/dx may not depend on a parameter at all (a bias)
            TENSORS["%s.d%s" % (name, pname)] = g.numpy().copy()
    graded = [n for (n, _), g in zip(params, grads[1:]) if g is not None]
    CASES.append({"name": name, "op": op, "params": [n for n, _ in params], "graded": graded, "args": args or {}})


# f = <v, (x W)^2>: matmul appears twice in df/dx, so the penalty's gradient goes through its double backward
case("matmul", "matmul", torch.randn(3, 4), [("W", torch.randn(4, 5))], lambda x, W: (x @ W) ** 2)
case("tanh", "tanh", torch.randn(3, 4) * 1.5, [], torch.tanh)
case("softplus", "softplus", torch.randn(3, 4) * 2, [], lambda x: F.softplus(x, beta=1.0, threshold=20.0))
case("layer_norm", "layer_norm", torch.randn(3, 5), [("w", torch.randn(5)), ("b", torch.randn(5))],
     lambda x, w, b: F.layer_norm(x, (5,), w, b, eps=1e-5), {"eps": 1e-5})
case("softmax", "softmax", torch.randn(3, 5), [], lambda x: torch.softmax(x, dim=-1))

save_file(TENSORS, OUT_PATH, {"cases": json.dumps(CASES), "generator": "scripts/golden/double_backward.py", "torch_version": torch.__version__})
print("wrote %s (%d cases, %d tensors)" % (OUT_PATH, len(CASES), len(TENSORS)))
