/* SPDX-License-Identifier: MIT */
/*
 * A legacy (virtio 0.9.5) virtio-net PCI device: I/O BAR 0 with the legacy
 * register block, memory BAR 1 with the MSI-X table, and queues in pairs
 * (pair p: receive 2p, transmit 2p + 1) with, for more than one pair,
 * VIRTIO_NET_F_MQ and its control queue (2 * pairs). Linux's virtio_pci
 * takes it with its legacy transport (device 0x1000, revision 0, no virtio
 * capabilities), and uses MSI-X when it can: a vector per queue, each
 * injected through its own KVM irqfd and GSI route (msix.c); else INTx on
 * GSI_VIRTIO through an irqfd.
 *
 * Registers are handled on the vCPU threads under the device lock; the
 * rings are served on the main thread (with shards, each pair's on its
 * lane's thread, iothread.c) under the same lock: each receive
 * ring by one of the library's virtio-net queues (vdemux_vnet_rxq, started
 * and stopped from guest.c; pair 0's owns guest RAM, the others share it),
 * the transmit rings here (vnet_tx.c), the control ring by the library's
 * vdemux_vnet_ctrl.
 *
 * Ring features: VIRTIO_RING_F_INDIRECT_DESC, so that Linux's big-packet
 * receive chains (19 descriptors) take one ring entry each (without it only
 * 13 fit a 256-entry ring), and VIRTIO_RING_F_EVENT_IDX. Both are
 * transport features Linux's legacy virtio_pci keeps (bits 28 and 29 fit
 * the legacy 32-bit feature register); the transmit rings honour them too:
 * they are served through the library's split virtqueue (vdemux/virtq.h),
 * the same checked walker as the receive queues'.
 *
 * Offloads: the device offers checksum offload and TSO (IPv4, IPv6, ECN) in
 * both directions, and VIRTIO_NET_F_MTU (the guest's mtu= option). What the
 * driver accepts goes to the library's receive queues with the rings
 * (guest.c), which write the metadata into the guest's headers or finish
 * checksums and segment for a guest that declined; and to the TAP's
 * TUNSETOFFLOAD (tap.c). A transmitted frame keeps its header (switch.c).
 *
 * Interrupts: with MSI-X on, a queue's interrupt is its vector (none if the
 * driver gave it none). Without, every queue's goes through
 * vnet_interrupt(), which sets the ISR's queue bit and then pulses the
 * INTx irqfd, so the guest's handler (Linux's vp_interrupt reads the ISR
 * and looks at its queues only if the queue bit is set) always finds the
 * bit of the interrupt it took. The receive queues' interrupts are decided
 * by the library inside engine calls: each queue is created with a
 * callback signal (guest.c) that calls vnet_queue_interrupt(). Reading the
 * ISR returns it and clears it. The ISR is an atomic, not under the device
 * lock: the library's callback comes inside engine calls made with this
 * device's lock held (a kick) or not (a TAP read), and the vCPU thread
 * reads it.
 */
#include <linux/virtio_ring.h>
#include <errno.h>
#include <linux/kvm.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_pci.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm.h"

#define ISR_QUEUE 0x1u /* a queue was used */

/* PCI command register bits the device keeps: I/O space, memory space, bus
 * master, SERR#, and INTx Disable (bit 10), which generic drivers
 * (uio_pci_generic, vfio-pci) set and read back to tell whether the
 * function can mask its interrupt line. */
#define PCI_CMD_MASK 0x0507u
#define PCI_CMD_INTX_DISABLE 0x0400u
#define PCI_STATUS_INTX 0x0008u /* status register: INTx pending */

static void vnet_wake(struct guest *g, unsigned ev)
{
	uint64_t one = 1;
	g->net.events |= ev;
	if (write(g->net.kick_fd, &one, sizeof one) < 0) {
		/* The counter cannot overflow in practice; a failure changes nothing. */
	}
	/* With shards, each pair's receive queue restarts on its lane's
	 * thread: wake it through its queue's notification eventfd. */
	for (unsigned p = 1; (ev & VNET_EV_CONFIG) && g->vmm->group && p < g->net.pairs; p++)
		if (write(g->net.ioev_fd[2 * p], &one, sizeof one) < 0) {
			/* As above. */
		}
}


