/* SPDX-License-Identifier: MIT */
/*
 * Every limit of the engine's public contract, at limit - 1, limit and
 * limit + 1: the largest inputs are taken whole (frames of max_frame bytes,
 * zero-copy chains at the largest offset, whole windows, bursts that fill
 * the pool, the completion queue or the plan), and one more is refused with
 * its documented errno and counter, changing nothing else (every counter,
 * every slot's mapping, the pool: compared before and after).
 * docs/architecture.md ("Limits") lists them with where each is enforced.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt.h"

#define PG VDEMUX_PAGE_SIZE
#define LONGEST (65536u + 4u) /* engine.h: max_frame is at most 65536 + 4 */

static struct vt_fx *fx_frame(void **state, uint32_t npages, uint32_t max_frame)
{
	struct vt_fx_opts o = {0};

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = npages, .max_frame = max_frame,
			    .copy = VDEMUX_COPY_NEVER);
	return vt_fx_state(state, &o);
}

static int engine_with(uint32_t max_frame, uint32_t max_vms)
{
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8,
						  .max_frame = max_frame, .max_vms = max_vms);
	vdemux_engine *e = NULL;
	int rc = vdemux_engine_create(&e, &o);

	if (rc == 0) {
		char msg[128];

		assert_int_equal(vdemux_engine_check(e, msg, sizeof(msg)), 0);
		vdemux_engine_destroy(e);
	} else {
		assert_null(e);
	}
	return rc;
}

/* ---- engine options ---- */

static void test_engine_max_frame_is_at_most_65540_and_at_least_14(void **state)
{
	(void)state;
	assert_int_equal(engine_with(LONGEST - 1, 0), 0);
	assert_int_equal(engine_with(LONGEST, 0), 0);
	assert_int_equal(engine_with(LONGEST + 1, 0), -EINVAL);
	assert_int_equal(engine_with(UINT32_MAX, 0), -EINVAL);
	assert_int_equal(engine_with(13, 0), -EINVAL);
	assert_int_equal(engine_with(14, 0), 0);
	assert_int_equal(engine_with(15, 0), 0);
}

static void test_engine_max_vms_is_at_most_2_pow_20_minus_1(void **state)
{
	(void)state;
	assert_int_equal(engine_with(0, (1u << 20) - 2), 0);
	assert_int_equal(engine_with(0, (1u << 20) - 1), 0);
	assert_int_equal(engine_with(0, 1u << 20), -EINVAL);
	assert_int_equal(engine_with(0, UINT32_MAX), -EINVAL);
}

/* The VM of the largest index gets an id that names it, and back. */
static void test_largest_max_vms_names_and_finds_its_vms(void **state)
{
	struct vt_fx_opts o = {0};
	struct vt_fx *fx;
	struct vt_vm *a, *b;

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 16, .max_vms = (1u << 20) - 1);
	fx = vt_fx_state(state, &o);
	a = vt_vm_posted(fx, 2, VDEMUX_VM_F_UNPOPULATED);
	b = vt_vm_posted(fx, 2, VDEMUX_VM_F_UNPOPULATED);
	assert_int_not_equal(a->id, b->id);
	vt_vm_remove(fx, a);
	a = vt_vm_posted(fx, 2, VDEMUX_VM_F_UNPOPULATED);
	assert_int_equal(vt_vm_stats(fx, a).posted, 2);
	assert_int_equal(vt_vm_stats(fx, b).posted, 2);
	vt_check(fx);
}

/* The engine's own arena: at most 2^28 pages (arena.h). */
static void test_engine_arena_of_more_than_2_pow_28_pages_is_refused(void **state)
{
	struct vdemux_engine_opts o = VDEMUX_OPTS(vdemux_engine_opts, .npages = (1u << 28) + 1);
	vdemux_engine *e = NULL;

	(void)state;
	assert_int_equal(vdemux_engine_create(&e, &o), -EINVAL);
	assert_null(e);
	o.npages = UINT32_MAX;
	assert_int_equal(vdemux_engine_create(&e, &o), -EINVAL);
	assert_null(e);
}

