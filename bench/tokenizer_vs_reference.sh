#!/bin/bash
# Tokenizer benchmark: klc's encoder against the npm package gpt-3-encoder (node) on the
# same text in the same run, plus klc's training time for an 8192-token vocabulary.
#
#   bench/tokenizer_vs_reference.sh [PROSE_FILE] [TRAIN_DIR]
#
# PROSE_FILE defaults to data/corpus/moby-dick.txt, TRAIN_DIR (every *.txt in it)
# to data/corpus/sotu (10.7 MB). Needs a built tree (BUILD, default ./build) and,
# for the reference, node and npm: gpt-3-encoder 1.1.4 is installed into a scratch folder
# outside the repository (SCRATCH, default ${TMPDIR:-/tmp}/klc-bench-tokenizer).
#
# gpt-3-encoder appends each piece's ids with Array.concat, so one call on a long text is
# quadratic; it is timed whole on a slice (SLICE bytes, default 100000) and paragraph by
# paragraph on the whole file, and klc is timed the same two ways on the same inputs.
# Runs are interleaved (klc, reference, klc, ...) and medians reported, because this
# machine is shared and its timings drift. Every run's ids are compared.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
data=${KLC_DATA:-$root/data}
prose=${1:-$data/corpus/moby-dick.txt}
train_dir=${2:-$data/corpus/sotu}
build=${BUILD:-$root/build}
scratch=${SCRATCH:-${TMPDIR:-/tmp}/klc-bench-tokenizer}
reps=${REPS:-5}
slice_bytes=${SLICE:-100000}
bench=$build/bench/bench_tokenizer
tok=$root/tests/data/gpt2

[ -x "$bench" ] || { echo "build first: $bench not found" >&2; exit 1; }
mkdir -p "$scratch"
if [ ! -d "$scratch/node_modules/gpt-3-encoder" ]; then
  (cd "$scratch" && { [ -f package.json ] || npm init -y >/dev/null; } &&
   npm install --no-audit --no-fund gpt-3-encoder@1.1.4 >/dev/null)
fi
export NODE_PATH=$scratch/node_modules

# The slice ends at a line break so that both sides see the same whole lines.
slice=$scratch/slice.txt
head -c "$slice_bytes" "$prose" | sed '$d' > "$slice"

field() { sed -E "s/.* $1=([^ ]+).*/\1/"; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "# tokenizer benchmark $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(uname -m)"
echo "# node $(node --version), gpt-3-encoder 1.1.4, reps=$reps (medians)"
for input in "slice whole" "full paragraphs"; do
  set -- $input
  file=$([ "$1" = slice ] && echo "$slice" || echo "$prose")
  mode=$2
  : > "$scratch/klc.$mode" ; : > "$scratch/ref.$mode"
  for r in $(seq "$reps"); do
    flag=$([ "$mode" = paragraphs ] && echo --paragraphs || true)
    "$bench" encode "$tok" "$file" --reps 1 $flag --ids "$scratch/klc.ids" >> "$scratch/klc.$mode"
    node "$here/gpt3_encoder_bench.js" "$file" "$mode" "$scratch/ref.ids" >> "$scratch/ref.$mode"
    cmp -s "$scratch/klc.ids" "$scratch/ref.ids" || { echo "ids differ on $file ($mode)" >&2; exit 1; }
  done
  bytes=$(head -1 "$scratch/klc.$mode" | field bytes)
  ids=$(head -1 "$scratch/klc.$mode" | field ids)
  cold=$(field cold_MBps < "$scratch/klc.$mode" | median)
  warm=$(field warm_MBps < "$scratch/klc.$mode" | median)
  ref=$(field MBps < "$scratch/ref.$mode" | median)
  echo "encode $(basename "$file") ($mode, $bytes bytes, $ids ids, identical): klc cold $cold MB/s," \
       "klc warm $warm MB/s, gpt-3-encoder $ref MB/s, ratio cold/ref $(awk -v a="$cold" -v b="$ref" 'BEGIN{printf "%.0f", a/b}')x"
done
# The whole file in one call, klc only (the reference would take minutes).
"$bench" encode "$tok" "$prose" --reps "$reps" --ids "$scratch/klc.ids"
expected=ed966e26be6dc57a305dea218bda27db937e5dd0c9e8bbabe2a6d9623744141c
if [ "$(basename "$prose")" = moby-dick.txt ]; then
  got=$(python3 -c "import struct,sys,hashlib; ids=list(map(int,open(sys.argv[1]).read().split())); print(hashlib.sha256(struct.pack('<%dH'%len(ids),*ids)).hexdigest())" "$scratch/klc.ids")
  [ "$got" = "$expected" ] && echo "moby-dick.txt ids sha256 matches the reference ($got)" ||
    { echo "moby-dick.txt ids sha256 $got != $expected" >&2; exit 1; }
fi
files=("$train_dir"/*.txt)
"$bench" train --vocab-size 8192 --reps 3 "${files[@]}"
