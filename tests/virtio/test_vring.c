/* SPDX-License-Identifier: MIT */
/*
 * The device side of the split virtqueue (src/virtio/vring.c) against the
 * simulated Linux guest of tests/support/vnet_guest.c: normal traffic across
 * index wraparound, interrupt suppression, indirect tables, every hostile
 * case of the table in vring.h (detected, counted, answered as documented,
 * nothing written outside guest RAM), and the layouts Linux posts.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vnet_guest.h"
#include "vt.h"
#include "virtio/vnet_rx.h"
#include "virtio/vring.h"

#define MEM (4u << 20)
#define V1 (VD_VIRTIO_F_VERSION_1)
#define EVT (VD_VIRTIO_F_EVENT_IDX)
#define IND (VD_VIRTIO_F_INDIRECT_DESC)
#define MRG (VD_VIRTIO_NET_F_MRG_RXBUF)

struct fx {
	struct vng_flat f;
	struct vng g;
	struct vd_gmem gm;
	struct vd_vring *vq;
	struct vd_vring_seg *segs;
	uint32_t qsize;
	uint64_t features;
};

static void fx_init(struct fx *x, enum vng_mode mode, uint32_t qsize, uint64_t features)
{
	struct vng_opts o = {.mode = mode, .qsize = qsize, .features = features, .mem_size = MEM};
	struct vng_mem m;
	struct vd_vring_config cfg;

	memset(x, 0, sizeof(*x));
	assert_int_equal(vng_flat_init(&x->f, MEM), 0);
	m = vng_flat_mem(&x->f);
	assert_int_equal(vng_init(&x->g, &m, &o), 0);
	x->gm = vng_flat_gmem(&x->f);
	cfg = vng_ring_config(&x->g);
	assert_int_equal(vd_vring_create(&x->vq, &x->gm, &cfg, NULL), 0);
	x->segs = calloc(qsize, sizeof(*x->segs));
	assert_non_null(x->segs);
	x->qsize = qsize;
	x->features = features;
}

static void fx_fini(struct fx *x)
{
	assert_true(vng_flat_canary_ok(&x->f));
	vd_vring_destroy(x->vq);
	vng_fini(&x->g);
	vng_flat_fini(&x->f);
	free(x->segs);
}

static uint64_t err_count(const struct fx *x, enum vd_vring_err e)
{
	return vd_vring_stats(x->vq)->err[e];
}

static uint64_t all_errs(const struct fx *x)
{
	uint64_t t = 0;

	for (int e = 0; e < VD_VRING_ERR_COUNT; e++)
		t += vd_vring_stats(x->vq)->err[e];
	return t;
}

static uint16_t used_idx(const struct fx *x)
{
	uint16_t v;

	memcpy(&v, x->f.base + x->g.used_gpa + 2, 2);
	return le16toh(v);
}

static void used_entry(const struct fx *x, uint16_t slot, uint32_t *id, uint32_t *len)
{
	const uint8_t *e = x->f.base + x->g.used_gpa + 4 + 8u * (slot & (x->qsize - 1));

	memcpy(id, e, 4);
	memcpy(len, e + 4, 4);
	*id = le32toh(*id);
	*len = le32toh(*len);
}

/* Write bytes [at, at + n) of the stream hdr|frame into the chain's segments. */
static void stream_write(struct fx *x, const struct vd_vring_seg *s, uint32_t nseg, const uint8_t *hdr,
			 uint32_t hl, const uint8_t *frame, uint32_t at, uint32_t n)
{
	uint32_t pos = 0;

	for (uint32_t i = 0; i < nseg && n; i++) {
		for (uint32_t k = 0; k < s[i].len && n; k++, pos++) {
			uint32_t b = at + pos;

			x->f.base[s[i].gpa + k] = b < hl ? hdr[b] : frame[b - hl];
			n--;
		}
	}
}

/*
 * The device delivering one frame: header (gso none, num_buffers) then the
 * frame, across as many chains as it takes in mergeable mode, one otherwise.
 * Pushes the used entries but does not publish. @return chains used.
 */
static uint32_t dev_deliver(struct fx *x, const uint8_t *frame, uint32_t len)
{
	uint32_t hl = vd_vnet_hdr_len(x->features);
	bool mrg = (x->features & MRG) != 0;
	uint8_t hdr[20] = {0};
	uint16_t heads[64];
	uint32_t lens[64], n = 0, off = 0, total = hl + len;
	uint64_t first_hdr_gpa = 0;

	while (off < total) {
		struct vd_vring_chain c;
		uint32_t w;

		assert_int_equal(vd_vring_pop(x->vq, &c, x->segs, x->qsize), 1);
		w = c.len < total - off ? c.len : total - off;
		if (n == 0) {
			assert_true(x->segs[0].len >= hl);
			first_hdr_gpa = x->segs[0].gpa;
		}
		stream_write(x, x->segs, c.nseg, hdr, hl, frame, off, w);
		heads[n] = c.head;
		lens[n] = w;
		n++;
		off += w;
		if (!mrg)
			break;
		assert_true(n < 64);
	}
	if (mrg) {
		uint16_t nb = htole16((uint16_t)n);

		memcpy(x->f.base + first_hdr_gpa + 10, &nb, 2);
	}
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(vd_vring_push(x->vq, heads[i], lens[i]), 0);
	return n;
}

static void make_frame(uint8_t *f, uint32_t len, uint32_t seed)
{
	for (uint32_t i = 0; i < len; i++)
		f[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8));
}

static void expect_frame(struct fx *x, const uint8_t *want, uint32_t len, uint16_t nbufs)
{
	static uint8_t got[70000];
	struct vng_hdr h;

	assert_int_equal(vng_recv(&x->g, &h, got, sizeof(got)), (int)len);
	assert_memory_equal(got, want, len);
	assert_int_equal(h.gso_type, 0);
	assert_int_equal(h.flags, 0);
	if (x->g.hdr_len >= 12)
		assert_int_equal(h.num_buffers, (x->features & MRG) ? nbufs : 0);
}

/* ---- creation ------------------------------------------------------ */

static void test_create_rejects_bad_sizes_alignment_and_placement(void **state)
{
	struct fx x;
	struct vd_vring *vq = NULL;
	struct vd_vring_config c;
	struct vd_gmem gm;

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1);
	c = vng_ring_config(&x.g);
	gm = x.gm;
	for (uint32_t bad_size = 0; bad_size < 3; bad_size++) {
		struct vd_vring_config b = c;

		b.size = bad_size == 0 ? 0 : bad_size == 1 ? 12 : 65536;
		assert_int_equal(vd_vring_create(&vq, &gm, &b, NULL), -EINVAL);
	}
	c.desc_gpa += 8;
	assert_int_equal(vd_vring_create(&vq, &gm, &c, NULL), -EINVAL);
	c = vng_ring_config(&x.g);
	c.avail_gpa += 1;
	assert_int_equal(vd_vring_create(&vq, &gm, &c, NULL), -EINVAL);
	c = vng_ring_config(&x.g);
	c.used_gpa += 2;
	assert_int_equal(vd_vring_create(&vq, &gm, &c, NULL), -EINVAL);
	c = vng_ring_config(&x.g);
	c.used_gpa = gm.size - 4; /* runs past the end of RAM */
	assert_int_equal(vd_vring_create(&vq, &gm, &c, NULL), -EINVAL);
	c = vng_ring_config(&x.g);
	c.used_gpa = UINT64_MAX - 3; /* gpa + len wraps */
	assert_int_equal(vd_vring_create(&vq, &gm, &c, NULL), -EINVAL);
	c = vng_ring_config(&x.g);
	c.avail_gpa = c.desc_gpa + 16; /* inside the desc table */
	assert_int_equal(vd_vring_create(&vq, &gm, &c, NULL), -EINVAL);
	c = vng_ring_config(&x.g);
	c.flags = 0x80;
	assert_int_equal(vd_vring_create(&vq, &gm, &c, NULL), -EINVAL);
	c = vng_ring_config(&x.g);
	gm.rxwin_gpa = c.used_gpa & ~4095ull; /* the used ring in the RX window */
	gm.rxwin_len = 4096;
	assert_int_equal(vd_vring_create(&vq, &gm, &c, NULL), -EINVAL);
	gm = x.gm;
	gm.base += 8;
	assert_int_equal(vd_vring_create(&vq, &gm, &c, NULL), -EINVAL);
	assert_null(vq);
	fx_fini(&x);
}

