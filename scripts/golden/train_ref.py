"""Reference PyTorch trainer for tsformer's GPT-2-layout TransformerLM on tinyshakespeare (char level).

Purpose: find (and later cross-check) the smallest-FLOPs config that `npm start` can train to a
validation loss <= 1.75 nats. Results of the config search are in scripts/golden/train_ref.md.

Architecture (identical to scripts/golden/models.py with config
  position="learned", norm="layernorm", normEps=1e-5, ffn="gelu_tanh", bias=True,
  normPlacement="pre", tieEmbeddings=True, dropout=0, init="nanogpt", attention="softmax", dFF=4*D):
  x = tok_emb[ids] + pos_emb[:T]
  per block: x = x + wo(attn(norm1(x)));  x = x + fc2(gelu_tanh(fc1(norm2(x))))
  attention: separate wq/wk/wv/wo Linear with bias, causal softmax, scale 1/sqrt(head_dim)
  logits = norm_f(x) @ tok_emb.weight^T                               (tied head, no lm_head)
models.py is not imported because importing it runs its fixture cases and writes a file; the
forward here is the same math in float32 with torch modules (parameter names match TransformerLM).

Init (src/nn/init.ts, "nanogpt"): every Linear weight and both embeddings ~ N(0, 0.02), except
attn.wo and mlp.fc2 weights ~ N(0, 0.02 / sqrt(2 L)); biases 0, LayerNorm gains 1 and biases 0.

Training: AdamW (betas 0.9/0.99, eps 1e-8), weight decay 0.1 on 2-D Linear weights only (not on
embeddings, norms or biases); lr schedule = src/train/schedule.ts "cosine" with decaySteps = --steps:
  step < warmup: lr (step+1)/(warmup+1); else minLr + 0.5 (1 + cos(pi (step-warmup)/(steps-warmup))) (lr-minLr)
global grad-norm clip 1.0; one optimizer step per batch (no accumulation).

Data: data/tinyshakespeare.txt, char vocab = sorted unique chars (65), first 90% train, last 10% val
(as nanoGPT's shakespeare_char/prepare.py). Training batches are random windows: B start offsets
drawn uniformly from [0, len(train) - T - 1] with a torch.Generator seeded by --seed; x = data[i:i+T],
y = data[i+1:i+T+1]. The TypeScript trainer uses its own RNG, so "same data order" means the same
sampling distribution, not the same windows. Validation: a FIXED set of --eval-iters batches of
--eval-batch windows of length --seq (offsets from a generator seeded with 1337, drawn once), used
at every evaluation, so all points of one run and all runs with the same --seq are comparable.

Usage (repo root):
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp /usr/bin/python3 scripts/golden/train_ref.py \
      --d-model 96 --n-layers 3 --n-heads 4 --seq 64 --batch 32 --steps 2000 --lr 3e-3 --out /tmp/run.json
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- data


def load_data(path):
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([stoi[c] for c in text], dtype=torch.int64)
    n = int(0.9 * len(ids))
    return chars, ids[:n], ids[n:]


def sample_batch(data, B, T, gen):
    ix = torch.randint(0, len(data) - T - 1 + 1, (B,), generator=gen)  # starts in [0, len - T - 1]
    x = torch.stack([data[i:i + T] for i in ix.tolist()])
    y = torch.stack([data[i + 1:i + T + 1] for i in ix.tolist()])
    return x, y


# ---------------------------------------------------------------- model


class Attention(nn.Module):
    def __init__(self, D, H):
        super().__init__()
        self.H, self.Dh = H, D // H
        self.wq = nn.Linear(D, D)
        self.wk = nn.Linear(D, D)
        self.wv = nn.Linear(D, D)
        self.wo = nn.Linear(D, D)

    def forward(self, x):
        B, T, D = x.shape
        q = self.wq(x).view(B, T, self.H, self.Dh).transpose(1, 2)
        k = self.wk(x).view(B, T, self.H, self.Dh).transpose(1, 2)
        v = self.wv(x).view(B, T, self.H, self.Dh).transpose(1, 2)
        s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.Dh))
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        s = s.masked_fill(mask, float("-inf"))
        o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, D)
        return self.wo(o)


class MLP(nn.Module):
    def __init__(self, D, FF):
        super().__init__()
        self.fc1 = nn.Linear(D, FF)
        self.fc2 = nn.Linear(FF, D)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, D, H, FF, eps):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, eps=eps)
        self.attn = Attention(D, H)
        self.norm2 = nn.LayerNorm(D, eps=eps)
        self.mlp = MLP(D, FF)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TransformerLM(nn.Module):
    def __init__(self, V, D, L, H, FF, max_seq, eps=1e-5):
        super().__init__()
        assert D % H == 0, "d_model must be divisible by n_heads"
        self.tok_emb = nn.Embedding(V, D)
        self.pos_emb = nn.Embedding(max_seq, D)
        self.blocks = nn.ModuleList([Block(D, H, FF, eps) for _ in range(L)])
        self.norm_f = nn.LayerNorm(D, eps=eps)
        # nanoGPT init (src/nn/init.ts)
        for name, p in self.named_parameters():
            if name.endswith(".bias"):
                nn.init.zeros_(p)
            elif "norm" in name:
                nn.init.ones_(p)
            elif name.endswith("attn.wo.weight") or name.endswith("mlp.fc2.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L))
            else:
                nn.init.normal_(p, 0.0, 0.02)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.tok_emb(ids) + self.pos_emb.weight[:T]
        for b in self.blocks:
            x = b(x)
        return self.norm_f(x) @ self.tok_emb.weight.t()


def param_groups(model, wd):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() == 2 and "emb" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step, lr, min_lr, warmup, decay_steps):
    """src/train/schedule.ts "cosine" (nanoGPT get_lr)."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if step > decay_steps:
        return min_lr
    r = (step - warmup) / (decay_steps - warmup)
    return min_lr + 0.5 * (1 + math.cos(math.pi * r)) * (lr - min_lr)


