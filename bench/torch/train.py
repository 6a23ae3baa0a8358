# PyTorch peer of bench/train.ts: tokens/s of forward + backward + AdamW for a GPT-2 layout config.
import json, sys, time
import torch
import torch.nn.functional as F
sys.path.insert(0, __import__("os").path.dirname(__file__))
from gpt import GPT

cfg = json.load(sys.stdin)
torch.set_num_threads(cfg.get("threads", 2))
torch.manual_seed(0)
for c in cfg["configs"]:
    m = GPT(c["V"], c["L"], c["H"], c["d"], c["T"])
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.1)
    B, T, V = c["B"], c["T"], c["V"]
    def step():
        x = torch.randint(V, (B, T)); y = torch.randint(V, (B, T))
        loss = F.cross_entropy(m(x).view(-1, V), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    for _ in range(cfg["warmup"]):
        step()
    for _ in range(cfg["reps"]):
        t0 = time.perf_counter()
        for _ in range(cfg["inner"]):
            step()
        dt = (time.perf_counter() - t0) / cfg["inner"]
        print(json.dumps({"config": c["name"], "tokens_per_s": B * T / dt}), flush=True)
