#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of vnet_ctrl_fuzzer: one input per kind of
command (pair count set, in range and out, receive mode, MAC tables, an
unserved class, malformed chains, a broken ring, RSS and hash
configuration and their refusals), in the format read by
fuzz/vnet_ctrl_fuzzer.c:

  4 header bytes: features (1 MQ, 2 CTRL_RX, 4 CTRL_RX_EXTRA, 8
  CTRL_MAC_ADDR, 16 GUEST_ANNOUNCE, 32 INDIRECT_DESC, 64 RSS, 128
  HASH_REPORT); max_pairs; log2 queue size % 7; serve calls (bits 0-1, + 1)
  and the RSS limits (bits 2-3 table, 4-5 key, 6 two hash types only). The
  rest: the guest memory image from GPA 0 (descriptors at 0, available ring
  at 0x400, used at 0x1000, the frame whose queue is picked at 0x4000).

usage: fuzz/make_vnet_ctrl_corpus.py   (writes fuzz/corpus/vnet_ctrl/)
"""
import struct

from seedlib import F_NEXT, F_WRITE, put_desc, write

DESC, AVAIL = 0, 0x400
GMEM = 8 * 4096
MQ, RX, RX_EXTRA, MAC_ADDR, ANNOUNCE, IND, RSS, HASH = 1, 2, 4, 8, 16, 32, 64, 128
CMD, DATA, ACK, FRAME = 0x2000, 0x2100, 0x3000, 0x4000
# The key the published RSS verification values are computed with.
KEY = bytes.fromhex('6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa')
ALL_TYPES = 0x3f
QLOG = 4


def image(cmds, avail_idx=None, frame=b''):
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
    m[FRAME:FRAME + len(frame)] = frame
    return m


def rss(types, table, unclassified, max_tx_vq, key=KEY, mask=None):
    """A struct virtio_net_rss_config (mask: len(table) - 1 unless given)."""
    mask = len(table) - 1 if mask is None else mask
    return (struct.pack('<IHH', types, mask, unclassified) + struct.pack('<%dH' % len(table), *table)
            + struct.pack('<HB', max_tx_vq, len(key)) + key)


def hash_cfg(types, key=KEY, reserved=bytes(8)):
    """A struct virtio_net_hash_config."""
    return struct.pack('<I', types) + reserved + bytes([len(key)]) + key


def tcp4(proto=6):
    """An Ethernet frame: IPv4 66.9.149.187:2794 -> 161.142.100.80:1766."""
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0, 66, 9, 149, 187, 161, 142, 100, 80])
    return bytes(12) + b'\x08\x00' + ip + struct.pack('>HH', 2794, 1766) + bytes(16)


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
    table = [3, 1, 0, 2, 1, 3, 2, 0]
    yield 'rss-config', inp(MQ | RSS | HASH, 4, 1,
                            image([(4, 1, rss(ALL_TYPES, table, 2, 4)), (4, 0, le16(3)),
                                   (4, 1, rss(0x03, table[:4], 3, 2, key=KEY[:16]))], frame=tcp4()))
    good = rss(ALL_TYPES, table, 2, 4)
    yield 'rss-refused', inp(RSS, 4, 1,
                             image([(4, 1, rss(ALL_TYPES, table[:3], 0, 4)),          # 3 entries
                                    (4, 1, rss(ALL_TYPES, [4] + table[1:], 0, 4)),    # entry 4
                                    (4, 1, rss(ALL_TYPES, table, 4, 4)),              # unclassified 4
                                    (4, 1, rss(ALL_TYPES, table, 0, 0)),              # max_tx_vq 0
                                    (4, 1, rss(ALL_TYPES, table, 0, 5))], frame=tcp4(17)))  # max_tx_vq 5
    # Five chains of three descriptors fill a queue of 16: the rest in a second input.
    yield 'rss-refused-types-key-length', inp(RSS, 4, 1,
                                              image([(4, 1, rss(0x40, table, 0, 4)),  # IP_EX
                                                     (4, 1, rss(ALL_TYPES, table, 0, 4, key=KEY + b'\x01')),
                                                     (4, 1, good[:-1])], frame=tcp4(17)))
    yield 'rss-limits', bytes([RSS | HASH, 8, QLOG, 0x40 | 0x10 | 0x04]) + bytes(
        image([(4, 1, rss(0x03, table, 7, 8, key=KEY[:16])), (4, 1, rss(0x03, table * 2, 7, 8, key=KEY[:16])),
               (4, 1, rss(0x07, table, 7, 8, key=KEY[:16])), (4, 1, rss(0x03, table, 7, 8, key=KEY[:17]))],
              frame=tcp4())).rstrip(b'\0')
    arp = bytes(12) + b'\x08\x06' + bytes(28)
    yield 'hash-config', inp(MQ | HASH, 2, 1,
                             image([(4, 2, hash_cfg(ALL_TYPES)), (4, 2, hash_cfg(0x01, reserved=b'\x01' + bytes(7))),
                                    (4, 2, hash_cfg(0x100)), (4, 2, hash_cfg(ALL_TYPES)[:-1]),
                                    (4, 0, le16(2))], frame=arp))
    yield 'hash-config-with-rss', inp(RSS | HASH, 2, 1, image([(4, 2, hash_cfg(ALL_TYPES))], frame=tcp4()))


if __name__ == '__main__':
    write('vnet_ctrl', cases())