/* The classifier's table: max_entries at most 2^26; VLANs 1 .. 4094. */
static void test_l2_max_entries_and_vlan_ids_at_their_limits(void **state)
{
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	struct vt_vm *a;
	vdemux_l2 *l2 = NULL;
	struct vdemux_l2_opts lo = VDEMUX_OPTS(vdemux_l2_opts, .max_entries = (1u << 26) - 1);
	uint8_t f[64], dst[6];
	struct vdemux_frame fr = {.data = f, .len = sizeof(f)};

	assert_int_equal(vdemux_l2_create(&l2, &lo), 0);
	vdemux_l2_destroy(l2);
	lo.max_entries = 1u << 26;
	assert_int_equal(vdemux_l2_create(&l2, &lo), 0);
	vdemux_l2_destroy(l2);
	l2 = NULL;
	lo.max_entries = (1u << 26) + 1;
	assert_int_equal(vdemux_l2_create(&l2, &lo), -EINVAL);
	assert_null(l2);

	fo.builtin_cls = true;
	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 32, .copy = VDEMUX_COPY_NEVER);
	fx = vt_fx_state(state, &fo);
	a = vt_vm_posted(fx, 4, VDEMUX_VM_F_UNPOPULATED);
	l2 = vdemux_engine_l2(fx->eng);
	assert_int_equal(vdemux_l2_vlan_join(l2, a->id, 4093, VDEMUX_L2_TAGGED), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, a->id, 4094, VDEMUX_L2_TAGGED), 0);
	assert_int_equal(vdemux_l2_vlan_join(l2, a->id, 4095, VDEMUX_L2_TAGGED), -EINVAL);
	vt_mac(a->id, dst);
	assert_int_equal(vdemux_l2_add_mac(l2, a->id, dst, 4094), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, a->id, dst, 4095), -EINVAL);
	/* a frame tagged 4094 reaches the member with its tag */
	vt_frame_fill(f, sizeof(f), dst, 90);
	memmove(f + 16, f + 12, sizeof(f) - 16);
	f[12] = 0x81;
	f[13] = 0x00;
	f[14] = 0x0f;
	f[15] = 0xfe;
	assert_int_equal(vdemux_rx_burst(fx->eng, &fr, 1), 1);
	assert_int_equal(vt_vm_stats(fx, a).delivered, 1);
	assert_int_equal(vt_guest_read_page(fx, 0, a, vt_gpa(a, 0), (uint8_t[PG]){0}), 0);
	/* tagged 4095: no VLAN has it, dropped */
	f[15] = 0xff;
	assert_int_equal(vdemux_rx_burst(fx->eng, &fr, 1), 1);
	assert_int_equal(vt_vm_stats(fx, a).delivered, 1);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_NO_VLAN_MEMBER], 1);
	vt_check(fx);
}

/* ---- frames from the caller's memory ---- */

/* Frames of max_frame - 1 and max_frame bytes are delivered whole. */
static void burst_delivers_up_to(void **state, uint32_t max_frame)
{
	struct vt_fx *fx = fx_frame(state, 64, max_frame);
	struct vt_vm *a = vt_vm_posted(fx, 40, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vt_rx rx[2];

	vt_burst_add(fx, &b, a->id, max_frame - 1);
	vt_burst_add(fx, &b, a->id, max_frame);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 2), 2);
	vt_check(fx);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 2);
	assert_int_equal(rx[0].len, max_frame - 1);
	assert_int_equal(rx[1].len, max_frame);
	assert_int_equal(rx[1].ncpl, (max_frame + PG - 1) / PG);
	assert_int_equal(vt_stats(fx).rx_bytes, 2ull * max_frame - 1);
	vt_burst_free(&b);
}

static void test_burst_takes_frames_up_to_the_longest_max_frame(void **state)
{
	burst_delivers_up_to(state, LONGEST);
}

static void test_burst_takes_frames_up_to_the_default_max_frame(void **state)
{
	burst_delivers_up_to(state, 65536);
}

/* One byte more than max_frame, anywhere in a burst: -EMSGSIZE, counted,
 * nothing taken (all-or-nothing). */
static void burst_refuses_one_more(void **state, uint32_t max_frame)
{
	struct vt_fx *fx = fx_frame(state, 64, max_frame ? max_frame : 65536);
	struct vt_vm *a = vt_vm_posted(fx, 40, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vt_snap *before;
	uint32_t limit = max_frame ? max_frame : 65536;

	vt_burst_add(fx, &b, a->id, limit);
	vt_burst_add(fx, &b, a->id, limit + 1);
	before = vt_snap_take(fx);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 2), -EMSGSIZE);
	vt_snap_expect_same(fx, before, VDEMUX_BAD_FRAME_LEN);
	free(before);
	before = vt_snap_take(fx);
	assert_int_equal(vdemux_rx_burst(fx->eng, &b.f[1], 1), -EMSGSIZE);
	vt_snap_expect_same(fx, before, VDEMUX_BAD_FRAME_LEN);
	vt_check(fx);
	free(before);
	vt_burst_free(&b);
}

static void test_burst_refuses_a_frame_of_65541_bytes_with_emsgsize(void **state)
{
	burst_refuses_one_more(state, LONGEST);
}

static void test_burst_refuses_a_frame_of_65537_bytes_by_default(void **state)
{
	burst_refuses_one_more(state, 0);
}

