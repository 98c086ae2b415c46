#!/usr/bin/env bash
# Run two builds of bench_engine in alternation (A B, B A, A B, ...) so that
# they share the machine's noise, and print the median ns per frame of each
# row for both, with the ratio B/A.
# usage: scripts/bench-ab.sh A_BINARY B_BINARY [ROUNDS] [SECONDS_PER_CASE]
set -euo pipefail
a=$1 b=$2 rounds=${3:-5} secs=${4:-0.5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { "$1" -t "$secs" | awk 'NF == 6 && $1 ~ /^[0-9]+$/ { print $1, $2, $4 }' >>"$2"; }
# A B, then B A: whichever runs first in a round has no advantage overall.
for r in $(seq "$rounds"); do
  if ((r % 2)); then run "$a" "$tmp/a"; run "$b" "$tmp/b"; else run "$b" "$tmp/b"; run "$a" "$tmp/a"; fi
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-6s %-9s %10s %10s %7s\n' bytes policy "A ns" "B ns" "B/A"
awk '{ print $1, $2 }' "$tmp/a" | sort -u -k1,1n -k2,2 | while read -r size pol; do
  ma=$(awk -v s="$size" -v p="$pol" '$1 == s && $2 == p { print $3 }' "$tmp/a" | median)
  mb=$(awk -v s="$size" -v p="$pol" '$1 == s && $2 == p { print $3 }' "$tmp/b" | median)
  awk -v s="$size" -v p="$pol" -v a="$ma" -v b="$mb" 'BEGIN { printf "%-6s %-9s %10.1f %10.1f %7.2f\n", s, p, a, b, b / a }'
done