static void test_legacy_layout_puts_the_used_ring_on_the_next_4096_boundary(void **state)
{
	struct vd_vring_config c = {0};

	(void)state;
	assert_int_equal(vd_vring_legacy_layout(&c, 0x10000, 256, 4096), 0);
	assert_int_equal(c.desc_gpa, 0x10000);
	assert_int_equal(c.avail_gpa, 0x10000 + 4096);
	assert_int_equal(c.used_gpa, 0x10000 + 8192); /* 4096 + 6 + 512 rounded up */
	assert_int_equal(vd_vring_legacy_layout(&c, 0, 100, 4096), -EINVAL);
	assert_int_equal(vd_vring_legacy_layout(&c, UINT64_MAX - 100, 256, 4096), -EINVAL);
}

/* Fails the allocation number fail_at (1-based), counting the others. */
struct failing_alloc {
	struct vt_counting_alloc c;
	long fail_at;
};

static void *failing_calloc(size_t n, size_t size, void *payload)
{
	struct failing_alloc *f = payload;

	if (f->c.calls + 1 == f->fail_at) {
		f->c.calls++;
		return NULL;
	}
	return vt_count_calloc(n, size, &f->c);
}

static void failing_free(void *p, void *payload)
{
	vt_count_free(p, &((struct failing_alloc *)payload)->c);
}

static void test_create_frees_everything_on_enomem_and_destroy(void **state)
{
	struct fx x;
	struct vd_vring_config cfg;
	long total;

	(void)state;
	fx_init(&x, VNG_SMALL, 256, V1);
	cfg = vng_ring_config(&x.g);
	{
		struct failing_alloc f = {.fail_at = 0};
		struct vdemux_alloc_hooks h = {
			.calloc = failing_calloc, .free = failing_free, .payload = &f};
		struct vd_vring *vq = NULL;

		assert_int_equal(vd_vring_create(&vq, &x.gm, &cfg, &h), 0);
		vd_vring_destroy(vq);
		assert_int_equal(f.c.live, 0);
		total = f.c.calls;
	}
	for (long k = 1; k <= total; k++) {
		struct failing_alloc f = {.fail_at = k};
		struct vdemux_alloc_hooks h = {
			.calloc = failing_calloc, .free = failing_free, .payload = &f};
		struct vd_vring *vq = NULL;

		assert_int_equal(vd_vring_create(&vq, &x.gm, &cfg, &h), -ENOMEM);
		assert_null(vq);
		assert_int_equal(f.c.live, 0);
	}
	fx_fini(&x);
}

/* ---- normal traffic ------------------------------------------------ */

static void test_small_frames_round_trip_to_the_guest(void **state)
{
	struct fx x;
	uint8_t f[1514];

	(void)state;
	fx_init(&x, VNG_SMALL, 64, V1 | EVT);
	assert_int_equal(vng_refill(&x.g), 64);
	for (uint32_t i = 0; i < 10; i++) {
		make_frame(f, 60 + i * 100, i);
		assert_int_equal(dev_deliver(&x, f, 60 + i * 100), 1);
		assert_int_equal(vd_vring_publish(x.vq), 1);
		expect_frame(&x, f, 60 + i * 100, 1);
	}
	assert_int_equal(all_errs(&x), 0);
	fx_fini(&x);
}

static void test_indices_wrap_past_65535_without_losing_a_buffer(void **state)
{
	struct fx x;
	uint8_t f[100];
	uint32_t rounds = 70000, start = 0;

	(void)state;
	fx_init(&x, VNG_SMALL, 8, V1 | EVT);
	vng_refill(&x.g);
	for (uint32_t i = 0; i < rounds; i++) {
		make_frame(f, sizeof(f), i);
		dev_deliver(&x, f, sizeof(f));
		if (i % 3 != 2 && i + 1 != rounds)
			continue;
		vd_vring_publish(x.vq);
		for (uint32_t k = start; k <= i; k++) {
			make_frame(f, sizeof(f), k);
			expect_frame(&x, f, sizeof(f), 1);
		}
		start = i + 1;
		vng_refill(&x.g);
	}
	assert_int_equal(vd_vring_stats(x.vq)->popped, rounds);
	assert_int_equal(vd_vring_stats(x.vq)->pushed, rounds);
	assert_int_equal(x.g.st.frames, rounds);
	assert_int_equal(used_idx(&x), (uint16_t)rounds);
	assert_int_equal(vd_vring_inflight(x.vq), 0);
	assert_int_equal(all_errs(&x), 0);
	fx_fini(&x);
}

static void test_pushed_entries_stay_invisible_until_one_publish(void **state)
{
	struct fx x;
	uint8_t f[200];

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1);
	vng_refill(&x.g);
	make_frame(f, sizeof(f), 1);
	for (int i = 0; i < 3; i++)
		dev_deliver(&x, f, sizeof(f));
	assert_int_equal(used_idx(&x), 0);
	assert_int_equal(vd_vring_publish(x.vq), 3);
	assert_int_equal(used_idx(&x), 3);
	assert_int_equal(vd_vring_stats(x.vq)->publishes, 1);
	assert_int_equal(vd_vring_publish(x.vq), 0); /* nothing new: no store */
	assert_int_equal(vd_vring_stats(x.vq)->publishes, 1);
	fx_fini(&x);
}

static void test_push_rejects_heads_not_in_flight_and_lengths_past_the_chain(void **state)
{
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1);
	vng_refill(&x.g);
	assert_int_equal(vd_vring_push(x.vq, 3, 10), -EINVAL); /* never popped */
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	assert_int_equal(vd_vring_push(x.vq, c.head, c.len + 1), -EINVAL);
	assert_int_equal(vd_vring_push(x.vq, 16, 0), -EINVAL);
	assert_int_equal(vd_vring_push(x.vq, c.head, c.len), 0);
	assert_int_equal(vd_vring_push(x.vq, c.head, 0), -EINVAL); /* twice */
	assert_int_equal(vd_vring_stats(x.vq)->pushed, 1);
	fx_fini(&x);
}

static void test_mergeable_frame_spans_num_buffers_consecutive_entries(void **state)
{
	struct fx x;
	static uint8_t f[9000];

	(void)state;
	fx_init(&x, VNG_MERGEABLE, 64, V1 | MRG | EVT);
	vng_refill(&x.g);
	make_frame(f, sizeof(f), 7);
	/* 1536-byte buffers: 12 + 9000 bytes take 6 */
	assert_int_equal(dev_deliver(&x, f, sizeof(f)), 6);
	assert_int_equal(vd_vring_publish(x.vq), 6);
	expect_frame(&x, f, sizeof(f), 6);
	assert_int_equal(x.g.st.used, 6);
	fx_fini(&x);
}

static void test_big_frame_lands_across_the_first_page_and_whole_pages(void **state)
{
	struct fx x;
	static uint8_t f[65000];

	(void)state;
	fx_init(&x, VNG_BIG, 64, V1 | IND | EVT);
	vng_refill(&x.g);
	make_frame(f, sizeof(f), 3);
	assert_int_equal(dev_deliver(&x, f, sizeof(f)), 1);
	vd_vring_publish(x.vq);
	expect_frame(&x, f, sizeof(f), 1);
	fx_fini(&x);
}

/* ---- interrupts and kicks ------------------------------------------ */

