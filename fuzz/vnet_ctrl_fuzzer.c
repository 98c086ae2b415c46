/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the virtio-net control queue (include/vdemux/vnet_ctrl.h)
 * over a control virtqueue whose guest memory the input gives.
 *
 * Input: 4 header bytes (negotiated features: bit 0 MQ, 1 CTRL_RX, 2
 * CTRL_RX_EXTRA, 3 CTRL_MAC_ADDR, 4 GUEST_ANNOUNCE, 5 INDIRECT_DESC, 6
 * RSS, 7 HASH_REPORT; max_pairs; log2 queue size % 7; serve calls: bits
 * 0-1 + 1, and the device's RSS limits: bits 2-3 rss_max_table (default,
 * 8, 16, 1), bits 4-5 rss_max_key (default, 16, 40, 1), bit 6 only the
 * IPv4 and TCPv4 hash types), then the memory image (copied from GPA 0:
 * descriptor table at 0, available ring at 0x400, used ring at 0x1000;
 * the FRAME_LEN bytes at FRAME are a received frame whose queue is
 * picked after every serve).
 *
 * Guest RAM is an mmap with an inaccessible page on each side. After every
 * call it checks:
 * - serve returns a count or -EIO, and -EIO exactly when the ring needs a
 *   reset;
 * - every chain taken is counted once (ok + unsupported + invalid +
 *   malformed), and the pair count stays within 1..max_pairs;
 * - the RSS state stays within the device's limits (a power-of-two table
 *   no longer than rss_max_table, entries and the unclassified queue below
 *   max_pairs, a key no longer than rss_max_key and zero past it, hash
 *   types supported), and is empty while the feature that sets it is off;
 * - the queue picked for the frame is below max_pairs (below the pairs in
 *   use without RSS), its report type one of the six, hash 0 with NONE,
 *   and nothing reported without HASH_REPORT;
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
#define FRAME 0x4000u
#define FRAME_LEN 128u

static uint64_t features_of(uint8_t b)
{
	static const unsigned bits[] = {22, 18, 20, 23, 21, 28, 60, 57};
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

static bool has(const uint8_t *hdr, unsigned bit)
{
	return (hdr[0] >> bit) & 1u;
}

/* The options the header's fourth byte chooses. */
static struct vdemux_vnet_ctrl_opts opts_of(const uint8_t *hdr)
{
	static const uint16_t tables[] = {0, 8, 16, 1};
	static const uint8_t keys[] = {0, 16, 40, 1};
	uint32_t types = hdr[3] & 0x40u ? VDEMUX_FLOW_HASH_IPV4 | VDEMUX_FLOW_HASH_TCPV4 : 0;
	return VDEMUX_OPTS(vdemux_vnet_ctrl_opts, .max_pairs = hdr[1],
			   .rss_max_table = tables[(hdr[3] >> 2) & 3u],
			   .rss_max_key = keys[(hdr[3] >> 4) & 3u], .rss_hash_types = types);
}

static void check_rss(const struct vdemux_vnet_ctrl_state *s, const struct vdemux_vnet_ctrl_opts *o,
		      const uint8_t *hdr)
{
	uint16_t max_pairs = o->max_pairs ? o->max_pairs : 1;
	uint32_t max_table = o->rss_max_table ? o->rss_max_table : VDEMUX_VNET_CTRL_RSS_TABLE_MAX;
	uint32_t max_key = o->rss_max_key ? o->rss_max_key : VDEMUX_VNET_CTRL_RSS_KEY_MAX;
	uint32_t types = o->rss_hash_types ? o->rss_hash_types : VDEMUX_FLOW_HASH_ALL;
	CHECK(s->hash_report == has(hdr, 7));
	CHECK(!s->rss || has(hdr, 6));
	CHECK((s->hash_types & ~types) == 0);
	CHECK(s->hash_types == 0 || has(hdr, 6) || has(hdr, 7));
	CHECK(s->rss_key_len <= max_key);
	for (unsigned i = s->rss_key_len; i < VDEMUX_VNET_CTRL_RSS_KEY_MAX; i++)
		CHECK(s->rss_key[i] == 0);
	CHECK(s->rss_table_len <= max_table && (s->rss_table_len & (s->rss_table_len - 1u)) == 0);
	CHECK(s->rss == (s->rss_table_len != 0));
	CHECK(s->rss_unclassified < max_pairs);
	for (unsigned i = 0; i < VDEMUX_VNET_CTRL_RSS_TABLE_MAX; i++)
		CHECK(i < s->rss_table_len ? s->rss_table[i] < max_pairs : s->rss_table[i] == 0);
}

static void check_pick(vdemux_vnet_ctrl *c, const uint8_t *ram, const struct vdemux_vnet_ctrl_opts *o)
{
	struct vdemux_vnet_ctrl_state s;
	struct vdemux_vnet_rss_pick p;
	CHECK(vdemux_vnet_ctrl_state(c, &s, sizeof s) == 0);
	CHECK(vdemux_vnet_ctrl_rx_queue(c, ram + FRAME, FRAME_LEN, &p) == 0);
	CHECK(p.queue < (o->max_pairs ? o->max_pairs : 1));
	CHECK(s.rss || p.queue < s.pairs);
	CHECK(p.hash_report <= VDEMUX_FLOW_REPORT_UDPV6);
	CHECK(p.hash_report != VDEMUX_FLOW_REPORT_NONE || p.hash_value == 0);
	CHECK(s.hash_report || (p.hash_report == VDEMUX_FLOW_REPORT_NONE && p.hash_value == 0));
	CHECK(!s.rss || p.hash_report != VDEMUX_FLOW_REPORT_NONE || !s.hash_report ||
	      p.queue == s.rss_unclassified);
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
	struct vdemux_vnet_ctrl_opts co = opts_of(hdr);
	CHECK(vdemux_virtq_create(&q, &o) == 0);
	CHECK(vdemux_vnet_ctrl_create(&c, &co) == 0);
	CHECK(vdemux_vnet_ctrl_reset(c, f) == 0);
	for (unsigned i = 0; i < hdr[3] % 4u + 1; i++) {
		struct vdemux_vnet_ctrl_state s;
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
		CHECK(vdemux_vnet_ctrl_state(c, &s, sizeof s) == 0);
		check_rss(&s, &co, hdr);
		check_pick(c, ram, &co);
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
