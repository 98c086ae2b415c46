/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the device side of a split virtqueue (src/virtio/vring.c)
 * over a guest-memory image the input gives, driven by a sequence of
 * operations: pop, push, publish, notify decisions, kick requests, reset,
 * and a guest that posts chains and rewrites any byte between two calls.
 *
 * Input: 8 header bytes (queue size, features, ring places, RX window),
 * then a count of 4-byte operations and the operations, then the memory
 * image (the rest, copied from GPA 0).
 *
 * Queues of 1 to 64 entries live in 32 KiB of guest RAM, the rings where
 * the header puts them. Larger queues, up to the largest (32768), get their
 * rings laid out from the header's descriptor-table address (legacy
 * layout), then room for an indirect table of size + 1 entries, then 64 KiB
 * of buffers. Two operations build the chains at the ring's limits: a
 * direct chain of size - 1, size or any number of descriptors (or one that
 * loops), and an indirect table of size - 1, size, size + 1 or any number of
 * entries, whose lengths may be the longest RAM allows (a chain of
 * UINT32_MAX bytes and more).
 *
 * Guest RAM is an mmap with an inaccessible page on each side, and the RX
 * window's pages inaccessible too (there the engine's pages may be holes):
 * a device access to any of them faults. After every step it checks:
 * - the device changed no byte of guest memory outside the used ring
 *   (entries, idx, flags, avail_event);
 * - every popped segment lies in guest RAM, has a length, does not overlap
 *   a ring, and is device-writable on a write-only queue; the chain length
 *   is their sum and fits the caller's array;
 * - push succeeds exactly for heads popped and not pushed, within their
 *   length; publish makes visible the pushed entries in order, then len-0
 *   entries for the skipped chains, and stores used->idx accordingly;
 * - the counters agree: every skipped chain counted under one skip kind,
 *   every break under one break kind, in-flight heads accounted for;
 * - classification of each chain is consistent (flippable pages whole,
 *   distinct, clear of the rings' pages).
 * Termination of pop is checked by libFuzzer's timeout.
 */
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "virtio/vnet_rx.h"
#include "virtio/vring.h"
#include "vq_desc.h"

/* The harness's loops over every descriptor, segment and byte of a queue of
 * 32768 entries: not instrumented for libFuzzer's feedback (the library is),
 * or they cost most of the time of such inputs. */
#if defined(__clang__)
#define HARNESS __attribute__((no_sanitize("coverage")))
#else
#define HARNESS
#endif

#define GMEM (8u * PG) /* guest RAM of queues of at most SMALLQ entries */
#define SMALLQ 64u
#define MAXQ VD_VRING_MAX_SIZE
#define LBUFS (64u * 1024u) /* buffers past the rings of larger queues */

struct pend {
	uint16_t head;
	uint32_t len;
};

struct st {
	struct vd_vring *vq;
	struct vd_gmem gm;
	struct vd_vring_config cfg;
	struct guarded mem;
	uint8_t *ram;
	uint64_t gmem;	/* bytes of guest RAM */
	uint64_t data0; /* where buffers start (0 for small queues) */
	uint64_t table; /* where the indirect tables of the limit ops go */
	uint64_t lbuf;	/* where the limit ops' buffers go */
	uint8_t *snap;
	uint32_t max_segs;
	struct vd_vring_seg segs[MAXQ + 1];

	/* model */
	bool popped[MAXQ];
	uint32_t chain_len[MAXQ];
	uint32_t npopped;
	struct pend pushed[MAXQ]; /* since the last publish */
	uint32_t npushed;
	uint64_t skipped_unpublished;
	uint64_t breaks;
	uint16_t used_idx;	  /* what used->idx must be */
	uint16_t guest_avail_idx; /* the posting guest's own count */
	bool used_dirty;	  /* the guest wrote its used ring since the last publish */
	uint16_t chain_head;	  /* first descriptor of the chain being posted */
	bool chain_open;
};

/* Bytes [lo, hi) of guest RAM outside the window, as at most two ranges. */
HARNESS static int readable_ranges(const struct st *s, uint64_t lo, uint64_t hi, uint64_t r[2][2])
{
	uint64_t w0 = s->gm.rxwin_gpa, w1 = s->gm.rxwin_gpa + s->gm.rxwin_len;
	int n = 0;

	if (!s->gm.rxwin_len || w1 <= lo || w0 >= hi) {
		r[n][0] = lo;
		r[n++][1] = hi;
		return n;
	}
	if (w0 > lo) {
		r[n][0] = lo;
		r[n++][1] = w0;
	}
	if (w1 < hi) {
		r[n][0] = w1;
		r[n++][1] = hi;
	}
	return n;
}

/* Guest memory the harness may touch (the window's pages are PROT_NONE):
 * bytes [gpa, gpa + n) of RAM outside the window; with @src NULL, @fill. */
HARNESS static void guest_write_fill(struct st *s, uint64_t gpa, const uint8_t *src, uint8_t fill,
				     size_t n)
{
	uint64_t u0 = s->cfg.used_gpa, u1 = u0 + VD_VRING_USED_BYTES(s->cfg.size), r[2][2];
	uint64_t end = gpa + n < s->gmem ? gpa + n : s->gmem;
	int k;

	if (gpa >= end)
		return;
	k = readable_ranges(s, gpa, end, r);
	for (int i = 0; i < k; i++) {
		if (src)
			memcpy(s->ram + r[i][0], src + (r[i][0] - gpa), r[i][1] - r[i][0]);
		else
			memset(s->ram + r[i][0], fill, r[i][1] - r[i][0]);
		/* Its own used ring: entries pushed but not yet published are
		 * the guest's to scribble over (it only hurts itself). */
		if (r[i][0] < u1 && u0 < r[i][1])
			s->used_dirty = true;
	}
}

static void guest_write(struct st *s, uint64_t gpa, const void *src, size_t n)
{
	guest_write_fill(s, gpa, src, 0, n);
}

HARNESS static void snapshot(struct st *s)
{
	uint64_t r[2][2];
	int n = readable_ranges(s, 0, s->gmem, r);

	for (int i = 0; i < n; i++)
		memcpy(s->snap + r[i][0], s->ram + r[i][0], r[i][1] - r[i][0]);
}

HARNESS static void compare(const struct st *s, uint64_t lo, uint64_t hi)
{
	uint64_t r[2][2];
	int n = readable_ranges(s, lo, hi, r);

	for (int i = 0; i < n; i++) {
		if (memcmp(s->snap + r[i][0], s->ram + r[i][0], r[i][1] - r[i][0]) != 0) {
			fprintf(stderr,
				"vring_fuzzer: device wrote in [%#lx, %#lx) outside the used ring\n",
				(unsigned long)r[i][0], (unsigned long)r[i][1]);
			abort();
		}
	}
}

/* Nothing outside the used ring changed since the snapshot. */
static void check_untouched(const struct st *s)
{
	uint64_t u0 = s->cfg.used_gpa, u1 = u0 + VD_VRING_USED_BYTES(s->cfg.size);

	compare(s, 0, u0);
	compare(s, u1, s->gmem);
}

/* Pages holding a byte of the used ring: [*p0, *p1). */
static void used_pages(const struct st *s, uint64_t *p0, uint64_t *p1)
{
	uint64_t u1 = s->cfg.used_gpa + VD_VRING_USED_BYTES(s->cfg.size);

	*p0 = s->cfg.used_gpa & ~(uint64_t)(PG - 1);
	*p1 = (u1 + PG - 1) & ~(uint64_t)(PG - 1);
	if (*p1 > s->gmem)
		*p1 = s->gmem;
}

/* Guest RAM outside the window and the used ring's pages: read-only while
 * the device runs (prot), or writable again. */
static void protect(const struct st *s, int prot)
{
	uint64_t p0, p1, r[2][2];
	int n;

	used_pages(s, &p0, &p1);
	n = readable_ranges(s, 0, p0, r);
	for (int i = 0; i < n; i++)
		if (r[i][1] > r[i][0] && mprotect(s->ram + r[i][0], r[i][1] - r[i][0], prot))
			abort();
	n = readable_ranges(s, p1, s->gmem, r);
	for (int i = 0; i < n; i++)
		if (r[i][1] > r[i][0] && mprotect(s->ram + r[i][0], r[i][1] - r[i][0], prot))
			abort();
}

/*
 * Around every call into the device: afterwards, no byte of guest memory
 * outside the used ring may have changed. Small queues: a snapshot of all
 * of RAM, compared. Larger ones (RAM of up to 1.4 MiB): the pages without a
 * byte of the used ring are made read-only during the call (a write there
 * faults), and only the rest of the used ring's pages is compared.
 */
static void device_enter(struct st *s)
{
	uint64_t p0, p1;

	if (s->gmem <= GMEM) {
		snapshot(s);
		return;
	}
	used_pages(s, &p0, &p1);
	memcpy(s->snap + p0, s->ram + p0, s->cfg.used_gpa - p0);
	memcpy(s->snap + s->cfg.used_gpa + VD_VRING_USED_BYTES(s->cfg.size),
	       s->ram + s->cfg.used_gpa + VD_VRING_USED_BYTES(s->cfg.size),
	       p1 - s->cfg.used_gpa - VD_VRING_USED_BYTES(s->cfg.size));
	protect(s, PROT_READ);
}

static void device_exit(struct st *s)
{
	uint64_t p0, p1;

	if (s->gmem <= GMEM) {
		check_untouched(s);
		return;
	}
	protect(s, PROT_READ | PROT_WRITE);
	used_pages(s, &p0, &p1);
	compare(s, p0, s->cfg.used_gpa);
	compare(s, s->cfg.used_gpa + VD_VRING_USED_BYTES(s->cfg.size), p1);
}

static void check_stats(const struct st *s)
{
	const struct vd_vring_stats *t = vd_vring_stats(s->vq);
	uint64_t skip_errs = 0, break_errs = 0;

	for (int e = 0; e < VD_VRING_ERR_COUNT; e++) {
		if (VD_VRING_ERR_BREAKS(e))
			break_errs += t->err[e];
		else
			skip_errs += t->err[e];
	}
	CHECK(skip_errs == t->skipped);
	CHECK(break_errs == s->breaks);
	CHECK(vd_vring_inflight(s->vq) == s->npopped + s->npushed + s->skipped_unpublished);
	CHECK(vd_vring_inflight(s->vq) <= s->cfg.size);
	if (vd_vring_broken(s->vq)) {
		int b = vd_vring_broken(s->vq) - 1;

		CHECK(b >= 0 && b < VD_VRING_ERR_COUNT && VD_VRING_ERR_BREAKS(b) && t->err[b] > 0);
	}
}

/* The harness's own overlap test (not the library's): does [gpa, gpa + len)
 * share a byte (or, with page, a 4 KiB page) with a ring? */
HARNESS static bool ring_hit(const struct st *s, uint64_t gpa, uint64_t len, bool page)
{
	uint64_t r[3][2] = {
		{s->cfg.desc_gpa, VD_VRING_DESC_BYTES(s->cfg.size)},
		{s->cfg.avail_gpa, VD_VRING_AVAIL_BYTES(s->cfg.size)},
		{s->cfg.used_gpa, VD_VRING_USED_BYTES(s->cfg.size)},
	};

	for (int i = 0; i < 3; i++) {
		uint64_t lo = r[i][0], hi = r[i][0] + r[i][1];

		if (page) {
			lo &= ~(uint64_t)(PG - 1);
			hi = (hi + PG - 1) & ~(uint64_t)(PG - 1);
		}
		if (gpa < hi && lo < gpa + len)
			return true;
	}
	return false;
}

HARNESS static void check_chain(struct st *s, const struct vd_vring_chain *c)
{
	uint64_t sum = 0;
	struct vd_vnet_rx_shape sh;
	uint64_t pages[VD_VNET_MAX_FLIP_PAGES];

	CHECK(c->head < s->cfg.size);
	CHECK(c->nseg >= 1 && c->nseg <= s->max_segs && c->nseg <= s->cfg.size);
	for (uint32_t i = 0; i < c->nseg; i++) {
		const struct vd_vring_seg *g = &s->segs[i];

		CHECK(g->len > 0);
		CHECK(g->gpa < s->gmem && g->len <= s->gmem - g->gpa);
		CHECK(!ring_hit(s, g->gpa, g->len, false));
		if (s->cfg.flags & VD_VRING_F_WRITE_ONLY)
			CHECK(g->writable);
		sum += g->len;
	}
	CHECK(sum == c->len);

	if (vd_vnet_rx_classify(s->vq, s->cfg.features, s->segs, c->nseg, &sh, pages,
				VD_VNET_MAX_FLIP_PAGES) == 0 &&
	    sh.flippable) {
		CHECK(sh.layout == VD_VNET_RX_BIG && sh.npages >= 1 &&
		      sh.npages <= VD_VNET_MAX_FLIP_PAGES);
		for (uint32_t i = 0; i < sh.npages; i++) {
			CHECK(pages[i] % PG == 0);
			CHECK(!ring_hit(s, pages[i], PG, true));
			for (uint32_t k = 0; k < i; k++)
				CHECK(pages[k] != pages[i]);
		}
	}
}

/* The device fills what it was given (where the host may write); of a
 * chain of more than 1 MiB (segments may overlap), the first 64 bytes of
 * each segment only. Not a guest write: the used ring is not marked. */
HARNESS static void fill_segments(struct st *s, uint32_t nseg, uint32_t len)
{
	bool dirty = s->used_dirty;

	for (uint32_t i = 0; i < nseg; i++)
		guest_write_fill(s, s->segs[i].gpa, NULL, 0xd5,
				 len > (1u << 20) && s->segs[i].len > 64 ? 64 : s->segs[i].len);
	s->used_dirty = dirty;
}

/* The caller's array: for small queues 1 .. 64 entries; for larger ones
 * also the queue size, one less and one more. */
static uint32_t pick_max_segs(const struct st *s, uint8_t a)
{
	uint32_t n = s->cfg.size;

	if (n <= SMALLQ)
		return 1u + a % SMALLQ;
	switch (a % 4) {
	case 0: return n;
	case 1: return n - 1;
	case 2: return n + 1;
	default: return 1u + (a >> 2) % SMALLQ;
	}
}

static void op_pop(struct st *s, uint8_t a)
{
	struct vd_vring_chain c;
	int broken_before = vd_vring_broken(s->vq);
	uint64_t skipped_before = vd_vring_stats(s->vq)->skipped;
	int rc;

	s->max_segs = pick_max_segs(s, a);
	device_enter(s);
	rc = vd_vring_pop(s->vq, &c, s->segs, s->max_segs);
	device_exit(s);
	s->skipped_unpublished += vd_vring_stats(s->vq)->skipped - skipped_before;
	if (!broken_before && vd_vring_broken(s->vq))
		s->breaks++;
	CHECK(rc == 1 || rc == 0 || rc == -EIO);
	CHECK((rc == -EIO) == (vd_vring_broken(s->vq) != 0));
	if (getenv("VDEMUX_FUZZ_TRACE"))
		fprintf(stderr, "pop (size %u, array %u): %d, %u segments, %u bytes, %llu skipped\n",
			s->cfg.size, s->max_segs, rc, rc == 1 ? c.nseg : 0, rc == 1 ? c.len : 0,
			(unsigned long long)(vd_vring_stats(s->vq)->skipped - skipped_before));
	if (rc == 1) {
		check_chain(s, &c);
		CHECK(!s->popped[c.head]);
		s->popped[c.head] = true;
		s->chain_len[c.head] = c.len;
		s->npopped++;
		fill_segments(s, c.nseg, c.len);
	}
}

static void op_push(struct st *s, uint8_t a, uint8_t b, uint8_t c)
{
	uint16_t head = (uint16_t)(a % (s->cfg.size + 1u));
	uint32_t len;
	bool ok;
	int rc;

	/* mostly a popped head, sometimes any */
	if (!(c & 0x80) && s->npopped) {
		uint32_t k = a % s->npopped;

		for (head = 0; head < s->cfg.size; head++)
			if (s->popped[head] && k-- == 0)
				break;
	}
	if (head < s->cfg.size && s->popped[head]) {
		len = (uint32_t)(((uint64_t)s->chain_len[head] * b) / 255u);
		if ((c & 0x40) && len < UINT32_MAX)
			len++; /* one past, sometimes */
	} else {
		len = b;
	}
	ok = head < s->cfg.size && s->popped[head] && len <= s->chain_len[head];
	device_enter(s);
	rc = vd_vring_push(s->vq, head, len);
	device_exit(s);
	CHECK(rc == (ok ? 0 : -EINVAL));
	if (ok) {
		s->popped[head] = false;
		s->npopped--;
		s->pushed[s->npushed].head = head;
		s->pushed[s->npushed].len = len;
		s->npushed++;
	}
}

static uint32_t used_field(const struct st *s, uint16_t slot, uint32_t off)
{
	uint32_t v;

	memcpy(&v, s->ram + s->cfg.used_gpa + 4 + 8u * (slot & (s->cfg.size - 1)) + off, 4);
	return le32toh(v);
}

static void op_publish(struct st *s)
{
	uint32_t n;
	uint16_t idx;

	device_enter(s);
	n = vd_vring_publish(s->vq);
	device_exit(s);
	CHECK(n == s->npushed + s->skipped_unpublished);
	memcpy(&idx, s->ram + s->cfg.used_gpa + 2, 2);
	if (n) {
		CHECK(le16toh(idx) == (uint16_t)(s->used_idx + n));
	}
	if (n && !s->used_dirty) {
		for (uint32_t i = 0; i < n; i++) {
			uint16_t slot = (uint16_t)(s->used_idx + i);

			if (i < s->npushed) {
				CHECK(used_field(s, slot, 0) == s->pushed[i].head);
				CHECK(used_field(s, slot, 4) == s->pushed[i].len);
			} else {
				CHECK(used_field(s, slot, 0) < s->cfg.size);
				CHECK(used_field(s, slot, 4) == 0);
			}
		}
	}
	s->used_idx = (uint16_t)(s->used_idx + n);
	s->npushed = 0;
	s->skipped_unpublished = 0;
	s->used_dirty = false;
}

HARNESS static void put_desc(struct st *s, uint64_t gpa, uint64_t addr, uint32_t len, uint16_t flags,
			     uint16_t next)
{
	uint8_t d[16];

	vq_desc_put(d, addr, len, flags, next);
	guest_write(s, gpa, d, 16);
}

/* The guest adds @head to the avail ring and moves avail->idx. */
static void make_available(struct st *s, uint16_t head)
{
	uint16_t v = htole16(head);

	guest_write(s, s->cfg.avail_gpa + 4 + 2u * (s->guest_avail_idx & (s->cfg.size - 1)), &v, 2);
	s->guest_avail_idx++;
	v = htole16(s->guest_avail_idx);
	guest_write(s, s->cfg.avail_gpa + 2, &v, 2);
}

/* The guest writes one descriptor of a chain (NEXT goes to the following
 * index), and makes the chain available when it ends. */
static void op_post(struct st *s, uint8_t a, uint8_t b, uint8_t c)
{
	uint32_t n = s->cfg.size;
	uint16_t i = (uint16_t)(a % n);
	uint64_t addr = s->data0 + (uint64_t)b * 128u;
	uint32_t len = (c & 0x40) ? 4096u : (uint32_t)(c & 0x3f) * 64u;
	uint16_t flags = VD_VRING_DESC_F_WRITE, next = (uint16_t)((i + 1) % n);

	if (c & 0x80)
		flags |= VD_VRING_DESC_F_NEXT;
	if ((a & 0xc0) == 0xc0)
		flags = VD_VRING_DESC_F_INDIRECT;
	put_desc(s, s->cfg.desc_gpa + 16u * i, addr, len, flags, next);
	if (!s->chain_open) {
		s->chain_head = i;
		s->chain_open = true;
	}
	/* A chain ends at a descriptor without NEXT (or when b says so): its
	 * first descriptor is made available. */
	if (!(flags & VD_VRING_DESC_F_NEXT) || (b & 1)) {
		s->chain_open = false;
		make_available(s, s->chain_head);
	}
}

/* Limit op: a direct chain from ring entry (a | b << 8) % size, each
 * descriptor NEXT to the following one (wrapping), of size (c % 4 == 0),
 * size - 1 (1), any number (2) of descriptors, or of size + 1 (3: it comes
 * back to its first, a loop). Lengths 1 .. 64, at buffers the bits of c and
 * b pick. */
static void op_long_chain(struct st *s, uint8_t a, uint8_t b, uint8_t c)
{
	uint32_t n = s->cfg.size, first = (uint32_t)(a | b << 8) % n, k;

	switch (c % 4) {
	case 0: k = n; break;
	case 1: k = n > 1 ? n - 1 : 1; break;
	case 2: k = (uint32_t)(a << 8 | b) % n + 1; break;
	default: k = n + 1; break;
	}
	for (uint32_t j = 0; j < k && j < n; j++) {
		uint32_t i = (first + j) % n;
		bool more = j + 1 < k;

		put_desc(s, s->cfg.desc_gpa + 16u * i, s->lbuf + (uint64_t)((b + j) % 32) * 128u,
			 1u + ((c >> 2) + j) % 64,
			 VD_VRING_DESC_F_WRITE | (more ? VD_VRING_DESC_F_NEXT : 0),
			 (uint16_t)((i + 1) % n));
	}
	s->chain_open = false;
	make_available(s, (uint16_t)first);
}

/* Limit op: an indirect table at s->table of size (c % 4 == 0), size + 1
 * (1: too long), size - 1 (2) or any number up to size + 1 (3) of entries,
 * named by ring entry a % size. Entry lengths: small, or (c & 4) from the
 * table to the end of RAM, the longest clear of the rings (a table of more
 * than 7300 of them is over UINT32_MAX bytes); c & 8: the last entry goes
 * on (NEXT out of the table). */
static void op_indirect_table(struct st *s, uint8_t a, uint8_t b, uint8_t c)
{
	uint32_t n = s->cfg.size, k, head = a % n;
	/* the longest buffers start at the table: all of RAM past the rings */
	uint64_t buf = ((c & 4) ? s->table : s->lbuf) + (uint64_t)(b % 32) * 128u;

	switch (c % 4) {
	case 0: k = n; break;
	case 1: k = n + 1; break;
	case 2: k = n > 1 ? n - 1 : 1; break;
	default: k = (uint32_t)(a << 8 | b) % (n + 1) + 1; break;
	}
	for (uint32_t j = 0; j < k; j++) {
		bool more = j + 1 < k || (c & 8);
		uint32_t len = (c & 4) ? (uint32_t)(s->gmem - buf) : 1u + (j + b) % 200;

		put_desc(s, s->table + 16ull * j, buf, len,
			 VD_VRING_DESC_F_WRITE | (more ? VD_VRING_DESC_F_NEXT : 0), (uint16_t)(j + 1));
	}
	put_desc(s, s->cfg.desc_gpa + 16u * head, s->table, 16u * k, VD_VRING_DESC_F_INDIRECT, 0);
	s->chain_open = false;
	make_available(s, (uint16_t)head);
}

static void op_rewrite(struct st *s, uint8_t a, uint8_t b, uint8_t c)
{
	/* anywhere, but mostly the rings */
	uint64_t gpa;
	uint8_t v[2] = {c, (uint8_t)(c ^ b)};

	switch (a & 3) {
	case 0: gpa = s->cfg.desc_gpa + (uint32_t)(b * 7u) % VD_VRING_DESC_BYTES(s->cfg.size); break;
	case 1: gpa = s->cfg.avail_gpa + b % VD_VRING_AVAIL_BYTES(s->cfg.size); break;
	case 2: gpa = s->cfg.used_gpa + b % VD_VRING_USED_BYTES(s->cfg.size); break;
	default: gpa = ((uint64_t)b << 7 | (a >> 2)) % s->gmem; break;
	}
	guest_write(s, gpa, v, 2);
}

static void run(struct st *s, const uint8_t *ops, uint32_t nops)
{
	for (uint32_t k = 0; k < nops; k++) {
		const uint8_t *o = ops + 4u * k;

		switch (o[0] % 12) {
		case 0:
		case 1: op_pop(s, o[1]); break;
		case 2: op_push(s, o[1], o[2], o[3]); break;
		case 3: op_publish(s); break;
		case 4: {
			device_enter(s);
			(void)vd_vring_need_notify(s->vq);
			device_exit(s);
			break;
		}
		case 5: {
			int broken_before = vd_vring_broken(s->vq);

			device_enter(s);
			if (o[1] & 1)
				(void)vd_vring_set_avail_event(s->vq, (uint16_t)(o[2] | o[3] << 8));
			else
				(void)vd_vring_enable_kick(s->vq, o[1] & 2);
			(void)vd_vring_avail_count(s->vq);
			device_exit(s);
			if (!broken_before && vd_vring_broken(s->vq))
				s->breaks++;
			break;
		}
		case 6:
		case 7: op_post(s, o[1], o[2], o[3]); break;
		case 8: op_rewrite(s, o[1], o[2], o[3]); break;
		case 9:
			if (o[1] == 0x5a) {
				vd_vring_reset(s->vq);
				memset(s->popped, 0, sizeof(s->popped));
				s->npopped = 0;
				s->npushed = 0;
				s->skipped_unpublished = 0;
				s->used_idx = 0;
			}
			break;
		case 10: op_long_chain(s, o[1], o[2], o[3]); break;
		case 11: op_indirect_table(s, o[1], o[2], o[3]); break;
		}
		check_stats(s);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st *s;
	uint32_t nops, n;
	const uint8_t *h;
	size_t at;

	if (size < 9)
		return 0;
	h = data;
	nops = data[8];
	at = 9u + 4u * nops;
	if (at > size)
		return 0;

	s = calloc(1, sizeof(*s));
	if (!s)
		abort();
	n = 1u << (h[0] % 16); /* 1..32768 */
	s->cfg.size = n;
	s->cfg.features = ((h[1] & 1) ? VD_VIRTIO_F_EVENT_IDX : 0) |
			  ((h[1] & 2) ? VD_VIRTIO_F_INDIRECT_DESC : 0) |
			  ((h[1] & 4) ? VD_VIRTIO_F_VERSION_1 : 0) |
			  ((h[1] & 8) ? VD_VIRTIO_NET_F_MRG_RXBUF : 0);
	s->cfg.flags = (h[1] & 0x10) ? 0 : VD_VRING_F_WRITE_ONLY;
	if (n <= SMALLQ) {
		s->gmem = GMEM;
		s->cfg.desc_gpa = (uint64_t)h[2] * 128u + ((h[1] & 0x20) ? (h[5] & 15u) : 0);
		s->cfg.avail_gpa = (uint64_t)h[3] * 128u + ((h[1] & 0x40) ? (h[5] >> 4 & 1u) : 0);
		s->cfg.used_gpa = (uint64_t)h[4] * 128u + ((h[1] & 0x80) ? (h[5] >> 5 & 3u) : 0);
		s->table = 6u * PG;
		s->lbuf = 4u * PG;
	} else {
		/* legacy layout from the header's address; used ring aligned to
		 * 4096 or (h[1] & 0x80) 4 */
		if (vd_vring_legacy_layout(&s->cfg, (uint64_t)h[2] * 128u, n, (h[1] & 0x80) ? 4 : PG))
			abort();
		s->cfg.desc_gpa += (h[1] & 0x20) ? (h[5] & 15u) : 0;
		s->table = (s->cfg.used_gpa + VD_VRING_USED_BYTES(n) + PG - 1) & ~(uint64_t)(PG - 1);
		s->data0 = (s->table + 16ull * (n + 1) + PG - 1) & ~(uint64_t)(PG - 1);
		s->gmem = s->data0 + LBUFS;
		s->lbuf = s->data0;
	}
	s->snap = malloc(s->gmem);
	if (!s->snap)
		abort();
	s->ram = guarded_map(&s->mem, s->gmem, PROT_READ | PROT_WRITE);
	s->gm.base = s->ram;
	s->gm.size = s->gmem;
	if (h[6] & 0x80) {
		s->gm.rxwin_gpa = s->data0 + (uint64_t)(h[6] & 7u) * PG;
		s->gm.rxwin_len = (uint64_t)(1u + (h[7] & 3u)) * PG;
		if (s->gm.rxwin_gpa + s->gm.rxwin_len > s->gmem)
			s->gm.rxwin_len = s->gmem - s->gm.rxwin_gpa;
	}
	guest_write(s, 0, data + at, size - at < s->gmem ? size - at : s->gmem);
	s->used_dirty = false;
	if (s->gm.rxwin_len && mprotect(s->ram + s->gm.rxwin_gpa, s->gm.rxwin_len, PROT_NONE) != 0)
		abort();

	if (vd_vring_create(&s->vq, &s->gm, &s->cfg, NULL) == 0) {
		/* The guest's own avail count starts where its image put it. */
		uint16_t v;

		memcpy(&v, s->ram + s->cfg.avail_gpa + 2, 2);
		s->guest_avail_idx = le16toh(v);
		run(s, data + 9, nops);
		vd_vring_destroy(s->vq);
	}
	guarded_unmap(&s->mem);
	free(s->snap);
	free(s);
	return 0;
}
