#!/usr/bin/python3
"""Writes tests/data/optim/reference.json: parameters after each of several updates of
torch.optim.Adam, AdamW and SGD (momentum, dampening, Nesterov, weight decay), with
torch.nn.utils.clip_grad_norm_ / clip_grad_value_ and torch.optim.lr_scheduler schedules,
for tests/test_optim.c to compare klc_optimizer against.

Run with Debian's /usr/bin/python3 (python3-torch 1.13):

    /usr/bin/python3 tools/make_optim_reference.py [output-file]

Each case holds klc's option values, the initial parameters, the gradient given at each
update, and what torch produced: the parameters after each update, the learning rate it
used and the gradient norm before clipping (in float64). Every number is a float32 value
written as the shortest decimal that reads back to it, so the C side gets the same bits.
The parameters are split into two tensors so that clipping by norm is over both at once,
as klc's single block is.
"""
import json
import math
import os
import re
import sys
import warnings

import torch

N = 19  # not a multiple of any vector width: the loops' tails are exercised
STEPS = 7
SPLIT = 7
SEED = 20240611
# Gradient scale per update: clipping by norm is active on some updates and not others.
GRAD_SCALE = [3.0, 0.2, 1.0, 5.0, 0.05, 2.0, 0.7]

DEFAULTS = dict(kind="adamw", lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                momentum=0.0, dampening=0.0, nesterov=0, clip_norm=0.0, clip_value=0.0,
                schedule="constant", warmup_steps=0, total_steps=0, min_lr=0.0)

CASES = [
    ("adam", dict(kind="adam", lr=1e-2)),
    ("adam_l2", dict(kind="adam", lr=3e-2, beta1=0.8, beta2=0.95, eps=1e-6, weight_decay=0.1)),
    ("adamw", dict(kind="adamw", lr=1e-2, weight_decay=0.1)),
    ("adamw_beta1_zero", dict(kind="adamw", lr=5e-3, beta1=0.0, beta2=0.99, weight_decay=0.3)),
    ("sgd", dict(kind="sgd", lr=0.1)),
    ("sgd_l2", dict(kind="sgd", lr=0.05, weight_decay=0.2)),
    ("sgd_momentum", dict(kind="sgd", lr=0.1, momentum=0.9, weight_decay=0.01)),
    ("sgd_dampening", dict(kind="sgd", lr=0.1, momentum=0.8, dampening=0.3)),
    ("sgd_nesterov", dict(kind="sgd", lr=0.05, momentum=0.9, nesterov=1, weight_decay=0.05)),
    ("adamw_clip_norm", dict(kind="adamw", lr=1e-2, weight_decay=0.1, clip_norm=1.0)),
    ("sgd_clip_norm", dict(kind="sgd", lr=0.1, momentum=0.9, clip_norm=0.5)),
    ("sgd_clip_value", dict(kind="sgd", lr=0.1, momentum=0.5, clip_value=0.4)),
    ("adam_clip_value", dict(kind="adam", lr=1e-2, clip_value=0.3)),
    ("adamw_clip_value_norm", dict(kind="adamw", lr=1e-2, clip_value=0.5, clip_norm=0.8)),
    ("adamw_warmup", dict(kind="adamw", lr=2e-2, weight_decay=0.1, warmup_steps=3)),
    ("adamw_cosine", dict(kind="adamw", lr=2e-2, weight_decay=0.1, schedule="cosine",
                          warmup_steps=2, total_steps=6, min_lr=1e-3)),
    ("adam_cosine_no_warmup", dict(kind="adam", lr=1e-2, schedule="cosine", total_steps=6)),
    ("sgd_linear", dict(kind="sgd", lr=0.2, momentum=0.9, schedule="linear", warmup_steps=2,
                        total_steps=6, min_lr=0.02)),
    ("adam_linear_no_warmup", dict(kind="adam", lr=1e-2, schedule="linear", total_steps=6)),
]


def make_optimizer(o, params):
    if o["kind"] == "adam":
        return torch.optim.Adam(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                weight_decay=o["weight_decay"])
    if o["kind"] == "adamw":
        return torch.optim.AdamW(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                 weight_decay=o["weight_decay"])
    return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], dampening=o["dampening"],
                           nesterov=bool(o["nesterov"]), weight_decay=o["weight_decay"])


