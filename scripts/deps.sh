#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what is missing (Debian 12, as root), with apt-get.
#
# usage: scripts/deps.sh [--build | --full]
#   --build  what configuring and building the tree with its defaults needs
#            (the library, examples, tools, benchmarks and unit tests; the
#            optional parts whose dependencies are absent are skipped by
#            CMake): used by scripts/bootstrap.sh
#   --full   (default) also what every stage of scripts/test-all.sh needs:
#            clang, the sanitizer runtimes, valgrind, Doxygen, libpcap for
#            vdemux-replay, DPDK for bench_classifier, clang-format, and qemu,
#            a Debian kernel and the tools of the kernel lab
set -euo pipefail
build_pkgs=(build-essential cmake pkg-config libcmocka-dev)
test_pkgs=(
  clang libclang-rt-14-dev clang-format-14 valgrind doxygen graphviz python3
  libpcap-dev libdpdk-dev tcpdump iproute2
  qemu-system-x86 seabios ipxe-qemu linux-image-amd64 busybox-static cpio kmod xz-utils
)
case ${1:---full} in
--build) pkgs=("${build_pkgs[@]}") ;;
--full) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
*) echo "usage: $0 [--build | --full]" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "dependencies (${1:---full}): ok"
