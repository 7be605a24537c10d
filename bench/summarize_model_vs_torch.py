"""Medians and klc/PyTorch ratios from the JSON lines of bench/model_vs_torch.sh."""
import json
import statistics
import sys
from collections import defaultdict

TORCH_SHAPE = {"klc-small": "small", "gpt2-small": "gpt2"}
klc = defaultdict(list)
torch = defaultdict(list)
for line in open(sys.argv[1]):
    line = line.strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    if d.get("impl") == "klc":
        for k, v in d.items():
            if isinstance(v, (int, float)) and k != "threads":
                klc[(d["shape"], d["threads"], k)].append(v)
    elif d.get("bench") == "torch_reference" and "shape" in d and "threads" in d:
        shape = TORCH_SHAPE.get(d["shape"], d["shape"])
        metric = d["metric"]
        if metric == "decode_tokens_per_s":
            metric = "decode_b%d_tokens_per_s" % d.get("batch", 0)
        if isinstance(d.get("value"), (int, float)):
            torch[(shape, d["threads"], metric)].append(d["value"])


def med(table, key):
    v = table.get(key)
    return statistics.median(v) if v else float("nan")


rows = [
    ("train tokens/s", "train_tokens_per_s", "train_tokens_per_s"),
    ("train GFLOP/s", "train_gflops", "train_gflops"),
    ("decode b1 tokens/s", "decode_b1_tokens_per_s", "decode_b1_tokens_per_s"),
    ("decode b32 tokens/s", "decode_b32_tokens_per_s", "decode_b32_tokens_per_s"),
]
def paired_ratio(kk, tk, shape, t):
    """Median over rounds of klc / PyTorch measured back to back in the same round: robust to
    load that changes between rounds (the lists are in round order)."""
    a, b = klc.get((shape, t, kk), []), torch.get((shape, t, tk), [])
    r = [x / y for x, y in zip(a, b) if y]
    return statistics.median(r) if r else float("nan")


print("| shape | threads | measure | klc | PyTorch | ratio of medians | median of per-round ratios |")
print("|---|---|---|---:|---:|---:|---:|")
for shape in ("small", "gpt2"):
    for t in (1, 2):
        n = len(klc.get((shape, t, "train_tokens_per_s"), []))
        if not n:
            continue
        for label, kk, tk in rows:
            a, b = med(klc, (shape, t, kk)), med(torch, (shape, t, tk))
            print("| %s | %d | %s | %.1f | %.1f | %.2f | %.2f |"
                  % (shape, t, label, a, b, a / b, paired_ratio(kk, tk, shape, t)))
        print("| %s | %d | train / same-run sgemm rate | %.2f | | | |"
              % (shape, t, med(klc, (shape, t, "train_vs_sgemm"))))
        print("| %s | %d | decode b1 / weight-streaming bound (%.1f tok/s at %.1f GB/s) | %.2f | | | |"
              % (shape, t, med(klc, (shape, t, "decode_b1_bound_tokens_per_s")),
                 med(klc, (shape, t, "bandwidth_gbs")), med(klc, (shape, t, "decode_b1_vs_bound"))))
        print("| %s | %d | rounds | %d | | | |" % (shape, t, n))
