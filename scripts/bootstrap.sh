#!/usr/bin/env bash
# On a fresh Debian 12 machine, as root: install what is missing, build, run the example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
echo "--- examples/lifecycle ---"
build/examples/lifecycle
