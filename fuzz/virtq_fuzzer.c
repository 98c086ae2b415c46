/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the public split virtqueue (include/vdemux/virtq.h), as a
 * VMM uses it, over a guest-memory image the input gives, driven by a
 * sequence of operations: pop, push, publish, kick requests, reset, and a
 * guest that offers chains and rewrites any byte between two calls.
 *
 * Input: 4 header bytes (log2 queue size, flags: 1 EVENT_IDX, 2
 * INDIRECT_DESC, 4 write-only queue; the caller's iovec room; the number of
 * operations), then the operations (4 bytes each: opcode % 6, a, b, c), then
 * the memory image (the rest, copied from GPA 0).
 *
 * Guest RAM is an mmap with an inaccessible page on each side: a device
 * access past it faults. After every call it checks:
 * - the device changed no byte of guest memory outside the used ring
 *   (flags, idx, entries, avail_event);
 * - a popped chain's iovecs lie in guest RAM, off the rings, have a length,
 *   fit the caller's array, readable ones first, and the counts and
 *   lengths returned are theirs; none readable on a write-only queue;
 * - push succeeds exactly for heads popped and not yet pushed, within their
 *   writable bytes;
 * - publish makes the pushed entries visible in the order pushed, and
 *   stores the used index it says it published;
 * - pop says -EIO exactly when the queue needs a reset.
 * Termination of pop is checked by libFuzzer's timeout.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vdemux/virtq.h>

#include "harness.h"

#define GMEM (8u * PG)
#define MAXQ 64u
/* Ring places: the descriptor table at 0, the available ring at 0x400,
 * the used ring at 0x1000 (room for 64 entries each). */
#define DESC 0x0u
#define AVAIL 0x400u
#define USED 0x1000u

struct pend {
	uint16_t head;
	uint32_t len;
};

struct st {
	vdemux_virtq *q;
	struct guarded mem;
	uint8_t *ram;
	uint8_t snap[GMEM];
	uint32_t qs, max_iov;
	bool write_only;
	struct iovec iov[MAXQ];
	/* model */
	bool popped[MAXQ];
	uint32_t write_len[MAXQ];
	struct pend pushed[MAXQ];
	uint32_t npushed;
	uint16_t used_idx;  /* what used->idx is after the last publish */
	uint16_t avail_idx; /* the offering guest's count */
};

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static uint32_t used_end(const struct st *s)
{
	return USED + 4 + 8u * s->qs + 2;
}

/* Nothing but the used ring changed since the snapshot. */
static void check_writes(const struct st *s)
{
	CHECK(memcmp(s->ram, s->snap, USED) == 0);
	CHECK(memcmp(s->ram + used_end(s), s->snap + used_end(s), GMEM - used_end(s)) == 0);
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static void check_chain(struct st *s, const struct vdemux_virtq_chain *c)
{
	uint64_t rl = 0, wl = 0;
	uint32_t n = c->n_read + c->n_write;
	CHECK(n >= 1 && n <= s->max_iov && n <= s->qs);
	CHECK(c->head < s->qs && !s->popped[c->head]);
	CHECK(!s->write_only || c->n_read == 0);
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *b = s->iov[i].iov_base;
		uint64_t len = s->iov[i].iov_len;
		CHECK(len > 0 && b >= s->ram && len <= GMEM && (uint64_t)(b - s->ram) <= GMEM - len);
		uint64_t gpa = (uint64_t)(b - s->ram);
		CHECK(!overlaps(gpa, len, DESC, 16u * s->qs));
		CHECK(!overlaps(gpa, len, AVAIL, 6u + 2u * s->qs));
		CHECK(!overlaps(gpa, len, USED, 6u + 8u * s->qs));
		if (i < c->n_read)
			rl += len;
		else
			wl += len;
	}
	CHECK(rl == c->read_len && wl == c->write_len);
	s->popped[c->head] = true;
	s->write_len[c->head] = c->write_len;
}

static void op_pop(struct st *s)
{
	struct vdemux_virtq_chain c;
	int r = vdemux_virtq_pop(s->q, &c, s->iov, s->max_iov);
	CHECK(r == 1 || r == 0 || r == -EIO);
	CHECK((r == -EIO) == (vdemux_virtq_needs_reset(s->q) == 1));
	if (r == 1)
		check_chain(s, &c);
}

static void op_push(struct st *s, uint8_t a, uint8_t b, uint8_t c)
{
	uint16_t head = (uint16_t)(a % s->qs);
	uint32_t len = (uint32_t)b << 8 | c;
	/* Half the time, a popped head's exact writable length. */
	if ((a & 0x80) && s->popped[head])
		len = s->write_len[head];
	bool ok = s->popped[head] && len <= s->write_len[head];
	int r = vdemux_virtq_push(s->q, head, len);
	CHECK(ok ? r == 0 : r == -EINVAL);
	if (ok) {
		s->popped[head] = false;
		s->pushed[s->npushed++] = (struct pend){head, len};
	}
}

