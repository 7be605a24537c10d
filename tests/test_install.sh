#!/bin/bash
# cmake --install puts the header, both libraries, klc.pc and the CMake package in place,
# and a program builds against them through pkg-config and through find_package(klc).
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)/install
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > /dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -1)
test -f "$tmp/prefix/include/klc.h"
test -f "$libdir/libklc.a"
test -L "$libdir/libklc.so"
test -f "$libdir/pkgconfig/klc.pc"
test -f "$libdir/cmake/klc/klcConfig.cmake"
soname=$(objdump -p "$libdir/libklc.so" | awk '/SONAME/ {print $2}')
test -e "$libdir/$soname"
# pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -o "$tmp/consumer-pc" "$src/consumer.c" $(pkg-config --cflags --libs klc)
LD_LIBRARY_PATH="$libdir" "$tmp/consumer-pc"
# find_package(klc)
cmake -S "$src" -B "$tmp/consumer-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" > /dev/null
cmake --build "$tmp/consumer-build" > /dev/null
LD_LIBRARY_PATH="$libdir" "$tmp/consumer-build/consumer"
echo "install: header, libraries ($soname), klc.pc and klcConfig.cmake work"
