# The stdin protocol of the torch peers that alternate rounds with our bench (common.ts TorchPeer): a
# hello line with torch's version and threads, then one JSON request per stdin line, one JSON reply each.
import json, sys, time

import torch


def hello(threads=2):
    """Sets torch's threads and seed and prints the hello line TorchPeer.start waits for."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)


def requests():
    """Each request on stdin, parsed (blank lines skipped)."""
    for line in sys.stdin:
        if line.strip():
            yield json.loads(line)


def reply(obj):
    print(json.dumps(obj), flush=True)


def rate(fn, work, inner=1):
    """work * inner / seconds of `inner` calls of fn (items per second)."""
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    return work * inner / (time.perf_counter() - t0)


def rates(fn, work, warmup, reps, inner=1):
    """`warmup` untimed calls, then `reps` rates of `inner` calls each."""
    for _ in range(warmup):
        fn()
    return [rate(fn, work, inner) for _ in range(reps)]