static void op_publish(struct st *s)
{
	uint32_t n = 0;
	int r = vdemux_virtq_publish(s->q, &n);
	CHECK(r == 0 || r == 1);
	CHECK(n >= s->npushed && n <= s->qs);
	if (n) {
		CHECK(get16(s->ram + USED + 2) == (uint16_t)(s->used_idx + n));
		for (uint32_t i = 0; i < s->npushed; i++) {
			const uint8_t *e = s->ram + USED + 4 + 8u * ((s->used_idx + i) & (s->qs - 1));
			uint32_t id, len;
			memcpy(&id, e, 4);
			memcpy(&len, e + 4, 4);
			CHECK(le32toh(id) == s->pushed[i].head && le32toh(len) == s->pushed[i].len);
		}
	}
	s->used_idx = (uint16_t)(s->used_idx + n);
	s->npushed = 0;
}

/* The guest offers a chain of one descriptor at @head (flags and length
 * from the input), or rewrites a byte outside the used ring. */
static void op_guest(struct st *s, uint8_t a, uint8_t b, uint8_t c, bool offer)
{
	if (offer) {
		uint16_t head = (uint16_t)(a % s->qs);
		uint8_t *d = s->ram + DESC + 16u * head;
		uint64_t addr = htole64(2u * PG + (uint64_t)b * 64u);
		uint32_t len = htole32(c ? c : 1u);
		memcpy(d, &addr, 8);
		memcpy(d + 8, &len, 4);
		put16(d + 12, (uint16_t)(a >> 6)); /* NEXT, WRITE or neither */
		put16(s->ram + AVAIL + 4 + 2u * (s->avail_idx & (s->qs - 1)), head);
		s->avail_idx++;
		put16(s->ram + AVAIL + 2, s->avail_idx);
		return;
	}
	uint32_t at = ((uint32_t)a << 8 | b) % GMEM;
	if (at < USED || at >= used_end(s))
		s->ram[at] = c;
}

static void op_reset(struct st *s)
{
	CHECK(vdemux_virtq_reset(s->q) == 0);
	CHECK(vdemux_virtq_needs_reset(s->q) == 0);
	memset(s->popped, 0, sizeof(s->popped));
	s->npushed = 0;
	s->used_idx = 0; /* the next publish counts from 0 again */
	s->avail_idx = get16(s->ram + AVAIL + 2);
}

static void step(struct st *s, const uint8_t *o)
{
	uint8_t op = o[0] % 6;
	if (op == 4) {
		op_guest(s, o[1], o[2], o[3], o[1] & 0x20);
		return;
	}
	memcpy(s->snap, s->ram, GMEM);
	switch (op) {
	case 0: op_pop(s); break;
	case 1: op_push(s, o[1], o[2], o[3]); break;
	case 2: op_publish(s); break;
	case 3: CHECK(vdemux_virtq_enable_kick(s->q, o[1] & 1) >= 0); break;
	default: op_reset(s); break;
	}
	check_writes(s);
}

static int setup(struct st *s, const uint8_t *h, const uint8_t *img, size_t img_len)
{
	s->qs = 1u << (h[0] % 7);
	s->max_iov = 1u + h[2] % MAXQ;
	s->write_only = h[1] & 4;
	s->ram = guarded_map(&s->mem, GMEM, PROT_READ | PROT_WRITE);
	memcpy(s->ram, img, img_len < GMEM ? img_len : GMEM);
	s->avail_idx = get16(s->ram + AVAIL + 2);
	struct vdemux_virtq_opts o = VDEMUX_OPTS(
		vdemux_virtq_opts, .ram = s->ram, .ram_size = GMEM, .desc_gpa = DESC, .avail_gpa = AVAIL,
		.used_gpa = USED, .size = s->qs, .flags = s->write_only ? VDEMUX_VIRTQ_WRITE_ONLY : 0);
	if (h[1] & 1)
		o.features |= VDEMUX_VIRTQ_F_EVENT_IDX;
	if (h[1] & 2)
		o.features |= VDEMUX_VIRTQ_F_INDIRECT_DESC;
	memcpy(s->snap, s->ram, GMEM);
	CHECK(vdemux_virtq_create(&s->q, &o) == 0);
	check_writes(s);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct st s;
	if (size < 4)
		return 0;
	size_t nops = data[3], ops_len = nops * 4;
	if (size < 4 + ops_len)
		return 0;
	memset(&s, 0, sizeof(s));
	if (setup(&s, data, data + 4 + ops_len, size - 4 - ops_len) < 0)
		return 0;
	for (size_t i = 0; i < nops; i++)
		step(&s, data + 4 + 4 * i);
	vdemux_virtq_destroy(s.q);
	guarded_unmap(&s.mem);
	return 0;
}
