#!/bin/bash
# The default demo: builds klc, then trains a small byte-level GPT-2 on public-domain novels
# with klc's forward/backward, saves it as a Hugging Face directory, reloads it, scores
# held-out text with `klc logprob` and samples from it with the KV cache.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
out=runs/demo-bytes
mkdir -p runs
./build/examples/train_bytes --out "$out" --seconds "${KLC_DEMO_SECONDS:-180}" \
  --heldout data/corpus/austen/persuasion.txt \
  data/corpus/austen/emma.txt data/corpus/austen/prideprejudice.txt \
  data/corpus/austen/northangerabbey.txt data/corpus/austen/sensesensibility.txt
echo
echo "klc logprob on the saved model (bytes of 'It was a truth universally acknowledged', BOS = 256):"
printf '256 %s\n' "$(printf 'It was a truth universally acknowledged' | od -An -tu1 | xargs)" |
  ./build/klc logprob --model "$out" | cut -c1-160
./build/klc --version
