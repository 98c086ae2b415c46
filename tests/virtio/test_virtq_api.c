/* SPDX-License-Identifier: MIT */
/*
 * The public split virtqueue (include/vdemux/virtq.h) from outside: only the
 * installed header is used, and the test plays the driver by writing the
 * rings in a buffer that stands for guest RAM. It pins what the header
 * promises: the options checked, chains as iovecs (readable then writable,
 * indirect tables), used entries and when the guest is to be interrupted,
 * kicks asked for, malformed chains skipped and counted with a length-0 used
 * entry, broken rings until a reset, and nothing written outside the used
 * ring and avail_event.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <vdemux/virtq.h>

#include "vq_desc.h"

#define RAM_SIZE (1u << 20)
#define QS 16u
#define DESC_GPA 0x1000u
#define AVAIL_GPA 0x2000u
#define USED_GPA 0x3000u
#define IND_GPA 0x4000u /* an indirect table */
#define BUF_GPA 0x10000u
#define F_NEXT 1u
#define F_WRITE 2u
#define F_INDIRECT 4u

/* The driver's side: guest RAM and the indices it keeps. */
struct drv {
	uint8_t *ram;
	uint16_t avail_idx;
	vdemux_virtq *q;
};

static void put16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, 2);
}

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return le32toh(v);
}

static void desc_at(struct drv *d, uint64_t table, uint16_t i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	vq_desc_put(d->ram + table + 16u * i, addr, len, flags, next);
}

static void desc(struct drv *d, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	desc_at(d, DESC_GPA, i, addr, len, flags, next);
}

static void offer(struct drv *d, uint16_t head)
{
	put16(d->ram + AVAIL_GPA + 4 + 2u * (d->avail_idx % QS), head);
	d->avail_idx++;
	put16(d->ram + AVAIL_GPA + 2, d->avail_idx);
}

static uint16_t used_idx(const struct drv *d)
{
	return get16(d->ram + USED_GPA + 2);
}

static void used_entry(const struct drv *d, uint16_t slot, uint32_t *id, uint32_t *len)
{
	const uint8_t *e = d->ram + USED_GPA + 4 + 8u * (slot % QS);
	*id = get32(e);
	*len = get32(e + 4);
}

static void set_used_event(struct drv *d, uint16_t v)
{
	put16(d->ram + AVAIL_GPA + 4 + 2u * QS, v);
}

static uint16_t avail_event(const struct drv *d)
{
	return get16(d->ram + USED_GPA + 4 + 8u * QS);
}

static struct vdemux_virtq_opts opts_for(struct drv *d, uint64_t features, uint32_t flags)
{
	return VDEMUX_OPTS(vdemux_virtq_opts, .ram = d->ram, .ram_size = RAM_SIZE, .desc_gpa = DESC_GPA,
			   .avail_gpa = AVAIL_GPA, .used_gpa = USED_GPA, .size = QS, .flags = flags,
			   .features = features);
}

static void drv_init(struct drv *d, uint64_t features, uint32_t flags)
{
	memset(d, 0, sizeof(*d));
	d->ram = aligned_alloc(4096, RAM_SIZE);
	assert_non_null(d->ram);
	memset(d->ram, 0, RAM_SIZE);
	struct vdemux_virtq_opts o = opts_for(d, features, flags);
	assert_int_equal(vdemux_virtq_create(&d->q, &o), 0);
}

static void drv_fini(struct drv *d)
{
	vdemux_virtq_destroy(d->q);
	free(d->ram);
}

static struct vdemux_virtq_stats stats(const struct drv *d)
{
	struct vdemux_virtq_stats s;
	assert_int_equal(vdemux_virtq_stats(d->q, &s, sizeof(s)), 0);
	return s;
}

/* ---- creation ---- */

struct hooks {
	int calls, frees, fail_at; /* fail the fail_at-th calloc (1-based), 0: never */
};

static void *calloc_hook(size_t n, size_t size, void *payload)
{
	struct hooks *h = payload;
	if (++h->calls == h->fail_at)
		return NULL;
	return calloc(n, size);
}

static void free_hook(void *p, void *payload)
{
	struct hooks *h = payload;
	h->frees++;
	free(p);
}

static void free_hook_unused(void *p, void *payload)
{
	(void)payload;
	free(p);
}

