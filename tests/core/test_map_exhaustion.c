/* SPDX-License-Identifier: MIT */
/*
 * A backend that runs out of mappings: a remap refused with -ENOMEM or
 * -ENOSPC (KVM's vm.max_map_count, VFIO's dma_entry_limit) while the posted
 * buffer still holds the VM's own page is completed as a copy into that
 * page, counted in fallback_copies, and nothing is dropped. Other errors,
 * and refused maps into holes (no buffer of the VM's to copy into), still
 * drop the frame as before. The fault-injecting wrapper stands in for the
 * backend; the kernel lab test kernel/kvm_maplimit does it for real.
 */
#include <errno.h>
#include <string.h>

#include "vt.h"

static struct vt_fx *fx_faulty(void **state, enum vdemux_harvest h, bool remap)
{
	struct vt_fx_opts fo = {.fault = true, .no_remap = !remap};

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 64, .harvest = h, .copy = VDEMUX_COPY_NEVER);
	return vt_fx_state(state, &fo);
}

/* Send @n frames of @len bytes to @vm; every one must be delivered. */
static void send(struct vt_fx *fx, struct vt_vm *vm, unsigned n, uint32_t len)
{
	vt_send(fx, vm, n, len, (int)n);
	vt_check(fx);
}

static uint64_t drops(const struct vdemux_engine_stats *s)
{
	uint64_t n = 0;

	for (int i = 0; i < VDEMUX_DROP__COUNT; i++)
		n += s->drops[i];
	return n;
}

static void refused_remap_is_copied(void **state, int err)
{
	struct vt_fx *fx = fx_faulty(state, VDEMUX_HARVEST_LAZY, true);
	struct vt_vm *a = vt_vm_posted(fx, 4, 0);
	uint32_t before[4];
	struct vt_rx rx[4];
	struct vdemux_engine_stats s;
	struct vdemux_vm_stats vs;

	for (uint32_t i = 0; i < 4; i++)
		before[i] = vt_page_at(fx, a, vt_gpa(a, i));
	vt_fault_arm(fx->fault[0], VT_OP_REMAP, VT_FAULT_CALL, 1, err, true);
	send(fx, a, 4, 1500);
	assert_int_equal(vt_guest_take(fx, a, rx, 4), 4);
	for (int i = 0; i < 4; i++)
		assert_true(rx[i].copied);
	/* the buffers are still the VM's own pages */
	for (uint32_t i = 0; i < 4; i++)
		assert_int_equal(vt_page_at(fx, a, vt_gpa(a, i)), before[i]);
	s = vt_stats(fx);
	vs = vt_vm_stats(fx, a);
	assert_int_equal(drops(&s), 0);
	assert_int_equal(s.fallback_copies, 4);
	assert_int_equal(vs.fallback_copies, 4);
	assert_int_equal(s.copies, 4);
	assert_int_equal(s.flips, 0);
	assert_true(s.backend_errors >= 1);
	assert_true(fx->fault[0]->fired >= 1);
}

static void test_remap_refused_with_enomem_is_copied_not_dropped(void **state)
{
	refused_remap_is_copied(state, -ENOMEM);
}

static void test_remap_refused_with_enospc_is_copied_not_dropped(void **state)
{
	refused_remap_is_copied(state, -ENOSPC);
}

/* The backend applies a prefix of the batch: those are flips, the refused
 * entry and the rest of its batch are copies. */
static void test_remap_refused_mid_batch_copies_the_rest_of_the_batch(void **state)
{
	struct vt_fx *fx = fx_faulty(state, VDEMUX_HARVEST_LAZY, true);
	struct vt_vm *a = vt_vm_posted(fx, 6, 0);
	struct vt_rx rx[6];
	struct vdemux_engine_stats s;
	unsigned copied = 0;

	vt_fault_arm(fx->fault[0], VT_OP_REMAP, VT_FAULT_ENTRY, 3, -ENOMEM, false);
	send(fx, a, 6, 2000);
	assert_int_equal(vt_guest_take(fx, a, rx, 6), 6);
	for (int i = 0; i < 6; i++) {
		assert_int_equal(rx[i].copied, i >= 2);
		copied += rx[i].copied;
	}
	s = vt_stats(fx);
	assert_int_equal(drops(&s), 0);
	assert_int_equal(copied, 4);
	assert_int_equal(s.fallback_copies, 4);
	assert_int_equal(s.flips, 2);
}

/* A frame of three pages whose second page's remap is refused: delivered
 * whole, as one chain, part flipped and part copied. */
static void test_jumbo_frame_with_one_page_refused_is_delivered_whole(void **state)
{
	struct vt_fx *fx = fx_faulty(state, VDEMUX_HARVEST_LAZY, true);
	struct vt_vm *a = vt_vm_posted(fx, 4, 0);
	struct vt_rx rx[2];
	struct vdemux_engine_stats s;

	vt_fault_arm(fx->fault[0], VT_OP_REMAP, VT_FAULT_ENTRY, 2, -ENOSPC, false);
	send(fx, a, 1, 9000);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 1);
	assert_int_equal(rx[0].len, 9000);
	assert_int_equal(rx[0].ncpl, 3);
	s = vt_stats(fx);
	assert_int_equal(drops(&s), 0);
	assert_int_equal(s.flips, 1);
	assert_int_equal(s.fallback_copies, 2);
}

/* The same through the zero-copy path: the device's own pages were to be
 * flipped; they go back to the pool, none is left FILLING. */
