#!/bin/bash
# The symbols libklc.so exports are exactly the functions klc.h declares with KLC_API,
# and the SONAME is libklc.so.0.<minor> during 0.x.
set -euo pipefail
header=$1
lib=$2
declared=$(tr '\n' ' ' < "$header" | grep -oE 'KLC_API [^;{]*\(' | sed -E 's/\($//; s/.*[ *]//' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "D" || $2 == "B" {print $3}' | sed 's/@.*//' | sort -u)
if [ "$declared" != "$exported" ]; then
  echo "declared by klc.h but not exported:"; comm -23 <(echo "$declared") <(echo "$exported")
  echo "exported but not declared by klc.h:"; comm -13 <(echo "$declared") <(echo "$exported")
  exit 1
fi
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
major=$(grep -E '#define KLC_VERSION_MAJOR' "$header" | awk '{print $3}')
minor=$(grep -E '#define KLC_VERSION_MINOR' "$header" | awk '{print $3}')
if [ "$major" = 0 ]; then want="libklc.so.0.$minor"; else want="libklc.so.$major"; fi
if [ "$soname" != "$want" ]; then echo "SONAME is '$soname', expected '$want'"; exit 1; fi
echo "abi: $(echo "$declared" | wc -l) symbols exported as declared, SONAME $soname"
