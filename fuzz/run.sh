#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Build the libFuzzer targets with clang and fuzz them for SECONDS in all
# (default 60), shared equally between the targets.
# New interesting inputs go to build-fuzz/corpus/<target> (the seed corpus in
# fuzz/corpus/<target> is only read); a crash is written as
# fuzz/crash-<sha1> and the run fails: add that file to fuzz/corpus/<target>
# as a regression input once fixed.
#
# usage: fuzz/run.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${VDEMUX_FUZZ_BUILD:-build-fuzz}
jobs=$(( $(nproc) < 2 ? $(nproc) : 2 ))

CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDEMUX_BUILD_FUZZ=ON \
  -DVDEMUX_BUILD_TESTS=OFF -DVDEMUX_BUILD_EXAMPLES=OFF -DVDEMUX_BUILD_BENCH=OFF \
  -DVDEMUX_BUILD_TOOLS=OFF >/dev/null
targets=$(sed -n 's/^set(VDEMUX_FUZZ_TARGETS \(.*\))$/\1/p' fuzz/CMakeLists.txt)
for t in $targets; do
  cmake --build "$build" -j"$jobs" --target "${t}_fuzzer"
done
ntargets=$(echo $targets | wc -w)
each=$(( seconds / ntargets > 0 ? seconds / ntargets : 1 ))
for t in $targets; do
  mkdir -p "$build/corpus/$t"
  echo "fuzzing $t for ${each}s"
  "$build/fuzz/${t}_fuzzer" -max_total_time="$each" -print_final_stats=1 \
    -artifact_prefix=fuzz/ "$build/corpus/$t" "fuzz/corpus/$t"
done
