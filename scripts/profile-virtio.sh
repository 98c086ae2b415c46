#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Instructions per frame of bench_virtio's timed calls, by function
# (callgrind, self cost): the plain device (plain_frame) or the copy through
# the engine (vdemux_rx_burst and vdemux_vnet_rxq_kick). Two runs, of N and
# 2N frames, and their difference over N frames: what one more frame costs,
# without the queue's setup (the first kick takes 256 buffers).
# Instruction counts do not depend on the machine's load.
# usage: scripts/profile-virtio.sh BUILD_DIR BYTES p|c [N]   (N default 400)
set -euo pipefail
build=$1 bytes=$2 mode=$3 n=${4:-400}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$mode" = p ]; then
  collect=(--toggle-collect='plain_frame*')
else
  collect=(--toggle-collect=vdemux_rx_burst --toggle-collect=vdemux_vnet_rxq_kick)
fi
# bench_virtio runs a quarter of -n frames above 9000 bytes.
scale=1
[ "$bytes" -gt 9000 ] && scale=4
for k in 1 2; do
  valgrind --tool=callgrind "${collect[@]}" --callgrind-out-file="$tmp/out.$k" \
    "$build/bench/bench_virtio" -n $((k * n * scale)) -r 1 -s "$bytes" -m "$mode" >/dev/null 2>&1
  callgrind_annotate --inclusive=no --threshold=100 "$tmp/out.$k" 2>/dev/null |
    awk -v k="$k" '$1 ~ /^[0-9,]+$/ {
        c = $1; gsub(",", "", c); f = $NF ~ /^\[/ ? $(NF - 1) : $NF
        if ($0 ~ /PROGRAM TOTALS/) { print k, "TOTAL", c; next }
        if (f !~ /:/) next
        sub(/.*:/, "", f); sub(/\..*/, "", f); print k, f, c }' >>"$tmp/all"
done
awk -v n="$n" '{ v[$2] += ($1 == 2 ? $3 : -$3) }
  END { for (f in v) if (v[f] / n >= 2 || f == "TOTAL") printf "%8.0f  %s\n", v[f] / n, f }' "$tmp/all" |
  sort -k1,1nr
