#!/bin/bash
# klc plot on a small metrics log: a well-formed SVG with the expected panels and curves,
# and its exit statuses (0 done, 1 failure, 2 usage error).
set -euo pipefail
klc=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/m.jsonl" <<'JSONL'
{"step": 1, "train.b_mean": 0.1, "train.kl_p_pi": 3.0, "train.kl_pi_a": 0.0, "log_z": -2.0, "beta": 0.15, "train.ess": 10}
{"step": 2, "train.b_mean": 0.4, "train.kl_p_pi": NaN, "train.kl_pi_a": 0.2, "log_z": -2.1, "beta": 0.16, "train.ess": 20}
{"step": 3, "train.b_mean": 0.7, "train.kl_p_pi": 2.0, "train.kl_pi_a": 0.3, "log_z": -2.2, "beta": 0.17, "train.ess": 30}
{"step": 4, "train.b_mean": 0.9, "train.kl_p_pi": 1.5, "train.kl_pi_a": 0.4, "log_z": -2.3, "beta": 0.18, "train.ess": 35, "lr": 0.01}
JSONL
"$klc" plot "$tmp/m.jsonl" -o "$tmp/m.svg"
python3 - "$tmp/m.svg" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
panels = root.findall("s:g[@class='panel']", ns)
titles = [p.find("s:text[@class='title']", ns).text for p in panels]
assert titles == ["Constraint satisfaction", "KL(p || pi)", "KL(pi || a)", "log Z", "beta",
                  "Effective sample size"], titles
lines = {}
for p in panels:
    for pl in p.findall("s:polyline[@class='series']", ns):
        lines.setdefault(pl.get("data-series"), []).append(len(pl.get("points").split()))
assert lines["train.b_mean"] == [4], lines
assert lines["train.kl_p_pi"] == [2], lines  # the NaN at step 2 leaves step 1 a dot
dots = [c.get("data-series") for c in root.iter("{http://www.w3.org/2000/svg}circle")]
assert dots == ["train.kl_p_pi"], dots
print("klc plot: %d panels, series %s" % (len(panels), sorted(lines)))
PY
# Chosen panels.
"$klc" plot "$tmp/m.jsonl" -o "$tmp/lr.svg" --metrics 'lr,train.b_mean+train.kl_pi_a'
grep -q 'data-series="lr"' "$tmp/lr.svg"
[ "$(grep -c 'class="panel"' "$tmp/lr.svg")" = 2 ]
"$klc" plot --help | grep -q 'usage: klc plot'
status() { set +e; "$@" > /dev/null 2> "$tmp/err"; echo $?; set -e; }
[ "$(status "$klc" plot)" = 2 ]
[ "$(status "$klc" plot "$tmp/m.jsonl")" = 2 ]
grep -q 'missing -o' "$tmp/err"
[ "$(status "$klc" plot "$tmp/m.jsonl" -o)" = 2 ]
[ "$(status "$klc" plot "$tmp/m.jsonl" --bogus -o x.svg)" = 2 ]
[ "$(status "$klc" plot "$tmp/m.jsonl" "$tmp/m.jsonl" -o x.svg)" = 2 ]
[ "$(status "$klc" plot "$tmp/absent.jsonl" -o "$tmp/x.svg")" = 1 ]
grep -q 'absent.jsonl' "$tmp/err"
printf '{"step": 1}\n{"step": \n' > "$tmp/bad.jsonl"
[ "$(status "$klc" plot "$tmp/bad.jsonl" -o "$tmp/x.svg")" = 1 ]
grep -q 'bad.jsonl:2:' "$tmp/err"
[ "$(status "$klc" plot "$tmp/m.jsonl" -o "$tmp/x.svg" --metrics nope)" = 1 ]
grep -q "no metric 'nope'" "$tmp/err"
echo "klc plot: exit statuses as documented"
