#!/bin/bash
# klc logprob against the PyTorch reference values, and its errors on bad input.
set -euo pipefail
klc=$1
data=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -c '
import json, sys
for line in open(sys.argv[1]):
    print(" ".join(map(str, json.loads(line)["tokens"])))' "$data/expected.jsonl" > "$tmp/in.txt"
"$klc" logprob --model "$data/f32" "$tmp/in.txt" > "$tmp/out.jsonl"
# The same through standard input.
"$klc" logprob --model "$data/f32" < "$tmp/in.txt" > "$tmp/out-stdin.jsonl"
cmp "$tmp/out.jsonl" "$tmp/out-stdin.jsonl"
python3 -c '
import json, sys
want = [json.loads(l) for l in open(sys.argv[1])]
got = [json.loads(l) for l in open(sys.argv[2])]
assert len(want) == len(got), (len(want), len(got))
worst = 0.0
for w, g in zip(want, got):
    assert len(w["token_logprobs"]) == len(g["token_logprobs"])
    for a, b in zip(w["token_logprobs"], g["token_logprobs"]):
        worst = max(worst, abs(a - b))
    assert abs(w["logprob"] - g["logprob"]) < 1e-4 * max(1, len(w["tokens"]))
assert worst < 1e-4, worst
print("klc logprob matches the reference on %d sequences (max difference %.2e)" % (len(want), worst))
' "$data/expected.jsonl" "$tmp/out.jsonl"
expect_error() { # input, message fragment
  if printf "$1" | "$klc" logprob --model "$data/f32" > /dev/null 2> "$tmp/err"; then
    echo "expected failure for input '$1'"; exit 1; fi
  grep -qF -- "$2" "$tmp/err" || { echo "message '$(cat "$tmp/err")' lacks '$2'"; exit 1; }
}
expect_error '1 2 x\n' '<stdin>:1:5:'
expect_error '1 2\n3 50\n' '<stdin>:2:3: token id 50 is outside'
expect_error '1 2\n\n' '<stdin>:2: empty sequence'
expect_error "$(seq -s ' ' 0 33 | sed 's/[0-9][0-9]*/1/g')\n" 'longer than the model'"'"'s context of 32'
if "$klc" logprob --model "$tmp/nowhere" < /dev/null 2> "$tmp/err"; then exit 1; fi
grep -q "nowhere" "$tmp/err"
"$klc" logprob --help | grep -q "token_logprobs"
echo "klc logprob: errors ok"
