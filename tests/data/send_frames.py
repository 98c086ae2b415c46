#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write crafted Ethernet frames on an interface with AF_PACKET, for the
tagged.pcap capture (see make_captures.sh and tagged.conf).

usage: send_frames.py IFNAME
"""
import socket
import struct
import sys
import time


def mac(s):
    return bytes(int(x, 16) for x in s.split(':'))


A = mac('02:00:00:00:00:0a')
WEB = mac('02:00:00:00:01:01')
DB = mac('02:00:00:00:01:02')
MON = mac('02:00:00:00:01:03')
EDGE = mac('02:00:00:00:01:04')
NOBODY = mac('02:00:00:00:01:99')
BC = mac('ff:ff:ff:ff:ff:ff')
G1 = mac('01:00:5e:00:00:fb')
G2 = mac('01:00:5e:00:00:fc')


def tag(tpid, pcp, vid):
    return struct.pack('>HH', tpid, (pcp << 13) | vid)


def frame(dst, tags=b'', src=A, ethertype=0x88b5, text=b'', size=60):
    body = struct.pack('>H', ethertype) + text
    f = dst + src + tags + body
    return f + bytes(max(0, size - len(f)))


frames = [
    frame(WEB, tag(0x8100, 5, 10), text=b'unicast web vlan 10 pcp 5'),
    frame(DB, tag(0x8100, 0, 10), text=b'unicast db vlan 10'),
    frame(DB, tag(0x8100, 2, 20), text=b'unicast db vlan 20'),
    frame(MON, text=b'unicast mon native'),
    frame(EDGE, text=b'unicast edge native, pushed'),
    frame(EDGE, tag(0x8100, 3, 0), text=b'priority-tagged to edge'),
    frame(MON, tag(0x8100, 6, 0), text=b'priority-tagged to mon'),
    frame(BC, text=b'broadcast native'),
    frame(BC, tag(0x8100, 0, 10), text=b'broadcast vlan 10'),
    frame(BC, tag(0x8100, 7, 20), text=b'broadcast vlan 20 pcp 7'),
    frame(G1, tag(0x8100, 0, 10), text=b'group fb vlan 10'),
    frame(G1, text=b'group fb native'),
    frame(G2, tag(0x8100, 0, 20), text=b'group fc vlan 20, allmulti'),
    frame(G2, tag(0x8100, 0, 10), text=b'group fc vlan 10, nobody'),
    frame(NOBODY, tag(0x8100, 0, 20), text=b'unknown unicast vlan 20, default'),
    frame(NOBODY, tag(0x8100, 0, 10), text=b'unknown unicast vlan 10'),
    frame(BC, tag(0x8100, 0, 30), text=b'broadcast vlan 30, no member'),
    frame(mac('01:80:c2:00:00:00'), ethertype=0x0026, text=b'stp'),
    frame(mac('01:80:c2:00:00:0e'), ethertype=0x88cc, text=b'lldp'),
    frame(MON, src=mac('01:00:5e:00:00:01'), text=b'multicast source'),
    frame(MON, src=bytes(6), text=b'zero source'),
    frame(EDGE, tag(0x88a8, 0, 10), text=b'802.1ad tag is payload on 802.1Q'),
    frame(WEB, tag(0x8100, 1, 10) + tag(0x8100, 0, 99), text=b'QinQ, inner tag kept'),
    (BC + A + b'\x81\x00\x00'),  # 15 bytes: the tag runs past the end
    frame(DB, tag(0x8100, 4, 10), text=b'jumbo to db', size=9000),
    frame(BC, tag(0x8100, 0, 10), ethertype=0x0806,
          text=struct.pack('>HHBBH', 1, 0x0800, 6, 4, 1) + A + bytes([192, 0, 2, 1]) + bytes(6) + bytes([192, 0, 2, 9])),
]


def main():
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((sys.argv[1], 0))
    for f in frames:
        s.send(f)
        time.sleep(0.02)
    print('%d frames sent' % len(frames))


if __name__ == '__main__':
    main()
