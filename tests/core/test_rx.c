/* SPDX-License-Identifier: MIT */
/*
 * Receive paths: vdemux_rx_burst (copy-in), the zero-copy alloc/submit/abort
 * trio, jumbo frames spanning pages and buffers, drops, and the
 * copy-versus-flip policy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt.h"

static struct vt_fx *fx_with(void **state, uint32_t npages, enum vdemux_harvest h,
			     enum vdemux_copy_policy c, uint32_t threshold)
{
	struct vt_fx_opts o = {0};

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = npages, .harvest = h, .copy = c,
			    .copy_threshold = threshold);
	return vt_fx_state(state, &o);
}

static struct vdemux_sim_stats sim_stats(struct vt_fx *fx, unsigned b)
{
	struct vdemux_sim_stats s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(vdemux_sim_stats(fx->sim[b], &s, sizeof(s)), 0);
	return s;
}

/* ---- vdemux_rx_burst ---- */

static void test_burst_delivers_each_frame_into_a_posted_buffer(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *a = vt_vm_posted(fx, 4, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vt_rx rx[4];
	struct vdemux_engine_stats s;
	struct vdemux_vm_stats vs;

	vt_burst_add(fx, &b, a->id, 60);
	vt_burst_add(fx, &b, a->id, 1514);
	vt_burst_add(fx, &b, a->id, 4096);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 3), 3);
	vt_check(fx);
	assert_int_equal(vt_guest_take(fx, a, rx, 4), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rx[i].seq, b.seq[i]); /* oldest first */
		assert_int_equal(rx[i].len, b.f[i].len);
		assert_int_equal(rx[i].ncpl, 1);
		assert_false(rx[i].copied);
	}
	s = vt_stats(fx);
	assert_int_equal(s.rx_frames, 3);
	assert_int_equal(s.rx_bytes, 60 + 1514 + 4096);
	assert_int_equal(s.delivered, 3);
	assert_int_equal(s.flips, 3);
	assert_int_equal(s.completions, 3);
	vs = vt_vm_stats(fx, a);
	assert_int_equal(vs.delivered, 3);
	assert_int_equal(vs.bytes, 60 + 1514 + 4096);
	assert_int_equal(vs.flips, 3);
	assert_int_equal(vs.pending, 0);
	assert_int_equal(vs.held, 3);
	vt_burst_free(&b);
}

static void test_burst_accepts_the_shortest_and_longest_frames(void **state)
{
	struct vt_fx_opts o = {0};
	struct vt_fx *fx;
	struct vt_vm *a;
	uint8_t small[14], *big = malloc(3000);
	struct vdemux_frame f[2] = {{.data = small, .len = 14}, {.data = big, .len = 3000}};
	struct vdemux_completion c[4];

	assert_non_null(big);
	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 16, .max_frame = 3000,
			    .copy = VDEMUX_COPY_NEVER);
	fx = vt_fx_state(state, &o);
	a = vt_vm_posted(fx, 2, VDEMUX_VM_F_UNPOPULATED);
	vt_mac(a->id, small);
	memset(small + 6, 0x02, 8);
	vt_frame_fill(big, 3000, small, 9);
	assert_int_equal(vdemux_rx_burst(fx->eng, f, 2), 2);
	assert_int_equal(vdemux_vm_poll(fx->eng, a->id, c, 4), 2);
	assert_int_equal(c[0].len, 14);
	assert_int_equal(c[1].len, 3000);
	vt_check(fx);
	free(big);
}

static void test_frame_without_destination_is_dropped_and_its_page_cleared(void **state)
{
	struct vt_fx *fx = fx_with(state, 1, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	uint8_t *junk = malloc(2000);
	struct vdemux_frame f;
	struct vdemux_engine_stats s;

	assert_non_null(junk);
	memset(junk, 0xab, 2000); /* destination ab:ab:..: the test classifier names nobody */
	f.data = junk;
	f.len = 2000;
	f.pad = 0;
	assert_int_equal(vdemux_rx_burst(fx->eng, &f, 1), 1);
	s = vt_stats(fx);
	assert_int_equal(s.rx_frames, 1);
	assert_int_equal(s.delivered, 0);
	assert_int_equal(s.drops[VDEMUX_DROP_NO_DEST], 1);
	assert_int_equal(s.pages_free, 1);
	vt_check(fx); /* the engine's only page, which held the frame, is zero again */
	free(junk);
}

static void test_frame_for_vm_without_posted_buffer_is_dropped_as_no_buffer(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	struct vt_vm *a = vt_vm_add(fx, &o); /* populated, nothing posted */
	struct vt_burst b = {0};
	struct vdemux_engine_stats s0 = vt_stats(fx), s1;

	vt_burst_add(fx, &b, a->id, 800);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	s1 = vt_stats(fx);
	assert_int_equal(s1.drops[VDEMUX_DROP_NO_BUFFER], s0.drops[VDEMUX_DROP_NO_BUFFER] + 1);
	assert_int_equal(vt_vm_stats(fx, a).drops[VDEMUX_DROP_NO_BUFFER], 1);
	assert_int_equal(s1.pages_free, s0.pages_free);
	assert_int_equal(vt_guest_take(fx, a, NULL, 0), 0);
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_frame_for_unknown_vm_is_dropped_as_unknown_vm(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_burst b = {0};

	vt_burst_add(fx, &b, 0x00abcdef, 300);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_UNKNOWN_VM], 1);
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_broadcast_gives_each_vm_its_own_page(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *v[3];
	struct vt_burst b = {0};
	struct vt_rx rx[3];

	for (int i = 0; i < 3; i++)
		v[i] = vt_vm_posted(fx, 2, VDEMUX_VM_F_UNPOPULATED);
	vt_burst_add(fx, &b, 0, 2500);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(vt_stats(fx).delivered, 3);
	assert_int_equal(vt_stats(fx).pages_assigned, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(vt_guest_take(fx, v[i], &rx[i], 1), 1);
		assert_int_equal(rx[i].seq, b.seq[0]);
	}
	vt_check(fx); /* three distinct pages */
	vt_burst_free(&b);
}

static void test_poll_returns_at_most_n_oldest_first(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *a = vt_vm_posted(fx, 5, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vdemux_completion c[5];
	uint64_t seen[5];

	for (int i = 0; i < 5; i++)
		vt_burst_add(fx, &b, a->id, 100 + (uint32_t)i);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 5), 5);
	assert_int_equal(vt_vm_stats(fx, a).pending, 5);
	assert_int_equal(vdemux_vm_poll(fx->eng, a->id, c, 2), 2);
	assert_int_equal(vt_vm_stats(fx, a).pending, 3);
	assert_int_equal(vdemux_vm_poll(fx->eng, a->id, c + 2, 5), 3);
	assert_int_equal(vdemux_vm_poll(fx->eng, a->id, c, 5), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(c[i].len, 100 + i);
		seen[i] = c[i].gpa;
		for (int j = 0; j < i; j++)
			assert_int_not_equal(seen[j], seen[i]);
	}
	vt_burst_free(&b);
}

