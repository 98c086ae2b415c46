/* SPDX-License-Identifier: MIT */
/*
 * The virtqueue and the virtio-net receive queue at their limits, at
 * limit - 1, limit and limit + 1: the largest queue (32768 entries), chains
 * as long as the queue (direct, and through an indirect table of that many
 * entries), a chain whose lengths add up to UINT32_MAX, the longest chain a
 * receive queue takes (64 descriptors) and the most pages it flips
 * (32). Past each limit the answer is the documented one, counted, and
 * nothing else moves. docs/architecture.md ("Limits") lists them.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "seqframe.h"
#include "rqfx.h"
#include "vt.h"
#include "virtio/vnet_rx.h"
#include "virtio/vring.h"

#define PG ((uint64_t)VDEMUX_PAGE_SIZE)
#define QMAX VD_VRING_MAX_SIZE
#define V1 (VD_VIRTIO_F_VERSION_1)
#define IND (VD_VIRTIO_F_INDIRECT_DESC)

/* ---- the virtqueue alone, at 32768 entries ---- */

/* 16 MiB of indirect slots for 32768 heads, the rings, and buffers. */
#define VMEM (40u << 20)

struct vq {
	struct vng_flat f;
	struct vng g;
	struct vd_gmem gm;
	struct vd_vring *vq;
	struct vd_vring_seg *segs;
	uint64_t table; /* room for an indirect table of QMAX + 1 entries */
	uint64_t buf;	/* a buffer every descriptor points into */
};

static void vq_init(struct vq *x, uint32_t qsize)
{
	struct vng_opts o = {.mode = VNG_BIG, .qsize = qsize, .features = V1 | IND, .mem_size = VMEM};
	struct vng_mem m;
	struct vd_vring_config cfg;

	memset(x, 0, sizeof(*x));
	assert_int_equal(vng_flat_init(&x->f, VMEM), 0);
	m = vng_flat_mem(&x->f);
	assert_int_equal(vng_init(&x->g, &m, &o), 0);
	x->gm = vng_flat_gmem(&x->f);
	cfg = vng_ring_config(&x->g);
	assert_int_equal(cfg.size, qsize);
	assert_int_equal(vd_vring_create(&x->vq, &x->gm, &cfg, NULL), 0);
	x->segs = calloc(QMAX + 1, sizeof(*x->segs));
	assert_non_null(x->segs);
	x->table = x->g.buf_gpa;
	x->buf = x->table + 16 * (PG + QMAX + 1);
	x->buf = (x->buf + PG - 1) & ~(PG - 1);
	assert_true(x->buf + (8u << 20) <= VMEM);
}

static void vq_fini(struct vq *x)
{
	assert_true(vng_flat_canary_ok(&x->f));
	vd_vring_destroy(x->vq);
	vng_fini(&x->g);
	vng_flat_fini(&x->f);
	free(x->segs);
}

static void post_raw(struct vq *x, uint16_t head)
{
	vng_write_avail(&x->g, x->g.avail_idx_shadow, head);
	x->g.avail_idx_shadow++;
	vng_write_avail_idx(&x->g, x->g.avail_idx_shadow);
}

/* A chain of @n ring descriptors from 0, each @len bytes. */
static void direct_chain(struct vq *x, uint32_t n, uint32_t len)
{
	for (uint32_t i = 0; i < n; i++)
		vng_write_desc(&x->g, (uint16_t)i, x->buf, len,
			       VD_VRING_DESC_F_WRITE | (i + 1 < n ? VD_VRING_DESC_F_NEXT : 0),
			       (uint16_t)(i + 1));
}

/* An indirect table of @n entries of @len bytes (the last @last bytes),
 * named by ring descriptor @head. */
static void indirect_chain(struct vq *x, uint16_t head, uint32_t n, uint32_t len, uint32_t last)
{
	for (uint32_t i = 0; i < n; i++) {
		uint8_t d[16];
		uint64_t a = htole64(x->buf);
		uint32_t l = htole32(i + 1 < n ? len : last);
		uint16_t fl = htole16(VD_VRING_DESC_F_WRITE | (i + 1 < n ? VD_VRING_DESC_F_NEXT : 0));
		uint16_t nx = htole16((uint16_t)(i + 1));

		memcpy(d, &a, 8);
		memcpy(d + 8, &l, 4);
		memcpy(d + 12, &fl, 2);
		memcpy(d + 14, &nx, 2);
		memcpy(x->f.base + x->table + 16ull * i, d, 16);
	}
	vng_write_desc(&x->g, head, x->table, 16u * n, VD_VRING_DESC_F_INDIRECT, 0);
}

