/* SPDX-License-Identifier: MIT */
/*
 * examples/vmm's PCI function (pci.c, virtio_net_dev.c) as a guest's
 * generic drivers see it through configuration mechanism #1: the command
 * register keeps INTx Disable (bit 10), which uio_pci_generic and vfio-pci
 * set and read back before they take a device; with it set the device's
 * interrupt raises no INTx (its irqfd stays quiet) but stays pending in the
 * ISR and the status register's interrupt bit, and clearing the bit again
 * delivers it. And MSI-X: the capability and its BAR, the legacy vector
 * registers and the device configuration after them once MSI-X is on, a
 * queue's interrupt on its own vector (none without one, and no INTx),
 * masked vectors held pending and sent at unmask; the MQ device's
 * max_virtqueue_pairs and queue count.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>
#include <linux/virtio_pci.h>

#include "vmm.h"

/* The parts of the VMM the device calls and this test does not link. */
void vmm_log(struct guest *g, const char *fmt, ...)
{
	(void)g;
	(void)fmt;
}

void vmm_switch(struct lane *l, struct guest *src, const uint8_t *const *frames, const uint32_t *lens,
		unsigned n)
{
	(void)l;
	(void)src;
	(void)frames;
	(void)lens;
	(void)n;
}

struct fixture {
	struct vmm v;
	struct guest *g;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->g = &f->v.guests[0];
	f->g->vmm = &f->v;
	assert_int_equal(pthread_mutex_init(&f->v.lane[0].lock, NULL), 0);
	f->g->vm_fd = -1; /* no KVM: the MSI-X vectors' irqfds are plain eventfds */
	f->g->cfg.mem = 64ull << 20;
	assert_int_equal(vnet_init(f->g, RX_MERGEABLE, 2), 0);
	f->g->net.irqfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	f->g->net.kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	f->g->net.ioev_fd[0] = f->g->net.ioev_fd[1] = -1;
	assert_true(f->g->net.irqfd >= 0 && f->g->net.kick_fd >= 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	for (unsigned v = 0; v < VNET_MSIX_VECTORS; v++)
		close(f->g->net.msix.irqfd[v]);
	vdemux_vnet_ctrl_destroy(f->g->net.ctrl);
	close(f->g->net.irqfd);
	close(f->g->net.kick_fd);
	free(f);
	return 0;
}

/* Configuration mechanism #1: select 00:<dev>.0 register @reg, then access
 * @size bytes of the data window at @reg's byte offset. */
static void cfg_select(struct guest *g, unsigned dev, unsigned reg)
{
	uint32_t a = 0x80000000u | dev << 11 | (reg & 0xfc);
	assert_int_equal(pci_io(g, 0xcf8, true, (uint8_t *)&a, 4), 1);
}

static uint32_t cfg_read(struct guest *g, unsigned dev, unsigned reg, unsigned size)
{
	uint32_t v = 0;
	cfg_select(g, dev, reg);
	assert_int_equal(pci_io(g, (uint16_t)(0xcfc + (reg & 3)), false, (uint8_t *)&v, size), 1);
	return v;
}

static void cfg_write(struct guest *g, unsigned dev, unsigned reg, uint32_t v, unsigned size)
{
	cfg_select(g, dev, reg);
	assert_int_equal(pci_io(g, (uint16_t)(0xcfc + (reg & 3)), true, (uint8_t *)&v, size), 1);
}

/* Pulses of the irqfd since the last call. */
static uint64_t irq_pulses(struct guest *g)
{
	uint64_t n = 0;
	if (read(g->net.irqfd, &n, sizeof n) != sizeof n) {
		assert_int_equal(errno, EAGAIN);
		return 0;
	}
	return n;
}

static uint8_t isr_read(struct guest *g)
{
	uint8_t v = 0;
	uint16_t port = (uint16_t)((g->net.bar0 & 0xfffcu) + VIRTIO_PCI_ISR);
	assert_int_equal(vnet_io(g, port, false, &v, 1), 1);
	return v;
}

static void test_command_keeps_intx_disable(void **state)
{
	struct fixture *f = *state;
	cfg_write(f->g, PCI_VNET_SLOT, 0x04, 0x0507, 2);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x04, 2), 0x0507);
	/* Bits the function does not implement read back as 0. */
	cfg_write(f->g, PCI_VNET_SLOT, 0x04, 0xffff, 2);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x04, 2), 0x0507);
	cfg_write(f->g, PCI_VNET_SLOT, 0x04, 0x0007, 4);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x04, 2), 0x0007);
}

