/* SPDX-License-Identifier: MIT */
/*
 * Adding VMs, posting RX buffers (eager and lazy harvest), releasing pages
 * by vdemux_vm_release() and by re-posting a filled slot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt.h"

static struct vt_fx *fx_engine(void **state, enum vdemux_harvest h, uint32_t npages)
{
	struct vt_fx_opts o = {0};

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = npages, .harvest = h,
			    .copy = VDEMUX_COPY_NEVER);
	return vt_fx_state(state, &o);
}

static struct vdemux_sim_stats sim_stats(struct vt_fx *fx, unsigned b)
{
	struct vdemux_sim_stats s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(vdemux_sim_stats(fx->sim[b], &s, sizeof(s)), 0);
	return s;
}

/* The guest writes its own data all over slot i. */
static void guest_scribble(struct vt_fx *fx, struct vt_vm *vm, uint32_t i, uint8_t byte)
{
	uint8_t page[VDEMUX_PAGE_SIZE];

	memset(page, byte, sizeof(page));
	assert_int_equal(vdemux_sim_write(fx->sim[0], vm->id, vt_gpa(vm, i), page, sizeof(page)), 0);
}

static void deliver_one(struct vt_fx *fx, struct vt_vm *vm, uint32_t len, struct vt_rx *rx)
{
	struct vt_burst b = {0};

	vt_burst_add(fx, &b, vm->id, len);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 1), 1);
	assert_int_equal(vt_guest_take(fx, vm, rx, 1), 1);
	assert_int_equal(rx->seq, b.seq[0]);
	vt_burst_free(&b);
}

static void test_populated_vm_backs_every_slot_with_its_own_zeroed_page(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vt_vm *a = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_DEFAULT);
	struct vdemux_engine_stats s = vt_stats(fx);
	struct vdemux_vm_stats vs = vt_vm_stats(fx, a);
	uint8_t page[VDEMUX_PAGE_SIZE];

	assert_int_equal(vs.held, 8);
	assert_int_equal(vs.posted, 0);
	assert_int_equal(s.pages_free, 24);
	assert_int_equal(s.pages_assigned, 8);
	for (uint32_t i = 0; i < 8; i++) {
		assert_int_not_equal(vt_page_at(fx, a, vt_gpa(a, i)), VDEMUX_NO_PAGE);
		assert_int_equal(vt_guest_read_page(fx, 0, a, vt_gpa(a, i), page), 0);
		assert_true(vt_all_zero(page, sizeof(page)));
	}
	vt_check(fx); /* also: the 8 pages are distinct */
}

static void test_populating_costs_one_map_batch(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vdemux_sim_stats s0 = sim_stats(fx, 0), s1;

	vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_DEFAULT);
	s1 = sim_stats(fx, 0);
	assert_int_equal(s1.maps - s0.maps, 8);
	assert_int_equal(s1.invalidations - s0.invalidations, 1);
}

static void test_unpopulated_vm_starts_with_holes(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vt_vm *a = vt_vm_new(fx, 8, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_DEFAULT);

	assert_int_equal(vt_vm_stats(fx, a).held, 0);
	assert_int_equal(vt_stats(fx).pages_free, 32);
	for (uint32_t i = 0; i < 8; i++)
		assert_true(vt_guest_hole(fx, a, vt_gpa(a, i)));
	vt_check(fx);
}

static void test_vm_add_fails_with_enobufs_when_pool_cannot_populate(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 8);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 9);
	vdemux_vm_id id = 0;
	struct vt_snap *before = vt_snap_take(fx);

	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -ENOBUFS);
	assert_int_equal(id, 0);
	vt_snap_expect_same(fx, before, -1);
	vt_check(fx);
	free(before);
	/* the same window unpopulated fits */
	o.flags = VDEMUX_VM_F_UNPOPULATED;
	vt_vm_add(fx, &o);
	vt_check(fx);
}

