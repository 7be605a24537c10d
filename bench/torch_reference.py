#!/usr/bin/python3
"""PyTorch reference figures for klc: a minimal GPT-2 (the architecture of Hugging Face's
GPT2LMHeadModel) timed on a training step and on KV-cached decoding, for the shapes klc's
benchmarks use, with 1 and 2 threads.

Run it with Debian's interpreter (/usr/bin/python3, which has python3-torch 1.13); the pyenv
python3 on PATH has no torch. Output: one JSON object per line on stdout,

  {"bench": "torch_reference", "shape": ..., "threads": ..., "metric": ..., "value": ...,
   "samples": ..., "min": ..., "max": ..., ...}

so that a C benchmark can run this as a subprocess and set its own figures beside these.
--human prints a readable report instead (both with --human --json; the report then goes to
stderr). Timings are medians over repetitions that interleave the thread counts, because the
machine is shared and noisy.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

SHAPES = {
    # name: (n_layer, n_embd, vocab, n_head, n_ctx)
    "gpt2-small": (12, 768, 50257, 12, 1024),
    "klc-small": (4, 256, 8192, 4, 1024),
}


class Conv1D(nn.Module):
    """Hugging Face's GPT-2 keeps its projections as [in, out] matrices and computes
    addmm(b, x, W); nn.Linear would store [out, in] and run a different BLAS layout, so the
    reference keeps GPT-2's."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out).normal_(0.0, 0.02))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        shape = x.shape[:-1] + (self.weight.shape[1],)
        return torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight).view(shape)


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.n_head = H
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.c_attn = Conv1D(C, 3 * C)
        self.attn_proj = Conv1D(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.c_fc = Conv1D(C, 4 * C)
        self.mlp_proj = Conv1D(4 * C, C)

    def forward(self, x, past=None):
        B, T, C = x.shape
        H = self.n_head
        hd = C // H
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q = q.view(B, T, H, hd).transpose(1, 2)
        k = k.view(B, T, H, hd).transpose(1, 2)
        v = v.view(B, T, H, hd).transpose(1, 2)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)
            v = torch.cat((past[1], v), dim=2)
        present = (k, v)
        Tk = k.shape[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        if T > 1:
            # Query i (absolute position Tk - T + i) sees keys 0 .. Tk - T + i.
            keep = torch.ones(T, Tk, dtype=torch.bool).tril(diagonal=Tk - T)
            att = att.masked_fill(~keep, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.attn_proj(y)
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x, present


class GPT2(nn.Module):
    def __init__(self, n_layer, C, V, H, n_ctx):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(n_ctx, C)
        nn.init.normal_(self.wte.weight, 0.0, 0.02)
        nn.init.normal_(self.wpe.weight, 0.0, 0.02)
        self.h = nn.ModuleList(Block(C, H) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(C, eps=1e-5)

    def forward(self, idx, past=None):
        B, T = idx.shape
        start = 0 if past is None else past[0][0].shape[2]
        pos = torch.arange(start, start + T, dtype=torch.long)
        x = self.wte(idx) + self.wpe(pos)
        presents = []
        for i, block in enumerate(self.h):
            x, p = block(x, None if past is None else past[i])
            presents.append(p)
        # The head is tied to the token embedding, as in GPT2LMHeadModel.
        logits = F.linear(self.ln_f(x), self.wte.weight)
        return logits, presents


def matmul_params(n_layer, C, V):
    """Parameters that take part in a matrix product per token: the four block matrices and
    the tied head (embedding lookups and biases are not products)."""
    return n_layer * 12 * C * C + V * C


def train_flops(n_layer, C, V, B, T):
    """6 * n_params_matmul * tokens (forward 2, backward 4 per parameter and token) plus the
    attention products: forward Q K^T and P V are 2*T*T*hd each per head, i.e. 4*T*T*C per
    sequence and layer, and backward twice that, so 12 * n_layer * B * T^2 * C. The full
    T x T products are counted because that is what is computed before the causal mask."""
    return 6 * matmul_params(n_layer, C, V) * B * T + 12 * n_layer * B * T * T * C


def blas_info():
    """Which BLAS the sgemm calls of this torch reach: the build's BLAS_INFO, the BLAS-like
    libraries mapped into the process after a product, and OpenBLAS's own report."""
    a = torch.randn(256, 256)
    (a @ a).sum().item()
    info = {"torch": torch.__version__}
    cfg = torch.__config__.show()
    for tok in ("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN"):
        i = cfg.find(tok + "=")
        if i >= 0:
            info[tok] = cfg[i + len(tok) + 1 :].split(",")[0]
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            base = os.path.basename(path)
            if any(s in base for s in ("blas", "mkl", "dnnl", "gomp", "lapack")):
                libs.add(os.path.realpath(path))
    info["libraries"] = sorted(libs)
    try:
        import ctypes

        ob = ctypes.CDLL("libopenblas.so.0")
        ob.openblas_get_corename.restype = ctypes.c_char_p
        ob.openblas_get_config.restype = ctypes.c_char_p
        info["openblas_core"] = ob.openblas_get_corename().decode()
        info["openblas_config"] = ob.openblas_get_config().decode()
    except OSError:
        pass
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE", "")
    return info


def sgemm_rate(threads, reps=3):
    """torch.mm on the biggest training product of GPT-2 small (2048 x 768 x 3072), to
    compare with bench_blas's sgemm figure for the same shape."""
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 768), torch.randn(768, 3072)
    torch.mm(a, b)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        ts.append(time.perf_counter() - t0)
    return 2 * 2048 * 768 * 3072 / statistics.median(ts) * 1e-9


def make_model(shape, seed=0):
    torch.manual_seed(seed)
    m = GPT2(*SHAPES[shape])
    m.eval()  # no dropout anywhere; GPT2 here has none, but keep the intent explicit
    return m


def train_step(model, idx, targets):
    model.zero_grad(set_to_none=True)
    logits, _ = model(idx)
    loss = F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
    loss.backward()
    return loss.item()


@torch.inference_mode()
def generate(model, prompt, n_new):
    """Greedy decoding with the script's own cache (keys and values concatenated per layer);
    returns (prefill seconds, decode seconds). Greedy keeps sampling cost out of the figure."""
    t0 = time.perf_counter()
    logits, past = model(prompt)
    nxt = logits[:, -1, :].argmax(dim=-1, keepdim=True)
    t1 = time.perf_counter()
    for _ in range(n_new - 1):
        logits, past = model(nxt, past)
        nxt = logits[:, -1, :].argmax(dim=-1, keepdim=True)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def summary(xs):
    return statistics.median(xs), min(xs), max(xs), len(xs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shapes", default="gpt2-small,klc-small")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--what", default="train,decode", help="train, decode or both")
    ap.add_argument("--reps", type=int, default=0, help="repetitions (default 3, quick 2)")
    ap.add_argument("--batch", type=int, default=8, help="training sequences per step")
    ap.add_argument("--seq", type=int, default=256, help="training sequence length")
    ap.add_argument("--decode-batches", default="1,32")
    ap.add_argument("--prompt", type=int, default=8)
    ap.add_argument("--new", type=int, default=64, help="tokens generated per sequence")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, shorter decode")
    ap.add_argument("--human", action="store_true", help="readable report")
    ap.add_argument("--json", action="store_true", help="JSON lines even with --human")
    args = ap.parse_args()

    threads = [int(t) for t in args.threads.split(",")]
    shapes = args.shapes.split(",")
    what = args.what.split(",")
    reps = args.reps or (2 if args.quick else 3)
    n_new = min(args.new, 16) if args.quick else args.new
    dbatches = [int(b) for b in args.decode_batches.split(",")]
    want_json = args.json or not args.human
    out = sys.stdout
    hum = sys.stderr if (args.human and args.json) else sys.stdout

    def emit(rec):
        if want_json:
            out.write(json.dumps(rec) + "\n")
            out.flush()

    def say(msg):
        if args.human:
            hum.write(msg + "\n")
            hum.flush()

    info = blas_info()
    emit({"bench": "torch_reference", "shape": "", "threads": 0, "metric": "blas_info",
          "value": info.get("openblas_core", info.get("BLAS_INFO", "")), "info": info})
    say("torch %s, BLAS_INFO=%s, OpenBLAS core %s (OPENBLAS_CORETYPE=%s)"
        % (info["torch"], info.get("BLAS_INFO"), info.get("openblas_core", "n/a"),
           info["OPENBLAS_CORETYPE"] or "unset"))
    say("BLAS-like libraries mapped: " + ", ".join(info["libraries"]))
    for t in threads:
        r = sgemm_rate(t)
        emit({"bench": "torch_reference", "shape": "", "threads": t,
              "metric": "mm_2048x768x3072_gflops", "value": r})
        say("torch.mm 2048x768 @ 768x3072, %d thread(s): %.1f GFLOP/s" % (t, r))

    for shape in shapes:
        L, C, V, H, n_ctx = SHAPES[shape]
        model = make_model(shape)
        n_params = sum(p.numel() for p in model.parameters())
        B, T = args.batch, args.seq
        tokens = B * T
        fl = train_flops(L, C, V, B, T)
        say("\n%s: %d layers, C=%d, V=%d, %d heads; %.2fM parameters (%.2fM in products)"
            % (shape, L, C, V, H, n_params / 1e6, matmul_params(L, C, V) / 1e6))
        if "train" in what:
            say("training FLOPs per step = 6 * %d * %d + 12 * %d * %d * %d^2 * %d = %.1f GFLOP"
                % (matmul_params(L, C, V), tokens, L, B, T, C, fl / 1e9))
            g = torch.Generator().manual_seed(1)
            idx = torch.randint(0, V, (B, T), generator=g)
            tgt = torch.randint(0, V, (B, T), generator=g)
            model.train()
            times = {t: [] for t in threads}
            for t in threads:  # warm-up: allocator, OpenMP pools, lazy binding
                torch.set_num_threads(t)
                train_step(model, idx, tgt)
            for r in range(reps):
                order = threads if r % 2 == 0 else threads[::-1]
                for t in order:
                    torch.set_num_threads(t)
                    t0 = time.perf_counter()
                    train_step(model, idx, tgt)
                    times[t].append(time.perf_counter() - t0)
            for t in threads:
                med, lo, hi, n = summary(times[t])
                base = {"bench": "torch_reference", "shape": shape, "threads": t, "samples": n,
                        "tokens": tokens, "batch": B, "seq": T}
                emit(dict(base, metric="train_step_s", value=med, min=lo, max=hi))
                emit(dict(base, metric="train_tokens_per_s", value=tokens / med,
                          min=tokens / hi, max=tokens / lo))
                emit(dict(base, metric="train_gflops", value=fl / med * 1e-9,
                          min=fl / hi * 1e-9, max=fl / lo * 1e-9, flops=fl))
                say("  train t=%d: %.3f s/step (min %.3f, max %.3f) = %.0f tokens/s = %.1f "
                    "GFLOP/s" % (t, med, lo, hi, tokens / med, fl / med * 1e-9))
            model.zero_grad(set_to_none=True)
        if "decode" in what:
            model.eval()
            g = torch.Generator().manual_seed(2)
            for db in dbatches:
                prompt = torch.randint(0, V, (db, args.prompt), generator=g)
                pre = {t: [] for t in threads}
                dec = {t: [] for t in threads}
                for t in threads:
                    torch.set_num_threads(t)
                    generate(model, prompt, min(n_new, 4))
                for r in range(reps):
                    order = threads if r % 2 == 0 else threads[::-1]
                    for t in order:
                        torch.set_num_threads(t)
                        a, b = generate(model, prompt, n_new)
                        pre[t].append(a)
                        dec[t].append(b)
                for t in threads:
                    # The first new token comes out of the prefill; the loop makes n_new - 1.
                    steps = n_new - 1
                    dm, dlo, dhi, n = summary(dec[t])
                    tot = [a + b for a, b in zip(pre[t], dec[t])]
                    tm, tlo, thi, _ = summary(tot)
                    base = {"bench": "torch_reference", "shape": shape, "threads": t, "samples": n,
                            "batch": db, "prompt": args.prompt, "new": n_new}
                    emit(dict(base, metric="decode_tokens_per_s", value=db * steps / dm,
                              min=db * steps / dhi, max=db * steps / dlo))
                    emit(dict(base, metric="generate_tokens_per_s", value=db * n_new / tm,
                              min=db * n_new / thi, max=db * n_new / tlo))
                    say("  decode batch %2d t=%d: %.1f tokens/s in the cached steps (min %.1f, "
                        "max %.1f); %.1f tokens/s including the %d-token prefill"
                        % (db, t, db * steps / dm, db * steps / dhi, db * steps / dlo,
                           db * n_new / tm, args.prompt))
        del model


if __name__ == "__main__":
    main()