static void test_burst_takes_14_byte_frames_and_refuses_13(void **state)
{
	struct vt_fx *fx = fx_frame(state, 16, 0);
	struct vt_vm *a = vt_vm_posted(fx, 4, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vt_snap *before;

	vt_burst_add(fx, &b, a->id, 13);
	vt_burst_add(fx, &b, a->id, 14);
	vt_burst_add(fx, &b, a->id, 15);
	before = vt_snap_take(fx);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 3), -EINVAL);
	vt_snap_expect_same(fx, before, VDEMUX_BAD_FRAME_LEN);
	assert_int_equal(vdemux_rx_burst(fx->eng, &b.f[1], 2), 2);
	assert_int_equal(vt_vm_stats(fx, a).delivered, 2);
	vt_check(fx);
	free(before);
	vt_burst_free(&b);
}

/* ---- zero-copy chains ---- */

/* Lend the buffers of a frame of @len bytes starting at @off in its first
 * page, copy @frame in, chain them. Returns the number of buffers. */
static unsigned chain_fill(struct vt_fx *fx, struct vdemux_rx_buf *bufs, const uint8_t *frame,
			   uint32_t len, uint32_t off)
{
	unsigned n = (off + len + PG - 1) / PG;
	uint32_t done = 0;

	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs, n), (int)n);
	for (unsigned i = 0; i < n; i++) {
		uint32_t o = i ? 0 : off, k = len - done < PG - o ? len - done : PG - o;

		memcpy(bufs[i].data + o, frame + done, k);
		bufs[i].off = o;
		bufs[i].len = k;
		bufs[i].flags = i + 1 < n ? VDEMUX_RXBUF_MORE : 0;
		done += k;
	}
	return n;
}

static uint8_t *frame_for(struct vt_fx *fx, const struct vt_vm *vm, uint32_t len, uint32_t seq)
{
	uint8_t *f = malloc(len), dst[6];

	assert_non_null(f);
	vt_mac(vm->id, dst);
	vt_frame_fill(f, len, dst, seq);
	(void)fx;
	return f;
}

/* Chains of max_frame - 1 and max_frame bytes from offset 4095 (a first
 * buffer of 1 byte, then 16 pages, then the rest: 18 buffers) are
 * delivered whole, both in one call. */
static void test_submit_takes_the_longest_chains_from_offset_4095(void **state)
{
	struct vt_fx *fx = fx_frame(state, 96, LONGEST);
	struct vt_vm *a = vt_vm_posted(fx, 40, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_rx_buf bufs[36];
	uint8_t *f0 = frame_for(fx, a, LONGEST - 1, 71), *f1 = frame_for(fx, a, LONGEST, 72);
	unsigned n0 = chain_fill(fx, bufs, f0, LONGEST - 1, PG - 1);
	unsigned n1 = chain_fill(fx, bufs + n0, f1, LONGEST, PG - 1);
	struct vt_rx rx[2];

	assert_int_equal(n0, 18);
	assert_int_equal(n1, 18);
	assert_int_equal(bufs[n0].len, 1);
	assert_int_equal(bufs[n0 + 17].len, LONGEST - 1 - 16 * PG);
	assert_int_equal(vdemux_rx_submit(fx->eng, bufs, n0 + n1), (int)(n0 + n1));
	vt_check(fx);
	assert_int_equal(vt_stats(fx).pages_filling, 0);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 2);
	assert_int_equal(rx[0].seq, 71);
	assert_int_equal(rx[0].len, LONGEST - 1);
	assert_int_equal(rx[1].seq, 72);
	assert_int_equal(rx[1].len, LONGEST);
	assert_int_equal(rx[1].ncpl, 17);
	free(f0);
	free(f1);
}

/* Refused submits leave every lent page lent: give them back and check. */
static void submit_refused(struct vt_fx *fx, struct vdemux_rx_buf *bufs, unsigned n, int err)
{
	struct vt_snap *before = vt_snap_take(fx);

	assert_int_equal(vdemux_rx_submit(fx->eng, bufs, n), err);
	vt_snap_expect_same(fx, before, err == -EBADF ? VDEMUX_BAD_RX_BUF : VDEMUX_BAD_FRAME_LEN);
	assert_int_equal(vt_stats(fx).pages_filling, before->es.pages_filling);
	free(before);
	assert_int_equal(vdemux_rx_abort(fx->eng, bufs, n), (int)n);
	vt_check(fx);
}

/* One byte more than max_frame from offset 4095: still 18 buffers, the
 * last one 1 byte longer: -EMSGSIZE. */
