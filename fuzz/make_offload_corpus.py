#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of offload_fuzzer: one input per kind of frame
(each GSO type over IPv4 and IPv6, with and without a VLAN tag, through
both receive paths), frames with one byte flipped, raw headers, and a
long run of mixed operations.

Operation format (see fuzz/offload_fuzzer.c): op byte (0 burst, 1 zero-copy,
2 raw, 3 drain); for 0 and 1: a (bit 0 IPv6, bit 1 UDP, bit 2 VLAN tag),
kind (GSO: 0 none, 1 TCP, 2 USO, 3 UFO, 4 TCP+ECN; bit 6: no NEEDS_CSUM),
actions (2 bits per VM), patches, payload (2 bytes), gso_size (2 bytes),
TCP flags, the patches (3 bytes each), then for 1 the offset byte.

usage: fuzz/make_offload_corpus.py   (writes fuzz/corpus/offload/)
"""
import random
import struct

from seedlib import write

def frame(op, a, kind, payload, mss, acts=0, flags=0x19, patches=(), off=22):
    b = bytes([op, a, kind, acts, len(patches)]) + struct.pack('>HH', payload, mss) + bytes([flags])
    for o, v in patches:
        b += struct.pack('>HB', o, v)
    if op == 1:
        b += bytes([off])
    return b


def main():
    seeds = {}
    names = {0: 'none', 1: 'tcp', 2: 'uso', 3: 'ufo', 4: 'tcp-ecn'}
    for kind, kname in names.items():
        for ipv in (4, 6):
            for vlan in (0, 4):
                for op in (0, 1):
                    a = (1 if ipv == 6 else 0) | vlan | (2 if kind in (2, 3) else 0)
                    path = 'burst' if op == 0 else 'zc'
                    name = '%s-v%d%s-%s' % (kname, ipv, '-vlan' if vlan else '', path)
                    seeds[name] = frame(op, a, kind, 20000 + kind * 7, 1448) + bytes([3])
    seeds['tcp-v4-64k'] = frame(0, 0, 1, 65436, 1448)
    seeds['tcp-v6-64k-zc'] = frame(1, 1, 1, 65400, 1440)
    seeds['tcp-one-segment'] = frame(0, 0, 1, 1000, 1448)
    seeds['tcp-mss-1-refused'] = frame(0, 0, 1, 5000, 1)
    seeds['tcp-mss-0-refused'] = frame(0, 0, 1, 5000, 0)
    seeds['tcp-no-needs-csum'] = frame(0, 0, 1 | 0x40, 5000, 1000)
    seeds['csum-udp-v6-strip'] = frame(0, 3, 0, 999, 0, acts=0b011001)
    seeds['tcp-push-to-all'] = frame(0, 4, 1, 9000, 1000, acts=0b101010)
    for i in range(6):
        seeds['flip-%d' % i] = frame(i % 2, i % 8, 1 + i % 4, 3000, 700, patches=[(i * 13 + 10, 0x40)])
    seeds['raw-header'] = bytes([2, 60]) + bytes([1, 1, 0, 0, 0xe8, 3, 34, 0, 16, 0]) + bytes(range(60))
    rnd = random.Random(7)
    run = b''
    for _ in range(20):
        op = rnd.choice((0, 1, 3))
        if op == 3:
            run += bytes([3])
        else:
            run += frame(op, rnd.randrange(8), rnd.randrange(6), rnd.randrange(30000),
                         rnd.choice((536, 1000, 1448, 9000)), acts=rnd.randrange(64))
    seeds['mixed-run'] = run
    write('offload', seeds)


if __name__ == '__main__':
    main()