static void test_vm_ids_are_distinct_and_never_zero(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 8);
	struct vt_vm *v[6];

	for (int i = 0; i < 6; i++) {
		v[i] = vt_vm_new(fx, 2, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_DEFAULT);
		assert_int_not_equal(v[i]->id, 0);
		for (int j = 0; j < i; j++)
			assert_int_not_equal(v[i]->id, v[j]->id);
	}
}

static void test_max_vms_is_enforced_with_enospc(void **state)
{
	struct vt_fx_opts fo = {0};
	struct vt_fx *fx;
	struct vdemux_vm_opts o;
	vdemux_vm_id id = 0;

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 8, .max_vms = 2);
	fx = vt_fx_state(state, &fo);
	vt_vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_DEFAULT);
	vt_vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_DEFAULT);
	o = vt_vm_opts(fx, 1);
	o.flags = VDEMUX_VM_F_UNPOPULATED;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -ENOSPC);
	/* room again once one is removed */
	vt_vm_remove(fx, &fx->vms[0]);
	vt_vm_add(fx, &o);
	vt_check(fx);
}

static void test_default_max_vms_is_64(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 8);
	struct vdemux_vm_opts o = VDEMUX_OPTS(vdemux_vm_opts, .rx_base = 0x100000, .rx_pages = 1,
					      .flags = VDEMUX_VM_F_UNPOPULATED, .backends = fx->be,
					      .n_backends = 1);
	vdemux_vm_id ids[65];

	for (int i = 0; i < 64; i++)
		assert_int_equal(vdemux_vm_add(fx->eng, &ids[i], &o), 0);
	assert_int_equal(vdemux_vm_add(fx->eng, &ids[64], &o), -ENOSPC);
	for (int i = 0; i < 64; i++)
		assert_int_equal(vdemux_vm_remove(fx->eng, ids[i]), 0);
	vt_check(fx);
}

static void test_eager_post_unmaps_clears_and_pools_the_page(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vt_vm *a = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_DEFAULT);
	struct vdemux_engine_stats s0, s1;
	struct vdemux_vm_stats v0, v1;

	for (uint32_t i = 0; i < 3; i++)
		guest_scribble(fx, a, i, (uint8_t)(0xc0 + i));
	s0 = vt_stats(fx);
	v0 = vt_vm_stats(fx, a);
	vt_post_range(fx, a, 0, 3);
	s1 = vt_stats(fx);
	v1 = vt_vm_stats(fx, a);
	for (uint32_t i = 0; i < 3; i++)
		assert_true(vt_guest_hole(fx, a, vt_gpa(a, i)));
	for (uint32_t i = 3; i < 8; i++)
		assert_false(vt_guest_hole(fx, a, vt_gpa(a, i)));
	assert_int_equal(s1.pages_free, s0.pages_free + 3);
	assert_int_equal(s1.pages_assigned, s0.pages_assigned - 3);
	assert_int_equal(s1.harvests, s0.harvests + 3);
	assert_int_equal(v1.harvests, v0.harvests + 3);
	assert_int_equal(v1.posted, v0.posted + 3);
	assert_int_equal(v1.held, v0.held - 3);
	/* the check proves the harvested pages were cleared (FREE is zeroed) */
	vt_check(fx);
}

static void test_eager_post_unmaps_in_one_batch(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vt_vm *a = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_DEFAULT);
	struct vdemux_sim_stats s0 = sim_stats(fx, 0), s1;

	vt_post_range(fx, a, 0, 8);
	s1 = sim_stats(fx, 0);
	assert_int_equal(s1.unmaps - s0.unmaps, 8);
	assert_int_equal(s1.batches - s0.batches, 1);
	assert_int_equal(s1.invalidations - s0.invalidations, 1);
}

static void test_posting_a_hole_calls_no_backend(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vt_vm *a = vt_vm_new(fx, 8, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_DEFAULT);
	struct vdemux_sim_stats s0 = sim_stats(fx, 0), s1;

	vt_post_range(fx, a, 0, 8);
	s1 = sim_stats(fx, 0);
	assert_int_equal(s1.batches, s0.batches);
	assert_int_equal(vt_vm_stats(fx, a).posted, 8);
	assert_int_equal(vt_stats(fx).harvests, 0);
	vt_check(fx);
}