static void test_event_idx_notifies_only_when_used_idx_passes_used_event(void **state)
{
	struct fx x;
	uint8_t f[64];
	uint16_t ue;

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1 | EVT);
	vng_refill(&x.g);
	make_frame(f, sizeof(f), 0);
	/* used_event 0 (fresh ring): the first entry (idx 0 -> 1) crosses it */
	dev_deliver(&x, f, sizeof(f));
	vd_vring_publish(x.vq);
	assert_true(vd_vring_need_notify(x.vq));
	/* the guest asks to be told only after 4 more: used_event = 4 */
	ue = htole16(4);
	memcpy(x.f.base + x.g.avail_gpa + 4 + 2 * 16, &ue, 2);
	dev_deliver(&x, f, sizeof(f)); /* idx 2 */
	vd_vring_publish(x.vq);
	assert_false(vd_vring_need_notify(x.vq));
	dev_deliver(&x, f, sizeof(f)); /* idx 3 */
	dev_deliver(&x, f, sizeof(f)); /* idx 4 */
	vd_vring_publish(x.vq);
	assert_false(vd_vring_need_notify(x.vq));
	dev_deliver(&x, f, sizeof(f)); /* idx 5: passes used_event 4 */
	vd_vring_publish(x.vq);
	assert_true(vd_vring_need_notify(x.vq));
	/* nothing published since: no interrupt */
	assert_false(vd_vring_need_notify(x.vq));
	assert_int_equal(vd_vring_stats(x.vq)->notify, 2);
	fx_fini(&x);
}

static void test_event_idx_batch_that_steps_over_used_event_notifies(void **state)
{
	struct fx x;
	uint8_t f[64];

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1 | EVT);
	vng_refill(&x.g);
	make_frame(f, sizeof(f), 0);
	vng_enable_cb(&x.g); /* used_event = 0 */
	for (int i = 0; i < 5; i++)
		dev_deliver(&x, f, sizeof(f));
	vd_vring_publish(x.vq);
	assert_true(vd_vring_need_notify(x.vq));
	/* the guest consumes all five: each get_buf moves used_event */
	for (int i = 0; i < 5; i++)
		expect_frame(&x, f, sizeof(f), 1);
	vng_refill(&x.g);
	dev_deliver(&x, f, sizeof(f));
	vd_vring_publish(x.vq);
	assert_true(vd_vring_need_notify(x.vq)); /* used_event 5, idx 5 -> 6 */
	fx_fini(&x);
}

static void test_event_idx_ignores_the_no_interrupt_flag(void **state)
{
	struct fx x;
	uint8_t f[64];
	uint16_t fl = htole16(VD_VRING_AVAIL_F_NO_INTERRUPT);

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1 | EVT);
	vng_refill(&x.g);
	make_frame(f, sizeof(f), 0);
	memcpy(x.f.base + x.g.avail_gpa, &fl, 2);
	dev_deliver(&x, f, sizeof(f));
	vd_vring_publish(x.vq);
	assert_true(vd_vring_need_notify(x.vq)); /* used_event 0 crossed */
	fx_fini(&x);
}

static void test_no_interrupt_flag_suppresses_notify_without_event_idx(void **state)
{
	struct fx x;
	uint8_t f[64];

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1);
	vng_refill(&x.g);
	make_frame(f, sizeof(f), 0);
	dev_deliver(&x, f, sizeof(f));
	vd_vring_publish(x.vq);
	assert_true(vd_vring_need_notify(x.vq));
	vng_disable_cb(&x.g);
	dev_deliver(&x, f, sizeof(f));
	vd_vring_publish(x.vq);
	assert_false(vd_vring_need_notify(x.vq));
	vng_enable_cb(&x.g);
	dev_deliver(&x, f, sizeof(f));
	vd_vring_publish(x.vq);
	assert_true(vd_vring_need_notify(x.vq));
	fx_fini(&x);
}

static void test_enable_kick_sets_avail_event_and_reports_pending_chains(void **state)
{
	struct fx x;
	struct vd_vring_chain c;
	uint16_t ae;

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1 | EVT);
	assert_false(vd_vring_enable_kick(x.vq, true)); /* empty */
	vng_add_one(&x.g);
	assert_true(vng_kick_prepare(&x.g));	       /* avail_event 0 crossed */
	assert_true(vd_vring_enable_kick(x.vq, true)); /* one waiting */
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	assert_false(vd_vring_enable_kick(x.vq, true));
	memcpy(&ae, x.f.base + x.g.used_gpa + 4 + 8 * 16, 2);
	assert_int_equal(le16toh(ae), 1);
	assert_int_equal(vd_vring_set_avail_event(x.vq, 5), 0);
	vng_add_one(&x.g);
	assert_false(vng_kick_prepare(&x.g)); /* idx 2 does not pass 5 */
	fx_fini(&x);
}

/* Idle: kicks asked for at the current entry and nothing available; a
 * chain added, a pop since the request, or kicks turned off make it busy. */
static void test_idle_only_when_kicks_are_asked_at_this_entry_and_nothing_is_available(void **state)
{
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1 | EVT);
	assert_false(vd_vring_idle(x.vq)); /* kicks never asked for */
	assert_false(vd_vring_enable_kick(x.vq, true));
	assert_true(vd_vring_idle(x.vq));
	vng_add_one(&x.g);
	assert_false(vd_vring_idle(x.vq)); /* one available */
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	assert_false(vd_vring_idle(x.vq)); /* asked at the entry before the pop */
	assert_false(vd_vring_enable_kick(x.vq, true));
	assert_true(vd_vring_idle(x.vq));
	assert_false(vd_vring_enable_kick(x.vq, false));
	assert_false(vd_vring_idle(x.vq));
	fx_fini(&x);
}

static uint16_t used_le16(const struct fx *x, uint64_t off)
{
	uint16_t v;

	memcpy(&v, x->f.base + x->g.used_gpa + off, 2);
	return le16toh(v);
}

static void set_used_le16(struct fx *x, uint64_t off, uint16_t v)
{
	v = htole16(v);
	memcpy(x->f.base + x->g.used_gpa + off, &v, 2);
}

/* A request repeated at the same entry writes nothing (the one made then
 * holds) yet still sees chains added since; a pop, set_avail_event or off
 * makes the next request write again. The used ring is overwritten here
 * only to see whether the device writes it. */
static void test_repeated_kick_request_writes_nothing_until_something_changes(void **state)
{
	const uint64_t ae = 4 + 8 * 16; /* avail_event in a ring of 16 */
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1 | EVT);
	assert_false(vd_vring_enable_kick(x.vq, true));
	assert_int_equal(used_le16(&x, ae), 0);
	set_used_le16(&x, ae, 7);
	assert_false(vd_vring_enable_kick(x.vq, true));
	assert_int_equal(used_le16(&x, ae), 7); /* not written again */
	vng_add_one(&x.g);
	assert_true(vd_vring_enable_kick(x.vq, true)); /* the new chain is seen */
	assert_int_equal(used_le16(&x, ae), 7);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	assert_false(vd_vring_enable_kick(x.vq, true));
	assert_int_equal(used_le16(&x, ae), 1); /* popped: asked again */
	assert_int_equal(vd_vring_set_avail_event(x.vq, 9), 0);
	assert_false(vd_vring_enable_kick(x.vq, true));
	assert_int_equal(used_le16(&x, ae), 1); /* set_avail_event forgot it */
	set_used_le16(&x, ae, 7);
	assert_false(vd_vring_enable_kick(x.vq, false));
	assert_false(vd_vring_enable_kick(x.vq, true));
	assert_int_equal(used_le16(&x, ae), 1); /* off forgot it */
	fx_fini(&x);

	fx_init(&x, VNG_SMALL, 16, V1);
	assert_false(vd_vring_enable_kick(x.vq, true));
	assert_int_equal(used_le16(&x, 0), 0);
	set_used_le16(&x, 0, VD_VRING_USED_F_NO_NOTIFY);
	assert_false(vd_vring_enable_kick(x.vq, true));
	assert_int_equal(used_le16(&x, 0), VD_VRING_USED_F_NO_NOTIFY); /* not written again */
	assert_false(vd_vring_enable_kick(x.vq, false));
	set_used_le16(&x, 0, VD_VRING_USED_F_NO_NOTIFY);
	assert_false(vd_vring_enable_kick(x.vq, true));
	assert_int_equal(used_le16(&x, 0), 0); /* off forgot it */
	fx_fini(&x);
}

static void test_no_notify_flag_without_event_idx(void **state)
{
	struct fx x;

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1);
	assert_int_equal(vd_vring_set_avail_event(x.vq, 1), -EOPNOTSUPP);
	assert_false(vd_vring_enable_kick(x.vq, false));
	vng_add_one(&x.g);
	assert_false(vng_kick_prepare(&x.g));
	assert_true(vd_vring_enable_kick(x.vq, true)); /* one is waiting */
	vng_add_one(&x.g);
	assert_true(vng_kick_prepare(&x.g));
	fx_fini(&x);
}