static void test_submit_refuses_a_chain_of_max_frame_plus_1_with_emsgsize(void **state)
{
	struct vt_fx *fx = fx_frame(state, 96, LONGEST);
	struct vt_vm *a = vt_vm_posted(fx, 40, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_rx_buf bufs[18];
	uint8_t *f = frame_for(fx, a, LONGEST + 1, 73);
	unsigned n = chain_fill(fx, bufs, f, LONGEST + 1, PG - 1);

	assert_int_equal(n, 18);
	submit_refused(fx, bufs, n, -EMSGSIZE);
	free(f);
}

/* A chain that goes on past max_frame (a 19th buffer after 18 that already
 * hold max_frame bytes) is refused at the buffer that reaches it. */
static void test_submit_refuses_a_chain_continued_past_max_frame(void **state)
{
	struct vt_fx *fx = fx_frame(state, 96, LONGEST);
	struct vt_vm *a = vt_vm_posted(fx, 40, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_rx_buf bufs[19];
	uint8_t *f = frame_for(fx, a, LONGEST + PG, 74);
	unsigned n = chain_fill(fx, bufs, f, LONGEST + PG, 0);

	assert_int_equal(n, 18);
	bufs[16].len = PG; /* 17 full pages: 69632 bytes, and MORE */
	bufs[16].flags = VDEMUX_RXBUF_MORE;
	assert_int_equal(vdemux_rx_alloc(fx->eng, &bufs[18], 1), 1);
	bufs[17].len = PG;
	bufs[17].flags = VDEMUX_RXBUF_MORE;
	bufs[18].len = 1;
	bufs[18].off = 0;
	bufs[18].flags = 0;
	submit_refused(fx, bufs, 19, -EMSGSIZE);
	free(f);
}

/* A buffer's offset is at most page size - 1 (with 1 byte), its offset +
 * length at most the page size. */
static void test_submit_buffer_offsets_stop_at_the_last_byte_of_the_page(void **state)
{
	struct vt_fx *fx = fx_frame(state, 32, 0);
	struct vt_vm *a = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_rx_buf b[3];
	uint8_t *f2 = frame_for(fx, a, PG + 2, 75), *f1 = frame_for(fx, a, PG + 1, 76);
	struct vt_rx rx[2];
	unsigned n;

	/* limit - 1: off 4094, 2 bytes in the first buffer */
	n = chain_fill(fx, b, f2, PG + 2, PG - 2);
	assert_int_equal(n, 2);
	assert_int_equal(vdemux_rx_submit(fx->eng, b, n), 2);
	/* limit: off 4095, 1 byte */
	n = chain_fill(fx, b, f1, PG + 1, PG - 1);
	assert_int_equal(b[0].len, 1);
	assert_int_equal(vdemux_rx_submit(fx->eng, b, n), 2);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 2);
	assert_int_equal(rx[0].len, PG + 2);
	assert_int_equal(rx[1].len, PG + 1);
	/* limit + 1: off 4096, or off + len one past the page */
	n = chain_fill(fx, b, f1, PG + 1, PG - 1);
	b[0].off = PG;
	submit_refused(fx, b, n, -EINVAL);
	n = chain_fill(fx, b, f1, PG + 1, PG - 1);
	b[0].len = 2;
	submit_refused(fx, b, n, -EINVAL);
	n = chain_fill(fx, b, f1, 100, 0);
	b[0].len = PG + 1;
	submit_refused(fx, b, n, -EINVAL);
	free(f1);
	free(f2);
}

/* ---- the pool ---- */

/* A burst of frames needing every free page is taken whole; one page more
 * and the burst stops short, the last frame left with the caller and a
 * release requested. */
static void burst_against_the_pool(void **state, int extra)
{
	struct vt_fx *fx = fx_frame(state, 48, 0);
	struct vt_vm *a = vt_vm_posted(fx, 48, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	uint32_t nfree = (uint32_t)vt_stats(fx).pages_free, want = nfree + extra;
	int rc;

	assert_int_equal(nfree, 48);
	/* two-page frames, and a one-page frame to make up an odd count */
	while (b.n < want / 2)
		vt_burst_add(fx, &b, a->id, PG + 100);
	if (want % 2)
		vt_burst_add(fx, &b, a->id, 100);
	vt_sig_reset(fx);
	rc = vdemux_rx_burst(fx->eng, b.f, b.n);
	vt_check(fx);
	if (extra <= 0) {
		assert_int_equal(rc, (int)b.n);
		assert_int_equal(vt_stats(fx).pages_free, nfree - want);
		assert_false(fx->vms[0].sig_reasons & VDEMUX_SIG_RELEASE);
	} else {
		assert_int_equal(rc, (int)b.n - 1);
		assert_int_equal(vt_stats(fx).pages_free, nfree % 2 ? 1 : 0);
		assert_true(fx->vms[0].sig_reasons & VDEMUX_SIG_RELEASE);
	}
	assert_int_equal(vt_guest_take(fx, a, NULL, 64), (unsigned)rc);
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_burst_needing_one_page_less_than_the_pool_is_taken(void **state)
{
	burst_against_the_pool(state, -1);
}

static void test_burst_needing_the_whole_pool_is_taken(void **state)
{
	burst_against_the_pool(state, 0);
}

static void test_burst_needing_one_page_more_than_the_pool_stops_short(void **state)
{
	burst_against_the_pool(state, 1);
}

static void test_burst_on_an_empty_pool_returns_enobufs_and_changes_nothing(void **state)
{
	struct vt_fx *fx = fx_frame(state, 8, 0);
	struct vt_vm *a = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_rx_buf lent[8];
	struct vt_burst b = {0};
	struct vt_snap *before;

	assert_int_equal(vdemux_rx_alloc(fx->eng, lent, 8), 8);
	assert_int_equal(vdemux_rx_alloc(fx->eng, lent, 1), 0);
	vt_burst_add(fx, &b, a->id, 60);
	before = vt_snap_take(fx);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), -ENOBUFS);
	vt_snap_expect_same(fx, before, -1);
	assert_int_equal(vdemux_rx_abort(fx->eng, lent, 8), 8);
	vt_check(fx);
	free(before);
	vt_burst_free(&b);
}

/* ---- a VM's queues, quota and options ---- */

static void deliver_one(struct vt_fx *fx, struct vt_vm *vm, uint32_t len)
{
	struct vt_burst b = {0};

	vt_burst_add(fx, &b, vm->id, len);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	vt_burst_free(&b);
}

/* The completion queue holds 2 x rx_pages: filled to 2N - 1, then N, then
 * the next delivery is dropped as CQ_FULL (counted; its buffer stays
 * posted, nothing else moves). */
static void test_completion_queue_holds_twice_the_window_then_drops_cq_full(void **state)
{
	struct vt_fx *fx = fx_frame(state, 64, 0);
	struct vt_vm *a = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_engine_stats es;
	struct vdemux_vm_stats vs;

	for (int i = 0; i < 8; i++)
		deliver_one(fx, a, 100);
	vt_post_range(fx, a, 0, 8); /* re-post the filled slots: releases */
	for (int i = 0; i < 7; i++)
		deliver_one(fx, a, 100);
	assert_int_equal(vt_vm_stats(fx, a).pending, 15);
	deliver_one(fx, a, 100);
	assert_int_equal(vt_vm_stats(fx, a).pending, 16);
	vt_post_range(fx, a, 0, 1);
	es = vt_stats(fx);
	vs = vt_vm_stats(fx, a);
	deliver_one(fx, a, 100);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_CQ_FULL], es.drops[VDEMUX_DROP_CQ_FULL] + 1);
	assert_int_equal(vt_vm_stats(fx, a).drops[VDEMUX_DROP_CQ_FULL],
			 vs.drops[VDEMUX_DROP_CQ_FULL] + 1);
	assert_int_equal(vt_vm_stats(fx, a).pending, 16);
	assert_int_equal(vt_vm_stats(fx, a).posted, 1);
	assert_int_equal(vt_vm_stats(fx, a).delivered, vs.delivered);
	assert_int_equal(vt_stats(fx).pages_free, es.pages_free);
	vt_check(fx);
	{
		struct vdemux_completion c[17];

		assert_int_equal(vdemux_vm_poll(fx->eng, a->id, c, 17), 16);
	}
	assert_int_equal(vt_vm_stats(fx, a).pending, 0);
	vt_check(fx);
}