static void test_burst_stops_where_the_pool_runs_out(void **state)
{
	struct vt_fx *fx = fx_with(state, 4, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *a = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vdemux_engine_stats s;
	struct vt_rx rx[8];

	for (int i = 0; i < 6; i++)
		vt_burst_add(fx, &b, a->id, 1000);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 6), 4);
	s = vt_stats(fx);
	assert_int_equal(s.rx_frames, 4);
	assert_int_equal(s.delivered, 4);
	assert_int_equal(s.pages_free, 0);
	assert_int_equal(vt_guest_take(fx, a, rx, 8), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(rx[i].seq, b.seq[i]); /* frames[0, ret) were taken, in order */
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_burst_on_an_empty_pool_is_enobufs_and_only_asks_for_pages(void **state)
{
	struct vt_fx *fx = fx_with(state, 2, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 2);
	struct vt_vm *a = vt_vm_add(fx, &o); /* holds both pages */
	struct vt_burst b = {0};
	struct vt_snap *before;

	vt_burst_add(fx, &b, a->id, 100);
	before = vt_snap_take(fx);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), -ENOBUFS);
	/* The one change: VMs holding pages are asked to release some. */
	assert_true(vdemux_vm_take_signals(fx->eng, a->id) & VDEMUX_SIG_RELEASE);
	before->es.signals++;
	before->es.release_requests++;
	before->vs[0].signals++;
	vt_snap_expect_same(fx, before, -1);
	vt_check(fx);
	free(before);
	vt_burst_free(&b);
}

