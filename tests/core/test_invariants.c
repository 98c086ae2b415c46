/* SPDX-License-Identifier: MIT */
/*
 * The invariants of the design: exclusive ownership, no leak of data,
 * conservation, bounded holding; and that vdemux_engine_check() does catch
 * a violation when there is one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt.h"

static struct vt_fx *fx_with(void **state, uint32_t npages, enum vdemux_harvest h,
			     enum vdemux_copy_policy c)
{
	struct vt_fx_opts o = {0};

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = npages, .harvest = h, .copy = c);
	return vt_fx_state(state, &o);
}

static struct vt_vm *vm_new(struct vt_fx *fx, uint32_t pages, uint32_t flags, uint32_t quota)
{
	struct vdemux_vm_opts o = vt_vm_opts(fx, pages);

	o.flags = flags;
	o.quota = quota;
	return vt_vm_add(fx, &o);
}

static void deliver(struct vt_fx *fx, struct vt_vm *vm, uint32_t len, struct vt_rx *rx)
{
	struct vt_burst b = {0};

	vt_burst_add(fx, &b, vm->id, len);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	vt_burst_free(&b);
	assert_int_equal(vt_guest_take(fx, vm, rx, 1), 1);
}

static void fill_page(struct vt_fx *fx, struct vt_vm *vm, uint64_t gpa, uint8_t byte)
{
	uint8_t page[VDEMUX_PAGE_SIZE];

	memset(page, byte, sizeof(page));
	assert_int_equal(vdemux_sim_write(fx->sim[vm->be_idx[0]], vm->id, gpa, page, sizeof(page)), 0);
}

/* ---- exclusive ownership and conservation under mixed traffic ---- */

static uint32_t rnd_next(uint32_t *r)
{
	*r ^= *r << 13;
	*r ^= *r >> 17;
	*r ^= *r << 5;
	return *r;
}

static void run_random_traffic(struct vt_fx *fx, uint32_t seed, int steps)
{
	struct vt_vm *v[4];
	uint32_t r = seed;

	for (int i = 0; i < 4; i++) {
		struct vdemux_vm_opts o = vt_vm_opts(fx, 12);

		o.flags = i % 2 ? VDEMUX_VM_F_UNPOPULATED : 0;
		o.harvest = i < 2 ? VDEMUX_HARVEST_EAGER : VDEMUX_HARVEST_LAZY;
		o.copy = i == 3 ? VDEMUX_COPY_ALWAYS : VDEMUX_COPY_DEFAULT;
		v[i] = vt_vm_add(fx, &o);
	}
	vt_check(fx);
	for (int step = 0; step < steps; step++) {
		struct vt_vm *vm = v[rnd_next(&r) % 4];
		uint32_t op = rnd_next(&r) % 6;
		uint64_t g[4];
		unsigned n = 1 + rnd_next(&r) % 4;

		for (unsigned k = 0; k < n; k++)
			g[k] = vt_gpa(vm, (rnd_next(&r) % vm->rx_pages));
		/* like a real guest, consume completions before giving buffers back */
		if (op <= 2)
			vt_guest_take(fx, vm, NULL, 64);
		if (op <= 1) {
			/* post: may be refused (posted already, duplicates): then nothing changed */
			int rc = vdemux_vm_post_rx(fx->eng, vm->id, g, n);

			assert_true(rc == (int)n || rc == -EALREADY);
		} else if (op == 2) {
			int rc = vdemux_vm_release(fx->eng, vm->id, g, n);

			assert_true(rc == (int)n || rc == -EPERM || rc == -EALREADY);
		} else if (op == 3) {
			struct vt_burst b = {0};
			unsigned nf = 1 + rnd_next(&r) % 6;
			int rc;

			for (unsigned k = 0; k < nf; k++) {
				uint32_t pick = rnd_next(&r);
				uint32_t len = pick % 7 == 0 ? 9000 + pick % 7000 : 60 + pick % 2000;

				vt_burst_add(fx, &b, pick % 9 == 0 ? 0 : v[pick % 4]->id, len);
			}
			rc = vdemux_rx_burst(fx->eng, b.f, nf);
			assert_true(rc == -ENOBUFS || (rc > 0 && rc <= (int)nf));
			vt_burst_free(&b);
		} else if (op == 4) {
			struct vdemux_rx_buf bufs[2];
			int got = vdemux_rx_alloc(fx->eng, bufs, 2);
			uint8_t dst[6];

			assert_true(got >= 0);
			if (got == 2 && rnd_next(&r) % 2) {
				/* a two-page frame written by a device */
				uint8_t *tmp = malloc(4196);

				assert_non_null(tmp);
				vt_mac(vm->id, dst);
				vt_frame_fill(tmp, 4196, dst, fx->next_seq++);
				memcpy(bufs[0].data, tmp, 4096);
				memcpy(bufs[1].data, tmp + 4096, 100);
				free(tmp);
				bufs[0].len = 4096;
				bufs[0].flags = VDEMUX_RXBUF_MORE;
				bufs[1].len = 100;
				bufs[1].flags = 0;
				assert_int_equal(vdemux_rx_submit(fx->eng, bufs, 2), 2);
			} else if (got > 0) {
				assert_int_equal(vdemux_rx_abort(fx->eng, bufs, (unsigned)got), got);
			}
		} else {
			/* the guest reads everything it was given; each frame is whole */
			vt_guest_take(fx, vm, NULL, 64);
		}
		vt_check(fx);
	}
}

