#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run two builds of bench_virtio in alternation (A B, B A, ...) so that they
# share the machine's noise; print each run's copy/plain column with the
# 1-minute load average read just before it, then per frame size the median
# over the runs of copy/plain and of the plain and copy ns, for A and for B,
# and the lowest of each over the runs.
# usage: scripts/virtio-ab.sh A_BINARY B_BINARY [RUNS] [BENCH_ARGS...]
#        (default 5 runs of "-n 400 -r 3")
set -euo pipefail
a=$1 b=$2 runs=${3:-5}
shift $(($# < 3 ? $# : 3))
args=("$@")
[ ${#args[@]} -eq 0 ] && args=(-n 400 -r 3)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  "$1" "${args[@]}" | awk -v t="$2" -v l="$load" 'NF == 6 && $1 ~ /^[0-9]+$/ { print t, $1, $2, $3, $5, l }' >>"$tmp/all"
}
for r in $(seq "$runs"); do
  if ((r % 2)); then run "$a" A; run "$b" B; else run "$b" B; run "$a" A; fi
done
echo "runs (build bytes plain-ns copy-ns copy/plain load):"
cat "$tmp/all"
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '\nmedians of %s runs\n%-6s %9s %9s %9s %9s %9s %9s\n' "$runs" bytes "A plain" "A copy" "A c/p" "B plain" "B copy" "B c/p"
for size in $(awk '{ print $2 }' "$tmp/all" | sort -un); do
  row=$size
  for t in A B; do
    for col in 3 4 5; do
      row="$row $(awk -v t=$t -v s="$size" -v c=$col '$1 == t && $2 == s { print $c }' "$tmp/all" | median)"
    done
  done
  echo "$row" | awk '{ printf "%-6s %9.0f %9.0f %9.2f %9.0f %9.0f %9.2f\n", $1, $2, $3, $4, $5, $6, $7 }'
done
printf '\nlowest of %s runs (the least disturbed; c/p: lowest copy over lowest plain)\n%-6s %9s %9s %9s %9s %9s %9s\n' "$runs" bytes "A plain" "A copy" "A c/p" "B plain" "B copy" "B c/p"
for size in $(awk '{ print $2 }' "$tmp/all" | sort -un); do
  row=$size
  for t in A B; do
    for col in 3 4; do
      row="$row $(awk -v t=$t -v s="$size" -v c=$col '$1 == t && $2 == s { print $c }' "$tmp/all" | sort -g | head -1)"
    done
  done
  echo "$row" | awk '{ printf "%-6s %9.0f %9.0f %9.2f %9.0f %9.0f %9.2f\n", $1, $2, $3, $3 / $2, $4, $5, $5 / $4 }'
done
awk '{ print $6 }' "$tmp/all" | sort -g | awk '{ v[NR] = $1 } END { printf "load average (1 min) over the runs: %s to %s\n", v[1], v[NR] }'