static void test_broadcast_replicas_beyond_the_pool_are_dropped_as_no_pool(void **state)
{
	struct vt_fx *fx = fx_with(state, 2, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *v[3];
	struct vt_burst b = {0};
	struct vdemux_engine_stats s;
	unsigned got = 0;

	for (int i = 0; i < 3; i++)
		v[i] = vt_vm_posted(fx, 1, VDEMUX_VM_F_UNPOPULATED);
	vt_burst_add(fx, &b, 0, 1000); /* three replicas, two pages */
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	vt_check(fx);
	s = vt_stats(fx);
	assert_int_equal(s.delivered, 2);
	assert_int_equal(s.drops[VDEMUX_DROP_NO_POOL], 1);
	for (int i = 0; i < 3; i++)
		got += vt_guest_take(fx, v[i], NULL, 1);
	assert_int_equal(got, 2);
	vt_burst_free(&b);
}

static void test_default_max_frame_is_64k(void **state)
{
	struct vt_fx *fx = fx_with(state, 40, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *a = vt_vm_posted(fx, 17, VDEMUX_VM_F_UNPOPULATED);
	uint8_t *big = malloc(65537);
	struct vdemux_frame f = {.data = big, .len = 65537};
	uint8_t dst[6];

	assert_non_null(big);
	vt_mac(a->id, dst);
	vt_frame_fill(big, 65537, dst, 1);
	assert_int_equal(vdemux_rx_burst(fx->eng, &f, 1), -EMSGSIZE);
	f.len = 65536;
	vt_frame_fill(big, 65536, dst, 2);
	assert_int_equal(vdemux_rx_burst(fx->eng, &f, 1), 1);
	assert_int_equal(vt_guest_take(fx, a, NULL, 1), 1);
	vt_check(fx);
	free(big);
}

/* ---- jumbo frames ---- */

static void test_jumbo_frame_spans_pages_and_buffers_as_one_chain(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_DEFAULT, 0);
	struct vt_vm *a = vt_vm_posted(fx, 4, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vdemux_completion c[4];
	struct vdemux_engine_stats s;

	vt_burst_add(fx, &b, a->id, 9000);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	vt_check(fx);
	s = vt_stats(fx);
	assert_int_equal(s.delivered, 1);
	assert_int_equal(s.flips, 3);
	assert_int_equal(s.completions, 3);
	assert_int_equal(vt_vm_stats(fx, a).pending, 3);
	assert_int_equal(vdemux_vm_poll(fx->eng, a->id, c, 1), 1);
	assert_int_equal(c[0].len, 4096);
	assert_int_equal(c[0].flags, VDEMUX_CPL_MORE);
	{
		uint8_t page[VDEMUX_PAGE_SIZE];

		assert_int_equal(vt_guest_read_page(fx, 0, a, c[0].gpa, page), 0);
		assert_int_equal(memcmp(page, b.f[0].data, 4096), 0);
	}
	assert_int_equal(vdemux_vm_poll(fx->eng, a->id, c + 1, 3), 2);
	assert_int_equal(c[1].len, 4096);
	assert_int_equal(c[1].flags, VDEMUX_CPL_MORE);
	assert_int_equal(c[2].len, 9000 - 8192);
	assert_int_equal(c[2].flags, 0);
	for (int i = 1; i < 3; i++) {
		uint8_t page[VDEMUX_PAGE_SIZE];

		assert_int_equal(vt_guest_read_page(fx, 0, a, c[i].gpa, page), 0);
		assert_int_equal(memcmp(page, (const uint8_t *)b.f[0].data + 4096 * i, c[i].len), 0);
		assert_true(vt_all_zero(page + c[i].len, VDEMUX_PAGE_SIZE - c[i].len));
	}
	assert_int_equal(vt_vm_stats(fx, a).delivered, 1);
	vt_burst_free(&b);
}

static void test_64k_frame_is_delivered_as_16_pages(void **state)
{
	struct vt_fx *fx = fx_with(state, 40, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_DEFAULT, 0);
	struct vt_vm *a = vt_vm_posted(fx, 20, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vt_rx rx;

	vt_burst_add(fx, &b, a->id, 65536);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	vt_check(fx);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1);
	assert_int_equal(rx.ncpl, 16);
	assert_int_equal(rx.len, 65536);
	assert_int_equal(vt_stats(fx).flips, 16);
	vt_burst_free(&b);
}

static void test_max_frame_64k_plus_4_takes_17_pages(void **state)
{
	struct vt_fx_opts o = {0};
	struct vt_fx *fx;
	struct vt_vm *a;
	struct vt_burst b = {0};
	struct vt_rx rx;

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 40, .max_frame = 65540);
	fx = vt_fx_state(state, &o);
	a = vt_vm_posted(fx, 20, VDEMUX_VM_F_UNPOPULATED);
	vt_burst_add(fx, &b, a->id, 65540);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1);
	assert_int_equal(rx.ncpl, 17);
	assert_int_equal(rx.cpl_len[16], 4);
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_jumbo_without_enough_buffers_is_dropped_and_keeps_them_posted(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_DEFAULT, 0);
	struct vt_vm *a = vt_vm_posted(fx, 2, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vdemux_engine_stats s;
	struct vt_rx rx[2];

	vt_burst_add(fx, &b, a->id, 9000); /* needs 3 buffers, has 2 */
	vt_burst_add(fx, &b, a->id, 5000); /* fits in the same 2 */
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 2), 2);
	vt_check(fx);
	s = vt_stats(fx);
	assert_int_equal(s.drops[VDEMUX_DROP_NO_BUFFER], 1);
	assert_int_equal(s.delivered, 1);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 1);
	assert_int_equal(rx[0].seq, b.seq[1]);
	assert_int_equal(rx[0].ncpl, 2);
	vt_burst_free(&b);
}

static void test_broadcast_jumbo_reaches_every_vm_whole(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_DEFAULT, 0);
	struct vt_vm *v[2];
	struct vt_burst b = {0};
	struct vt_rx rx;

	v[0] = vt_vm_posted(fx, 4, VDEMUX_VM_F_UNPOPULATED);
	v[1] = vt_vm_posted(fx, 4, VDEMUX_VM_F_UNPOPULATED);
	vt_burst_add(fx, &b, 0, 12000);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	vt_check(fx);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(vt_guest_take(fx, v[i], &rx, 1), 1);
		assert_int_equal(rx.ncpl, 3);
		assert_int_equal(rx.len, 12000);
	}
	vt_burst_free(&b);
}

/* ---- zero-copy ---- */

static void write_frame(struct vdemux_rx_buf *bufs, unsigned nbufs, uint32_t len, vdemux_vm_id to,
			uint32_t seq)
{
	uint8_t dst[6];
	uint8_t *tmp = malloc(len);

	assert_non_null(tmp);
	if (to)
		vt_mac(to, dst);
	else
		memcpy(dst, vt_bcast, 6);
	vt_frame_fill(tmp, len, dst, seq);
	for (unsigned i = 0; i < nbufs; i++) {
		uint32_t off = i * VDEMUX_PAGE_SIZE;
		uint32_t n = len - off > VDEMUX_PAGE_SIZE ? VDEMUX_PAGE_SIZE : len - off;

		memcpy(bufs[i].data, tmp + off, n);
		bufs[i].len = n;
		bufs[i].flags = i + 1 < nbufs ? VDEMUX_RXBUF_MORE : 0;
	}
	free(tmp);
}

static void test_alloc_lends_free_pages_as_filling(void **state)
{
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = 8);
	vdemux_arena *ar = NULL;
	struct vt_fx_opts o = {0};
	struct vt_fx *fx;
	struct vdemux_rx_buf bufs[8];
	struct vdemux_arena_info ai;
	struct vdemux_engine_stats s;
	int n;

	assert_int_equal(vdemux_arena_create(&ar, &ao), 0);
	assert_int_equal(vdemux_arena_info(ar, &ai), 0);
	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .arena = ar);
	fx = vt_fx_state(state, &o);
	n = vdemux_rx_alloc(fx->eng, bufs, 5);
	assert_int_equal(n, 5);
	s = vt_stats(fx);
	assert_int_equal(s.pages_filling, 5);
	assert_int_equal(s.pages_free, 3);
	for (int i = 0; i < 5; i++) {
		assert_ptr_equal(bufs[i].data, ai.base + bufs[i].arena_off);
		assert_int_equal(bufs[i].arena_off % VDEMUX_PAGE_SIZE, 0);
		assert_true(vt_all_zero(bufs[i].data, VDEMUX_PAGE_SIZE));
		for (int j = 0; j < i; j++) {
			assert_int_not_equal(bufs[i].id, bufs[j].id);
			assert_int_not_equal(bufs[i].arena_off, bufs[j].arena_off);
		}
	}
	vt_check(fx);
	/* only what is left */
	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs + 5, 8), 3);
	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs, 1), 0); /* empty pool */
	vt_check(fx);
	assert_int_equal(vdemux_rx_abort(fx->eng, bufs, 8), 8);
	assert_int_equal(vt_stats(fx).pages_free, 8);
	vt_fx_free(fx);
	*state = NULL;
	vdemux_arena_destroy(ar);
}

