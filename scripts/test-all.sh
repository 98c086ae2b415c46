#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Check the layers of src/ (scripts/layers.py), the format and the license
# lines of every source file, then build and run every
# test: unit tests (gcc), the same under valgrind memcheck, an ASan+UBSan
# build, a ThreadSanitizer build of the multi-threaded tests, a clang
# build, the static analyzers, the kernel-lab tests (real KVM
# and VFIO under qemu), the fuzz corpus replay and a short fuzzing run, the
# API docs, and an outside program built against the installed library with
# pkg-config and with find_package.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
fuzz_seconds=${VDEMUX_FUZZ_SECONDS:-90}
scripts/deps.sh --full

step() { printf '\n=== %s ===\n' "$*"; }

# ctest, keeping count of what ran for the closing line.
total=0 skipped=0
run_ctest() {
  local log
  log=$(mktemp)
  ctest "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  total=$((total + $(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -n1)))
  skipped=$((skipped + $(grep -c '(Skipped)' "$log" || true)))
  rm -f "$log"
  return "$rc"
}

step "layers: no call or include cycle, includes match calls, drawing up to date"
python3 scripts/layers.py

step "format (.clang-format) and license lines (SPDX)"
scripts/check-format.sh
scripts/check-spdx.sh

step "gcc build, unit + kernel-lab tests + valgrind memcheck"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDEMUX_VALGRIND=ON >/dev/null
cmake --build build-test -j"$jobs"
run_ctest --test-dir build-test --output-on-failure -j"$jobs"
# The release build is hardened (VDEMUX_HARDEN): stack canaries, and glibc's
# checked functions (_FORTIFY_SOURCE) where an object's size is known.
for sym in __stack_chk_fail __memcpy_chk; do
  nm -D --undefined-only build-test/libvdemux.so | grep -qw "$sym" ||
    { echo "build-test/libvdemux.so does not call $sym: not hardened" >&2; exit 1; }
done

step "ASan + UBSan build: unit tests, fuzz corpora, pcap replays, examples"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVDEMUX_SANITIZE=ON -DVDEMUX_KERNEL_TESTS=OFF \
  -DVDEMUX_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
# The unit label takes in every fuzz target's corpus replay (fuzz/), the
# vdemux-replay captures (tools/) and the examples (examples/): make sure
# none of them dropped out of it.
for l in fuzz tools examples; do
  ctest --test-dir build-asan -N -L "^$l\$" | grep -q 'Total Tests: [1-9]' ||
    { echo "build-asan: no test labelled $l" >&2; exit 1; }
done
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_ctest --test-dir build-asan --output-on-failure -j"$jobs" -L unit

step "ThreadSanitizer build (clang): the tests of several threads at once"
# The shards' stress test (threads receiving, polling, adding and removing
# guests while another changes the classifier), the shards' and the
# classifier's unit tests, a guest's receive queues on two shards' threads:
# a data race fails the stage. Only their targets are built, so that the
# stage stays short.
CC=clang cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDEMUX_TSAN=ON \
  -DVDEMUX_KERNEL_TESTS=OFF -DVDEMUX_BUILD_BENCH=OFF -DVDEMUX_BUILD_EXAMPLES=OFF \
  -DVDEMUX_BUILD_TOOLS=OFF >/dev/null
cmake --build build-tsan -j"$jobs" --target core_test_shard core_test_shard_stress core_test_l2 \
  virtio_test_vnet_mq_shards
ctest --test-dir build-tsan -N -L '^stress$' | grep -q 'Total Tests: [1-9]' ||
  { echo "build-tsan: no test labelled stress" >&2; exit 1; }
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
  run_ctest --test-dir build-tsan --output-on-failure -j"$jobs" -L tsan

step "clang build (-Werror), unit tests"
CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVDEMUX_KERNEL_TESTS=OFF >/dev/null
cmake --build build-clang -j"$jobs"
run_ctest --test-dir build-clang --output-on-failure -j"$jobs" -L unit

step "static analysis of src/ (gcc -fanalyzer, clang --analyze): no finding unreviewed"
scripts/static-analysis.py build-analysis

if [ -x fuzz/run.sh ]; then
  step "fuzzing for ${fuzz_seconds}s"
  fuzz/run.sh "$fuzz_seconds"
fi

step "API reference (Doxygen, warnings are errors)"
cmake --build build-test --target docs

step "install, then build outside programs with pkg-config and find_package"
rm -rf "$root/_install"
cmake --install build-test --prefix "$root/_install" >/dev/null
tests/install/check-install.sh "$root/_install"

echo
echo "all test stages passed"
echo "ctest: $((total - skipped)) passed, 0 failed, $skipped skipped"
