/* SPDX-License-Identifier: MIT */
/*
 * A receive queue's interrupt as a callback into the VMM's device
 * (virtio_net.h, "Interrupting the guest"): the callback is called with
 * VDEMUX_SIG_RX and the queue's VM, once per engine call that published
 * used entries the guest wants an interrupt for, after those entries are
 * visible in the used ring (so a device may set its ISR status and raise its
 * interrupt from it), and not at all when the guest suppressed interrupts.
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <vdemux/vdemux.h>

#include "rqfx.h"

#define RAM_PAGES 1024u /* 4 MiB */
#define RAM ((uint64_t)RAM_PAGES * VDEMUX_PAGE_SIZE)
#define QSIZE 64u

struct irq_log {
	unsigned calls;
	unsigned reasons;
	vdemux_vm_id vm;
	uint16_t used_idx_seen; /* used->idx as the callback found it */
};

struct fx {
	struct rqfx r;
	vdemux_vnet_rxq *q;
	struct vng g;
	struct irq_log log;
	uint8_t mac[6];
};

static uint16_t used_idx(const struct fx *x)
{
	uint16_t v;
	memcpy(&v, x->r.ram + x->g.used_gpa + 2, 2);
	return le16toh(v);
}

/* The VMM's device: what it sees when the library calls it. */
static void device_irq(vdemux_vm_id vm, unsigned reasons, void *payload)
{
	struct fx *x = payload;
	x->log.calls++;
	x->log.reasons = reasons;
	x->log.vm = vm;
	x->log.used_idx_seen = used_idx(x);
}

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	assert_non_null(x);
	rqfx_init(&x->r, &(struct rqfx_opts){.ram_pages = RAM_PAGES});
	struct vdemux_vnet_rxq_opts qo = rqfx_rxq_opts(&x->r);
	qo.irq = (struct vdemux_signal){.kind = VDEMUX_SIGNAL_CALLBACK, .cb = device_irq, .payload = x};
	memcpy(x->mac, (uint8_t[6]){0x02, 0, 0, 0, 2, 1}, 6);
	x->q = rqfx_rxq_add(&x->r, &qo, x->mac);
	struct vng_opts vo = {.mode = VNG_MERGEABLE,
			      .qsize = QSIZE,
			      .features = VD_VIRTIO_NET_F_MRG_RXBUF | VD_VIRTIO_F_VERSION_1,
			      .mem_size = RAM};
	rqfx_driver_start(&x->r, x->q, &x->g, &vo);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	char msg[200];
	vdemux_vnet_rxq_destroy(x->q);
	vng_fini(&x->g);
	assert_int_equal(vdemux_engine_check(x->r.eng, msg, sizeof(msg)), 0);
	rqfx_fini(&x->r);
	free(x);
	return 0;
}

/* @n frames of 100 bytes for the guest, in one engine call. */
static void send_burst(struct fx *x, unsigned n)
{
	static uint8_t f[8][100];
	struct vdemux_frame fr[8];
	assert_true(n <= 8);
	for (unsigned i = 0; i < n; i++) {
		memset(f[i], (int)i, sizeof(f[i]));
		memcpy(f[i], x->mac, 6);
		memcpy(f[i] + 6, (uint8_t[6]){0x02, 0, 0, 0, 9, 9}, 6);
		f[i][12] = 0x08;
		f[i][13] = 0x00;
		fr[i] = (struct vdemux_frame){.data = f[i], .len = sizeof(f[i])};
	}
	assert_int_equal(vdemux_rx_burst(x->r.eng, fr, n), (int)n);
}

static void test_callback_runs_once_per_engine_call_with_rx_and_the_queues_vm(void **state)
{
	struct fx *x = *state;
	struct vdemux_vnet_rxq_stats st;

	x->log = (struct irq_log){0};
	send_burst(x, 4);
	assert_int_equal(x->log.calls, 1);
	assert_int_equal(x->log.reasons, VDEMUX_SIG_RX);
	assert_int_equal(x->log.vm, vdemux_vnet_rxq_vm(x->q));
	send_burst(x, 2);
	assert_int_equal(x->log.calls, 2);
	assert_int_equal(vdemux_vnet_rxq_stats(x->q, &st, sizeof(st)), 0);
	assert_int_equal(st.interrupts, 2);
}

static void test_used_entries_are_visible_when_the_callback_runs(void **state)
{
	struct fx *x = *state;
	uint16_t before = used_idx(x);

	x->log = (struct irq_log){0};
	send_burst(x, 3);
	assert_int_equal(x->log.calls, 1);
	/* What the guest's handler will find, the device found already. */
	assert_int_equal(x->log.used_idx_seen, used_idx(x));
	assert_int_equal((uint16_t)(x->log.used_idx_seen - before), 3);
}

static void test_no_callback_when_the_guest_suppressed_interrupts(void **state)
{
	struct fx *x = *state;
	struct vdemux_vnet_rxq_stats st;

	x->log = (struct irq_log){0};
	vng_disable_cb(&x->g);
	send_burst(x, 2);
	assert_int_equal(x->log.calls, 0);
	assert_int_equal(vdemux_vnet_rxq_stats(x->q, &st, sizeof(st)), 0);
	assert_int_equal(st.no_interrupt, 1);
	assert_int_equal(st.interrupts, 0);
	vng_enable_cb(&x->g);
	send_burst(x, 1);
	assert_int_equal(x->log.calls, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_callback_runs_once_per_engine_call_with_rx_and_the_queues_vm, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_used_entries_are_visible_when_the_callback_runs,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_callback_when_the_guest_suppressed_interrupts,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