static void expect_einval(struct drv *d, struct vdemux_virtq_opts o)
{
	vdemux_virtq *q = (vdemux_virtq *)(uintptr_t)0x1;
	assert_int_equal(vdemux_virtq_create(&q, &o), -EINVAL);
	assert_ptr_equal(q, (vdemux_virtq *)(uintptr_t)0x1); /* out unchanged */
	(void)d;
}

static void test_create_rejects_bad_options_and_leaves_out_unchanged(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);
	struct vdemux_virtq_opts o = opts_for(&d, 0, 0);
	vdemux_virtq *q = NULL;

	assert_int_equal(vdemux_virtq_create(NULL, &o), -EINVAL);
	assert_int_equal(vdemux_virtq_create(&q, NULL), -EINVAL);
	o.sz = 0;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.ram = NULL;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.ram_size = 0;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.size = 0;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.size = 24;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.size = 65536;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.flags = 0x2;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.desc_gpa = DESC_GPA + 8;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.avail_gpa = AVAIL_GPA + 1;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.used_gpa = USED_GPA + 2;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.used_gpa = RAM_SIZE - 8;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.avail_gpa = DESC_GPA + 16;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.ram = d.ram + 4;
	expect_einval(&d, o);
	o = opts_for(&d, 0, 0), o.alloc.free = free_hook_unused;
	expect_einval(&d, o);
	drv_fini(&d);
}

static void test_create_accepts_a_smaller_sz_and_rejects_unknown_bytes_past_it(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);
	struct {
		struct vdemux_virtq_opts o;
		uint64_t more;
	} big = {.o = opts_for(&d, 0, 0)};
	vdemux_virtq *q = NULL;

	/* Without the alloc hooks: an older caller's struct. */
	struct vdemux_virtq_opts o = opts_for(&d, 0, 0);
	o.sz = offsetof(struct vdemux_virtq_opts, alloc);
	assert_int_equal(vdemux_virtq_create(&q, &o), 0);
	vdemux_virtq_destroy(q);
	big.o.sz = sizeof(big);
	assert_int_equal(vdemux_virtq_create(&q, &big.o), 0);
	vdemux_virtq_destroy(q);
	big.more = 1;
	assert_int_equal(vdemux_virtq_create(&q, &big.o), -EINVAL);
	drv_fini(&d);
}

static void test_create_uses_the_alloc_hooks_and_frees_everything_on_enomem(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);
	struct hooks h = {0};
	struct vdemux_virtq_opts o = opts_for(&d, 0, 0);
	o.alloc = (struct vdemux_alloc_hooks){.calloc = calloc_hook, .free = free_hook, .payload = &h};
	vdemux_virtq *q = NULL;

	assert_int_equal(vdemux_virtq_create(&q, &o), 0);
	int allocs = h.calls;
	assert_true(allocs > 0);
	vdemux_virtq_destroy(q);
	assert_int_equal(h.frees, allocs);
	for (int k = 1; k <= allocs; k++) {
		h = (struct hooks){.fail_at = k};
		q = NULL;
		assert_int_equal(vdemux_virtq_create(&q, &o), -ENOMEM);
		assert_null(q);
		assert_int_equal(h.frees, h.calls - 1); /* all but the failed one */
	}
	drv_fini(&d);
}

/* ---- chains ---- */

static void test_transmit_chain_pops_as_readable_iovecs_into_guest_ram(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);
	struct vdemux_virtq_chain c;
	struct iovec iov[8];

	desc(&d, 3, BUF_GPA, 12, F_NEXT, 5);
	desc(&d, 5, BUF_GPA + 0x1000, 1500, 0, 0);
	offer(&d, 3);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 8), 1);
	assert_int_equal(c.head, 3);
	assert_int_equal(c.n_read, 2);
	assert_int_equal(c.n_write, 0);
	assert_int_equal(c.read_len, 1512);
	assert_int_equal(c.write_len, 0);
	assert_ptr_equal(iov[0].iov_base, d.ram + BUF_GPA);
	assert_int_equal(iov[0].iov_len, 12);
	assert_ptr_equal(iov[1].iov_base, d.ram + BUF_GPA + 0x1000);
	assert_int_equal(iov[1].iov_len, 1500);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 8), 0);
	drv_fini(&d);
}

