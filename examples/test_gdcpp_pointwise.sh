#!/bin/bash
# examples/gdcpp_pointwise on the shipped model for 2 steps of a small batch, run from the
# repository root: it exits 0 and prints the memory estimate, the texts before and after,
# and the metrics table with its row at step 0 and the evaluation after the last step.
set -euo pipefail
example=$1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$example" --steps 2 --batch 8 > "$out"
cat "$out"
grep -q '^memory: [0-9.]* MiB in all' "$out"
grep -Eq '^ +step +b_mean +kl_pi_a +kl_p_pi +log_z +ess +samples/s$' "$out"
# Step 0 evaluates the base model itself: pi = a, so KL(pi || a) is 0.
grep -Eq '^ +0 +[01]\.[0-9]{3} +-?0\.000 ' "$out"
# The last step's row: every column a number but KL(p || pi) and log Z, which stay "-"
# while no training sample has met the constraint.
grep -Eq '^ +2( +([0-9.-]+|-)){6}$' "$out"
grep -Eq '^ +2 +[01]\.[0-9]{3} +-?[0-9]+\.[0-9]{3} ' "$out"
[ "$(grep -c '^  \[b=[01]\] ' "$out")" = 8 ]
# Usage errors exit 2.
set +e
"$example" --steps 0 > /dev/null 2>&1; [ $? = 2 ] || exit 1
"$example" --frobnicate 1 > /dev/null 2>&1; [ $? = 2 ] || exit 1