static uint64_t errs(const struct vq *x, enum vd_vring_err e)
{
	return vd_vring_stats(x->vq)->err[e];
}

static void used_entry(const struct vq *x, uint16_t slot, uint32_t *id, uint32_t *len)
{
	const uint8_t *e = x->f.base + x->g.used_gpa + 4 + 8u * (slot & (x->g.o.qsize - 1));

	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
	*id = le32toh(*id);
	*len = le32toh(*len);
}

/* Pop the posted chain: taken whole (nseg segments, len bytes), pushed
 * back whole, published. */
static void expect_whole(struct vq *x, uint32_t max_segs, uint32_t nseg, uint32_t len)
{
	struct vd_vring_chain c;

	assert_int_equal(vd_vring_pop(x->vq, &c, x->segs, max_segs), 1);
	assert_int_equal(c.nseg, nseg);
	assert_int_equal(c.len, len);
	assert_int_equal(x->segs[nseg - 1].gpa, x->buf);
	assert_int_equal(vd_vring_push(x->vq, c.head, len), 0);
	assert_int_equal(vd_vring_publish(x->vq), 1);
	assert_int_equal(vd_vring_inflight(x->vq), 0);
}

/* Pop the posted chain: skipped as @e (one count, no other), returned with
 * used len 0, the queue not broken. */
static void expect_skipped(struct vq *x, uint32_t max_segs, enum vd_vring_err e, uint16_t head)
{
	struct vd_vring_chain c;
	uint64_t before = errs(x, e), skipped = vd_vring_stats(x->vq)->skipped;
	uint16_t slot = x->g.last_used_idx;
	uint32_t id, len;

	assert_int_equal(vd_vring_pop(x->vq, &c, x->segs, max_segs), 0);
	assert_int_equal(errs(x, e), before + 1);
	assert_int_equal(vd_vring_stats(x->vq)->skipped, skipped + 1);
	assert_int_equal(vd_vring_broken(x->vq), 0);
	assert_int_equal(vd_vring_publish(x->vq), 1);
	used_entry(x, (uint16_t)(vd_vring_stats(x->vq)->publishes - 1 + slot), &id, &len);
	assert_int_equal(id, head);
	assert_int_equal(len, 0);
	assert_int_equal(vd_vring_inflight(x->vq), 0);
}

static void test_vring_queue_sizes_up_to_32768_and_no_more(void **state)
{
	struct vq x;
	struct vd_vring *q = NULL;
	struct vd_vring_config cfg;

	(void)state;
	vq_init(&x, QMAX);
	cfg = vng_ring_config(&x.g);
	cfg.size = QMAX / 2;
	assert_int_equal(vd_vring_create(&q, &x.gm, &cfg, NULL), 0);
	vd_vring_destroy(q);
	cfg.size = QMAX * 2;
	q = NULL;
	assert_int_equal(vd_vring_create(&q, &x.gm, &cfg, NULL), -EINVAL);
	assert_null(q);
	cfg.size = QMAX - 1;
	assert_int_equal(vd_vring_create(&q, &x.gm, &cfg, NULL), -EINVAL);
	assert_int_equal(vd_vring_legacy_layout(&cfg, 0, QMAX, 4096), 0);
	assert_int_equal(cfg.used_gpa, 0x91000);
	assert_int_equal(vd_vring_legacy_layout(&cfg, 0, QMAX * 2, 4096), -EINVAL);
	vq_fini(&x);
}

/* Direct chains of 32767 and 32768 descriptors (every one of the table)
 * pop whole; 32768 into an array of 32767 is skipped as too long. */
static void test_vring_direct_chain_as_long_as_the_largest_queue(void **state)
{
	struct vq x;

	(void)state;
	vq_init(&x, QMAX);
	direct_chain(&x, QMAX - 1, 64);
	post_raw(&x, 0);
	expect_whole(&x, QMAX, QMAX - 1, (QMAX - 1) * 64);
	direct_chain(&x, QMAX, 64);
	post_raw(&x, 0);
	expect_whole(&x, QMAX, QMAX, QMAX * 64);
	post_raw(&x, 0);
	expect_skipped(&x, QMAX - 1, VD_VRING_ERR_TOO_LONG, 0);
	/* a last descriptor that goes on makes it a loop */
	vng_write_desc(&x.g, QMAX - 1, x.buf, 64, VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT, 0);
	post_raw(&x, 0);
	expect_skipped(&x, QMAX, VD_VRING_ERR_LOOP, 0);
	vq_fini(&x);
}