static void test_used_entry_is_invisible_until_publish_which_asks_for_an_interrupt(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);
	struct vdemux_virtq_chain c;
	struct iovec iov[8];
	uint32_t id, len, n = 99;

	desc(&d, 0, BUF_GPA, 100, 0, 0);
	offer(&d, 0);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 8), 1);
	assert_int_equal(vdemux_virtq_push(d.q, c.head, 0), 0);
	assert_int_equal(used_idx(&d), 0);
	assert_int_equal(vdemux_virtq_publish(d.q, &n), 1);
	assert_int_equal(n, 1);
	assert_int_equal(used_idx(&d), 1);
	used_entry(&d, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 0);
	/* Nothing new: no store, no interrupt. */
	assert_int_equal(vdemux_virtq_publish(d.q, &n), 0);
	assert_int_equal(n, 0);
	struct vdemux_virtq_stats s = stats(&d);
	assert_int_equal(s.popped, 1);
	assert_int_equal(s.pushed, 1);
	assert_int_equal(s.publishes, 1);
	assert_int_equal(s.interrupts, 1);
	assert_int_equal(s.no_interrupt, 1);
	drv_fini(&d);
}

static void
test_readable_then_writable_chain_splits_and_push_beyond_its_writable_bytes_is_refused_and_counted(
	void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);
	struct vdemux_virtq_chain c;
	struct iovec iov[8];
	uint32_t id, len;

	desc(&d, 1, BUF_GPA, 16, F_NEXT, 2);
	desc(&d, 2, BUF_GPA + 0x100, 200, F_NEXT | F_WRITE, 4);
	desc(&d, 4, BUF_GPA + 0x1000, 300, F_WRITE, 0);
	offer(&d, 1);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 8), 1);
	assert_int_equal(c.n_read, 1);
	assert_int_equal(c.n_write, 2);
	assert_int_equal(c.read_len, 16);
	assert_int_equal(c.write_len, 500);
	assert_ptr_equal(iov[1].iov_base, d.ram + BUF_GPA + 0x100);
	assert_ptr_equal(iov[2].iov_base, d.ram + BUF_GPA + 0x1000);
	/* The whole chain is 516 bytes, but only 500 are the device's to write. */
	assert_int_equal(vdemux_virtq_push(d.q, c.head, 501), -EINVAL);
	assert_int_equal(vdemux_virtq_push(d.q, 7, 0), -EINVAL);  /* never popped */
	assert_int_equal(vdemux_virtq_push(d.q, 16, 0), -EINVAL); /* out of range */
	assert_int_equal(vdemux_virtq_push(d.q, c.head, 500), 0);
	assert_int_equal(vdemux_virtq_push(d.q, c.head, 500), -EINVAL); /* twice */
	assert_int_equal(vdemux_virtq_publish(d.q, NULL), 1);
	used_entry(&d, 0, &id, &len);
	assert_int_equal(id, 1);
	assert_int_equal(len, 500);
	/* each refusal counted, none of them pushed anything */
	struct vdemux_virtq_stats st;
	assert_int_equal(vdemux_virtq_stats(d.q, &st, sizeof(st)), 0);
	assert_int_equal(st.refused, 4);
	assert_int_equal(st.pushed, 1);
	assert_int_equal(st.skipped, 0);
	drv_fini(&d);
}

static void test_indirect_table_pops_as_its_descriptors(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, VDEMUX_VIRTQ_F_INDIRECT_DESC, 0);
	struct vdemux_virtq_chain c;
	struct iovec iov[8];

	desc_at(&d, IND_GPA, 0, BUF_GPA, 10, F_NEXT, 1);
	desc_at(&d, IND_GPA, 1, BUF_GPA + 0x2000, 4096, F_NEXT | F_WRITE, 2);
	desc_at(&d, IND_GPA, 2, BUF_GPA + 0x3000, 4096, F_WRITE, 0);
	desc(&d, 6, IND_GPA, 3 * 16, F_INDIRECT, 0);
	offer(&d, 6);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 8), 1);
	assert_int_equal(c.head, 6);
	assert_int_equal(c.n_read, 1);
	assert_int_equal(c.n_write, 2);
	assert_int_equal(c.write_len, 8192);
	assert_ptr_equal(iov[2].iov_base, d.ram + BUF_GPA + 0x3000);
	drv_fini(&d);
}

