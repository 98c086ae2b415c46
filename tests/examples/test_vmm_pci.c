/* SPDX-License-Identifier: MIT */
/*
 * examples/vmm's PCI function (pci.c, virtio_net_dev.c) as a guest's
 * generic drivers see it through configuration mechanism #1: the command
 * register keeps INTx Disable (bit 10), which uio_pci_generic and vfio-pci
 * set and read back before they take a device; with it set the device's
 * interrupt raises no INTx (its irqfd stays quiet) but stays pending in the
 * ISR and the status register's interrupt bit, and clearing the bit again
 * delivers it.
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

void vmm_switch(struct vmm *v, struct guest *src, const uint8_t *const *frames, const uint32_t *lens,
		unsigned n)
{
	(void)v;
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
	assert_int_equal(pthread_mutex_init(&f->v.engine_lock, NULL), 0);
	assert_int_equal(vnet_init(f->g, RX_BIG), 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_command_keeps_intx_disable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupt_pulses_intx_when_enabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intx_disable_keeps_line_quiet_until_cleared, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_intx_enable_with_nothing_pending_is_quiet, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
