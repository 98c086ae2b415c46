#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run two builds of bench_engine, or of bench_virtio, in alternation (A B,
# B A, A B, ...) so that they share the machine's noise, and print the
# median ns per frame of each row for both, with the ratio B/A.
# usage: scripts/bench-ab.sh A_BINARY B_BINARY [ROUNDS] [SECONDS_PER_CASE]
#   bench_engine rows: path, bytes, policy (-t SECONDS_PER_CASE, default 0.5)
#   bench_virtio rows: bytes, way (plain, copy, flip) (-n 400 -r 3)
set -euo pipefail
a=$1 b=$2 rounds=${3:-5} secs=${4:-0.5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {
  case "$1" in
  *bench_virtio)
    "$1" -n 400 -r 3 | awk 'NF == 6 && $1 ~ /^[0-9]+$/ {
      print "-", $1, "plain", $2; print "-", $1, "copy", $3; print "-", $1, "flip", $4 }' >>"$2" ;;
  *)
    "$1" -t "$secs" | awk 'NF == 7 && $2 ~ /^[0-9]+$/ { print $1, $2, $3, $5 }' >>"$2" ;;
  esac
}
# A B, then B A: whichever runs first in a round has no advantage overall.
for r in $(seq "$rounds"); do
  if ((r % 2)); then run "$a" "$tmp/a"; run "$b" "$tmp/b"; else run "$b" "$tmp/b"; run "$a" "$tmp/a"; fi
done
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-5s %-6s %-15s %10s %10s %7s\n' path bytes policy "A ns" "B ns" "B/A"
awk '{ print $1, $2, $3 }' "$tmp/a" | sort -u -k1,1 -k2,2n -k3,3 | while read -r path size pol; do
  sel() { awk -v p="$path" -v s="$size" -v q="$pol" '$1 == p && $2 == s && $3 == q { print $4 }' "$1"; }
  ma=$(sel "$tmp/a" | median)
  mb=$(sel "$tmp/b" | median)
  awk -v p="$path" -v s="$size" -v q="$pol" -v a="$ma" -v b="$mb" \
    'BEGIN { printf "%-5s %-6s %-15s %10.1f %10.1f %7.2f\n", p, s, q, a, b, b / a }'
done