static void test_indices_wrap_past_65535(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);
	struct vdemux_virtq_chain c;
	struct iovec iov[2];
	uint32_t id, len;

	for (uint32_t i = 0; i < 70000; i++) {
		uint16_t head = (uint16_t)(i % QS);
		desc(&d, head, BUF_GPA + 64u * head, 64, F_WRITE, 0);
		offer(&d, head);
		assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 2), 1);
		assert_int_equal(c.head, head);
		assert_int_equal(vdemux_virtq_push(d.q, head, (uint32_t)(i % 64)), 0);
		assert_int_equal(vdemux_virtq_publish(d.q, NULL), 1);
		assert_int_equal(used_idx(&d), (uint16_t)(i + 1));
		used_entry(&d, (uint16_t)i, &id, &len);
		assert_int_equal(id, head);
		assert_int_equal(len, i % 64);
	}
	drv_fini(&d);
}

/* ---- malformed chains: skipped, counted, given back with length 0 ---- */

/* Offer the malformed chain at @bad, then a good one at head 0: pop must
 * return the good one, count @err once, and publish a length-0 entry for
 * the bad head after the good one. */
static void expect_skipped(struct drv *d, uint16_t bad, int err, unsigned max_iov)
{
	struct vdemux_virtq_chain c;
	struct iovec iov[QS];
	uint32_t id, len;
	uint16_t u = used_idx(d);
	struct vdemux_virtq_stats before = stats(d);

	desc(d, 0, BUF_GPA, 64, F_WRITE, 0);
	offer(d, bad);
	offer(d, 0);
	assert_int_equal(vdemux_virtq_pop(d->q, &c, iov, max_iov), 1);
	assert_int_equal(c.head, 0);
	assert_int_equal(vdemux_virtq_push(d->q, 0, 64), 0);
	assert_int_equal(vdemux_virtq_publish(d->q, NULL), 1);
	assert_int_equal(used_idx(d), (uint16_t)(u + 2));
	used_entry(d, u, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 64);
	used_entry(d, (uint16_t)(u + 1), &id, &len);
	assert_int_equal(id, bad);
	assert_int_equal(len, 0);
	struct vdemux_virtq_stats after = stats(d);
	assert_int_equal(after.err[err], before.err[err] + 1);
	assert_int_equal(after.skipped, before.skipped + 1);
	assert_int_equal(vdemux_virtq_needs_reset(d->q), 0);
}

static void test_malformed_chains_are_skipped_counted_and_given_back_empty(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);

	desc(&d, 1, RAM_SIZE - 8, 16, 0, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_ADDR_RANGE, QS);
	desc(&d, 1, UINT64_MAX - 4, 16, 0, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_ADDR_RANGE, QS);
	desc(&d, 1, USED_GPA + 8, 16, 0, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_RING_OVERLAP, QS);
	desc(&d, 1, DESC_GPA, 16, 0, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_RING_OVERLAP, QS);
	desc(&d, 1, BUF_GPA, 0, 0, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_ZERO_LEN, QS);
	desc(&d, 1, BUF_GPA, 16, F_NEXT, 2);
	desc(&d, 2, BUF_GPA, 16, F_NEXT, 1);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_LOOP, QS);
	desc(&d, 1, BUF_GPA, 16, F_NEXT, QS);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_NEXT_RANGE, QS);
	desc(&d, 1, BUF_GPA, 16, F_WRITE | F_NEXT, 2);
	desc(&d, 2, BUF_GPA, 16, 0, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_READ_ONLY, QS);
	desc(&d, 1, IND_GPA, 16, F_INDIRECT, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_INDIRECT_FEATURE, QS);
	/* Three descriptors where the caller has room for two. */
	desc(&d, 1, BUF_GPA, 16, F_NEXT, 2);
	desc(&d, 2, BUF_GPA, 16, F_NEXT, 3);
	desc(&d, 3, BUF_GPA, 16, 0, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_TOO_LONG, 2);
	drv_fini(&d);
}