/* A VM holds at most quota pages: deliveries up to it, then QUOTA drops. */
static void test_quota_is_held_to_the_page_then_drops_quota(void **state)
{
	struct vt_fx *fx = fx_frame(state, 64, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 8);
	struct vdemux_engine_stats es;
	struct vt_vm *a;

	o.flags = VDEMUX_VM_F_UNPOPULATED;
	o.quota = 4;
	a = vt_vm_add(fx, &o);
	vt_post_range(fx, a, 0, 8);
	for (int i = 0; i < 3; i++)
		deliver_one(fx, a, 100);
	assert_int_equal(vt_vm_stats(fx, a).held, 3);
	deliver_one(fx, a, 100);
	assert_int_equal(vt_vm_stats(fx, a).held, 4);
	es = vt_stats(fx);
	deliver_one(fx, a, 100);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_QUOTA], es.drops[VDEMUX_DROP_QUOTA] + 1);
	assert_int_equal(vt_vm_stats(fx, a).held, 4);
	assert_int_equal(vt_vm_stats(fx, a).posted, 4);
	assert_int_equal(vt_stats(fx).pages_free, es.pages_free);
	vt_check(fx);
}

static int add_refused(struct vt_fx *fx, const struct vdemux_vm_opts *o, int bad)
{
	struct vt_snap *before = vt_snap_take(fx);
	vdemux_vm_id id = 0;
	int rc = vdemux_vm_add(fx->eng, &id, o);

	assert_int_equal(id, 0);
	vt_snap_expect_same(fx, before, bad);
	free(before);
	vt_check(fx);
	return rc;
}

