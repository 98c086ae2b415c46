#!/bin/sh
# SPDX-License-Identifier: MIT
# Draw ns per frame of copy-only, flip-only and the adaptive policy against
# frame size, on both receive paths, for the simulated backend
# (bench_engine) and the KVM backend (bench_kvm, part 2), as
# docs/copy-flip-sim.svg and docs/copy-flip-kvm.svg. Each run's table and
# load average go to docs/copy-flip-*.txt beside the plot.
#
# Usage: scripts/plot-copy-flip.sh [BUILD_DIR]   (default: build)
# Needs gnuplot (Debian: gnuplot-nox) and the benches built:
#   cmake --build build -j2 --target bench_engine bench_kvm
# BENCH_ENGINE_ARGS (default "-t 0.5 -r 5") and BENCH_KVM_ARGS (default
# "-q -2") are passed to the benches.
set -eu

build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
docs=$top/docs
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

command -v gnuplot >/dev/null || { echo "gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
for b in bench_engine bench_kvm; do
	[ -x "$build/bench/$b" ] || { echo "$build/bench/$b not built" >&2; exit 1; }
done

machine() {
	printf '%s, %s CPUs, load average %s' \
		"$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)" "$(nproc)" \
		"$(cut -d' ' -f1-3 /proc/loadavg)"
}

# --- simulated backend -------------------------------------------------------
"$build/bench/bench_engine" ${BENCH_ENGINE_ARGS:--t 0.5 -r 5} >"$tmp/sim.txt"
{ echo "# $(machine)"; cat "$tmp/sim.txt"; } >"$docs/copy-flip-sim.txt"
# columns: bytes copy flip adaptive (ns per frame), one file per path
for path in copy zc; do
	awk -v path="$path" '
		$1 == path && ($3 == "copy" || $3 == "flip" || $3 == "adaptive") { ns[$2, $3] = $5; seen[$2] = 1 }
		END { for (b in seen) print b, ns[b, "copy"], ns[b, "flip"], ns[b, "adaptive"] }' \
		"$tmp/sim.txt" | sort -n >"$tmp/sim-$path.dat"
done

# --- KVM backend ----------------------------------------------------------------
"$build/bench/bench_kvm" ${BENCH_KVM_ARGS:--q -2} >"$tmp/kvm.txt"
{ echo "# $(machine)"; cat "$tmp/kvm.txt"; } >"$docs/copy-flip-kvm.txt"
awk '/^Part 2/ { p = 1 } p && $1 ~ /^[0-9]+$/ && NF >= 10 { print $1, $2, $3, $4 }' "$tmp/kvm.txt" >"$tmp/kvm-copy.dat"
awk '/^Part 2/ { p = 1 } p && $1 ~ /^[0-9]+$/ && NF >= 10 { print $1, $6, $7, $8 }' "$tmp/kvm.txt" >"$tmp/kvm-zc.dat"

plot() { # backend title
	gnuplot <<EOF
set terminal svg size 1000,460 dynamic font "sans,11"
set output "$docs/copy-flip-$1.svg"
set multiplot layout 1,2 title "$2 - $(machine)"
set logscale xy
set xlabel "frame size (bytes)"
set ylabel "ns per frame"
set key top left
set grid
set xtics ("64" 64, "512" 512, "1500" 1500, "4K" 4096, "9000" 9000, "16K" 16384, "64K" 65536)
set title "copy-in path (vdemux_rx_burst)"
plot "$tmp/$1-copy.dat" u 1:2 w lp t "copy only", "" u 1:3 w lp t "flip only", "" u 1:4 w lp lw 2 t "adaptive"
set title "zero-copy path (vdemux_rx_alloc + rx_submit)"
plot "$tmp/$1-zc.dat" u 1:2 w lp t "copy only", "" u 1:3 w lp t "flip only", "" u 1:4 w lp lw 2 t "adaptive"
unset multiplot
EOF
}
plot sim "simulated backend (bench_engine)"
plot kvm "KVM backend (bench_kvm, no vCPU)"
echo "wrote $docs/copy-flip-sim.svg $docs/copy-flip-kvm.svg (tables: docs/copy-flip-*.txt)"
