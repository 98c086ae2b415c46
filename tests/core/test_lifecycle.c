/* SPDX-License-Identifier: MIT */
/*
 * The whole page-flip lifecycle with several VMs: add, post, receive (copy-in
 * and zero-copy, small, jumbo, broadcast), guests reading every frame back
 * through their tables, release by re-post and by release, release request,
 * removal, more traffic. vt_check() (the engine's check plus an independent
 * walk of every table) runs after every step.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt.h"

struct lc {
	struct vt_fx *fx;
	struct vt_vm *vm[4];
	/* per VM: sequence numbers expected, in order, and GPAs of filled slots */
	uint32_t want[4][16];
	unsigned nwant[4];
	uint64_t filled[4][32];
	unsigned nfilled[4];
};

static void expect_frame(struct lc *l, int v, uint32_t seq)
{
	assert_true(l->nwant[v] < 16);
	l->want[v][l->nwant[v]++] = seq;
}

static void add_frame(struct lc *l, struct vt_burst *b, int v, uint32_t len)
{
	unsigned i = vt_burst_add(l->fx, b, l->vm[v]->id, len);

	expect_frame(l, v, b->seq[i]);
}

static void add_broadcast(struct lc *l, struct vt_burst *b, uint32_t len, const bool *member)
{
	unsigned i = vt_burst_add(l->fx, b, 0, len);

	for (int v = 0; v < 4; v++)
		if (member[v])
			expect_frame(l, v, b->seq[i]);
}

/* Every VM's guest takes its frames: exactly the expected ones, in order. */
static void take_all(struct lc *l)
{
	for (int v = 0; v < 4; v++) {
		struct vt_rx rx[16];
		unsigned n;

		if (l->vm[v]->removed)
			continue;
		n = vt_guest_take(l->fx, l->vm[v], rx, 16);
		if (n != l->nwant[v])
			fail_msg("vm %d: %u frames, expected %u", v, n, l->nwant[v]);
		for (unsigned i = 0; i < n; i++) {
			assert_int_equal(rx[i].seq, l->want[v][i]);
			for (unsigned k = 0; k < rx[i].ncpl; k++) {
				assert_true(l->nfilled[v] < 32);
				l->filled[v][l->nfilled[v]++] = rx[i].gpa[k];
			}
		}
		l->nwant[v] = 0;
		vt_check(l->fx);
	}
}

static void burst(struct lc *l, struct vt_burst *b)
{
	bool got[4];

	for (int v = 0; v < 4; v++)
		got[v] = l->nwant[v] > 0;
	vt_sig_reset(l->fx);
	assert_int_equal(vdemux_rx_burst(l->fx->eng, b->f, b->n), (int)b->n);
	vt_check(l->fx);
	for (int v = 0; v < 4; v++)
		if (!l->vm[v]->removed)
			assert_int_equal(l->vm[v]->sig_calls, got[v] ? 1 : 0);
	vt_burst_free(b);
}

/* The guest writes its own data over every slot it holds. */
static void scribble(struct lc *l, int v, uint8_t byte)
{
	struct vt_vm *vm = l->vm[v];
	uint8_t page[VDEMUX_PAGE_SIZE];

	memset(page, byte, sizeof(page));
	for (uint32_t i = 0; i < vm->rx_pages; i++)
		if (!vt_guest_hole(l->fx, vm, vt_gpa(vm, i)))
			assert_int_equal(vdemux_sim_write(l->fx->sim[vm->be_idx[0]], vm->id,
							  vt_gpa(vm, i), page, sizeof(page)),
					 0);
}

static void repost_filled(struct lc *l, int v)
{
	if (!l->nfilled[v])
		return;
	assert_int_equal(vdemux_vm_post_rx(l->fx->eng, l->vm[v]->id, l->filled[v], l->nfilled[v]),
			 (int)l->nfilled[v]);
	l->nfilled[v] = 0;
	vt_check(l->fx);
}

static void release_filled(struct lc *l, int v)
{
	if (!l->nfilled[v])
		return;
	assert_int_equal(vdemux_vm_release(l->fx->eng, l->vm[v]->id, l->filled[v], l->nfilled[v]),
			 (int)l->nfilled[v]);
	for (unsigned i = 0; i < l->nfilled[v]; i++)
		assert_true(vt_guest_hole(l->fx, l->vm[v], l->filled[v][i]));
	l->nfilled[v] = 0;
	vt_check(l->fx);
}