static void test_interrupt_pulses_intx_when_enabled(void **state)
{
	struct fixture *f = *state;
	cfg_write(f->g, PCI_VNET_SLOT, 0x04, 0x0007, 2);
	vnet_interrupt(f->g);
	assert_int_equal(irq_pulses(f->g), 1);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x06, 2) & 0x8, 0x8);
	assert_int_equal(isr_read(f->g), 1);
	/* Reading the ISR acknowledged it: nothing pending any more. */
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x06, 2) & 0x8, 0);
}

static void test_intx_disable_keeps_line_quiet_until_cleared(void **state)
{
	struct fixture *f = *state;
	cfg_write(f->g, PCI_VNET_SLOT, 0x04, 0x0407, 2);
	vnet_interrupt(f->g);
	vnet_interrupt(f->g);
	assert_int_equal(irq_pulses(f->g), 0);
	/* Pending all the same: the status register's interrupt bit says so. */
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x06, 2) & 0x8, 0x8);
	/* Enabling INTx again delivers what waited, once. */
	cfg_write(f->g, PCI_VNET_SLOT, 0x04, 0x0007, 2);
	assert_int_equal(irq_pulses(f->g), 1);
	assert_int_equal(isr_read(f->g), 1);
}

static void test_intx_enable_with_nothing_pending_is_quiet(void **state)
{
	struct fixture *f = *state;
	cfg_write(f->g, PCI_VNET_SLOT, 0x04, 0x0407, 2);
	cfg_write(f->g, PCI_VNET_SLOT, 0x04, 0x0007, 2);
	assert_int_equal(irq_pulses(f->g), 0);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x06, 2) & 0x8, 0);
}

/* ---- MSI-X ---- */

static uint64_t vec_pulses(struct guest *g, unsigned v)
{
	uint64_t n = 0;
	if (read(g->net.msix.irqfd[v], &n, sizeof n) != sizeof n)
		return 0;
	return n;
}

static void bar1_write(struct guest *g, uint32_t off, uint32_t val)
{
	assert_int_equal(vnet_mmio(g, VNET_BAR1_GPA + off, true, (uint8_t *)&val, 4), 1);
}

static uint32_t bar1_read(struct guest *g, uint32_t off)
{
	uint32_t v = 0;
	assert_int_equal(vnet_mmio(g, VNET_BAR1_GPA + off, false, (uint8_t *)&v, 4), 1);
	return v;
}

static uint16_t reg_io(struct guest *g, unsigned off, bool out, uint16_t val, unsigned size)
{
	uint16_t port = (uint16_t)((g->net.bar0 & 0xfffcu) + off);
	assert_int_equal(vnet_io(g, port, out, (uint8_t *)&val, size), 1);
	return val;
}

/* MSI-X on, memory decoding on, every entry with a message and unmasked. */
static void msix_on(struct guest *g)
{
	cfg_write(g, PCI_VNET_SLOT, 0x04, 0x0007, 2);
	for (unsigned v = 0; v < VNET_MSIX_VECTORS; v++) {
		bar1_write(g, 16 * v, 0xfee00000u);
		bar1_write(g, 16 * v + 8, 0x40 + v);
		bar1_write(g, 16 * v + 12, 0);
	}
	cfg_write(g, PCI_VNET_SLOT, MSIX_CAP + 2, 0x8000, 2);
}

static void test_msix_capability_and_bar(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x06, 2) & 0x10, 0x10);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x34, 1), MSIX_CAP);
	uint32_t cap = cfg_read(f->g, PCI_VNET_SLOT, MSIX_CAP, 4);
	assert_int_equal(cap & 0xff, 0x11);
	assert_int_equal((cap >> 16) & 0x7ff, VNET_MSIX_VECTORS - 1);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, MSIX_CAP + 4, 4), 1);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, MSIX_CAP + 8, 4), MSIX_PBA_OFF | 1);
	/* BAR 1 sizing: all ones reads back the size, then the address stays. */
	cfg_write(f->g, PCI_VNET_SLOT, 0x14, 0xffffffffu, 4);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x14, 4), ~(VNET_BAR1_SIZE - 1));
	cfg_write(f->g, PCI_VNET_SLOT, 0x14, VNET_BAR1_GPA, 4);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x14, 4), VNET_BAR1_GPA);
	/* Memory decoding off: the BAR is not the device's. */
	uint32_t v;
	assert_int_equal(vnet_mmio(f->g, VNET_BAR1_GPA, false, (uint8_t *)&v, 4), 0);
	msix_on(f->g);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, MSIX_CAP, 4) >> 31, 1);
	assert_int_equal(bar1_read(f->g, 16 + 8), 0x41);
}

