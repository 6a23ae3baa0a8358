# PyTorch peer of bench/ops.ts: one case per stdin line (JSON), one JSON reply line with seconds per
# call for each repetition (same warm-up and repetitions as ours). The ops are torch's own kernels for
# the same computation (aten entry points where they exist, so that no autograd bookkeeping is timed).
import json, sys, time
import torch
import torch.nn.functional as F

torch.manual_seed(0)
print(json.dumps({"torch": torch.__version__, "threads": 2}), flush=True)


def make(c):
    k, rows, cols, n = c["kind"], c["rows"], c["cols"], c["n"]
    if k in ("gelu_fwd", "gelu_bwd"):
        x = torch.randn(n) * 2
        gy = torch.randn(n)
        out = torch.empty(n)
        if k == "gelu_fwd":
            return lambda: torch.ops.aten.gelu.out(x, approximate="tanh", out=out)
        return lambda: torch.ops.aten.gelu_backward(gy, x, approximate="tanh")
    if k == "add_bcast":
        a, b, out = torch.randn(rows, cols), torch.randn(cols), torch.empty(rows, cols)
        return lambda: torch.add(a, b, out=out)
    if k in ("ln_fwd", "ln_bwd"):
        x, w, b, gy = torch.randn(rows, cols), torch.rand(cols) + 0.5, torch.randn(cols), torch.randn(rows, cols)
        y, mean, rstd = torch.native_layer_norm(x, [cols], w, b, 1e-5)
        if k == "ln_fwd":
            return lambda: torch.native_layer_norm(x, [cols], w, b, 1e-5)
        return lambda: torch.ops.aten.native_layer_norm_backward(gy, x, [cols], mean, rstd, w, b, [True, True, True])
    if k in ("softmax_fwd", "softmax_bwd"):
        x, gy = torch.randn(rows, cols) * 3, torch.randn(rows, cols)
        y = torch._softmax(x, -1, False)
        if k == "softmax_fwd":
            return lambda: torch._softmax(x, -1, False)
        return lambda: torch._softmax_backward_data(gy, y, -1, x.dtype)
    if k == "ce_fwd_bwd":
        x = (torch.randn(rows, cols) * 3).requires_grad_()
        t = torch.randint(cols, (rows,))
        return lambda: torch.autograd.grad(F.cross_entropy(x, t), x)
    if k == "adamw":
        p = torch.nn.Parameter(torch.randn(n))
        p.grad = torch.randn(n)
        opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=0.1, foreach=False)
        return lambda: opt.step()
    raise ValueError(k)


for line in sys.stdin:
    if not line.strip():
        continue
    c = json.loads(line)
    torch.set_num_threads(c.get("threads", 2))
    fn = make(c)
    with torch.no_grad() if c["kind"] != "ce_fwd_bwd" else torch.enable_grad():
        t0 = time.perf_counter(); fn(); first = time.perf_counter() - t0
        inner = max(1, int(0.02 / max(first, 1e-6)))
        for _ in range(c.get("warmup", 2)):
            fn()
        s = []
        for _ in range(c.get("reps", 7)):
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            s.append((time.perf_counter() - t0) / inner)
    print(json.dumps({"name": c["name"], "seconds": s}), flush=True)
