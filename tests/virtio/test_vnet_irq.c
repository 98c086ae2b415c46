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
#include <sys/mman.h>

#include <cmocka.h>

#include <vdemux/vdemux.h>

#include "vnet_guest.h"

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
	vdemux_arena *arena;
	vdemux_engine *eng;
	struct vdemux_backend *kvm;
	vdemux_vnet_rxq *q;
	uint8_t *ram;
	struct vng g;
	struct irq_log log;
	uint8_t mac[6];
};


static uint8_t *guest_at(void *payload, uint64_t gpa, uint64_t len)
{
	struct fx *x = payload;
	return gpa <= RAM && len <= RAM - gpa ? x->ram + gpa : NULL;
}

static uint16_t used_idx(const struct fx *x)
{
	uint16_t v;
	memcpy(&v, x->ram + x->g.used_gpa + 2, 2);
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
	struct vdemux_arena_opts ao = VDEMUX_OPTS(vdemux_arena_opts, .npages = RAM_PAGES + 256,
						  .kind = VDEMUX_ARENA_MEMFD);
	assert_int_equal(vdemux_arena_create(&x->arena, &ao), 0);
	struct vdemux_engine_opts eo = VDEMUX_OPTS(vdemux_engine_opts, .arena = x->arena);
	assert_int_equal(vdemux_engine_create(&x->eng, &eo), 0);
	x->ram = mmap(NULL, RAM, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(x->ram != MAP_FAILED);
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_gpa = 0, .ram_size = RAM,
						.ram_hva = x->ram);
	assert_int_equal(vdemux_kvm_create(&x->kvm, &ko), 0);
	assert_int_equal(vdemux_engine_add_backend(x->eng, x->kvm), 0);
	struct vdemux_vnet_rxq_opts qo = VDEMUX_OPTS(vdemux_vnet_rxq_opts, .ram = x->ram, .ram_size = RAM,
						     .backends = &x->kvm, .n_backends = 1);
	qo.irq = (struct vdemux_signal){.kind = VDEMUX_SIGNAL_CALLBACK, .cb = device_irq, .payload = x};
	assert_int_equal(vdemux_vnet_rxq_create(&x->q, x->eng, &qo), 0);
	memcpy(x->mac, (uint8_t[6]){0x02, 0, 0, 0, 2, 1}, 6);
	vdemux_l2 *l2 = vdemux_engine_l2(x->eng);
	assert_int_equal(vdemux_l2_vlan_join(l2, vdemux_vnet_rxq_vm(x->q), 1, 0), 0);
	assert_int_equal(vdemux_l2_add_mac(l2, vdemux_vnet_rxq_vm(x->q), x->mac, 1), 0);

	struct vng_mem m = {.at = guest_at, .payload = x};
	struct vng_opts vo = {.mode = VNG_MERGEABLE,
			      .qsize = QSIZE,
			      .features = VD_VIRTIO_NET_F_MRG_RXBUF | VD_VIRTIO_F_VERSION_1,
			      .mem_size = RAM};
	assert_int_equal(vng_init(&x->g, &m, &vo), 0);
	struct vd_vring_config rc = vng_ring_config(&x->g);
	struct vdemux_vnet_ring ring = VDEMUX_OPTS(vdemux_vnet_ring, .desc_gpa = rc.desc_gpa,
						   .avail_gpa = rc.avail_gpa, .used_gpa = rc.used_gpa,
						   .size = rc.size, .features = vo.features);
	assert_int_equal(vdemux_vnet_rxq_start(x->q, &ring), 0);
	vng_refill(&x->g);
	assert_true(vdemux_vnet_rxq_kick(x->q) > 0);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;
	char msg[200];
	vdemux_vnet_rxq_destroy(x->q);
	vng_fini(&x->g);
	assert_int_equal(vdemux_engine_check(x->eng, msg, sizeof(msg)), 0);
	vdemux_engine_destroy(x->eng);
	munmap(x->ram, RAM);
	vdemux_arena_destroy(x->arena);
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
	assert_int_equal(vdemux_rx_burst(x->eng, fr, n), (int)n);
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
