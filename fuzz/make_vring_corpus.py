#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpus of vring_fuzzer: one input per behaviour of the
queue (normal traffic, indirect tables, each hostile case, interrupt and
kick decisions, reset), in the format read by fuzz/vring_fuzzer.c:

  8 header bytes: log2 queue size; features (1 EVENT_IDX, 2 INDIRECT_DESC,
  4 VERSION_1, 8 MRG_RXBUF, 0x10 not write-only, 0x20/0x40/0x80 misalign
  desc/avail/used by header byte 5); desc, avail, used GPA / 128; misalign
  bits; RX window (0x80 | first page); window pages - 1.
  1 byte: number of operations, then 4 bytes each (opcode % 12, a, b, c).
  The rest: the guest memory image from GPA 0.
  Queues of more than 64 entries (log2 size 7 .. 15) have a legacy layout
  from the desc address, then an indirect table's room, then the buffers.

Also the limits-mode seeds of vnet_fuzzer (fuzz/corpus/vnet/limits-*; the
other vnet seeds are not written here): 4 header bytes (layout | 0x80:
0 mergeable, 1 big, 2 small; log2 queue size - 1; features 1 VERSION_1,
2 EVENT_IDX, 4 INDIRECT_DESC, bits 3-5 big-packet pages (0: 18, 1: 31,
2: 32, 3: 33, 4: 35), 0x40 max_frame 65540; copy policy), then operations
of 4 bytes (op % 10, a, b, c), a frame operation one more (the offset);
operation 9 posts a hostile chain (a odd: indirect; b: 63, 64, 65 or
queue-size descriptors; c: the head).

