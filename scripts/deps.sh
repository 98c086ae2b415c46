#!/usr/bin/env bash
# Install what building, testing and the kernel-lab tests need (Debian 12, as root).
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libcmocka-dev valgrind doxygen graphviz
  libpcap-dev libdpdk-dev tcpdump iproute2 python3
  qemu-system-x86 seabios ipxe-qemu linux-image-amd64 busybox-static cpio kmod xz-utils
)
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
echo "dependencies: ok"
