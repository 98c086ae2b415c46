/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the virtio-net control queue (include/vdemux/vnet_ctrl.h)
 * over a control virtqueue whose guest memory the input gives.
 *
 * Input: 4 header bytes (negotiated features: bit 0 MQ, 1 CTRL_RX, 2
 * CTRL_RX_EXTRA, 3 CTRL_MAC_ADDR, 4 GUEST_ANNOUNCE, 5 INDIRECT_DESC;
 * max_pairs; log2 queue size % 7; serve calls % 4 + 1), then the memory
 * image (copied from GPA 0: descriptor table at 0, available ring at
 * 0x400, used ring at 0x1000).
 *
 * Guest RAM is an mmap with an inaccessible page on each side. After every
 * call it checks:
 * - serve returns a count or -EIO, and -EIO exactly when the ring needs a
 *   reset;
 * - every chain taken is counted once (ok + unsupported + invalid +
 *   malformed), and the pair count stays within 1..max_pairs;
 * - outside the used ring, the device changed at most one byte per chain
 *   taken, each to an answer (0 or 1).
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdemux/virtq.h>
#include <vdemux/vnet_ctrl.h>

#include "harness.h"

#define GMEM (8u * PG)
#define DESC 0x0u
#define AVAIL 0x400u
#define USED 0x1000u

static uint64_t features_of(uint8_t b)
{
	static const unsigned bits[] = {22, 18, 20, 23, 21, 28};
	uint64_t f = 0;
	for (unsigned i = 0; i < sizeof bits / sizeof bits[0]; i++)
		if (b & (1u << i))
			f |= 1ull << bits[i];
	return f;
}

/* Bytes outside the used ring that differ from @snap: each an answer, at
 * most @taken of them. */
static void check_writes(const uint8_t *ram, const uint8_t *snap, uint32_t qs, uint64_t taken)
{
	uint32_t used_end = USED + 4 + 8u * qs + 2;
	uint64_t changed = 0;
	for (uint32_t i = 0; i < GMEM; i++) {
		if ((i >= USED && i < used_end) || ram[i] == snap[i])
			continue;
		CHECK(ram[i] == VDEMUX_VNET_CTRL_OK || ram[i] == VDEMUX_VNET_CTRL_ERR);
		changed++;
	}
	CHECK(changed <= taken);
}

static void check_counts(vdemux_vnet_ctrl *c, vdemux_virtq *q, int r, uint16_t max_pairs)
{
	struct vdemux_vnet_ctrl_stats st;
	struct vdemux_vnet_ctrl_state s;
	CHECK(r >= 0 || r == -EIO);
	CHECK((r == -EIO) == (vdemux_virtq_needs_reset(q) == 1));
	CHECK(vdemux_vnet_ctrl_stats(c, &st, sizeof st) == 0);
	CHECK(vdemux_vnet_ctrl_state(c, &s, sizeof s) == 0);
	CHECK(st.commands == st.ok + st.unsupported + st.invalid + st.malformed);
	CHECK(st.pairs_set <= st.ok);
	CHECK(s.pairs >= 1 && s.pairs <= (max_pairs ? max_pairs : 1));
}

static void run(uint8_t *ram, const uint8_t *hdr, uint8_t *snap)
{
	uint64_t f = features_of(hdr[0]);
	uint32_t qs = 1u << (hdr[2] % 7);
	vdemux_virtq *q = NULL;
	vdemux_vnet_ctrl *c = NULL;
	struct vdemux_virtq_opts o = VDEMUX_OPTS(vdemux_virtq_opts, .ram = ram, .ram_size = GMEM,
						 .desc_gpa = DESC, .avail_gpa = AVAIL, .used_gpa = USED,
						 .size = qs, .features = f);
	struct vdemux_vnet_ctrl_opts co = VDEMUX_OPTS(vdemux_vnet_ctrl_opts, .max_pairs = hdr[1]);
	CHECK(vdemux_virtq_create(&q, &o) == 0);
	CHECK(vdemux_vnet_ctrl_create(&c, &co) == 0);
	CHECK(vdemux_vnet_ctrl_reset(c, f) == 0);
	for (unsigned i = 0; i < hdr[3] % 4u + 1; i++) {
		struct vdemux_vnet_ctrl_stats before, after;
		memcpy(snap, ram, GMEM);
		CHECK(vdemux_vnet_ctrl_stats(c, &before, sizeof before) == 0);
		int r = vdemux_vnet_ctrl_serve(c, q);
		check_counts(c, q, r, hdr[1]);
		CHECK(vdemux_vnet_ctrl_stats(c, &after, sizeof after) == 0);
		/* A serve that found the ring broken returns -EIO after answering
		 * the commands it took before: count them from the stats. */
		CHECK(r < 0 || after.commands - before.commands == (uint64_t)r);
		check_writes(ram, snap, qs, after.commands - before.commands);
		vdemux_virtq_publish(q, NULL);
	}
	vdemux_vnet_ctrl_destroy(c);
	vdemux_virtq_destroy(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t snap[GMEM];
	if (size < 4)
		return 0;
	struct guarded mem;
	uint8_t *ram = guarded_map(&mem, GMEM, PROT_READ | PROT_WRITE);
	size_t n = size - 4 < GMEM ? size - 4 : GMEM;
	memcpy(ram, data + 4, n);
	run(ram, data, snap);
	guarded_unmap(&mem);
	return 0;
}