/* Indirect tables of 32767 and 32768 entries pop whole; 32769 entries are
 * more than the queue size: too long. */
static void test_vring_indirect_table_of_the_queue_size_and_one_more(void **state)
{
	struct vq x;

	(void)state;
	vq_init(&x, QMAX);
	indirect_chain(&x, 5, QMAX - 1, 16, 16);
	post_raw(&x, 5);
	expect_whole(&x, QMAX + 1, QMAX - 1, (QMAX - 1) * 16);
	indirect_chain(&x, 5, QMAX, 16, 16);
	post_raw(&x, 5);
	expect_whole(&x, QMAX + 1, QMAX, QMAX * 16);
	indirect_chain(&x, 5, QMAX + 1, 16, 16);
	post_raw(&x, 5);
	expect_skipped(&x, QMAX + 1, VD_VRING_ERR_TOO_LONG, 5);
	vq_fini(&x);
}

/* A chain's length is a used-ring length: 32 bits. 1024 segments of 4 MiB
 * less one byte add up to UINT32_MAX (taken, and pushed back with that
 * length); one byte more overflows. */
static void test_vring_chain_length_up_to_uint32_max(void **state)
{
	const uint32_t seg = 4u << 20;
	struct vq x;

	(void)state;
	vq_init(&x, QMAX);
	indirect_chain(&x, 9, 1024, seg, seg - 2);
	post_raw(&x, 9);
	expect_whole(&x, QMAX, 1024, UINT32_MAX - 1);
	indirect_chain(&x, 9, 1024, seg, seg - 1);
	post_raw(&x, 9);
	expect_whole(&x, QMAX, 1024, UINT32_MAX);
	indirect_chain(&x, 9, 1024, seg, seg);
	post_raw(&x, 9);
	expect_skipped(&x, QMAX, VD_VRING_ERR_LEN_OVERFLOW, 9);
	vq_fini(&x);
}

/* ---- a receive queue on the engine ---- */

#define RAM_PAGES 8192u /* 32 MiB: the 16 MiB of indirect slots of 32768 heads, and more */
#define RAM ((uint64_t)RAM_PAGES * PG)
#define MAXF 65536u

struct rq {
	struct rqfx fx;
	vdemux_vnet_rxq *q;
	struct vng g;
	uint8_t mac[6];
	uint32_t seq;
};

static void rq_init(struct rq *r)
{
	memset(r, 0, sizeof(*r));
	rqfx_init(&r->fx, &(struct rqfx_opts){.ram_pages = RAM_PAGES, .max_frame = MAXF});
	struct vdemux_vnet_rxq_opts qo = rqfx_rxq_opts(&r->fx);
	qo.copy = VDEMUX_COPY_NEVER;
	memcpy(r->mac, (uint8_t[6]){0x02, 0, 0, 0, 1, 1}, 6);
	r->q = rqfx_rxq_add(&r->fx, &qo, r->mac);
}

static void rq_check(struct rq *r)
{
	char msg[256];

	if (vdemux_engine_check(r->fx.eng, msg, sizeof(msg)))
		fail_msg("engine check: %s", msg);
}

static void rq_fini(struct rq *r)
{
	rq_check(r);
	vdemux_vnet_rxq_destroy(r->q);
	vng_fini(&r->g);
	rq_check(r);
	rqfx_fini(&r->fx);
}

/* Lay the guest's rings out for a queue of @qsize; returns what start
 * returns. */
static int rq_start(struct rq *r, enum vng_mode mode, uint32_t qsize, uint32_t ring_size)
{
	struct vng_mem m = rqfx_mem(&r->fx);
	struct vng_opts vo = {.mode = mode, .qsize = qsize, .features = V1, .mem_size = RAM};
	struct vdemux_vnet_ring ring;

	vng_fini(&r->g);
	assert_int_equal(vng_init(&r->g, &m, &vo), 0);
	ring = vng_vnet_ring(&r->g);
	ring.size = ring_size;
	return vdemux_vnet_rxq_start(r->q, &ring);
}

static struct vdemux_vnet_rxq_stats rq_stats(struct rq *r)
{
	struct vdemux_vnet_rxq_stats s;

	assert_int_equal(vdemux_vnet_rxq_stats(r->q, &s, sizeof(s)), 0);
	return s;
}

