#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""ctest driver: vdemux-replay's errors name the file and line (or frame) and
exit non-zero; usage errors exit 2.

usage: check_errors.py VDEMUX_REPLAY WORK_DIR
"""
import os
import shutil
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))


def run(tool, *args):
    return subprocess.run([tool, *args], capture_output=True, text=True)


def main():
    tool, work = sys.argv[1:3]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cap = os.path.join(here, 'basic-v4.pcap')
    good = open(os.path.join(here, 'basic-v4.conf')).read()
    bad = 0

    def conf(name, text):
        p = os.path.join(work, name)
        with open(p, 'w') as f:
            f.write(text)
        return p

    cases = [
        ('unknown-directive.conf', good + 'bridge br0\n', good.count('\n') + 1, 'unknown directive'),
        ('bad-vid.conf', 'vm a vlan 4095 untagged\n', 1, 'vid 1..4094'),
        ('bad-mac.conf', '# comment\nvm a vlan 1 untagged\nvm a mac 02:00:00:00:0a vlan 1\n', 3, 'aa:bb'),
        ('not-member.conf', 'vm a vlan 1 untagged\n\nvm a mac 02:00:00:00:00:01 vlan 2\n', 3, 'not a member'),
        ('taken.conf', 'vm a vlan 1 untagged\nvm b vlan 1 untagged\nvm a mac 02:00:00:00:00:01 vlan 1\n'
                       'vm b mac 02:00:00:00:00:01 vlan 1\n', 4, 'already has'),
        ('group-as-mac.conf', 'vm a vlan 1 untagged\nvm a mac 01:00:5e:00:00:01 vlan 1\n', 2, 'invalid'),
        ('bad-proto.conf', 'vlan-protocol 802.1X\n', 1, '802.1Q or 802.1ad'),
        ('bad-tagging.conf', 'vm a vlan 1 trunk\n', 1, 'untagged|tagged'),
    ]
    for name, text, line, words in cases:
        p = conf(name, text)
        r = run(tool, p, cap)
        want = '%s:%d:' % (p, line)
        if r.returncode != 1 or want not in r.stderr or words not in r.stderr:
            print('FAIL: %s: exit %d, stderr %r (expected exit 1, "%s", "%s")' % (name, r.returncode, r.stderr, want, words))
            bad += 1

    # A damaged capture: the last record cut short.
    data = open(cap, 'rb').read()
    damaged = os.path.join(work, 'damaged.pcap')
    with open(damaged, 'wb') as f:
        f.write(data[:-10])
    r = run(tool, os.path.join(here, 'basic-v4.conf'), damaged)
    if r.returncode != 1 or 'damaged.pcap: frame 16:' not in r.stderr or not r.stdout.startswith('1 '):
        print('FAIL: damaged capture: exit %d, stderr %r' % (r.returncode, r.stderr))
        bad += 1
    # Not a capture at all.
    r = run(tool, os.path.join(here, 'basic-v4.conf'), os.path.join(here, 'basic-v4.conf'))
    if r.returncode != 1 or 'basic-v4.conf' not in r.stderr:
        print('FAIL: not a capture: exit %d, stderr %r' % (r.returncode, r.stderr))
        bad += 1
    # --help says all of it.
    r = run(tool, '--help')
    for words in ('usage: vdemux-replay', '<n> <verdict>', 'drop:<reason>', '--dump DIR', 'vlan-protocol',
                  'native-vlan', 'untagged|tagged', 'mcast', 'allmulti', 'default <name>', 'FILE:LINE'):
        if r.returncode != 0 or words not in r.stdout:
            print('FAIL: --help lacks "%s"' % words)
            bad += 1
    # Usage errors.
    for args in ([], ['only-one'], ['--bogus', 'a', 'b']):
        r = run(tool, *args)
        if r.returncode != 2 or 'usage:' not in r.stderr:
            print('FAIL: usage %r: exit %d' % (args, r.returncode))
            bad += 1
    if bad:
        return 1
    print('OK: every error case reported as expected')
    return 0


if __name__ == '__main__':
    sys.exit(main())