/* ---- indirect ------------------------------------------------------ */

static void test_indirect_big_chain_pops_as_its_19_segments(void **state)
{
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	fx_init(&x, VNG_BIG, 32, V1 | IND);
	assert_int_equal(vng_add_one(&x.g), 0);
	assert_int_equal(x.g.num_free, 31); /* one ring descriptor */
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 32), 1);
	assert_int_equal(c.nseg, 19);
	assert_int_equal(c.len, 12 + 4064 + 17 * 4096);
	for (uint32_t i = 0; i < c.nseg; i++)
		assert_true(x.segs[i].writable);
	fx_fini(&x);
}

static void test_direct_big_chain_takes_19_ring_descriptors(void **state)
{
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	fx_init(&x, VNG_BIG, 64, V1);
	assert_int_equal(vng_refill(&x.g), 3); /* 64 / 19 */
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 64), 1);
	assert_int_equal(c.nseg, 19);
	fx_fini(&x);
}

/* ---- hostile guests ------------------------------------------------ */

/* Make the chain at ring descriptor @head available, as written by hand
 * (the guest driver's own bookkeeping is bypassed). */
static void post_raw(struct fx *x, uint16_t head)
{
	uint16_t slot = x->g.avail_idx_shadow;

	vng_write_avail(&x->g, slot, head);
	x->g.avail_idx_shadow++;
	vng_write_avail_idx(&x->g, x->g.avail_idx_shadow);
}

static uint64_t buf_at(const struct fx *x, uint32_t k)
{
	return x->g.buf_gpa + 4096ull * k;
}

/* One good single-descriptor chain at @head, for after a skip. */
static void post_good(struct fx *x, uint16_t head)
{
	vng_write_desc(&x->g, head, buf_at(x, 10 + head), 2048, VD_VRING_DESC_F_WRITE, 0);
	post_raw(x, head);
}

/*
 * The chain at @bad_head must be skipped with @e counted, the good one at
 * @good_head returned, and after publish the used ring must hold the good
 * head's entry then the skipped one with len 0. Nothing written to the
 * desc table or avail ring; the canaries intact.
 */
static void expect_skip(struct fx *x, uint16_t bad_head, uint16_t good_head, enum vd_vring_err e)
{
	struct vd_vring_chain c;
	uint32_t id, len;
	uint16_t u0 = used_idx(x);
	size_t dlen = VD_VRING_DESC_BYTES(x->qsize), alen = VD_VRING_AVAIL_BYTES(x->qsize);
	uint8_t *dsnap = malloc(dlen), *asnap = malloc(alen);

	memcpy(dsnap, x->f.base + x->g.desc_gpa, dlen);
	memcpy(asnap, x->f.base + x->g.avail_gpa, alen);
	assert_int_equal(vd_vring_pop(x->vq, &c, x->segs, x->qsize), 1);
	assert_int_equal(c.head, good_head);
	if (err_count(x, e) != 1)
		fail_msg("expected one %s, got %llu (total errors %llu)", vd_vring_err_name(e),
			 (unsigned long long)err_count(x, e), (unsigned long long)all_errs(x));
	assert_int_equal(all_errs(x), 1);
	assert_int_equal(vd_vring_stats(x->vq)->skipped, 1);
	assert_int_equal(vd_vring_broken(x->vq), 0);
	assert_int_equal(vd_vring_push(x->vq, bad_head, 0), -EINVAL); /* not the caller's */
	assert_int_equal(vd_vring_push(x->vq, c.head, 100), 0);
	assert_int_equal(vd_vring_publish(x->vq), 2);
	used_entry(x, u0, &id, &len);
	assert_int_equal(id, good_head);
	assert_int_equal(len, 100);
	used_entry(x, (uint16_t)(u0 + 1), &id, &len);
	assert_int_equal(id, bad_head);
	assert_int_equal(len, 0);
	assert_int_equal(vd_vring_inflight(x->vq), 0);
	assert_memory_equal(dsnap, x->f.base + x->g.desc_gpa, dlen);
	assert_memory_equal(asnap, x->f.base + x->g.avail_gpa, alen);
	assert_true(vng_flat_canary_ok(&x->f));
	free(dsnap);
	free(asnap);
}

/* The chain written at head 0 is posted, then a good one at head 1: the
 * first must be skipped with @e counted (expect_skip). */
static void expect_head_0_skipped(struct fx *x, enum vd_vring_err e)
{
	post_raw(x, 0);
	post_good(x, 1);
	expect_skip(x, 0, 1, e);
}

/* A queue set up for hand-written chains: big mode features, no posting. */
static void hostile_init(struct fx *x, uint64_t features)
{
	fx_init(x, VNG_BIG, 16, V1 | features);
}

static void test_hostile_next_out_of_range_is_skipped(void **state)
{
	struct fx x;

	(void)state;
	hostile_init(&x, 0);
	vng_write_desc(&x.g, 0, buf_at(&x, 0), 100, VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT, 16);
	expect_head_0_skipped(&x, VD_VRING_ERR_NEXT_RANGE);
	fx_fini(&x);
}

static void test_hostile_loop_is_skipped_and_pop_terminates(void **state)
{
	struct fx x;

	(void)state;
	hostile_init(&x, 0);
	vng_write_desc(&x.g, 0, buf_at(&x, 0), 100, VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT, 2);
	vng_write_desc(&x.g, 2, buf_at(&x, 1), 100, VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT, 0);
	expect_head_0_skipped(&x, VD_VRING_ERR_LOOP);
	fx_fini(&x);
}

static void test_hostile_self_loop_in_indirect_table_is_skipped(void **state)
{
	struct fx x;
	uint64_t t = 0x100000;

	(void)state;
	hostile_init(&x, IND);
	/* a 4-entry table whose entry 3 points back to entry 1 */
	for (uint16_t i = 0; i < 4; i++) {
		uint8_t d[16];
		uint64_t a = htole64(buf_at(&x, i));
		uint32_t l = htole32(64);
		uint16_t fl = htole16(VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT),
			 nx = htole16(i == 3 ? 1 : i + 1);

		memcpy(d, &a, 8);
		memcpy(d + 8, &l, 4);
		memcpy(d + 12, &fl, 2);
		memcpy(d + 14, &nx, 2);
		memcpy(x.f.base + t + 16u * i, d, 16);
	}
	vng_write_desc(&x.g, 0, t, 64, VD_VRING_DESC_F_INDIRECT, 0);
	expect_head_0_skipped(&x, VD_VRING_ERR_LOOP);
	fx_fini(&x);
}

static void test_hostile_chain_longer_than_the_queue_is_skipped(void **state)
{
	struct fx x;
	uint64_t t = 0x100000;

	(void)state;
	hostile_init(&x, IND);
	/* an indirect table of 17 valid entries on a queue of 16 */
	for (uint16_t i = 0; i < 17; i++) {
		uint8_t d[16];
		uint64_t a = htole64(buf_at(&x, i));
		uint32_t l = htole32(64);
		uint16_t fl = htole16(VD_VRING_DESC_F_WRITE | (i < 16 ? VD_VRING_DESC_F_NEXT : 0));
		uint16_t nx = htole16(i + 1);

		memcpy(d, &a, 8);
		memcpy(d + 8, &l, 4);
		memcpy(d + 12, &fl, 2);
		memcpy(d + 14, &nx, 2);
		memcpy(x.f.base + t + 16u * i, d, 16);
	}
	vng_write_desc(&x.g, 0, t, 17 * 16, VD_VRING_DESC_F_INDIRECT, 0);
	expect_head_0_skipped(&x, VD_VRING_ERR_TOO_LONG);
	fx_fini(&x);
}

static void test_chain_longer_than_the_callers_array_is_skipped(void **state)
{
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	hostile_init(&x, 0);
	vng_write_desc(&x.g, 0, buf_at(&x, 0), 100, VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT, 1);
	vng_write_desc(&x.g, 1, buf_at(&x, 1), 100, VD_VRING_DESC_F_WRITE, 0);
	post_raw(&x, 0);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 1), 0);
	assert_int_equal(err_count(&x, VD_VRING_ERR_TOO_LONG), 1);
	assert_int_equal(vd_vring_publish(x.vq), 1);
	fx_fini(&x);
}