static void zero_copy_frame(struct lc *l, struct vdemux_rx_buf *bufs, unsigned nbufs, int v, uint32_t len)
{
	uint8_t dst[6];
	uint8_t *tmp = malloc(len);
	uint32_t seq = l->fx->next_seq++;

	assert_non_null(tmp);
	vt_mac(l->vm[v]->id, dst);
	vt_frame_fill(tmp, len, dst, seq);
	for (unsigned i = 0; i < nbufs; i++) {
		uint32_t off = i * VDEMUX_PAGE_SIZE;
		uint32_t n = len - off > VDEMUX_PAGE_SIZE ? VDEMUX_PAGE_SIZE : len - off;

		memset(bufs[i].data, 0xee, VDEMUX_PAGE_SIZE); /* stale device bytes past the frame */
		memcpy(bufs[i].data, tmp + off, n);
		bufs[i].len = n;
		bufs[i].flags = i + 1 < nbufs ? VDEMUX_RXBUF_MORE : 0;
	}
	free(tmp);
	expect_frame(l, v, seq);
}

static void run_lifecycle(const struct vt_fx_opts *fo)
{
	struct lc l;
	struct vt_burst b = {0};
	bool all[4] = {true, true, true, true};
	bool all_but_b[4] = {true, false, true, true};
	struct vdemux_vm_opts o;
	struct vdemux_rx_buf zc[3];
	struct vdemux_engine_stats s0, s1;
	uint64_t drops0 = 0, drops1 = 0;

	memset(&l, 0, sizeof(l));
	l.fx = vt_fx_new(fo);
	vt_check(l.fx);

	/* 1. VMs: eager populated, lazy populated, eager holes, lazy holes */
	o = vt_vm_opts(l.fx, 8);
	o.harvest = VDEMUX_HARVEST_EAGER;
	l.vm[0] = vt_vm_add(l.fx, &o);
	vt_check(l.fx);
	o = vt_vm_opts(l.fx, 8);
	o.harvest = VDEMUX_HARVEST_LAZY;
	l.vm[1] = vt_vm_add(l.fx, &o);
	vt_check(l.fx);
	o = vt_vm_opts(l.fx, 8);
	o.flags = VDEMUX_VM_F_UNPOPULATED;
	l.vm[2] = vt_vm_add(l.fx, &o);
	vt_check(l.fx);
	o = vt_vm_opts(l.fx, 4);
	o.flags = VDEMUX_VM_F_UNPOPULATED;
	o.harvest = VDEMUX_HARVEST_LAZY;
	l.vm[3] = vt_vm_add(l.fx, &o);
	vt_check(l.fx);

	/* the guests use the pages they were given */
	scribble(&l, 0, 0xa0);
	scribble(&l, 1, 0xb0);
	vt_check(l.fx);

	/* 2. post */
	vt_post_range(l.fx, l.vm[0], 0, 6);
	vt_check(l.fx);
	vt_post_range(l.fx, l.vm[1], 0, 6);
	vt_check(l.fx);
	vt_post_range(l.fx, l.vm[2], 0, 8);
	vt_check(l.fx);
	vt_post_range(l.fx, l.vm[3], 0, 4);
	vt_check(l.fx);

	/* 3-5. receive, classify, flip or copy, complete, signal */
	for (int i = 0; i < 3; i++)
		add_frame(&l, &b, 0, 1500);
	add_frame(&l, &b, 1, 1500);
	add_frame(&l, &b, 1, 100);
	add_frame(&l, &b, 1, 1500);
	add_frame(&l, &b, 2, 9000);
	add_frame(&l, &b, 2, 64);
	add_frame(&l, &b, 3, 2000);
	add_broadcast(&l, &b, 300, all);
	burst(&l, &b);
	take_all(&l);

	/* 6. release: re-post (A, C), release (B), re-post (D, lazy) */
	repost_filled(&l, 0);
	release_filled(&l, 1);
	repost_filled(&l, 2);
	repost_filled(&l, 3);

	/* zero-copy: a device writes two frames into lent pages */
	assert_int_equal(vdemux_rx_alloc(l.fx->eng, zc, 3), 3);
	vt_check(l.fx);
	zero_copy_frame(&l, zc, 2, 0, 6000);
	zero_copy_frame(&l, zc + 2, 1, 2, 100);
	vt_sig_reset(l.fx);
	assert_int_equal(vdemux_rx_submit(l.fx->eng, zc, 3), 3);
	vt_check(l.fx);
	assert_int_equal(l.vm[0]->sig_calls, 1);
	assert_int_equal(l.vm[2]->sig_calls, 1);
	take_all(&l);

	/* 7. the engine asks a VM to release */
	vt_sig_reset(l.fx);
	assert_int_equal(vdemux_vm_request_release(l.fx->eng, l.vm[2]->id), 0);
	assert_int_equal(l.vm[2]->sig_reasons, VDEMUX_SIG_RELEASE);
	vt_check(l.fx);
	repost_filled(&l, 2);
	repost_filled(&l, 0);

	/* removal of a VM holding flipped pages */
	add_frame(&l, &b, 1, 3000);
	burst(&l, &b);
	l.nwant[1] = 0; /* B never reads it: removed with it */
	s0 = vt_stats(l.fx);
	vt_vm_remove(l.fx, l.vm[1]);
	vt_check(l.fx);
	s1 = vt_stats(l.fx);
	assert_true(s1.pages_free > s0.pages_free);

	/* a frame for the removed VM reaches nobody */
	vt_burst_add(l.fx, &b, l.vm[1]->id, 500);
	for (int i = 0; i < VDEMUX_DROP__COUNT; i++)
		drops0 += s1.drops[i];
	assert_int_equal(vdemux_rx_burst(l.fx->eng, b.f, 1), 1);
	vt_burst_free(&b);
	s1 = vt_stats(l.fx);
	for (int i = 0; i < VDEMUX_DROP__COUNT; i++)
		drops1 += s1.drops[i];
	assert_int_equal(drops1, drops0 + 1);
	vt_check(l.fx);

	/* more traffic to those left */
	add_frame(&l, &b, 0, 4096);
	add_frame(&l, &b, 2, 8192);
	add_frame(&l, &b, 3, 70);
	add_broadcast(&l, &b, 60, all_but_b);
	burst(&l, &b);
	take_all(&l);
	for (int v = 0; v < 4; v++)
		if (!l.vm[v]->removed)
			repost_filled(&l, v);
	vt_fx_free(l.fx);
}

