#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Check that a built libvdemux.so exports exactly the functions the public
# headers declare with VDEMUX_API, and that src/vdemux.map lists the same.
# Usage: check-exports.sh SOURCE_DIR LIBRARY
set -euo pipefail
src=$1 lib=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Declarations may span lines: join each header, then take the name before
# the first '(' of every VDEMUX_API declaration.
cat "$src"/include/vdemux/*.h "$src"/include/vdemux/sys/*.h | grep -v '^#' | tr '\n' ' ' |
  grep -o 'VDEMUX_API [^(;]*(' | sed -E 's/.*[ *]([A-Za-z_0-9]+)[ ]*\($/\1/' | sort -u >"$tmp/headers"
sed -n 's/^[[:space:]]*\(vdemux_[A-Za-z_0-9]*\);$/\1/p' "$src/src/vdemux.map" | sort -u >"$tmp/map"
nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ { sub(/@.*/, "", $3); print $3 }' | sort -u >"$tmp/exported"
rc=0
if ! diff -u "$tmp/headers" "$tmp/map" >"$tmp/d1"; then
  echo "check-exports: src/vdemux.map and the headers' VDEMUX_API functions differ:" >&2
  cat "$tmp/d1" >&2
  rc=1
fi
if ! diff -u "$tmp/map" "$tmp/exported" >"$tmp/d2"; then
  echo "check-exports: $lib exports other symbols than src/vdemux.map lists:" >&2
  cat "$tmp/d2" >&2
  rc=1
fi
exit $rc