static void test_hostile_indirect_without_the_feature_is_skipped(void **state)
{
	struct fx x;

	(void)state;
	hostile_init(&x, 0);
	vng_write_desc(&x.g, 0, 0x100000, 32, VD_VRING_DESC_F_INDIRECT, 0);
	expect_head_0_skipped(&x, VD_VRING_ERR_INDIRECT_FEATURE);
	fx_fini(&x);
}

static void test_hostile_nested_indirect_is_skipped(void **state)
{
	struct fx x;
	uint8_t d[16] = {0};
	uint64_t a = htole64(0x100000);
	uint32_t l = htole32(16);
	uint16_t fl = htole16(VD_VRING_DESC_F_INDIRECT);

	(void)state;
	hostile_init(&x, IND);
	memcpy(d, &a, 8);
	memcpy(d + 8, &l, 4);
	memcpy(d + 12, &fl, 2);
	memcpy(x.f.base + 0x100000, d, 16); /* points at itself */
	vng_write_desc(&x.g, 0, 0x100000, 16, VD_VRING_DESC_F_INDIRECT, 0);
	expect_head_0_skipped(&x, VD_VRING_ERR_INDIRECT_NESTED);
	fx_fini(&x);
}

static void test_hostile_indirect_with_next_is_skipped(void **state)
{
	struct fx x;

	(void)state;
	hostile_init(&x, IND);
	vng_write_desc(&x.g, 0, 0x100000, 32, VD_VRING_DESC_F_INDIRECT | VD_VRING_DESC_F_NEXT, 2);
	expect_head_0_skipped(&x, VD_VRING_ERR_INDIRECT_NEXT);
	fx_fini(&x);
}

static void test_hostile_indirect_length_not_a_multiple_of_16_is_skipped(void **state)
{
	struct fx x;

	(void)state;
	hostile_init(&x, IND);
	vng_write_desc(&x.g, 0, 0x100000, 24, VD_VRING_DESC_F_INDIRECT, 0);
	expect_head_0_skipped(&x, VD_VRING_ERR_INDIRECT_LEN);
	fx_fini(&x);
}

static void test_hostile_indirect_length_zero_is_skipped(void **state)
{
	struct fx x;

	(void)state;
	hostile_init(&x, IND);
	vng_write_desc(&x.g, 0, 0x100000, 0, VD_VRING_DESC_F_INDIRECT, 0);
	expect_head_0_skipped(&x, VD_VRING_ERR_INDIRECT_LEN);
	fx_fini(&x);
}

static void test_hostile_indirect_table_outside_ram_is_skipped(void **state)
{
	struct fx x;

	(void)state;
	hostile_init(&x, IND);
	vng_write_desc(&x.g, 0, MEM - 16, 32, VD_VRING_DESC_F_INDIRECT, 0); /* straddles the end */
	expect_head_0_skipped(&x, VD_VRING_ERR_INDIRECT_RANGE);
	vng_write_desc(&x.g, 2, UINT64_MAX - 15, 32, VD_VRING_DESC_F_INDIRECT, 0); /* wraps */
	post_raw(&x, 2);
	post_good(&x, 3);
	assert_int_equal(vd_vring_pop(x.vq, &(struct vd_vring_chain){0}, x.segs, 16), 1);
	assert_int_equal(err_count(&x, VD_VRING_ERR_INDIRECT_RANGE), 2);
	fx_fini(&x);
}

static void test_hostile_indirect_table_in_the_rx_window_is_skipped(void **state)
{
	struct fx x;
	struct vd_vring *vq;
	struct vd_gmem gm;
	struct vd_vring_config cfg;
	struct vd_vring_chain c;

	(void)state;
	hostile_init(&x, IND);
	gm = x.gm;
	gm.rxwin_gpa = 0x200000; /* pages there may be holes */
	gm.rxwin_len = 0x100000;
	cfg = vng_ring_config(&x.g);
	assert_int_equal(vd_vring_create(&vq, &gm, &cfg, NULL), 0);
	vng_write_desc(&x.g, 0, 0x200000, 32, VD_VRING_DESC_F_INDIRECT, 0);
	post_raw(&x, 0);
	assert_int_equal(vd_vring_pop(vq, &c, x.segs, 16), 0);
	assert_int_equal(vd_vring_stats(vq)->err[VD_VRING_ERR_INDIRECT_RANGE], 1);
	vd_vring_destroy(vq);
	fx_fini(&x);
}

static void test_hostile_device_readable_descriptor_is_skipped(void **state)
{
	struct fx x;

	(void)state;
	hostile_init(&x, 0);
	vng_write_desc(&x.g, 0, buf_at(&x, 0), 100, VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT, 1);
	vng_write_desc(&x.g, 1, buf_at(&x, 1), 100, 0, 0); /* readable */
	post_raw(&x, 0);
	post_good(&x, 2);
	expect_skip(&x, 0, 2, VD_VRING_ERR_READ_ONLY);
	fx_fini(&x);
}

static void test_hostile_buffer_outside_ram_is_skipped(void **state)
{
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	hostile_init(&x, 0);
	vng_write_desc(&x.g, 0, MEM - 100, 101, VD_VRING_DESC_F_WRITE, 0);
	expect_head_0_skipped(&x, VD_VRING_ERR_ADDR_RANGE);
	vng_write_desc(&x.g, 2, UINT64_MAX - 10, 100, VD_VRING_DESC_F_WRITE, 0); /* gpa + len wraps */
	post_raw(&x, 2);
	vng_write_desc(&x.g, 3, MEM, 1, VD_VRING_DESC_F_WRITE, 0); /* first byte past RAM */
	post_raw(&x, 3);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 0);
	assert_int_equal(err_count(&x, VD_VRING_ERR_ADDR_RANGE), 3);
	fx_fini(&x);
}

static void test_hostile_buffer_over_each_ring_is_skipped(void **state)
{
	struct fx x;
	struct vd_vring_chain c;
	uint64_t targets[3];

	(void)state;
	hostile_init(&x, 0);
	targets[0] = x.g.desc_gpa + 16 * 15 + 8;		   /* last byte run of the desc table */
	targets[1] = x.g.avail_gpa + VD_VRING_AVAIL_BYTES(16) - 1; /* used_event */
	targets[2] = x.g.used_gpa - 3;				   /* runs into used->flags */
	for (uint16_t i = 0; i < 3; i++) {
		vng_write_desc(&x.g, i, targets[i], 4, VD_VRING_DESC_F_WRITE, 0);
		post_raw(&x, i);
	}
	/* just before the desc table and just after the used ring: fine */
	vng_write_desc(&x.g, 3, x.g.desc_gpa - 8, 8, VD_VRING_DESC_F_WRITE, 0);
	post_raw(&x, 3);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	assert_int_equal(c.head, 3);
	vng_write_desc(&x.g, 4, x.g.used_gpa + VD_VRING_USED_BYTES(16), 8, VD_VRING_DESC_F_WRITE, 0);
	post_raw(&x, 4);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	assert_int_equal(c.head, 4);
	assert_int_equal(err_count(&x, VD_VRING_ERR_RING_OVERLAP), 3);
	assert_int_equal(vd_vring_publish(x.vq), 3);
	fx_fini(&x);
}

static void test_hostile_zero_length_descriptor_is_skipped(void **state)
{
	struct fx x;

	(void)state;
	hostile_init(&x, 0);
	vng_write_desc(&x.g, 0, buf_at(&x, 0), 0, VD_VRING_DESC_F_WRITE, 0);
	expect_head_0_skipped(&x, VD_VRING_ERR_ZERO_LEN);
	fx_fini(&x);
}