static void test_engine_default_harvest_is_eager(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_DEFAULT, 32);
	struct vt_vm *a = vt_vm_new(fx, 4, 0, VDEMUX_HARVEST_DEFAULT);

	vt_post_range(fx, a, 0, 4);
	for (uint32_t i = 0; i < 4; i++)
		assert_true(vt_guest_hole(fx, a, vt_gpa(a, i)));
	assert_int_equal(vt_stats(fx).pages_free, 32);
	vt_check(fx);
}

static void test_lazy_post_keeps_the_slot_mapped_with_guest_data(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_LAZY, 32);
	struct vt_vm *a = vt_vm_new(fx, 4, 0, VDEMUX_HARVEST_DEFAULT);
	struct vdemux_sim_stats s0, s1;
	struct vdemux_engine_stats e0, e1;
	uint32_t before[4];
	uint8_t page[VDEMUX_PAGE_SIZE];

	for (uint32_t i = 0; i < 4; i++) {
		guest_scribble(fx, a, i, 0x77);
		before[i] = vt_page_at(fx, a, vt_gpa(a, i));
	}
	s0 = sim_stats(fx, 0);
	e0 = vt_stats(fx);
	vt_post_range(fx, a, 0, 4);
	s1 = sim_stats(fx, 0);
	e1 = vt_stats(fx);
	assert_int_equal(s1.batches, s0.batches); /* no backend call at post time */
	assert_int_equal(e1.pages_free, e0.pages_free);
	assert_int_equal(e1.harvests, e0.harvests);
	assert_int_equal(vt_vm_stats(fx, a).posted, 4);
	for (uint32_t i = 0; i < 4; i++) {
		assert_int_equal(vt_page_at(fx, a, vt_gpa(a, i)), before[i]);
		assert_int_equal(vt_guest_read_page(fx, 0, a, vt_gpa(a, i), page), 0);
		assert_int_equal(page[0], 0x77);
		assert_int_equal(page[VDEMUX_PAGE_SIZE - 1], 0x77);
	}
	vt_check(fx);
}

static void test_lazy_flip_swaps_the_old_page_for_the_frame_and_pools_it_cleared(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_LAZY, 32);
	struct vt_vm *a = vt_vm_new(fx, 1, 0, VDEMUX_HARVEST_DEFAULT);
	struct vdemux_engine_stats e0, e1;
	struct vdemux_sim_stats s0, s1;
	uint32_t old;
	struct vt_rx rx;

	guest_scribble(fx, a, 0, 0x99);
	old = vt_page_at(fx, a, vt_gpa(a, 0));
	vt_post_range(fx, a, 0, 1);
	e0 = vt_stats(fx);
	s0 = sim_stats(fx, 0);
	deliver_one(fx, a, 2000, &rx); /* the guest sees only the frame, zero after it */
	e1 = vt_stats(fx);
	s1 = sim_stats(fx, 0);
	assert_int_equal(rx.gpa[0], vt_gpa(a, 0));
	assert_int_not_equal(vt_page_at(fx, a, vt_gpa(a, 0)), old);
	assert_int_equal(e1.harvests, e0.harvests + 1);
	assert_int_equal(e1.flips, e0.flips + 1);
	assert_int_equal(e1.pages_free, e0.pages_free); /* one in (the old), one out (the frame's) */
	/* one remap when the backend has it, no hole ever visible to the guest */
	if (fx->sim[0]->remap) {
		assert_int_equal(s1.remaps - s0.remaps, 1);
		assert_int_equal(s1.unmaps, s0.unmaps);
	}
	vt_check(fx); /* the old page, back in the pool, is zero */
}

