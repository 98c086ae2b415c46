#!/usr/bin/env python3
"""Write the seed corpus of l2_fuzzer: one input per branch of the rules.

Input format: byte 0 = uplink (bit 0: 0 802.1Q, 1 802.1ad) | capacity << 1
(7: full), then the frame. The names say what each input exercises against
the fixed configuration in l2_fuzzer.c.

usage: fuzz/make_corpus.py [DIR]   (default: fuzz/corpus/l2 beside this file)
"""
import os
import struct
import sys

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

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', 'l2')
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, name), 'wb') as f:
        f.write(data)
print('%d seeds written to %s' % (len(seeds), out))