static void test_hostile_total_length_overflow_is_skipped(void **state)
{
	struct fx x;
	struct vd_vring *vq;
	struct vd_gmem gm;
	struct vd_vring_config cfg;
	struct vd_vring_chain c;

	(void)state;
	hostile_init(&x, 0);
	/* Guest RAM declared 16 GiB: pop never touches buffer bytes, only the
	 * rings, which are in the real first megabytes. */
	gm = x.gm;
	gm.size = 16ull << 30;
	cfg = vng_ring_config(&x.g);
	assert_int_equal(vd_vring_create(&vq, &gm, &cfg, NULL), 0);
	vng_write_desc(&x.g, 0, 1ull << 32, 0x80000000u, VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT, 1);
	vng_write_desc(&x.g, 1, 2ull << 32, 0x80000000u, VD_VRING_DESC_F_WRITE, 0);
	post_raw(&x, 0);
	assert_int_equal(vd_vring_pop(vq, &c, x.segs, 16), 0);
	assert_int_equal(vd_vring_stats(vq)->err[VD_VRING_ERR_LEN_OVERFLOW], 1);
	vd_vring_destroy(vq);
	fx_fini(&x);
}

static void expect_broken(struct fx *x, enum vd_vring_err e)
{
	struct vd_vring_chain c;
	uint16_t u0 = used_idx(x);

	assert_int_equal(vd_vring_pop(x->vq, &c, x->segs, x->qsize), -EIO);
	assert_int_equal(vd_vring_broken(x->vq), (int)e + 1);
	assert_int_equal(err_count(x, e), 1);
	assert_int_equal(vd_vring_pop(x->vq, &c, x->segs, x->qsize), -EIO); /* sticky */
	assert_int_equal(err_count(x, e), 1);
	assert_int_equal(vd_vring_avail_count(x->vq), 0);
	assert_int_equal(used_idx(x), u0);
	assert_true(vng_flat_canary_ok(&x->f));
}

static void test_hostile_avail_idx_jump_breaks_the_queue_until_reset(void **state)
{
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	hostile_init(&x, 0);
	vng_write_avail_idx(&x.g, 17); /* 17 entries on a ring of 16 */
	expect_broken(&x, VD_VRING_ERR_AVAIL_IDX);
	/* the guest resets the device and starts over */
	vd_vring_reset(x.vq);
	memset(x.f.base + x.g.avail_gpa, 0, VD_VRING_AVAIL_BYTES(16));
	x.g.avail_idx_shadow = 0;
	post_good(&x, 1);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	fx_fini(&x);
}

static void test_hostile_avail_idx_moving_backwards_breaks_the_queue(void **state)
{
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	hostile_init(&x, 0);
	post_good(&x, 0);
	post_good(&x, 1);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	vng_write_avail_idx(&x.g, 1); /* behind what we took */
	expect_broken(&x, VD_VRING_ERR_AVAIL_IDX);
	/* what was popped before may still be completed */
	assert_int_equal(vd_vring_push(x.vq, 0, 10), 0);
	assert_int_equal(vd_vring_publish(x.vq), 1);
	fx_fini(&x);
}

static void test_hostile_head_out_of_range_breaks_the_queue(void **state)
{
	struct fx x;

	(void)state;
	hostile_init(&x, 0);
	post_raw(&x, 16);
	expect_broken(&x, VD_VRING_ERR_HEAD_RANGE);
	fx_fini(&x);
}

static void test_hostile_head_offered_twice_breaks_the_queue(void **state)
{
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	hostile_init(&x, 0);
	post_good(&x, 3);
	post_raw(&x, 3);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	expect_broken(&x, VD_VRING_ERR_HEAD_INFLIGHT);
	fx_fini(&x);
}

static void
test_hostile_head_offered_again_before_its_used_entry_is_published_breaks_the_queue(void **state)
{
	struct fx x;
	struct vd_vring_chain c;
	uint32_t id, len;

	(void)state;
	fx_init(&x, VNG_SMALL, 1, V1);
	post_good(&x, 0);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 1), 1);
	assert_int_equal(vd_vring_push(x.vq, 0, 77), 0);
	/* the guest cannot know head 0 is back yet: offering it is a repeat,
	 * and taking it would let a second entry overwrite the first in a
	 * ring of one */
	post_raw(&x, 0);
	expect_broken(&x, VD_VRING_ERR_HEAD_INFLIGHT);
	assert_int_equal(vd_vring_inflight(x.vq), 1);
	assert_int_equal(vd_vring_publish(x.vq), 1);
	used_entry(&x, 0, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 77);
	assert_int_equal(vd_vring_inflight(x.vq), 0);
	fx_fini(&x);
}

static void test_rewritten_descriptor_is_read_once(void **state)
{
	struct fx x;
	struct vd_vring_chain c;

	(void)state;
	hostile_init(&x, 0);
	post_good(&x, 0);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1);
	/* the guest rewrites the descriptor after pop read it: the segment
	 * the device got is the one it checked */
	vng_write_desc(&x.g, 0, x.g.desc_gpa, 4096, VD_VRING_DESC_F_WRITE, 0);
	assert_int_equal(x.segs[0].gpa, buf_at(&x, 10));
	assert_int_equal(x.segs[0].len, 2048);
	fx_fini(&x);
}

struct scribbler {
	uint8_t *ring; /* desc table and avail ring, contiguous here */
	size_t len;
	uint32_t seed;
	int stop;
};

/* A vCPU rewriting the rings at random while the device works. */
static void *scribble(void *arg)
{
	struct scribbler *w = arg;
	uint32_t r = w->seed;

	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
		r = r * 1103515245u + 12345u;
		__atomic_store_n(&w->ring[(r >> 8) % w->len], (uint8_t)(r >> 24), __ATOMIC_RELAXED);
	}
	return NULL;
}

static void test_rings_rewritten_concurrently_never_yield_a_bad_segment(void **state)
{
	struct fx x;
	struct scribbler w;
	pthread_t t;
	uint32_t popped = 0, r = 99;
	uint16_t gidx;
	bool bad = false;
	uint8_t snap[VD_VRING_DESC_BYTES(64)];

	(void)state;
	fx_init(&x, VNG_BIG, 64, V1 | IND | EVT);
	vng_refill(&x.g);
	gidx = x.g.avail_idx_shadow;
	/* Take back every head the refill offered, so that each head offered
	 * below is offered once, and returned before it is offered again. */
	for (;;) {
		struct vd_vring_chain c;

		if (vd_vring_pop(x.vq, &c, x.segs, 64) != 1)
			break;
		assert_int_equal(vd_vring_push(x.vq, c.head, 0), 0);
	}
	vd_vring_publish(x.vq);
	assert_int_equal(vd_vring_broken(x.vq), 0);
	memcpy(snap, x.f.base + x.g.desc_gpa, sizeof(snap));
	/* A vCPU scribbles over the descriptor table; this thread keeps
	 * offering heads as the guest (writing the head's descriptor anew
	 * first, as a driver re-posting it does), rewrites a byte of it itself
	 * every fourth time (so that hostile rewrites happen whatever the
	 * scheduler does: under valgrind threads take turns), and plays the
	 * device. Nothing is asserted until the vCPU thread is joined. */
	w = (struct scribbler){
		.ring = x.f.base + x.g.desc_gpa, .len = VD_VRING_DESC_BYTES(64), .seed = 7};
	assert_int_equal(pthread_create(&t, NULL, scribble, &w), 0);
	for (uint32_t i = 0; i < 20000 && !bad; i++) {
		struct vd_vring_chain c;
		int rc;

		uint16_t head = (uint16_t)((i * 37u) & 63u);

		r = r * 1103515245u + 12345u;
		memcpy(w.ring + head * 16u, snap + head * 16u, 16);
		if (i % 4 == 0)
			__atomic_store_n(&w.ring[head * 16u + (r >> 8) % 16u], (uint8_t)(r >> 24),
					 __ATOMIC_RELAXED);
		vng_write_avail(&x.g, gidx, head);
		vng_write_avail_idx(&x.g, ++gidx);
		rc = vd_vring_pop(x.vq, &c, x.segs, 64);
		/* heads are offered one at a time, each returned before it is
		 * offered again: only the descriptors are hostile, so chains
		 * are skipped, never the queue broken */
		if (rc != 1 && rc != 0)
			bad = true;
		if (rc == 1) {
			uint64_t sum = 0;

			for (uint32_t k = 0; k < c.nseg; k++) {
				if (!(x.segs[k].len > 0 && x.segs[k].writable) ||
				    !(x.segs[k].gpa < MEM && x.segs[k].len <= MEM - x.segs[k].gpa) ||
				    vd_vring_overlaps_rings(x.vq, x.segs[k].gpa, x.segs[k].len, false))
					bad = true;
				sum += x.segs[k].len;
			}
			if (sum != c.len || vd_vring_push(x.vq, c.head, 0) != 0)
				bad = true;
			popped++;
		}
		vd_vring_publish(x.vq);
		(void)vd_vring_need_notify(x.vq);
	}
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	assert_false(bad);
	/* both outcomes happened: chains taken and chains skipped */
	assert_true(popped > 0);
	assert_true(vd_vring_stats(x.vq)->skipped > 0);
	fx_fini(&x);
}

