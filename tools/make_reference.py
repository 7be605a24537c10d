#!/usr/bin/python3
"""Writes tests/data/ref-tiny: a tiny GPT-2 checkpoint in Hugging Face layout with random
weights, and reference log-probabilities from an independent float64 GPT-2 forward.

Run with Debian's /usr/bin/python3 (python3-torch, numpy); transformers is not needed:
the safetensors writer and the forward below are written from the format description and
from what GPT2LMHeadModel computes, so that klc is checked against something it shares no
code with.

    /usr/bin/python3 tools/make_reference.py [output-dir]
"""
import json
import math
import os
import struct
import sys

import torch

N_LAYER, N_HEAD, N_EMBD, N_CTX, VOCAB = 2, 2, 16, 32, 50
# Not GPT-2's 1e-5: a reader or forward that ignores config.json's epsilon fails the test.
EPS = 1e-3
SEED = 20240501
# Token sequences of several lengths, including a single token (no predictions) and a
# full context window.
LENGTHS = [1, 2, 5, 11, 32, 17, 8]

DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.bool: "BOOL"}


def make_params(gen):
    """Random weights in Hugging Face names (no prefix), Conv1D weights [in, out]. Large
    standard deviations (0.1-0.4) so that every tensor visibly moves the log-probabilities."""
    C = N_EMBD

    def randn(*shape, std):
        return torch.randn(*shape, generator=gen, dtype=torch.float64) * std

    p = {"wte.weight": randn(VOCAB, C, std=0.4), "wpe.weight": randn(N_CTX, C, std=0.2)}
    for l in range(N_LAYER):
        h = f"h.{l}."
        p[h + "ln_1.weight"] = 1.0 + randn(C, std=0.2)
        p[h + "ln_1.bias"] = randn(C, std=0.1)
        p[h + "attn.c_attn.weight"] = randn(C, 3 * C, std=0.3)
        p[h + "attn.c_attn.bias"] = randn(3 * C, std=0.1)
        p[h + "attn.c_proj.weight"] = randn(C, C, std=0.3)
        p[h + "attn.c_proj.bias"] = randn(C, std=0.1)
        p[h + "ln_2.weight"] = 1.0 + randn(C, std=0.2)
        p[h + "ln_2.bias"] = randn(C, std=0.1)
        p[h + "mlp.c_fc.weight"] = randn(C, 4 * C, std=0.3)
        p[h + "mlp.c_fc.bias"] = randn(4 * C, std=0.1)
        p[h + "mlp.c_proj.weight"] = randn(4 * C, C, std=0.2)
        p[h + "mlp.c_proj.bias"] = randn(C, std=0.1)
    p["ln_f.weight"] = 1.0 + randn(C, std=0.2)
    p["ln_f.bias"] = randn(C, std=0.1)
    return p


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: take the raw 16-bit patterns
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.float16:
        return t.numpy().astype("<f2").tobytes()
    if t.dtype == torch.float32:
        return t.numpy().astype("<f4").tobytes()
    if t.dtype == torch.bool:
        return t.numpy().astype("u1").tobytes()
    raise ValueError(t.dtype)