def make_scheduler(o, opt):
    """torch's own schedulers: LinearLR for the warm-up (factor (e + 1) / W), then
    CosineAnnealingLR or LinearLR for the decay, chained by SequentialLR."""
    sched = torch.optim.lr_scheduler
    W, T = o["warmup_steps"], o["total_steps"]
    parts = []
    if W > 0:
        parts.append(sched.LinearLR(opt, start_factor=1.0 / W, end_factor=1.0,
                                    total_iters=W - 1))
    if o["schedule"] == "cosine":
        parts.append(sched.CosineAnnealingLR(opt, T_max=T - W, eta_min=o["min_lr"]))
    elif o["schedule"] == "linear":
        parts.append(sched.LinearLR(opt, start_factor=1.0, end_factor=o["min_lr"] / o["lr"],
                                    total_iters=T - W))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return sched.SequentialLR(opt, parts, milestones=[W])


def closed_form_lr(o, t):
    """klc.h's definition, to check that the torch schedulers above compute it."""
    W, T, peak = o["warmup_steps"], o["total_steps"], o["lr"]
    if t < W:
        return peak * (t + 1) / W
    if o["schedule"] == "constant":
        return peak
    if t >= T:
        return o["min_lr"]
    p = (t - W) / (T - W)
    if o["schedule"] == "cosine":
        return o["min_lr"] + (peak - o["min_lr"]) * 0.5 * (1 + math.cos(math.pi * p))
    return peak + (o["min_lr"] - peak) * p


def floats(t):
    return [float(x) for x in t.detach().to(torch.float32).reshape(-1).tolist()]


def run_case(name, overrides, gen):
    o = dict(DEFAULTS)
    o.update(overrides)
    assert STEPS <= o["total_steps"] + 1 or o["schedule"] == "constant"
    p0 = torch.randn(N, generator=gen, dtype=torch.float32)
    grads = [torch.randn(N, generator=gen, dtype=torch.float32) * GRAD_SCALE[k]
             for k in range(STEPS)]
    params = [p0[:SPLIT].clone().requires_grad_(True), p0[SPLIT:].clone().requires_grad_(True)]
    opt = make_optimizer(o, params)
    sched = make_scheduler(o, opt)
    out = dict(name=name, options=o, params0=floats(p0), grads=[], params=[], lr=[],
               grad_norm=[])
    for k in range(STEPS):
        g = grads[k]
        params[0].grad = g[:SPLIT].clone()
        params[1].grad = g[SPLIT:].clone()
        norm = float(torch.linalg.vector_norm(g.to(torch.float64)))
        if o["clip_value"] > 0:
            torch.nn.utils.clip_grad_value_(params, o["clip_value"])
        if o["clip_norm"] > 0:
            torch.nn.utils.clip_grad_norm_(params, o["clip_norm"])
        lr = opt.param_groups[0]["lr"]
        want = closed_form_lr(o, k)
        assert abs(lr - want) <= 1e-12 * max(1.0, abs(want)), (name, k, lr, want)
        opt.step()
        if sched is not None:
            sched.step()
        out["grads"].append(floats(g))
        out["params"].append(floats(torch.cat([params[0], params[1]])))
        out["lr"].append(lr)
        out["grad_norm"].append(norm)
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "optim",
        "reference.json")
    torch.set_num_threads(1)
    # SequentialLR steps its parts with an explicit epoch at the milestone, which torch
    # warns about; the closed-form check in run_case covers what that does.
    warnings.filterwarnings("ignore", message="The epoch parameter")
    gen = torch.Generator().manual_seed(SEED)
    cases = [run_case(name, o, gen) for name, o in CASES]
    doc = dict(generator="tools/make_optim_reference.py", torch=torch.__version__, n=N,
               steps=STEPS, cases=cases)
    text = json.dumps(doc, indent=1)
    # One line per array of numbers keeps the file small and its diffs readable.
    text = re.sub(r"\[\s*([-0-9.e, \n]+?)\s*\]",
                  lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text)
    with open(path, "w") as f:
        f.write(text + "\n")
    print(f"wrote {path}: {len(cases)} cases of {STEPS} updates on {N} parameters")


if __name__ == "__main__":
    main()