static void test_skipped_entries_follow_the_pushed_frame(void **state)
{
	struct fx x;
	struct vd_vring_chain a, c;
	uint32_t id, len;

	(void)state;
	hostile_init(&x, 0);
	post_good(&x, 0);
	vng_write_desc(&x.g, 1, buf_at(&x, 0), 0, VD_VRING_DESC_F_WRITE, 0);
	post_raw(&x, 1);
	post_good(&x, 2);
	assert_int_equal(vd_vring_pop(x.vq, &a, x.segs, 16), 1);
	assert_int_equal(vd_vring_push(x.vq, a.head, 50), 0);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 16), 1); /* skips 1 */
	assert_int_equal(vd_vring_push(x.vq, c.head, 60), 0);
	assert_int_equal(vd_vring_publish(x.vq), 3);
	used_entry(&x, 0, &id, &len);
	assert_int_equal(id, 0);
	used_entry(&x, 1, &id, &len);
	assert_int_equal(id, 2);
	used_entry(&x, 2, &id, &len);
	assert_int_equal(id, 1);
	assert_int_equal(len, 0);
	fx_fini(&x);
}

static void test_linux_guest_recycles_a_skipped_buffer_as_a_length_error(void **state)
{
	struct fx x;
	struct vng_hdr h;
	uint8_t buf[64];
	uint8_t f[100];
	uint16_t bad;

	(void)state;
	fx_init(&x, VNG_MERGEABLE, 16, V1 | MRG | EVT);
	vng_refill(&x.g);
	/* the guest breaks the first posted descriptor in place */
	bad = 0;
	vng_write_desc(&x.g, bad, x.g.bufs[bad].gpa[0], 0, VD_VRING_DESC_F_WRITE, 0);
	make_frame(f, sizeof(f), 1);
	dev_deliver(&x, f, sizeof(f));
	vd_vring_publish(x.vq);
	expect_frame(&x, f, sizeof(f), 1);
	assert_int_equal(vng_recv(&x.g, &h, buf, sizeof(buf)), -EBADMSG);
	assert_int_equal(x.g.st.length_errors, 1);
	assert_int_equal(x.g.st.bad_used, 0);
	fx_fini(&x);
}

/* ---- layouts ------------------------------------------------------- */

static void test_layout_big_linux_chain_is_flippable_with_data_at_32(void **state)
{
	struct fx x;
	struct vd_vring_chain c;
	struct vd_vnet_rx_shape s;
	uint64_t pages[32];

	(void)state;
	fx_init(&x, VNG_BIG, 64, V1 | IND);
	vng_refill(&x.g);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 64), 1);
	assert_int_equal(vd_vnet_rx_classify(x.vq, x.features, x.segs, c.nseg, &s, pages, 32), 0);
	assert_int_equal(s.layout, VD_VNET_RX_BIG);
	assert_true(s.flippable);
	assert_int_equal(s.hdr_len, 12);
	assert_int_equal(s.data_off, 32);
	assert_int_equal(s.npages, 18);
	assert_int_equal(s.capacity, 4064 + 17 * 4096);
	assert_int_equal(pages[0], x.segs[0].gpa);
	for (uint32_t i = 1; i < 18; i++)
		assert_int_equal(pages[i], x.segs[i + 1].gpa);
	fx_fini(&x);
}

static void test_layout_big_legacy_header_is_10_bytes_data_still_at_32(void **state)
{
	struct fx x;
	struct vd_vring_chain c;
	struct vd_vnet_rx_shape s;
	uint64_t pages[32];

	(void)state;
	fx_init(&x, VNG_BIG, 64, 0);
	vng_refill(&x.g);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 64), 1);
	assert_int_equal(x.segs[0].len, 10);
	assert_int_equal(vd_vnet_rx_classify(x.vq, x.features, x.segs, c.nseg, &s, pages, 32), 0);
	assert_int_equal(s.layout, VD_VNET_RX_BIG);
	assert_true(s.flippable);
	assert_int_equal(s.hdr_len, 10);
	assert_int_equal(s.data_off, 32);
	fx_fini(&x);
}

static void test_layout_big_mtu_sized_chain_without_gso(void **state)
{
	struct fx x;
	struct vng_opts o = {
		.mode = VNG_BIG, .qsize = 64, .features = V1, .mem_size = MEM, .big_frags = 3};
	struct vng_mem m;
	struct vd_vring_config cfg;
	struct vd_vring_chain c;
	struct vd_vnet_rx_shape s;
	uint64_t pages[32];

	(void)state;
	/* mtu 9000 without guest GSO: DIV_ROUND_UP(9000, 4096) = 3 frags */
	fx_init(&x, VNG_SMALL, 64, V1);
	vd_vring_destroy(x.vq);
	vng_fini(&x.g);
	m = vng_flat_mem(&x.f);
	assert_int_equal(vng_init(&x.g, &m, &o), 0);
	cfg = vng_ring_config(&x.g);
	assert_int_equal(vd_vring_create(&x.vq, &x.gm, &cfg, NULL), 0);
	vng_refill(&x.g);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 64), 1);
	assert_int_equal(c.nseg, 5);
	assert_int_equal(vd_vnet_rx_classify(x.vq, V1, x.segs, c.nseg, &s, pages, 32), 0);
	assert_int_equal(s.layout, VD_VNET_RX_BIG);
	assert_true(s.flippable);
	assert_int_equal(s.npages, 4);
	fx_fini(&x);
}

static void test_layout_big_chain_with_a_repeated_page_is_not_flippable(void **state)
{
	struct fx x;
	struct vd_vring_chain c;
	struct vd_vnet_rx_shape s;
	uint64_t pages[32];

	(void)state;
	fx_init(&x, VNG_BIG, 64, V1);
	vng_refill(&x.g);
	/* descriptor of the third page (ring index 3) set to the second's page */
	vng_write_desc(&x.g, 3, x.g.bufs[0].gpa[2], 4096, VD_VRING_DESC_F_WRITE | VD_VRING_DESC_F_NEXT,
		       4);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 64), 1);
	assert_int_equal(vd_vnet_rx_classify(x.vq, x.features, x.segs, c.nseg, &s, pages, 32), 0);
	assert_int_equal(s.layout, VD_VNET_RX_BIG);
	assert_false(s.flippable);
	fx_fini(&x);
}

static void test_layout_big_chain_sharing_a_page_with_a_ring_is_not_flippable(void **state)
{
	struct fx x;
	struct vd_vring *vq;
	struct vd_vring_config cfg;
	struct vd_vnet_rx_shape s;
	uint64_t pages[32];
	const uint64_t p = 0x100000, q = 0x102000;
	struct vd_vring_seg segs[3] = {
		{.gpa = p, .len = 12, .writable = 1},
		{.gpa = p + 32, .len = 4064, .writable = 1},
		{.gpa = q, .len = 4096, .writable = 1},
	};

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1);
	/* flippable on the fixture's queue, whose rings are elsewhere */
	assert_int_equal(vd_vnet_rx_classify(x.vq, V1, segs, 3, &s, pages, 32), 0);
	assert_true(s.flippable);
	/* a one-entry queue whose avail ring (8 bytes) sits in the gap between
	 * the header and the data of the first page: no byte is shared with a
	 * segment, but flipping the page would take the ring away */
	cfg = (struct vd_vring_config){
		.desc_gpa = 0x200000, .avail_gpa = p + 16, .used_gpa = 0x201000, .size = 1};
	assert_int_equal(vd_vring_create(&vq, &x.gm, &cfg, NULL), 0);
	assert_false(vd_vring_overlaps_rings(vq, segs[0].gpa, segs[0].len, false));
	assert_false(vd_vring_overlaps_rings(vq, segs[1].gpa, segs[1].len, false));
	assert_int_equal(vd_vnet_rx_classify(vq, V1, segs, 3, &s, pages, 32), 0);
	assert_int_equal(s.layout, VD_VNET_RX_BIG);
	assert_false(s.flippable);
	vd_vring_destroy(vq);
	fx_fini(&x);
}

