/* SPDX-License-Identifier: MIT */
/*
 * Removing a VM: every page it held or had mapped goes back to the pool
 * cleared, its tables are detached, its completions discarded, its id
 * forgotten by the engine and the classifier, other VMs untouched.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vt.h"

static struct vt_fx *fx_with(void **state, uint32_t npages, bool fault, unsigned nbe)
{
	struct vt_fx_opts o = {.fault = fault, .nbe = nbe};

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = npages, .copy = VDEMUX_COPY_NEVER);
	return vt_fx_state(state, &o);
}

static void scribble_all(struct vt_fx *fx, struct vt_vm *vm, uint8_t byte)
{
	uint8_t page[VDEMUX_PAGE_SIZE];

	memset(page, byte, sizeof(page));
	for (uint32_t i = 0; i < vm->rx_pages; i++)
		(void)vdemux_sim_write(fx->sim[vm->be_idx[0]], vm->id, vt_gpa(vm, i), page, sizeof(page));
}

static void test_remove_returns_held_flipped_and_posted_pages_cleared(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, false, 1);
	struct vt_vm *a = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_EAGER);
	struct vt_vm *b = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_LAZY);
	struct vdemux_engine_stats s;

	vt_post_range(fx, a, 0, 4);
	vt_post_range(fx, b, 0, 4); /* lazy: still mapped */
	vt_send(fx, a, 3, 2000, 3); /* 3 flipped pages, not yet polled */
	vt_send(fx, b, 2, 5000, 2); /* 4 flipped pages */
	scribble_all(fx, a, 0xa1);  /* held, filled: all dirty */
	scribble_all(fx, b, 0xb1);
	vt_check(fx);

	vt_vm_remove(fx, a);
	vt_check(fx); /* the check: FREE pages are zero */
	s = vt_stats(fx);
	assert_int_equal(s.pages_assigned, 8); /* only b's window */
	assert_int_equal(s.pages_free, 56);

	vt_vm_remove(fx, b);
	vt_check(fx);
	s = vt_stats(fx);
	assert_int_equal(s.pages_assigned, 0);
	assert_int_equal(s.pages_free, 64);
}

static void test_removed_vm_is_detached_from_every_backend(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, true, 2);
	struct vt_vm *a = vt_vm_new(fx, 4, 0, VDEMUX_HARVEST_EAGER);
	uint32_t page;

	assert_int_equal(fx->fault[0]->attached, 1);
	assert_int_equal(fx->fault[1]->attached, 1);
	vt_vm_remove(fx, a);
	assert_int_equal(fx->fault[0]->attached, 0);
	assert_int_equal(fx->fault[1]->attached, 0);
	assert_int_equal(vdemux_sim_translate(fx->sim[0], a->id, a->rx_base, &page), -ENOENT);
	assert_int_equal(vdemux_sim_translate(fx->sim[1], a->id, a->rx_base, &page), -ENOENT);
	vt_check(fx);
}

static void test_remove_discards_pending_completions(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, false, 1);
	struct vt_vm *a = vt_vm_new(fx, 4, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_EAGER);
	struct vdemux_completion c[4];
	vdemux_vm_id id = a->id;

	vt_post_range(fx, a, 0, 4);
	vt_send(fx, a, 3, 100, 3);
	assert_int_equal(vt_vm_stats(fx, a).pending, 3);
	vt_vm_remove(fx, a);
	assert_int_equal(vdemux_vm_poll(fx->eng, id, c, 4), -ENOENT);
	vt_check(fx);
}

static void test_removed_id_is_unknown_to_every_call(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, false, 1);
	struct vt_vm *a = vt_vm_new(fx, 4, 0, VDEMUX_HARVEST_EAGER);
	uint64_t g = vt_gpa(a, 0);
	struct vdemux_vm_stats vs;
	struct vdemux_completion c;
	vdemux_vm_id id = a->id;

	vt_vm_remove(fx, a);
	assert_int_equal(vdemux_vm_post_rx(fx->eng, id, &g, 1), -ENOENT);
	assert_int_equal(vdemux_vm_release(fx->eng, id, &g, 1), -ENOENT);
	assert_int_equal(vdemux_vm_poll(fx->eng, id, &c, 1), -ENOENT);
	assert_int_equal(vdemux_vm_stats(fx->eng, id, &vs, sizeof(vs)), -ENOENT);
	assert_int_equal(vdemux_vm_take_signals(fx->eng, id), -ENOENT);
	assert_int_equal(vdemux_vm_request_release(fx->eng, id), -ENOENT);
	assert_int_equal(vdemux_vm_remove(fx->eng, id), -ENOENT);
	vt_check(fx);
}

