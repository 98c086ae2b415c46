/* SPDX-License-Identifier: MIT */
/*
 * The vCPUs: one thread each running KVM_RUN, handling its exits (port I/O
 * to the devices, MMIO, holes of guest RAM, power-off). The first vCPU
 * boots the kernel; the others start when it sends them INIT and startup
 * IPIs (KVM's local APIC does that; until then their KVM_RUN waits in the
 * kernel). A power-off on any of them stops them all.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

void guest_power_off(struct guest *g, int status, const char *why)
{
	struct guest_vcpu *c = &g->cpu;
	if (c->off)
		return;
	c->exit_status = status;
	c->stop = 1;
	c->off = 1;
	vmm_log(g, "vmm: guest stopped: %s", why);
	uint64_t one = 1;
	if (write(c->off_fd, &one, sizeof one) < 0) {
		/* eventfd: cannot fail here */
	}
}

static bool in_ram(struct guest *g, uint64_t gpa)
{
	return gpa < g->cfg.mem;
}

/* A vCPU touched a hole of guest RAM (the queue's RX window is all of it):
 * give it a private zero page (the guest only ever sees zeroes and its own
 * writes there). With lazy harvest a flip replaces the page at a GPA, so
 * RAM has no hole in normal operation; a hole means a flip whose backend
 * failed and could not be repaired (docs/backends-kvm.md). */
static int fill_holes(struct guest *g, uint64_t gpa)
{
	pthread_mutex_lock(&g->vmm->lane[0].lock);
	int n = vdemux_kvm_backfill(g->be, gpa);
	pthread_mutex_unlock(&g->vmm->lane[0].lock);
	if (n > 0) {
		g->stats.backfilled += (uint64_t)n;
		vmm_log(g, "vmm: vCPU hit a hole of guest RAM at %s0x%" PRIx64 ": %d page(s) backfilled",
			gpa == VDEMUX_KVM_ALL_HOLES ? "(EFAULT, address unknown) " : "",
			gpa == VDEMUX_KVM_ALL_HOLES ? 0 : gpa, n);
	}
	return n;
}

/* The devices behind io_lock (the serial port, PCI configuration, the
 * clock): 1 if one of them took the access. */
static int locked_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size)
{
	pthread_mutex_lock(&g->io_lock);
	int r = serial_io(g, port, out, data, size) || pci_io(g, port, out, data, size) ||
		rtc_io(g, port, out, data, size);
	pthread_mutex_unlock(&g->io_lock);
	return r;
}

static void handle_io(struct guest *g, struct kvm_run *run)
{
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool out = run->io.direction == KVM_EXIT_IO_OUT;
	if (g->stats.port_exits)
		__atomic_fetch_add(&g->stats.port_exits[run->io.port], 1, __ATOMIC_RELAXED);
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		uint16_t port = run->io.port;
		if (vnet_io(g, port, out, data, run->io.size) ||
		    locked_io(g, port, out, data, run->io.size))
			continue;
		if (out && port == 0x64 && run->io.size == 1 && *data == 0xfe) {
			guest_power_off(g, 0, "reset through the keyboard controller");
			continue;
		}
		if (!out)
			memset(data, 0xff, run->io.size); /* nothing there */
	}
}

static void handle_mmio(struct guest *g, struct kvm_run *run)
{
	uint64_t gpa = run->mmio.phys_addr;
	uint32_t len = run->mmio.len;
	if (len > 8)
		len = 8;
	if (in_ram(g, gpa) && in_ram(g, gpa + len - 1)) {
		/* Newer kernels report a hole this way, not with EFAULT. Fill it
		 * and complete the access on the page now there. */
		__atomic_fetch_add(&g->stats.holes_mmio, 1, __ATOMIC_RELAXED);
		fill_holes(g, gpa & ~(VMM_PAGE - 1));
		if (run->mmio.is_write)
			memcpy(g->ram + gpa, run->mmio.data, len);
		else
			memcpy(run->mmio.data, g->ram + gpa, len);
		return;
	}
	if (vnet_mmio(g, gpa, run->mmio.is_write, run->mmio.data, len))
		return;
	if (!run->mmio.is_write)
		memset(run->mmio.data, 0xff, len);
}

