#!/usr/bin/env bash
# Check that every source file of the tree (.c, .h, .sh, .py, .cmake,
# CMakeLists.txt) names its license, "SPDX-License-Identifier: MIT", in one
# of its first 3 lines. Prints the files that do not, and exits 1 if any.
# scripts/add-spdx.sh adds the line where it is missing.
#
# usage: scripts/check-spdx.sh [DIR]   (default: the tree this script is in)
set -euo pipefail
root=${1:-$(dirname "$0")/..}
cd "$root"

# The files: those git tracks in a checkout, else every file outside build
# and install directories.
list_files() {
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z -- '*.c' '*.h' '*.sh' '*.py' '*.cmake' '*CMakeLists.txt'
  else
    find . \( -name .git -o -name 'build*' -o -name '_build*' -o -name '_install' \) -prune -o \
      -type f \( -name '*.[ch]' -o -name '*.sh' -o -name '*.py' -o -name '*.cmake' \
      -o -name CMakeLists.txt \) -printf '%P\0' | sort -z
  fi
}

bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  if ! head -n 3 -- "$f" | grep -q 'SPDX-License-Identifier: MIT'; then
    echo "$f"
    bad=$((bad + 1))
  fi
done < <(list_files)
if ((bad)); then
  echo "$bad file(s) without 'SPDX-License-Identifier: MIT' in their first 3 lines" \
    "(scripts/add-spdx.sh adds it)" >&2
  exit 1
fi
