#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Static analysis of the library sources (src/): gcc 12's -fanalyzer and
clang's static analyzer (clang --analyze, the checkers scan-build runs).

Every finding is named by tool, file, function and checker. Each one must be
listed, with the reason it cannot happen, in the table of
docs/static-analysis.md; a finding that is not there fails the run (exit 1)
and is printed in full. A listed finding that no longer occurs is reported so
that its row can be removed, but does not fail the run.

usage: scripts/static-analysis.py [BUILD_DIR]   (default build-analysis)
"""
import collections
import json
import os
import plistlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, "docs", "static-analysis.md")
JOBS = min(2, os.cpu_count() or 1)


def configure(cc, build):
    """Configure the library alone with compiler cc; return its compile commands
    for the sources under src/."""
    subprocess.run(
        ["cmake", "-S", ROOT, "-B", build, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
         "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON", "-DVDEMUX_BUILD_TESTS=OFF",
         "-DVDEMUX_BUILD_EXAMPLES=OFF", "-DVDEMUX_BUILD_BENCH=OFF",
         "-DVDEMUX_BUILD_TOOLS=OFF", "-DVDEMUX_BUILD_DOCS=OFF",
         "-DVDEMUX_INSTALL=OFF", "-DVDEMUX_WERROR=OFF",
         # the checked _chk functions would hide calls from the analyzers
         "-DVDEMUX_HARDEN=OFF", "-DCMAKE_C_COMPILER=" + cc],
        check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(build, "compile_commands.json")) as f:
        cmds = json.load(f)
    src = os.path.join(ROOT, "src") + os.sep
    out = []
    for c in cmds:
        if not c["file"].startswith(src):
            continue
        args = shlex.split(c["command"])
        # drop the output: "-o FILE"
        i = args.index("-o")
        del args[i:i + 2]
        out.append((c["directory"], c["file"], args))
    return sorted(out, key=lambda x: x[1])


def rel(path):
    return os.path.relpath(os.path.realpath(path), ROOT)


GCC_FUNC = re.compile(r"^(\S+?): In function [‘'](\S+?)[’'][:,]$")
GCC_WARN = re.compile(r"^(\S+?):(\d+):\d+: warning: (.*) \[(-Wanalyzer-[\w-]+)\]$")


def gcc_one(job):
    directory, path, args = job
    p = subprocess.run(args + ["-fanalyzer", "-o", os.devnull], cwd=directory,
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("gcc -fanalyzer failed on %s:\n%s" % (rel(path), p.stderr))
    found, func = [], {}
    lines = p.stderr.splitlines()
    for i, line in enumerate(lines):
        m = GCC_FUNC.match(line)
        if m:
            func[rel(m.group(1))] = m.group(2)
            continue
        m = GCC_WARN.match(line)
        if m:
            f = rel(m.group(1))
            key = ("gcc", f, func.get(f, "?"), m.group(4))
            found.append((key, "%s:%s: %s" % (f, m.group(2), m.group(3)), p.stderr))
    return found


def clang_one(job, outdir):
    directory, path, args = job
    plist = os.path.join(outdir, rel(path).replace(os.sep, "_") + ".plist")
    p = subprocess.run(args[:1] + ["--analyze", "-Xclang", "-analyzer-output=plist-multi-file"]
                       + args[1:] + ["-o", plist],
                       cwd=directory, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("clang --analyze failed on %s:\n%s" % (rel(path), p.stderr))
    if not os.path.exists(plist):
        return []
    with open(plist, "rb") as f:
        data = plistlib.load(f)
    files = data.get("files", [])
    found = []
    for d in data.get("diagnostics", []):
        loc = d["location"]
        f = rel(os.path.join(directory, files[loc["file"]]))
        key = ("clang", f, d.get("issue_context", "?"), d["check_name"])
        found.append((key, "%s:%d: %s" % (f, loc["line"], d["description"]), p.stderr))
    return found


def reviewed():
    """The findings listed in docs/static-analysis.md: table rows whose first
    cell is gcc or clang: | tool | file | function | checker | why |"""
    rows = collections.Counter()
    with open(DOC) as f:
        for line in f:
            cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            if len(cells) >= 5 and cells[0] in ("gcc", "clang"):
                if not cells[4]:
                    sys.exit("%s: a row without its reason: %s" % (rel(DOC), line.strip()))
                rows[tuple(cells[:4])] += 1
    return rows


def main():
    build = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build-analysis")
    gcc_jobs = configure("gcc", os.path.join(build, "gcc"))
    clang_jobs = configure("clang", os.path.join(build, "clang"))
    plists = tempfile.mkdtemp(prefix="vdemux-analysis-")
    try:
        with ThreadPoolExecutor(JOBS) as ex:
            found = [x for r in ex.map(gcc_one, gcc_jobs) for x in r]
            found += [x for r in ex.map(lambda j: clang_one(j, plists), clang_jobs) for x in r]
    finally:
        shutil.rmtree(plists)

    allowed = reviewed()
    seen = collections.Counter()
    new = []
    for key, where, text in found:
        seen[key] += 1
        if seen[key] > allowed[key]:
            new.append((key, where, text))
    print("static analysis: %d files, gcc -fanalyzer and clang --analyze: %d findings, "
          "%d of them reviewed (docs/static-analysis.md)"
          % (len(gcc_jobs), len(found), len(found) - len(new)))
    for key in sorted(allowed):
        if seen[key] < allowed[key]:
            print("no longer found, remove its row from docs/static-analysis.md: | %s |"
                  % " | ".join(key))
    if new:
        for key, where, text in new:
            print("\nNEW FINDING | %s |\n  %s" % (" | ".join(key), where))
        printed = set()
        for key, where, text in new:
            if key[0] == "gcc" and text not in printed:
                printed.add(text)
                print(text)
        print("\n%d new finding(s): fix them, or if one cannot happen, add its row to "
              "docs/static-analysis.md saying why" % len(new))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
