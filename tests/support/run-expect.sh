#!/bin/sh
# SPDX-License-Identifier: MIT
# Run a program and check how it ends: its exit status, and what its output
# (stdout and stderr together) must and must not say. A sanitizer report in
# the output always fails.
#
# usage: run-expect.sh [-s STATUS] [-m REGEX]... [-x REGEX]... -- PROGRAM [ARG]...
#   -s STATUS  the exit status expected (default 0)
#   -m REGEX   a line of the output must match (grep -E); repeatable
#   -x REGEX   no line of the output may match; repeatable
set -u
status=0 must='' mustnot=''
nl='
'
while [ $# -gt 0 ]; do
  case $1 in
  -s) status=$2; shift 2 ;;
  -m) must="$must$2$nl"; shift 2 ;;
  -x) mustnot="$mustnot$2$nl"; shift 2 ;;
  --) shift; break ;;
  *) echo "run-expect.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$@" >"$out" 2>&1
rc=$?
cat "$out"
fail=0
if [ "$rc" -ne "$status" ]; then
  echo "run-expect.sh: exit status $rc, expected $status" >&2
  fail=1
fi
mustnot="${mustnot}ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer$nl"
printf '%s' "$must" | while IFS= read -r re; do
  grep -Eq -- "$re" "$out" || { echo "run-expect.sh: no line matches: $re" >&2; exit 1; }
done || fail=1
printf '%s' "$mustnot" | while IFS= read -r re; do
  if grep -Eq -- "$re" "$out"; then echo "run-expect.sh: a line matches: $re" >&2; exit 1; fi
done || fail=1
exit "$fail"