static void test_vm_options_at_their_limits(void **state)
{
	struct vt_fx *fx = fx_frame(state, 16, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 8);

	/* quota at most rx_pages */
	o.flags = VDEMUX_VM_F_UNPOPULATED;
	o.quota = 9;
	assert_int_equal(add_refused(fx, &o, VDEMUX_BAD_OPTS), -EINVAL);
	o.quota = 8;
	vt_vm_remove(fx, vt_vm_add(fx, &o));
	/* rx_pages 1 .. 2^28 (the largest is refused here for its own
	 * reasons: no test allocates a 1 TiB window's slots) */
	o = vt_vm_opts(fx, (1u << 28) + 1);
	o.flags = VDEMUX_VM_F_UNPOPULATED;
	assert_int_equal(add_refused(fx, &o, VDEMUX_BAD_OPTS), -EINVAL);
	o.rx_pages = UINT32_MAX;
	assert_int_equal(add_refused(fx, &o, VDEMUX_BAD_OPTS), -EINVAL);
	o.rx_pages = 0;
	assert_int_equal(add_refused(fx, &o, VDEMUX_BAD_OPTS), -EINVAL);
	/* a window ending at 2^64 exactly (its end is not a GPA: vm.h), and
	 * one that would wrap the 64-bit GPA space */
	o.rx_pages = 2;
	o.rx_base = UINT64_MAX - PG + 1 - PG;
	assert_int_equal(add_refused(fx, &o, VDEMUX_BAD_OPTS), -EINVAL);
	o.rx_base = UINT64_MAX - PG + 1;
	assert_int_equal(add_refused(fx, &o, VDEMUX_BAD_OPTS), -EINVAL);
	/* populated: a window of exactly the free pages, then one more */
	o = vt_vm_opts(fx, 17);
	assert_int_equal(add_refused(fx, &o, -1), -ENOBUFS);
	o.rx_pages = 16;
	vt_vm_remove(fx, vt_vm_add(fx, &o));
	vt_check(fx);
}

/* n_backends 1..8: eight distinct registered backends keep one VM's
 * tables; nine are refused. */
static void test_vm_takes_8_backends_and_refuses_9(void **state)
{
	struct vt_fx *fx = fx_frame(state, 32, 0);
	struct vdemux_backend *be[9];
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	struct vdemux_vm_stats vs;
	vdemux_vm_id id;
	char msg[256];

	for (int i = 0; i < 9; i++) {
		assert_int_equal(vdemux_sim_create(&be[i], NULL), 0);
		assert_int_equal(vdemux_engine_add_backend(fx->eng, be[i]), 0);
	}
	o.backends = be;
	o.n_backends = 9;
	assert_int_equal(add_refused(fx, &o, VDEMUX_BAD_OPTS), -EINVAL);
	o.n_backends = 0;
	assert_int_equal(add_refused(fx, &o, VDEMUX_BAD_OPTS), -EINVAL);
	for (unsigned n = 7; n <= 8; n++) {
		struct vt_burst b = {0};
		uint8_t page[PG];

		o.n_backends = n;
		assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), 0);
		assert_int_equal(vdemux_vm_post_rx(fx->eng, id, &o.rx_base, 1), 1);
		vt_burst_add(fx, &b, id, 300);
		assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
		assert_int_equal(vdemux_vm_stats(fx->eng, id, &vs, sizeof(vs)), 0);
		assert_int_equal(vs.delivered, 1);
		/* every one of its tables maps the frame's page */
		for (unsigned k = 0; k < n; k++) {
			assert_int_equal(vdemux_sim_read(be[k], id, o.rx_base, page, PG), 0);
			assert_memory_equal(page, b.f[0].data, 300);
		}
		assert_int_equal(vdemux_sim_read(be[8], id, o.rx_base, page, PG), -ENOENT);
		assert_int_equal(vdemux_engine_check(fx->eng, msg, sizeof(msg)), 0);
		assert_int_equal(vdemux_vm_remove(fx->eng, id), 0);
		vt_burst_free(&b);
	}
	assert_int_equal(vdemux_engine_check(fx->eng, msg, sizeof(msg)), 0);
}

/* max_vms VMs at once: the one more is refused with -ENOSPC (not bad input:
 * nothing counted), and taken once one is removed. */
static void test_max_vms_at_once_then_enospc(void **state)
{
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	struct vdemux_vm_opts o;
	struct vt_vm *vm[4];

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 32, .max_vms = 4);
	fx = vt_fx_state(state, &fo);
	for (int i = 0; i < 4; i++)
		vm[i] = vt_vm_posted(fx, 2, VDEMUX_VM_F_UNPOPULATED);
	o = vt_vm_opts(fx, 2);
	assert_int_equal(add_refused(fx, &o, -1), -ENOSPC);
	vt_vm_remove(fx, vm[1]);
	vm[1] = vt_vm_posted(fx, 2, VDEMUX_VM_F_UNPOPULATED);
	deliver_one(fx, vm[1], 100);
	assert_int_equal(vt_guest_take(fx, vm[1], NULL, 1), 1);
	vt_check(fx);
}

