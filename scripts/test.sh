#!/bin/bash
# Builds klc and runs every test: a release build, then an AddressSanitizer +
# UndefinedBehaviorSanitizer build of the same suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")
cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DKLC_SANITIZE=ON -DKLC_BUILD_BENCH=OFF >/dev/null
cmake --build build-san -j"$jobs"
# OpenBLAS and OpenMP keep allocations for the process's lifetime: not klc's leaks.
(cd build-san && ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/../tests/lsan.supp \
  UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$jobs" -LE "slow|install")
