# PyTorch peer of bench/decode.ts: greedy KV-cache decoding tokens/s at batch 1.
import json, sys, time
import torch
sys.path.insert(0, __import__("os").path.dirname(__file__))
from gpt import GPT

cfg = json.load(sys.stdin)
torch.set_num_threads(cfg.get("threads", 2))
torch.manual_seed(0)
c = cfg["config"]
m = GPT(c["V"], c["L"], c["H"], c["d"], c["T"]).eval()

@torch.no_grad()
def run(n):
    caches = m.new_cache(1)
    ids = torch.zeros(1, 1, dtype=torch.long)
    for pos in range(n):
        logits = m(ids, caches, pos)
        ids = logits[:, -1].argmax(-1, keepdim=True)

run(8)
for _ in range(cfg["reps"]):
    t0 = time.perf_counter()
    run(cfg["newTokens"])
    print(json.dumps({"tokens_per_s": cfg["newTokens"] / (time.perf_counter() - t0)}), flush=True)
