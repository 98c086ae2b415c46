#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""scripts/layers.py passes the tree as it is and fails each kind of breach:
run on a copy of src/ and docs/architecture.md with one breach put in.
usage: test_layers.py PROJECT_ROOT"""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../.."))
SCRIPT = os.path.join(ROOT, "scripts", "layers.py")


def copy_tree():
    d = tempfile.mkdtemp(prefix="layers-")
    shutil.copytree(os.path.join(ROOT, "src"), os.path.join(d, "src"))
    os.makedirs(os.path.join(d, "docs"))
    shutil.copy(os.path.join(ROOT, "docs", "architecture.md"), os.path.join(d, "docs"))
    return d


def run(root, *args):
    p = subprocess.run([sys.executable, SCRIPT, "--root", root, *args], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def append(root, rel, text):
    with open(os.path.join(root, "src", rel), "a", encoding="utf-8") as f:
        f.write(text)


def expect_failure(root, words):
    rc, out = run(root)
    assert rc != 0, "layers.py passed a tree it must fail:\n" + out
    assert words in out, "expected %r in:\n%s" % (words, out)


def test_the_tree_as_it_is_passes(root):
    rc, out = run(root)
    assert rc == 0, out


def test_a_call_back_up_a_floor_is_a_cycle(root):
    # diag is the bottom: a call from it into the pool closes a loop.
    append(root, "core/diag.c", '\n#include "core/pool.h"\n'
           "void vd_diag_x(struct vd_pool *pl);\n"
           "void vd_diag_x(struct vd_pool *pl) { vd_pool_put(pl, 0); }\n")
    append(root, "core/pool.c", '\n#include "core/diag.h"\n'
           "void vd_pool_x(struct vdemux_engine *e);\n"
           "void vd_pool_x(struct vdemux_engine *e) { vd_bad(e, 0); }\n")
    expect_failure(root, "call cycle among core/diag, core/pool")


def test_a_call_without_its_header_is_named(root):
    # rx.c reaches vd_tables_apply() only through engine.h's includes.
    append(root, "core/rx.c", "\nvoid vd_rx_x(struct vdemux_engine *e, struct vm *vm);\n"
           "void vd_rx_x(struct vdemux_engine *e, struct vm *vm)\n"
           "{ int err; vd_tables_apply(e, vm, VD_OP_MAP, &e->batch, 0, &err); }\n")
    expect_failure(root, "core/rx.c: vd_rx_x() calls vd_tables_apply() of core/tables.c without including")


def test_a_page_flag_written_outside_the_pool_is_named(root):
    append(root, "core/harvest.c", "\nvoid vd_harvest_x(struct vdemux_engine *e);\n"
           "void vd_harvest_x(struct vdemux_engine *e) { e->pool.pages[0].dirty = 0; }\n")
    expect_failure(root, "core/harvest.c:")


def test_a_stale_drawing_fails_and_write_redraws_it(root):
    append(root, "core/check.c", '\n#include "core/diag.h"\n'
           "void vd_check_x(struct vdemux_engine *e);\n"
           "void vd_check_x(struct vdemux_engine *e) { vd_bad(e, 0); }\n")
    expect_failure(root, "the drawing differs from the code")
    rc, out = run(root, "--write")
    assert rc == 0, out
    rc, out = run(root)
    assert rc == 0, out


def test_a_file_missing_from_the_module_map_is_named(root):
    with open(os.path.join(root, "src", "core", "newmod.c"), "w", encoding="utf-8") as f:
        f.write("int vd_newmod(void);\nint vd_newmod(void) { return 0; }\n")
    run(root, "--write")
    expect_failure(root, "the module map does not name core/newmod.c")


def main():
    tests = [v for k, v in sorted(globals().items()) if k.startswith("test_")]
    for t in tests:
        root = copy_tree()
        try:
            t(root)
        finally:
            shutil.rmtree(root)
        print("ok   " + t.__name__)
    print("%d tests passed" % len(tests))


if __name__ == "__main__":
    main()
