#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Check that the C sources are formatted as .clang-format says: runs
# clang-format (14) --dry-run --Werror over every .c and .h file of src/,
# include/, examples/, tests/, bench/, fuzz/ and tools/, prints what it would
# change, and exits 1 if anything.
#
# To format a file: clang-format-14 -i FILE
# usage: scripts/check-format.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cf=$(command -v clang-format-14 || command -v clang-format || true)
if [ -z "$cf" ]; then
  echo "check-format.sh: clang-format not found (Debian: clang-format-14)" >&2
  exit 2
fi

# Files git tracks in a checkout, else every file in those directories.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -d '' files < <(git ls-files -z -- src include examples tests bench fuzz tools |
    grep -zE '\.[ch]$')
else
  mapfile -d '' files < <(find src include examples tests bench fuzz tools -type f \
    -name '*.[ch]' -print0 | sort -z)
fi
if ! "$cf" --dry-run --Werror "${files[@]}"; then
  echo "check-format.sh: files not formatted as .clang-format says (above)" >&2
  exit 1
fi
echo "format: ok (${#files[@]} files)"