static void test_random_traffic_keeps_every_page_in_one_place(void **state)
{
	struct vt_fx *fx = fx_with(state, 48, VDEMUX_HARVEST_DEFAULT, VDEMUX_COPY_DEFAULT);

	run_random_traffic(fx, 0x9e3779b9u, 400);
}

static void test_random_traffic_on_stacked_backends_keeps_tables_in_step(void **state)
{
	struct vt_fx_opts o = {.nbe = 2};
	struct vt_fx *fx;

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 48);
	fx = vt_fx_state(state, &o);
	run_random_traffic(fx, 0x2545f491u, 300);
}

static void test_random_traffic_with_a_tight_pool(void **state)
{
	struct vt_fx *fx = fx_with(state, 40, VDEMUX_HARVEST_DEFAULT, VDEMUX_COPY_DEFAULT);

	/* 24 pages populate two VMs: 16 left for everything else */
	run_random_traffic(fx, 0xdeadbeefu, 300);
}

/* ---- no leak of data ---- */

/* A page that held A's data (a frame, then A's own writes) goes to B, eager. */
static void test_page_moving_from_a_to_b_carries_only_bs_frame_eager(void **state)
{
	struct vt_fx *fx = fx_with(state, 1, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER);
	struct vt_vm *a = vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, 0);
	struct vt_vm *b = vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, 0);
	struct vt_rx rx;
	uint32_t page;

	vt_post_range(fx, a, 0, 1);
	deliver(fx, a, 3000, &rx);
	page = vt_page_at(fx, a, rx.gpa[0]);
	fill_page(fx, a, rx.gpa[0], 0xa5); /* A's secrets all over it */
	vt_post_range(fx, a, 0, 1);	   /* released */
	vt_post_range(fx, b, 0, 1);
	deliver(fx, b, 100, &rx);			      /* asserts: B's frame, then zeros */
	assert_int_equal(vt_page_at(fx, b, rx.gpa[0]), page); /* the very same host page */
	vt_check(fx);
}

static void test_page_moving_from_a_to_b_carries_only_bs_frame_lazy(void **state)
{
	struct vt_fx *fx = fx_with(state, 2, VDEMUX_HARVEST_LAZY, VDEMUX_COPY_NEVER);
	struct vt_vm *a = vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, 0);
	struct vt_vm *b = vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, 0);
	struct vt_rx rx;
	uint32_t old;

	vt_post_range(fx, a, 0, 1);
	deliver(fx, a, 3000, &rx);
	old = vt_page_at(fx, a, rx.gpa[0]);
	vt_post_range(fx, a, 0, 1); /* lazy: still mapped, A keeps writing */
	fill_page(fx, a, rx.gpa[0], 0x5a);
	deliver(fx, a, 200, &rx); /* the remap takes A's old page into the pool */
	assert_int_not_equal(vt_page_at(fx, a, rx.gpa[0]), old);
	vt_post_range(fx, b, 0, 1);
	deliver(fx, b, 64, &rx);
	assert_int_equal(vt_page_at(fx, b, rx.gpa[0]), old);
	vt_check(fx);
}