static void test_malformed_indirect_tables_are_skipped(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, VDEMUX_VIRTQ_F_INDIRECT_DESC, 0);

	desc(&d, 1, IND_GPA, 20, F_INDIRECT, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_INDIRECT_LEN, QS);
	desc(&d, 1, IND_GPA, 0, F_INDIRECT, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_INDIRECT_LEN, QS);
	desc(&d, 1, RAM_SIZE - 16, 32, F_INDIRECT, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_INDIRECT_RANGE, QS);
	desc(&d, 1, IND_GPA, 16, F_INDIRECT | F_NEXT, 2);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_INDIRECT_NEXT, QS);
	desc_at(&d, IND_GPA, 0, IND_GPA, 16, F_INDIRECT, 0);
	desc(&d, 1, IND_GPA, 16, F_INDIRECT, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_INDIRECT_NESTED, QS);
	desc_at(&d, IND_GPA, 0, BUF_GPA, 16, F_NEXT, 0); /* a table looping on itself */
	desc(&d, 1, IND_GPA, 16, F_INDIRECT, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_LOOP, QS);
	drv_fini(&d);
}

static void test_write_only_queue_skips_a_readable_descriptor(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, VDEMUX_VIRTQ_WRITE_ONLY);
	desc(&d, 1, BUF_GPA, 16, 0, 0);
	expect_skipped(&d, 1, VDEMUX_VIRTQ_ERR_READ_ONLY, QS);
	drv_fini(&d);
}

/* ---- broken rings ---- */

static void test_avail_index_jump_breaks_the_queue_until_reset(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);
	struct vdemux_virtq_chain c;
	struct iovec iov[4];

	put16(d.ram + AVAIL_GPA + 2, QS + 1);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 4), -EIO);
	assert_int_equal(vdemux_virtq_needs_reset(d.q), 1);
	/* A kick request on a broken ring says "look": pop reports it. */
	assert_int_equal(vdemux_virtq_enable_kick(d.q, true), 1);
	assert_int_equal(stats(&d).err[VDEMUX_VIRTQ_ERR_AVAIL_IDX], 1);
	/* Sticky, whatever the driver writes now. */
	put16(d.ram + AVAIL_GPA + 2, 0);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 4), -EIO);
	/* The driver resets the device and starts over. */
	assert_int_equal(vdemux_virtq_reset(d.q), 0);
	assert_int_equal(vdemux_virtq_needs_reset(d.q), 0);
	d.avail_idx = 0;
	desc(&d, 2, BUF_GPA, 8, 0, 0);
	offer(&d, 2);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 4), 1);
	assert_int_equal(c.head, 2);
	drv_fini(&d);
}

static void test_head_out_of_range_or_in_flight_breaks_the_queue(void **state)
{
	(void)state;
	struct drv d;
	struct vdemux_virtq_chain c;
	struct iovec iov[4];

	drv_init(&d, 0, 0);
	offer(&d, QS);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 4), -EIO);
	assert_int_equal(stats(&d).err[VDEMUX_VIRTQ_ERR_HEAD_RANGE], 1);
	assert_int_equal(vdemux_virtq_needs_reset(d.q), 1);
	drv_fini(&d);

	drv_init(&d, 0, 0);
	desc(&d, 3, BUF_GPA, 8, 0, 0);
	offer(&d, 3);
	offer(&d, 3);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 4), 1);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 4), -EIO);
	assert_int_equal(stats(&d).err[VDEMUX_VIRTQ_ERR_HEAD_INFLIGHT], 1);
	/* The chain popped before the queue broke may still be given back. */
	assert_int_equal(vdemux_virtq_push(d.q, 3, 0), 0);
	drv_fini(&d);
}

/* ---- interrupts and kicks ---- */

static void one_round(struct drv *d, uint16_t head)
{
	struct vdemux_virtq_chain c;
	struct iovec iov[4];
	desc(d, head, BUF_GPA, 8, 0, 0);
	offer(d, head);
	assert_int_equal(vdemux_virtq_pop(d->q, &c, iov, 4), 1);
	assert_int_equal(vdemux_virtq_push(d->q, head, 0), 0);
}