def write_safetensors(path, tensors):
    """The format: u64 little-endian header length, JSON header, data; tensors sorted by
    name, byte ranges tiling the data section, header padded with spaces to 8 bytes."""
    header = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        b = tensor_bytes(t)
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def layer_norm(x, w, b):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased, as torch.nn.LayerNorm
    return (x - mean) / torch.sqrt(var + EPS) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def forward_logprobs(p, tokens):
    """GPT2LMHeadModel's computation in float64 for one sequence: log p(x[t+1] | x[..t])."""
    T, C, H = len(tokens), N_EMBD, N_HEAD
    hd = C // H
    idx = torch.tensor(tokens)
    x = p["wte.weight"][idx] + p["wpe.weight"][:T]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for l in range(N_LAYER):
        g = lambda k: p[f"h.{l}.{k}"]
        a = layer_norm(x, g("ln_1.weight"), g("ln_1.bias"))
        qkv = a @ g("attn.c_attn.weight") + g("attn.c_attn.bias")
        q, k, v = (z.reshape(T, H, hd).transpose(0, 1) for z in qkv.split(C, dim=-1))
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        att = att.masked_fill(~causal, float("-inf")).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(T, C)
        x = x + y @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        m = layer_norm(x, g("ln_2.weight"), g("ln_2.bias"))
        m = gelu_tanh(m @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias"))
        x = x + m @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
    x = layer_norm(x, p["ln_f.weight"], p["ln_f.bias"])
    logp = (x @ p["wte.weight"].T).log_softmax(-1)
    return [logp[t, tokens[t + 1]].item() for t in range(T - 1)]


def write_expected(path, p, sequences):
    with open(path, "w") as f:
        for tokens in sequences:
            lp = forward_logprobs(p, tokens)
            f.write(json.dumps({"tokens": tokens, "token_logprobs": lp, "logprob": math.fsum(lp)})
                    + "\n")


def config(style):
    """A full config as transformers writes it; 'old' is an older file: n_ctx instead of
    n_positions, PyTorch's name for the tanh GELU, extra keys klc must ignore."""
    c = {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": None, "embd_pdrop": 0.1, "eos_token_id": None,
        "initializer_range": 0.02, "layer_norm_epsilon": EPS, "model_type": "gpt2",
        "n_ctx": N_CTX, "n_embd": N_EMBD, "n_head": N_HEAD, "n_inner": None,
        "n_layer": N_LAYER, "n_positions": N_CTX, "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1, "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True, "summary_activation": None, "summary_first_dropout": 0.1,
        "summary_proj_to_labels": True, "summary_type": "cls_index", "summary_use_proj": True,
        "torch_dtype": "float32", "transformers_version": "4.30.2", "use_cache": True,
        "vocab_size": VOCAB,
    }
    if style == "old":
        for k in ("n_positions", "reorder_and_upcast_attn", "scale_attn_by_inverse_layer_idx",
                  "n_inner", "torch_dtype", "transformers_version"):
            del c[k]
        c["activation_function"] = "gelu_pytorch_tanh"
    return c


def write_variant(out, name, p, dtype, prefix, lm_head, buffers, cfg_style):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    tensors = {prefix + k: v.to(dtype) for k, v in p.items()}
    if lm_head:  # older transformers saved the tied head as well
        tensors["lm_head.weight"] = p["wte.weight"].to(dtype)
    for l in range(N_LAYER):
        if buffers == "float":  # attention-mask buffers as transformers < 4.2x saved them
            tensors[f"{prefix}h.{l}.attn.bias"] = torch.ones(N_CTX, N_CTX).tril().view(
                1, 1, N_CTX, N_CTX)
            tensors[f"{prefix}h.{l}.attn.masked_bias"] = torch.tensor(-1e4)
        elif buffers == "bool":
            tensors[f"{prefix}h.{l}.attn.bias"] = torch.ones(
                N_CTX, N_CTX, dtype=torch.bool).tril().view(1, 1, N_CTX, N_CTX)
    write_safetensors(os.path.join(d, "model.safetensors"), tensors)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config(cfg_style), f, indent=2, sort_keys=True)
        f.write("\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ref-tiny")
    gen = torch.Generator().manual_seed(SEED)
    p64 = make_params(gen)
    sequences = [torch.randint(0, VOCAB, (n,), generator=gen).tolist() for n in LENGTHS]

    # What the F32 files hold exactly, and the expectations computed from that.
    p32 = {k: v.float().double() for k, v in p64.items()}
    write_variant(out, "f32", p64, torch.float32, "transformer.", True, "float", "new")
    write_variant(out, "f32-noprefix", p64, torch.float32, "", False, "bool", "old")
    write_expected(os.path.join(out, "expected.jsonl"), p32, sequences)
    for name, dt in (("f16", torch.float16), ("bf16", torch.bfloat16)):
        rounded = {k: v.to(dt).double() for k, v in p64.items()}
        write_variant(out, name, p64, dt, "transformer.", False, "none", "new")
        write_expected(os.path.join(out, f"expected-{name}.jsonl"), rounded, sequences)


if __name__ == "__main__":
    main()