/* One exit of KVM_RUN. */
static void handle_exit(struct guest *g, struct kvm_run *run)
{
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		__atomic_fetch_add(&g->stats.exits_io, 1, __ATOMIC_RELAXED);
		handle_io(g, run);
		break;
	case KVM_EXIT_MMIO:
		__atomic_fetch_add(&g->stats.exits_mmio, 1, __ATOMIC_RELAXED);
		handle_mmio(g, run);
		break;
	case KVM_EXIT_HLT: guest_power_off(g, 0, "halted"); break;
	case KVM_EXIT_SHUTDOWN: guest_power_off(g, 1, "triple fault"); break;
	case KVM_EXIT_SYSTEM_EVENT: guest_power_off(g, 0, "system event"); break;
	case KVM_EXIT_INTR: __atomic_fetch_add(&g->stats.exits_other, 1, __ATOMIC_RELAXED); break;
	default:
		vmm_log(g, "vmm: unexpected exit %u", run->exit_reason);
		guest_power_off(g, 1, "unexpected exit");
		break;
	}
}

/* KVM_RUN failed with @e: true to run again, false to end the thread. */
static bool run_failed(struct guest *g, int e, int *efaults_in_a_row)
{
	if (e == EINTR || e == EAGAIN)
		return true;
	if (e == EFAULT) {
		/* The 6.1 kernels' signal for a hole: no address given. */
		__atomic_fetch_add(&g->stats.holes_efault, 1, __ATOMIC_RELAXED);
		if (fill_holes(g, VDEMUX_KVM_ALL_HOLES) > 0 || ++*efaults_in_a_row < 3)
			return true;
		guest_power_off(g, 1, "KVM_RUN: EFAULT, and guest RAM has no hole");
		return false;
	}
	vmm_log(g, "vmm: KVM_RUN: %s", strerror(e));
	guest_power_off(g, 1, "KVM_RUN failed");
	return false;
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct guest *g = c->g;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	int efaults_in_a_row = 0;

	while (!g->cpu.stop) {
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (run_failed(g, errno, &efaults_in_a_row))
				continue;
			break;
		}
		efaults_in_a_row = 0;
		handle_exit(g, c->run);
	}
	return NULL;
}

static void sigusr1(int sig)
{
	(void)sig; /* only makes KVM_RUN return EINTR */
}

void vcpu_signals_init(void)
{
	struct sigaction sa = {.sa_handler = sigusr1};
	sigaction(SIGUSR1, &sa, NULL);
}

static int vcpu_create_one(struct guest *g, unsigned id)
{
	struct vcpu *c = &g->cpu.v[id];
	c->g = g;
	c->id = id;
	c->fd = ioctl(g->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (c->fd < 0)
		return -errno;
	int sz = ioctl(g->vmm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run))
		return -EINVAL;
	c->run_size = (size_t)sz;
	c->run = mmap(NULL, c->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (c->run == MAP_FAILED)
		return -errno;
	return 0;
}

int vcpu_create(struct guest *g)
{
	g->cpu.n = g->cfg.cpus ? g->cfg.cpus : 1;
	for (unsigned i = 0; i < g->cpu.n; i++) {
		int r = vcpu_create_one(g, i);
		if (r < 0)
			return r;
	}
	g->cpu.fd = g->cpu.v[0].fd;
	return 0;
}

int vcpu_start(struct guest *g)
{
	for (unsigned i = 0; i < g->cpu.n; i++) {
		struct vcpu *c = &g->cpu.v[i];
		if (pthread_create(&c->thread, NULL, vcpu_thread, c) != 0)
			return -EAGAIN;
		c->thread_started = true;
	}
	return 0;
}

bool vcpu_any_started(const struct guest *g)
{
	for (unsigned i = 0; i < g->cpu.n; i++)
		if (g->cpu.v[i].thread_started)
			return true;
	return false;
}

void vcpu_stop(struct guest *g)
{
	g->cpu.stop = 1;
	for (unsigned i = 0; i < g->cpu.n; i++) {
		struct vcpu *c = &g->cpu.v[i];
		if (!c->thread_started)
			continue;
		c->run->immediate_exit = 1;
		pthread_kill(c->thread, SIGUSR1);
	}
	for (unsigned i = 0; i < g->cpu.n; i++) {
		struct vcpu *c = &g->cpu.v[i];
		if (c->thread_started)
			pthread_join(c->thread, NULL);
		c->thread_started = false;
	}
}
