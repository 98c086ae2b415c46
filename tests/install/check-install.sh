#!/usr/bin/env bash
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

for h in "$prefix"/include/vdemux/*.h; do
  echo "#include <vdemux/$(basename "$h")>" > "$work/h.c"
  cc -std=c11 -Wall -Wextra -Werror -pedantic -I"$prefix/include" -fsyntax-only "$work/h.c"
  c++ -std=c++11 -Wall -Wextra -Werror -I"$prefix/include" -fsyntax-only -x c++ "$work/h.c"
done
echo "headers: ok as C11 and C++11, each on its own"
