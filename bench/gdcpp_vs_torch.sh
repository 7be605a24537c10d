#!/bin/bash
# One on-policy GDC++ step on the small shape, klc (bench/bench_gdcpp.c) against PyTorch
# (bench/torch_gdcpp.py), at 1 and 2 threads with the same OpenBLAS kernels, interleaved
# round by round (the order of the two alternating) so that the shared machine's load
# falls on both alike; every step records the load average. Prints medians and ratios
# (bench/summarize_gdcpp_vs_torch.py).
#
#   bash bench/gdcpp_vs_torch.sh [ROUNDS] [STEPS]     measured steps per process, default 3
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-3}
build=${BUILD:-build}
cmake --build "$build" -j2 --target bench_gdcpp klc_cli >/dev/null
# Both sides use the same OpenBLAS kernels: the ones klc would choose on this CPU.
core=$("$build/klc" --version | awk '/OpenBLAS kernels/ {print $3}')
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$core}
out=${OUT:-bench/results/gdcpp-vs-torch-$(date +%Y%m%d-%H%M).jsonl}
mkdir -p "$(dirname "$out")"
: > "$out"
echo "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE; $(nproc) cores; $(lscpu | sed -n 's/^Model name: *//p'); writing $out" >&2
run_klc() { "$build/bench/bench_gdcpp" --threads "$1" --steps "$steps" --round "$r" --json >> "$out"; }
run_torch() {
  /usr/bin/python3 bench/torch_gdcpp.py --threads "$1" --steps "$steps" --round "$r" --json >> "$out"
}
for r in $(seq "$rounds"); do
  for t in 1 2; do
    echo "round $r/$rounds, $t thread(s), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    if (( r % 2 )); then run_klc "$t"; run_torch "$t"; else run_torch "$t"; run_klc "$t"; fi
  done
done
/usr/bin/python3 bench/summarize_gdcpp_vs_torch.py "$out"