/* Queue notifications through KVM ioeventfds: the guest's write of a queue's
 * index to QUEUE_NOTIFY signals that queue's eventfd inside KVM, with no
 * return to the vCPU thread (a nested exit to userspace costs most). Set at
 * DRIVER_OK at the BAR as it is, removed at a reset or when the BAR moves;
 * a notification while they are not set comes as a trapped write
 * (vnet_reg_write). Device lock held. */
static int ioev_assign(struct guest *g, uint32_t port, unsigned q, bool on)
{
	struct kvm_ioeventfd io = {.datamatch = q,
				   .addr = port,
				   .len = 2,
				   .fd = g->net.ioev_fd[q],
				   .flags = KVM_IOEVENTFD_FLAG_PIO | KVM_IOEVENTFD_FLAG_DATAMATCH |
					    (on ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN)};
	return ioctl(g->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static void ioev_set(struct guest *g, bool on)
{
	struct vnet_dev *d = &g->net;
	uint32_t port = on ? (d->bar0 & 0xfffcu) + VIRTIO_PCI_QUEUE_NOTIFY : d->ioev_port;
	if (on == (d->ioev_port != 0) || !port || d->ioev_fd[0] < 0)
		return;
	int r = 0;
	unsigned q = 0;
	for (; q < d->nqueues && r == 0; q++)
		r = ioev_assign(g, port, q, on);
	if (r < 0 && on) {
		while (--q > 0)
			ioev_assign(g, port, q - 1, false);
		vmm_log(g, "vmm: queue notifications trapped (KVM_IOEVENTFD: %s)", strerror(-r));
		return;
	}
	d->ioev_port = on ? port : 0;
}

/* Queue @q was notified: what the main thread is to serve. Device lock
 * held. */
static void queue_kicked(struct vnet_dev *d, unsigned q)
{
	if (q >= d->nqueues)
		return;
	if (d->pairs > 1 && q == 2u * d->pairs)
		d->events |= VNET_EV_CTRL;
	else if (q & 1)
		d->tx_kicks |= 1u << (q / 2);
	else
		d->rx_kicks |= 1u << (q / 2);
}

void vnet_ioev_kick(struct guest *g, unsigned q)
{
	uint64_t cnt;
	if (read(g->net.ioev_fd[q], &cnt, sizeof cnt) <= 0)
		return;
	pthread_mutex_lock(&g->net.lock);
	g->net.kicks[q & 1]++; /* even: a receive queue (or the control queue) */
	queue_kicked(&g->net, q);
	pthread_mutex_unlock(&g->net.lock);
}

/* A trapped notification of queue @q: the thread that serves it is woken
 * (with shards, a pair past the first is its lane's thread's). */
static void notify_trapped(struct guest *g, unsigned q)
{
	uint64_t one = 1;
	struct vnet_dev *d = &g->net;
	queue_kicked(d, q);
	if (g->vmm->group && q < 2u * d->pairs && q / 2 > 0) {
		if (write(d->ioev_fd[q], &one, sizeof one) < 0) {
			/* The counter cannot overflow in practice. */
		}
	} else {
		vnet_wake(g, 0);
	}
}

/* The legacy layout: the descriptor table at PFN * 4096, the available ring
 * after it, the used ring at the next 4096 boundary. */
static void vnet_queue_setup(struct vnet_queue *q, uint16_t size, uint32_t pfn)
{
	uint64_t base = (uint64_t)pfn * VMM_PAGE;
	q->size = size;
	q->pfn = pfn;
	q->desc = base;
	q->avail = base + 16ull * size;
	q->used = (q->avail + 6 + 2ull * size + VMM_PAGE - 1) & ~(VMM_PAGE - 1);
}

static unsigned queue_size(const struct vnet_dev *d, unsigned q)
{
	if (q >= d->nqueues)
		return 0;
	return d->pairs > 1 && q == 2u * d->pairs ? VNET_CTRL_SIZE : VQ_MAX_SIZE;
}

/* A queue the device serves itself (a transmit ring, the control ring):
 * set up at DRIVER_OK, gone at a reset or when the driver takes its memory
 * away (PFN 0). Device lock held. */
void vnet_ring_stop(struct vnet_dev *d, vdemux_virtq **qp)
{
	vdemux_virtq *q = *qp;
	if (!q)
		return;
	struct vdemux_virtq_stats st = {0};
	vdemux_virtq_stats(q, &st, sizeof st);
	d->tx_skipped += st.skipped;
	*qp = NULL;
	vdemux_virtq_destroy(q);
}

static void ring_start(struct guest *g, unsigned qi, vdemux_virtq **qp)
{
	struct vnet_dev *d = &g->net;
	const struct vnet_queue *q = &d->vq[qi];
	vnet_ring_stop(d, qp);
	if (!q->pfn)
		return;
	struct vdemux_virtq_opts o = VDEMUX_OPTS(vdemux_virtq_opts, .ram = g->ram,
						 .ram_size = g->cfg.mem, .desc_gpa = q->desc,
						 .avail_gpa = q->avail, .used_gpa = q->used,
						 .size = q->size, .features = d->guest_features);
	int r = vdemux_virtq_create(qp, &o);
	if (r < 0)
		vmm_log(g, "vmm: ring of queue %u not set up: %s", qi, strerror(-r));
}

static void rings_stop(struct vnet_dev *d)
{
	for (unsigned p = 0; p < d->pairs; p++)
		vnet_ring_stop(d, &d->txq[p]);
	vnet_ring_stop(d, &d->ctrlq);
}

/* DRIVER_OK: the transmit and control rings, the control queue's features. */
static void rings_start(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	for (unsigned p = 0; p < d->pairs; p++)
		ring_start(g, 2 * p + 1, &d->txq[p]);
	if (d->ctrl) {
		ring_start(g, 2u * d->pairs, &d->ctrlq);
		vdemux_vnet_ctrl_reset(d->ctrl, d->guest_features);
	}
}

static void vnet_reset(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	rings_stop(d);
	ioev_set(g, false);
	d->guest_features = 0;
	d->queue_sel = 0;
	memset(d->vq, 0, sizeof d->vq);
	for (unsigned q = 0; q < VNET_MAX_QUEUES; q++)
		__atomic_store_n(&d->vector[q], VIRTIO_MSI_NO_VECTOR_, __ATOMIC_SEQ_CST);
	d->config_vector = VIRTIO_MSI_NO_VECTOR_;
	__atomic_store_n(&d->active_pairs, 1, __ATOMIC_SEQ_CST);
	if (d->ctrl)
		vdemux_vnet_ctrl_reset(d->ctrl, 0);
	d->status = 0;
	__atomic_store_n(&d->isr, 0, __ATOMIC_SEQ_CST);
	d->generation++;
	vnet_wake(g, VNET_EV_CONFIG);
}

static uint32_t host_features(enum rx_layout layout, unsigned pairs)
{
	uint32_t f = 1u << VIRTIO_NET_F_MAC | 1u << VIRTIO_RING_F_INDIRECT_DESC |
		     1u << VIRTIO_RING_F_EVENT_IDX | 1u << VIRTIO_NET_F_MTU;
	/* Receive offloads; without MRG_RXBUF they are also what makes Linux
	 * post big (page-sized) receive buffers. */
	f |= 1u << VIRTIO_NET_F_GUEST_CSUM | 1u << VIRTIO_NET_F_GUEST_TSO4 |
	     1u << VIRTIO_NET_F_GUEST_TSO6 | 1u << VIRTIO_NET_F_GUEST_ECN;
	/* Transmit offloads: the guest's GSO frames go on as they are. */
	f |= 1u << VIRTIO_NET_F_CSUM | 1u << VIRTIO_NET_F_HOST_TSO4 | 1u << VIRTIO_NET_F_HOST_TSO6 |
	     1u << VIRTIO_NET_F_HOST_ECN;
	if (layout == RX_MERGEABLE)
		f |= 1u << VIRTIO_NET_F_MRG_RXBUF;
	/* Several pairs: MQ and the control queue its VQ_PAIRS_SET needs. */
	if (pairs > 1)
		f |= 1u << VIRTIO_NET_F_MQ | 1u << VIRTIO_NET_F_CTRL_VQ;
	return f;
}

int vnet_init(struct guest *g, enum rx_layout layout, unsigned pairs)
{
	struct vnet_dev *d = &g->net;
	int err = pthread_mutex_init(&d->lock, NULL);
	if (err)
		return -err;
	memcpy(d->mac, g->cfg.mac, 6);
	d->pairs = (uint16_t)(pairs ? pairs : 1);
	d->nqueues = (uint16_t)(2u * d->pairs + (d->pairs > 1));
	d->host_features = host_features(layout, d->pairs);
	if (d->pairs > 1) {
		struct vdemux_vnet_ctrl_opts co = VDEMUX_OPTS(vdemux_vnet_ctrl_opts,
							      .max_pairs = d->pairs);
		if ((err = vdemux_vnet_ctrl_create(&d->ctrl, &co)) < 0)
			return err;
	}
	for (unsigned q = 0; q < VNET_MAX_QUEUES; q++)
		d->vector[q] = VIRTIO_MSI_NO_VECTOR_;
	d->config_vector = VIRTIO_MSI_NO_VECTOR_;
	d->active_pairs = 1;
	d->bar0 = VNET_IO_BASE | 1;
	d->bar1 = VNET_BAR1_GPA;
	return msix_init(&d->msix, g->vm_fd);
}

uint32_t vnet_cfg_read(struct guest *g, unsigned reg)
{
	struct vnet_dev *d = &g->net;
	switch (reg) {
	case 0x00: return 0x1000u << 16 | 0x1af4u; /* transitional virtio-net */
	case 0x04: {
		uint16_t cmd = __atomic_load_n(&d->command, __ATOMIC_SEQ_CST);
		bool pending = __atomic_load_n(&d->isr, __ATOMIC_SEQ_CST) != 0;
		/* Status: a capability list (MSI-X), INTx pending. */
		return (0x10u | (pending ? PCI_STATUS_INTX : 0u)) << 16 | cmd;
	}
	case 0x08: return 0x02000000u; /* Ethernet controller, revision 0 */
	case 0x10: return d->bar0;
	case 0x14: return d->bar1;		/* 32-bit memory BAR, not prefetchable */
	case 0x2c: return 1u << 16 | 0x1af4u;	/* subsystem: virtio device type 1 */
	case 0x34: return MSIX_CAP;		/* capabilities */
	case 0x3c: return 1u << 8 | GSI_VIRTIO; /* INTA#, line */
	default:
		if (reg >= MSIX_CAP && reg < MSIX_CAP + 12)
			return msix_cap_read(&d->msix, reg);
		return 0;
	}
}

static void irq_pulse(struct guest *g)
{
	uint64_t one = 1;
	if (write(g->net.irqfd, &one, sizeof one) < 0) {
		/* Cannot fail for an eventfd short of overflow. */
	}
}

/* A write of the command register. INTx is edge-triggered through the irqfd:
 * an interrupt that came while INTx was disabled is still in the ISR, and
 * the line is pulsed when the driver enables INTx again, so that it is not
 * lost. Device lock held. */
static void cmd_write(struct guest *g, uint16_t cmd)
{
	struct vnet_dev *d = &g->net;
	uint16_t old = __atomic_exchange_n(&d->command, cmd, __ATOMIC_SEQ_CST);
	if ((old & PCI_CMD_INTX_DISABLE) && !(cmd & PCI_CMD_INTX_DISABLE) &&
	    __atomic_load_n(&d->isr, __ATOMIC_SEQ_CST))
		irq_pulse(g);
}

void vnet_cfg_write(struct guest *g, unsigned reg, uint32_t val, unsigned size)
{
	struct vnet_dev *d = &g->net;
	pthread_mutex_lock(&d->lock);
	if (reg == 0x04 && size >= 2)
		cmd_write(g, (uint16_t)(val & PCI_CMD_MASK));
	else if (reg == 0x10 && size == 4) {
		ioev_set(g, false);			   /* the registers move */
		d->bar0 = (val & ~(VNET_IO_SIZE - 1)) | 1; /* all ones reads back the size */
	} else if (reg == 0x14 && size == 4) {
		d->bar1 = val & ~(VNET_BAR1_SIZE - 1);
	} else if (reg >= MSIX_CAP && reg < MSIX_CAP + 4) {
		msix_cap_write(&d->msix, reg, val, size);
	}
	pthread_mutex_unlock(&d->lock);
}

void vnet_interrupt(struct guest *g)
{
	/* The bit first: the guest's handler may run as soon as the irqfd is
	 * written, and must find it. With INTx Disable set the line stays
	 * quiet; the bit waits in the ISR (and the status register's
	 * interrupt bit) for the driver to poll it or enable INTx again. */
	__atomic_fetch_or(&g->net.isr, ISR_QUEUE, __ATOMIC_SEQ_CST);
	if (!(__atomic_load_n(&g->net.command, __ATOMIC_SEQ_CST) & PCI_CMD_INTX_DISABLE))
		irq_pulse(g);
}

void vnet_queue_interrupt(struct guest *g, unsigned q)
{
	struct vnet_dev *d = &g->net;
	if (!msix_enabled(&d->msix)) {
		vnet_interrupt(g);
		return;
	}
	uint16_t v = __atomic_load_n(&d->vector[q], __ATOMIC_SEQ_CST);
	if (v != VIRTIO_MSI_NO_VECTOR_)
		msix_fire(&d->msix, v);
}

int vnet_mmio(struct guest *g, uint64_t gpa, bool write, uint8_t *data, unsigned len)
{
	struct vnet_dev *d = &g->net;
	uint32_t base = __atomic_load_n(&d->bar1, __ATOMIC_SEQ_CST);
	if (!base || gpa < base || gpa >= (uint64_t)base + VNET_BAR1_SIZE ||
	    !(__atomic_load_n(&d->command, __ATOMIC_SEQ_CST) & 0x2)) /* memory space on */
		return 0;
	msix_mmio(&d->msix, gpa - base, write, data, len);
	return 1;
}

/* A receive queue's interrupt: the library calls this (the queue's
 * VDEMUX_SIGNAL_CALLBACK) from inside engine calls on the main thread, when
 * the guest asks to be interrupted for what was published. */
void vnet_rx_interrupt(vdemux_vm_id vm, unsigned reasons, void *payload)
{
	struct guest_rx *rx = payload;
	(void)vm;
	if (!(reasons & VDEMUX_SIG_RX))
		return;
	__atomic_fetch_add(&rx->g->net.rx_irqs, 1, __ATOMIC_RELAXED); /* from any lane */
	vnet_queue_interrupt(rx->g, 2 * rx->pair);
}

static void pfn_write(struct guest *g, uint32_t v)
{
	struct vnet_dev *d = &g->net;
	unsigned q = d->queue_sel;
	if (q >= d->nqueues)
		return;
	if (v == 0) {
		memset(&d->vq[q], 0, sizeof d->vq[0]);
		if (d->ctrl && q == 2u * d->pairs)
			vnet_ring_stop(d, &d->ctrlq);
		else if (q & 1)
			vnet_ring_stop(d, &d->txq[q / 2]);
	} else if ((uint64_t)v * VMM_PAGE < g->cfg.mem) {
		vnet_queue_setup(&d->vq[q], (uint16_t)queue_size(d, q), v);
	}
}

static void status_write(struct guest *g, uint32_t v)
{
	struct vnet_dev *d = &g->net;
	if ((v & 0xff) == 0) {
		vnet_reset(g);
		return;
	}
	bool ok = !(d->status & VIRTIO_CONFIG_S_DRIVER_OK) && (v & VIRTIO_CONFIG_S_DRIVER_OK);
	d->status = (uint8_t)v;
	if (ok) {
		rings_start(g);
		ioev_set(g, true);
		d->generation++;
		d->rx_kicks = d->tx_kicks = (1u << d->pairs) - 1;
		vnet_wake(g, VNET_EV_CONFIG | (d->ctrl ? VNET_EV_CTRL : 0));
	}
}

/* With MSI-X on, the legacy block has two more registers: the vectors. */
static bool vector_write(struct vnet_dev *d, unsigned off, uint32_t v)
{
	uint16_t vec = (uint16_t)v < VNET_MSIX_VECTORS ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR_;
	if (!msix_enabled(&d->msix))
		return false;
	if (off == VIRTIO_MSI_CONFIG_VECTOR)
		d->config_vector = vec;
	else if (off == VIRTIO_MSI_QUEUE_VECTOR && d->queue_sel < d->nqueues)
		__atomic_store_n(&d->vector[d->queue_sel], vec, __ATOMIC_SEQ_CST);
	else
		return false;
	return true;
}

static void vnet_reg_write(struct guest *g, unsigned off, uint32_t v)
{
	struct vnet_dev *d = &g->net;
	if (vector_write(d, off, v))
		return;
	switch (off) {
	case VIRTIO_PCI_GUEST_FEATURES: d->guest_features = v & d->host_features; break;
	case VIRTIO_PCI_QUEUE_PFN: pfn_write(g, v); break;
	case VIRTIO_PCI_QUEUE_SEL: d->queue_sel = (uint16_t)v; break;
	case VIRTIO_PCI_QUEUE_NOTIFY: notify_trapped(g, v & 0xffff); break;
	case VIRTIO_PCI_STATUS: status_write(g, v); break;
	default: break;
	}
}

/* Device configuration (struct virtio_net_config): mac[6], status (not
 * offered), max_virtqueue_pairs at 8, mtu at 10. */
static uint32_t dev_cfg_read(struct guest *g, unsigned c, unsigned size)
{
	uint8_t cfg[12] = {0};
	uint32_t v = 0;
	memcpy(cfg, g->net.mac, 6);
	cfg[8] = (uint8_t)g->net.pairs;
	cfg[9] = (uint8_t)(g->net.pairs >> 8);
	cfg[10] = (uint8_t)g->cfg.mtu;
	cfg[11] = (uint8_t)(g->cfg.mtu >> 8);
	for (unsigned i = 0; i < size; i++)
		if (c + i < sizeof cfg)
			v |= (uint32_t)cfg[c + i] << (8 * i);
	return v;
}

static uint32_t vnet_reg_read(struct guest *g, unsigned off, unsigned size)
{
	struct vnet_dev *d = &g->net;
	bool msix = msix_enabled(&d->msix);
	unsigned q = d->queue_sel;
	switch (off) {
	case VIRTIO_PCI_HOST_FEATURES: return d->host_features;
	case VIRTIO_PCI_GUEST_FEATURES: return d->guest_features;
	case VIRTIO_PCI_QUEUE_PFN: return q < d->nqueues ? d->vq[q].pfn : 0;
	case VIRTIO_PCI_QUEUE_NUM: return queue_size(d, q);
	case VIRTIO_PCI_QUEUE_SEL: return d->queue_sel;
	case VIRTIO_PCI_STATUS: return d->status;
	case VIRTIO_PCI_ISR:
		/* Reading acknowledges: the bits are returned and cleared. */
		return __atomic_exchange_n(&d->isr, 0, __ATOMIC_SEQ_CST);
	default: break;
	}
	if (msix && off == VIRTIO_MSI_CONFIG_VECTOR)
		return d->config_vector;
	if (msix && off == VIRTIO_MSI_QUEUE_VECTOR)
		return q < d->nqueues ? d->vector[q] : VIRTIO_MSI_NO_VECTOR_;
	if (off >= VIRTIO_PCI_CONFIG_OFF(msix))
		return dev_cfg_read(g, off - VIRTIO_PCI_CONFIG_OFF(msix), size);
	return 0;
}

/* A reset, or a receive ring taken away: its queue stops now. The locks
 * of the guest's lanes and the device's held. */
static void rx_sync_stop(struct guest *g)
{
	struct vnet_dev *d = &g->net;
	for (unsigned p = 0; p < d->pairs; p++) {
		struct guest_rx *rx = &g->rx[p];
		if (rx->started && (d->status == 0 || d->vq[2 * p].pfn == 0)) {
			vdemux_vnet_rxq_stop(rx->q);
			__atomic_store_n(&rx->started, false, __ATOMIC_RELEASE);
		}
	}
}

int vnet_io(struct guest *g, uint16_t port, bool out, uint8_t *data, unsigned size)
{
	struct vnet_dev *d = &g->net;
	uint32_t base = d->bar0 & 0xfffcu;
	if (!(d->bar0 & 1) || base == 0 || port < base || port >= base + VNET_IO_SIZE)
		return 0;
	unsigned off = port - base;
	/* A reset (status 0) or a receive ring taken away (its PFN set to 0)
	 * stops the receive queue before the write returns: the driver frees
	 * the ring's memory right after, and the queue must not write there
	 * any more. Stopping is a call on each queue's engine: take the locks
	 * of the guest's lanes first (the lanes' order: lanes, then device).
	 * These writes are rare (driver setup and teardown). */
	bool sync = out && (off == VIRTIO_PCI_STATUS || off == VIRTIO_PCI_QUEUE_PFN);
	unsigned nl = sync ? (g->vmm->group ? d->pairs : 1u) : 0u;
	for (unsigned i = 0; i < nl; i++)
		pthread_mutex_lock(&g->vmm->lane[i].lock);
	pthread_mutex_lock(&d->lock);
	if (out) {
		uint32_t v = 0;
		memcpy(&v, data, size);
		vnet_reg_write(g, off, v);
		if (sync)
			rx_sync_stop(g);
	} else {
		uint32_t v = vnet_reg_read(g, off, size);
		memcpy(data, &v, size);
	}
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = nl; i-- > 0;)
		pthread_mutex_unlock(&g->vmm->lane[i].lock);
	return 1;
}
