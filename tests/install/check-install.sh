#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Check an installed libvdemux: usage: check-install.sh PREFIX
# Builds tests/install/outside.c with pkg-config (shared and static), with
# find_package(vdemux), and compiles every public header as C and as C++.
set -euo pipefail
prefix=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
libdir=$(dirname "$(find "$prefix" -name vdemux.pc | head -n1)")/..
libdir=$(cd "$libdir" && pwd)
export PKG_CONFIG_PATH="$libdir/pkgconfig"

# The library's hardening flags (VDEMUX_HARDEN) are its own: the package
# files give a program only the include path and the libraries.
if grep -rlE 'FORTIFY|stack-protector' "$libdir/pkgconfig/vdemux.pc" "$libdir/cmake/vdemux"; then
  echo "the package files pass the library's compile flags on" >&2
  exit 1
fi

cc $(pkg-config --cflags vdemux) -Wall -Wextra -Werror -o "$work/outside" "$here/outside.c" \
  $(pkg-config --libs vdemux)
LD_LIBRARY_PATH="$libdir" "$work/outside"
cc $(pkg-config --cflags vdemux) -o "$work/outside_static" "$here/outside.c" \
  $(pkg-config --libs --static vdemux | sed "s#-lvdemux#$libdir/libvdemux.a#")
"$work/outside_static"
echo "pkg-config: ok (shared and static)"

cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
LD_LIBRARY_PATH="$libdir" "$work/cmake/outside_cmake"
"$work/cmake/outside_cmake_static"
echo "find_package: ok"

# The umbrella header must not pull in the backend and classifier authors'
# headers (include/vdemux/sys/), which have a weaker stability promise.
if cc -E -I"$prefix/include" -x c - <<<'#include <vdemux/vdemux.h>' | grep -q 'vdemux/sys/'; then
  echo "vdemux.h includes a header of vdemux/sys/" >&2
  exit 1
fi
cmake -S "$here/embed" -B "$work/embed" -DVDEMUX_SOURCE_DIR="$(cd "$here/../.." && pwd)" >/dev/null
cmake --build "$work/embed" -j"$(nproc)" >/dev/null
"$work/embed/embedded"
echo "add_subdirectory: ok (the library alone)"

for h in "$prefix"/include/vdemux/*.h "$prefix"/include/vdemux/sys/*.h; do
  rel=${h#"$prefix/include/"}
  echo "#include <$rel>" > "$work/h.c"
  cc -std=c11 -Wall -Wextra -Werror -pedantic -I"$prefix/include" -fsyntax-only "$work/h.c"
  c++ -std=c++11 -Wall -Wextra -Werror -I"$prefix/include" -fsyntax-only -x c++ "$work/h.c"
done
echo "headers: ok as C11 and C++11, each on its own"