static void test_submit_maps_the_very_page_the_device_wrote(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *a = vt_vm_posted(fx, 2, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_rx_buf buf;
	struct vt_rx rx;
	struct vdemux_engine_stats s;

	assert_int_equal(vdemux_rx_alloc(fx->eng, &buf, 1), 1);
	write_frame(&buf, 1, 1400, a->id, 4242);
	assert_int_equal(vdemux_rx_submit(fx->eng, &buf, 1), 1);
	vt_check(fx);
	s = vt_stats(fx);
	assert_int_equal(s.pages_filling, 0);
	assert_int_equal(s.rx_frames, 1);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1);
	assert_int_equal(rx.seq, 4242);
	/* zero-copy: the page mapped in the guest is the lent page itself */
	assert_int_equal((uint64_t)vt_page_at(fx, a, rx.gpa[0]) * VDEMUX_PAGE_SIZE, buf.arena_off);
}

static void test_submit_clears_bytes_past_len_before_the_guest_sees_them(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *a = vt_vm_posted(fx, 2, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_rx_buf buf;

	assert_int_equal(vdemux_rx_alloc(fx->eng, &buf, 1), 1);
	memset(buf.data, 0xdd, VDEMUX_PAGE_SIZE); /* a device that wrote past the frame */
	write_frame(&buf, 1, 200, a->id, 77);
	assert_int_equal(vdemux_rx_submit(fx->eng, &buf, 1), 1);
	assert_int_equal(vt_guest_take(fx, a, NULL, 1), 1); /* asserts zero after the 200 bytes */
	vt_check(fx);
}

static void test_submit_chain_delivers_a_jumbo_frame(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *a = vt_vm_posted(fx, 4, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_rx_buf bufs[3];
	struct vt_rx rx;

	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs, 3), 3);
	memset(bufs[2].data, 0x11, VDEMUX_PAGE_SIZE);
	write_frame(bufs, 3, 9001, a->id, 31337);
	assert_int_equal(vdemux_rx_submit(fx->eng, bufs, 3), 3);
	vt_check(fx);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1);
	assert_int_equal(rx.seq, 31337);
	assert_int_equal(rx.len, 9001);
	assert_int_equal(rx.ncpl, 3);
}

/* A frame of max_frame bytes that starts at the last byte of its first
 * page spans one page more than max_frame / page size: the first buffer
 * holds 1 byte, then full pages, then the rest. */
static void submit_longest_chain_at_an_offset(void **state, uint32_t max_frame)
{
	struct vt_fx_opts o = {0};
	struct vt_fx *fx;
	struct vt_vm *a;
	struct vdemux_rx_buf bufs[18];
	uint32_t nbufs = (VDEMUX_PAGE_SIZE - 1 + max_frame + VDEMUX_PAGE_SIZE - 1) / VDEMUX_PAGE_SIZE;
	uint8_t *tmp = malloc(max_frame), dst[6];
	uint32_t done = 0;
	struct vt_rx rx;

	assert_non_null(tmp);
	assert_true(nbufs <= 18);
	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64, .max_frame = max_frame);
	fx = vt_fx_state(state, &o);
	a = vt_vm_posted(fx, 20, VDEMUX_VM_F_UNPOPULATED);
	vt_mac(a->id, dst);
	vt_frame_fill(tmp, max_frame, dst, 6553);
	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs, nbufs), (int)nbufs);
	for (uint32_t i = 0; i < nbufs; i++) {
		uint32_t off = i ? 0 : VDEMUX_PAGE_SIZE - 1;
		uint32_t n = max_frame - done < VDEMUX_PAGE_SIZE - off ? max_frame - done
								       : VDEMUX_PAGE_SIZE - off;

		memcpy(bufs[i].data + off, tmp + done, n);
		bufs[i].off = off;
		bufs[i].len = n;
		bufs[i].flags = i + 1 < nbufs ? VDEMUX_RXBUF_MORE : 0;
		done += n;
	}
	assert_int_equal(done, max_frame);
	assert_int_equal(vdemux_rx_submit(fx->eng, bufs, nbufs), (int)nbufs);
	vt_check(fx);
	assert_int_equal(vt_stats(fx).pages_filling, 0);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1);
	assert_int_equal(rx.seq, 6553);
	assert_int_equal(rx.len, max_frame);
	vt_check(fx);
	free(tmp);
}

static void test_submit_of_a_64k_frame_at_an_offset_spans_17_buffers(void **state)
{
	submit_longest_chain_at_an_offset(state, 65536);
}

static void test_submit_of_the_longest_frame_at_an_offset_spans_18_buffers(void **state)
{
	submit_longest_chain_at_an_offset(state, 65540);
}

