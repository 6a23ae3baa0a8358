# PyTorch peer of bench/gemm.ts: one case per stdin line (JSON), one JSON reply line with GFLOPS per
# repetition (same warm-up and repetitions as ours). Shapes are m x k x n: C[m,n] = op(A) op(B).
import json, sys, time
import torch

torch.manual_seed(0)
print(json.dumps({"torch": torch.__version__, "threads": 2}), flush=True)
for line in sys.stdin:
    if not line.strip():
        continue
    c = json.loads(line)
    torch.set_num_threads(c["threads"])
    m, k, n = c["m"], c["k"], c["n"]
    dt = torch.bfloat16 if c["dtype"] == "bf16" else torch.float32
    bt = c.get("batch", 1)
    # stored A is k x m when transposed, stored B is n x k: .t() is a view, BLAS reads it in place.
    # batch > 1: torch.bmm on [batch, ...] operands (transposed views of the stored layout)
    if bt > 1:
        a = (torch.randn(bt, k, m).to(dt).transpose(1, 2) if c["tA"] else torch.randn(bt, m, k).to(dt))
        b = (torch.randn(bt, n, k).to(dt).transpose(1, 2) if c["tB"] else torch.randn(bt, k, n).to(dt))
        out = torch.empty(bt, m, n, dtype=dt)
        mm = torch.bmm
    else:
        a = (torch.randn(k, m).to(dt).t() if c["tA"] else torch.randn(m, k).to(dt))
        b = (torch.randn(n, k).to(dt).t() if c["tB"] else torch.randn(k, n).to(dt))
        out = torch.empty(m, n, dtype=dt)
        mm = torch.mm
    flops = 2.0 * bt * m * n * k
    t0 = time.perf_counter(); mm(a, b, out=out); first = time.perf_counter() - t0
    if first > 5.0:  # e.g. bf16 without hardware support: one sample is enough
        print(json.dumps({"name": c["name"], "gflops": [flops / first / 1e9], "note": "1 sample (slow)"}), flush=True)
        continue
    inner = max(1, int(0.02 / max(first, 1e-6)))
    for _ in range(c.get("warmup", 2)):
        mm(a, b, out=out)
    g = []
    for _ in range(c.get("reps", 7)):
        t0 = time.perf_counter()
        for _ in range(inner):
            mm(a, b, out=out)
        g.append(flops * inner / (time.perf_counter() - t0) / 1e9)
    print(json.dumps({"name": c["name"], "gflops": g}), flush=True)