static void test_remove_tells_the_classifier(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, false, 1);
	struct vt_vm *a = vt_vm_new(fx, 4, 0, VDEMUX_HARVEST_EAGER);
	vdemux_vm_id id = a->id;

	assert_int_equal(fx->cls.removed_calls, 0);
	vt_vm_remove(fx, a);
	assert_int_equal(fx->cls.removed_calls, 1);
	assert_int_equal(fx->cls.last_removed, id);
}

static void test_frames_for_a_removed_vm_are_dropped(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, false, 1);
	struct vt_vm *a = vt_vm_new(fx, 4, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_EAGER);
	struct vdemux_engine_stats s0;

	vt_post_range(fx, a, 0, 4);
	vt_vm_remove(fx, a);
	s0 = vt_stats(fx);
	vt_send(fx, a, 2, 700, 2); /* the test classifier still names it */
	assert_int_equal(vt_stats(fx).drops[VDEMUX_DROP_UNKNOWN_VM],
			 s0.drops[VDEMUX_DROP_UNKNOWN_VM] + 2);
	assert_int_equal(vt_stats(fx).pages_free, 32);
	vt_check(fx);
}

static void test_builtin_l2_forgets_a_removed_vm(void **state)
{
	struct vt_fx_opts o = {.builtin_cls = true};
	struct vt_fx *fx;
	struct vt_vm *a;
	uint8_t mac[6];
	vdemux_vm_id id;

	o.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 16);
	fx = vt_fx_state(state, &o);
	a = vt_vm_new(fx, 2, VDEMUX_VM_F_UNPOPULATED, VDEMUX_HARVEST_EAGER);
	id = a->id;
	vt_mac(id, mac);
	assert_int_equal(vdemux_l2_lookup(vdemux_engine_l2(fx->eng), mac, 1), id);
	vt_vm_remove(fx, a);
	assert_int_equal(vdemux_l2_lookup(vdemux_engine_l2(fx->eng), mac, 1), 0);
	vt_check(fx);
}

static void test_remove_leaves_other_vms_untouched(void **state)
{
	struct vt_fx *fx = fx_with(state, 64, false, 1);
	struct vt_vm *a = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_EAGER);
	struct vt_vm *b = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_EAGER);
	uint32_t pages[8];
	struct vdemux_vm_stats before, after;
	struct vt_rx rx[4];

	vt_post_range(fx, b, 0, 4);
	vt_send(fx, b, 2, 1000, 2);
	for (uint32_t i = 0; i < 8; i++)
		pages[i] = vt_page_at(fx, b, vt_gpa(b, i));
	before = vt_vm_stats(fx, b);
	vt_post_range(fx, a, 0, 8);
	vt_send(fx, a, 2, 1000, 2);
	vt_vm_remove(fx, a);
	after = vt_vm_stats(fx, b);
	assert_memory_equal(&before, &after, sizeof(before));
	for (uint32_t i = 0; i < 8; i++)
		assert_int_equal(vt_page_at(fx, b, vt_gpa(b, i)), pages[i]);
	assert_int_equal(vt_guest_take(fx, b, rx, 4), 2);
	vt_check(fx);
}

static void test_pages_of_a_removed_vm_populate_the_next(void **state)
{
	struct vt_fx *fx = fx_with(state, 8, false, 1);
	struct vt_vm *a = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_EAGER);
	struct vdemux_vm_opts o;
	vdemux_vm_id id = 0;
	uint8_t page[VDEMUX_PAGE_SIZE];
	struct vt_vm *b;

	scribble_all(fx, a, 0x7e);
	o = vt_vm_opts(fx, 8);
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -ENOBUFS); /* pool empty */
	vt_vm_remove(fx, a);
	b = vt_vm_add(fx, &o);
	for (uint32_t i = 0; i < 8; i++) {
		assert_int_equal(vt_guest_read_page(fx, 0, b, vt_gpa(b, i), page), 0);
		assert_true(vt_all_zero(page, sizeof(page)));
	}
	vt_check(fx);
}