static void send(struct rq *r, uint8_t *buf, uint32_t len)
{
	struct vdemux_frame f = {.data = buf, .len = len};

	seqframe_make(buf, r->mac, r->seq++, len);
	assert_int_equal(vdemux_rx_burst(r->fx.eng, &f, 1), 1);
}

/* Ring sizes: 16384 and 32768 start (and a 32768 queue carries frames to
 * the guest); 65536 and 32767 are refused with -EINVAL and leave the queue
 * stopped, nothing counted. */
static void test_receive_queue_of_32768_entries_and_no_larger(void **state)
{
	struct rq r;
	struct vdemux_vnet_rxq_stats s0;
	struct vdemux_engine_stats e0, e1;
	uint8_t *buf = malloc(2048), *rx = malloc(2048);
	struct vng_hdr h;
	uint32_t posted;

	(void)state;
	assert_non_null(buf);
	assert_non_null(rx);
	rq_init(&r);
	s0 = rq_stats(&r);
	assert_int_equal(vdemux_engine_stats(r.fx.eng, &e0, sizeof(e0)), 0);
	assert_int_equal(rq_start(&r, VNG_SMALL, QMAX, QMAX * 2), -EINVAL);
	assert_int_equal(rq_start(&r, VNG_SMALL, QMAX, QMAX - 1), -EINVAL);
	assert_int_equal(vdemux_vnet_rxq_kick(r.q), -ENOTCONN);
	assert_memory_equal(&s0, &(struct vdemux_vnet_rxq_stats){0}, sizeof(s0));
	assert_int_equal(vdemux_engine_stats(r.fx.eng, &e1, sizeof(e1)), 0);
	assert_memory_equal(&e0, &e1, sizeof(e0));
	assert_int_equal(rq_start(&r, VNG_SMALL, QMAX / 2, QMAX / 2), 0);
	assert_int_equal(vdemux_vnet_rxq_stop(r.q), 0);
	assert_int_equal(rq_start(&r, VNG_SMALL, QMAX, QMAX), 0);
	posted = vng_refill(&r.g);
	assert_true(posted > 1000);
	assert_int_equal(vdemux_vnet_rxq_kick(r.q), (int)posted);
	for (uint32_t i = 0; i < posted + 10; i++) {
		send(&r, buf, 60 + i % 1400);
		if (i % 512 == 511 || i + 1 == posted + 10) {
			int n;

			while ((n = vng_recv(&r.g, &h, rx, 2048)) != -EAGAIN) {
				uint32_t seq, len;

				assert_true(n > 0);
				seqframe_fields(rx, &seq, &len);
				assert_int_equal(seqframe_first_bad(rx, seq, len), len);
			}
			vng_refill(&r.g);
			assert_true(vdemux_vnet_rxq_kick(r.q) >= 0);
		}
	}
	assert_int_equal(rq_stats(&r).frames, posted + 10);
	assert_int_equal(rq_stats(&r).skipped, 0);
	assert_int_equal(vdemux_vnet_rxq_needs_reset(r.q), 0);
	rq_fini(&r);
	free(buf);
	free(rx);
}

/* Post a hand-written chain of @nseg descriptors from ring entry @head,
 * through the avail ring the guest's driver keeps. */
static void rq_post(struct rq *r, uint16_t head, const uint64_t *gpa, const uint32_t *len, uint32_t nseg)
{
	for (uint32_t i = 0; i < nseg; i++)
		vng_write_desc(&r->g, (uint16_t)(head + i), gpa[i], len[i],
			       VD_VRING_DESC_F_WRITE | (i + 1 < nseg ? VD_VRING_DESC_F_NEXT : 0),
			       (uint16_t)(head + i + 1));
	vng_write_avail(&r->g, r->g.avail_idx_shadow, head);
	r->g.avail_idx_shadow++;
	vng_write_avail_idx(&r->g, r->g.avail_idx_shadow);
}

static void rq_used(struct rq *r, uint16_t slot, uint32_t *id, uint32_t *len)
{
	const uint8_t *e = r->fx.ram + r->g.used_gpa + 4 + 8u * (slot & (r->g.o.qsize - 1));

	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
	*id = le32toh(*id);
	*len = le32toh(*len);
}

/* Chains of 63 and 64 descriptors (the most a receive queue takes) carry a
 * frame; 65 are given back unused (len 0), counted as skipped and as a ring
 * error. */