/* ---- lists and bursts longer than one internal batch ---- */

#define BATCH 1024u /* entries of the engine's plan and table batches */

/* Every engine and VM counter as given (windows too large for a vt_snap). */
static void stats_same(struct vt_fx *fx, const struct vt_vm *vm, const struct vdemux_engine_stats *es,
		       const struct vdemux_vm_stats *vs)
{
	struct vdemux_engine_stats e = vt_stats(fx);
	struct vdemux_vm_stats v = vt_vm_stats(fx, vm);

	assert_memory_equal(&e, es, sizeof(e));
	assert_memory_equal(&v, vs, sizeof(v));
}

/* A whole window of 1025 held pages posted in one call (eager harvest:
 * unmapped in two batches); the same list with one GPA repeated is refused
 * whole. */
static void test_post_of_a_whole_window_longer_than_a_batch(void **state)
{
	struct vt_fx *fx = fx_frame(state, BATCH + 8, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, BATCH + 1);
	uint64_t *g = calloc(BATCH + 2, sizeof(*g));
	struct vdemux_engine_stats es;
	struct vdemux_vm_stats vs;
	struct vt_vm *a;

	assert_non_null(g);
	o.harvest = VDEMUX_HARVEST_EAGER;
	a = vt_vm_add(fx, &o);
	for (uint32_t i = 0; i <= BATCH; i++)
		g[i] = vt_gpa(a, i);
	g[BATCH + 1] = g[BATCH / 2];
	es = vt_stats(fx);
	vs = vt_vm_stats(fx, a);
	assert_int_equal(vdemux_vm_post_rx(fx->eng, a->id, g, BATCH + 2), -EALREADY);
	es.bad_input[VDEMUX_BAD_POST_TWICE]++;
	stats_same(fx, a, &es, &vs);
	assert_int_equal(vdemux_vm_post_rx(fx->eng, a->id, g, BATCH + 1), (int)BATCH + 1);
	assert_int_equal(vt_vm_stats(fx, a).posted, BATCH + 1);
	assert_int_equal(vt_vm_stats(fx, a).held, 0);
	assert_int_equal(vt_stats(fx).pages_free, BATCH + 8);
	assert_true(vt_guest_hole(fx, a, g[0]));
	assert_true(vt_guest_hole(fx, a, g[BATCH]));
	vt_check(fx);
	/* a release of more than a batch */
	vt_vm_remove(fx, a);
	o = vt_vm_opts(fx, BATCH + 1);
	a = vt_vm_add(fx, &o);
	for (uint32_t i = 0; i <= BATCH; i++)
		g[i] = vt_gpa(a, i);
	assert_int_equal(vdemux_vm_release(fx->eng, a->id, g, BATCH + 1), (int)BATCH + 1);
	assert_int_equal(vt_vm_stats(fx, a).held, 0);
	vt_check(fx);
	free(g);
}

/* One burst of n one-page deliveries: more than the plan holds is applied
 * in parts, every frame delivered in order. */