static void test_lazy_flip_without_remap_unmaps_then_maps(void **state)
{
	struct vt_fx_opts o = {.fault = true, .no_remap = true};
	struct vt_fx *fx;
	struct vt_vm *a;
	struct vt_rx rx;
	uint32_t old;

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 16, .harvest = VDEMUX_HARVEST_LAZY,
			    .copy = VDEMUX_COPY_NEVER);
	fx = vt_fx_state(state, &o);
	assert_null(fx->be[0]->remap);
	a = vt_vm_new(fx, 2, 0, VDEMUX_HARVEST_DEFAULT);
	guest_scribble(fx, a, 0, 0x31);
	old = vt_page_at(fx, a, vt_gpa(a, 0));
	vt_post_range(fx, a, 0, 1);
	deliver_one(fx, a, 3000, &rx);
	assert_int_not_equal(vt_page_at(fx, a, vt_gpa(a, 0)), old);
	assert_true(fx->fault[0]->calls[0] >= 2); /* populate + the flip's map */
	assert_true(fx->fault[0]->calls[1] >= 1); /* the old page's unmap */
	assert_int_equal(fx->fault[0]->calls[2], 0);
	vt_check(fx);
}

static void test_vm_harvest_policy_overrides_the_engine(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_LAZY, 32);
	struct vt_vm *eager = vt_vm_new(fx, 2, 0, VDEMUX_HARVEST_EAGER);
	struct vt_vm *lazy = vt_vm_new(fx, 2, 0, VDEMUX_HARVEST_DEFAULT);

	vt_post_range(fx, eager, 0, 2);
	vt_post_range(fx, lazy, 0, 2);
	assert_true(vt_guest_hole(fx, eager, vt_gpa(eager, 0)));
	assert_false(vt_guest_hole(fx, lazy, vt_gpa(lazy, 0)));
	vt_check(fx);
}

static void test_vm_lazy_policy_overrides_an_eager_engine(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vt_vm *lazy = vt_vm_new(fx, 2, 0, VDEMUX_HARVEST_LAZY);

	vt_post_range(fx, lazy, 0, 2);
	assert_false(vt_guest_hole(fx, lazy, vt_gpa(lazy, 1)));
	vt_check(fx);
}

static void test_each_posted_buffer_takes_one_frame(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vt_vm *a = vt_vm_new(fx, 4, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_DEFAULT);
	struct vt_burst b = {0};
	struct vt_rx rx[4];
	struct vdemux_vm_stats vs;

	vt_post_range(fx, a, 1, 2);
	for (int i = 0; i < 3; i++)
		vt_burst_add(fx, &b, a->id, 600);
	assert_int_equal(vdemux_rx_burst(fx->eng, b.f, 3), 3);
	assert_int_equal(vt_guest_take(fx, a, rx, 4), 2);
	assert_true((rx[0].gpa[0] == vt_gpa(a, 1) && rx[1].gpa[0] == vt_gpa(a, 2)) ||
		    (rx[0].gpa[0] == vt_gpa(a, 2) && rx[1].gpa[0] == vt_gpa(a, 1)));
	vs = vt_vm_stats(fx, a);
	assert_int_equal(vs.posted, 0);
	assert_int_equal(vs.held, 2);
	assert_int_equal(vs.delivered, 2);
	assert_int_equal(vs.drops[VDEMUX_DROP_NO_BUFFER], 1);
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_NO_BUFFER], 1);
	vt_check(fx);
	vt_burst_free(&b);
}

static void test_eager_repost_of_a_filled_slot_releases_its_page(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vt_vm *a = vt_vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_DEFAULT);
	struct vdemux_engine_stats e0, e1;
	struct vdemux_vm_stats v1;
	struct vt_rx rx;

	vt_post_range(fx, a, 0, 1);
	deliver_one(fx, a, 1500, &rx);
	guest_scribble(fx, a, 0, 0xee); /* the guest's own data on the page it was given */
	e0 = vt_stats(fx);
	vt_post_range(fx, a, 0, 1);
	e1 = vt_stats(fx);
	v1 = vt_vm_stats(fx, a);
	assert_true(vt_guest_hole(fx, a, vt_gpa(a, 0)));
	assert_int_equal(e1.pages_free, e0.pages_free + 1);
	assert_int_equal(e1.harvests, e0.harvests + 1);
	assert_int_equal(v1.held, 0);
	assert_int_equal(v1.posted, 1);
	vt_check(fx);
	/* the buffer is offered again */
	deliver_one(fx, a, 100, &rx);
	assert_int_equal(rx.gpa[0], vt_gpa(a, 0));
	vt_check(fx);
}

