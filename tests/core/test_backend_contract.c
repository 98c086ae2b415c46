/* SPDX-License-Identifier: MIT */
/* A backend that breaks its contract is not trusted: a failure it reports
 * with a positive number reaches the caller as -EIO, never as a count. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "vt.h"

static struct vt_fx *fx_fault(void **state)
{
	struct vt_fx_opts fo = {.npages = 16, .fault = true};

	return vt_fx_state(state, &fo);
}

static void test_positive_return_from_unmap_makes_post_rx_eio_not_a_count(void **state)
{
	struct vt_fx *fx = fx_fault(state);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	struct vt_vm *a;
	uint64_t g[2];
	struct vt_snap *before;
	struct vdemux_engine_stats es;

	o.harvest = VDEMUX_HARVEST_EAGER;
	a = vt_vm_add(fx, &o);
	g[0] = vt_gpa(a, 0);
	g[1] = vt_gpa(a, 1);
	before = vt_snap_take(fx);
	vt_fault_arm(fx->fault[0], VT_OP_UNMAP, VT_FAULT_CALL, 1, 1, false);
	assert_int_equal(vdemux_vm_post_rx(fx->eng, a->id, g, 2), -EIO);
	assert_int_equal(fx->fault[0]->fired, 1);
	vt_fault_disarm(fx->fault[0]);
	es = vt_stats(fx);
	assert_int_equal(es.backend_errors, before->es.backend_errors + 1);
	assert_int_equal(vt_vm_stats(fx, a).posted, 0);
	assert_int_equal(vt_vm_stats(fx, a).held, 4);
	free(before);
	vt_check(fx);
}

static void test_positive_return_mid_batch_posts_only_the_applied_prefix(void **state)
{
	struct vt_fx *fx = fx_fault(state);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	struct vt_vm *a;
	uint64_t g[3];

	o.harvest = VDEMUX_HARVEST_EAGER;
	a = vt_vm_add(fx, &o);
	for (int i = 0; i < 3; i++)
		g[i] = vt_gpa(a, (uint32_t)i);
	/* The second entry fails with +7: the first was applied. */
	vt_fault_arm(fx->fault[0], VT_OP_UNMAP, VT_FAULT_ENTRY, 2, 7, false);
	assert_int_equal(vdemux_vm_post_rx(fx->eng, a->id, g, 3), 1);
	assert_int_equal(fx->fault[0]->fired, 1);
	vt_fault_disarm(fx->fault[0]);
	assert_int_equal(vt_vm_stats(fx, a).posted, 1);
	assert_int_equal(vt_vm_stats(fx, a).held, 3);
	assert_true(vt_guest_hole(fx, a, g[0]));
	assert_false(vt_guest_hole(fx, a, g[1]));
	vt_check(fx);
}

static void test_positive_return_from_map_makes_vm_add_eio_and_changes_nothing(void **state)
{
	struct vt_fx *fx = fx_fault(state);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	vdemux_vm_id id = 0;
	struct vt_snap *before = vt_snap_take(fx);

	vt_fault_arm(fx->fault[0], VT_OP_MAP, VT_FAULT_CALL, 1, 1, false);
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EIO);
	assert_int_equal(fx->fault[0]->fired, 1);
	vt_fault_disarm(fx->fault[0]);
	assert_int_equal(id, 0);
	assert_int_equal(vt_stats(fx).pages_free, before->es.pages_free);
	free(before);
	vt_check(fx);
}

static void test_positive_return_from_vm_attach_makes_vm_add_eio(void **state)
{
	struct vt_fx *fx = fx_fault(state);
	struct vdemux_vm_opts o = vt_vm_opts(fx, 4);
	vdemux_vm_id id = 0;

	fx->fault[0]->attach_err = 1;
	assert_int_equal(vdemux_vm_add(fx->eng, &id, &o), -EIO);
	fx->fault[0]->attach_err = 0;
	assert_int_equal(id, 0);
	assert_int_equal(vt_stats(fx).pages_free, 16);
	vt_check(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_positive_return_from_unmap_makes_post_rx_eio_not_a_count, vt_setup,
			vt_teardown),
		cmocka_unit_test_setup_teardown(
			test_positive_return_mid_batch_posts_only_the_applied_prefix, vt_setup,
			vt_teardown),
		cmocka_unit_test_setup_teardown(
			test_positive_return_from_map_makes_vm_add_eio_and_changes_nothing, vt_setup,
			vt_teardown),
		cmocka_unit_test_setup_teardown(test_positive_return_from_vm_attach_makes_vm_add_eio,
						vt_setup, vt_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