static void test_submit_of_several_frames_delivers_each(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *a = vt_vm_posted(fx, 4, VDEMUX_VM_F_UNPOPULATED);
	struct vt_vm *c = vt_vm_posted(fx, 4, VDEMUX_VM_F_UNPOPULATED);
	struct vdemux_rx_buf bufs[4];
	struct vt_rx rx[4];

	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs, 4), 4);
	write_frame(bufs, 1, 100, a->id, 1);
	write_frame(bufs + 1, 2, 5000, c->id, 2);
	write_frame(bufs + 3, 1, 70, a->id, 3);
	assert_int_equal(vdemux_rx_submit(fx->eng, bufs, 4), 4);
	vt_check(fx);
	assert_int_equal(vt_guest_take(fx, a, rx, 4), 2);
	assert_int_equal(rx[0].seq, 1);
	assert_int_equal(rx[1].seq, 3);
	assert_int_equal(vt_guest_take(fx, c, rx, 4), 1);
	assert_int_equal(rx[0].seq, 2);
	assert_int_equal(vt_stats(fx).rx_frames, 3);
}

static void test_zero_copy_frame_to_nobody_returns_its_pages_cleared(void **state)
{
	struct vt_fx *fx = fx_with(state, 4, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vdemux_rx_buf bufs[2];

	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs, 2), 2);
	memset(bufs[1].data, 0x66, VDEMUX_PAGE_SIZE);
	write_frame(bufs, 2, 6000, 0x00ffff01, 5); /* an unknown VM */
	assert_int_equal(vdemux_rx_submit(fx->eng, bufs, 2), 2);
	assert_int_equal(vt_stats(fx).pages_free, 4);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_UNKNOWN_VM], 1);
	vt_check(fx);
}

static void test_abort_returns_lent_pages_cleared(void **state)
{
	struct vt_fx *fx = fx_with(state, 4, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vdemux_rx_buf bufs[3];

	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs, 3), 3);
	for (int i = 0; i < 3; i++)
		memset(bufs[i].data, 0x5c, VDEMUX_PAGE_SIZE);
	assert_int_equal(vdemux_rx_abort(fx->eng, bufs, 3), 3);
	assert_int_equal(vt_stats(fx).pages_free, 4);
	assert_int_equal(vt_stats(fx).pages_filling, 0);
	assert_int_equal(vt_stats(fx).rx_frames, 0);
	vt_check(fx); /* FREE pages are zero */
}

static void test_lent_pages_survive_engine_destroy_without_leak(void **state)
{
	struct vt_fx *fx = fx_with(state, 4, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vdemux_rx_buf bufs[2];

	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs, 2), 2);
	vt_check(fx);
	/* teardown destroys the engine with two pages still lent */
}

/* ---- copy versus flip ---- */

static uint32_t slot_page(struct vt_fx *fx, struct vt_vm *a, uint32_t i)
{
	return vt_page_at(fx, a, vt_gpa(a, i));
}

static void test_threshold_copies_up_to_it_and_flips_above(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_LAZY, VDEMUX_COPY_THRESHOLD, 300);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 2);
	struct vt_vm *a = vt_vm_add(fx, &o);
	uint32_t p0, p1;
	struct vt_burst b = {0};
	struct vt_rx rx[2];
	struct vdemux_engine_stats s0, s1;

	vt_post_range(fx, a, 0, 2);
	p0 = slot_page(fx, a, 0);
	p1 = slot_page(fx, a, 1);
	vt_burst_add(fx, &b, a->id, 300); /* at the threshold: copied */
	vt_burst_add(fx, &b, a->id, 301); /* above: flipped */
	s0 = vt_stats(fx);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 2), 2);
	s1 = vt_stats(fx);
	vt_check(fx);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 2);
	assert_true(rx[0].copied);
	assert_false(rx[1].copied);
	assert_int_equal(s1.copies, s0.copies + 1);
	assert_int_equal(s1.flips, s0.flips + 1);
	/* the copy left the VM's page in place; the flip replaced it */
	if (rx[0].gpa[0] == vt_gpa(a, 0)) {
		assert_int_equal(slot_page(fx, a, 0), p0);
		assert_int_not_equal(slot_page(fx, a, 1), p1);
	} else {
		assert_int_equal(slot_page(fx, a, 1), p1);
		assert_int_not_equal(slot_page(fx, a, 0), p0);
	}
	/* the copied frame's pool page went back; the flip swapped one for one */
	assert_int_equal(s1.pages_free, s0.pages_free);
	assert_int_equal(vt_vm_stats(fx, a).copies, 1);
	vt_burst_free(&b);
}

static void test_copy_never_flips_even_tiny_frames(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_LAZY, VDEMUX_COPY_NEVER, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 1);
	struct vt_vm *a = vt_vm_add(fx, &o);
	struct vt_burst b = {0};
	struct vt_rx rx;
	uint32_t p0;

	vt_post_range(fx, a, 0, 1);
	p0 = slot_page(fx, a, 0);
	vt_burst_add(fx, &b, a->id, 60);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1);
	assert_false(rx.copied);
	assert_int_not_equal(slot_page(fx, a, 0), p0);
	assert_int_equal(vt_stats(fx).copies, 0);
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_copy_always_copies_large_frames_into_mapped_buffers(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_LAZY, VDEMUX_COPY_ALWAYS, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 1);
	struct vt_vm *a = vt_vm_add(fx, &o);
	struct vt_burst b = {0};
	struct vt_rx rx;
	uint32_t p0;
	struct vdemux_engine_stats s0;

	vt_post_range(fx, a, 0, 1);
	p0 = slot_page(fx, a, 0);
	s0 = vt_stats(fx);
	vt_burst_add(fx, &b, a->id, 4000);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1);
	assert_true(rx.copied);
	assert_int_equal(slot_page(fx, a, 0), p0);
	assert_int_equal(vt_stats(fx).pages_free, s0.pages_free);
	assert_int_equal(vt_stats(fx).harvests, s0.harvests);
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_copy_always_flips_into_a_hole(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_ALWAYS, 0);
	struct vt_vm *a = vt_vm_posted(fx, 1, 0); /* eager: the posted buffer is a hole */
	struct vt_burst b = {0};
	struct vt_rx rx;

	vt_burst_add(fx, &b, a->id, 64);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1);
	assert_false(rx.copied);
	assert_int_equal(vt_stats(fx).flips, 1);
	vt_check(fx);
	vt_burst_free(&b);
}