static void test_event_idx_interrupts_only_when_the_used_index_passes_used_event(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, VDEMUX_VIRTQ_F_EVENT_IDX, 0);

	set_used_event(&d, 2); /* interrupt when entry 2 is used (idx goes to 3) */
	one_round(&d, 0);
	assert_int_equal(vdemux_virtq_publish(d.q, NULL), 0);
	one_round(&d, 1);
	assert_int_equal(vdemux_virtq_publish(d.q, NULL), 0);
	one_round(&d, 2);
	assert_int_equal(vdemux_virtq_publish(d.q, NULL), 1);
	/* A batch stepping over used_event interrupts once. */
	set_used_event(&d, 4);
	one_round(&d, 3);
	one_round(&d, 4);
	one_round(&d, 5);
	assert_int_equal(vdemux_virtq_publish(d.q, NULL), 1);
	/* NO_INTERRUPT is ignored with EVENT_IDX. */
	put16(d.ram + AVAIL_GPA, 1);
	set_used_event(&d, 6);
	one_round(&d, 6);
	assert_int_equal(vdemux_virtq_publish(d.q, NULL), 1);
	drv_fini(&d);
}

static void test_no_interrupt_flag_suppresses_the_interrupt_without_event_idx(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);

	put16(d.ram + AVAIL_GPA, 1);
	one_round(&d, 0);
	assert_int_equal(vdemux_virtq_publish(d.q, NULL), 0);
	assert_int_equal(used_idx(&d), 1); /* published all the same */
	put16(d.ram + AVAIL_GPA, 0);
	one_round(&d, 1);
	assert_int_equal(vdemux_virtq_publish(d.q, NULL), 1);
	drv_fini(&d);
}

static void test_enable_kick_with_event_idx_writes_avail_event_and_reports_pending_chains(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, VDEMUX_VIRTQ_F_EVENT_IDX, 0);

	one_round(&d, 0);
	assert_int_equal(vdemux_virtq_enable_kick(d.q, true), 0);
	assert_int_equal(avail_event(&d), 1);
	desc(&d, 1, BUF_GPA, 8, 0, 0);
	offer(&d, 1);
	assert_int_equal(vdemux_virtq_enable_kick(d.q, true), 1);
	assert_int_equal(vdemux_virtq_enable_kick(d.q, false), 0);
	assert_int_equal(avail_event(&d), 1); /* off leaves it behind */
	drv_fini(&d);
}

static void test_enable_kick_without_event_idx_sets_and_clears_no_notify(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);

	assert_int_equal(vdemux_virtq_enable_kick(d.q, false), 0);
	assert_int_equal(get16(d.ram + USED_GPA), 1);
	assert_int_equal(vdemux_virtq_enable_kick(d.q, true), 0);
	assert_int_equal(get16(d.ram + USED_GPA), 0);
	desc(&d, 4, BUF_GPA, 8, 0, 0);
	offer(&d, 4);
	assert_int_equal(vdemux_virtq_enable_kick(d.q, true), 1);
	drv_fini(&d);
}

/* ---- what the device writes ---- */

static void test_nothing_is_written_outside_the_used_ring_and_avail_event(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, VDEMUX_VIRTQ_F_EVENT_IDX | VDEMUX_VIRTQ_F_INDIRECT_DESC, 0);
	uint8_t *before = malloc(RAM_SIZE);
	assert_non_null(before);
	struct vdemux_virtq_chain c;
	struct iovec iov[QS];

	/* Good and bad chains, then every call of the API. */
	desc(&d, 0, BUF_GPA, 64, F_WRITE, 0);
	desc(&d, 1, RAM_SIZE - 4, 64, F_WRITE, 0);
	desc(&d, 2, BUF_GPA, 64, F_NEXT | F_WRITE, 2);
	desc(&d, 3, IND_GPA, 48, F_INDIRECT, 0);
	desc_at(&d, IND_GPA, 0, USED_GPA, 64, F_WRITE, 0);
	for (uint16_t h = 0; h < 4; h++)
		offer(&d, h);
	memcpy(before, d.ram, RAM_SIZE);
	while (vdemux_virtq_pop(d.q, &c, iov, QS) == 1)
		assert_int_equal(vdemux_virtq_push(d.q, c.head, 64), 0);
	vdemux_virtq_publish(d.q, NULL);
	vdemux_virtq_enable_kick(d.q, true);
	vdemux_virtq_enable_kick(d.q, false);
	/* Only the used ring (flags, idx, entries, avail_event) changed. */
	const size_t used_end = USED_GPA + 4 + 8u * QS + 2;
	assert_memory_equal(d.ram, before, USED_GPA);
	assert_memory_equal(d.ram + used_end, before + used_end, RAM_SIZE - used_end);
	assert_int_equal(stats(&d).skipped, 3);
	free(before);
	drv_fini(&d);
}

