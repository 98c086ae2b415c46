#!/bin/sh
# SPDX-License-Identifier: MIT
# Run bench_engine (simulated backend) and bench_kvm (KVM backend) RUNS
# times each and print, per frame size and per comparison (receive path,
# harvest policy), the median over the runs of the adaptive policy's frames
# per second over the better of copy-only and flip-only measured in the same
# run, then per size the lowest of those medians: the figure the benches'
# own "adaptive <backend> <bytes> <ratio>" lines give for one run.
#
# One run is noisy on a shared machine, and the lowest of four noisy
# comparisons is biased low: where the adaptive policy runs the very code
# copy-only runs (frames of at most 2048 bytes, and every frame on the
# copy-in path), its ratio shows that noise.
#
# Usage: scripts/adaptive-ratios.sh [BUILD_DIR] [RUNS]   (default: build 5)
# BENCH_ENGINE_ARGS (default "-t 1 -r 5") and BENCH_KVM_ARGS (default
# "-q -2") are passed to the benches.
set -eu

build=${1:-build}
runs=${2:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for b in bench_engine bench_kvm; do
	[ -x "$build/bench/$b" ] || { echo "$build/bench/$b not built" >&2; exit 1; }
done
echo "# $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(nproc) CPUs," \
	"load average before: $(cut -d' ' -f1-3 /proc/loadavg); $runs runs of each bench"
i=0
while [ "$i" -lt "$runs" ]; do
	# "zc 4096 adaptive/best 0.93" -> "sim zc-lazy 4096 0.93"
	"$build/bench/bench_engine" ${BENCH_ENGINE_ARGS:--t 1 -r 5} |
		awk '$3 == "adaptive/best" { print "sim", $1 "-lazy", $2, $4 }
		     $3 == "adaptive-eager/best" { print "sim", $1 "-eager", $2, $4 }' >>"$tmp/all"
	# part 2's table: bytes, burst copy/flip/adapt/ratio, zc copy/flip/adapt/ratio
	"$build/bench/bench_kvm" ${BENCH_KVM_ARGS:--q -2} |
		awk '$1 ~ /^[0-9]+$/ && NF >= 10 { print "kvm", "copy-lazy", $1, $5; print "kvm", "zc-lazy", $1, $9 }' >>"$tmp/all"
	i=$((i + 1))
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
median() {
	sort -n | awk '{ v[NR] = $1 } END { if (!NR) exit; if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf '%-8s %6s' backend bytes
for c in copy-lazy zc-lazy copy-eager zc-eager; do printf ' %10s' "$c"; done
printf ' %8s\n' lowest
for be in sim kvm; do
	for bytes in $(awk -v be="$be" '$1 == be { print $3 }' "$tmp/all" | sort -un); do
		printf '%-8s %6s' "$be" "$bytes"
		low=
		for c in copy-lazy zc-lazy copy-eager zc-eager; do
			m=$(awk -v be="$be" -v c="$c" -v b="$bytes" '$1 == be && $2 == c && $3 == b { print $4 }' "$tmp/all" | median)
			printf ' %10s' "${m:--}"
			if [ -n "$m" ]; then
				low=$(echo "$m ${low:-9}" | awk '{ print ($1 < $2) ? $1 : $2 }')
			fi
		done
		printf ' %8s\n' "$low"
	done
done
echo "(median over the runs of adaptive/best per comparison; lowest: the lowest median)"
