#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ctest driver: run vdemux-replay --dump on a capture and compare its verdict
lines with EXPECTED/verdicts.txt and every DUMP/<vm>.pcap with
EXPECTED/<vm>.pcap, record by record (timestamp and every byte).

usage: check_replay.py VDEMUX_REPLAY CONFIG CAPTURE EXPECTED_DIR WORK_DIR
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from expect import read_pcap  # noqa: E402


def main():
    tool, conf, cap, expected, work = sys.argv[1:6]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    dump = os.path.join(work, 'dump')
    r = subprocess.run([tool, '--dump', dump, conf, cap], capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        print('FAIL: vdemux-replay exited with %d' % r.returncode)
        return 1
    out = r.stdout.split('\n\n')[0].strip().split('\n')
    want = open(os.path.join(expected, 'verdicts.txt')).read().strip().split('\n')
    bad = 0
    for i in range(max(len(out), len(want))):
        a = out[i] if i < len(out) else '<missing>'
        b = want[i] if i < len(want) else '<missing>'
        if a != b:
            print('FAIL: verdict line %d: got "%s", expected "%s"' % (i + 1, a, b))
            bad += 1
    names = sorted(f for f in os.listdir(expected) if f.endswith('.pcap'))
    got_names = sorted(f for f in os.listdir(dump) if f.endswith('.pcap'))
    if names != got_names:
        print('FAIL: dump files %s, expected %s' % (got_names, names))
        bad += 1
    for n in names:
        if n not in got_names:
            continue
        g = read_pcap(os.path.join(dump, n))
        w = read_pcap(os.path.join(expected, n))
        if len(g) != len(w):
            print('FAIL: %s: %d frames, expected %d' % (n, len(g), len(w)))
            bad += 1
            continue
        for k, (x, y) in enumerate(zip(g, w), 1):
            if x != y:
                print('FAIL: %s: frame %d differs (%d bytes, expected %d)' % (n, k, len(x[2]), len(y[2])))
                bad += 1
    if bad:
        return 1
    print('OK: %d verdicts and %d dumps match' % (len(want), len(names)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
