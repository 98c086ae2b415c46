#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora of l2_fuzzer (one input per branch of the rules),
of l2_config_fuzzer (call sequences reaching every error and state), and the
limits-mode seeds of engine_fuzzer (fuzz/corpus/engine/limits-*: the
longest frames and chains, whole windows, bursts past the pool; the other
engine seeds are not written here).

Input format: byte 0 = uplink (bit 0: 0 802.1Q, 1 802.1ad) | capacity << 1
(7: full), then the frame. The names say what each input exercises against
the fixed configuration in l2_fuzzer.c.

usage: fuzz/make_corpus.py   (writes fuzz/corpus/l2/, fuzz/corpus/l2_config/ and fuzz/corpus/engine/limits-*)
"""
import struct
import sys

from seedlib import write

Q, AD = 0, 1
FULL = 7


def mac(s):
    return bytes(int(x, 16) for x in s.split(':'))


SRC = mac('02:00:00:00:00:99')
BC = mac('ff:ff:ff:ff:ff:ff')


def vm(n):
    return mac('02:00:00:00:00:%02x' % n)


def frame(dst, src=SRC, tags=(), ethertype=0x0800, payload=b'\x45' + bytes(45)):
    b = dst + src
    for tpid, tci in tags:
        b += struct.pack('>HH', tpid, tci)
    return b + struct.pack('>H', ethertype) + payload


def inp(uplink, f, cap=FULL):
    return bytes([uplink | (cap << 1)]) + f


seeds = {
    'empty-frame': inp(Q, b''),
    'short-13': inp(Q, frame(BC)[:13]),
    'min-14-broadcast-native': inp(Q, frame(BC)[:14]),
    'q-tag-truncated-16': inp(Q, frame(BC, tags=[(0x8100, 10)])[:16]),
    'ad-tag-truncated-17': inp(AD, frame(BC, tags=[(0x88a8, 10)])[:17]),
    'ad-tag-on-q-uplink-truncated-is-payload': inp(Q, frame(BC, tags=[(0x88a8, 10)])[:15]),
    'src-multicast': inp(Q, frame(vm(1), src=mac('01:00:5e:00:00:01'))),
    'src-broadcast': inp(Q, frame(vm(1), src=BC)),
    'src-zero': inp(AD, frame(vm(1), src=bytes(6))),
    'q-link-local-stp': inp(Q, frame(mac('01:80:c2:00:00:00'))),
    'q-link-local-0f-last': inp(Q, frame(mac('01:80:c2:00:00:0f'))),
    'q-link-local-10-passes-allmulti': inp(Q, frame(mac('01:80:c2:00:00:10'))),
    'ad-link-local-01-first': inp(AD, frame(mac('01:80:c2:00:00:01'))),
    'ad-link-local-0a-last': inp(AD, frame(mac('01:80:c2:00:00:0a'))),
    'ad-passes-0b-allmulti': inp(AD, frame(mac('01:80:c2:00:00:0b'))),
    'ad-passes-0f-allmulti': inp(AD, frame(mac('01:80:c2:00:00:0f'))),
    'q-link-local-0d-subscribed': inp(Q, frame(mac('01:80:c2:00:00:0d'), tags=[(0x8100, 20)])),
    'ad-link-local-0e-lldp': inp(AD, frame(mac('01:80:c2:00:00:0e'))),
    'ad-link-local-03': inp(AD, frame(mac('01:80:c2:00:00:03'), tags=[(0x88a8, 20)])),
    'ad-passes-0d-to-subscriber': inp(AD, frame(mac('01:80:c2:00:00:0d'), tags=[(0x88a8, 20)])),
    'ad-passes-00-no-subscriber': inp(AD, frame(mac('01:80:c2:00:00:00'), tags=[(0x88a8, 20)])),
    'unicast-native-untagged-member': inp(Q, frame(vm(1))),
    'unicast-native-tagged-member-push': inp(Q, frame(vm(2))),
    'unicast-tagged-member-keep': inp(Q, frame(vm(2), tags=[(0x8100, 0xa00a)])),
    'unicast-untagged-member-strip': inp(Q, frame(vm(3), tags=[(0x8100, 10)])),
    'unicast-priority-tagged-set': inp(Q, frame(vm(2), tags=[(0x8100, 0xe000)])),
    'unicast-priority-tagged-strip': inp(Q, frame(vm(1), tags=[(0x8100, 0x2000)])),
    'unicast-vlan-4094': inp(Q, frame(vm(5), tags=[(0x8100, 4094)])),
    'unicast-vid-4095-no-member': inp(Q, frame(vm(5), tags=[(0x8100, 4095)])),
    'unicast-qinq-inner-is-payload': inp(AD, frame(vm(4), tags=[(0x88a8, 20), (0x8100, 77)])),
    'unicast-c-tag-on-ad-uplink-is-payload': inp(AD, frame(vm(1), tags=[(0x8100, 10)])),
    'unicast-s-tag-on-q-uplink-is-payload': inp(Q, frame(mac('52:54:00:12:34:56'), tags=[(0x88a8, 20)])),
    'unknown-unicast-default-untagged': inp(Q, frame(vm(0x42), tags=[(0x8100, 10)])),
    'unknown-unicast-default-of-20': inp(AD, frame(vm(0x42), tags=[(0x88a8, 0x6014)])),
    'unknown-unicast-no-default': inp(Q, frame(vm(0x42))),
    'unknown-unicast-no-member-vlan': inp(Q, frame(vm(0x42), tags=[(0x8100, 30)])),
    'address-of-other-vlan-goes-default': inp(Q, frame(vm(3), tags=[(0x8100, 20)])),
    'broadcast-native': inp(Q, frame(BC)),
    'broadcast-10-tagged': inp(Q, frame(BC, tags=[(0x8100, 0x200a)])),
    'broadcast-priority-tagged': inp(AD, frame(BC, tags=[(0x88a8, 0xf000)])),
    'broadcast-no-member-vlan': inp(Q, frame(BC, tags=[(0x8100, 99)])),
    'broadcast-capacity-1': inp(Q, frame(BC), cap=1),
    'broadcast-capacity-0': inp(Q, frame(BC), cap=0),
    'multicast-subscriber-and-allmulti-once': inp(Q, frame(mac('01:00:5e:00:00:fb'))),
    'multicast-v6-all-nodes-10': inp(Q, frame(mac('33:33:00:00:00:01'), tags=[(0x8100, 10)])),
    'multicast-solicited-node-20': inp(AD, frame(mac('33:33:ff:00:00:04'), tags=[(0x88a8, 20)])),
    'multicast-allmulti-only': inp(Q, frame(mac('01:00:5e:7f:ff:fa'), tags=[(0x8100, 4094)])),
    'multicast-no-subscriber': inp(Q, frame(mac('01:00:5e:7f:ff:fa'), tags=[(0x8100, 20)])),
    'multicast-no-member-vlan': inp(Q, frame(mac('01:00:5e:00:00:fb'), tags=[(0x8100, 30)])),
    'arp-request-native': inp(Q, frame(BC, ethertype=0x0806, payload=bytes(28))),
    'jumbo-unicast': inp(Q, frame(vm(3), tags=[(0x8100, 10)], payload=bytes(9000))),
}



# l2_config_fuzzer: pairs of bytes, one call each.
# byte 0: op (value % 9) | VM index << 4; byte 1: VLAN (bits 0-1) | object (bits 2-4) | flag (bit 5)
JOIN, LEAVE, ADD_MAC, DEL_MAC, ADD_MC, DEL_MC, ALLMULTI, DEFAULT, REMOVE = range(9)


def call(op, vm, vlan=0, obj=0, flag=0):
    return bytes([op | ((vm - 1) << 4), vlan | (obj << 2) | (flag << 5)])


def calls(*cs):
    return b''.join(call(*c) for c in cs)


config_seeds = {
    'join-add-lookup': calls((JOIN, 1), (ADD_MAC, 1, 0, 0), (JOIN, 2, 0, 0, 1), (ADD_MAC, 2, 0, 1)),
    'not-member-then-member': calls((ADD_MAC, 1, 1, 0), (ADD_MC, 1, 1, 0), (ALLMULTI, 1, 1, 0, 1),
                                    (DEFAULT, 1, 1), (JOIN, 1, 1), (ADD_MAC, 1, 1, 0)),
    'taken-address': calls((JOIN, 1), (JOIN, 2), (ADD_MAC, 1, 0, 3), (ADD_MAC, 2, 0, 3), (DEL_MAC, 2, 0, 3),
                           (ADD_MAC, 2, 0, 3)),
    'table-full': calls((JOIN, 1), (JOIN, 1, 1), *[(ADD_MAC, 1, v, a) for v in (0, 1) for a in range(4)],
                        (ADD_MC, 1, 0, 0), (DEL_MAC, 1, 0, 0), (ADD_MC, 1, 0, 0)),
    'groups-allmulti-dedup': calls((JOIN, 1, 2), (JOIN, 2, 2, 0, 1), (JOIN, 3, 2), (ADD_MC, 1, 2, 1),
                                   (ADD_MC, 2, 2, 1), (ALLMULTI, 2, 2, 0, 1), (ALLMULTI, 3, 2, 0, 1),
                                   (DEL_MC, 2, 2, 1), (ALLMULTI, 2, 2, 0, 0), (DEL_MC, 1, 2, 1)),
    'rejoin-changes-tagging': calls((JOIN, 4, 3), (ADD_MAC, 4, 3, 5), (DEFAULT, 4, 3), (ALLMULTI, 4, 3, 0, 1),
                                    (JOIN, 4, 3, 0, 1), (JOIN, 4, 3, 0, 0)),
    'leave-and-remove': calls((JOIN, 5), (JOIN, 5, 1), (ADD_MAC, 5, 0, 2), (ADD_MAC, 5, 1, 2), (ADD_MC, 5, 1, 2),
                              (DEFAULT, 5, 1), (JOIN, 6, 1), (LEAVE, 5, 1), (LEAVE, 5, 1), (REMOVE, 5),
                              (ADD_MAC, 6, 0, 2), (JOIN, 5, 1), (ADD_MC, 5, 1, 2), (DEFAULT, 5, 1),
                              (REMOVE, 5)),
    'churn': calls(*[(JOIN, 1 + k % 6, k % 4, 0, k & 1) for k in range(12)],
                   *[(ADD_MAC if k % 3 else DEL_MAC, 1 + k % 6, k % 4, k % 6) for k in range(40)],
                   *[(ADD_MC if k % 2 else DEL_MC, 1 + k % 6, k % 4, k % 3) for k in range(20)],
                   *[(REMOVE, 1 + k) for k in range(6)]),
}


# engine_fuzzer in its limits mode (see fuzz/engine_fuzzer.c): the magic,
# then max_frame (odd: 65540, even: 65536), then operations: op, VM, args.
E_POST, E_RELEASE, E_BURST, E_ZC, E_READ, E_FAULT, E_READD, E_RELREQ = range(8)
MAXF, MAXF_M1, MAXF_P1, MIN14, LEN13, ANY = 0, 2, 3, 4, 5, 6
OFF4095, OFF0, OFF4094, OFF12 = 0, 1, 2, 3
VM0, VM1, VM2, BCAST, NOBODY = 0, 1, 2, 3, 4
TAG5, TAG1, PRIO = 0x40, 0x20, 0x80


def e_frame(d, sel, r=0):
    return bytes([d, sel, r & 255, r >> 8])


def e_post(vm, n=40, start=0, mis=0, op=E_POST):
    return bytes([op, vm, n - 1, start, mis])


def e_burst(vm, *frames):
    return bytes([E_BURST, vm, len(frames) - 1]) + b''.join(e_frame(*f) for f in frames)


def e_zc(*frames, abort=False, hold=False, spoil=None):
    # frames: (offset selector, destination, length selector); then submit,
    # abort, keep lent (hold), or submit spoiled (0 id repeated, 1 id not
    # lent, 2 open chain, 3 offset in a later buffer, 4 unknown flag, 5 the
    # first frame continued into the second)
    b = bytes([E_ZC, 0, len(frames) - 1])
    for osel, d, sel in frames:
        b += bytes([osel]) + e_frame(d, sel)
    how = 7 if abort else 5 if hold else 6 | (spoil << 3) if spoil is not None else 0
    return b + bytes([how])


def limits(mf, *ops):
    return bytes([0x4c, 0x21, mf]) + b''.join(ops)


READ = bytes([E_READ, 0])
engine_seeds = {
    'limits-longest-chain-at-4095-of-65540': limits(1, e_post(VM0), e_zc((OFF4095, VM0, MAXF)), READ),
    'limits-chain-at-4095-of-65536': limits(0, e_post(VM0), e_zc((OFF4095, VM0, MAXF)), READ),
    'limits-two-longest-chains-in-one-submit': limits(1, e_post(VM0), e_zc((OFF4095, VM0, MAXF),
                                                                          (OFF4094, VM0, MAXF_M1)), READ),
    'limits-chain-one-byte-too-long-is-refused': limits(1, e_post(VM0), e_zc((OFF4095, VM0, MAXF_P1)),
                                                        e_zc((OFF0, VM0, LEN13)), e_zc((OFF12, VM0, MIN14)), READ),
    'limits-chains-from-every-offset': limits(1, e_post(VM0), e_post(VM1, op=E_POST),
                                              e_zc((0x84, VM0, MAXF_M1)), e_zc((OFF0, VM1, MAXF)),
                                              e_zc((0xff, VM0, ANY), (OFF12, BCAST, ANY)), READ),
    'limits-burst-of-8-longest-runs-the-pool-out': limits(1, e_post(VM0), e_post(VM1),
                                                          e_burst(VM0, *[(VM0, MAXF)] * 4, *[(VM1, MAXF)] * 4),
                                                          READ, e_post(VM0), e_post(VM1), bytes([E_RELREQ, 0])),
    'limits-burst-lengths-around-the-limits': limits(0, e_post(VM0), e_burst(VM0, (VM0, MAXF_M1), (VM0, MIN14)),
                                                     e_burst(VM0, (VM0, MAXF), (VM0, MAXF_P1)),
                                                     e_burst(VM0, (VM0, LEN13)), READ),
    'limits-pushed-tag-on-the-longest-frame': limits(1, e_post(VM1), e_burst(VM1, (VM1, MAXF)), READ,
                                                     e_post(VM1), e_zc((OFF4095, VM1, MAXF)), READ),
    'limits-stripped-tag-on-the-longest-frame': limits(1, e_post(VM0), e_post(VM1),
                                                       e_burst(VM0, (VM0 | TAG1, MAXF), (VM1 | TAG1, MAXF)),
                                                       e_zc((OFF4095, VM0 | TAG1, MAXF)), READ),
    'limits-quota-of-one-longest-delivery': limits(1, e_post(VM2), e_burst(VM2, (VM2, MAXF), (VM2, MAXF)),
                                                   e_zc((OFF4095, VM2 | TAG5, MAXF)), READ),
    'limits-broadcast-of-the-longest-frame': limits(1, e_post(VM0), e_post(VM1), e_post(VM2),
                                                    e_zc((OFF4095, BCAST, MAXF)), e_burst(VM0, (BCAST, MAXF)), READ),
    'limits-whole-window-and-past-it': limits(0, e_post(VM0, n=42), e_post(VM0, n=40, start=1),
                                              e_post(VM0, n=1, start=0), e_post(VM0, n=40, start=0),
                                              e_post(VM0, n=40, start=0), e_post(VM0, n=40, mis=0x85),
                                              e_burst(VM0, (VM0, MAXF)), READ,
                                              e_post(VM0, n=40, op=E_RELEASE), e_post(VM0, n=40, start=2, op=E_RELEASE)),
    'limits-backend-fault-in-the-longest-chain': limits(1, e_post(VM1), bytes([E_FAULT, 1, 8, 1]),
                                                        e_zc((OFF4095, VM1, MAXF)), READ,
                                                        bytes([E_FAULT, 1, 16, 0]), e_burst(VM1, (VM1, MAXF)), READ,
                                                        bytes([E_READD, 1]), e_post(VM1), e_zc((OFF4095, VM1, MAXF))),
    'limits-spoiled-chains-are-refused-whole': limits(1, e_post(VM0), *[
        e_zc((OFF4095, VM0, MAXF), (OFF0, VM0, MIN14), spoil=k) for k in range(5)],
        e_zc((OFF4095, VM0, MAXF), spoil=3), e_zc((OFF4095, VM0, MAXF)), READ),
    'limits-chain-continued-past-max-frame': limits(0, e_post(VM0), e_zc((OFF0, VM0, MAXF), (OFF0, VM0, MIN14), spoil=5),
                                                    e_zc((OFF0, VM0, MAXF_M1), (OFF4095, VM0, MIN14), spoil=5),
                                                    e_zc((OFF0, VM0, MAXF), (OFF0, VM0, MIN14)), READ),
    'limits-priority-tag-set-and-stripped': limits(1, e_post(VM0), e_post(VM1),
                                                   e_burst(VM0, (VM0 | PRIO, MAXF), (VM1 | PRIO, MAXF), (BCAST | PRIO, ANY, 300)),
                                                   e_zc((OFF4095, VM1 | PRIO, MAXF)), READ),
    'limits-burst-while-the-pool-is-lent-out': limits(1, e_zc((OFF4095, VM0, MAXF), (OFF4095, VM1, MAXF), hold=True),
                                                      e_burst(VM0, *[(VM0, MAXF)] * 8), bytes([E_RELREQ, 0]),
                                                      e_post(VM0), e_burst(VM0, (VM0, MAXF), (BCAST, MAXF)),
                                                      e_zc((OFF4095, VM0, MAXF)), READ),
}

for target, table in (('l2', seeds), ('l2_config', config_seeds), ('engine', engine_seeds)):
    write(target, table)