static void test_zero_copy_frame_refused_is_copied_and_its_pages_freed(void **state)
{
	struct vt_fx *fx = fx_faulty(state, VDEMUX_HARVEST_LAZY, true);
	struct vt_vm *a = vt_vm_posted(fx, 4, 0);
	struct vdemux_rx_buf b[2];
	uint8_t mac[6], buf[2 * 4096];
	struct vt_rx rx[2];
	struct vdemux_engine_stats s;
	uint64_t free0;

	vt_fault_arm(fx->fault[0], VT_OP_REMAP, VT_FAULT_CALL, 1, -ENOMEM, true);
	free0 = vt_stats(fx).pages_free;
	assert_int_equal(vdemux_rx_alloc(fx->eng, b, 2), 2);
	vt_mac(a->id, mac);
	vt_frame_fill(buf, 6000, mac, ++fx->next_seq);
	memcpy(b[0].data, buf, 4096);
	memcpy(b[1].data, buf + 4096, 6000 - 4096);
	b[0].len = 4096;
	b[0].flags = VDEMUX_RXBUF_MORE;
	b[1].len = 6000 - 4096;
	b[1].flags = 0;
	assert_int_equal(vdemux_rx_submit(fx->eng, b, 2), 2);
	vt_check(fx);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 1);
	assert_true(rx[0].copied);
	s = vt_stats(fx);
	assert_int_equal(s.pages_filling, 0);
	assert_int_equal(s.pages_free, free0);
	assert_int_equal(s.fallback_copies, 2);
	assert_int_equal(drops(&s), 0);
}

/* Not for lack of resources: the frame is dropped as before. */
static void test_remap_refused_with_eio_is_dropped(void **state)
{
	struct vt_fx *fx = fx_faulty(state, VDEMUX_HARVEST_LAZY, true);
	struct vt_vm *a = vt_vm_posted(fx, 2, 0);
	struct vdemux_engine_stats s;
	struct vt_rx rx[2];

	vt_fault_arm(fx->fault[0], VT_OP_REMAP, VT_FAULT_CALL, 1, -EIO, true);
	send(fx, a, 2, 1500);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 0);
	s = vt_stats(fx);
	assert_int_equal(s.drops[VDEMUX_DROP_BACKEND], 2);
	assert_int_equal(s.fallback_copies, 0);
	assert_int_equal(vt_vm_stats(fx, a).posted, 2);
}

/* A hole (eager harvest) holds no page of the VM's to copy into. */
static void test_map_into_hole_refused_with_enomem_is_dropped(void **state)
{
	struct vt_fx *fx = fx_faulty(state, VDEMUX_HARVEST_EAGER, true);
	struct vt_vm *a = vt_vm_posted(fx, 2, 0);
	struct vdemux_engine_stats s;
	struct vt_rx rx[2];

	vt_fault_arm(fx->fault[0], VT_OP_MAP, VT_FAULT_CALL, 1, -ENOMEM, true);
	send(fx, a, 2, 1500);
	assert_int_equal(vt_guest_take(fx, a, rx, 2), 0);
	s = vt_stats(fx);
	assert_int_equal(s.drops[VDEMUX_DROP_BACKEND], 2);
	assert_int_equal(s.fallback_copies, 0);
	assert_true(vt_guest_hole(fx, a, vt_gpa(a, 0)));
}

/* Without a remap operation the old page leaves the tables before the new
 * one is mapped: once it is gone there is no buffer of the VM's to copy
 * into, so a refused map drops the frame (and the slot is posted again). */
static void test_refused_map_after_unmap_without_remap_is_dropped(void **state)
{
	struct vt_fx *fx = fx_faulty(state, VDEMUX_HARVEST_LAZY, false);
	struct vt_vm *a = vt_vm_posted(fx, 2, 0);
	struct vdemux_engine_stats s;

	vt_fault_arm(fx->fault[0], VT_OP_MAP, VT_FAULT_CALL, 1, -ENOMEM, true);
	send(fx, a, 2, 1500);
	s = vt_stats(fx);
	assert_int_equal(s.drops[VDEMUX_DROP_BACKEND], 2);
	assert_int_equal(s.fallback_copies, 0);
	assert_int_equal(vt_vm_stats(fx, a).posted, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_remap_refused_with_enomem_is_copied_not_dropped,
						vt_setup, vt_teardown),
		cmocka_unit_test_setup_teardown(test_remap_refused_with_enospc_is_copied_not_dropped,
						vt_setup, vt_teardown),
		cmocka_unit_test_setup_teardown(test_remap_refused_mid_batch_copies_the_rest_of_the_batch,
						vt_setup, vt_teardown),
		cmocka_unit_test_setup_teardown(test_jumbo_frame_with_one_page_refused_is_delivered_whole,
						vt_setup, vt_teardown),
		cmocka_unit_test_setup_teardown(test_zero_copy_frame_refused_is_copied_and_its_pages_freed,
						vt_setup, vt_teardown),
		cmocka_unit_test_setup_teardown(test_remap_refused_with_eio_is_dropped, vt_setup,
						vt_teardown),
		cmocka_unit_test_setup_teardown(test_map_into_hole_refused_with_enomem_is_dropped,
						vt_setup, vt_teardown),
		cmocka_unit_test_setup_teardown(test_refused_map_after_unmap_without_remap_is_dropped,
						vt_setup, vt_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
