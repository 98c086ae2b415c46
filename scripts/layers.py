#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The library's layers, derived from its code.

Reads every .c and .h under src/, finds each function definition (and
whether it is static or an inline in a header), each call made inside a
function body and each #include "...", and builds two graphs:

- calls, between modules: a .c file and the .h of the same name are one
  module (core/pool.c and core/pool.h: core/pool), a file without such a
  partner is a module of its own (core/rx.c, core/ring.h); A -> B when a
  function of A calls a function defined in B (an inline function defined
  in a header is the header's);
- includes, between files: A -> B when A includes header B.

It fails when either graph has a cycle; when a file calls a function of
another module without including a header that declares it, itself or
through its own header (a file's includes say what it depends on); or when
a file other than the pool's writes a page's state or flags. It then draws
the call graph as floors (a module's floor is one above the highest floor
it calls; floor 0 calls nothing of the library) between the markers in
docs/architecture.md, and fails when that drawing does not match the code
or the module map above it leaves a file of the library out.

usage: scripts/layers.py [--write] [--root DIR]
  --write  rewrite the drawing in docs/architecture.md instead of checking it

A simple tokenizer, not a C parser: comments, strings and preprocessor
lines other than #include are skipped (so calls inside macro bodies are not
seen), and a definition is a name, a parenthesised list and a brace at file
scope. That fits this code base, which the checks keep simple.
"""
import argparse
import os
import re
import sys

KEYWORDS = {
    "if", "for", "while", "switch", "return", "sizeof", "do", "else", "case",
    "goto", "break", "continue", "default", "typedef", "struct", "union", "enum",
    "static", "inline", "const", "volatile", "extern", "register", "restrict",
    "void", "char", "short", "int", "long", "float", "double", "signed",
    "unsigned", "bool", "_Bool", "_Static_assert", "_Alignof", "_Alignas",
    "alignof", "alignas", "__attribute__", "__typeof__", "typeof", "asm",
    "__asm__", "_Generic", "offsetof", "va_arg", "va_start", "va_end",
}
BEGIN = "<!-- layers: drawn by scripts/layers.py from the code; do not edit -->"
END = "<!-- layers: end -->"
DOC = "docs/architecture.md"

TOKEN = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|->|\+\+|--|[{}()\[\];,=]|\S")


def strip(text):
    """Text without comments, string and character literals and
    preprocessor lines; returns it and the local includes."""
    includes = []
    out = []
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j) or " ")
            i = j
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" 0 ")
            i = j + 1
            at_line_start = False
            continue
        if c == "#" and at_line_start:
            j = i
            while True:  # the directive, with its continuation lines
                k = text.find("\n", j)
                if k < 0:
                    k = n
                    break
                if text[k - 1] != "\\":
                    break
                j = k + 1
            m = re.match(r'#\s*include\s*"([^"]+)"', text[i:k])
            if m:
                includes.append(m.group(1))
            out.append("\n")
            i = k + 1
            continue
        if c == "\n":
            at_line_start = True
        elif not c.isspace():
            at_line_start = False
        out.append(c)
        i += 1
    return "".join(out), includes


class Source:
    def __init__(self, rel, text):
        self.rel = rel
        body, self.includes = strip(text)
        self.tokens = TOKEN.findall(body)
        self.defs = {}      # name -> "static" | "extern" | "inline"
        self.decls = set()  # names declared (prototype or definition) here
        self.calls = []     # (caller, callee)
        self.parse()

    def parse(self):
        t = self.tokens
        depth = 0
        i = 0
        stmt_start = 0  # index of the first token of the file-scope declaration
        current = None  # function whose body is being read
        while i < len(t):
            tok = t[i]
            if tok == "{":
                if depth == 0 and current is None:
                    name = self.definition_name(stmt_start, i)
                    if name:
                        words = set(t[stmt_start:i])
                        kind = "static" if "static" in words else "extern"
                        if self.rel.endswith(".h") and "inline" in words:
                            kind = "inline"
                        self.defs[name] = kind
                        self.decls.add(name)
                        current = name
                depth += 1
            elif tok == "}":
                depth -= 1
                if depth == 0:
                    current = None
                    if i + 1 < len(t) and t[i + 1] == ";":
                        pass
                    stmt_start = i + 1
            elif tok == ";" and depth == 0:
                name = self.prototype_name(stmt_start, i)
                if name:
                    self.decls.add(name)
                stmt_start = i + 1
            elif depth > 0 and current and tok == "(" and i > 0:
                prev = t[i - 1]
                if re.match(r"[A-Za-z_]\w*$", prev) and prev not in KEYWORDS and \
                        not (i > 1 and t[i - 2] in (".", "->")):
                    self.calls.append((current, prev))
            i += 1

    def first_call_name(self, a, b):
        """The name before the first '(' at paren depth 0 in t[a:b]."""
        t = self.tokens
        for k in range(a, b):
            if t[k] == "(":
                if k > a and re.match(r"[A-Za-z_]\w*$", t[k - 1]) and t[k - 1] not in KEYWORDS:
                    return t[k - 1]
                return None
        return None

    def definition_name(self, a, b):
        t = self.tokens
        if b == 0 or t[b - 1] != ")" or "=" in t[a:b]:
            return None
        return self.first_call_name(a, b)

    def prototype_name(self, a, b):
        t = self.tokens
        words = t[a:b]
        if not words or words[0] in ("typedef", "_Static_assert") or "=" in words:
            return None
        return self.first_call_name(a, b)


def load(root):
    files = {}
    for d, _, names in os.walk(os.path.join(root, "src")):
        for f in sorted(names):
            if f.endswith((".c", ".h")):
                p = os.path.join(d, f)
                rel = os.path.relpath(p, os.path.join(root, "src"))
                with open(p, encoding="utf-8") as fh:
                    files[rel] = Source(rel, fh.read())
    return files


def closure(files, rel, seen=None):
    """Headers a file includes, directly or not."""
    seen = set() if seen is None else seen
    for h in files[rel].includes:
        if h in files and h not in seen:
            seen.add(h)
            closure(files, h, seen)
    return seen


def module(files, rel):
    """A .c and the .h of the same name are one module."""
    stem = rel[:-2]
    partner = stem + (".h" if rel.endswith(".c") else ".c")
    return stem if partner in files else rel


def resolve(files):
    """Call edges between modules: {(a, b): [(caller, callee), ...]}, and
    the calls whose callee's header the caller does not include."""
    extern = {}
    for rel, s in files.items():
        for name, kind in s.defs.items():
            if kind == "extern":
                extern.setdefault(name, []).append(rel)
    declared_in = {}
    for rel, s in files.items():
        if rel.endswith(".h"):
            for name in s.decls:
                declared_in.setdefault(name, set()).add(rel)
    edges, unincluded = {}, []
    for rel, s in files.items():
        reach = closure(files, rel)
        for caller, callee in s.calls:
            if callee in s.defs:
                continue  # its own function
            target = None
            for h in sorted(reach):
                if files[h].defs.get(callee) == "inline":
                    target = h
                    break
            if target is None and callee in extern:
                if len(extern[callee]) > 1:
                    sys.exit("layers: %s defined in %s" % (callee, ", ".join(extern[callee])))
                target = extern[callee][0]
            if target is None or module(files, target) == module(files, rel):
                continue  # not the library's (libc, a hook) or its module's own
            edges.setdefault((module(files, rel), module(files, target)), []).append(
                (caller, callee))
            direct = set(s.includes)
            own = rel[:-2] + ".h"
            if rel.endswith(".c") and own in files:
                direct |= {own} | set(files[own].includes)
            if not (declared_in.get(callee, set()) & direct) and \
                    not callee.startswith("vdemux_"):
                unincluded.append("%s: %s() calls %s() of %s without including %s" % (
                    rel, caller, callee, target,
                    " or ".join(sorted(declared_in.get(callee, {"a header declaring it"})))))
    return edges, unincluded


def cycles(nodes, succ):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(succ.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


# Page state and flags: written by the pool alone.
POOL_WRITE = re.compile(
    r"(pages\[[^;]*?\]\.|\bpg->)(state|lent|dirty|stale|vm_idx|slot)\s*(=(?!=)|\+\+|--|[-+|&^]=)")


def pool_writes(root, files):
    bad = []
    for rel in files:
        if rel in ("core/pool.c", "core/pool.h"):
            continue
        with open(os.path.join(root, "src", rel), encoding="utf-8") as fh:
            body, _ = strip(fh.read())
        for m in POOL_WRITE.finditer(body):
            line = body.count("\n", 0, m.start()) + 1
            bad.append("%s:%d: writes a page's %s outside the pool" % (rel, line, m.group(2)))
    return bad


def floors(nodes, succ):
    memo = {}

    def floor(v):
        if v not in memo:
            memo[v] = 1 + max((floor(w) for w in succ.get(v, ())), default=-1)
        return memo[v]

    return {v: floor(v) for v in nodes}


def drawing(files, edges):
    succ, pred = {}, {}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)
        pred.setdefault(b, set()).add(a)
    # Every module with a .c, and the headers whose inline functions others
    # call.
    nodes = {module(files, r) for r in files if r.endswith(".c")} | \
        {b for _, b in edges} | {a for a, _ in edges}
    fl = floors(nodes, succ)
    top = max(fl.values())
    lines = [BEGIN, "", "```"]
    lines.append("floor  module                calls (modules of the library)")
    for f in range(top, -1, -1):
        for v in sorted(n for n in nodes if fl[n] == f):
            callees = ", ".join(sorted(succ.get(v, ()), key=lambda w: (-fl[w], w))) or "-"
            lines.append("%5s  %-21s %s" % (f if v == min(n for n in nodes if fl[n] == f) else "",
                                             v, callees))
        lines.append("")
    lines[-1] = "```"
    lines += ["", "Called by (the modules that call each one):", ""]
    lines.append("| module | floor | called by |")
    lines.append("| --- | --- | --- |")
    for v in sorted(nodes, key=lambda n: (-fl[n], n)):
        lines.append("| `%s` | %d | %s |" % (
            v, fl[v], ", ".join("`%s`" % w for w in sorted(pred.get(v, ()))) or "the API only"))
    lines += ["", END]
    return "\n".join(lines) + "\n", nodes


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    files = load(root)
    edges, problems = resolve(files)

    call_succ = {}
    for a, b in edges:
        call_succ.setdefault(a, set()).add(b)
    for comp in cycles({module(files, r) for r in files}, call_succ):
        detail = ["%s -> %s: %s" % (a, b, ", ".join("%s()->%s()" % c for c in edges[(a, b)][:3]))
                  for (a, b) in sorted(edges) if a in comp and b in comp]
        problems.append("call cycle among %s:\n    %s" % (", ".join(comp), "\n    ".join(detail)))
    inc_succ = {r: {h for h in s.includes if h in files} for r, s in files.items()}
    for comp in cycles(files, inc_succ):
        problems.append("include cycle among %s" % ", ".join(comp))
    problems += pool_writes(root, files)
    if any(p.startswith("call cycle") for p in problems):
        for p in problems:
            print("layers: " + p, file=sys.stderr)
        return 1  # no floors to draw

    text, nodes = drawing(files, edges)
    doc_path = os.path.join(root, DOC)
    with open(doc_path, encoding="utf-8") as fh:
        doc = fh.read()
    if BEGIN not in doc or END not in doc:
        problems.append("%s: no drawing markers (%s ... %s)" % (DOC, BEGIN, END))
    else:
        head, rest = doc.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        new = head + text + "\n" + tail
        if args.write:
            if new != doc:
                with open(doc_path, "w", encoding="utf-8") as fh:
                    fh.write(new)
        elif new != doc:
            problems.append("%s: the drawing differs from the code (run scripts/layers.py --write)"
                            % DOC)
        # The hand-written module map must name every file of the library.
        for r in sorted(files):
            if r.endswith(".c") and r[:-2] not in head and os.path.basename(r) not in head:
                problems.append("%s: the module map does not name %s" % (DOC, r))
    for p in problems:
        print("layers: " + p, file=sys.stderr)
    if problems:
        return 1
    print("layers: %d files, %d call edges, no cycle; %s %s" % (
        len(files), len(edges), DOC, "written" if args.write else "matches the code"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
