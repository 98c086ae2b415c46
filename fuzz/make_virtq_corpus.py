#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of virtq_fuzzer: one input per behaviour of the
public queue (transmit chains, readable then writable, indirect tables,
malformed chains, a broken ring and its reset, interrupt and kick
requests), in the format read by fuzz/virtq_fuzzer.c:

  4 header bytes: log2 queue size; flags (1 EVENT_IDX, 2 INDIRECT_DESC,
  4 write-only); iovec room - 1; number of operations.
  Then 4 bytes per operation (opcode % 6, a, b, c): 0 pop, 1 push (a: head,
  bit 7: its whole writable length; b, c: length), 2 publish, 3 kick
  request (a & 1: on), 4 guest (a & 0x20: offer head a % size, flags
  a >> 6, buffer 2 pages + b * 64, length c; else write c at (a << 8 | b)),
  5 reset. The rest: the guest memory image from GPA 0.

usage: fuzz/make_virtq_corpus.py   (writes fuzz/corpus/virtq/)
"""
import struct

from seedlib import F_IND, F_NEXT, F_WRITE, put_desc, write

POP, PUSH, PUBLISH, KICK, GUEST, RESET = 0, 1, 2, 3, 4, 5
EVT, IND, WO = 1, 2, 4
DESC, AVAIL, USED = 0, 0x400, 0x1000
GMEM = 8 * 4096


def image(descs=(), avail=(), used_event=None, qs=16, avail_flags=0):
    m = bytearray(GMEM)
    for i, (addr, ln, fl, nx) in descs:
        put_desc(m, DESC + 16 * i, addr, ln, fl, nx)
    for k, h in enumerate(avail):
        struct.pack_into('<H', m, AVAIL + 4 + 2 * (k % qs), h)
    struct.pack_into('<HH', m, AVAIL, avail_flags, len(avail) & 0xffff)
    if used_event is not None:
        struct.pack_into('<H', m, AVAIL + 4 + 2 * qs, used_event)
    return m


def table(m, at, descs):
    for i, (addr, ln, fl, nx) in enumerate(descs):
        put_desc(m, at + 16 * i, addr, ln, fl, nx)


def inp(qlog, flags, room, ops, mem):
    h = bytes([qlog, flags, room - 1, len(ops)])
    return h + b''.join(bytes(o) for o in ops) + bytes(mem).rstrip(b'\0')


def offer(head, flags, b, ln):
    return (GUEST, 0x20 | (flags << 6) | head, b, ln)


def cases():
    buf = 0x2000
    yield 'tx-round-trip', inp(4, 0, 8, [
        offer(3, 0, 0, 60), (POP, 0, 0, 0), (PUSH, 0x83, 0, 0), (PUBLISH, 0, 0, 0),
        (KICK, 1, 0, 0), offer(4, 0, 1, 200), (POP, 0, 0, 0), (PUSH, 0x84, 0, 0),
        (PUBLISH, 0, 0, 0)], image())
    m = image([(1, (buf, 16, F_NEXT, 2)), (2, (buf + 0x100, 300, F_WRITE | F_NEXT, 5)),
               (5, (buf + 0x1000, 400, F_WRITE, 0))], [1])
    yield 'read-then-write', inp(4, 0, 8, [(POP, 0, 0, 0), (PUSH, 1, 2, 0x58), (PUSH, 0x81, 0, 0),
                                          (PUBLISH, 0, 0, 0)], m)
    m = image([(6, (0x3000, 48, F_IND, 0))], [6])
    table(m, 0x3000, [(buf, 10, F_NEXT, 1), (buf + 0x1000, 4096, F_WRITE | F_NEXT, 2),
                      (buf + 0x2000, 4096, F_WRITE, 0)])
    yield 'indirect', inp(4, IND, 8, [(POP, 0, 0, 0), (PUSH, 0x86, 0, 0), (PUBLISH, 0, 0, 0)], m)
    m = image([(1, (GMEM - 8, 16, 0, 0)), (2, (USED, 16, 0, 0)), (3, (buf, 16, F_NEXT, 4)),
               (4, (buf, 16, F_NEXT, 3)), (5, (buf, 0, 0, 0)), (7, (0x3000, 20, F_IND, 0)),
               (8, (buf, 16, F_WRITE | F_NEXT, 9)), (9, (buf, 16, 0, 0)), (0, (buf, 64, F_WRITE, 0))],
              [1, 2, 3, 5, 7, 8, 0])
    yield 'malformed', inp(4, IND, 8, [(POP, 0, 0, 0), (PUSH, 0x80, 0, 0), (PUBLISH, 0, 0, 0)], m)
    m = image([(0, (buf, 64, 0, 0))], [0, 0])
    yield 'head-twice-then-reset', inp(4, 0, 4, [(POP, 0, 0, 0), (POP, 0, 0, 0), (PUSH, 0x80, 0, 0),
                                                (PUBLISH, 0, 0, 0), (RESET, 0, 0, 0), offer(2, 0, 3, 9),
                                                (POP, 0, 0, 0)], m)
    m = image([], [])
    struct.pack_into('<H', m, AVAIL + 2, 40)
    yield 'avail-idx-jump', inp(4, 0, 4, [(POP, 0, 0, 0), (KICK, 1, 0, 0), (RESET, 0, 0, 0)], m)
    ops = []
    for i in range(12):
        ops += [offer(i % 16, 2, i, 100), (POP, 0, 0, 0), (PUSH, 0x80 | (i % 16), 0, 0), (PUBLISH, 0, 0, 0)]
    yield 'event-idx', inp(4, EVT, 4, ops + [(KICK, 1, 0, 0), (KICK, 0, 0, 0)], image(used_event=5))
    yield 'no-interrupt', inp(3, WO, 2, [offer(1, 2, 0, 50), offer(2, 0, 1, 50), (POP, 0, 0, 0),
                                         (PUSH, 0x81, 0, 0), (PUBLISH, 0, 0, 0), (KICK, 0, 0, 0),
                                         (GUEST, 0x04, 0x01, 0x55), (POP, 0, 0, 0)],
                                  image(avail_flags=1, qs=8))


if __name__ == '__main__':
    write('virtq', cases())