/* DEFAULT is ADAPTIVE, which copies every frame from the caller's memory
 * into a buffer that is still mapped, whatever the backend's figure. */
static void test_default_policy_copies_frames_from_the_callers_memory(void **state)
{
	struct vt_fx_opts fo = {.sim_copy_threshold = 512};
	struct vt_fx *fx;
	struct vt_vm *a;
	struct vt_burst b = {0};
	struct vt_rx rx[3];

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 32, .harvest = VDEMUX_HARVEST_LAZY);
	fx = vt_fx_state(state, &fo);
	{
		struct vdemux_vm_opts o = vt_vm_opts(fx, 4);

		a = vt_vm_add(fx, &o);
	}
	vt_post_range(fx, a, 0, 4);
	vt_burst_add(fx, &b, a->id, 512);
	vt_burst_add(fx, &b, a->id, 513);
	vt_burst_add(fx, &b, a->id, 5000);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 3), 3);
	assert_int_equal(vt_guest_take(fx, a, rx, 3), 3);
	for (int i = 0; i < 3; i++)
		assert_true(rx[i].copied);
	assert_int_equal(vt_stats(fx).flips, 0);
	vt_check(fx);
	vt_burst_free(&b);
}

/* DEFAULT with a threshold in the engine's options is THRESHOLD with it. */
static void test_default_policy_with_an_engine_threshold_uses_it(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_LAZY, VDEMUX_COPY_DEFAULT, 512);
	struct vt_vm *a = vt_vm_posted(fx, 2, 0);
	struct vt_burst b = {0};
	struct vt_rx rx[2];

	vt_burst_add(fx, &b, a->id, 512);
	vt_burst_add(fx, &b, a->id, 513);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 2), 2);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 2);
	assert_true(rx[0].copied);
	assert_false(rx[1].copied);
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_vm_copy_policy_overrides_the_engine(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_LAZY, VDEMUX_COPY_NEVER, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 2);
	struct vt_vm *a, *c;
	struct vt_burst b = {0};
	struct vt_rx rx;

	o.copy = VDEMUX_COPY_THRESHOLD;
	o.copy_threshold = 1000;
	a = vt_vm_add(fx, &o);
	o = vt_vm_opts(fx, 2);
	c = vt_vm_add(fx, &o);
	vt_post_range(fx, a, 0, 2);
	vt_post_range(fx, c, 0, 2);
	vt_burst_add(fx, &b, a->id, 900);
	vt_burst_add(fx, &b, c->id, 900);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 2), 2);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1);
	assert_true(rx.copied);
	assert_int_equal(vt_guest_take(fx, c, &rx, 1), 1);
	assert_false(rx.copied);
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_flips_of_a_burst_are_mapped_in_one_batch_per_vm(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *a = vt_vm_posted(fx, 8, VDEMUX_VM_F_UNPOPULATED);
	struct vt_burst b = {0};
	struct vdemux_sim_stats s0, s1;

	for (int i = 0; i < 8; i++)
		vt_burst_add(fx, &b, a->id, 1500);
	s0 = sim_stats(fx, 0);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 8), 8);
	s1 = sim_stats(fx, 0);
	assert_int_equal(s1.maps - s0.maps, 8);
	assert_int_equal(s1.invalidations - s0.invalidations, 1);
	assert_int_equal(vt_guest_take(fx, a, NULL, 8), 8);
	vt_check(fx);
	vt_burst_free(&b);
}

/* ---- classifier verdicts: VLAN edits per destination, errors ---- */

/* A classifier that answers a fixed list of destinations. */
struct script_cls {
	struct vdemux_classifier base;
	struct vdemux_dest dests[4];
	unsigned n;
	int ret;
	int drop; /* drop reason when n == 0; 0: NO_DEST */
};

static int script_classify(struct vdemux_classifier *c, const uint8_t *frame, uint32_t len,
			   struct vdemux_verdict *v)
{
	struct script_cls *k = (struct script_cls *)c;

	(void)frame;
	(void)len;
	v->n = 0;
	v->drop_reason = k->drop ? k->drop : VDEMUX_DROP_NO_DEST;
	if (k->ret)
		return k->ret;
	for (unsigned i = 0; i < k->n && i < v->cap; i++)
		v->dests[v->n++] = k->dests[i];
	return 0;
}

/* The engine borrows a classifier until the engine is destroyed (in the
 * teardown): it must not live on a test's stack. */
static struct script_cls script;

static struct script_cls *script_reset(void)
{
	memset(&script, 0, sizeof(script));
	return &script;
}

static void script_install(struct vt_fx *fx, struct script_cls *k)
{
	struct vdemux_classifier init = VDEMUX_CLASSIFIER_INIT;

	k->base = init;
	k->base.classify = script_classify;
	assert_int_equal(vdemux_engine_set_classifier(fx->eng, &k->base), 0);
}

static struct vdemux_dest dest(vdemux_vm_id vm, uint8_t action, uint16_t tpid, uint16_t tci)
{
	struct vdemux_dest d;

	memset(&d, 0, sizeof(d));
	d.vm = vm;
	d.action = action;
	d.tpid = tpid;
	d.tci = tci;
	return d;
}