static void test_receive_queue_takes_chains_of_up_to_64_descriptors(void **state)
{
	struct rq r;
	uint64_t gpa[65];
	uint32_t len[65], id, ulen;
	uint8_t *buf = malloc(MAXF);
	uint16_t head = 0;

	(void)state;
	assert_non_null(buf);
	rq_init(&r);
	assert_int_equal(rq_start(&r, VNG_SMALL, 256, 256), 0);
	for (uint32_t n = 63; n <= 65; n++) {
		struct vdemux_vnet_rxq_stats s = rq_stats(&r);

		for (uint32_t i = 0; i < n; i++) {
			gpa[i] = r.g.buf_gpa + 64ull * i;
			len[i] = 64;
		}
		rq_post(&r, head, gpa, len, n);
		/* taken either way; the one too long is given back unused */
		assert_int_equal(vdemux_vnet_rxq_kick(r.q), 1);
		assert_int_equal(rq_stats(&r).buffers, s.buffers + 1);
		assert_int_equal(rq_stats(&r).skipped, s.skipped + (n > 64));
		assert_int_equal(rq_stats(&r).ring_errors, s.ring_errors + (n > 64));
		if (n <= 64) {
			send(&r, buf, 1500);
			assert_int_equal(rq_stats(&r).frames, s.frames + 1);
		}
		rq_used(&r, (uint16_t)(n - 63), &id, &ulen);
		assert_int_equal(id, head);
		assert_int_equal(ulen, n <= 64 ? 12 + 1500 : 0);
		head = (uint16_t)(head + n);
	}
	assert_int_equal(vdemux_vnet_rxq_needs_reset(r.q), 0);
	rq_fini(&r);
	free(buf);
}

/* Big-packet chains of 31 and 32 pages (the header's page and whole pages)
 * are flippable: their pages are posted to the engine and a 64 KiB frame
 * is flipped in; a chain of 33 pages is taken to copy into. */
static void test_receive_queue_flips_chains_of_up_to_32_pages(void **state)
{
	struct rq r;
	uint64_t gpa[35];
	uint32_t len[35], id, ulen;
	uint8_t *buf = malloc(MAXF), *got = malloc(MAXF);
	uint16_t head = 0;

	(void)state;
	assert_non_null(buf);
	assert_non_null(got);
	rq_init(&r);
	assert_int_equal(rq_start(&r, VNG_BIG, 256, 256), 0);
	for (uint32_t np = 31; np <= 33; np++) {
		struct vdemux_vnet_rxq_stats s = rq_stats(&r);
		uint64_t first = r.g.buf_gpa + PG * 40 * (np - 31);
		uint32_t k = 0, done = 0;

		gpa[k] = first;
		len[k++] = 12;
		gpa[k] = first + 12;
		len[k++] = (uint32_t)PG - 12;
		for (uint32_t p = 1; p < np; p++) {
			gpa[k] = first + PG * p;
			len[k++] = (uint32_t)PG;
		}
		rq_post(&r, head, gpa, len, k);
		assert_int_equal(vdemux_vnet_rxq_kick(r.q), 1);
		assert_int_equal(rq_stats(&r).page_buffers, s.page_buffers + (np <= 32));
		send(&r, buf, MAXF);
		assert_int_equal(rq_stats(&r).frames, s.frames + 1);
		assert_int_equal(rq_stats(&r).flipped, s.flipped + (np <= 32));
		rq_used(&r, (uint16_t)(np - 31), &id, &ulen);
		assert_int_equal(id, head);
		assert_int_equal(ulen, 12 + MAXF);
		/* the frame, in the chain's order, from the guest's view */
		for (uint32_t i = 1; i < k && done < MAXF; i++) {
			uint32_t n = MAXF - done < len[i] ? MAXF - done : len[i];

			memcpy(got + done, r.fx.ram + gpa[i], n);
			done += n;
		}
		assert_memory_equal(got, buf, MAXF);
		head = (uint16_t)(head + k);
		rq_check(&r);
	}
	rq_fini(&r);
	free(buf);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vring_queue_sizes_up_to_32768_and_no_more),
		cmocka_unit_test(test_vring_direct_chain_as_long_as_the_largest_queue),
		cmocka_unit_test(test_vring_indirect_table_of_the_queue_size_and_one_more),
		cmocka_unit_test(test_vring_chain_length_up_to_uint32_max),
		cmocka_unit_test(test_receive_queue_of_32768_entries_and_no_larger),
		cmocka_unit_test(test_receive_queue_takes_chains_of_up_to_64_descriptors),
		cmocka_unit_test(test_receive_queue_flips_chains_of_up_to_32_pages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