static void test_mq_device_config_and_queues(void **state)
{
	struct fixture *f = *state;
	uint32_t feat = 0;
	uint16_t port = (uint16_t)((f->g->net.bar0 & 0xfffcu) + VIRTIO_PCI_HOST_FEATURES);
	assert_int_equal(vnet_io(f->g, port, false, (uint8_t *)&feat, 4), 1);
	assert_true(feat & (1u << 22)); /* MQ */
	assert_true(feat & (1u << 17)); /* CTRL_VQ */
	/* Without MSI-X the device configuration is at 20: max pairs at 20 + 8. */
	assert_int_equal(reg_io(f->g, VIRTIO_PCI_CONFIG_OFF(0) + 8, false, 0, 2), 2);
	msix_on(f->g);
	assert_int_equal(reg_io(f->g, VIRTIO_PCI_CONFIG_OFF(1) + 8, false, 0, 2), 2);
	assert_int_equal(reg_io(f->g, VIRTIO_PCI_CONFIG_OFF(1), false, 0, 1), f->g->cfg.mac[0]);
	/* Five queues: two pairs and the control queue; nothing past them. */
	for (unsigned q = 0; q < 6; q++) {
		reg_io(f->g, VIRTIO_PCI_QUEUE_SEL, true, (uint16_t)q, 2);
		uint16_t want = q < 4 ? VQ_MAX_SIZE : q == 4 ? VNET_CTRL_SIZE : 0;
		assert_int_equal(reg_io(f->g, VIRTIO_PCI_QUEUE_NUM, false, 0, 2), want);
	}
}

static void test_queue_interrupt_on_its_vector_not_intx(void **state)
{
	struct fixture *f = *state;
	msix_on(f->g);
	reg_io(f->g, VIRTIO_PCI_QUEUE_SEL, true, 2, 2);
	reg_io(f->g, VIRTIO_MSI_QUEUE_VECTOR, true, 3, 2);
	assert_int_equal(reg_io(f->g, VIRTIO_MSI_QUEUE_VECTOR, false, 0, 2), 3);
	vnet_queue_interrupt(f->g, 2);
	assert_int_equal(vec_pulses(f->g, 3), 1);
	assert_int_equal(irq_pulses(f->g), 0);
	assert_int_equal(cfg_read(f->g, PCI_VNET_SLOT, 0x06, 2) & 0x8, 0);
	/* A queue without a vector: nothing at all. */
	vnet_queue_interrupt(f->g, 0);
	assert_int_equal(irq_pulses(f->g), 0);
	for (unsigned v = 0; v < VNET_MSIX_VECTORS; v++)
		assert_int_equal(vec_pulses(f->g, v), 0);
	/* A vector past the table reads back as none. */
	reg_io(f->g, VIRTIO_MSI_QUEUE_VECTOR, true, VNET_MSIX_VECTORS, 2);
	assert_int_equal(reg_io(f->g, VIRTIO_MSI_QUEUE_VECTOR, false, 0, 2), 0xffff);
}

static void test_masked_vector_pending_until_unmasked(void **state)
{
	struct fixture *f = *state;
	msix_on(f->g);
	reg_io(f->g, VIRTIO_PCI_QUEUE_SEL, true, 1, 2);
	reg_io(f->g, VIRTIO_MSI_QUEUE_VECTOR, true, 2, 2);
	bar1_write(f->g, 16 * 2 + 12, 1); /* entry 2 masked */
	vnet_queue_interrupt(f->g, 1);
	assert_int_equal(vec_pulses(f->g, 2), 0);
	assert_int_equal(bar1_read(f->g, MSIX_PBA_OFF), 1u << 2);
	bar1_write(f->g, 16 * 2 + 12, 0);
	assert_int_equal(vec_pulses(f->g, 2), 1);
	assert_int_equal(bar1_read(f->g, MSIX_PBA_OFF), 0);
	/* The function mask holds every vector likewise. */
	cfg_write(f->g, PCI_VNET_SLOT, MSIX_CAP + 2, 0xc000, 2);
	vnet_queue_interrupt(f->g, 1);
	assert_int_equal(vec_pulses(f->g, 2), 0);
	cfg_write(f->g, PCI_VNET_SLOT, MSIX_CAP + 2, 0x8000, 2);
	assert_int_equal(vec_pulses(f->g, 2), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_command_keeps_intx_disable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_pulses_intx_when_enabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx_disable_keeps_line_quiet_until_cleared, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_intx_enable_with_nothing_pending_is_quiet, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_msix_capability_and_bar, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mq_device_config_and_queues, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_interrupt_on_its_vector_not_intx, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_masked_vector_pending_until_unmasked, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
