#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# On a fresh Debian 12 machine, as root: install what configuring the tree
# needs (scripts/deps.sh --build: a compiler, CMake, pkg-config, CMocka; the
# optional parts, such as vdemux-replay without libpcap, are skipped), build
# the library and examples/lifecycle in build/, and run it. The rest of the
# tree builds in the same directory: cmake --build build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target lifecycle
echo "--- examples/lifecycle ---"
build/examples/lifecycle
