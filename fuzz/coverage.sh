#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Line and region coverage of the frame-spreading and chain-walking code
# (rx.c, plan.c, deliver.c, frame.c, vring.c, vnet_rx.c) reached by the fuzz corpora:
# the replay programs are built with clang's source-based coverage, each
# corpus is run through its target, and llvm-cov reports the functions.
#
# With SECONDS > 0, each of the engine, vring and vnet targets is first
# fuzzed for SECONDS (libFuzzer, same flags plus -fsanitize=fuzzer) into a
# scratch corpus, which is replayed with the seeds.
#
# usage: fuzz/coverage.sh [SECONDS]      (default 0: the seed corpora only)
# env:   VDEMUX_COV_BUILD (default build-cov), LLVM_SUFFIX (default -14)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-0}
build=${VDEMUX_COV_BUILD:-build-cov}
sfx=${LLVM_SUFFIX:--14}
profdata=llvm-profdata$sfx
cov=llvm-cov$sfx
jobs=$(( $(nproc) < 2 ? $(nproc) : 2 ))
flags="-fprofile-instr-generate -fcoverage-mapping"
targets="engine vring vnet"
files="src/core/rx.c src/core/plan.c src/core/deliver.c src/core/frame.c src/virtio/vring.c src/virtio/vnet_rx.c"
funcs='^(vdemux_rx_submit|bufs_validate|vdemux_rx_alloc|vdemux_rx_burst|frames_validate|vd_plan_delivery|delivery_obstacle|classify_pages|vd_deliver_frame|vd_frame_out_len|vd_frame_emit|src_read|walk|vd_vring_pop|vd_vring_create|vd_vnet_rx_classify|big_pages|big_shape)$'

CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS="$flags" \
  -DVDEMUX_BUILD_TESTS=ON -DVDEMUX_KERNEL_TESTS=OFF -DVDEMUX_BUILD_EXAMPLES=OFF \
  -DVDEMUX_BUILD_BENCH=OFF -DVDEMUX_BUILD_TOOLS=OFF -DVDEMUX_BUILD_FUZZ=$([ "$seconds" -gt 0 ] && echo ON || echo OFF) \
  >/dev/null
for t in $targets; do
  cmake --build "$build" -j"$jobs" --target "${t}_fuzz_replay" >/dev/null
  [ "$seconds" -gt 0 ] && cmake --build "$build" -j"$jobs" --target "${t}_fuzzer" >/dev/null
done

prof="$build/cov"
rm -rf "$prof"
mkdir -p "$prof"
for t in $targets; do
  dirs="fuzz/corpus/$t"
  if [ "$seconds" -gt 0 ]; then
    mkdir -p "$prof/corpus-$t"
    LLVM_PROFILE_FILE="$prof/fuzz-$t-%p.profraw" "$build/fuzz/${t}_fuzzer" \
      -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$prof/" \
      "$prof/corpus-$t" "fuzz/corpus/$t" 2>"$prof/fuzz-$t.log" || true
    rm -f "$prof"/fuzz-$t-*.profraw
    grep -E '^stat::(number_of_executed_units|new_units_added)' "$prof/fuzz-$t.log" | sed "s/^/$t: /" || true
    dirs="$dirs $prof/corpus-$t"
  fi
  LLVM_PROFILE_FILE="$prof/$t.profraw" "$build/fuzz/${t}_fuzz_replay" $dirs >/dev/null 2>&1
  $profdata merge -sparse "$prof/$t.profraw" -o "$prof/$t.profdata"
done
$profdata merge -sparse "$prof"/*.profraw -o "$prof/all.profdata"

objs=""
for t in $targets; do objs="${objs:+$objs -object }$build/fuzz/${t}_fuzz_replay"; done
# Per function, over the three targets together: regions, lines and
# branches covered / present.
# shellcheck disable=SC2086
$cov report --show-functions -instr-profile="$prof/all.profdata" $objs $files 2>/dev/null |
  awk -v re="$funcs" '{ n = $1; sub(/^[a-z_]+\.c:/, "", n) }
    n ~ re { printf "%-20s regions %4d/%-4d %8s   lines %4d/%-4d %8s   branches %4d/%-4d %8s\n",
             n, $2 - $3, $2, $4, $5 - $6, $5, $7, $8 - $9, $8, $10 }'
echo "per file (regions / lines):"
# shellcheck disable=SC2086
$cov report -instr-profile="$prof/all.profdata" $objs $files 2>/dev/null |
  awk '$1 ~ /\.c$/ || $1 == "TOTAL" { printf "%-24s regions %8s   lines %8s   branches %8s\n", $1, $4, $10, $13 }'