static void test_populated_page_written_by_a_reaches_b_cleared(void **state)
{
	struct vt_fx *fx = fx_with(state, 1, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER);
	struct vt_vm *a = vm_new(fx, 1, 0, 0);
	struct vt_vm *b = vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, 0);
	struct vt_rx rx;
	uint32_t page = vt_page_at(fx, a, vt_gpa(a, 0));

	fill_page(fx, a, vt_gpa(a, 0), 0x3c);
	vt_post_range(fx, a, 0, 1);
	vt_post_range(fx, b, 0, 1);
	deliver(fx, b, 1000, &rx);
	assert_int_equal(vt_page_at(fx, b, rx.gpa[0]), page);
	vt_check(fx);
}

static void test_page_of_a_removed_vm_reaches_b_cleared(void **state)
{
	struct vt_fx *fx = fx_with(state, 1, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER);
	struct vt_vm *a = vm_new(fx, 1, 0, 0);
	struct vt_vm *b = vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, 0);
	struct vt_rx rx;

	fill_page(fx, a, vt_gpa(a, 0), 0x99);
	vt_vm_remove(fx, a);
	vt_check(fx);
	vt_post_range(fx, b, 0, 1);
	deliver(fx, b, 1000, &rx);
	vt_check(fx);
}

static void test_dropped_frame_leaves_nothing_for_the_next_vm(void **state)
{
	struct vt_fx *fx = fx_with(state, 1, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER);
	struct vt_vm *b = vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, 0);
	struct vt_burst bu = {0};
	struct vt_rx rx;

	vt_burst_add(fx, &bu, 0x00eeeeee, 4000); /* unknown VM: dropped */
	assert_int_equal(vdemux_rx_burst(fx->eng, bu.f, 1), 1);
	vt_burst_free(&bu);
	vt_check(fx);
	vt_post_range(fx, b, 0, 1);
	deliver(fx, b, 60, &rx); /* only 60 bytes, then zeros */
}

static void test_jumbo_replicas_are_cleared_past_each_tail(void **state)
{
	struct vt_fx *fx = fx_with(state, 8, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER);
	struct vt_vm *a = vm_new(fx, 4, VDEMUX_VM_F_UNPOPULATED, 0);
	struct vt_vm *b = vm_new(fx, 4, VDEMUX_VM_F_UNPOPULATED, 0);
	struct vt_burst bu = {0};
	struct vt_rx rx;

	/* fill every page with a big frame, give them back, then short frames */
	vt_post_range(fx, a, 0, 4);
	vt_post_range(fx, b, 0, 4);
	vt_burst_add(fx, &bu, 0, 16000);
	assert_int_equal(vdemux_rx_burst(fx->eng, bu.f, 1), 1);
	vt_burst_free(&bu);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1);
	vt_post_range(fx, a, 0, 4);
	assert_int_equal(vt_guest_take(fx, b, &rx, 1), 1);
	vt_post_range(fx, b, 0, 4);
	vt_check(fx);
	vt_burst_add(fx, &bu, 0, 4097);
	assert_int_equal(vdemux_rx_burst(fx->eng, bu.f, 1), 1);
	vt_burst_free(&bu);
	assert_int_equal(vt_guest_take(fx, a, &rx, 1), 1); /* 1-byte tail page: the rest zero */
	assert_int_equal(vt_guest_take(fx, b, &rx, 1), 1);
	vt_check(fx);
}

/* ---- bounded holding ---- */

static void test_vm_that_never_releases_holds_at_most_its_quota(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER);
	struct vt_vm *a = vm_new(fx, 32, VDEMUX_VM_F_UNPOPULATED, 4);
	struct vt_burst bu = {0};
	struct vdemux_vm_stats vs;
	struct vdemux_engine_stats s;

	vt_post_range(fx, a, 0, 32);
	for (int i = 0; i < 10; i++)
		vt_burst_add(fx, &bu, a->id, 1000);
	assert_int_equal(vdemux_rx_burst(fx->eng, bu.f, 10), 10);
	vt_burst_free(&bu);
	vt_check(fx);
	vs = vt_vm_stats(fx, a);
	s = vt_stats(fx);
	assert_int_equal(vs.held, 4);
	assert_int_equal(vs.delivered, 4);
	assert_int_equal(vs.drops[VDEMUX_DROP_QUOTA], 6);
	assert_int_equal(s.drops[VDEMUX_DROP_QUOTA], 6);
	assert_int_equal(s.pages_free, 28);
	assert_int_equal(vt_guest_take(fx, a, NULL, 10), 4);
}

