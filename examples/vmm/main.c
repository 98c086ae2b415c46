/* SPDX-License-Identifier: MIT */
/*
 * examples/vmm: one process, one engine, several Linux guests.
 *
 *   vmm --tap NAME --guest name=a,kernel=K,initrd=I,mem=256M,mac=M,rx=big|mergeable[,cmdline=...] ...
 *
 * Each guest: a KVM VM with one vCPU, the in-kernel interrupt controllers,
 * RAM made of the engine's pool pages (through the KVM backend), a serial
 * console and a virtio-net device whose receive queue is the library's
 * (vdemux_vnet_rxq). Frames between the guests, and to and from the TAP, go
 * through the engine (with --io-threads, the engines of the lanes:
 * iothread.c). See README.md.
 *
 * Files by concern: args.c (the command line), vcpu.c (the vCPU thread and
 * its exits), switch.c (frames between the TAP and the guests), tap.c (the
 * uplink), guest.c (a guest's build, run and tear-down), stats.c (counters),
 * loop.c (the event loop), and the devices (serial.c, rtc.c, pci.c,
 * virtio_net_dev.c), boot.c (loading Linux).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>

#include "vmm.h"

static struct vmm vmm_state;

void vmm_log(struct guest *g, const char *fmt, ...)
{
	struct vmm *v = g ? g->vmm : &vmm_state;
	va_list ap;
	va_start(ap, fmt);
	pthread_mutex_lock(&v->out_lock);
	if (g)
		printf("[%s] ", g->cfg.name);
	vprintf(fmt, ap);
	putchar('\n');
	fflush(stdout);
	pthread_mutex_unlock(&v->out_lock);
	va_end(ap);
}

void vmm_engine_log(int level, const char *msg, void *payload)
{
	struct vmm *v = payload;
	if (level <= VDEMUX_LOG_WARN || v->verbose)
		vmm_log(NULL, "vdemux: %s", msg);
}

/* The engine's pool (each shard's, with shards): every guest's RAM is made
 * of pool pages, plus spare pages for frames in flight. */
static uint32_t pool_pages(const struct vmm *v)
{
	uint32_t pool = POOL_SPARE;
	for (unsigned i = 0; i < v->nguests; i++)
		pool += (uint32_t)(v->guests[i].cfg.mem / VMM_PAGE);
	return pool;
}

/* SIGTERM and SIGINT (stop) and SIGUSR2 (print the counters) come through
 * a signalfd; SIGUSR1 kicks vCPUs. */
static int signals_setup(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	vcpu_signals_init();
	sigdelset(&set, SIGUSR1);
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int guests_create(struct vmm *v)
{
	for (unsigned i = 0; i < v->nguests; i++) {
		struct guest *g = &v->guests[i];
		const struct guest_config *c = &g->cfg;
		int r = guest_create(v, g);
		if (r < 0) {
			vmm_log(g, "vmm: cannot create the guest: %s", strerror(-r));
			return r;
		}
		vmm_log(g, "vmm: %llu MiB, mac %02x:%02x:%02x:%02x:%02x:%02x, rx %s, vm %u",
			(unsigned long long)(c->mem >> 20), c->mac[0], c->mac[1], c->mac[2], c->mac[3],
			c->mac[4], c->mac[5],
			c->layout == RX_MERGEABLE ? "mergeable (copied)"
			: c->copy == VDEMUX_COPY_NEVER
				? "big (flipped into the guest's buffers)"
				: "auto (big buffers, copied or flipped by the adaptive policy)",
			g->vm);
	}
	return 0;
}

static int guests_start(struct vmm *v)
{
	for (unsigned i = 0; i < v->nguests; i++) {
		struct guest *g = &v->guests[i];
		if (vcpu_start(g) < 0) {
			vmm_log(g, "vmm: cannot start the vCPU thread");
			return -EAGAIN;
		}
	}
	return 0;
}

/* Every guest removed, the TAP's pages given back, the engine checked. The
 * I/O threads have stopped. */
static bool vmm_end(struct vmm *v)
{
	bool ok = true;
	pthread_mutex_lock(&v->lane[0].lock);
	for (unsigned i = 0; i < v->nguests; i++)
		if (!v->guests[i].removed)
			ok &= guest_remove(v, &v->guests[i]);
	tap_rx_stop(v);
	ok &= stats_check_engine(v, "end");
	stats_print(v);
	pthread_mutex_unlock(&v->lane[0].lock);
	for (unsigned i = 0; i < v->nlanes; i++)
		free(v->lane[i].tx_buf);
	return ok;
}

int main(int argc, char **argv)
{
	struct vmm *v = &vmm_state;
	pthread_mutex_init(&v->out_lock, NULL);

	int r = vmm_parse_args(v, argc, argv);
	if (r)
		return r;
	v->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm_fd < 0 || ioctl(v->kvm_fd, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		fprintf(stderr, "vmm: /dev/kvm: %s\n",
			v->kvm_fd < 0 ? strerror(errno) : "wrong API version");
		return 1;
	}
	if (lanes_setup(v, pool_pages(v)) < 0)
		return 1;
	int sfd = signals_setup();
	if (guests_create(v) < 0 || guests_start(v) < 0)
		return 1;

	if ((r = iothreads_start(v)) < 0) {
		vmm_log(NULL, "vmm: I/O threads: %s", strerror(-r));
		return 1;
	}
	bool ok = vmm_loop(v, sfd);
	iothreads_stop(v);
	ok &= vmm_end(v);
	vmm_log(NULL, "vmm: exit %d", ok ? 0 : 1);
	return ok ? 0 : 1;
}
