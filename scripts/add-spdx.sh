#!/usr/bin/env bash
# Add "SPDX-License-Identifier: MIT" to every source file of the tree that
# does not have it in its first 3 lines (the files scripts/check-spdx.sh
# checks): as the first line, in the file's comment syntax, or right after a
# "#!" line. Files that have it are left alone, so running it twice changes
# nothing the second time.
#
# usage: scripts/add-spdx.sh [DIR]   (default: the tree this script is in)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${1:-$here/..}

n=0
while IFS= read -r f; do
  path=$root/$f
  case $f in
  *.c | *.h) line='/* SPDX-License-Identifier: MIT */' ;;
  *) line='# SPDX-License-Identifier: MIT' ;;
  esac
  tmp=$(mktemp "$path.XXXXXX")
  if head -n 1 -- "$path" | grep -q '^#!'; then
    { head -n 1 -- "$path"; printf '%s\n' "$line"; tail -n +2 -- "$path"; } >"$tmp"
  else
    { printf '%s\n' "$line"; cat -- "$path"; } >"$tmp"
  fi
  chmod --reference="$path" "$tmp"
  mv -- "$tmp" "$path"
  n=$((n + 1))
done < <("$here/check-spdx.sh" "$root" 2>/dev/null || true)
echo "SPDX line added to $n file(s)"