static void burst_of_deliveries(void **state, uint32_t n)
{
	struct vt_fx *fx = fx_frame(state, n + 16, 0);
	struct vt_vm *a = vt_vm_posted(fx, n, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_frame *f = calloc(n, sizeof(*f));
	uint8_t *data = malloc((size_t)n * 64), dst[6];
	struct vt_rx *rx = calloc(n, sizeof(*rx));

	assert_non_null(f);
	assert_non_null(data);
	assert_non_null(rx);
	vt_mac(a->id, dst);
	for (uint32_t i = 0; i < n; i++) {
		vt_frame_fill(data + (size_t)i * 64, 64, dst, 1000 + i);
		f[i] = (struct vdemux_frame){.data = data + (size_t)i * 64, .len = 64};
	}
	assert_int_equal(vdemux_rx_burst(fx->eng, f, n), (int)n);
	vt_check(fx);
	assert_int_equal(vt_stats(fx).delivered, n);
	assert_int_equal(vt_stats(fx).flips, n);
	assert_int_equal(vt_guest_take(fx, a, rx, n), n);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(rx[i].seq, 1000 + i);
	vt_check(fx);
	free(f);
	free(data);
	free(rx);
}

static void test_burst_of_1023_deliveries(void **state)
{
	burst_of_deliveries(state, BATCH - 1);
}

static void test_burst_of_1024_deliveries_fills_the_plan(void **state)
{
	burst_of_deliveries(state, BATCH);
}

static void test_burst_of_1025_deliveries_is_applied_in_two_parts(void **state)
{
	burst_of_deliveries(state, BATCH + 1);
}

/* ---- the longest delivery: a pushed VLAN tag on the longest frame ---- */

/* A max_frame frame to a VM that is a tagged member of the native VLAN
 * grows by its tag to 65544 bytes (17 pages): delivered whole, the tag in
 * place, whether the frame came from memory or as an 18-buffer chain. */
static void test_longest_frame_grown_by_a_pushed_tag_is_delivered(void **state)
{
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	struct vt_vm *a;
	struct vdemux_completion c[20];
	struct vdemux_rx_buf bufs[18];
	uint8_t *f, *got = malloc(LONGEST + 4 + PG);
	struct vdemux_frame fr;

	assert_non_null(got);
	fo.builtin_cls = true;
	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 96, .max_frame = LONGEST,
			     .copy = VDEMUX_COPY_NEVER);
	fx = vt_fx_state(state, &fo);
	a = vt_vm_posted(fx, 40, VDEMUX_VM_F_UNPOPULATED);
	assert_int_equal(vdemux_l2_vlan_join(vdemux_engine_l2(fx->eng), a->id, 1, VDEMUX_L2_TAGGED), 0);
	f = frame_for(fx, a, LONGEST, 80);
	fr = (struct vdemux_frame){.data = f, .len = LONGEST};
	for (int way = 0; way < 2; way++) {
		uint32_t done = 0;
		int n;

		if (way == 0) {
			assert_int_equal(vdemux_rx_burst(fx->eng, &fr, 1), 1);
		} else {
			unsigned nb = chain_fill(fx, bufs, f, LONGEST, PG - 1);

			assert_int_equal(nb, 18);
			assert_int_equal(vdemux_rx_submit(fx->eng, bufs, nb), 18);
		}
		vt_check(fx);
		n = vdemux_vm_poll(fx->eng, a->id, c, 20);
		assert_int_equal(n, 17);
		for (int k = 0; k < n; k++) {
			assert_int_equal(!!(c[k].flags & VDEMUX_CPL_MORE), k + 1 < n);
			assert_int_equal(vt_guest_read_page(fx, 0, a, c[k].gpa, got + done), 0);
			done += c[k].len;
		}
		assert_int_equal(done, LONGEST + 4);
		assert_memory_equal(got, f, 12);
		assert_int_equal(got[12], 0x81);
		assert_int_equal(got[13], 0x00);
		assert_int_equal((got[14] << 8 | got[15]) & 0xfff, 1);
		assert_memory_equal(got + 16, f + 12, LONGEST - 12);
	}
	vt_check(fx);
	free(f);
	free(got);
}

#define T(t) cmocka_unit_test_teardown(t, vt_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_engine_max_frame_is_at_most_65540_and_at_least_14),
		T(test_engine_max_vms_is_at_most_2_pow_20_minus_1),
		T(test_largest_max_vms_names_and_finds_its_vms),
		T(test_engine_arena_of_more_than_2_pow_28_pages_is_refused),
		T(test_l2_max_entries_and_vlan_ids_at_their_limits),
		T(test_burst_takes_frames_up_to_the_longest_max_frame),
		T(test_burst_takes_frames_up_to_the_default_max_frame),
		T(test_burst_refuses_a_frame_of_65541_bytes_with_emsgsize),
		T(test_burst_refuses_a_frame_of_65537_bytes_by_default),
		T(test_burst_takes_14_byte_frames_and_refuses_13),
		T(test_submit_takes_the_longest_chains_from_offset_4095),
		T(test_submit_refuses_a_chain_of_max_frame_plus_1_with_emsgsize),
		T(test_submit_refuses_a_chain_continued_past_max_frame),
		T(test_submit_buffer_offsets_stop_at_the_last_byte_of_the_page),
		T(test_burst_needing_one_page_less_than_the_pool_is_taken),
		T(test_burst_needing_the_whole_pool_is_taken),
		T(test_burst_needing_one_page_more_than_the_pool_stops_short),
		T(test_burst_on_an_empty_pool_returns_enobufs_and_changes_nothing),
		T(test_completion_queue_holds_twice_the_window_then_drops_cq_full),
		T(test_quota_is_held_to_the_page_then_drops_quota),
		T(test_vm_options_at_their_limits),
		T(test_vm_takes_8_backends_and_refuses_9),
		T(test_max_vms_at_once_then_enospc),
		T(test_post_of_a_whole_window_longer_than_a_batch),
		T(test_burst_of_1023_deliveries),
		T(test_burst_of_1024_deliveries_fills_the_plan),
		T(test_burst_of_1025_deliveries_is_applied_in_two_parts),
		T(test_longest_frame_grown_by_a_pushed_tag_is_delivered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
