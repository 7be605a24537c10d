#!/usr/bin/python3
"""One on-policy GDC++ step in PyTorch, timed phase by phase: the reference for
bench/bench_gdcpp.c (bench/gdcpp_vs_torch.sh runs both).

The same step as the C program, written the way a PyTorch user would write it with the
GPT-2 of bench/torch_reference.py (Hugging Face's architecture, plain torch modules):

  sample   64 sequences of 40 tokens (a start token, then 39 tokens) by pure ancestral
           sampling under no_grad, batched, with a past_key_values-style KV cache (keys and
           values concatenated per layer at every step), each token drawn by inverting the
           cumulative distribution at a uniform as klc does (--multinomial:
           torch.multinomial, as Hugging Face's generate does, which costs far more on
           CPU); log q(x) = sum of the sampled tokens' log-probabilities
  score    log a(x) of the frozen base model under no_grad (one forward over the batch),
           log P = log a + log b with b(x) = 1 when a generated token has an id below 128,
           log Z = logsumexp(log P - log q) - log N on the batch
  fwdbwd   the policy's forward with autograd, log pi(x), the weights
           w = (P/q - Z pi/q) / Z computed in log space and held constant, the loss
           -(1/N) sum w log pi, backward
  update   torch.optim.Adam (foreach, PyTorch 1.13's faster multi-tensor path)

Run it with Debian's interpreter (/usr/bin/python3, which has python3-torch 1.13). Output:
one line per measured step (JSON with --json), after one warm-up step per thread count;
steps interleave the thread counts.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import GPT2  # noqa: E402

N_LAYER, N_EMBD, VOCAB, N_HEAD, N_CTX = 4, 256, 8192, 4, 64
BATCH, SEQ_LEN, BOS, LOW_IDS = 64, 40, 0, 128
LR = 1e-4


def load_average():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def draw_inverse_cdf(probs):
    """One token per row by inverting the cumulative distribution at a uniform: klc's
    method, and much cheaper than torch.multinomial on CPU (see --multinomial)."""
    cdf = probs.cumsum(dim=-1)
    u = torch.rand(probs.shape[0], 1) * cdf[:, -1:]
    return torch.searchsorted(cdf, u).clamp_(max=probs.shape[1] - 1)


def draw_multinomial(probs):
    return torch.multinomial(probs, 1)


@torch.no_grad()
def sample(model, B, L, draw=draw_inverse_cdf):
    """Ancestral sampling with the cache; returns tokens [B, L] and log q [B] (float64)."""
    idx = torch.full((B, 1), BOS, dtype=torch.long)
    logits, past = model(idx)
    out = [idx]
    logq = torch.zeros(B, dtype=torch.float64)
    for t in range(L - 1):
        logp = F.log_softmax(logits[:, -1, :], dim=-1)
        nxt = draw(logp.exp())
        logq += logp.gather(1, nxt).squeeze(1).double()
        out.append(nxt)
        if t < L - 2:  # the last token needs no forward
            logits, past = model(nxt, past)
    return torch.cat(out, dim=1), logq


def seq_logprob(model, tokens):
    """sum_t log p(x[t+1] | x[..t]) over the generated tokens, per sequence."""
    logits, _ = model(tokens[:, :-1])
    logp = F.log_softmax(logits, dim=-1)
    return logp.gather(2, tokens[:, 1:].unsqueeze(2)).squeeze(2).sum(dim=1)


def log_b(tokens):
    """log of the pointwise constraint: 0 where a generated id is below LOW_IDS, else -inf."""
    hit = (tokens[:, 1:] < LOW_IDS).any(dim=1)
    return torch.where(hit, 0.0, -math.inf).double()


class Step:
    def __init__(self, foreach, multinomial):
        self.draw = draw_multinomial if multinomial else draw_inverse_cdf
        torch.manual_seed(1)
        self.base = GPT2(N_LAYER, N_EMBD, VOCAB, N_HEAD, N_CTX)
        self.policy = GPT2(N_LAYER, N_EMBD, VOCAB, N_HEAD, N_CTX)
        self.policy.load_state_dict(self.base.state_dict())
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=LR, foreach=foreach)

    def run(self):
        t0 = time.perf_counter()
        tokens, logq = sample(self.policy, BATCH, SEQ_LEN, self.draw)
        t1 = time.perf_counter()
        with torch.no_grad():
            loga = seq_logprob(self.base, tokens).double()
        logP = loga + log_b(tokens)
        log_z = torch.logsumexp(logP - logq, dim=0) - math.log(BATCH)
        t2 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        logpi = seq_logprob(self.policy, tokens)
        # w = P/(Z q) - pi/q: on-policy pi/q is 1 up to rounding; computed, not assumed.
        lp = logpi.detach().double()
        w = (torch.exp(logP - logq - log_z) - torch.exp(lp - logq)).float()
        loss = -(w * logpi).mean()
        loss.backward()
        t3 = time.perf_counter()
        self.opt.step()
        t4 = time.perf_counter()
        b_mean = torch.isfinite(logP).double().mean().item()
        return {"sample_s": t1 - t0, "score_s": t2 - t1, "fwdbwd_s": t3 - t2,
                "update_s": t4 - t3, "total_s": t4 - t0, "b_mean": b_mean,
                "log_z": log_z.item(), "loss": loss.item()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=3, help="measured steps per thread count")
    ap.add_argument("--round", type=int, default=0, help="label for the JSON lines")
    ap.add_argument("--no-foreach", action="store_true", help="Adam's single-tensor path")
    ap.add_argument("--multinomial", action="store_true",
                    help="draw with torch.multinomial (Hugging Face's generate) instead")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    step = Step(foreach=not args.no_foreach, multinomial=args.multinomial)
    for t in threads:  # warm-up: allocator, OpenMP pools, Adam's state
        torch.set_num_threads(t)
        step.run()
    for k in range(args.steps):
        for t in (threads if k % 2 == 0 else threads[::-1]):
            torch.set_num_threads(t)
            load = load_average()
            r = step.run()
            if args.json:
                rec = {"impl": "torch", "round": args.round, "threads": t, "step": k,
                       "load": load, "batch": BATCH, "seq_len": SEQ_LEN,
                       "foreach": not args.no_foreach,
                       "draw": "multinomial" if args.multinomial else "inverse_cdf", "torch": torch.__version__,
                       "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "")}
                rec.update(r)
                print(json.dumps(rec), flush=True)
            else:
                print("torch threads %d step %d (load %.2f): samples/s  sample %7.1f  score "
                      "%7.1f  fwdbwd %7.1f  update %7.1f  | step %6.1f | b_mean %.3f log Z %.3f"
                      % (t, k, load, BATCH / r["sample_s"], BATCH / r["score_s"],
                         BATCH / r["fwdbwd_s"], BATCH / r["update_s"], BATCH / r["total_s"],
                         r["b_mean"], r["log_z"]), flush=True)


if __name__ == "__main__":
    main()