static void test_quota_counts_jumbo_pages(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER);
	struct vt_vm *a = vm_new(fx, 16, VDEMUX_VM_F_UNPOPULATED, 5);
	struct vt_burst bu = {0};

	vt_post_range(fx, a, 0, 16);
	vt_burst_add(fx, &bu, a->id, 9000); /* 3 pages: fits */
	vt_burst_add(fx, &bu, a->id, 9000); /* 3 more: would make 6 > 5 */
	vt_burst_add(fx, &bu, a->id, 5000); /* 2 more: 5, fits */
	assert_int_equal(vdemux_rx_burst(fx->eng, bu.f, 3), 3);
	vt_burst_free(&bu);
	vt_check(fx);
	assert_int_equal(vt_vm_stats(fx, a).held, 5);
	assert_int_equal(vt_vm_stats(fx, a).drops[VDEMUX_DROP_QUOTA], 1);
	assert_int_equal(vt_guest_take(fx, a, NULL, 3), 2);
}

static void test_flooded_vm_does_not_starve_the_others(void **state)
{
	struct vt_fx *fx = fx_with(state, 24, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER);
	struct vt_vm *greedy = vm_new(fx, 64, VDEMUX_VM_F_UNPOPULATED, 8);
	struct vt_vm *other = vm_new(fx, 8, VDEMUX_VM_F_UNPOPULATED, 0);
	struct vt_burst bu = {0};

	vt_post_range(fx, greedy, 0, 64);
	vt_post_range(fx, other, 0, 8);
	for (int r = 0; r < 5; r++) {
		for (int i = 0; i < 10; i++)
			vt_burst_add(fx, &bu, greedy->id, 1500);
		assert_int_equal(vdemux_rx_burst(fx->eng, bu.f, 10), 10);
		vt_burst_free(&bu);
		vt_check(fx);
	}
	assert_int_equal(vt_vm_stats(fx, greedy).held, 8);
	for (int i = 0; i < 8; i++)
		vt_burst_add(fx, &bu, other->id, 1500);
	assert_int_equal(vdemux_rx_burst(fx->eng, bu.f, 8), 8);
	vt_burst_free(&bu);
	assert_int_equal(vt_guest_take(fx, other, NULL, 8), 8);
	vt_check(fx);
}

static void test_released_quota_can_be_used_again(void **state)
{
	struct vt_fx *fx = fx_with(state, 16, VDEMUX_HARVEST_EAGER, VDEMUX_COPY_NEVER);
	struct vt_vm *a = vm_new(fx, 8, VDEMUX_VM_F_UNPOPULATED, 2);
	struct vt_burst bu = {0};
	struct vt_rx rx[2];

	vt_post_range(fx, a, 0, 8);
	for (int i = 0; i < 3; i++)
		vt_burst_add(fx, &bu, a->id, 500);
	assert_int_equal(vdemux_rx_burst(fx->eng, bu.f, 3), 3);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 2);
	assert_int_equal(vdemux_vm_release(fx->eng, a->id, &rx[0].gpa[0], 1), 1);
	assert_int_equal(vdemux_rx_burst(fx->eng, &bu.f[2], 1), 1);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 1);
	assert_int_equal(vt_vm_stats(fx, a).held, 2);
	vt_burst_free(&bu);
	vt_check(fx);
}

/* ---- the check catches violations ---- */

