"""Medians and klc/PyTorch ratios from the JSON lines of bench/gdcpp_vs_torch.sh.

Samples per second of a phase = 64 / (median seconds of that phase over every measured
step). The per-round ratio compares the two sides' medians within one round (measured
back to back), which is robust to load that changes between rounds."""
import json
import statistics
import sys
from collections import defaultdict

steps = defaultdict(list)  # (impl, threads) -> records
batch = 64
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        d = json.loads(line)
        steps[(d["impl"], d["threads"])].append(d)
        batch = d.get("batch", batch)


def rate(recs, key):
    v = [r[key] for r in recs if key in r]
    return batch / statistics.median(v) if v else float("nan")


def per_round(impl, t, key):
    rounds = defaultdict(list)
    for r in steps.get((impl, t), []):
        rounds[r["round"]].append(r)
    return {k: rate(v, key) for k, v in rounds.items()}


phases = [("sample", "sample_s"), ("score (log a, log P, Z)", "score_s"),
          ("forward/backward", "fwdbwd_s"), ("optimizer update", "update_s"),
          ("end to end (sum of phases)", "total_s")]
print("| threads | samples/s | klc | PyTorch | ratio of medians | median of per-round ratios "
      "(min-max) |")
print("|---|---|---:|---:|---:|---:|")
for t in sorted({t for (_, t) in steps}):
    k, p = steps.get(("klc", t), []), steps.get(("torch", t), [])
    if not k or not p:
        continue
    for label, key in phases:
        a, b = rate(k, key), rate(p, key)
        ka, pa = per_round("klc", t, key), per_round("torch", t, key)
        rr = sorted(ka[r] / pa[r] for r in ka if r in pa)
        print("| %d | %s | %.1f | %.1f | %.2f | %.2f (%.2f-%.2f) |"
              % (t, label, a, b, a / b, statistics.median(rr), rr[0], rr[-1]))
    a = rate(k, "trainer_s")
    print("| %d | klc_trainer_step end to end | %.1f | | %.2f | |" % (t, a, a / rate(p, "total_s")))
    loads = sorted(r["load"] for r in k + p)
    print("| %d | steps measured; load average (min / median / max) | %d | %d | %.1f / %.1f / %.1f |"
          " |" % (t, len(k), len(p), loads[0], statistics.median(loads), loads[-1]))
    for impl, recs in (("klc", k), ("PyTorch", p)):
        print("| %d | %s: b_mean, log Z (medians) | %.3f, %.3f | | | |"
              % (t, impl, statistics.median(r["b_mean"] for r in recs),
                 statistics.median(r["log_z"] for r in recs)))