static void test_layout_mergeable_buffers_are_single_unaligned_segments(void **state)
{
	struct fx x;
	struct vd_vring_chain c;
	struct vd_vnet_rx_shape s;
	uint32_t unaligned = 0, crossing = 0;

	(void)state;
	fx_init(&x, VNG_MERGEABLE, 64, V1 | MRG | IND);
	assert_int_equal(vng_refill(&x.g), 64);
	for (int i = 0; i < 64; i++) {
		assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 64), 1);
		assert_int_equal(c.nseg, 1); /* never indirect: context vq */
		assert_int_equal(vd_vnet_rx_classify(x.vq, x.features, x.segs, 1, &s, NULL, 0), 0);
		assert_int_equal(s.layout, VD_VNET_RX_MERGEABLE);
		assert_false(s.flippable);
		assert_true(c.len == 1536 || c.len == 2048); /* the 21st of a chunk takes the tail */
		unaligned += (x.segs[0].gpa % 4096) != 0;
		crossing += x.segs[0].gpa / 4096 != (x.segs[0].gpa + c.len - 1) / 4096;
	}
	assert_true(unaligned > 40);
	assert_true(crossing > 0);
	fx_fini(&x);
}

static void test_layout_small_is_one_segment_of_header_plus_1518(void **state)
{
	struct fx x;
	struct vd_vring_chain c;
	struct vd_vnet_rx_shape s;

	(void)state;
	fx_init(&x, VNG_SMALL, 64, V1);
	vng_refill(&x.g);
	assert_int_equal(vd_vring_pop(x.vq, &c, x.segs, 64), 1);
	assert_int_equal(c.nseg, 1);
	assert_int_equal(c.len, 12 + 1518);
	assert_int_equal(x.segs[0].gpa % 64, 0);
	assert_int_equal(vd_vnet_rx_classify(x.vq, x.features, x.segs, 1, &s, NULL, 0), 0);
	assert_int_equal(s.layout, VD_VNET_RX_SMALL);
	assert_int_equal(s.capacity, 1518);
	fx_fini(&x);
}

static void test_layout_rejects_a_chain_shorter_than_the_header(void **state)
{
	struct fx x;
	struct vd_vring_seg seg = {.gpa = 0x100000, .len = 11, .writable = 1};
	struct vd_vnet_rx_shape s;

	(void)state;
	fx_init(&x, VNG_SMALL, 16, V1);
	assert_int_equal(vd_vnet_rx_classify(x.vq, V1, &seg, 1, &s, NULL, 0), -EINVAL);
	seg.len = 10;
	assert_int_equal(vd_vnet_rx_classify(x.vq, 0, &seg, 1, &s, NULL, 0), 0);
	assert_int_equal(vd_vnet_hdr_len(VD_VIRTIO_NET_F_HASH_REPORT), 20);
	fx_fini(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_rejects_bad_sizes_alignment_and_placement),
		cmocka_unit_test(test_legacy_layout_puts_the_used_ring_on_the_next_4096_boundary),
		cmocka_unit_test(test_create_frees_everything_on_enomem_and_destroy),
		cmocka_unit_test(test_small_frames_round_trip_to_the_guest),
		cmocka_unit_test(test_indices_wrap_past_65535_without_losing_a_buffer),
		cmocka_unit_test(test_pushed_entries_stay_invisible_until_one_publish),
		cmocka_unit_test(test_push_rejects_heads_not_in_flight_and_lengths_past_the_chain),
		cmocka_unit_test(test_mergeable_frame_spans_num_buffers_consecutive_entries),
		cmocka_unit_test(test_big_frame_lands_across_the_first_page_and_whole_pages),
		cmocka_unit_test(test_event_idx_notifies_only_when_used_idx_passes_used_event),
		cmocka_unit_test(test_event_idx_batch_that_steps_over_used_event_notifies),
		cmocka_unit_test(test_event_idx_ignores_the_no_interrupt_flag),
		cmocka_unit_test(test_no_interrupt_flag_suppresses_notify_without_event_idx),
		cmocka_unit_test(test_enable_kick_sets_avail_event_and_reports_pending_chains),
		cmocka_unit_test(
			test_idle_only_when_kicks_are_asked_at_this_entry_and_nothing_is_available),
		cmocka_unit_test(test_repeated_kick_request_writes_nothing_until_something_changes),
		cmocka_unit_test(test_no_notify_flag_without_event_idx),
		cmocka_unit_test(test_indirect_big_chain_pops_as_its_19_segments),
		cmocka_unit_test(test_direct_big_chain_takes_19_ring_descriptors),
		cmocka_unit_test(test_hostile_next_out_of_range_is_skipped),
		cmocka_unit_test(test_hostile_loop_is_skipped_and_pop_terminates),
		cmocka_unit_test(test_hostile_self_loop_in_indirect_table_is_skipped),
		cmocka_unit_test(test_hostile_chain_longer_than_the_queue_is_skipped),
		cmocka_unit_test(test_chain_longer_than_the_callers_array_is_skipped),
		cmocka_unit_test(test_hostile_indirect_without_the_feature_is_skipped),
		cmocka_unit_test(test_hostile_nested_indirect_is_skipped),
		cmocka_unit_test(test_hostile_indirect_with_next_is_skipped),
		cmocka_unit_test(test_hostile_indirect_length_not_a_multiple_of_16_is_skipped),
		cmocka_unit_test(test_hostile_indirect_length_zero_is_skipped),
		cmocka_unit_test(test_hostile_indirect_table_outside_ram_is_skipped),
		cmocka_unit_test(test_hostile_indirect_table_in_the_rx_window_is_skipped),
		cmocka_unit_test(test_hostile_device_readable_descriptor_is_skipped),
		cmocka_unit_test(test_hostile_buffer_outside_ram_is_skipped),
		cmocka_unit_test(test_hostile_buffer_over_each_ring_is_skipped),
		cmocka_unit_test(test_hostile_zero_length_descriptor_is_skipped),
		cmocka_unit_test(test_hostile_total_length_overflow_is_skipped),
		cmocka_unit_test(test_hostile_avail_idx_jump_breaks_the_queue_until_reset),
		cmocka_unit_test(test_hostile_avail_idx_moving_backwards_breaks_the_queue),
		cmocka_unit_test(test_hostile_head_out_of_range_breaks_the_queue),
		cmocka_unit_test(test_hostile_head_offered_twice_breaks_the_queue),
		cmocka_unit_test(
			test_hostile_head_offered_again_before_its_used_entry_is_published_breaks_the_queue),
		cmocka_unit_test(test_rewritten_descriptor_is_read_once),
		cmocka_unit_test(test_rings_rewritten_concurrently_never_yield_a_bad_segment),
		cmocka_unit_test(test_skipped_entries_follow_the_pushed_frame),
		cmocka_unit_test(test_linux_guest_recycles_a_skipped_buffer_as_a_length_error),
		cmocka_unit_test(test_layout_big_linux_chain_is_flippable_with_data_at_32),
		cmocka_unit_test(test_layout_big_legacy_header_is_10_bytes_data_still_at_32),
		cmocka_unit_test(test_layout_big_mtu_sized_chain_without_gso),
		cmocka_unit_test(test_layout_big_chain_with_a_repeated_page_is_not_flippable),
		cmocka_unit_test(test_layout_big_chain_sharing_a_page_with_a_ring_is_not_flippable),
		cmocka_unit_test(test_layout_mergeable_buffers_are_single_unaligned_segments),
		cmocka_unit_test(test_layout_small_is_one_segment_of_header_plus_1518),
		cmocka_unit_test(test_layout_rejects_a_chain_shorter_than_the_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