static void test_check_catches_a_page_mapped_behind_the_engines_back(void **state)
{
	struct vt_fx_opts o = {.fault = true};
	struct vt_fx *fx;
	struct vt_vm *a;
	struct vt_fault *f;
	struct vdemux_map m;
	unsigned done = 0;
	char msg[256] = "";
	uint32_t victim = VDEMUX_NO_PAGE;

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8);
	fx = vt_fx_state(state, &o);
	f = fx->fault[0];
	a = vm_new(fx, 2, 0, 0);
	vt_check(fx);
	/* a FREE page: not one of a's two */
	for (uint32_t p = 0; p < 8 && victim == VDEMUX_NO_PAGE; p++)
		if (p != vt_page_at(fx, a, vt_gpa(a, 0)) && p != vt_page_at(fx, a, vt_gpa(a, 1)))
			victim = p;
	assert_int_equal(f->last_vm, a->id);
	/* slot 1 now shows a FREE page to the guest */
	m.gpa = vt_gpa(a, 1);
	m.page = victim;
	m.pad = 0;
	assert_non_null(f->inner->remap);
	{
		uint32_t was = vt_page_at(fx, a, m.gpa);

		assert_int_equal(f->inner->remap(f->inner, f->last_vmctx, &m, 1, &done), 0);
		assert_int_equal(vdemux_engine_check(fx->eng, msg, sizeof(msg)), -EUCLEAN);
		assert_true(strlen(msg) > 0);
		m.page = was;
		assert_int_equal(f->inner->remap(f->inner, f->last_vmctx, &m, 1, &done), 0);
	}
	assert_int_equal(vdemux_engine_check(fx->eng, msg, sizeof(msg)), 0);
}

static void test_check_catches_a_dirty_free_page(void **state)
{
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = 4);
	vdemux_arena *ar = NULL;
	struct vdemux_arena_info ai;
	struct vt_fx_opts o = {0};
	struct vt_fx *fx;
	char msg[256] = "";

	assert_int_equal(vdemux_arena_create(&ar, &ao), 0);
	assert_int_equal(vdemux_arena_info(ar, &ai), 0);
	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .arena = ar);
	fx = vt_fx_new(&o);
	vt_check(fx);
	ai.base[2 * VDEMUX_PAGE_SIZE + 1234] = 1; /* every page is FREE: this one is no longer zero */
	assert_int_equal(vdemux_engine_check(fx->eng, msg, sizeof(msg)), -EUCLEAN);
	assert_true(strlen(msg) > 0);
	ai.base[2 * VDEMUX_PAGE_SIZE + 1234] = 0;
	assert_int_equal(vdemux_engine_check(fx->eng, msg, sizeof(msg)), 0);
	vt_fx_free(fx);
	vdemux_arena_destroy(ar);
	(void)state;
}

static void test_check_catches_a_page_unmapped_behind_the_engines_back(void **state)
{
	struct vt_fx_opts o = {.fault = true};
	struct vt_fx *fx;
	struct vt_vm *a;
	struct vt_fault *f;
	struct vdemux_map m;
	unsigned done = 0;

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8);
	fx = vt_fx_state(state, &o);
	f = fx->fault[0];
	a = vm_new(fx, 2, 0, 0);
	m.gpa = vt_gpa(a, 0);
	m.page = vt_page_at(fx, a, m.gpa);
	m.pad = 0;
	assert_int_equal(f->inner->unmap(f->inner, f->last_vmctx, &m, 1, &done), 0);
	assert_int_equal(vdemux_engine_check(fx->eng, NULL, 0), -EUCLEAN);
	assert_int_equal(f->inner->map(f->inner, f->last_vmctx, &m, 1, &done), 0);
	assert_int_equal(vdemux_engine_check(fx->eng, NULL, 0), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, vt_setup, vt_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_random_traffic_keeps_every_page_in_one_place),
		T(test_random_traffic_on_stacked_backends_keeps_tables_in_step),
		T(test_random_traffic_with_a_tight_pool),
		T(test_page_moving_from_a_to_b_carries_only_bs_frame_eager),
		T(test_page_moving_from_a_to_b_carries_only_bs_frame_lazy),
		T(test_populated_page_written_by_a_reaches_b_cleared),
		T(test_page_of_a_removed_vm_reaches_b_cleared),
		T(test_dropped_frame_leaves_nothing_for_the_next_vm),
		T(test_jumbo_replicas_are_cleared_past_each_tail),
		T(test_vm_that_never_releases_holds_at_most_its_quota),
		T(test_quota_counts_jumbo_pages),
		T(test_flooded_vm_does_not_starve_the_others),
		T(test_released_quota_can_be_used_again),
		T(test_check_catches_a_page_mapped_behind_the_engines_back),
		T(test_check_catches_a_dirty_free_page),
		T(test_check_catches_a_page_unmapped_behind_the_engines_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
