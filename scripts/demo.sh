#!/bin/bash
# The default demo: builds klc, then fine-tunes the shipped base model
# (data/models/klc-small) toward texts that mention the sea or ships with GDC++
# (configs/demo.yaml), showing progress, samples and metrics before and after, and
# leaving a report with plots in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
./build/klc --version
echo
rm -rf runs/demo
./build/klc train configs/demo.yaml "$@"
echo
python3 - runs/demo/metrics.jsonl <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
evals = [r for r in rows if r.get("eval.b_mean") is not None]
first, last = evals[0], evals[-1]
print("Texts that mention the sea or ships, on samples of each model:")
print("  base model a:      %5.1f%%" % (100 * first["eval.b_mean"]))
print("  fine-tuned pi:     %5.1f%%   after %d steps of GDC++" % (100 * last["eval.b_mean"], last["step"]))
print("  KL(pi || a) = %.2f nats per text (how far pi moved from a; the target p itself is"
      % last["eval.kl_pi_a"])
print("  at KL(p || a) = -log Z = %.2f nats)" % -[r for r in rows if r.get("log_z") is not None][-1]["log_z"])
EOF
echo "Report with plots and samples: runs/demo/report.md (runs/demo/metrics.svg)"