static void test_lifecycle_builtin_l2_one_backend(void **state)
{
	struct vt_fx_opts o = {.builtin_cls = true};

	(void)state;
	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 96);
	run_lifecycle(&o);
}

static void test_lifecycle_builtin_l2_two_stacked_backends(void **state)
{
	struct vt_fx_opts o = {.builtin_cls = true, .nbe = 2};

	(void)state;
	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 96);
	run_lifecycle(&o);
}

static void test_lifecycle_always_flip(void **state)
{
	struct vt_fx_opts o = {0};

	(void)state;
	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 96, .copy = VDEMUX_COPY_NEVER);
	run_lifecycle(&o);
}

static void test_lifecycle_always_copy_lazy_engine(void **state)
{
	struct vt_fx_opts o = {0};

	(void)state;
	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 96, .copy = VDEMUX_COPY_ALWAYS,
			    .harvest = VDEMUX_HARVEST_LAZY);
	run_lifecycle(&o);
}

static void test_lifecycle_stacked_backends_without_remap(void **state)
{
	struct vt_fx_opts o = {.nbe = 2, .fault = true, .no_remap = true};

	(void)state;
	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 96);
	run_lifecycle(&o);
}

/* Many rounds of receive-and-release: the pool comes back to where it was. */
static void test_many_rounds_return_the_pool_to_its_start(void **state)
{
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	struct vt_vm *v[3];
	uint64_t free0;
	uint32_t rnd = 12345;

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64);
	fx = vt_fx_state(state, &fo);
	for (int i = 0; i < 3; i++) {
		struct vdemux_vm_opts o = vt_vm_opts(fx, 12);

		o.flags = VDEMUX_VM_F_UNPOPULATED;
		v[i] = vt_vm_add(fx, &o);
		vt_post_range(fx, v[i], 0, 12);
	}
	free0 = vt_stats(fx).pages_free;
	for (int round = 0; round < 40; round++) {
		struct vt_burst b = {0};
		unsigned want[3] = {0};

		for (int k = 0; k < 6; k++) {
			int to;
			uint32_t len;

			rnd = rnd * 1103515245u + 12345u;
			to = (int)((rnd >> 16) % 3);
			len = 60 + (rnd >> 8) % 3000;
			vt_burst_add(fx, &b, v[to]->id, len);
			want[to]++;
		}
		assert_int_equal(vdemux_rx_burst(fx->eng, b.f, b.n), (int)b.n);
		vt_burst_free(&b);
		vt_check(fx);
		for (int i = 0; i < 3; i++) {
			struct vt_rx rx[12];
			unsigned n = vt_guest_take(fx, v[i], rx, 12);

			assert_int_equal(n, want[i]);
			for (unsigned k = 0; k < n; k++)
				assert_int_equal(vdemux_vm_post_rx(fx->eng, v[i]->id, &rx[k].gpa[0], 1),
						 1);
		}
		vt_check(fx);
		assert_int_equal(vt_stats(fx).pages_free, free0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle_builtin_l2_one_backend),
		cmocka_unit_test(test_lifecycle_builtin_l2_two_stacked_backends),
		cmocka_unit_test(test_lifecycle_always_flip),
		cmocka_unit_test(test_lifecycle_always_copy_lazy_engine),
		cmocka_unit_test(test_lifecycle_stacked_backends_without_remap),
		cmocka_unit_test_setup_teardown(test_many_rounds_return_the_pool_to_its_start, vt_setup,
						vt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