static void test_null_arguments_are_einval_and_counted_on_the_queue(void **state)
{
	(void)state;
	struct drv d;
	drv_init(&d, 0, 0);
	struct vdemux_virtq_chain c;
	struct iovec iov[1];
	struct vdemux_virtq_stats s;

	assert_int_equal(vdemux_virtq_pop(NULL, &c, iov, 1), -EINVAL);
	assert_int_equal(vdemux_virtq_pop(d.q, NULL, iov, 1), -EINVAL);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, NULL, 1), -EINVAL);
	assert_int_equal(vdemux_virtq_pop(d.q, &c, iov, 0), -EINVAL);
	assert_int_equal(vdemux_virtq_push(NULL, 0, 0), -EINVAL);
	assert_int_equal(vdemux_virtq_publish(NULL, NULL), -EINVAL);
	assert_int_equal(vdemux_virtq_enable_kick(NULL, true), -EINVAL);
	assert_int_equal(vdemux_virtq_needs_reset(NULL), -EINVAL);
	assert_int_equal(vdemux_virtq_reset(NULL), -EINVAL);
	assert_int_equal(vdemux_virtq_stats(NULL, &s, sizeof(s)), -EINVAL);
	assert_int_equal(vdemux_virtq_stats(d.q, NULL, sizeof(s)), -EINVAL);
	/* the three pops refused on a queue are counted there, and took nothing */
	assert_int_equal(vdemux_virtq_stats(d.q, &s, sizeof(s)), 0);
	assert_int_equal(s.refused, 3);
	assert_int_equal(s.popped, 0);
	vdemux_virtq_destroy(NULL);
	assert_string_equal(vdemux_virtq_err_name(VDEMUX_VIRTQ_ERR_LOOP), "loop");
	assert_string_equal(vdemux_virtq_err_name(VDEMUX_VIRTQ_ERR__COUNT), "?");
	assert_string_equal(vdemux_virtq_err_name(-1), "?");
	drv_fini(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_rejects_bad_options_and_leaves_out_unchanged),
		cmocka_unit_test(test_create_accepts_a_smaller_sz_and_rejects_unknown_bytes_past_it),
		cmocka_unit_test(test_create_uses_the_alloc_hooks_and_frees_everything_on_enomem),
		cmocka_unit_test(test_transmit_chain_pops_as_readable_iovecs_into_guest_ram),
		cmocka_unit_test(test_used_entry_is_invisible_until_publish_which_asks_for_an_interrupt),
		cmocka_unit_test(
			test_readable_then_writable_chain_splits_and_push_beyond_its_writable_bytes_is_refused_and_counted),
		cmocka_unit_test(test_indirect_table_pops_as_its_descriptors),
		cmocka_unit_test(test_indices_wrap_past_65535),
		cmocka_unit_test(test_malformed_chains_are_skipped_counted_and_given_back_empty),
		cmocka_unit_test(test_malformed_indirect_tables_are_skipped),
		cmocka_unit_test(test_write_only_queue_skips_a_readable_descriptor),
		cmocka_unit_test(test_avail_index_jump_breaks_the_queue_until_reset),
		cmocka_unit_test(test_head_out_of_range_or_in_flight_breaks_the_queue),
		cmocka_unit_test(test_event_idx_interrupts_only_when_the_used_index_passes_used_event),
		cmocka_unit_test(test_no_interrupt_flag_suppresses_the_interrupt_without_event_idx),
		cmocka_unit_test(
			test_enable_kick_with_event_idx_writes_avail_event_and_reports_pending_chains),
		cmocka_unit_test(test_enable_kick_without_event_idx_sets_and_clears_no_notify),
		cmocka_unit_test(test_nothing_is_written_outside_the_used_ring_and_avail_event),
		cmocka_unit_test(test_null_arguments_are_einval_and_counted_on_the_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