/* A frame tagged VLAN 5 at offset 12, pattern bytes after. */
static uint8_t *tagged_frame(uint32_t len)
{
	uint8_t *f = malloc(len);

	assert_non_null(f);
	vt_frame_fill(f, len, vt_bcast, 4711);
	f[12] = 0x81;
	f[13] = 0x00;
	f[14] = 0x00;
	f[15] = 0x05;
	return f;
}

/* What a VM should receive for @action applied to @in. */
static uint32_t edited(const uint8_t *in, uint32_t len, uint8_t action, uint16_t tpid, uint16_t tci,
		       uint8_t *out)
{
	uint8_t tag[4] = {(uint8_t)(tpid >> 8), (uint8_t)tpid, (uint8_t)(tci >> 8), (uint8_t)tci};

	memcpy(out, in, 12);
	switch (action) {
	case VDEMUX_VLAN_STRIP: memcpy(out + 12, in + 16, len - 16); return len - 4;
	case VDEMUX_VLAN_PUSH:
		memcpy(out + 12, tag, 4);
		memcpy(out + 16, in + 12, len - 12);
		return len + 4;
	case VDEMUX_VLAN_SET:
		memcpy(out + 12, tag, 4);
		memcpy(out + 16, in + 16, len - 16);
		return len;
	default: memcpy(out, in, len); return len;
	}
}

/* Poll one frame of @vm (a chain) and compare it with @want. */
static void expect_bytes(struct vt_fx *fx, struct vt_vm *vm, const uint8_t *want, uint32_t want_len)
{
	struct vdemux_completion c[20];
	uint8_t page[VDEMUX_PAGE_SIZE];
	uint32_t off = 0;
	int n = vdemux_vm_poll(fx->eng, vm->id, c, 20);

	assert_true(n >= 1);
	for (int i = 0; i < n; i++) {
		assert_int_equal(!!(c[i].flags & VDEMUX_CPL_MORE), i + 1 < n);
		assert_true(off + c[i].len <= want_len);
		assert_int_equal(vt_guest_read_page(fx, 0, vm, c[i].gpa, page), 0);
		assert_memory_equal(page, want + off, c[i].len);
		if (!(c[i].flags & VDEMUX_CPL_COPIED))
			assert_true(vt_all_zero(page + c[i].len, VDEMUX_PAGE_SIZE - c[i].len));
		off += c[i].len;
	}
	assert_int_equal(off, want_len);
}

static void run_vlan_edits(void **state, enum vdemux_harvest h, enum vdemux_copy_policy cp, uint32_t len)
{
	struct vt_fx *fx = fx_with(state, 64, h, cp, 0);
	struct vt_vm *v[4];
	struct script_cls *k = script_reset();
	uint8_t *in = tagged_frame(len), *want = malloc(len + 4);
	struct vdemux_frame f = {.data = in, .len = len};
	static const uint8_t actions[4] = {VDEMUX_VLAN_KEEP, VDEMUX_VLAN_STRIP, VDEMUX_VLAN_PUSH,
					   VDEMUX_VLAN_SET};

	assert_non_null(want);
	for (int i = 0; i < 4; i++) {
		struct vdemux_vm_opts o = vt_vm_opts(fx, 4);

		v[i] = vt_vm_add(fx, &o);
		vt_post_range(fx, v[i], 0, 4);
		k->dests[i] = dest(v[i]->id, actions[i], VDEMUX_TPID_8021AD,
				   (uint16_t)(0x3000 | (uint16_t)i));
	}
	k->n = 4;
	script_install(fx, k);
	assert_int_equal(vdemux_rx_burst(fx->eng, &f, 1), 1);
	vt_check(fx);
	assert_int_equal(vt_stats(fx).delivered, 4);
	for (int i = 0; i < 4; i++) {
		uint32_t wl = edited(in, len, actions[i], VDEMUX_TPID_8021AD,
				     (uint16_t)(0x3000 | (uint16_t)i), want);

		expect_bytes(fx, v[i], want, wl);
		assert_int_equal(vt_vm_stats(fx, v[i]).bytes, wl);
	}
	free(in);
	free(want);
}

static void test_vlan_keep_strip_push_set_per_destination_flipped(void **state)
{
	run_vlan_edits(state, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 1000);
}

static void test_vlan_keep_strip_push_set_per_destination_copied(void **state)
{
	run_vlan_edits(state, VDEMUX_HARVEST_LAZY, VDEMUX_COPY_ALWAYS, 1000);
}

static void test_vlan_edits_across_page_boundaries_of_a_jumbo(void **state)
{
	/* 8190 B: the push makes 8194 B, one more page; the strip 8186 B */
	run_vlan_edits(state, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 8190);
}

static void test_vlan_edits_of_a_frame_ending_on_a_page_boundary(void **state)
{
	run_vlan_edits(state, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 4096);
}

static void test_vlan_edits_on_zero_copy_pages(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vt_vm *v[2];
	struct script_cls *k = script_reset();
	uint8_t *in = tagged_frame(6000), *want = malloc(6004);
	struct vdemux_rx_buf bufs[2];

	assert_non_null(want);
	for (int i = 0; i < 2; i++) {
		struct vdemux_vm_opts o = vt_vm_opts(fx, 4);

		v[i] = vt_vm_add(fx, &o);
		vt_post_range(fx, v[i], 0, 4);
	}
	k->dests[0] = dest(v[0]->id, VDEMUX_VLAN_STRIP, 0, 0);
	k->dests[1] = dest(v[1]->id, VDEMUX_VLAN_PUSH, VDEMUX_TPID_8021Q, 7);
	k->n = 2;
	script_install(fx, k);
	assert_int_equal(vdemux_rx_alloc(fx->eng, bufs, 2), 2);
	memcpy(bufs[0].data, in, 4096);
	memcpy(bufs[1].data, in + 4096, 6000 - 4096);
	bufs[0].len = 4096;
	bufs[0].flags = VDEMUX_RXBUF_MORE;
	bufs[1].len = 6000 - 4096;
	bufs[1].flags = 0;
	assert_int_equal(vdemux_rx_submit(fx->eng, bufs, 2), 2);
	vt_check(fx);
	expect_bytes(fx, v[0], want, edited(in, 6000, VDEMUX_VLAN_STRIP, 0, 0, want));
	expect_bytes(fx, v[1], want, edited(in, 6000, VDEMUX_VLAN_PUSH, VDEMUX_TPID_8021Q, 7, want));
	free(in);
	free(want);
}