static void test_lazy_repost_keeps_the_frame_readable_until_the_next_one(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_LAZY, 32);
	struct vt_vm *a = vt_vm_new(fx, 1, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_DEFAULT);
	struct vt_rx rx;
	uint8_t page[VDEMUX_PAGE_SIZE];
	uint32_t first_page;
	struct vdemux_engine_stats e0;

	vt_post_range(fx, a, 0, 1);
	deliver_one(fx, a, 1500, &rx);
	first_page = vt_page_at(fx, a, vt_gpa(a, 0));
	e0 = vt_stats(fx);
	vt_post_range(fx, a, 0, 1);
	assert_int_equal(vt_stats(fx).pages_free, e0.pages_free);
	assert_int_equal(vt_guest_read_page(fx, 0, a, vt_gpa(a, 0), page), 0);
	assert_int_equal(page[VT_FRAME_SEQ_OFF + 3], (uint8_t)rx.seq);
	assert_int_equal(vt_page_at(fx, a, vt_gpa(a, 0)), first_page);
	deliver_one(fx, a, 700, &rx);
	assert_int_not_equal(vt_page_at(fx, a, vt_gpa(a, 0)), first_page);
	assert_int_equal(vt_stats(fx).harvests, e0.harvests + 1);
	vt_check(fx);
}

static void test_release_of_held_and_filled_slots_makes_holes_and_pools_pages(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vt_vm *a = vt_vm_new(fx, 4, 0, VDEMUX_HARVEST_DEFAULT);
	struct vt_rx rx;
	uint64_t g[2];
	struct vdemux_engine_stats e0, e1;
	struct vdemux_vm_stats v0, v1;

	vt_post_range(fx, a, 0, 1);    /* slot 0 posted (hole), 1..3 held */
	deliver_one(fx, a, 1200, &rx); /* slot 0 filled */
	guest_scribble(fx, a, 2, 0x42);
	g[0] = vt_gpa(a, 0); /* filled */
	g[1] = vt_gpa(a, 2); /* held */
	e0 = vt_stats(fx);
	v0 = vt_vm_stats(fx, a);
	assert_int_equal(vdemux_vm_release(fx->eng, a->id, g, 2), 2);
	e1 = vt_stats(fx);
	v1 = vt_vm_stats(fx, a);
	assert_true(vt_guest_hole(fx, a, g[0]));
	assert_true(vt_guest_hole(fx, a, g[1]));
	assert_false(vt_guest_hole(fx, a, vt_gpa(a, 1)));
	assert_int_equal(e1.pages_free, e0.pages_free + 2);
	assert_int_equal(v1.held, v0.held - 2);
	assert_int_equal(v1.posted, v0.posted); /* released, not posted */
	vt_check(fx);
	/* a released slot can be posted and filled again */
	vt_post_range(fx, a, 2, 1);
	deliver_one(fx, a, 64, &rx);
	assert_int_equal(rx.gpa[0], g[1]);
	vt_check(fx);
}

static void test_release_batches_unmaps_in_one_invalidation(void **state)
{
	struct vt_fx *fx = fx_engine(state, VDEMUX_HARVEST_EAGER, 32);
	struct vt_vm *a = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_DEFAULT);
	uint64_t g[8];
	struct vdemux_sim_stats s0, s1;

	for (uint32_t i = 0; i < 8; i++)
		g[i] = vt_gpa(a, i);
	s0 = sim_stats(fx, 0);
	assert_int_equal(vdemux_vm_release(fx->eng, a->id, g, 8), 8);
	s1 = sim_stats(fx, 0);
	assert_int_equal(s1.unmaps - s0.unmaps, 8);
	assert_int_equal(s1.invalidations - s0.invalidations, 1);
	assert_int_equal(vt_stats(fx).pages_free, 32);
	vt_check(fx);
}