usage: fuzz/make_vring_corpus.py   (writes fuzz/corpus/vring/, fuzz/corpus/vnet/limits-*)
"""
import random
import struct

from seedlib import F_IND, F_NEXT, F_WRITE, desc, write

EVT, IND, V1, MRG, RW = 1, 2, 4, 8, 0x10
POP, PUSH, PUBLISH, NOTIFY, KICK, POST, REWRITE, RESET, LONG, TABLE = 0, 2, 3, 4, 5, 6, 8, 9, 10, 11
# LONG (c % 4): 0 size descriptors, 1 size - 1, 2 any, 3 size + 1 (a loop)
# TABLE (c % 4): 0 size entries, 1 size + 1, 2 size - 1, 3 any; c & 4 longest lengths
# POP on a queue of more than 64 (a % 4): 0 array of size, 1 size - 1, 2 size + 1
WHOLE, NEXT = 0x40, 0x80

# Rings of the default queue: desc at 0, avail at 0x100, used at 0x200.
DESC, AVAIL, USED = 0, 0x100, 0x200


def header(qlog=3, feats=V1 | EVT, desc=DESC, avail=AVAIL, used=USED, mis=0, win=0, winlen=0):
    return bytes([qlog, feats, desc // 128, avail // 128, used // 128, mis, win, winlen])


def op(code, a=0, b=0, c=0):
    return bytes([code, a, b, c])


def inp(hdr, ops, image=b''):
    return hdr + bytes([len(ops)]) + b''.join(ops) + image


def image(pokes, size=0x8000):
    m = bytearray(size)
    for at, b in pokes:
        m[at:at + len(b)] = b
    while m and m[-1] == 0:
        m.pop()
    return bytes(m)


def avail(idx, heads):
    return struct.pack('<HH', 0, idx) + b''.join(struct.pack('<H', h) for h in heads)


def post(i, page, length=WHOLE, nxt=False, force_avail=False, indirect=False):
    # page: GPA / 128; an odd one also ends the chain (force_avail)
    a = i | (0xc0 if indirect else 0)
    b = page | (1 if force_avail else 0)
    return op(POST, a, b, length | (NEXT if nxt else 0))


seeds = {}
basic = [post(i, 32 * (i + 1)) for i in range(4)]
seeds['post-pop-push-publish-notify'] = inp(header(), basic + [op(POP, 7)] * 4 + [
    op(PUSH, i, 255, 0) for i in range(4)] + [op(PUBLISH), op(NOTIFY), op(KICK, 2), op(NOTIFY)])
seeds['no-event-idx-no-interrupt'] = inp(header(feats=V1), basic + [
    op(REWRITE, 1, 0, 1), op(POP, 7), op(PUSH, 0, 128, 0), op(PUBLISH), op(NOTIFY), op(KICK, 0), op(KICK, 2)])
seeds['chain-of-three'] = inp(header(), [post(0, 32, nxt=True), post(1, 64, nxt=True), post(2, 96),
                                         op(POP, 7), op(PUSH, 0, 200, 0), op(PUBLISH)])
# big layout through an indirect table at 0x800: header, rest of page, 2 pages
table = desc(0x2000, 12, F_WRITE | F_NEXT, 1) + desc(0x2020, 4064, F_WRITE | F_NEXT, 2) + \
    desc(0x3000, 4096, F_WRITE | F_NEXT, 3) + desc(0x6000, 4096, F_WRITE, 0)
seeds['indirect-big-layout'] = inp(header(feats=V1 | IND | EVT), [
    op(POST, 0xc0, 0x800 // 128, 1), op(POP, 7), op(PUSH, 0, 255, 0), op(PUBLISH), op(NOTIFY)],
    image([(0x800, table + desc(0, 0, 0) * 0)]))
seeds['indirect-nested'] = inp(header(feats=V1 | IND), [op(POST, 0xc0, 0x800 // 128, 1), op(POP, 7), op(PUBLISH)],
                               image([(0x800, desc(0x800, 16, F_IND))]))
seeds['indirect-len-24'] = inp(header(feats=V1 | IND), [op(POP, 7), op(PUBLISH)],
                               image([(DESC, desc(0x800, 24, F_IND)), (AVAIL, avail(1, [0])), (0x800, table)]))
seeds['indirect-without-feature'] = inp(header(), [op(POST, 0xc0, 0x800 // 128, 1), op(POP, 7), op(PUBLISH)],
                                        image([(0x800, table)]))
seeds['indirect-in-rx-window'] = inp(header(feats=V1 | IND, win=0x84, winlen=1), [
    op(POST, 0xc0, 0x4000 // 128, 1), op(POP, 7), op(PUBLISH)])
seeds['loop-of-two'] = inp(header(qlog=1), [post(0, 32, nxt=True), post(1, 65, nxt=True, force_avail=True),
                                           op(POP, 7), op(PUBLISH)])
seeds['self-loop-queue-of-one'] = inp(header(qlog=0), [post(0, 33, nxt=True, force_avail=True), op(POP, 0), op(PUBLISH)])
seeds['avail-idx-jump'] = inp(header(), basic + [op(REWRITE, 1, 2, 0x20), op(POP, 7), op(POP, 7), op(PUSH, 0, 1, 0),
                                                  op(RESET, 0x5a), op(POP, 7)])
seeds['head-out-of-range'] = inp(header(), [op(POP, 7)], image([(AVAIL, avail(1, [8]))]))
seeds['head-offered-twice'] = inp(header(), [op(POP, 7), op(POP, 7)],
                                  image([(DESC, desc(0x1000, 64, F_WRITE)), (AVAIL, avail(2, [0, 0]))]))
seeds['read-only-descriptor'] = inp(header(), [op(POP, 7), op(PUBLISH)],
                                    image([(DESC, desc(0x1000, 64, 0)), (AVAIL, avail(1, [0]))]))
seeds['read-after-write-any-queue'] = inp(header(feats=V1 | RW), [op(POP, 7), op(PUBLISH)],
                                          image([(DESC, desc(0x1000, 64, F_WRITE | F_NEXT, 1) + desc(0x2000, 64, 0)),
                                                 (AVAIL, avail(1, [0]))]))
seeds['buffer-over-rings'] = inp(header(), [post(0, 0, 1), post(1, 2, 1), post(2, 4, 1), op(POP, 7), op(PUBLISH)])
seeds['buffer-past-ram'] = inp(header(), [post(0, 255, WHOLE), op(POP, 7), op(PUBLISH)])
seeds['zero-length'] = inp(header(), [post(0, 32, 0), op(POP, 7), op(PUBLISH)])
seeds['next-out-of-range'] = inp(header(), [op(POP, 7), op(PUBLISH)],
                                 image([(DESC, desc(0x1000, 64, F_WRITE | F_NEXT, 9)), (AVAIL, avail(1, [0]))]))
seeds['caller-array-too-small'] = inp(header(), [post(0, 32, nxt=True), post(1, 64), op(POP, 0), op(PUBLISH)])
seeds['event-idx-used-event'] = inp(header(), basic + [op(REWRITE, 1, 22, 2)] + [op(POP, 7), op(PUSH, 0, 9, 0),
                                                                            op(PUBLISH), op(NOTIFY)] * 3)
seeds['avail-event-and-kicks'] = inp(header(), [op(KICK, 1, 3, 0), post(0, 32), op(KICK, 2), op(POP, 7), op(KICK, 2),
                                                op(KICK, 0)])
seeds['legacy-used-ring-aligned'] = inp(header(qlog=6, desc=0, avail=0x400, used=0x1000), [
    post(i, 40 + i) for i in range(8)] + [op(POP, 63)] * 8 + [op(PUSH, i, 100, 0) for i in range(8)] + [op(PUBLISH)])
seeds['misaligned-rings'] = inp(header(feats=V1 | 0xe0, mis=0x31), [op(POP, 7)])
seeds['guest-rewrites-between-calls'] = inp(header(feats=V1 | IND | EVT), basic + [
    op(REWRITE, 0, 3, 0xff), op(POP, 7), op(REWRITE, 1, 4, 0x07), op(POP, 7), op(REWRITE, 2, 2, 0),
    op(PUSH, 0, 50, 0), op(PUBLISH), op(POP, 7), op(PUBLISH)])

# The ring's limits: the largest queue (32768), chains as long as it,
# indirect tables of its size and one more, chains of more than UINT32_MAX
# bytes; and the same on a queue of 64 (the largest of the small layout).
Q15, Q6 = 15, 6
pop_whole = [op(POP, 0), op(PUSH, 0, 255, 0), op(PUBLISH), op(NOTIFY)]
seeds['ring-32768-chain-of-the-whole-table'] = inp(header(qlog=Q15, desc=0), [op(LONG, 0, 0, 0)] + pop_whole)
seeds['ring-32768-chain-of-32767-from-the-middle'] = inp(header(qlog=Q15, desc=0x100), [op(LONG, 0x40, 0, 1)] + pop_whole)
seeds['ring-32768-chain-into-an-array-one-short'] = inp(header(qlog=Q15), [op(LONG, 0, 0, 0), op(POP, 1), op(PUBLISH),
                                                                         op(LONG, 0, 0, 0), op(POP, 2), op(PUBLISH)])
seeds['ring-32768-chain-that-loops'] = inp(header(qlog=Q15), [op(LONG, 3, 7, 3), op(POP, 0), op(PUBLISH)])
seeds['ring-32768-indirect-of-32768'] = inp(header(qlog=Q15, feats=V1 | IND | EVT), [op(TABLE, 5, 0, 0)] + pop_whole)
seeds['ring-32768-indirect-of-32767'] = inp(header(qlog=Q15, feats=V1 | IND), [op(TABLE, 5, 1, 2), op(POP, 2),
                                                                             op(PUSH, 0, 255, 0x40), op(PUBLISH)])
seeds['ring-32768-indirect-of-32769-too-long'] = inp(header(qlog=Q15, feats=V1 | IND), [op(TABLE, 5, 0, 1), op(POP, 2),
                                                                                      op(PUBLISH)])
seeds['ring-32768-indirect-over-uint32-max-bytes'] = inp(header(qlog=Q15, feats=V1 | IND), [
    op(TABLE, 9, 0, 4), op(POP, 0), op(PUBLISH), op(TABLE, 9, 0, 4 | 3), op(POP, 0), op(PUSH, 0, 255, 0), op(PUBLISH)])
seeds['ring-32768-legacy-align-4-rx-window'] = inp(header(qlog=Q15, feats=V1 | IND | 0x80, win=0x82, winlen=3), [
    op(LONG, 0, 0, 2), op(POP, 3), op(TABLE, 1, 3, 3), op(POP, 0), op(PUSH, 0, 100, 0), op(PUBLISH), op(NOTIFY),
    op(KICK, 2), op(RESET, 0x5a), op(LONG, 0, 0, 0), op(POP, 0)])
seeds['ring-1024-limits-and-posts'] = inp(header(qlog=10, feats=V1 | IND | EVT), [
    post(i, 32 * (i + 1)) for i in range(4)] + [op(POP, 3)] * 4 + [op(LONG, 4, 0, 0), op(POP, 0), op(TABLE, 100, 0, 1),
                                                                  op(POP, 2), op(TABLE, 101, 0, 0), op(POP, 2)] +
    [op(PUSH, i, 255, 0) for i in range(6)] + [op(PUBLISH), op(NOTIFY)])
seeds['ring-64-chain-of-the-whole-table'] = inp(header(qlog=Q6, avail=0x400, used=0x1000), [
    op(LONG, 0, 0, 0), op(POP, 63), op(PUSH, 0, 255, 0), op(PUBLISH), op(LONG, 0, 0, 0), op(POP, 62), op(PUBLISH)])
seeds['ring-64-indirect-of-64-and-65'] = inp(header(qlog=Q6, feats=V1 | IND, avail=0x400, used=0x1000), [
    op(TABLE, 1, 0, 0), op(POP, 63), op(TABLE, 2, 0, 1), op(POP, 63), op(PUSH, 0, 255, 0), op(PUBLISH),
    op(TABLE, 3, 0, 4), op(POP, 63), op(TABLE, 4, 0, 8), op(POP, 63), op(PUBLISH)])

rnd = random.Random(1)
for k in range(6):
    ops = [bytes([rnd.randrange(10), rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)])
           for _ in range(rnd.randrange(10, 60))]
    seeds['random-%d' % k] = inp(header(qlog=rnd.randrange(7), feats=rnd.randrange(16)), ops)

write('vring', seeds)

# vnet_fuzzer, limits mode.
V_REFILL, V_RECV, V_KICK, V_FRAME, V_SCRIBBLE, V_OTHER, V_RESET, V_NEEDS, V_HOSTILE = 0, 1, 2, 3, 5, 6, 7, 8, 9
H63, H64, H65, HQ = 0, 1, 2, 3  # V_HOSTILE b: chain of 63, 64, 65, queue-size descriptors
MRGL, BIGL, SMALLL = 0x80, 0x81, 0x82
F_V1, F_EVT, F_IND, F_65540 = 1, 2, 4, 0x40
TO_BCAST, TO_OTHER, TO_Q = 0, 1, 2
ZC = 4
L_MAX, L_MAX_M1, L_ANY = 0, 2 << 3, 3 << 3
O0, O32, O4095, O12 = 0, 1, 2, 3


def v_hdr(layout, qlog, feats, pages=0, policy=0):
    return bytes([layout, qlog - 1, feats | (pages << 3), policy])


def v_op(code, a=0, b=0, c=0):
    return bytes([code, a, b, c])


def v_frame(to, length=L_MAX, zc=False, off=O0, b=0):
    # a: destination | length selector | zero-copy; (219, 242): 1000 bytes
    return bytes([V_FRAME, to | length | (ZC if zc else 0), b, 0, off])


v_start = [v_op(V_REFILL), v_op(V_KICK)]
v_round = [v_op(V_RECV), v_op(V_REFILL), v_op(V_KICK)]
vnet_seeds = {
    'limits-big-ring-32768-longest-frames': v_hdr(BIGL, 15, F_V1 | F_EVT | F_IND | F_65540) + b''.join(
        v_start + [v_frame(TO_Q), v_frame(TO_Q, zc=True, off=O4095)] + v_round +
        [v_frame(TO_Q, L_MAX_M1, zc=True, off=O4095), v_frame(TO_BCAST, zc=True, off=O12)] + v_round +
        [v_op(V_OTHER)]),
    'limits-big-32-pages-flipped': v_hdr(BIGL, 8, F_V1 | F_EVT, pages=2) + b''.join(
        v_start + [v_frame(TO_Q), v_frame(TO_Q, zc=True, off=O4095), v_frame(TO_Q, L_MAX_M1)] + v_round),
    'limits-big-33-pages-copied': v_hdr(BIGL, 8, F_V1 | F_65540, pages=3) + b''.join(
        v_start + [v_frame(TO_Q), v_frame(TO_Q, zc=True, off=O4095), v_frame(TO_Q, L_ANY, b=77)] + v_round),
    'limits-big-31-pages-and-a-reset': v_hdr(BIGL, 6, F_V1 | F_IND, pages=1, policy=2) + b''.join(
        v_start + [v_frame(TO_Q, zc=True, off=O32), v_frame(TO_Q)] + v_round + [v_op(V_RESET)] + v_start +
        [v_frame(TO_Q, L_MAX_M1, zc=True, off=O4095)] + v_round),
    'limits-big-18-pages-as-linux-posts': v_hdr(BIGL, 8, F_V1 | F_EVT | F_65540, pages=0) + b''.join(
        v_start + [v_frame(TO_Q), v_frame(TO_Q, zc=True, off=O4095), v_frame(TO_Q, L_MAX_M1, zc=True, off=O12)] +
        v_round),
    'limits-big-35-pages-copied': v_hdr(BIGL, 7, F_V1 | F_65540, pages=4, policy=1) + b''.join(
        v_start + [v_frame(TO_Q), v_frame(TO_Q, zc=True, off=O4095)] + v_round),
    'limits-mergeable-ring-32768-longest-frames': v_hdr(MRGL, 15, F_V1 | F_EVT | F_65540) + b''.join(
        v_start + [v_frame(TO_Q), v_frame(TO_Q, zc=True, off=O4095), v_frame(TO_BCAST, L_MAX_M1)] + v_round +
        [v_op(V_OTHER), v_op(V_SCRIBBLE, 1, 0, 9), v_op(V_KICK), v_op(V_NEEDS)]),
    'limits-hostile-chains-of-63-64-65-descriptors': v_hdr(SMALLL, 8, F_V1 | F_IND) + b''.join(
        [v_op(V_HOSTILE, 0, H63, 200), v_op(V_KICK), v_frame(TO_Q, L_ANY, b=7),
         v_op(V_HOSTILE, 0, H64, 10), v_op(V_KICK), bytes([V_FRAME, 219, 242, 0, O0]),
         v_op(V_HOSTILE, 0, H65, 100), v_op(V_KICK), v_op(V_RECV)]),
    'limits-hostile-indirect-tables-of-64-65-and-queue-size': v_hdr(BIGL, 7, F_V1 | F_IND) + b''.join(
        [v_op(V_HOSTILE, 1, H64, 3), v_op(V_KICK), v_frame(TO_Q, L_MAX_M1),
         v_op(V_HOSTILE, 1, H65, 4), v_op(V_KICK), v_op(V_HOSTILE, 1, HQ, 5), v_op(V_KICK),
         v_op(V_HOSTILE, 0, HQ, 6), v_op(V_KICK), v_op(V_RECV), v_op(V_NEEDS)]),
    'limits-small-ring-4096-longest-frames': v_hdr(SMALLL, 12, F_V1 | F_65540, policy=1) + b''.join(
        v_start + [v_frame(TO_Q), bytes([V_FRAME, 219, 242, 0, O0]), bytes([V_FRAME, 219, 100, 0, O4095]),
                   v_frame(TO_Q, L_MAX_M1, zc=True, off=O4095)] + v_round),
}
write('vnet', vnet_seeds)