/* A page a table failed to unmap may still be reachable by the removed VM's
 * device or vCPUs: it must never be handed to anyone again. */
static void test_remove_quarantines_each_page_a_backend_failed_to_unmap(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, true, 1);
	struct vt_vm *a = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_EAGER);
	struct vdemux_engine_stats s0, s1;

	vt_post_range(fx, a, 0, 4);
	vt_send(fx, a, 2, 1500, 2);
	scribble_all(fx, a, 0x13);
	s0 = vt_stats(fx);
	vt_fault_arm(fx->fault[0], VT_OP_UNMAP, VT_FAULT_CALL, 1, -EIO, true);
	vt_vm_remove(fx, a);
	vt_fault_disarm(fx->fault[0]);
	s1 = vt_stats(fx);
	/* 4 pages never posted + 2 flipped in: 6 held, every unmap fails */
	assert_int_equal(fx->fault[0]->fired, 6);
	assert_int_equal(s1.backend_errors, s0.backend_errors + 6);
	assert_int_equal(s1.pages_quarantined, 6);
	assert_int_equal(s1.pages_free, 32 - 6);
	assert_int_equal(s1.pages_assigned, 0);
	assert_int_equal(fx->fault[0]->attached, 0);
	vt_check(fx);
	/* none of them is lent out again */
	{
		struct vdemux_rx_buf b[32];
		int n = vdemux_rx_alloc(fx->eng, b, 32);

		assert_int_equal(n, 32 - 6);
		assert_int_equal(vdemux_rx_abort(fx->eng, b, (unsigned)n), n);
	}
}

static void test_remove_with_a_failing_second_backend_quarantines_only_its_failures(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, true, 2);
	struct vt_vm *a = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_LAZY);
	struct vdemux_engine_stats s;

	vt_post_range(fx, a, 0, 8);
	vt_send(fx, a, 3, 1500, 3);
	vt_fault_arm(fx->fault[1], VT_OP_ALL, VT_FAULT_ENTRY, 2, -EIO, true);
	vt_vm_remove(fx, a);
	s = vt_stats(fx);
	/* the first entry unmaps, every one from the second fails: 7 of 8 */
	assert_int_equal(fx->fault[1]->fired, 7);
	assert_int_equal(s.pages_quarantined, 7);
	assert_int_equal(s.pages_free, 32 - 7);
	vt_check(fx);
}

static void test_destroy_with_vms_holding_pages_frees_everything(void **state)
{
	struct vt_fx *fx = fx_with(state, 32, false, 2);
	struct vt_vm *a = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_EAGER);
	struct vt_vm *b = vt_vm_new(fx, 8, 0, VDEMUX_HARVEST_LAZY);
	struct vdemux_rx_buf lent[2];

	vt_post_range(fx, a, 0, 4);
	vt_post_range(fx, b, 0, 4);
	vt_send(fx, a, 2, 6000, 2);
	vt_send(fx, b, 1, 300, 1);
	assert_int_equal(vdemux_rx_alloc(fx->eng, lent, 2), 2);
	vt_check(fx);
	/* the teardown destroys it all; valgrind and ASan see the rest */
}

#define T(f) cmocka_unit_test_setup_teardown(f, vt_setup, vt_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_remove_returns_held_flipped_and_posted_pages_cleared),
		T(test_removed_vm_is_detached_from_every_backend),
		T(test_remove_discards_pending_completions),
		T(test_removed_id_is_unknown_to_every_call),
		T(test_remove_tells_the_classifier),
		T(test_frames_for_a_removed_vm_are_dropped),
		T(test_builtin_l2_forgets_a_removed_vm),
		T(test_remove_leaves_other_vms_untouched),
		T(test_pages_of_a_removed_vm_populate_the_next),
		T(test_remove_quarantines_each_page_a_backend_failed_to_unmap),
		T(test_remove_with_a_failing_second_backend_quarantines_only_its_failures),
		T(test_destroy_with_vms_holding_pages_frees_everything),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
