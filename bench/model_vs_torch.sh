#!/bin/bash
# klc's model against PyTorch on the same shapes, thread counts and OpenBLAS kernels,
# interleaved round by round so that the shared machine's load falls on both alike;
# prints medians and ratios (bench/summarize_model_vs_torch.py).
#
#   bash bench/model_vs_torch.sh [ROUNDS] [SHAPES]      e.g. 5 "small gpt2"
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
shapes=${2:-"small gpt2"}
build=${BUILD:-build}
cmake --build "$build" -j2 --target bench_model klc_cli >/dev/null
# Both sides use the same OpenBLAS kernels: the ones klc would choose on this CPU.
core=$("$build/klc" --version | awk '/OpenBLAS kernels/ {print $3}')
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$core}
out=${OUT:-bench/results/model-vs-torch-$(date +%Y%m%d-%H%M).jsonl}
mkdir -p "$(dirname "$out")"
: > "$out"
echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE; $(nproc) cores; $(lscpu | sed -n 's/^Model name: *//p'); writing $out" >&2
declare -A torch_name=([small]=klc-small [gpt2]=gpt2-small)
for r in $(seq "$rounds"); do
  for shape in $shapes; do
    for t in 1 2; do
      echo "round $r/$rounds: $shape, $t thread(s)" >&2
      "$build/bench/bench_model" --shape "$shape" --threads "$t" --reps 1 --json >> "$out"
      /usr/bin/python3 bench/torch_reference.py --shapes "${torch_name[$shape]}" --threads "$t" \
        --reps 1 --json >> "$out"
    done
  done
done
/usr/bin/python3 bench/summarize_model_vs_torch.py "$out"
