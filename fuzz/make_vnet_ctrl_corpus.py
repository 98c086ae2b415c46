#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of vnet_ctrl_fuzzer: one input per kind of
command (pair count set, in range and out, receive mode, MAC tables, an
unserved class, malformed chains, a broken ring), in the format read by
fuzz/vnet_ctrl_fuzzer.c:

  4 header bytes: features (1 MQ, 2 CTRL_RX, 4 CTRL_RX_EXTRA, 8
  CTRL_MAC_ADDR, 16 GUEST_ANNOUNCE, 32 INDIRECT_DESC); max_pairs; log2
  queue size % 7; serve calls % 4 + 1. The rest: the guest memory image
  from GPA 0 (descriptors at 0, available ring at 0x400, used at 0x1000).

usage: fuzz/make_vnet_ctrl_corpus.py   (writes fuzz/corpus/vnet_ctrl/)
"""
import struct

from seedlib import F_NEXT, F_WRITE, put_desc, write

DESC, AVAIL = 0, 0x400
GMEM = 8 * 4096
MQ, RX, RX_EXTRA, MAC_ADDR, ANNOUNCE, IND = 1, 2, 4, 8, 16, 32
CMD, DATA, ACK = 0x2000, 0x2100, 0x3000
QLOG = 4


def image(cmds, avail_idx=None):
    """cmds: list of (class, command, data) posted as Linux does, or
    (descs...) raw chains as lists of (addr, len, flags)."""
    m = bytearray(GMEM)
    slot = 0
    heads = []
    for k, c in enumerate(cmds):
        base = k * 0x200
        if isinstance(c, tuple):
            cls, cmd, data = c
            m[CMD + base:CMD + base + 2] = bytes([cls, cmd])
            m[DATA + base * 2:DATA + base * 2 + len(data)] = data
            chain = [(CMD + base, 2, 0)]
            if data:
                chain.append((DATA + base * 2, len(data), 0))
            chain.append((ACK + k, 1, F_WRITE))
        else:
            chain = c
        heads.append(slot)
        for i, (addr, ln, fl) in enumerate(chain):
            nxt = slot + i + 1 if i + 1 < len(chain) else 0
            put_desc(m, DESC + 16 * (slot + i), addr, ln, fl | (F_NEXT if i + 1 < len(chain) else 0), nxt)
        slot += len(chain)
    for k, h in enumerate(heads):
        struct.pack_into('<H', m, AVAIL + 4 + 2 * k, h)
    struct.pack_into('<HH', m, AVAIL, 0, len(heads) if avail_idx is None else avail_idx)
    return m


def inp(features, max_pairs, calls, mem):
    return bytes([features, max_pairs, QLOG, calls - 1]) + bytes(mem).rstrip(b'\0')


def cases():
    le16 = lambda v: struct.pack('<H', v)
    yield 'pairs-set', inp(MQ, 4, 1, image([(4, 0, le16(2)), (4, 0, le16(4)), (4, 0, le16(1))]))
    yield 'pairs-out-of-range', inp(MQ, 4, 1, image([(4, 0, le16(0)), (4, 0, le16(5)),
                                                     (4, 0, b'\x02\x00\x00'), (4, 0, le16(2))]))
    yield 'pairs-without-mq', inp(RX, 8, 1, image([(4, 0, le16(2))]))
    yield 'rx-mode', inp(RX | RX_EXTRA, 1, 1, image([(0, 0, b'\x00'), (0, 1, b'\x01'),
                                                     (0, 5, b'\x01'), (0, 0, b'\x02')]))
    tables = struct.pack('<I', 2) + bytes(12) + struct.pack('<I', 1) + b'\x01\x00\x5e\x00\x00\x01'
    yield 'mac-table', inp(RX | MAC_ADDR | ANNOUNCE, 1, 1,
                           image([(1, 0, tables), (1, 0, tables[:-1]), (1, 1, b'\x02' * 6),
                                  (3, 0, b'')]))
    yield 'unserved', inp(MQ | RX, 2, 1, image([(2, 0, le16(5)), (4, 1, bytes(20)), (5, 0, bytes(8))]))
    yield 'malformed', inp(MQ, 2, 2, image([[(CMD, 4, 0)], [(CMD, 1, 0), (ACK, 1, F_WRITE)],
                                            [(GMEM - 1, 2, 0), (ACK, 1, F_WRITE)],
                                            [(CMD, 2, 0), (0x1000, 1, F_WRITE)]]))
    yield 'broken-ring', inp(MQ, 2, 2, image([(4, 0, le16(2))], avail_idx=40))


if __name__ == '__main__':
    write('vnet_ctrl', cases())
