#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Independent model of the L2 rules (docs/classifier.md), used to write what
vdemux-replay should print and what each VM should read back.

From CONFIG (vdemux-replay's format) and CAPTURE.pcap it writes
OUTDIR/verdicts.txt (the '<n> <verdict>' lines) and OUTDIR/<vm>.pcap (the
frames each VM receives, tags pushed, set or stripped as it should see them).
It shares no code with the library: lists are scanned one by one.

usage: expect.py CONFIG CAPTURE.pcap OUTDIR
"""
import os
import struct
import sys


def parse_config(path):
    cfg = {'proto': 0x8100, 'native': 1, 'vms': [], 'member': {}, 'mac': {},
           'mcast': {}, 'allmulti': set(), 'default': {}}

    def vm(name):
        if name not in cfg['vms']:
            cfg['vms'].append(name)
        return name

    def macb(s):
        return bytes(int(x, 16) for x in s.split(':'))

    for line in open(path):
        w = line.split('#')[0].split()
        if not w:
            continue
        if w[0] == 'vlan-protocol':
            cfg['proto'] = 0x88a8 if w[1].lower() == '802.1ad' else 0x8100
        elif w[0] == 'native-vlan':
            cfg['native'] = int(w[1])
        elif w[0] == 'default':
            cfg['default'][int(w[3])] = vm(w[1])
        elif w[0] == 'vm':
            n = vm(w[1])
            if w[2] == 'vlan':
                cfg['member'][(n, int(w[3]))] = w[4] == 'tagged'
            elif w[2] == 'mac':
                cfg['mac'][(macb(w[3]), int(w[5]))] = n
            elif w[2] == 'mcast':
                cfg['mcast'].setdefault((macb(w[3]), int(w[5])), []).append(n)
            elif w[2] == 'allmulti':
                cfg['allmulti'].add((n, int(w[4])))
    return cfg


def read_pcap(path):
    data = open(path, 'rb').read()
    magic = struct.unpack('<I', data[:4])[0]
    if magic in (0xa1b2c3d4, 0xa1b23c4d):
        e = '<'
    else:
        e = '>'
    nano = struct.unpack(e + 'I', data[:4])[0] == 0xa1b23c4d
    off = 24
    out = []
    while off < len(data):
        sec, frac, caplen, _ = struct.unpack(e + 'IIII', data[off:off + 16])
        off += 16
        out.append((sec, frac // 1000 if nano else frac, data[off:off + caplen]))
        off += caplen
    return out


def write_pcap(path, records):
    with open(path, 'wb') as f:
        f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65540, 1))
        for sec, usec, b in records:
            f.write(struct.pack('<IIII', sec, usec, len(b), len(b)) + b)


def link_local(dst, proto):
    if dst[:5] != b'\x01\x80\xc2\x00\x00':
        return False
    low = dst[5]
    if proto == 0x8100:
        return low <= 0x0f
    return 1 <= low <= 0x0a or low == 0x0e


def classify(cfg, f):
    """Returns ([(vm, bytes)], None) or ([], reason)."""
    proto = cfg['proto']
    if len(f) < 14:
        return [], 'malformed'
    tagged = False
    tci = 0
    vid = cfg['native']
    if struct.unpack('>H', f[12:14])[0] == proto:
        if len(f) < 18:
            return [], 'malformed'
        tagged = True
        tci = struct.unpack('>H', f[14:16])[0]
        if tci & 0xfff:
            vid = tci & 0xfff
    dst, src = f[0:6], f[6:12]
    if src[0] & 1 or src == bytes(6):
        return [], 'invalid-src'
    if dst[0] & 1 and link_local(dst, proto):
        return [], 'link-local'
    members = [n for (n, v) in cfg['member'] if v == vid]
    if dst == b'\xff' * 6:
        dest = members
    elif dst[0] & 1:
        dest = [n for n in members
                if n in cfg['mcast'].get((dst, vid), []) or (n, vid) in cfg['allmulti']]
        if members and not dest:
            return [], 'no-subscriber'
    else:
        owner = cfg['mac'].get((dst, vid)) or cfg['default'].get(vid)
        dest = [owner] if owner in members else []
        if members and not dest:
            return [], 'unknown-unicast'
    if not dest:
        return [], 'no-vlan-member'

    def edit(n):
        if cfg['member'][(n, vid)]:  # the VM wants the VLAN's tag
            new_tag = struct.pack('>HH', proto, (tci & 0xf000) | vid)
            if tagged:
                return f[:12] + new_tag + f[16:]
            return f[:12] + new_tag + f[12:]
        return f[:12] + f[16:] if tagged else f

    order = [n for n in cfg['vms'] if n in dest]
    return [(n, edit(n)) for n in order], None


def main():
    conf, cap, outdir = sys.argv[1:4]
    cfg = parse_config(conf)
    os.makedirs(outdir, exist_ok=True)
    got = {n: [] for n in cfg['vms']}
    lines = []
    for i, (sec, usec, f) in enumerate(read_pcap(cap), 1):
        dest, reason = classify(cfg, f)
        if reason:
            lines.append('%d drop:%s' % (i, reason))
        else:
            lines.append('%d %s' % (i, ','.join(n for n, _ in dest)))
            for n, b in dest:
                got[n].append((sec, usec, b))
    with open(os.path.join(outdir, 'verdicts.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    for n, recs in got.items():
        write_pcap(os.path.join(outdir, n + '.pcap'), recs)
    print('%s: %d frames, expected output in %s' % (cap, len(lines), outdir))


if __name__ == '__main__':
    main()
