/* SPDX-License-Identifier: MIT */
/* Zero-copy submit under backend failures at every injection point: jumbo
 * chains flipped from the device's own pages, broadcast replicas, eager,
 * lazy and unpopulated VMs, one or two stacked backends, with and without a
 * remap operation. After every step the invariants hold and no page is left
 * FILLING. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "vt.h"

static unsigned one(unsigned nbe, unsigned which, unsigned ops, enum vt_fault_mode mode, bool sticky,
		    bool no_remap, unsigned nth)
{
	struct vt_fx_opts fo = {.nbe = nbe, .fault = true, .no_remap = no_remap};
	struct vt_fx *fx;
	struct vt_vm *vm[3];
	unsigned fired;

	fo.eng = VDEMUX_OPTS(vdemux_engine_opts, .npages = 96, .copy = VDEMUX_COPY_NEVER);
	fx = vt_fx_new(&fo);
	for (int v = 0; v < 3; v++) {
		struct vdemux_vm_opts o = vt_vm_opts(fx, 12);
		o.harvest = v == 1 ? VDEMUX_HARVEST_LAZY : VDEMUX_HARVEST_EAGER;
		if (v == 2)
			o.flags = VDEMUX_VM_F_UNPOPULATED;
		vm[v] = vt_vm_add(fx, &o);
	}
	vt_fault_arm(fx->fault[which], ops, mode, nth, -EIO, sticky);
	for (int round = 0; round < 2; round++) {
		for (int v = 0; v < 3; v++)
			for (uint32_t i = 0; i < 12; i++) {
				uint64_t g = vt_gpa(vm[v], i);
				(void)vdemux_vm_post_rx(fx->eng, vm[v]->id, &g, 1);
			}
		vt_check(fx);
		struct vdemux_rx_buf b[16];
		int n = vdemux_rx_alloc(fx->eng, b, 9);
		assert_int_equal(n, 9);
		/* frame 1: 3-page jumbo to vm0; frame 2: 2-page broadcast; frames 3..6: 1 page each */
		uint8_t mac[6], buf[3 * 4096];
		vt_mac(vm[0]->id, mac);
		vt_frame_fill(buf, 9000, mac, ++fx->next_seq);
		for (int k = 0; k < 3; k++) {
			memcpy(b[k].data, buf + k * 4096, 4096);
			b[k].len = k < 2 ? 4096 : 9000 - 8192;
			b[k].flags = k < 2 ? VDEMUX_RXBUF_MORE : 0;
		}
		vt_frame_fill(buf, 5000, vt_bcast, ++fx->next_seq);
		for (int k = 0; k < 2; k++) {
			memcpy(b[3 + k].data, buf + k * 4096, 4096);
			b[3 + k].len = k ? 5000 - 4096 : 4096;
			b[3 + k].flags = k ? 0 : VDEMUX_RXBUF_MORE;
		}
		for (int k = 5; k < 9; k++) {
			vt_mac(vm[k % 3]->id, mac);
			vt_frame_fill(b[k].data, 3000, mac, ++fx->next_seq);
			b[k].len = 3000;
			b[k].flags = 0;
		}
		assert_int_equal(vdemux_rx_submit(fx->eng, b, 9), 9);
		vt_check(fx);
		struct vdemux_engine_stats st = vt_stats(fx);
		assert_int_equal(st.pages_filling, 0);
		for (int v = 0; v < 3; v++) {
			struct vt_rx rx[16];
			(void)vt_guest_take(fx, vm[v], rx, 16);
		}
		vt_check(fx);
	}
	vt_vm_remove(fx, vm[2]);
	vt_check(fx);
	fired = fx->fault[which]->fired;
	vt_fault_disarm(fx->fault[which]);
	vt_fx_free(fx);
	return fired;
}

static void sweep(unsigned nbe, unsigned which, unsigned ops, enum vt_fault_mode mode, bool sticky,
		  bool no_remap)
{
	unsigned nth, runs = 0;
	for (nth = 1; nth < 500 && one(nbe, which, ops, mode, sticky, no_remap, nth); nth++)
		runs++;
	/* The sweep injected something, and ended because the nth failure was
	 * past every call the scenario makes, not at the cap. */
	assert_true(runs > 0);
	assert_true(nth < 500);
	print_message("nbe=%u which=%u mode=%d sticky=%d no_remap=%d: %u injection points\n", nbe, which,
		      mode, sticky, no_remap, runs);
}

static void test_zero_copy_submit_loses_no_page_at_any_injected_failure(void **state)
{
	(void)state;
	sweep(1, 0, VT_OP_ALL, VT_FAULT_ENTRY, false, false);
	sweep(1, 0, VT_OP_ALL, VT_FAULT_CALL, true, false);
	sweep(2, 1, VT_OP_ALL, VT_FAULT_ENTRY, false, false);
	sweep(2, 0, VT_OP_ALL, VT_FAULT_ENTRY, false, true);
	sweep(2, 1, VT_OP_ALL, VT_FAULT_ENTRY, true, true);
	sweep(2, 0, VT_OP_ALL, VT_FAULT_CALL, true, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_zero_copy_submit_loses_no_page_at_any_injected_failure)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
