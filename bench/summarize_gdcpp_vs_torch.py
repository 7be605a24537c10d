"""Medians and klc/PyTorch ratios from the JSON lines of bench/gdcpp_vs_torch.sh.

Samples per second of a phase = 64 / (median seconds of that phase over every measured
step). The per-round ratio compares the two sides' medians within one round (measured
back to back), which is robust to load that changes between rounds.

GFLOP/s count the matrix products each phase needs over the 64 x 39 positions that predict
a token, 2 FLOPs per multiply-add: one forward (2 P per position, P = the parameters in
products, 12 L C^2 + V C) for sampling and for scoring, three forwards' worth for the
forward/backward; attention's products (under 1% at 40 tokens) are left out. The
yardstick is klc's timing of the forward/backward's products through cblas_sgemm in the
same process (bench/sgemm_yardstick.h). These are the products of the step as PyTorch
computes it: klc's forward/backward skips the forward through the blocks (its sampler
kept those activations), so its rate there counts work it did not do and can exceed the
sgemm rate."""
import json
import statistics
import sys
from collections import defaultdict

steps = defaultdict(list)  # (impl, threads) -> records
batch, seq_len = 64, 40
P = 4 * 12 * 256 * 256 + 8192 * 256
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        d = json.loads(line)
        steps[(d["impl"], d["threads"])].append(d)
        batch, seq_len = d.get("batch", batch), d.get("seq_len", seq_len)
FORWARDS = {"sample_s": 1, "score_s": 1, "fwdbwd_s": 3, "total_s": 5}


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
    rows = batch * (seq_len - 1)
    sg = [r["sgemm_gflops"] for r in k if "sgemm_gflops" in r]
    ysg = statistics.median(sg) if sg else float("nan")
    for label, key in phases:
        if key not in FORWARDS:
            continue
        fl = FORWARDS[key] * 2 * P * rows
        a, b = rate(k, key) / batch * fl / 1e9, rate(p, key) / batch * fl / 1e9
        print("| %d | %s GFLOP/s (fraction of the same-run sgemm rate) | %.1f (%.2f) | %.1f (%.2f) "
              "| | |" % (t, label.split(" (")[0], a, a / ysg, b, b / ysg))
    need = 2 * rate(p, "total_s") / batch * FORWARDS["total_s"] * 2 * P * rows / 1e9
    print("| %d | end-to-end GFLOP/s klc would need for 2x PyTorch (fraction of sgemm) | %.1f (%.2f) "
          "| | | |" % (t, need, need / ysg))
    print("| %d | same-run sgemm rate on the forward/backward's products, GFLOP/s | %.1f | | | |"
          % (t, ysg))
    a = rate(k, "trainer_s")
    print("| %d | klc_trainer_step end to end | %.1f | | %.2f | |" % (t, a, a / rate(p, "total_s")))
    loads = sorted(r["load"] for r in k + p)
    print("| %d | steps measured; load average (min / median / max) | %d | %d | %.1f / %.1f / %.1f |"
          " |" % (t, len(k), len(p), loads[0], statistics.median(loads), loads[-1]))
    for impl, recs in (("klc", k), ("PyTorch", p)):
        print("| %d | %s: b_mean, log Z (medians) | %.3f, %.3f | | | |"
              % (t, impl, statistics.median(r["b_mean"] for r in recs),
                 statistics.median(r["log_z"] for r in recs)))
