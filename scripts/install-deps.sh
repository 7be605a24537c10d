#!/bin/bash
# Installs the Debian packages klc builds and tests with (scripts/packages.txt), if any is
# missing. Needs root (or sudo) on a fresh Debian 12 machine; does nothing when all are
# present.
set -euo pipefail
cd "$(dirname "$0")"
missing=()
while read -r pkg; do
  [ -z "$pkg" ] && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done < packages.txt
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