def count_flops(n_params_matmul, L, D, T, tokens):
    """Training FLOPs: 6 N per token (N = params in matmuls incl. the tied head, excl. pos_emb)
    plus attention scores and weighted sum, 12 L D T per token (PaLM / nanoGPT estimate, full T x T)."""
    return (6 * n_params_matmul + 12 * L * D * T) * tokens


# ---------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/tinyshakespeare.txt")
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--n-layers", type=int, default=3)
    ap.add_argument("--n-heads", type=int, default=4)
    ap.add_argument("--d-ff", type=int, default=0, help="0 = 4 * d_model")
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--min-lr", type=float, default=-1.0, help="default lr / 10")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--beta2", type=float, default=0.99)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--eval-interval", type=int, default=100)
    ap.add_argument("--eval-iters", type=int, default=50)
    ap.add_argument("--eval-batch", type=int, default=32)
    ap.add_argument("--train-eval", action="store_true",
                    help="also evaluate on a fixed set of train batches (costs time)")
    ap.add_argument("--stop-at", type=float, default=0.0,
                    help="stop after the first evaluation with val <= this (0 = never)")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    min_lr = a.lr / 10 if a.min_lr < 0 else a.min_lr
    FF = a.d_ff or 4 * a.d_model

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    chars, train, val = load_data(a.data)
    V = len(chars)
    model = TransformerLM(V, a.d_model, a.n_layers, a.n_heads, FF, a.seq)
    n_params = sum(p.numel() for p in model.parameters())
    n_matmul = n_params - model.pos_emb.weight.numel()
    opt = torch.optim.AdamW(param_groups(model, a.weight_decay), lr=a.lr, betas=(0.9, a.beta2), eps=1e-8)

    gen = torch.Generator().manual_seed(a.seed)
    egen = torch.Generator().manual_seed(1337)
    val_batches = [sample_batch(val, a.eval_batch, a.seq, egen) for _ in range(a.eval_iters)]
    tgen = torch.Generator().manual_seed(7331)
    train_batches = [sample_batch(train, a.eval_batch, a.seq, tgen) for _ in range(a.eval_iters)] if a.train_eval else []

    @torch.no_grad()
    def evaluate(batches):
        model.eval()
        s = 0.0
        for x, y in batches:
            s += F.cross_entropy(model(x).view(-1, V), y.view(-1)).item()
        model.train()
        return s / len(batches)

    tok_per_step = a.batch * a.seq
    curve = []
    first = {}
    t0 = time.time()
    train_time = 0.0
    ema = None
    step = 0

    def record(step):
        v = evaluate(val_batches)
        tr = evaluate(train_batches) if a.train_eval else None
        curve.append({"step": step, "tokens": step * tok_per_step, "train": tr, "train_ema": ema, "val": v})
        for thr in (1.80, 1.75, 1.70, 1.65, 1.60):
            if v <= thr and "%.2f" % thr not in first:
                first["%.2f" % thr] = {"step": step, "tokens": step * tok_per_step,
                                   "flops": count_flops(n_matmul, a.n_layers, a.d_model, a.seq, step * tok_per_step)}
        print("step %5d  tokens %8d  train_ema %s  val %.4f  (%.0fs, train %.0f tok/s)"
              % (step, step * tok_per_step, "%.4f" % ema if ema is not None else "-", v,
                 time.time() - t0, step * tok_per_step / max(train_time, 1e-9)), flush=True)
        return v

    print("params %d (matmul %d), V %d, FF %d, tokens/step %d" % (n_params, n_matmul, V, FF, tok_per_step), flush=True)
    for step in range(a.steps):
        ts = time.time()
        lr = lr_at(step, a.lr, min_lr, a.warmup, a.steps)
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = sample_batch(train, a.batch, a.seq, gen)
        loss = F.cross_entropy(model(x).view(-1, V), y.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if a.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        train_time += time.time() - ts
        li = loss.item()
        ema = li if ema is None else 0.95 * ema + 0.05 * li
        done = step + 1
        if a.eval_interval > 0 and done % a.eval_interval == 0 and done != a.steps:
            v = record(done)
            if a.stop_at > 0 and v <= a.stop_at:
                break
    else:
        done = a.steps
    final_val = record(done) if not curve or curve[-1]["step"] != done else curve[-1]["val"]

    result = {
        "config": {"vocabSize": V, "dModel": a.d_model, "nLayers": a.n_layers, "nHeads": a.n_heads, "dFF": FF,
                   "maxSeqLen": a.seq, "position": "learned", "norm": "layernorm", "normEps": 1e-5,
                   "ffn": "gelu_tanh", "bias": True, "normPlacement": "pre", "tieEmbeddings": True,
                   "dropout": 0, "init": "nanogpt", "attention": "softmax"},
        "train": {"batch": a.batch, "seq": a.seq, "steps": a.steps, "stepsRun": done, "lr": a.lr,
                  "warmup": a.warmup, "minLr": min_lr, "decaySteps": a.steps, "weightDecay": a.weight_decay,
                  "betas": [0.9, a.beta2], "gradClip": a.grad_clip, "seed": a.seed,
                  "evalIters": a.eval_iters, "evalBatch": a.eval_batch, "evalSeed": 1337},
        "params": n_params, "paramsMatmul": n_matmul,
        "flopsPerToken": count_flops(n_matmul, a.n_layers, a.d_model, a.seq, 1),
        "curve": curve, "first": first, "finalVal": final_val,
        "tokens": done * tok_per_step,
        "flops": count_flops(n_matmul, a.n_layers, a.d_model, a.seq, done * tok_per_step),
        "trainSeconds": train_time, "threads": a.threads, "torch": torch.__version__,
    }
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            json.dump(result, f, indent=1)
    print("final val %.4f; first <=1.75: %s; first <=1.70: %s"
          % (final_val, first.get("1.75", {}).get("step"), first.get("1.70", {}).get("step")), flush=True)


if __name__ == "__main__":
    sys.exit(main())