static void test_vlan_strip_of_a_frame_too_short_for_a_tag_is_malformed(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 2);
	struct vt_vm *a = vt_vm_add(fx, &o);
	struct script_cls *k = script_reset();
	uint8_t *in = tagged_frame(17);
	struct vdemux_frame f = {.data = in, .len = 17};

	vt_post_range(fx, a, 0, 2);
	k->dests[0] = dest(a->id, VDEMUX_VLAN_STRIP, 0, 0);
	k->n = 1;
	script_install(fx, k);
	assert_int_equal(vdemux_rx_burst(fx->eng, &f, 1), 1);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_MALFORMED], 1);
	assert_int_equal(vt_stats(fx).delivered, 0);
	vt_check(fx);
	free(in);
}

static void test_classifier_error_drops_the_frame_as_no_dest(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 2);
	struct vt_vm *a = vt_vm_add(fx, &o);
	struct script_cls *k = script_reset();
	struct vt_burst b = {0};

	vt_post_range(fx, a, 0, 2);
	k->dests[0] = dest(a->id, VDEMUX_VLAN_KEEP, 0, 0);
	k->n = 1;
	k->ret = -ENOMEM;
	script_install(fx, k);
	vt_burst_add(fx, &b, a->id, 500);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_NO_DEST], 1);
	assert_int_equal(vt_stats(fx).delivered, 0);
	assert_int_equal(vt_vm_stats(fx, a).posted, 2);
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_classifier_drop_reason_is_counted(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER, 0);
	struct script_cls *k = script_reset();
	struct vt_burst b = {0};

	k->drop = VDEMUX_DROP_NO_SUBSCRIBER;
	script_install(fx, k);
	vt_burst_add(fx, &b, 0, 300);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_NO_SUBSCRIBER], 1);
	assert_int_equal(vt_stats(fx).pages_free, 16);
	vt_check(fx);
	vt_burst_free(&b);
}

#define T(f) cmocka_unit_test_setup_teardown(f, vt_setup, vt_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_burst_delivers_each_frame_into_a_posted_buffer),
		T(test_burst_accepts_the_shortest_and_longest_frames),
		T(test_frame_without_destination_is_dropped_and_its_page_cleared),
		T(test_frame_for_vm_without_posted_buffer_is_dropped_as_no_buffer),
		T(test_frame_for_unknown_vm_is_dropped_as_unknown_vm),
		T(test_broadcast_gives_each_vm_its_own_page),
		T(test_poll_returns_at_most_n_oldest_first),
		T(test_burst_stops_where_the_pool_runs_out),
		T(test_burst_on_an_empty_pool_is_enobufs_and_only_asks_for_pages),
		T(test_broadcast_replicas_beyond_the_pool_are_dropped_as_no_pool),
		T(test_default_max_frame_is_64k),
		T(test_jumbo_frame_spans_pages_and_buffers_as_one_chain),
		T(test_64k_frame_is_delivered_as_16_pages),
		T(test_max_frame_64k_plus_4_takes_17_pages),
		T(test_jumbo_without_enough_buffers_is_dropped_and_keeps_them_posted),
		T(test_broadcast_jumbo_reaches_every_vm_whole),
		T(test_alloc_lends_free_pages_as_filling),
		T(test_submit_maps_the_very_page_the_device_wrote),
		T(test_submit_clears_bytes_past_len_before_the_guest_sees_them),
		T(test_submit_chain_delivers_a_jumbo_frame),
		T(test_submit_of_a_64k_frame_at_an_offset_spans_17_buffers),
		T(test_submit_of_the_longest_frame_at_an_offset_spans_18_buffers),
		T(test_submit_of_several_frames_delivers_each),
		T(test_zero_copy_frame_to_nobody_returns_its_pages_cleared),
		T(test_abort_returns_lent_pages_cleared),
		T(test_lent_pages_survive_engine_destroy_without_leak),
		T(test_threshold_copies_up_to_it_and_flips_above),
		T(test_copy_never_flips_even_tiny_frames),
		T(test_copy_always_copies_large_frames_into_mapped_buffers),
		T(test_copy_always_flips_into_a_hole),
		T(test_default_policy_copies_frames_from_the_callers_memory),
		T(test_default_policy_with_an_engine_threshold_uses_it),
		T(test_vm_copy_policy_overrides_the_engine),
		T(test_flips_of_a_burst_are_mapped_in_one_batch_per_vm),
		T(test_vlan_keep_strip_push_set_per_destination_flipped),
		T(test_vlan_keep_strip_push_set_per_destination_copied),
		T(test_vlan_edits_across_page_boundaries_of_a_jumbo),
		T(test_vlan_edits_of_a_frame_ending_on_a_page_boundary),
		T(test_vlan_edits_on_zero_copy_pages),
		T(test_vlan_strip_of_a_frame_too_short_for_a_tag_is_malformed),
		T(test_classifier_error_drops_the_frame_as_no_dest),
		T(test_classifier_drop_reason_is_counted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
