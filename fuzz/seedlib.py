# SPDX-License-Identifier: MIT
"""What the seed-corpus writers of fuzz/ share: a split-virtqueue
descriptor as a guest writes it, and writing a target's seeds into
fuzz/corpus/<target>/."""
import os
import struct

# Descriptor flags (virtio 1.x, 2.7.5).
F_NEXT, F_WRITE, F_IND = 1, 2, 4


def desc(addr, length, flags, nxt=0):
    """One descriptor: 16 bytes, little-endian."""
    return struct.pack('<QIHH', addr, length, flags, nxt)


def put_desc(mem, at, addr, length, flags, nxt=0):
    """Write one descriptor into the bytearray @mem at offset @at."""
    mem[at:at + 16] = desc(addr, length, flags, nxt)


def write(target, seeds):
    """Write @seeds (a dict, or (name, bytes) pairs) as
    fuzz/corpus/@target/<name>, one file each."""
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'corpus', target)
    os.makedirs(out, exist_ok=True)
    pairs = list(seeds.items() if isinstance(seeds, dict) else seeds)
    for name, data in pairs:
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)
    print('%d inputs in %s' % (len(pairs), out))