static void test_post_and_release_update_every_stacked_backend(void **state)
{
	struct vt_fx_opts o = {.nbe = 2};
	struct vt_fx *fx;
	struct vt_vm *a;
	struct vt_rx rx;
	uint64_t g;

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 32, .copy = VDEMUX_COPY_NEVER);
	fx = vt_fx_state(state, &o);
	a = vt_vm_new(fx, 4, 0, VDEMUX_HARVEST_DEFAULT);
	vt_check(fx); /* both tables populated alike */
	vt_post_range(fx, a, 0, 2);
	assert_int_equal(vt_translate(fx, 0, a, vt_gpa(a, 0)), VDEMUX_NO_PAGE);
	assert_int_equal(vt_translate(fx, 1, a, vt_gpa(a, 0)), VDEMUX_NO_PAGE);
	deliver_one(fx, a, 5000, &rx); /* read back through both tables */
	vt_check(fx);
	g = vt_gpa(a, 3);
	assert_int_equal(vdemux_vm_release(fx->eng, a->id, &g, 1), 1);
	assert_int_equal(vt_translate(fx, 0, a, g), VDEMUX_NO_PAGE);
	assert_int_equal(vt_translate(fx, 1, a, g), VDEMUX_NO_PAGE);
	vt_check(fx);
}

static void test_vm_on_one_of_two_backends_touches_only_that_one(void **state)
{
	struct vt_fx_opts o = {.nbe = 2};
	struct vt_fx *fx;
	struct vdemux_vm_opts vo;
	struct vt_vm *a;
	struct vdemux_sim_stats s0, s1;

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 32);
	fx = vt_fx_state(state, &o);
	s0 = sim_stats(fx, 0);
	vo = vt_vm_opts(fx, 4);
	vo.backends = &fx->be[1];
	vo.n_backends = 1;
	a = vt_vm_add(fx, &vo);
	vt_post_range(fx, a, 0, 4);
	s1 = sim_stats(fx, 0);
	assert_int_equal(s1.batches, s0.batches);
	assert_int_equal(vdemux_sim_translate(fx->sim[0], a->id, vt_gpa(a, 0), &(uint32_t){0}), -ENOENT);
	vt_check(fx);
}

#define T(f) cmocka_unit_test_setup_teardown(f, vt_setup, vt_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_populated_vm_backs_every_slot_with_its_own_zeroed_page),
		T(test_populating_costs_one_map_batch),
		T(test_unpopulated_vm_starts_with_holes),
		T(test_vm_add_fails_with_enobufs_when_pool_cannot_populate),
		T(test_vm_ids_are_distinct_and_never_zero),
		T(test_max_vms_is_enforced_with_enospc),
		T(test_default_max_vms_is_64),
		T(test_eager_post_unmaps_clears_and_pools_the_page),
		T(test_eager_post_unmaps_in_one_batch),
		T(test_posting_a_hole_calls_no_backend),
		T(test_engine_default_harvest_is_eager),
		T(test_lazy_post_keeps_the_slot_mapped_with_guest_data),
		T(test_lazy_flip_swaps_the_old_page_for_the_frame_and_pools_it_cleared),
		T(test_lazy_flip_without_remap_unmaps_then_maps),
		T(test_vm_harvest_policy_overrides_the_engine),
		T(test_vm_lazy_policy_overrides_an_eager_engine),
		T(test_each_posted_buffer_takes_one_frame),
		T(test_eager_repost_of_a_filled_slot_releases_its_page),
		T(test_lazy_repost_keeps_the_frame_readable_until_the_next_one),
		T(test_release_of_held_and_filled_slots_makes_holes_and_pools_pages),
		T(test_release_batches_unmaps_in_one_invalidation),
		T(test_post_and_release_update_every_stacked_backend),
		T(test_vm_on_one_of_two_backends_touches_only_that_one),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
