# PyTorch peer of bench/decode.ts: greedy KV-cache decoding tokens/s at batch 1.
# One request per stdin line ({config, newTokens, reps}), one reply line with tokens/s per repetition.
import json, sys, time
import torch
sys.path.insert(0, __import__("os").path.dirname(__file__))
from gpt import GPT

torch.set_num_threads(2)
torch.manual_seed(0)
print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
models = {}

@torch.no_grad()
def run(m, n):
    caches = m.new_cache(1)
    ids = torch.zeros(1, 1, dtype=torch.long)
    for pos in range(n):
        logits = m(ids, caches, pos)
        ids = logits[:, -1].argmax(-1, keepdim=True)

for line in sys.stdin:
    req = json.loads(line)
    c = req["config"]
    key = json.dumps(c, sort_keys=True)
    if key not in models:
        models[key] = GPT(c["V"], c["L"], c["H"], c["d"], c["T"]).eval()
    m = models[key]
    out = []
    for _ in range(req["reps"]):
        t0 = time.perf_counter()
        run(m, req["newTokens"])
        out.append(req["newTokens"] / (time.perf_counter() - t0))
    print(json.dumps({"tokens_per_s": out}), flush=True)
