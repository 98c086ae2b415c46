/* SPDX-License-Identifier: MIT */
/*
 * A guest's life cycle: built (a KVM VM whose RAM is the engine's pool
 * pages, its devices, the library's receive queue, the vCPU, the kernel
 * loaded), run (its rings served by the main thread, or with shards each
 * pair's by its lane's thread), torn down (the vCPU stopped, the VM taken
 * out of the engine, the engine checked).
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/virtio_net.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "vmm.h"

/* The VM with its interrupt controllers and PIT. */
static int guest_vm_create(struct vmm *v, struct guest *g)
{
	g->vm_fd = ioctl(v->kvm_fd, KVM_CREATE_VM, 0);
	if (g->vm_fd < 0)
		return -errno;
	if (ioctl(g->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0 ||
	    ioctl(g->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return -errno;
	struct kvm_pit_config pit = {.flags = 0};
	if (ioctl(g->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return -errno;
	return 0;
}

/* A reserved range of @p len bytes of the VMM's address space, starting on
 * a 2 MiB boundary: the arena's pages behind it are 2 MiB-aligned in the
 * arena's file too, so where the host backs that file with huge pages
 * (shmem_enabled) guest RAM is mapped by them, and KVM's tables follow. */
static void *reserve_2m(size_t len)
{
	const size_t huge = (size_t)2 << 20;
	uint8_t *p = mmap(NULL, len + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
			  0);
	if (p == MAP_FAILED)
		return p;
	uint8_t *at = (uint8_t *)(((uintptr_t)p + huge - 1) & ~(uintptr_t)(huge - 1));
	/* Trimming the slack cannot fail for ranges inside one mapping. */
	if (at > p)
		(void)munmap(p, (size_t)(at - p));
	(void)munmap(at + len, (size_t)(p + huge - at));
	return at;
}

/* Guest RAM: a reserved range of the VMM's address space, registered by the
 * backend as memslot 0. The receive queue's VM covers all of it and fills it
 * with pool pages; from then on the backend remaps pages behind it as frames
 * are flipped in. */
static int guest_ram_create(struct vmm *v, struct guest *g)
{
	int r;
	void *ram = reserve_2m(g->cfg.mem);
	if (ram == MAP_FAILED)
		return -errno;
	g->ram = ram;
	struct vdemux_kvm_opts ko = VDEMUX_OPTS(vdemux_kvm_opts, .ram_gpa = 0, .ram_size = g->cfg.mem,
						.ram_hva = ram, .flags = VDEMUX_KVM_F_SET_MEMSLOT,
						.vm_fd = g->vm_fd, .slot = 0);
	if ((r = vdemux_kvm_create(&g->be, &ko)) < 0)
		return r;
	return vdemux_engine_add_backend(v->lane[0].eng, g->be);
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1; older C headers lack it */
#endif

/* Guest RAM in 2 MiB pages where the kernel allows, once the receive
 * queue's VM has mapped it (the arena's pages, in runs): KVM maps guest RAM
 * with the page size of this mapping, and 4 KiB pages cost the guest a
 * deeper walk at every TLB miss (far deeper when nested). First the advice,
 * with which a host whose shmem_enabled is advise or always faults huge
 * pages in; then, for a host where it is never (Debian's default), guest
 * RAM populated and collapsed: MADV_COLLAPSE is not bound by that setting.
 * So guest RAM is allocated at once (it is the guest's pool pages anyway).
 * All of it advisory: a kernel without it refuses and guest RAM stays in
 * 4 KiB pages. A page flipped later is remapped alone, splitting its 2 MiB
 * entry (docs/backends-kvm.md, "Huge pages"). */
static void ram_huge(struct guest *g)
{
	(void)madvise(g->ram, g->cfg.mem, MADV_HUGEPAGE);
	if (madvise(g->ram, g->cfg.mem, MADV_POPULATE_WRITE) == 0)
		(void)madvise(g->ram, g->cfg.mem, MADV_COLLAPSE);
}

/* The library's queue behind pair @p's receive ring, on its lane's engine:
 * pair 0's owns guest RAM, the others share it (copies only,
 * VIRTIO_NET_F_MQ). Spread over shards, every queue of the guest copies,
 * the owner's too (docs/architecture.md, Threading, rule 7). */
static int rxq_create(struct vmm *v, struct guest *g, unsigned p)
{
	struct guest_rx *rx = &g->rx[p];
	rx->g = g;
	rx->pair = p;
	enum vdemux_copy_policy copy = v->group && g->net.pairs > 1 ? VDEMUX_COPY_ALWAYS : g->cfg.copy;
	struct vdemux_vnet_rxq_opts qo = VDEMUX_OPTS(
		vdemux_vnet_rxq_opts, .ram = g->ram, .ram_size = g->cfg.mem, .backends = &g->be,
		.n_backends = 1, .copy = copy, .ram_of = p ? g->rx[0].q : NULL);
	/* The library decides when the guest wants an interrupt for its
	 * receive ring; the device raises it (its vector, or its ISR bit set
	 * first, then INTx). */
	qo.irq = (struct vdemux_signal){
		.kind = VDEMUX_SIGNAL_CALLBACK, .cb = vnet_rx_interrupt, .payload = rx};
	int r = vdemux_vnet_rxq_create(&rx->q, pair_lane(g, p)->eng, &qo);
	if (r < 0)
		return r;
	rx->vm = vdemux_vnet_rxq_vm(rx->q);
	return 0;
}

/* The virtio-net device, and the library's queues behind its receive rings,
 * with the copy policy the rx= option chose: big-packet chains flipped,
 * every frame (COPY_NEVER), or each frame by the adaptive policy's measures
 * (auto); mergeable buffers are copied into whatever the policy. The L2
 * bridge knows the guest by its first queue's VM; the switch steers each
 * flow to one of the pairs the driver uses (switch.c). */
static int guest_net_create(struct vmm *v, struct guest *g)
{
	int r;
	if ((r = vnet_init(g, g->cfg.layout, g->cfg.queues)) < 0)
		return r;
	if ((r = vdemux_kvm_irqfd_create(g->vm_fd, GSI_VIRTIO, 0, &g->net.irqfd)) < 0)
		return r;
	g->net.kick_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->net.kick_fd < 0)
		return -errno;
	for (unsigned q = 0; q < g->net.nqueues; q++)
		if ((g->net.ioev_fd[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
			return -errno;
	for (unsigned p = 0; p < g->net.pairs; p++)
		if ((r = rxq_create(v, g, p)) < 0)
			return r;
	if (!g->cfg.small_pages)
		ram_huge(g);
	g->vm = g->rx[0].vm;
	vdemux_l2 *l2 = vdemux_engine_l2(v->lane[0].eng);
	if ((r = vdemux_l2_vlan_join(l2, g->vm, 1, 0)) < 0 ||
	    (r = vdemux_l2_add_mac(l2, g->vm, g->cfg.mac, 1)) < 0 ||
	    (r = vdemux_l2_set_allmulti(l2, g->vm, 1, 1)) < 0)
		return r;
	return 0;
}

struct guest *guest_of_vm(struct vmm *v, vdemux_vm_id vm)
{
	for (unsigned i = 0; i < v->nguests; i++)
		if (v->guests[i].vm == vm && !__atomic_load_n(&v->guests[i].removed, __ATOMIC_ACQUIRE))
			return &v->guests[i];
	return NULL;
}

int guest_create(struct vmm *v, struct guest *g)
{
	int r;

	if (v->verbose && !(g->stats.port_exits = calloc(65536, sizeof *g->stats.port_exits)))
		return -ENOMEM;
	g->cpu.off_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (g->cpu.off_fd < 0)
		return -errno;
	int err = pthread_mutex_init(&g->io_lock, NULL);
	if (err)
		return -err;
	if ((r = guest_vm_create(v, g)) < 0 || (r = guest_ram_create(v, g)) < 0 ||
	    (r = guest_net_create(v, g)) < 0 || (r = vcpu_create(g)) < 0)
		return r;
	/* RAM is populated now: load the kernel and the initramfs into it. */
	return boot_setup(g);
}

/* Main thread, main lane's lock held: the guest's transmit rings it
 * serves that were kicked, and its control ring. */
void guest_serve_tx(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	uint32_t mine = (1u << main_pairs(g)) - 1;
	pthread_mutex_lock(&d->lock);
	if (d->events & VNET_EV_CTRL) {
		d->events &= ~VNET_EV_CTRL;
		vnet_ctrl_serve(g);
	}
	while (d->tx_kicks & mine) {
		unsigned p = (unsigned)__builtin_ctz(d->tx_kicks & mine);
		d->tx_kicks &= ~(1u << p);
		vnet_tx(&g->vmm->lane[0], g, p);
	}
	pthread_mutex_unlock(&d->lock);
}

/* The TAP offloads a driver's features take (TUN_F_*): checksum offload,
 * and TSO only with it, as virtio-net requires. */
static unsigned tun_offloads(uint32_t f)
{
	unsigned t = 0;
	if (!(f & 1u << VIRTIO_NET_F_GUEST_CSUM))
		return 0;
	t = TUN_F_CSUM;
	if (f & 1u << VIRTIO_NET_F_GUEST_TSO4)
		t |= TUN_F_TSO4;
	if (f & 1u << VIRTIO_NET_F_GUEST_TSO6)
		t |= TUN_F_TSO6;
	if ((t & (TUN_F_TSO4 | TUN_F_TSO6)) && (f & 1u << VIRTIO_NET_F_GUEST_ECN))
		t |= TUN_F_TSO_ECN;
	return t;
}

/* The union of what the guests took: the engine finishes checksums and
 * segments TSO frames for a guest that declined them (UFO is not offered). */
void tap_update_offloads(struct vmm *v)
{
	unsigned want = 0;
	for (unsigned i = 0; i < v->nguests; i++)
		if (!v->guests[i].removed)
			want |= v->guests[i].rx[0].tun_offloads;
	int r = tap_set_offloads(v, want);
	if (r < 0)
		vmm_log(NULL, "vmm: tap: TUNSETOFFLOAD 0x%x: %s", want, strerror(-r));
	else if (r > 0)
		vmm_log(NULL, "vmm: tap: offloads 0x%x (csum %s, tso4 %s, tso6 %s, ecn %s)", want,
			want & TUN_F_CSUM ? "yes" : "no", want & TUN_F_TSO4 ? "yes" : "no",
			want & TUN_F_TSO6 ? "yes" : "no", want & TUN_F_TSO_ECN ? "yes" : "no");
}

/* The device was reset or set up: stop pair @p's queue, and start it again
 * on the ring the driver configured if it is DRIVER_OK. Device lock held. */
static void rx_restart(struct guest *g, unsigned p)
{
	struct vnet_dev *d = &g->net;
	struct guest_rx *rx = &g->rx[p];
	rx->generation = d->generation;
	if (rx->started) {
		vdemux_vnet_rxq_stop(rx->q);
		__atomic_store_n(&rx->started, false, __ATOMIC_RELEASE);
	}
	rx->broken = false;
	rx->tun_offloads = 0;
	const struct vnet_queue *q = &d->vq[2 * p];
	if (!(d->status & 0x4) || !q->pfn) /* DRIVER_OK */
		return;
	/* Legacy layout: desc at PFN * 4096, avail after it, used at the next
	 * 4096 boundary (vnet_queue_setup()). */
	struct vdemux_vnet_ring ring = VDEMUX_OPTS(vdemux_vnet_ring, .desc_gpa = q->desc,
						   .avail_gpa = q->avail, .used_gpa = q->used,
						   .size = q->size, .features = d->guest_features);
	int r = vdemux_vnet_rxq_start(rx->q, &ring);
	if (r < 0) {
		vmm_log(g, "vmm: receive queue %u not started: %s", p, strerror(-r));
		return;
	}
	__atomic_store_n(&rx->started, true, __ATOMIC_RELEASE);
	uint32_t f = d->guest_features;
	rx->tun_offloads = tun_offloads(f);
	if (p > 0)
		return;
	vmm_log(g,
		"vmm: receive queue started: %u entries, features 0x%08x (indirect %s, event_idx %s, mergeable %s)",
		q->size, f, f & (1u << 28) ? "yes" : "no", f & (1u << 29) ? "yes" : "no",
		f & (1u << 15) ? "yes" : "no");
}

/* Pair @p's receive ring was kicked (or just started): take its buffers. */
static void rx_kick(struct guest *g, unsigned p)
{
	struct guest_rx *rx = &g->rx[p];
	if (!rx->started || rx->broken)
		return;
	int r = vdemux_vnet_rxq_kick(rx->q);
	if (r == -EIO || vdemux_vnet_rxq_needs_reset(rx->q) == 1) {
		/* Legacy virtio has no DEVICE_NEEDS_RESET: log it, and serve
		 * the ring no more until the driver resets the device. */
		rx->broken = true;
		vdemux_vnet_rxq_stop(rx->q);
		__atomic_store_n(&rx->started, false, __ATOMIC_RELEASE);
		vmm_log(g, "vmm: the guest broke receive ring %u: queue stopped until a reset", p);
	}
}

void guest_serve_pair(struct guest *g, unsigned p)
{
	struct vnet_dev *d = &g->net;
	uint32_t bit = 1u << p;
	pthread_mutex_lock(&d->lock);
	if (d->tx_kicks & bit) {
		d->tx_kicks &= ~bit;
		vnet_tx(&g->vmm->lane[p], g, p);
	}
	/* The queue is this lane's engine's: restarted here after a reset or
	 * at DRIVER_OK (the device wakes this thread), then it takes what the
	 * driver posted. */
	if (d->generation != g->rx[p].generation) {
		rx_restart(g, p);
		if (g->rx[p].started)
			d->rx_kicks |= bit;
	}
	if (d->rx_kicks & bit) {
		d->rx_kicks &= ~bit;
		rx_kick(g, p);
	}
	pthread_mutex_unlock(&d->lock);
}

/* Main thread, main lane's lock held: the life cycle and kicks of the
 * receive queues it serves (main_pairs(); with shards, the others are their
 * lanes' threads'). Frames reach the guest inside the engine's calls (TAP
 * submits, transmit bursts, kicks), which also interrupt it. */
void guest_serve_rx(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	unsigned n = main_pairs(g);
	uint32_t mine = (1u << n) - 1;
	pthread_mutex_lock(&d->lock);
	/* Receive kicks or a configuration change: both served here. A
	 * transmit kick that came since guest_serve_tx() stays for the next round. */
	uint32_t kicked = d->rx_kicks & mine;
	bool cfg = d->generation != g->rx[0].generation;
	d->rx_kicks &= ~mine;
	d->events &= ~VNET_EV_CONFIG;
	for (unsigned p = 0; cfg && p < n; p++) {
		rx_restart(g, p);
		if (g->rx[p].started)
			kicked |= 1u << p; /* take what the driver posted before DRIVER_OK */
	}
	if (cfg)
		tap_update_offloads(g->vmm);
	for (unsigned p = 0; p < n; p++)
		if (kicked & (1u << p))
			rx_kick(g, p);
	pthread_mutex_unlock(&d->lock);
}

/* Stopped from outside (SIGTERM, the VMM's end): where the guest was tells a
 * hang from a guest at work. */
static void log_where(struct guest *g)
{
	struct kvm_regs regs;
	if (ioctl(g->cpu.fd, KVM_GET_REGS, &regs) == 0)
		vmm_log(g,
			"vmm: vCPU stopped running at rip 0x%llx (flags 0x%llx); exits: %" PRIu64
			" I/O, %" PRIu64 " MMIO, %" PRIu64 " other",
			(unsigned long long)regs.rip, (unsigned long long)regs.rflags, g->stats.exits_io,
			g->stats.exits_mmio, g->stats.exits_other);
}

bool guest_remove(struct vmm *v, struct guest *g)
{
	if (g->removed)
		return true;
	g->cpu.stop = 1;
	if (vcpu_any_started(g)) {
		/* The caller holds the main lane's lock, which a vCPU thread may
		 * be waiting for (a device reset, a hole to fill): let it finish. */
		pthread_mutex_unlock(&v->lane[0].lock);
		vcpu_stop(g);
		pthread_mutex_lock(&v->lane[0].lock);
		if (!g->cpu.off)
			log_where(g);
	}
	/* The other lanes stop between two turns: no engine call runs on any
	 * shard while the queues go and the engines are checked. */
	lanes_lock(v, 1, v->nlanes);
	stats_take(v, g);
	vdemux_kvm_stats(g->be, &g->stats.kvm, sizeof g->stats.kvm);
	stats_log_mappings(g);
	/* The queues' VMs go, the sharing ones first, and guest RAM's pages
	 * back to the pool. */
	for (unsigned p = g->net.pairs; p-- > 0;) {
		vdemux_vnet_rxq_destroy(g->rx[p].q);
		g->rx[p].q = NULL;
	}
	int r = vdemux_engine_remove_backend(v->lane[0].eng, g->be);
	if (r < 0)
		vmm_log(g, "vmm: vdemux_engine_remove_backend: %s", strerror(-r));
	__atomic_store_n(&g->removed, true, __ATOMIC_RELEASE);
	tap_update_offloads(v);
	char when[64];
	snprintf(when, sizeof when, "%s removed", g->cfg.name);
	bool ok = stats_check_engine(v, when);
	lanes_unlock(v, 1, v->nlanes);
	return ok;
}
